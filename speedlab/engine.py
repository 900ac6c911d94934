"""The speed test engine: run one test with a time limit and turn its output into a record.

* :class:`SpeedtestCli` — the default engine, speedtest-cli's Python API (``speedtest.Speedtest``)
  plus speedlab's own latency probes (:mod:`speedlab.probes`; output key ``probes``);
  an engine is any callable returning speedtest-cli's ``results.dict()`` shape (speeds in bit/s),
  with optional ``name`` and ``cancel()`` attributes;
* :func:`run_engine` runs it in a thread with a wall-clock limit; :func:`measure` runs it and
  always returns a record, ``ok`` or ``failed`` (a failed test is data);
* pure functions: :func:`record_from_output` (engine output -> :class:`SpeedTestResult`),
  :func:`failed_record`, :func:`classify_failure` (exception -> :class:`TestError`).

The collector (:func:`speedlab.collect.collect_once`) stores what :func:`measure` returns.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .errors import EngineFailure, InvalidRecord
from .netinfo import ConnectionInfo, detect_connection
from .periods import UTC, slot_of, to_local
from .probes import IDLE_PROBES, LoadedProbes, latency_url, probe_idle, summarize
from .records import LATENCY_FIELDS, MAX_PING_MS, Client, Server, SpeedTestResult, TestError

__all__ = ["SpeedtestCli", "classify_failure", "failed_record", "measure", "probe_output", "record_from_output",
           "run_engine"]


class _Shutdown:
    """speedtest-cli's shutdown event (it calls the old ``isSet`` name)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def isSet(self) -> bool:  # noqa: N802 - speedtest-cli's spelling
        return self.event.is_set()

    def set(self) -> None:
        self.event.set()


class SpeedtestCli:
    """The default engine: speedtest-cli's Python API (``speedtest.Speedtest``).

    Calling it runs config, server list, best server (among ``servers`` if given), then
    ``idle_probes`` latency probes of that server, download and upload (each with loaded
    probes about every 100 ms), and returns ``results.dict()`` (speeds in bit/s) with a
    ``probes`` entry (:func:`probe_output`). It raises :class:`EngineFailure` (classified)
    when the test cannot run; lost probes never make it fail.

    Parameters
    ----------
    secure : bool
        Use HTTPS to speedtest.net.
    servers : sequence of int
        Restrict to these server ids.
    timeout_s : float
        Socket timeout per request [s].
    idle_probes : int
        Idle latency probes before the transfers (0: no probes at all).
    """

    name = "speedtest-cli"

    def __init__(self, secure: bool = False, servers=(), timeout_s: float = 10.0,
                 idle_probes: int = IDLE_PROBES) -> None:
        self.secure = secure
        self.servers = tuple(servers)
        self.timeout_s = timeout_s
        self.idle_probes = idle_probes
        self._shutdown = _Shutdown()

    def cancel(self) -> None:
        """Ask a running test to stop (used when it overruns ``max_test_s``)."""
        self._shutdown.set()

    def __call__(self) -> dict:
        import speedtest  # imported here: the module is only needed when a real test runs
        try:
            st = speedtest.Speedtest(secure=self.secure, timeout=self.timeout_s,
                                     shutdown_event=self._shutdown)
            st.get_servers(list(self.servers))
            if not st.servers:
                raise EngineFailure("no_server", "the speedtest.net server list was empty or could "
                                    "not be downloaded")
            best = st.get_best_server()
            if float(best.get("latency", 0)) > MAX_PING_MS:
                # speedtest-cli counts an unanswered latency probe as 3600 s
                raise EngineFailure("no_server", f"server {best.get('id')} ({best.get('host')}) did not "
                                    "answer the latency probe")
            try:
                url = latency_url(str(best.get("url", ""))) if self.idle_probes > 0 else None
            except ValueError:
                url = None  # no probes: the latency fields stay null
            idle = probe_idle(url, self.idle_probes, min(self.timeout_s, 3.0), self._shutdown.event) if url else []
            with LoadedProbes(url, timeout_s=self.timeout_s) as download:
                st.download()
            with LoadedProbes(url, timeout_s=self.timeout_s) as upload:
                st.upload()
        except EngineFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - every engine failure becomes a record
            error = classify_failure(exc)
            raise EngineFailure(error.kind, error.message) from exc
        output = st.results.dict()
        if url:
            output["probes"] = probe_output(url, idle, download.rtts_ms, upload.rtts_ms)
        return output


