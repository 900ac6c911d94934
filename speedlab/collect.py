"""The collector: one speed test per host per 15-minute slot, stored exactly once.

Layers, top to bottom:

* :func:`collect_once` — what ``speedlab collect`` runs: flush the spool, check the slot,
  run the engine, store the record with a conditional write, spool it if the store is down
  (set it aside in ``spool/rejected/`` if the store refuses this one write);
  :func:`flush_spool` (``speedlab collect --flush``) and :func:`store_result` (the same
  write path for records made elsewhere, e.g. the demo's generated data);
* the ``[collector]`` table is :class:`speedlab.settings.CollectorSettings`, ``config.collector``;
* the engine and the record it makes are :mod:`speedlab.engine` (:func:`~speedlab.engine.measure`,
  :class:`~speedlab.engine.SpeedtestCli`, :func:`~speedlab.engine.record_from_output`); which
  engine runs is ``[collector] engine`` (or ``engine_name``), made by :func:`speedlab.engines.make_engine`.

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
    engine = "speedtest-cli"    # or "ookla" (the official Speedtest CLI on PATH), or "librespeed"
    librespeed_url = "http://speed.example:8080/"   # the LibreSpeed server the librespeed engine uses
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .config import Config
from .engine import measure
from .engines import make_engine
from .errors import EngineFailure, SpoolError, StoreError
from .joblog import JobLog
from .layout import raw_key, raw_slot_prefix
from .netinfo import ConnectionInfo, detect_connection
from .periods import slot_of
from .records import SpeedTestResult
from .settings import CollectorSettings
from .spool import FlushReport, Spool, is_refusal
from .storebase import Store

__all__ = ["CollectOutcome", "EngineFailure", "collect_once", "flush_spool", "open_spool", "slot_objects",
           "store_result"]

STATUSES = ("stored", "slot_filled", "spooled", "refused")


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
    settings = settings or config.collector
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

    @property
    def ok(self) -> bool:
        """False when the store refused this result."""
        return self.status != "refused"

    def to_dict(self) -> dict:
        """Plain data for ``--json``."""
        return {"status": self.status, "key": self.key, "message": self.message,
                "flushed": self.flushed, "dropped": self.dropped, "rejected": self.rejected,
                "refused": self.refused, "existing": self.existing, "spool": self.spool,
                "record": self.record.to_dict() if self.record else None}

    def _spool_line(self) -> str:
        extra = [f"{n} {what}" for n, what in ((self.flushed, "spooled result(s) uploaded"),
                                               (self.dropped, "dropped: spool full"),
                                               (self.rejected, "corrupt spool entr(y/ies) set aside"),
                                               (self.refused, "spool entr(y/ies) refused by the store, set "
                                                              "aside")) if n]
        return "spool: " + ", ".join(extra) if extra else ""

    def _spool_trouble(self) -> bool:
        return bool(self.dropped or self.rejected or self.refused)

    def to_text(self) -> str:
        """``status: message`` for people, and what the spool did when nothing went wrong there."""
        line = self._spool_line()
        return f"{self.status}: {self.message}" + (f"\n{line}" if line and not self._spool_trouble() else "")

    def to_warnings(self) -> list[str]:
        """What went wrong in the spool (dropped, set aside), for stderr."""
        line = self._spool_line()
        return [line] if line and self._spool_trouble() else []


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
                **report.to_dict())
    return report


def _holds_slot(spool: Spool, host: str, slot: datetime) -> bool:
    try:
        return spool.holds_slot(host, slot)
    except SpoolError:
        return False


def collect_once(config: Config, *, now: datetime | None = None, engine: Callable[[], dict] | None = None,
                 log: JobLog | None = None, secure: bool | None = None, servers=None,
                 engine_name: str | None = None,
                 detect: Callable[[str | None], ConnectionInfo] = detect_connection) -> CollectOutcome:
    """Run one collector cycle for ``config.host_id`` in the slot holding ``now``.

    1. Upload what the spool holds (oldest first).
    2. If the slot already holds a result (in the store, or waiting in the spool while the
       store is down), stop: ``slot_filled``.
    3. Run the engine (``engine``, else the one ``[collector] engine`` names with the
       ``[collector]`` settings, ``engine_name``, ``secure`` and ``servers`` overriding them); a
       failed test becomes a ``failed`` record whose ``engine`` is the engine's name.
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
    secure, servers, engine_name : optional
        Override ``[collector] secure`` / ``servers`` / ``engine`` (a name of
        :data:`speedlab.engines.ENGINES`).
    detect : callable
        ``detect(server_host) -> ConnectionInfo`` (tests substitute it).

    Raises
    ------
    ConfigError
        For a bad ``[collector]`` table or an unknown ``engine_name``.
    SpoolError
        If the store is down *and* the spool cannot be written: the result is not saved.
    """
    settings = config.collector.with_overrides(secure=secure, servers=list(servers) if servers else None,
                                               engine=engine_name)
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
                                  spool=flush.to_dict())
    if flush.flushed:
        log.info(f"uploaded {flush.flushed} spooled result(s)", **flush.to_dict())

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
    engine = engine or make_engine(settings)
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
