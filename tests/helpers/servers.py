"""Servers the tests start for themselves, always on 127.0.0.1 and a free port."""

from __future__ import annotations

import asyncio
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout_s: float = 30.0, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers any HTTP status, or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s: {last}")


def local_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: AWS pointed nowhere but here, no proxies."""
    env = dict(os.environ)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.update(extra)
    return env


def isolate_environment() -> None:
    """Point this process at 127.0.0.1 only: fake AWS credentials, no metadata look-ups, no
    proxies, no speedlab settings from the caller's environment (tests and benchmarks)."""
    os.environ.update({k: v for k, v in local_env().items() if k.startswith("AWS_") or k.lower() == "no_proxy"})
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "SPEEDLAB_CONFIG",
                 "SPEEDLAB_STORE", "SPEEDLAB_HOST_ID", "SPEEDLAB_TIMEZONE"):
        os.environ.pop(name, None)


class MotoServer:
    """``moto_server`` in its own process on 127.0.0.1 (S3 over the wire, not in-process mocks)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> MotoServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=local_env(),
            start_new_session=True)
        wait_for_http(self.endpoint_url + "/moto-api/", process=self.process)
        return self

    def reset(self) -> None:
        """Forget every bucket and object."""
        request = urllib.request.Request(self.endpoint_url + "/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


class ApiServer:
    """The API's tornado application on 127.0.0.1 in a thread (no Voilà: fast)."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        from speedlab.api import make_app

        server = make_app(self.ctx).listen(self.port, "127.0.0.1")
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        server.stop()

    def __enter__(self) -> ApiServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def stop_group(process: subprocess.Popen, sig: int = 15, timeout_s: float = 30.0) -> None:
    """Send ``sig`` (default SIGTERM; SIGINT is Ctrl+C) to the process group of a server started
    with ``start_new_session=True`` and wait for it; SIGKILL the group if it outlives ``timeout_s``."""
    import signal
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout_s)
    except ProcessLookupError:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


# --------------------------------------------------------------------------- browser

#: Debian's Chromium (never a browser downloaded by Playwright) and the flags that keep it local.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


def need_chromium() -> None:
    """Skip (fail on CI) when Debian's Chromium or Playwright is missing."""
    import pytest

    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing on CI: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api")


# --------------------------------------------------------------------------- processes

class Lines:
    """Read a process's stdout lines in a thread; wait for one that matches."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.all: list[str] = []
        self.queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.queue.put(line.rstrip("\n"))

    def wait_for(self, predicate, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.queue.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self.queue.empty():
                    break
                continue
            self.all.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"no such line within {timeout_s} s; got:\n" + "\n".join(self.all))

    def drain(self) -> None:
        self.process.wait(30)
        time.sleep(0.2)
        while not self.queue.empty():
            self.all.append(self.queue.get())


#: What a normal demo, dashboard or ``up`` must not print (kernel and Voilà noise, tracebacks).
NOISE = ("KeyboardInterrupt caught in kernel", "is not trusted", "running over TCP without encryption",
         "WebSocketClosedError", "Traceback")


def assert_quiet(output: str) -> None:
    """Fail naming the first noisy line of ``output``."""
    for line in output.splitlines():
        assert not any(noise in line for noise in NOISE), f"noise in the output: {line!r}\n{output[-3000:]}"
