"""The ``librespeed`` engine: the LibreSpeed protocol against a server the user names.

A LibreSpeed server (self-hosted: ``docker run -p 8080:8080 ghcr.io/librespeed/speedtest``)
answers under ``<librespeed_url>backend/``: ``garbage.php?ckSize=N`` streams N MiB of random
bytes, ``empty.php`` takes a POSTed body (upload) or answers a GET at once (ping),
``getIP.php`` says the client's address. :class:`LibreSpeed` runs, as LibreSpeed's browser
worker does:

1. one GET of ``empty.php`` (is there a LibreSpeed server?) and ``getIP.php`` (client IP, ISP);
2. idle latency probes of ``empty.php`` (:func:`speedlab.probes.probe_idle`);
3. download: ``download_streams`` parallel connections (LibreSpeed: 6) each GET
   ``garbage.php`` again and again for ``duration_s``; upload: ``upload_streams`` (LibreSpeed: 3)
   POST bodies of random bytes to ``empty.php``; both with loaded probes
   (:class:`speedlab.probes.LoadedProbes`);
4. throughput = bytes moved after a warm-up (TCP slow start, send buffers filling) / the time
   after it [bit/s]; no overhead factor is applied (LibreSpeed's web page multiplies by 1.06).

The output is speedtest-cli's ``results.dict()`` shape; ``ping`` [ms] is the idle probes'
median round trip (the same figure as ``latency_idle_ms``). :func:`backend_urls` and
:func:`parse_get_ip` are pure.
"""

from __future__ import annotations

import array
import http.client
import json
import os
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

from .engine import classify_failure, probe_output
from .errors import EngineFailure
from .probes import IDLE_PROBES, LoadedProbes, median, probe_idle

__all__ = ["LibreSpeed", "backend_urls", "parse_get_ip"]

#: Seconds each direction runs, and the warm-up not counted at its start [s].
DURATION_S = 8.0
DOWNLOAD_WARMUP_S = 1.5
UPLOAD_WARMUP_S = 2.0
#: Parallel streams per direction (LibreSpeed's ``xhr_dlMultistream`` / ``xhr_ulMultistream``).
DOWNLOAD_STREAMS = 6
UPLOAD_STREAMS = 3
#: MiB asked of ``garbage.php`` per request (LibreSpeed's ``garbagePhp_chunkSize``).
CHUNK_MIB = 100
#: Bytes of one upload request's body, and of one write [bytes].
UPLOAD_BODY_BYTES = 8 * 1024 * 1024
WRITE_BYTES = 64 * 1024
#: Bytes read per call in a download stream (6 ms of one of 6 streams at 1 Gbit/s, 0.06 s at 100 Mbit/s).
READ_BYTES = 128 * 1024
_RANDOM = os.urandom(1024 * 1024)
try:  # Linux: bytes written to a socket but not yet acknowledged by the peer (SIOCOUTQ)
    import fcntl
    import termios
    _OUTQ: int | None = termios.TIOCOUTQ
except (ImportError, AttributeError):  # elsewhere the send buffers are only outgrown by the warm-up
    _OUTQ = None


# --------------------------------------------------------------------------- pure parts

def backend_urls(librespeed_url: str) -> dict[str, str]:
    """The backend's URLs from the server's address (pure): ``download``, ``upload``, ``ping``, ``ip``.

    ``http://h:8080/`` -> ``http://h:8080/backend/garbage.php`` etc.; an address that already
    ends in ``backend/`` is used as it is.

    Raises
    ------
    ValueError
        When ``librespeed_url`` is not an http(s) URL with a host.
    """
    parts = urlsplit(str(librespeed_url))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {librespeed_url!r}")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    if not path.endswith("/backend/"):
        path += "backend/"
    base = f"{parts.scheme}://{parts.netloc}{path}"
    return {"download": base + "garbage.php", "upload": base + "empty.php", "ping": base + "empty.php",
            "ip": base + "getIP.php"}


def parse_get_ip(body: str) -> dict[str, str | None]:
    """``ip`` and ``isp`` from what ``getIP.php`` answered (pure; ``None`` when not said).

    Current servers answer ``{"processedString": "IP - ISP, country", "rawIspInfo": ...}``,
    old ones the bare address.
    """
    text = (body or "").strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    processed = str(value.get("processedString") or "") if isinstance(value, dict) else str(value)
    ip, _, isp = processed.partition(" - ")
    return {"ip": ip.strip() or None, "isp": isp.strip() or None}


# --------------------------------------------------------------------------- I/O

