"""Serving the dashboard: Voilà on 127.0.0.1 as a child process (``speedlab dashboard``, ``speedlab up``).

:func:`serve` runs Voilà until interrupted; :func:`launch` starts it and returns at once,
:func:`stop` ends it. The store and configuration reach the kernels through ``SPEEDLAB_*``
environment variables (:func:`voila_env`); the page is :class:`speedlab.dashboard.App`.

Voilà keeps ``[dashboard] pool_size`` kernels preheated (started, imports done, the default
view drawn); a visitor takes one and its URL parameters are applied on arrival. The kernels
share one cache (:mod:`speedlab.cache`) in a private temporary folder that :func:`launch`
makes and :func:`stop` removes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from .bundled import dashboard_notebook
from .cache import CACHE_DIR_ENV
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
                  cull_idle_s: int = 600, module: str = "voila", pool_size: int = 1) -> list[str]:
    """The Voilà command line: local address only, no browser, idle kernels culled, and
    ``pool_size`` preheated kernels (``0``: none, a kernel starts per visit).

    ``module="speedlab.api"`` runs Voilà with speedlab's HTTP API beside the dashboard.
    """
    command = [sys.executable, "-m", module, os.fspath(notebook), "--no-browser", f"--port={int(port)}",
               f"--Voila.ip={ip}", "--Voila.port_retries=0", f"--template={VOILA_TEMPLATE}",
               "--MappingKernelManager.cull_interval=60",
               f"--MappingKernelManager.cull_idle_timeout={int(cull_idle_s)}"]
    if int(pool_size) > 0:
        command += ["--preheat_kernel=True", f"--pool_size={int(pool_size)}"]
    return command


def voila_env(config: Config, now: str | None = None, base: Mapping[str, str] | None = None,
              cache_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """The environment for Voilà and its kernels: ``base`` (default this process's) plus the
    configuration as :meth:`~speedlab.config.Config.child_env` gives it, the pinned clock, and
    ``cache_dir``, the folder the kernels share their cache in (``$SPEEDLAB_CACHE_DIR``; without
    it each kernel caches for itself). Preheated kernels get this same environment (Voilà
    copies its own)."""
    env = dict(os.environ if base is None else base)
    env.setdefault("SPEEDLAB_DASHBOARD_KERNEL", "1")  # see skip_iri_grammar
    env.update(config.child_env())
    if now:
        parse_now(now)
        env["SPEEDLAB_DASHBOARD_NOW"] = now
    env.pop("QUERY_STRING", None)
    env.pop(CACHE_DIR_ENV, None)
    if cache_dir is not None:
        env[CACHE_DIR_ENV] = os.fspath(cache_dir)
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
        pass  # stopped just below
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        code = stop(process)  # its status (it may have exited by itself); removes the shared cache
    log.end("voila stopped", exit_code=code)
    return code


#: The shared cache folder of each :func:`launch`-ed server (:func:`stop` removes it).
_CACHE_DIRS: dict[subprocess.Popen, str] = {}


def launch(config: Config, port: int = 8866, *, now: str | None = None,
           notebook: str | os.PathLike | None = None, cull_idle_s: int = 600,
           api: bool = False, pool_size: int | None = None) -> subprocess.Popen:
    """Start Voilà (with ``api``, also the HTTP API) on 127.0.0.1 in its own session and return
    the process without waiting (``speedlab up`` runs it beside the collector); :func:`stop` ends it.

    ``pool_size`` preheated kernels (default ``[dashboard] pool_size``); the kernels share one
    cache in a new private temporary folder, removed by :func:`stop`.
    """
    for old in [p for p in _CACHE_DIRS if p.poll() is not None]:  # servers that exited unstopped
        shutil.rmtree(_CACHE_DIRS.pop(old), ignore_errors=True)
    pool = config.dashboard.pool_size if pool_size is None else pool_size
    command = voila_command(notebook or notebook_path(), port, cull_idle_s=cull_idle_s,
                            module="speedlab.api" if api else "voila", pool_size=pool)
    command.append("--Voila.log_level=WARN")     # its start-up chatter; speedlab prints the URL
    cache_dir = tempfile.mkdtemp(prefix="speedlab-dashboard-cache-")   # mode 0700: this user's kernels only
    try:
        process = subprocess.Popen(command, env=voila_env(config, now, cache_dir=cache_dir),
                                   start_new_session=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
    except BaseException:
        shutil.rmtree(cache_dir, ignore_errors=True)
        raise
    _CACHE_DIRS[process] = cache_dir
    threading.Thread(target=relay_server_output, args=(process.stdout, sys.stderr),
                     name="voila-output", daemon=True).start()
    return process


#: Lines Voilà and its kernels print in normal operation that tell a user nothing: the notebook
#: is served as the dashboard whether or not it is signed; kernels talk to Voilà over loopback
#: TCP; a kernel interrupted while Voilà stops, or answering after Voilà closed its sockets (a
#: preheated kernel still drawing the default view when the server is stopped); tornado's ping
#: settings; a tab that closed.
SERVER_NOISE = ("is not trusted", "Kernel is running over TCP without encryption",
                "KeyboardInterrupt caught in kernel", "Socket operation on non-socket",
                "websocket_ping_timeout", "WebSocketClosedError", "StreamClosedError",
                "Task exception was never retrieved")
#: A line announcing the traceback that follows it: held with it, and left out with it.
TRACEBACK_HEADERS = ("Exception in message handler",)


def relay_server_output(lines, out) -> None:
    """Copy the server's output ``lines`` to ``out``, leaving out :data:`SERVER_NOISE`.

    A traceback (with the line announcing it, :data:`TRACEBACK_HEADERS`) is held until its last
    line: it is left out when that line is one of the noise exceptions (a closed tab's
    ``WebSocketClosedError``), and copied whole otherwise, so real errors still reach the user.
    """
    held: list[str] = []

    def write(text: str) -> None:
        out.write(text)
        out.flush()
    for line in lines:
        if held and len(held) == 1 and not held[0].startswith("Traceback"):  # a header
            if line.startswith("Traceback (most recent call last)"):
                held.append(line)
                continue
            write(held.pop())
        if held:
            held.append(line)
            if line[:1] in (" ", "\t") or line.startswith("Traceback"):
                continue
            block, held = held, []
            if not any(noise in block[-1] for noise in SERVER_NOISE):
                write("".join(block))
            continue
        if line.startswith("Traceback (most recent call last)") or any(h in line for h in TRACEBACK_HEADERS):
            held = [line]
        elif not any(noise in line for noise in SERVER_NOISE):
            write(line)
    if held:
        write("".join(held))


def stop(process: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """Stop a :func:`launch`-ed server (SIGTERM, then SIGKILL after ``timeout_s``) and remove its
    shared cache folder; its exit status."""
    if process.poll() is None:
        process.terminate()
    try:
        code = process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    cache_dir = _CACHE_DIRS.pop(process, None)
    if cache_dir is not None:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return code