def probe_output(url: str, idle_ms: list[float | None], download_ms: list[float | None],
                 upload_ms: list[float | None]) -> dict:
    """The ``probes`` entry of an engine's output (pure): the figures the record stores
    (:data:`~speedlab.records.LATENCY_FIELDS` and ``jitter_ms``, ``None`` when no probe of
    that phase answered) and each phase's :class:`~speedlab.probes.ProbeStats` and round trips [ms]."""
    phases = {"idle": summarize(idle_ms), "download": summarize(download_ms), "upload": summarize(upload_ms)}
    return {"url": url,
            "latency_idle_ms": phases["idle"].median_ms, "jitter_ms": phases["idle"].jitter_ms,
            "latency_download_ms": phases["download"].median_ms, "latency_upload_ms": phases["upload"].median_ms,
            **{name: {**stats.to_dict(), "rtts_ms": [None if v is None else round(v, 3) for v in rtts]}
               for (name, stats), rtts in zip(phases.items(), (idle_ms, download_ms, upload_ms), strict=True)}}


def _chain(exc: BaseException):
    """``exc``, the exceptions in its args, and its causes: the most specific reason is deep."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend(a for a in getattr(item, "args", ()) if isinstance(a, BaseException))
        reason = getattr(item, "reason", None)
        todo.extend([reason if isinstance(reason, BaseException) else None, item.__cause__, item.__context__])
    return seen


def classify_failure(exc: BaseException) -> TestError:
    """Name why a test failed: the record's :class:`TestError` (pure).

    Kinds: ``http_403`` (and ``http_NNN`` for other HTTP errors), ``timeout``,
    ``no_connectivity`` (connection refused or reset, no route, name not resolved),
    ``config_refused`` (speedtest.net's configuration could not be had or read),
    ``no_server`` (no server matched or answered), ``engine_error`` (anything else).
    """
    if isinstance(exc, EngineFailure):
        return TestError(exc.kind, exc.message)
    chain = _chain(exc)
    names = [type(e).__name__ for e in chain]
    text = "; ".join(dict.fromkeys(f"{type(e).__name__}: {e}".rstrip(": ") for e in chain))
    for e in chain:
        if isinstance(e, urllib.error.HTTPError):
            kind = "http_403" if e.code == 403 else f"http_{e.code}"
            what = "speedtest.net refused the request (HTTP 403)" if e.code == 403 else f"HTTP {e.code}"
            return TestError(kind, f"{what} for {(e.url or '?').split('?')[0]}: {text}")
    if any(isinstance(e, (socket.timeout, TimeoutError)) for e in chain) or "timed out" in text:
        return TestError("timeout", f"the speed test timed out: {text}")
    if any(isinstance(e, (ConnectionError, socket.gaierror)) for e in chain) or any(
            isinstance(e, OSError) and e.errno in (101, 113, 10051, 10065) for e in chain):
        return TestError("no_connectivity", f"no connection to speedtest.net: {text}")
    if "ConfigRetrievalError" in names or "SpeedtestConfigError" in names:
        return TestError("config_refused", f"speedtest.net's configuration could not be used: {text}")
    if any(n in names for n in ("NoMatchedServers", "ServersRetrievalError", "SpeedtestServersError",
                                "SpeedtestBestServerFailure", "SpeedtestMissingBestServer",
                                "InvalidServerIDType")):
        return TestError("no_server", f"no speed test server could be used: {text}")
    if isinstance(exc, urllib.error.URLError):
        return TestError("no_connectivity", f"no connection to speedtest.net: {text}")
    return TestError("engine_error", f"the speed test engine failed: {text}")


def run_engine(engine: Callable[[], dict], max_test_s: float) -> dict:
    """Run ``engine()`` with a wall-clock limit [s]; raise :class:`EngineFailure` on overrun.

    The engine runs in a daemon thread; on overrun its ``cancel()`` (if any) is called and
    the thread is abandoned (it ends with the process).
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["output"] = engine()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, name="speedlab-engine", daemon=True)
    thread.start()
    thread.join(max_test_s)
    if thread.is_alive():
        cancel = getattr(engine, "cancel", None)
        if callable(cancel):
            cancel()
        raise EngineFailure("timeout", f"the speed test did not finish within {max_test_s:g} s "
                            "([collector] max_test_s)")
    if "error" in box:
        raise box["error"]
    return box["output"]


# --------------------------------------------------------------------------- pure: output -> record

def _times(host_id: str, started: datetime, tz: str) -> dict:
    """The record's time fields, to the whole second (naive ``started`` is UTC)."""
    started = (started.astimezone(UTC) if started.tzinfo else started.replace(tzinfo=UTC)).replace(microsecond=0)
    return {"host_id": host_id, "timestamp_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timestamp_local": to_local(started, tz).isoformat(), "slot": slot_of(started, tz).isoformat()}


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, allow_nan=False)) if value is not None else None


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def failed_record(error: TestError, *, host_id: str, engine: str, started: datetime, tz: str,
                  duration_s: float | None = None, connection: ConnectionInfo = ConnectionInfo(),
                  output: dict | None = None) -> SpeedTestResult:
    """A ``failed`` record: no speeds, the error kind and message, what the engine said."""
    return SpeedTestResult(
        engine=engine, status="failed", error=error, download_mbps=None, upload_mbps=None,
        ping_ms=None, connection_type=connection.connection_type, interface=connection.interface,
        duration_s=None if duration_s is None else round(duration_s, 3),
        engine_output=_json_safe(output), **_times(host_id, started, tz))