def _connect(url: str, timeout_s: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return cls(parts.netloc, timeout=timeout_s), parts.path


def _get(url: str, timeout_s: float) -> tuple[int, bytes]:
    """One GET: the status and body."""
    conn, path = _connect(url, timeout_s)
    try:
        conn.request("GET", f"{path}?r={time.time_ns()}", headers={"Cache-Control": "no-cache"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class _Transfer:
    """``streams`` threads moving bytes in one direction until :attr:`stop` is set; ``moved`` counts them."""

    def __init__(self, direction: str, url: str, streams: int, timeout_s: float) -> None:
        self.direction, self.url, self.timeout_s = direction, url, timeout_s
        self.moved = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[http.client.HTTPConnection] = []
        self._threads = [threading.Thread(target=self._stream, name=f"speedlab-librespeed-{direction}-{i}",
                                          daemon=True) for i in range(streams)]

    def _unsent(self) -> int:
        """Bytes still in this transfer's send buffers (Linux; else 0): written, not yet moved."""
        if _OUTQ is None or self.direction != "upload":
            return 0
        with self._lock:
            socks = [conn.sock for conn in self._conns if conn.sock is not None]
        unsent = 0
        for sock in socks:
            box = array.array("i", [0])
            try:
                fcntl.ioctl(sock.fileno(), _OUTQ, box)
                unsent += box[0]
            except (OSError, ValueError):
                pass
        return unsent

    def _count(self, n: int) -> None:
        with self._lock:
            self.moved += n

    def _stream(self) -> None:
        conn, path = _connect(self.url, self.timeout_s)
        with self._lock:
            self._conns.append(conn)
        try:
            while not self.stop.is_set():
                if self.direction == "download":
                    self._download_once(conn, path)
                else:
                    self._upload_once(conn, path)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if not self.stop.is_set():  # an error after the stop is the socket being closed
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    def _download_once(self, conn: http.client.HTTPConnection, path: str) -> None:
        conn.request("GET", f"{path}?ckSize={CHUNK_MIB}&r={time.time_ns()}", headers={"Cache-Control": "no-cache"})
        response = conn.getresponse()
        if response.status != 200:
            raise http.client.HTTPException(f"HTTP {response.status} for {self.url}")
        buffer = memoryview(bytearray(READ_BYTES))  # readinto: no new bytes object per block
        while not self.stop.is_set():
            n = response.readinto(buffer)
            if not n:
                return
            self._count(n)

    def _upload_once(self, conn: http.client.HTTPConnection, path: str) -> None:
        conn.putrequest("POST", f"{path}?r={time.time_ns()}")
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(UPLOAD_BODY_BYTES))
        conn.endheaders()
        sent = 0
        while sent < UPLOAD_BODY_BYTES:
            if self.stop.is_set():
                return
            n = min(WRITE_BYTES, UPLOAD_BODY_BYTES - sent)
            offset = sent % (len(_RANDOM) - WRITE_BYTES)
            conn.send(_RANDOM[offset:offset + n])
            sent += n
            self._count(n)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise http.client.HTTPException(f"HTTP {response.status} for {self.url}")

    def run(self, duration_s: float, warmup_s: float, cancelled: threading.Event) -> dict:
        """Move bytes for ``duration_s`` [s]; the rate counts what moved after ``warmup_s``."""
        began = time.monotonic()
        for thread in self._threads:
            thread.start()
        cancelled.wait(warmup_s)
        counted_from, moved_before = time.monotonic(), self.moved - self._unsent()
        cancelled.wait(max(0.0, duration_s - (counted_from - began)))
        ended, moved_after = time.monotonic(), self.moved - self._unsent()
        self.stop.set()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # wakes streams blocked in a read or a write
            try:
                if conn.sock is not None:
                    conn.sock.shutdown(2)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(2.0)
        seconds = ended - counted_from
        return {"bps": (moved_after - moved_before) * 8 / seconds if seconds > 0 else 0.0,
                "bytes": moved_after, "counted_bytes": moved_after - moved_before, "counted_s": round(seconds, 3),
                "streams": len(self._threads), "errors": self.errors[:5]}


class LibreSpeed:
    """The ``librespeed`` engine: one test against the LibreSpeed server at ``url``.

    Calling it returns speedtest-cli's ``results.dict()`` shape with a ``probes`` entry and the
    run's details under ``librespeed``. It raises :class:`EngineFailure`: ``no_server`` when no
    ``url`` is set or it does not answer as LibreSpeed, ``no_connectivity`` / ``timeout`` when it
    cannot be reached, ``transfer_failed`` when a direction moved nothing.

    Parameters
    ----------
    url : str or None
        The server's address, ``[collector] librespeed_url`` (e.g. ``http://speed.example:8080/``).
    timeout_s : float
        Socket timeout per request [s].
    duration_s : float, optional
        Each direction's run [s] (default :data:`DURATION_S`).
    download_warmup_s, upload_warmup_s : float, optional
        Not counted at the start of each direction [s] (default :data:`DOWNLOAD_WARMUP_S`,
        :data:`UPLOAD_WARMUP_S`; never more than half of ``duration_s``).
    download_streams, upload_streams : int
        Parallel connections per direction.
    idle_probes : int
        Idle latency probes before the transfers.
    """

    name = "librespeed"

    def __init__(self, url: str | None, timeout_s: float = 10.0, duration_s: float | None = None,
                 download_warmup_s: float | None = None, upload_warmup_s: float | None = None,
                 download_streams: int = DOWNLOAD_STREAMS, upload_streams: int = UPLOAD_STREAMS,
                 idle_probes: int = IDLE_PROBES) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.duration_s = DURATION_S if duration_s is None else duration_s
        self.download_warmup_s = min(self.duration_s / 2, DOWNLOAD_WARMUP_S if download_warmup_s is None
                                     else download_warmup_s)
        self.upload_warmup_s = min(self.duration_s / 2, UPLOAD_WARMUP_S if upload_warmup_s is None
                                   else upload_warmup_s)
        self.download_streams, self.upload_streams = download_streams, upload_streams
        self.idle_probes = idle_probes
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop a running test (the collector's ``max_test_s``)."""
        self._cancelled.set()

    def _check_server(self, urls: dict[str, str]) -> dict[str, str | None]:
        """One GET of ``empty.php`` (a LibreSpeed server there?), then the client's address."""
        try:
            status, _ = _get(urls["ping"], self.timeout_s)
        except (OSError, http.client.HTTPException) as exc:
            error = classify_failure(exc)
            raise EngineFailure(error.kind, f"the LibreSpeed server {self.url} did not answer "
                                f"({urls['ping']}): {error.message}") from exc
        if status != 200:
            raise EngineFailure("no_server", f"{self.url} is not a LibreSpeed server: HTTP {status} for "
                                f"{urls['ping']} ([collector] librespeed_url)")
        try:
            status, body = _get(urls["ip"], self.timeout_s)
        except (OSError, http.client.HTTPException):
            return {"ip": None, "isp": None}  # the address is a nicety, not the test
        return parse_get_ip(body.decode("utf-8", "replace")) if status == 200 else {"ip": None, "isp": None}

    def __call__(self) -> dict:
        if not self.url:
            raise EngineFailure("no_server", "the librespeed engine needs a server: set [collector] librespeed_url "
                                '(e.g. "http://speed.example:8080/") in speedlab.toml')
        try:
            urls = backend_urls(self.url)
        except ValueError as exc:
            raise EngineFailure("no_server", f"[collector] librespeed_url: {exc}") from exc
        started = datetime.now(timezone.utc)
        client = self._check_server(urls)
        idle = probe_idle(urls["ping"], self.idle_probes, min(self.timeout_s, 3.0), self._cancelled)
        results = {}
        loaded = {}
        for direction, streams, warmup_s in (("download", self.download_streams, self.download_warmup_s),
                                             ("upload", self.upload_streams, self.upload_warmup_s)):
            transfer = _Transfer(direction, urls[direction], streams, self.timeout_s)
            with LoadedProbes(urls["ping"], timeout_s=self.timeout_s) as probes:
                results[direction] = transfer.run(self.duration_s, warmup_s, self._cancelled)
            loaded[direction] = probes.rtts_ms
            if self._cancelled.is_set():
                raise EngineFailure("timeout", "the LibreSpeed test was stopped (cancelled)")
            if results[direction]["counted_bytes"] <= 0:
                why = "; ".join(results[direction]["errors"]) or "no data arrived"
                raise EngineFailure("transfer_failed", f"the {direction} from {self.url} moved no data: {why}",
                                    {"librespeed": results})
        answered = [v for v in idle if v is not None]
        netloc = urlsplit(urls["ping"]).netloc
        return {
            "download": results["download"]["bps"], "upload": results["upload"]["bps"],
            "ping": median(answered),
            "server": {"id": None, "name": netloc, "sponsor": "LibreSpeed", "country": None, "host": netloc,
                       "url": self.url},
            "client": client,
            "bytes_received": results["download"]["bytes"], "bytes_sent": results["upload"]["bytes"],
            "timestamp": started.isoformat(), "share": None,
            "probes": probe_output(urls["ping"], idle, loaded["download"], loaded["upload"]),
            "librespeed": {"url": self.url, "duration_s": self.duration_s,
                           "warmup_s": {"download": self.download_warmup_s, "upload": self.upload_warmup_s},
                           **results},
        }
