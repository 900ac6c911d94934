"""A speedtest.net impersonation on 127.0.0.1, so speedtest-cli's real code runs offline.

speedtest-cli fetches its configuration and server list from ``www.speedtest.net`` through
urllib's ``ProxyHandler`` (which reads ``http_proxy`` when ``speedtest.Speedtest()`` is
created), then talks to the chosen server's ``host`` directly. This server answers both:
proxy-form requests (``GET http://www.speedtest.net/speedtest-config.php``) and origin-form
ones (``GET /speedtest/latency.txt``), and its server list names itself (``127.0.0.1:PORT``).

Use::

    with FakeSpeedtest(testlength_s=2) as fake:
        fake.set_throttle(50, 20)                 # [Mbit/s] down, up; None = unlimited
        env = {"http_proxy": fake.proxy_url}      # set BEFORE speedtest.Speedtest() is made
        ...
        fake.set_error("config", 403)             # the config request answers HTTP 403
        fake.set_delay(1.5, "latency")            # every latency answer waits 1.5 s
        fake.set_loaded_delay(120)                # [ms] more while a download/upload is in flight
        fake.set_idle_jitter(8)                   # [ms] idle latency answers: +0, +8, +0, +8, ...

Endpoints (the names ``set_error``/``set_delay`` take): ``config``
(``/speedtest-config.php``), ``servers`` (``/speedtest-servers*.php``), ``latency``
(``/speedtest/latency.txt``), ``download`` (``/speedtest/random{N}x{N}.jpg``, the real
sizes), ``upload`` (POST ``/speedtest/upload.php``, answers ``size=N``). ``hits`` counts
requests per endpoint; ``latency_log`` lists every latency answer as ``(loaded, extra_ms)``:
whether a transfer was in flight, and the extra delay injected on top of ``set_delay``'s.

Each direction can be throttled by a token bucket shared by all connections (the way a
link's capacity is shared by speedtest-cli's parallel threads).
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

#: Bytes of speedtest.net's ``random{N}x{N}.jpg`` files.
IMAGE_SIZES = {350: 245388, 500: 505544, 750: 1118012, 1000: 1986284, 1500: 4468241,
               2000: 7907740, 2500: 12407926, 3000: 17816816, 3500: 24262167, 4000: 31625365}
CHUNK = 16 * 1024
ENDPOINTS = ("config", "servers", "latency", "download", "upload")
_BLOCK = os.urandom(256 * 1024)


class TokenBucket:
    """Limit a byte stream to ``rate_mbps`` [Mbit/s] (``None``: unlimited), shared by threads.

    Callers take tokens before sending (or after receiving) a chunk; a caller that runs
    into debt sleeps until the bucket would have refilled, so the long-run rate is exact.
    """

    def __init__(self, rate_mbps: float | None = None, burst_s: float = 0.01) -> None:
        self._lock = threading.Lock()
        self.burst_s = burst_s
        self.set_rate(rate_mbps)

    def set_rate(self, rate_mbps: float | None) -> None:
        with self._lock:
            self.rate_bytes_s = None if rate_mbps is None else rate_mbps * 1e6 / 8
            self.capacity = 0.0 if self.rate_bytes_s is None else max(CHUNK, self.rate_bytes_s * self.burst_s)
            self.tokens = self.capacity
            self.stamp = time.monotonic()

    def take(self, nbytes: int) -> None:
        with self._lock:
            rate = self.rate_bytes_s
            if rate is None:
                return
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * rate)
            self.stamp = now
            self.tokens -= nbytes
            wait_s = -self.tokens / rate if self.tokens < 0 else 0.0
        if wait_s > 0:
            time.sleep(wait_s)


class ShapedBodies:
    """Handler mixin: bodies sent and received through the server's token buckets (the handler's
    ``fake`` has ``down``, ``up``, ``_lock``, ``bytes_sent`` and ``bytes_received``); the
    LibreSpeed impersonation uses it too."""

    fake: Any
    wfile: Any
    rfile: Any

    def send_shaped_response(self, size: int, content_type: str) -> None:
        """A 200 answer whose body is ``size`` bytes sent at the download rate."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.send_shaped(size)

    def send_shaped(self, size: int) -> None:
        """Send ``size`` bytes of random data at the download rate."""
        sent = 0
        while sent < size:
            n = min(CHUNK, size - sent)
            self.fake.down.take(n)
            offset = sent % (len(_BLOCK) - CHUNK)
            self.wfile.write(_BLOCK[offset:offset + n])
            sent += n
            with self.fake._lock:
                self.fake.bytes_sent += n

    def receive_shaped(self, length: int) -> int | None:
        """Read a body of ``length`` bytes at the upload rate; its size, or ``None`` when the
        client stopped mid-body (its time was up)."""
        received = 0
        while received < length:
            chunk = self.rfile.read(min(CHUNK, length - received))
            if not chunk:
                return None
            received += len(chunk)
            self.fake.up.take(len(chunk))
            with self.fake._lock:
                self.fake.bytes_received += len(chunk)
        return received


