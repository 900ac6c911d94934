"""speedlab's own latency probes: idle round trips before the transfers, loaded ones during them.

An HTTP engine (speedtest-cli today) calls :func:`probe_idle` once its server is chosen:
``count`` GETs of the server's latency URL (``<folder of the server's url>/latency.txt``) one
after the other on one kept-alive connection, each timed from request to the end of the answer
(the TCP handshake is not timed). Around each transfer it runs :class:`LoadedProbes`: a thread
that sends one probe about every ``interval_s`` on a connection of its own until stopped. A
probe that fails or times out is *lost* (``None``); probes never raise into the test.

The statistics are pure functions apart from the I/O: :func:`median`, :func:`jitter`
(mean absolute difference of consecutive round trips), :func:`interquartile_mean`, and
:func:`summarize`, which gives a :class:`ProbeStats`.
"""

from __future__ import annotations

import http.client
import itertools
import posixpath
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit, urlunsplit

__all__ = ["LoadedProbes", "ProbeStats", "interquartile_mean", "jitter", "latency_url", "median",
           "probe_idle", "summarize"]

#: Idle probes sent before the transfers.
IDLE_PROBES = 10
#: Time between the starts of two probes during a transfer [s].
LOADED_INTERVAL_S = 0.1
#: The longest an idle probe may take before it counts as lost [s].
IDLE_TIMEOUT_S = 3.0
#: Idle probing stops after this many lost probes in a row (the rest count as lost too).
IDLE_GIVE_UP_AFTER = 3


# --------------------------------------------------------------------------- pure statistics

def median(values: Sequence[float]) -> float | None:
    """The median [same unit as ``values``]; ``None`` for no values."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return None
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def jitter(values: Sequence[float]) -> float | None:
    """Mean absolute difference of consecutive values, in the order sent; ``None`` for fewer than two."""
    if len(values) < 2:
        return None
    return sum(abs(b - a) for a, b in itertools.pairwise(values)) / (len(values) - 1)


def interquartile_mean(values: Sequence[float]) -> float | None:
    """Mean of the middle half: the lowest and the highest ``n // 4`` values dropped (Ookla's IQM)."""
    ordered = sorted(values)
    if not ordered:
        return None
    cut = len(ordered) // 4
    middle = ordered[cut:len(ordered) - cut]
    return sum(middle) / len(middle)


@dataclass(frozen=True)
class ProbeStats:
    """What a series of probes measured: ``sent`` and ``lost`` probes, and over the answered
    ones the ``median_ms``, ``low_ms``, ``high_ms``, ``iqm_ms`` and ``jitter_ms`` [ms]
    (``None`` when too few answered)."""

    sent: int
    lost: int
    median_ms: float | None
    low_ms: float | None
    high_ms: float | None
    iqm_ms: float | None
    jitter_ms: float | None

    def to_dict(self) -> dict:
        """Plain JSON data."""
        return asdict(self)


def summarize(rtts_ms: Sequence[float | None]) -> ProbeStats:
    """The statistics of probe round trips [ms] in the order sent (``None``: a lost probe).

    ``jitter_ms`` is taken over the answered probes in order (a lost probe is skipped);
    figures are rounded to the microsecond.
    """
    answered = [float(v) for v in rtts_ms if v is not None]

    def r(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return ProbeStats(sent=len(rtts_ms), lost=len(rtts_ms) - len(answered), median_ms=r(median(answered)),
                      low_ms=r(min(answered, default=None)), high_ms=r(max(answered, default=None)),
                      iqm_ms=r(interquartile_mean(answered)), jitter_ms=r(jitter(answered)))


def latency_url(server_url: str) -> str:
    """The latency URL of a speedtest.net server: ``latency.txt`` beside its ``url``
    (``http://h:8080/speedtest/upload.php`` -> ``http://h:8080/speedtest/latency.txt``)."""
    parts = urlsplit(server_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) server url: {server_url!r}")
    folder = posixpath.dirname(parts.path) if parts.path else ""
    return urlunsplit((parts.scheme, parts.netloc, posixpath.join(folder or "/", "latency.txt"), "", ""))


# --------------------------------------------------------------------------- I/O

class _Prober:
    """One kept-alive connection to a latency URL; :meth:`once` times one GET [ms] or returns ``None``."""

    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        self._cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._netloc, self._path, self._timeout_s = parts.netloc, parts.path or "/", timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self._count = 0

    def once(self) -> float | None:
        """One timed probe [ms]; ``None`` when it failed (the connection is then made anew)."""
        try:
            conn = self._conn
            if conn is None:
                conn = self._cls(self._netloc, timeout=self._timeout_s)
                self._conn = conn
                conn.connect()  # the handshake is not part of the round trip
            self._count += 1
            start = time.perf_counter()
            conn.request("GET", f"{self._path}?x={self._count}", headers={"Cache-Control": "no-cache"})
            response = conn.getresponse()
            response.read()
            elapsed_ms = (time.perf_counter() - start) * 1000.0
            if response.status != 200 or response.will_close:
                self.close()
            return elapsed_ms if response.status == 200 else None
        except (OSError, http.client.HTTPException, ValueError):
            self.close()
            return None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if conn.sock is not None:
                    conn.sock.shutdown(2)  # wakes a probe blocked on this socket in another thread
            except OSError:
                pass
            conn.close()


def probe_idle(url: str, count: int = IDLE_PROBES, timeout_s: float = IDLE_TIMEOUT_S,
               stop: threading.Event | None = None) -> list[float | None]:
    """Round trips [ms] of ``count`` probes of ``url``, one after the other on one kept-alive
    connection (``None``: lost). After :data:`IDLE_GIVE_UP_AFTER` losses in a row, or once
    ``stop`` is set, the remaining probes count as lost without being sent."""
    prober = _Prober(url, timeout_s)
    out: list[float | None] = []
    try:
        while len(out) < count:
            if (stop is not None and stop.is_set()) or (
                    len(out) >= IDLE_GIVE_UP_AFTER and all(v is None for v in out[-IDLE_GIVE_UP_AFTER:])):
                out += [None] * (count - len(out))
                break
            out.append(prober.once())
    finally:
        prober.close()
    return out


class LoadedProbes:
    """Probes of ``url`` about every ``interval_s`` [s] on a connection of their own, in a
    thread, from :meth:`start` (or entering the ``with`` block) to :meth:`stop`.

    ``rtts_ms`` holds the round trips in order (``None``: lost). A probe still in flight when
    the prober stops is aborted and not counted: its answer would no longer be under load.
    ``url`` ``None``: nothing is sent (``rtts_ms`` stays empty).
    """

    def __init__(self, url: str | None, interval_s: float = LOADED_INTERVAL_S, timeout_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self.rtts_ms: list[float | None] = []
        self._prober = _Prober(url or "http://unused/", timeout_s)
        self._url = url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="speedlab-loaded-probes", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            rtt = self._prober.once()
            if self._stop.is_set():
                break  # aborted by stop(), or answered after the transfer ended
            self.rtts_ms.append(rtt)
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - began)))
        self._prober.close()

    def start(self) -> LoadedProbes:
        """Start probing; returns ``self``."""
        if self._url is not None:
            self._thread.start()
        return self

    def stop(self) -> ProbeStats:
        """Stop probing (an in-flight probe is aborted) and return the statistics."""
        self._stop.set()
        self._prober.close()
        if self._thread.is_alive():
            self._thread.join(2.0)
        return summarize(list(self.rtts_ms))

    def __enter__(self) -> LoadedProbes:
        return self.start()

    def __exit__(self, *exc) -> None:
        if not self._stop.is_set():
            self.stop()