def record_from_output(output: dict, *, host_id: str, engine: str, started: datetime, tz: str,
                       duration_s: float | None = None,
                       connection: ConnectionInfo = ConnectionInfo()) -> SpeedTestResult:
    """Turn speedtest-cli's ``results.dict()`` into a record (pure).

    ``download``/``upload`` [bit/s] become ``download_mbps``/``upload_mbps`` [Mbit/s]
    (10^6 bit/s, as speedtest.net counts); ``ping`` [ms] is kept (the engine's own figure); the
    ``probes`` entry, if any (:func:`probe_output`; an engine that measures loss adds
    ``packet_loss_pct``), gives ``jitter_ms``, ``packet_loss_pct`` and the
    :data:`~speedlab.records.LATENCY_FIELDS`; the whole output is kept in ``engine_output``. A
    direction that moved no data makes the record ``failed`` (``transfer_failed``); output that
    breaks the schema makes it ``failed`` (``invalid_result``) — either way the engine's numbers
    stay in ``engine_output``.
    """
    common: dict[str, Any] = dict(host_id=host_id, engine=engine, started=started, tz=tz, duration_s=duration_s,
                                  connection=connection, output=output)
    if not isinstance(output, dict):
        return failed_record(TestError("engine_error", f"the engine returned {type(output).__name__}, "
                                       "not a result object"), **{**common, "output": {"returned": repr(output)}})
    try:
        download_bps = float(output["download"])
        upload_bps = float(output["upload"])
        ping_ms = output.get("ping")
        server = output.get("server") or {}
        client = output.get("client") or {}
        if download_bps <= 0 or upload_bps <= 0:
            which = " and ".join(d for d, v in (("download", download_bps), ("upload", upload_bps)) if v <= 0)
            return failed_record(TestError("transfer_failed", f"the {which} moved no data: the server "
                                           "accepted the connection but nothing was transferred"), **common)
        distance = server.get("d")
        probes = output.get("probes") or {}
        if not isinstance(probes, dict):
            raise TypeError(f"the engine's probes are {type(probes).__name__}, not an object")
        latency: dict[str, Any] = {name: None if probes.get(name) is None else round(float(probes[name]), 3)
                   for name in ("jitter_ms", "packet_loss_pct", *LATENCY_FIELDS)}
        record = SpeedTestResult(
            engine=engine, status="ok", error=None,
            download_mbps=round(download_bps / 1e6, 3), upload_mbps=round(upload_bps / 1e6, 3),
            ping_ms=None if ping_ms is None else round(float(ping_ms), 3), **latency,
            server=Server(id=_text(server.get("id")), name=_text(server.get("name")),
                          sponsor=_text(server.get("sponsor")), country=_text(server.get("country")),
                          host=_text(server.get("host")),
                          distance_km=None if distance is None else round(float(distance), 3)),
            client=Client(ip=_text(client.get("ip")), isp=_text(client.get("isp"))),
            connection_type=connection.connection_type, interface=connection.interface,
            bytes_sent=int(output["bytes_sent"]) if output.get("bytes_sent") is not None else None,
            bytes_received=int(output["bytes_received"]) if output.get("bytes_received") is not None else None,
            duration_s=None if duration_s is None else round(duration_s, 3),
            engine_output=_json_safe(output), **_times(host_id, started, tz))
    except (KeyError, TypeError, ValueError, InvalidRecord) as exc:
        return failed_record(TestError("invalid_result", f"the engine's result is unusable: {exc}"), **common)
    return record


def measure(engine: Callable[[], dict], *, host_id: str, started: datetime, tz: str,
            max_test_s: float, detect: Callable[[str | None], ConnectionInfo] = detect_connection) -> SpeedTestResult:
    """Run ``engine`` and return its record, ``ok`` or ``failed`` (never raises for a failed test)."""
    name = getattr(engine, "name", None) or getattr(engine, "__name__", None) or type(engine).__name__
    clock = time.monotonic()
    try:
        output = run_engine(engine, max_test_s)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - a failed test is data
        duration = time.monotonic() - clock
        return failed_record(classify_failure(exc), host_id=host_id, engine=name, started=started, tz=tz,
                             duration_s=duration, connection=_detect(detect, None),
                             output={"exception": type(exc).__name__, "message": str(exc),
                                     **(getattr(exc, "output", None) or {})})
    duration = time.monotonic() - clock
    server_host = (output.get("server") or {}).get("host") if isinstance(output, dict) else None
    return record_from_output(output, host_id=host_id, engine=name, started=started, tz=tz,
                              duration_s=duration, connection=_detect(detect, server_host))


def _detect(detect, host) -> ConnectionInfo:
    try:
        return detect(host)
    except Exception:  # noqa: BLE001 - link detection must not cost a measurement
        return ConnectionInfo()