class _Handler(ShapedBodies, BaseHTTPRequestHandler):
    server_version = "FakeSpeedtest/1.0"
    # keep-alive as real servers do (speedtest-cli's urllib asks for "Connection: close" anyway);
    # every answer carries its Content-Length; TCP_NODELAY as nginx does on kept-alive connections
    # (else a small answer's body waits for the ACK of its headers: ~40 ms of delayed ACK)
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    fake: FakeSpeedtest  # set on the subclass made per server

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _route(self) -> tuple[str | None, str]:
        path = urlsplit(self.path).path if self.path.startswith("http") else self.path.split("?")[0]
        if path.endswith("/speedtest-config.php"):
            return "config", path
        if "/speedtest-servers" in path:
            return "servers", path
        if path.endswith("/latency.txt"):
            return "latency", path
        if "/random" in path and path.endswith(".jpg"):
            return "download", path
        if path.endswith("/upload.php"):
            return "upload", path
        return None, path

    def _prelude(self) -> str | None:
        endpoint, _ = self._route()
        fake = self.fake
        with fake._lock:
            fake.hits[endpoint or "other"] += 1
            delay = fake.delays.get(endpoint, fake.delays.get(None, 0.0))
            status = fake.errors.get(endpoint)
            if endpoint == "latency":
                delay += fake._latency_extra_s()
        if delay:
            time.sleep(delay)
        if endpoint is None:
            self._send(404, b"not found")
            return None
        if status:
            self._send(status, f"error {status}".encode())
            return None
        return endpoint

    def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        try:
            endpoint = self._prelude()
            if endpoint == "config":
                self._send(200, self.fake.config_xml().encode(), "text/xml")
            elif endpoint == "servers":
                self._send(200, self.fake.servers_xml().encode(), "text/xml")
            elif endpoint == "latency":
                self._send(200, b"test=test")
            elif endpoint == "download":
                with self.fake._transfer():
                    self._download()
            elif endpoint == "upload":
                self._send(200, b"size=0")
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass

    def _download(self) -> None:
        name = self._route()[1].rsplit("/", 1)[1]
        try:
            size = IMAGE_SIZES[int(name[len("random"):].split("x", 1)[0])]
        except (KeyError, ValueError):
            self._send(404, b"no such image")
            return
        self.send_shaped_response(size, "image/jpeg")

    def do_POST(self):  # noqa: N802
        try:
            endpoint = self._prelude()
            if endpoint is None:
                return
            if endpoint != "upload":
                self._send(405, b"POST only to upload.php")
                return
            with self.fake._transfer():
                self._upload()
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass

    def _upload(self) -> None:
        """Read one upload body (throttled) and answer ``size=N``."""
        received = self.receive_shaped(int(self.headers.get("Content-Length") or 0))
        if received is None:
            return  # the client gave up mid-body (speedtest-cli's upload time limit)
        self._send(200, f"size={received}".encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address, handler, rcvbuf_bytes: int | None):
        self._rcvbuf_bytes = rcvbuf_bytes
        super().__init__(address, handler)

    def server_bind(self):
        if self._rcvbuf_bytes:
            # A small receive buffer keeps bytes the client "sent" from piling up unread in the
            # kernel, so speedtest-cli's upload figure tracks the throttle.
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf_bytes)
        super().server_bind()


