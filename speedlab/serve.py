"""Serving the dashboard: Voilà on 127.0.0.1 as a child process (``speedlab dashboard``, ``speedlab up``).

:func:`serve` runs Voilà until interrupted; :func:`launch` starts it and returns at once,
:func:`stop` ends it. The store and configuration reach the kernels through ``SPEEDLAB_*``
environment variables (:func:`voila_env`); the page is :class:`speedlab.dashboard.App`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from .bundled import dashboard_notebook
from .config import Config
from .errors import ServeError
from .joblog import JobLog
from .rowbuild import parse_now

__all__ = [
    "SERVER_NOISE", "VOILA_TEMPLATE", "launch", "notebook_path", "relay_server_output", "serve", "stop",
    "voila_command", "voila_env", "voila_template_root", "wait_until_serving",
]


#: The Voilà template the dashboard is served with (see :func:`voila_template_root`).
VOILA_TEMPLATE = "speedlab"


def notebook_path() -> Path:
    """The dashboard notebook (``notebooks/dashboard.ipynb``, shipped inside the package)."""
    return dashboard_notebook()


def voila_command(notebook: str | os.PathLike, port: int, *, ip: str = "127.0.0.1",
                  cull_idle_s: int = 600, module: str = "voila") -> list[str]:
    """The Voilà command line: local address only, no browser, idle kernels culled.

    ``module="speedlab.api"`` runs Voilà with speedlab's HTTP API beside the dashboard.
    """
    return [sys.executable, "-m", module, os.fspath(notebook), "--no-browser", f"--port={int(port)}",
            f"--Voila.ip={ip}", "--Voila.port_retries=0", f"--template={VOILA_TEMPLATE}",
            "--MappingKernelManager.cull_interval=60",
            f"--MappingKernelManager.cull_idle_timeout={int(cull_idle_s)}"]


def voila_env(config: Config, now: str | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for Voilà and its kernels: ``base`` (default this process's) plus the
    configuration as :meth:`~speedlab.config.Config.child_env` gives it, and the pinned clock."""
    env = dict(os.environ if base is None else base)
    env.setdefault("SPEEDLAB_DASHBOARD_KERNEL", "1")  # see skip_iri_grammar
    env.update(config.child_env())
    if now:
        parse_now(now)
        env["SPEEDLAB_DASHBOARD_NOW"] = now
    env.pop("QUERY_STRING", None)
    # speedlab's Voilà template (Voilà's lab template with no CDN stylesheet) ships in the package
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(voila_template_root()), env.get("JUPYTER_PATH")]))
    return env


def voila_template_root() -> Path:
    """The Jupyter data folder inside the package that holds Voilà's ``speedlab`` template
    (``voila/templates/speedlab``): Voilà's ``lab`` template without its CDN stylesheets."""
    return Path(__file__).resolve().parent / "jupyter"


def wait_until_serving(process: subprocess.Popen, port: int, timeout_s: float = 60.0) -> bool:
    """Poll the server on ``port`` until it answers; ``False`` if it has not after ``timeout_s``.

    The probe is Voilà's favicon (a ``GET /`` would start a kernel).

    Raises
    ------
    ServeError
        If the server exits before it answers (its port is taken, Voilà failed).
    """
    url = f"http://127.0.0.1:{int(port)}/voila/static/favicon.ico"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServeError(f"the dashboard server exited with status {process.returncode} before it "
                             f"answered on port {port}: is the port taken? Pass another --port")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.2)
    return False


def serve(config: Config, port: int = 8866, *, now: str | None = None,
          notebook: str | os.PathLike | None = None, cull_idle_s: int = 600, api: bool = False,
          announce: Callable[[str], None] | None = None, ready_timeout_s: float = 60.0) -> int:
    """Serve the dashboard with Voilà on 127.0.0.1 until interrupted; return Voilà's exit status.

    With ``api`` the same server also answers speedlab's HTTP JSON API (:mod:`speedlab.api`).
    ``announce`` is called with the dashboard's URL once the server answers on it (not before:
    a URL printed earlier would be refused for a second or two).

    Raises
    ------
    ServeError
        If Voilà exits before it answers.
    """
    log = JobLog.for_config(config, "dashboard")
    log.start("voila serving", port=port, store=config.store)
    process = launch(config, port, now=now, notebook=notebook, cull_idle_s=cull_idle_s, api=api)
    try:
        ready = wait_until_serving(process, port, ready_timeout_s)
    except BaseException:
        stop(process)
        raise
    if announce is not None:
        url = f"http://127.0.0.1:{port}/"
        announce(url if ready else f"{url} (not answering yet after {ready_timeout_s:.0f} s; it may still be starting)")
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):  # SIGTERM (a service manager, a test) stops Voilà too
            raise KeyboardInterrupt
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        while True:  # short waits: Ctrl+C is handled even when another thread (polars) caught it
            try:
                code = process.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:
        code = stop(process)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    log.end("voila stopped", exit_code=code)
    return code


def launch(config: Config, port: int = 8866, *, now: str | None = None,
           notebook: str | os.PathLike | None = None, cull_idle_s: int = 600,
           api: bool = False) -> subprocess.Popen:
    """Start Voilà (with ``api``, also the HTTP API) on 127.0.0.1 in its own session and return
    the process without waiting (``speedlab up`` runs it beside the collector); :func:`stop` ends it."""
    command = voila_command(notebook or notebook_path(), port, cull_idle_s=cull_idle_s,
                            module="speedlab.api" if api else "voila")
    command.append("--Voila.log_level=WARN")     # its start-up chatter; speedlab prints the URL
    process = subprocess.Popen(command, env=voila_env(config, now), start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               errors="replace", bufsize=1)
    threading.Thread(target=relay_server_output, args=(process.stdout, sys.stderr),
                     name="voila-output", daemon=True).start()
    return process


#: Lines Voilà and its kernels print in normal operation that tell a user nothing: the notebook
#: is served as the dashboard whether or not it is signed; kernels talk to Voilà over loopback
#: TCP; a kernel interrupted while Voilà stops; tornado's ping settings; a tab that closed.
SERVER_NOISE = ("is not trusted", "Kernel is running over TCP without encryption",
                "KeyboardInterrupt caught in kernel", "websocket_ping_timeout",
                "WebSocketClosedError", "StreamClosedError", "Task exception was never retrieved")


def relay_server_output(lines, out) -> None:
    """Copy the server's output ``lines`` to ``out``, leaving out :data:`SERVER_NOISE`.

    A traceback is held until its last line: it is left out when that line is one of the noise
    exceptions (a closed tab's ``WebSocketClosedError``), and copied whole otherwise, so real
    errors still reach the user.
    """
    held: list[str] = []
    for line in lines:
        if held:
            held.append(line)
            if line[:1] in (" ", "\t") or line.startswith("Traceback"):
                continue
            block, held = held, []
            if not any(noise in block[-1] for noise in SERVER_NOISE):
                out.write("".join(block))
                out.flush()
            continue
        if line.startswith("Traceback (most recent call last)"):
            held = [line]
        elif not any(noise in line for noise in SERVER_NOISE):
            out.write(line)
            out.flush()
    if held:
        out.write("".join(held))
        out.flush()


def stop(process: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """Stop a :func:`launch`-ed server (SIGTERM, then SIGKILL after ``timeout_s``); its exit status."""
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
