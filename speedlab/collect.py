"""The collector: one speed test per host per 15-minute slot, stored exactly once.

Layers, top to bottom:

* :func:`collect_once` — what ``speedlab collect`` runs: flush the spool, check the slot,
  run the engine, store the record with a conditional write, spool it if the store is down
  (set it aside in ``spool/rejected/`` if the store refuses this one write);
  :func:`flush_spool` (``speedlab collect --flush``) and :func:`store_result` (the same
  write path for records made elsewhere, e.g. the demo's generated data);
* pure functions: :func:`record_from_output` (engine output -> :class:`SpeedTestResult`),
  :func:`failed_record`, :func:`classify_failure` (exception -> :class:`TestError`),
  :meth:`CollectorSettings.from_config` (the ``[collector]`` table);
* the engine: any callable returning speedtest-cli's ``results.dict()`` shape; the default
  :class:`SpeedtestCli` drives ``speedtest.Speedtest``.

**Exactly once.** Before testing, the slot's folder is listed: any ``.json`` there
(``test.json`` or the original collector's ``speed_data_ookla_…json``) means the slot is
filled, and the run stops with status ``slot_filled`` (exit 0) without testing. The write
itself is ``put_if_absent`` (``If-None-Match: *`` on S3, an exclusive hard link locally), so
of several racing runs exactly one stores; the others report ``slot_filled`` (their
measurement is written to the job log, not to the store).

``[collector]`` settings (all optional)::

    [collector]
    secure = false              # HTTPS to speedtest.net (speedtest-cli's --secure)
    servers = [12345]           # only these server ids (best of them by latency)
    timeout_s = 10              # per-request socket timeout [s]
    max_test_s = 180            # the whole test's limit [s]; beyond it: a 'timeout' record
    spool_max_entries = 2880    # results kept while the store is down (30 days)
    start_offset_minutes = 4    # where in each slot 'speedlab schedule' starts the run
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from .config import Config
from .errors import ConfigError, EngineFailure, InvalidRecord, SpoolError, StoreError
from .joblog import JobLog
from .layout import raw_key, raw_slot_prefix
from .netinfo import ConnectionInfo, detect_connection
from .periods import UTC, slot_of, to_local
from .records import MAX_PING_MS, Client, Server, SpeedTestResult, TestError
from .spool import DEFAULT_MAX_ENTRIES, FlushReport, Spool, is_refusal
from .store import Store

__all__ = ["CollectOutcome", "CollectorSettings", "EngineFailure", "SpeedtestCli",
           "classify_failure", "collect_once", "failed_record", "flush_spool", "open_spool",
           "record_from_output", "run_engine", "slot_objects", "store_result",
           "measure"]

STATUSES = ("stored", "slot_filled", "spooled", "refused")


# --------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class CollectorSettings:
    """The ``[collector]`` table, checked. See the module docstring for each key."""

    secure: bool = False
    servers: tuple[int, ...] = ()
    timeout_s: float = 10.0
    max_test_s: float = 180.0
    spool_max_entries: int = DEFAULT_MAX_ENTRIES
    start_offset_minutes: int | None = None

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> CollectorSettings:
        """Read ``config``'s ``[collector]`` table; ``overrides`` (not ``None``) win.

        Raises
        ------
        ConfigError
            For unknown keys or values of the wrong type or range.
        """
        table = config.section("collector")
        table.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"[collector]: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "secure" in table and not isinstance(table["secure"], bool):
            raise ConfigError(f"[collector] secure = {table['secure']!r} must be true or false")
        servers = table.get("servers", ())
        if isinstance(servers, (int, str)):
            servers = [servers]
        try:
            ids = tuple(int(s) for s in servers if not isinstance(s, bool))
            if len(ids) != len(servers) or any(i <= 0 for i in ids):
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"[collector] servers = {servers!r} must be a list of speedtest.net "
                              "server ids (positive whole numbers), e.g. [12345]") from None
        table["servers"] = ids
        for name, low in (("timeout_s", 0.1), ("max_test_s", 1.0)):
            value = table.get(name, getattr(cls, name))
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
                raise ConfigError(f"[collector] {name} = {value!r} must be a number of at least {low:g} [s]")
        for name, low, high in (("spool_max_entries", 1, 10**7), ("start_offset_minutes", 0, 14)):
            value = table.get(name, getattr(cls, name))
            if value is None and name == "start_offset_minutes":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"[collector] {name} = {value!r} must be a whole number from {low} to {high}")
        return cls(**table)


# --------------------------------------------------------------------------- the engine

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

    Calling it runs config, server list, best server (among ``servers`` if given),
    download and upload, and returns ``results.dict()`` (speeds in bit/s). It raises
    :class:`EngineFailure` (classified) when the test cannot run.

    Parameters
    ----------
    secure : bool
        Use HTTPS to speedtest.net.
    servers : sequence of int
        Restrict to these server ids.
    timeout_s : float
        Socket timeout per request [s].
    """

    name = "speedtest-cli"

    def __init__(self, secure: bool = False, servers=(), timeout_s: float = 10.0) -> None:
        self.secure = secure
        self.servers = tuple(servers)
        self.timeout_s = timeout_s
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
            st.download()
            st.upload()
        except EngineFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - every engine failure becomes a record
            error = classify_failure(exc)
            raise EngineFailure(error.kind, error.message) from exc
        return st.results.dict()


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
    (10^6 bit/s, as speedtest.net counts); ``ping`` [ms] is kept; the whole output is kept in
    ``engine_output``. A direction that moved no data makes the record ``failed``
    (``transfer_failed``); output that breaks the schema makes it ``failed``
    (``invalid_result``) — either way the engine's numbers stay in ``engine_output``.
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
        record = SpeedTestResult(
            engine=engine, status="ok", error=None,
            download_mbps=round(download_bps / 1e6, 3), upload_mbps=round(upload_bps / 1e6, 3),
            ping_ms=None if ping_ms is None else round(float(ping_ms), 3),
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


# --------------------------------------------------------------------------- the store side (I/O)

def slot_objects(store: Store, bucket: str, host_id: str, slot_start: datetime, tz: str) -> list[str]:
    """Keys of the ``.json`` objects already in the slot (speedlab's or the original collector's)."""
    prefix = raw_slot_prefix(host_id, slot_start, tz)
    return [info.key for info in store.list(bucket, prefix)
            if info.key.endswith(".json") and "/" not in info.key[len(prefix):]]


def _write(store: Store, bucket: str, tz: str, record: SpeedTestResult, check_slot: bool = True,
           now: datetime | None = None) -> tuple[bool, str]:
    """Validate ``record`` (not dated after ``now``, when given) and write it to its slot unless
    the slot is filled: ``(stored, key)``."""
    record.validate(now=now)
    text = record.to_json()
    SpeedTestResult.from_json(text, source="the record about to be stored")  # what we write reads back
    key = raw_key(record.host_id, record.slot_start, tz)
    if check_slot and slot_objects(store, bucket, record.host_id, record.slot_start, tz):
        return False, key
    return store.put_if_absent(bucket, key, text.encode("utf-8")), key


def open_spool(config: Config, settings: CollectorSettings | None = None) -> Spool:
    """The spool in ``config.state_path / "spool"``, bounded by ``[collector] spool_max_entries``."""
    settings = settings or CollectorSettings.from_config(config)
    return Spool(config.state_path / "spool", settings.spool_max_entries)


@dataclass
class CollectOutcome:
    """What one collector run did.

    Attributes
    ----------
    status : str
        ``stored`` (the record is in the store), ``slot_filled`` (the slot already held a
        result: nothing written), ``spooled`` (store unreachable: the record waits in the
        spool) or ``refused`` (the store refused this write, e.g. access denied to its key:
        the record is set aside in ``spool/rejected/`` and not retried).
    record : SpeedTestResult or None
        The measurement (``None`` when the slot was found filled before testing).
    key : str
        The slot's key (``host=…/…/minute=MM/test.json``).
    flushed, dropped, rejected, refused : int
        Spool entries uploaded before the test, dropped for room, set aside as corrupt, set
        aside because the store refused them.
    existing : list of str
        Keys found in the slot when it was already filled.
    message : str
        One line for people.
    """

    status: str
    record: SpeedTestResult | None
    key: str
    flushed: int = 0
    dropped: int = 0
    rejected: int = 0
    refused: int = 0
    existing: list[str] = field(default_factory=list)
    message: str = ""
    spool: dict | None = None

    def as_dict(self) -> dict:
        """Plain data for ``--json``."""
        return {"status": self.status, "key": self.key, "message": self.message,
                "flushed": self.flushed, "dropped": self.dropped, "rejected": self.rejected,
                "refused": self.refused, "existing": self.existing, "spool": self.spool,
                "record": self.record.to_dict() if self.record else None}


def store_result(config: Config, record: SpeedTestResult, *, store: Store | None = None,
                 check_slot: bool = True) -> CollectOutcome:
    """Write an already-made ``record`` through the collector's validation and conditional write.

    Parameters
    ----------
    config : Config
        Bucket names and time zone (and the store, unless ``store`` is given).
    record : SpeedTestResult
        Goes to ``raw_key(record.host_id, record.slot_start)``.
    store : Store, optional
        Reuse an open store (writing many records).
    check_slot : bool
        Also treat the original collector's files in the slot as "filled" (one listing per
        write).

    Returns
    -------
    CollectOutcome
        ``stored`` or ``slot_filled``.

    Raises
    ------
    InvalidRecord
        If the record does not meet the schema.
    StoreError
        If the store cannot be reached (this function does not spool).
    """
    store = store or config.open_store()
    stored, key = _write(store, config.buckets.raw, config.timezone, record, check_slot)
    return CollectOutcome("stored" if stored else "slot_filled", record, key,
                          message=f"stored {key}" if stored else f"slot already filled: {key}")


def flush_spool(config: Config, *, store: Store | None = None, log: JobLog | None = None) -> FlushReport:
    """Upload the spool, oldest first, without testing (``speedlab collect --flush``)."""
    own_log = log is None
    log = log or JobLog.for_config(config, "collector")
    if own_log:
        log.start("spool flush started")
    spool = open_spool(config)
    try:
        store = store or config.open_store()
    except StoreError as exc:
        report = FlushReport(remaining=len(spool), error=str(exc))
    else:
        report = spool.flush(lambda record: _write(store, config.buckets.raw, config.timezone, record)[0], log)
    if own_log:
        level = "warning" if report.error or report.rejected or report.refused else "info"
        log.end(f"spool flush: {len(report.uploaded)} uploaded, {len(report.already_filled)} already "
                f"filled, {len(report.rejected)} rejected, {len(report.refused)} refused by the store, "
                f"{report.remaining} waiting", level=level,
                **report.as_dict())
    return report


def _holds_slot(spool: Spool, host: str, slot: datetime) -> bool:
    try:
        return spool.holds_slot(host, slot)
    except SpoolError:
        return False


def collect_once(config: Config, *, now: datetime | None = None, engine: Callable[[], dict] | None = None,
                 log: JobLog | None = None, secure: bool | None = None, servers=None,
                 detect: Callable[[str | None], ConnectionInfo] = detect_connection) -> CollectOutcome:
    """Run one collector cycle for ``config.host_id`` in the slot holding ``now``.

    1. Upload what the spool holds (oldest first).
    2. If the slot already holds a result (in the store, or waiting in the spool while the
       store is down), stop: ``slot_filled``.
    3. Run the engine (``engine`` or speedtest-cli with ``[collector]`` settings, ``secure``
       and ``servers`` overriding them); a failed test becomes a ``failed`` record.
    4. Write it with a conditional put: ``stored``, or ``slot_filled`` if another run won.
       If the store cannot be reached, write it to the spool (fsynced): ``spooled``. If the
       store refuses this write (:func:`speedlab.spool.is_refusal`), set it aside in
       ``spool/rejected/``: ``refused``. Spool entries the store refuses in step 1 are set
       aside the same way and do not stop the run.

    Parameters
    ----------
    config : Config
    now : datetime, optional
        The run's time (aware); default the clock. Its slot is the record's slot.
    engine : callable, optional
        ``engine() -> dict`` in speedtest-cli's ``results.dict()`` shape (speeds in bit/s),
        raising on failure; optional ``name`` and ``cancel()`` attributes.
    log : JobLog, optional
        Default: the collector's job log beside the store.
    secure, servers : optional
        Override ``[collector] secure`` / ``servers``.
    detect : callable
        ``detect(server_host) -> ConnectionInfo`` (tests substitute it).

    Raises
    ------
    ConfigError
        For a bad ``[collector]`` table.
    SpoolError
        If the store is down *and* the spool cannot be written: the result is not saved.
    """
    settings = CollectorSettings.from_config(config, secure=secure,
                                             servers=list(servers) if servers else None)
    log = log or JobLog.for_config(config, "collector")
    started = now or datetime.now(timezone.utc)
    tz, host, bucket = config.timezone, config.host_id, config.buckets.raw
    slot = slot_of(started, tz)
    key = raw_key(host, slot, tz)
    log.start("collector run started", slot=slot.isoformat(), key=key)
    spool = open_spool(config, settings)
    store: Store | None = None
    flush = FlushReport()
    try:
        store = config.open_store()
    except StoreError as exc:
        flush.error = str(exc)
    try:
        if store is not None:
            flush = spool.flush(lambda record: _write(store, bucket, tz, record, now=started)[0], log)
        else:
            flush.remaining = len(spool)
    except SpoolError as exc:  # an unreadable spool must not stop today's measurement
        log.warning(f"cannot read the spool, testing anyway: {exc}")
    counts: dict[str, Any] = dict(flushed=flush.flushed, rejected=len(flush.rejected), refused=len(flush.refused),
                                  spool=flush.as_dict())
    if flush.flushed:
        log.info(f"uploaded {flush.flushed} spooled result(s)", **flush.as_dict())

    def done(outcome: CollectOutcome, level: str = "info") -> CollectOutcome:
        rec = outcome.record
        log.end(outcome.message, level=level, status=outcome.status, key=outcome.key,
                test_status=rec.status if rec else None, error=rec.error.kind if rec and rec.error else None,
                download_mbps=rec.download_mbps if rec else None, upload_mbps=rec.upload_mbps if rec else None,
                flushed=outcome.flushed, dropped=outcome.dropped, rejected=outcome.rejected,
                refused=outcome.refused)
        return outcome

    # 2. the slot guard: can we tell before testing?
    existing: list[str] | None = None
    refusal: StoreError | None = None  # the store refuses this host's slot (not an outage)
    if store is not None and flush.error is None:
        try:
            existing = slot_objects(store, bucket, host, slot, tz)
        except StoreError as exc:
            if is_refusal(exc):
                refusal = exc
            else:
                flush.error = str(exc)
    if existing:
        return done(CollectOutcome("slot_filled", None, key, existing=existing, **counts,
                                   message=f"slot already filled ({', '.join(k.rsplit('/', 1)[1] for k in existing)}): "
                                           "no test run"))
    if existing is None and _holds_slot(spool, host, slot):
        return done(CollectOutcome("slot_filled", None, key, **counts,
                                   message="slot already filled by a result waiting in the spool: no test run"))

    # 3. measure
    engine = engine or SpeedtestCli(settings.secure, settings.servers, settings.timeout_s)
    record = measure(engine, host_id=host, started=started, tz=tz, max_test_s=settings.max_test_s,
                     detect=detect)
    if record.error is not None:  # a failed test
        log.warning(f"speed test failed ({record.error.kind}): {record.error.message}")

    # 4. write, or spool
    if store is not None and flush.error is None and refusal is None:
        try:
            stored, key = _write(store, bucket, tz, record, check_slot=False)
        except StoreError as exc:
            if is_refusal(exc):
                refusal = exc
            else:
                flush.error = str(exc)
        else:
            if stored:
                what = (f"{record.download_mbps:g}/{record.upload_mbps:g} Mbit/s" if record.error is None
                        else f"failed test ({record.error.kind})")
                return done(CollectOutcome("stored", record, key, **counts, message=f"stored {what} at {key}"))
            log.warning("another run filled the slot while this one was testing; this measurement is "
                        "not stored", record=record.to_dict())
            return done(CollectOutcome("slot_filled", record, key, existing=[key], **counts,
                                       message="slot already filled by a concurrent run: measurement not stored"),
                        level="warning")
    if refusal is not None:
        try:
            path = spool.set_aside(record, str(refusal))
        except SpoolError as exc:
            log.end(f"the store refused the result ({refusal}) and it cannot be set aside: result NOT "
                    f"saved ({exc})", level="error", status="lost", key=key, record=record.to_dict())
            raise
        return done(CollectOutcome("refused", record, key, **counts,
                                   message=f"the store refused this result ({refusal}); it is kept in {path}, "
                                           "not retried: fix the permission, then move it back into the spool"),
                    level="error")
    try:
        path, dropped = spool.add(record)
    except SpoolError as exc:
        log.end(f"store unreachable ({flush.error}) and the spool cannot be written: result NOT saved "
                f"({exc})", level="error", status="lost", key=key, record=record.to_dict())
        raise
    for name in dropped:
        log.warning(f"spool full ({spool.max_entries} entries): dropped the oldest result {name}",
                    dropped_log=str(spool.dropped_log))
    counts["dropped"] = len(dropped)
    return done(CollectOutcome("spooled", record, key, **counts,
                               message=f"store unreachable ({flush.error}); result kept in {path}"),
                level="warning")