class LoopbackServer:
    """An HTTP server on ``127.0.0.1:port`` (0: a free port) served from a daemon thread: start and
    stop (both idempotent), a context manager, its port. Subclasses set ``handler`` (a request
    handler class; each request reads the server object as ``self.fake``) and ``name``.
    """

    handler: type[BaseHTTPRequestHandler]
    name = "loopback"

    def __init__(self, port: int = 0, rcvbuf_bytes: int | None = 64 * 1024) -> None:
        self._port = port
        self._rcvbuf = rcvbuf_bytes
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Start serving (idempotent); returns ``self``."""
        if self._server is not None:
            return self
        handler = type("Handler", (self.handler,), {"fake": self})
        self._server = _Server(("127.0.0.1", self._port), handler, self._rcvbuf)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.name}-{self._port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port (idempotent): later connections are refused."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port (known after :meth:`start`)."""
        return self._port


class FakeSpeedtest(LoopbackServer):
    """speedtest.net and one or more test servers, impersonated on ``127.0.0.1:port``.

    Parameters
    ----------
    testlength_s : int
        The ``testlength`` the config XML gives for download and upload [s].
    down_mbps, up_mbps : float, optional
        Throttles [Mbit/s]; ``None`` is unlimited.
    server_ids : sequence of int
        The ids in the server list (all served by this one process).
    client_ip, isp : str
        What the config XML says about the client.
    port : int
        0 picks a free port.
    """

    handler = _Handler
    name = "fake-speedtest"

    def __init__(self, testlength_s: int = 2, down_mbps: float | None = None,
                 up_mbps: float | None = None, server_ids=(4242,), client_ip: str = "203.0.113.7",
                 isp: str = "Impersonated ISP", port: int = 0, rcvbuf_bytes: int | None = 64 * 1024) -> None:
        super().__init__(port, rcvbuf_bytes)
        self.testlength_s = int(testlength_s)
        self.server_ids = tuple(int(i) for i in server_ids)
        self.client_ip = client_ip
        self.isp = isp
        self.down = TokenBucket(down_mbps)
        self.up = TokenBucket(up_mbps)
        self.delays: dict[str | None, float] = {}
        self.errors: dict[str, int] = {}
        self.hits: Counter = Counter()
        self.bytes_sent = 0       # download bytes this server wrote
        self.bytes_received = 0   # upload bytes this server read
        self.loaded_delay_s = 0.0  # latency answers while a transfer is in flight wait this much more
        self.idle_jitter_s = 0.0   # idle latency answers wait 0 / this alternately (or random, seeded)
        self.latency_log: list[tuple[bool, float]] = []
        self._jitter_rng: random.Random | None = None
        self._in_flight = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ addresses
    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the test servers' ``host`` in the server list."""
        return f"127.0.0.1:{self._port}"

    @property
    def proxy_url(self) -> str:
        """The value for ``http_proxy``: speedtest.net requests come here."""
        return f"http://127.0.0.1:{self._port}"

    # ------------------------------------------------------------------ behaviour
    def set_throttle(self, down_mbps: float | None, up_mbps: float | None) -> None:
        """Limit download and upload [Mbit/s] (``None``: unlimited)."""
        self.down.set_rate(down_mbps)
        self.up.set_rate(up_mbps)

    def set_delay(self, seconds: float, endpoint: str | None = None) -> None:
        """Delay answers of ``endpoint`` (``None``: every endpoint without its own delay) [s]."""
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}: one of {', '.join(ENDPOINTS)}")
        with self._lock:
            self.delays[endpoint] = float(seconds)

    def set_loaded_delay(self, ms: float) -> None:
        """Latency answers wait ``ms`` [ms] more while any download or upload request is in
        flight (a queue filled by the transfer: latency under load)."""
        with self._lock:
            self.loaded_delay_s = float(ms) / 1000.0

    def set_idle_jitter(self, ms: float, seed: int | None = None) -> None:
        """Latency answers while no transfer is in flight wait an extra 0, ``ms``, 0, ``ms``, ...
        [ms] (the mean absolute difference of consecutive ones is ``ms``); with ``seed``, an
        extra drawn uniformly from 0..``ms`` instead (``random.Random(seed)``)."""
        with self._lock:
            self.idle_jitter_s = float(ms) / 1000.0
            self._jitter_rng = None if seed is None else random.Random(seed)

    def _latency_extra_s(self) -> float:
        """The extra delay of one latency answer [s] (called under the lock); logged."""
        loaded = self._in_flight > 0
        if loaded:
            extra = self.loaded_delay_s
        elif self._jitter_rng is not None:
            extra = self._jitter_rng.uniform(0.0, self.idle_jitter_s)
        else:
            idle_answers = sum(1 for was_loaded, _ in self.latency_log if not was_loaded)
            extra = self.idle_jitter_s * (idle_answers % 2)
        self.latency_log.append((loaded, extra * 1000.0))
        return extra

    @contextlib.contextmanager
    def _transfer(self):
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def set_error(self, endpoint: str, status: int | None) -> None:
        """Answer ``endpoint`` with HTTP ``status`` (``None`` clears it)."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}: one of {', '.join(ENDPOINTS)}")
        with self._lock:
            if status is None:
                self.errors.pop(endpoint, None)
            else:
                self.errors[endpoint] = int(status)

    # ------------------------------------------------------------------ documents
    def config_xml(self) -> str:
        """speedtest.net's configuration, with a short ``testlength``."""
        t = self.testlength_s
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<settings>\n'
            f'<client ip="{self.client_ip}" lat="12.9716" lon="77.5946" isp="{self.isp}" '
            'isprating="3.7" rating="0" ispdlavg="0" ispulavg="0" loggedin="0" country="IN" />\n'
            '<server-config threadcount="4" ignoreids="" notonmap="" forcepingid="" preferredserverid="" />\n'
            f'<download testlength="{t}" initialtest="250K" mintestsize="250K" threadsperurl="4" />\n'
            f'<upload testlength="{t}" ratio="5" initialtest="0" mintestsize="32K" threads="2" '
            'maxchunksize="512K" maxchunkcount="50" threadsperurl="4" />\n'
            '</settings>\n')

    def servers_xml(self) -> str:
        """The server list: every server is this process."""
        rows = "".join(
            f'<server url="http://{self.host}/speedtest/upload.php" lat="12.97" lon="77.59" '
            f'name="Loopback {i}" country="India" cc="IN" sponsor="speedlab impersonation" '
            f'id="{sid}" host="{self.host}" />\n'
            for i, sid in enumerate(self.server_ids, 1))
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<settings>\n<servers>\n{rows}</servers>\n</settings>\n'


