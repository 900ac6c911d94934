"""A LibreSpeed backend impersonated on 127.0.0.1, so the ``librespeed`` engine's real code runs offline.

It answers what a LibreSpeed server (``docker run ghcr.io/librespeed/speedtest``) answers under
``backend/``: ``garbage.php?ckSize=N`` (N chunks of 1 MiB of random bytes; LibreSpeed's default
100, at most 1024), ``empty.php`` (GET: the latency probe; POST: an upload body, read and
dropped; an empty answer either way) and ``getIP.php`` (``{"processedString": ..., "rawIspInfo": ...}``).

Use::

    with LibreSpeedServer(down_mbps=100, up_mbps=50) as server:
        url = server.url                          # http://127.0.0.1:PORT/
        server.set_throttle(20, 10)               # [Mbit/s] down, up; None = unlimited
        server.set_error("garbage", 500)          # that endpoint answers HTTP 500

Each direction is throttled by one token bucket shared by all connections (a link's capacity
shared by the engine's parallel streams), the idea of ``fake_speedtest``'s throttle.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.helpers.fake_speedtest import LoopbackServer, ShapedBodies, TokenBucket  # one link model for both

MIB = 1024 * 1024
ENDPOINTS = {"/backend/garbage.php": "garbage", "/backend/empty.php": "empty", "/backend/getIP.php": "getip"}


class _Handler(ShapedBodies, BaseHTTPRequestHandler):
    server_version = "FakeLibreSpeed/1.0"
    protocol_version = "HTTP/1.1"  # kept-alive connections, every answer with its Content-Length
    disable_nagle_algorithm = True
    fake: LibreSpeedServer  # set on the subclass made per server

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _endpoint(self) -> str | None:
        endpoint = ENDPOINTS.get(urlsplit(self.path).path)
        with self.fake._lock:
            self.fake.hits[endpoint or "other"] += 1
            status = self.fake.errors.get(endpoint or "")
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
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        try:
            endpoint = self._endpoint()
            if endpoint == "empty":
                self._send(200, b"")
            elif endpoint == "getip":
                body = {"processedString": f"{self.fake.client_ip} - {self.fake.isp}, IN", "rawIspInfo": ""}
                self._send(200, json.dumps(body).encode(), "application/json")
            elif endpoint == "garbage":
                self._garbage()
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass

    def _garbage(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        try:
            chunks = min(1024, max(1, int(query.get("ckSize", ["4"])[0])))
        except ValueError:
            chunks = 4
        self.send_shaped_response(chunks * MIB, "application/octet-stream")

    def do_POST(self):  # noqa: N802
        try:
            endpoint = self._endpoint()
            if endpoint is None:
                return
            if endpoint != "empty":
                self._send(405, b"POST only to empty.php")
                return
            if self.receive_shaped(int(self.headers.get("Content-Length") or 0)) is None:
                return  # the client stopped mid-body (its time was up)
            self._send(200, b"")
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass


class LibreSpeedServer(LoopbackServer):
    """A LibreSpeed backend on ``127.0.0.1:port`` (0: a free port), throttled per direction [Mbit/s]."""

    handler = _Handler
    name = "fake-librespeed"

    def __init__(self, down_mbps: float | None = None, up_mbps: float | None = None,
                 client_ip: str = "203.0.113.7", isp: str = "Impersonated ISP", port: int = 0) -> None:
        super().__init__(port)
        self.down = TokenBucket(down_mbps)
        self.up = TokenBucket(up_mbps)
        self.client_ip, self.isp = client_ip, isp
        self.errors: dict[str, int] = {}
        self.hits: Counter = Counter()
        self.bytes_sent = 0       # download bytes this server wrote
        self.bytes_received = 0   # upload bytes this server read
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """What a user puts in ``[collector] librespeed_url``: ``http://127.0.0.1:PORT/``."""
        return f"http://127.0.0.1:{self._port}/"

    def set_throttle(self, down_mbps: float | None, up_mbps: float | None) -> None:
        """Limit download and upload [Mbit/s] (``None``: unlimited)."""
        self.down.set_rate(down_mbps)
        self.up.set_rate(up_mbps)

    def set_error(self, endpoint: str, status: int) -> None:
        """Answer ``endpoint`` (``garbage``, ``empty``, ``getip``) with HTTP ``status`` (0: normally again)."""
        with self._lock:
            self.errors[endpoint] = status