class QuickEngine:
    """A collector engine that answers at once, in speedtest-cli's ``results.dict()`` shape.

    For tests that need many runs (races, outages) and for code that substitutes the engine.
    ``calls`` counts runs; ``before`` (a callable) runs first in each call (a barrier, a
    sleep); ``fail`` (an exception) is raised instead of answering.
    """

    name = "quick-fake"

    def __init__(self, download_mbps: float = 100.0, upload_mbps: float = 50.0, ping_ms: float = 12.5,
                 before=None, fail: BaseException | None = None) -> None:
        self.download_mbps = download_mbps
        self.upload_mbps = upload_mbps
        self.ping_ms = ping_ms
        self.before = before
        self.fail = fail
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> dict:
        with self._lock:
            self.calls += 1
        if self.before is not None:
            self.before()
        if self.fail is not None:
            raise self.fail
        return {
            "download": self.download_mbps * 1e6, "upload": self.upload_mbps * 1e6, "ping": self.ping_ms,
            "server": {"url": "http://127.0.0.1:9/speedtest/upload.php", "lat": "12.97", "lon": "77.59",
                       "name": "Quick", "country": "India", "cc": "IN", "sponsor": "speedlab tests",
                       "id": "4242", "host": "127.0.0.1:9", "d": 1.5, "latency": self.ping_ms},
            "timestamp": "2025-12-29T08:33:12.000000Z", "bytes_sent": 1000, "bytes_received": 2000,
            "share": None, "client": {"ip": "203.0.113.7", "isp": "Impersonated ISP"},
        }
