"""Rolling up: read -> :mod:`speedlab.aggregate` -> write, for one period, a backfill, or
whatever the schedule says is due.

Entry points
------------
* :func:`rollup` — one tier and period: the all-hosts summary and one per host, at
  :func:`speedlab.layout.summary_key` in the tier's bucket. Children that are missing (an
  hour of a day, a day of a month, ...) and have ended are rolled up first.
* :func:`backfill` — every period of every tier between two dates, with a progress bar.
* :func:`run_due` — the scheduler's job: what :func:`speedlab.scheduler.plan_due` finds
  missing, stale or marked, finest tier first.
* :func:`speedlab.stale.mark_stale` — for tools that change raw data (``speedlab dedupe``):
  the next ``run-due`` re-aggregates that hour, and with it its day, week, month and year.
* :func:`aggregate` — one period on request (``speedlab aggregate``), as a :class:`PeriodReport`.

Where the parts live: :mod:`speedlab.roller` rolls periods up (and holds :class:`RollupReport`),
:mod:`speedlab.rundue` finds what is due, :mod:`speedlab.stale` keeps the stale marks,
:mod:`speedlab.reader` and :mod:`speedlab.walk` do every read and listing.

How it reads
------------
Hours are read a day at a time: one listing per host and day, then every object of the
due hours in parallel (a bounded pool of ``[aggregate] max_workers``). Coarser periods list
their children's all-hosts summaries (for their ``modified`` times, which the summary
records as provenance) and read them, and each host's, from an in-memory cache when this
run wrote them, else from the store. Bad objects (corrupt JSON, an invalid record, a key
outside the layout) are skipped, counted in ``rejected_records`` and logged with their key;
a store that fails to answer fails the run (:class:`~speedlab.errors.StoreUnavailable`)
before anything is written for the hours concerned, so the next run does them again.

Provenance written into every summary: ``source_objects`` (how many input objects were
listed: raw objects of the hour, or child summaries), ``source_max_modified`` (the newest
input's ``modified`` time, UTC) and ``generated_at``.

How stale marks work
--------------------
:func:`~speedlab.stale.mark_stale` writes ``stale/hour=YYYYMMDDHH/<host>.json`` into the hourly bucket (a
prefix no summary reader lists). ``run-due`` lists ``stale/``, rolls those hours up again,
which makes their day, week, month and year due again ("children re-aggregated"), and
deletes the markers it acted on. Old summaries stay readable meanwhile.
"""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .counting import CountingStore
from .errors import BucketNotFound, LayoutError, SpeedlabError, UnsupportedDate
from .joblog import JobLog
from .layout import HOSTS_PREFIX, validate_host_id
from .periods import SUPPORTED_DATES, TIERS, Period, parse_period, periods_between, previous_period, to_local
from .records import TierSummary
from .roller import TIER_RANK, Roller, RollupReport, utc_now
from .rundue import roll_due
from .scheduler import PlanItem
from .storebase import Store

__all__ = ["PeriodReport", "aggregate", "backfill", "open_session", "parse_any_period", "require_raw_bucket",
           "rollup", "run_due", "run_logged"]

UTC = timezone.utc

def rollup(config, tier: str, period: Period, *, now: datetime | None = None,
           store: Store | None = None) -> RollupReport:
    """Roll up one ``tier`` ``period``: the all-hosts summary and one per host.

    Missing children that have ended are rolled up first. ``report.summaries[(tier,
    period.label)]`` holds the summaries written.

    Raises
    ------
    LayoutError
        If ``period`` is not a ``tier`` period, or has not started at ``now``: a summary of a
        future period (``2099-01-01``) holds nothing and would look newer than every real one.
        A period in progress may be rolled up (the dashboard's "so far"; ``speedlab demo``
        does it); the rollup due at its end replaces that summary.
    StoreUnavailable
        If the store cannot be read or written (nothing half-done is left: run it again).
    """
    if period.tier != tier:
        raise LayoutError(f"period {period.label} is {period.tier}, not {tier}")
    now_utc = utc_now(now)
    if period.start_utc > now_utc:
        now_local = now_utc.astimezone(period.start.tzinfo).isoformat(timespec="seconds")
        raise LayoutError(f"{tier} period {period.iso_label} has not started yet (it starts "
                          f"{period.start.isoformat()}; now is {now_local}): roll up a period "
                          "that has begun")
    roller, log = open_session(config, "aggregator", store, now, require_raw=True)
    return run_logged(roller, log, f"{tier} rollup of {period.label}",
                       {"tier": tier, "period": period.label},
                       lambda: roller.run([PlanItem(period, "requested")]))


def parse_any_period(text: str, tz) -> Period:
    """A period from any label ``parse_period`` understands, whatever its tier
    (``2025122914``, ``2025-12-29``, ``2025W44``, ``2025-12``, ``2025``...).

    Raises
    ------
    LayoutError
        If no tier understands ``text``.
    """
    for tier in TIERS:
        try:
            return parse_period(tier, text, tz)
        except UnsupportedDate:
            raise UnsupportedDate(f"{text!r} is outside the dates speedlab handles "
                                  f"({SUPPORTED_DATES})") from None
        except LayoutError:
            continue
    raise LayoutError(f"{text!r} is not a period: write a date (2025-12-29), a month (2025-12), "
                      "a year (2025), an ISO week (2025W44) or an hour (2025122914)")


def backfill(config, first: str | Period, last: str | Period, *, progress: bool = True,
             now: datetime | None = None, store: Store | None = None, recompute: bool = False) -> RollupReport:
    """Roll up every period of every tier from ``first`` to ``last`` (inclusive), finest first.

    ``first``/``last`` are periods or labels of any tier (``2025-01-01``, ``2025-12``,
    ``2025``). Only periods that lie wholly inside the range and have ended at ``now`` are
    rolled up (existing summaries are replaced); a week, month or year that reaches outside
    the range is left to the next ``scheduler run-due``, which sees its children changed
    (or it missing) and rolls it up then. A tqdm progress bar goes to stderr.

    The work is bounded by the data, not by the range: periods that end before the hour of
    the earliest raw result (found by walking the ``host=/year=/month=/day=/hour=`` folders)
    or after ``now`` are not rolled up. ``report.clamped`` says what was left out and why
    (``None`` when nothing was).

    A period whose summaries were all settled by a backfill from exactly the inputs it has now
    (the raw objects, the summaries it is made from, the settings and speedlab's version:
    :mod:`speedlab.inputs`) is kept as stored, not computed again (``report.inputs_unchanged``
    counts them; hours with bad objects are always rolled up, so that the report names them).
    ``recompute=True`` rolls up every period all the same.
    """
    now_utc = utc_now(now)
    tz = config.timezone
    start = (first if isinstance(first, Period) else parse_any_period(first, tz)).start_utc
    end = (last if isinstance(last, Period) else parse_any_period(last, tz)).end_utc
    if end <= start:
        raise LayoutError(f"backfill range is empty: {first} comes after {last}")
    from tqdm.auto import tqdm
    bar = tqdm(total=0, unit="period", desc="backfill", disable=not progress, dynamic_ncols=True)
    roller, log = open_session(config, "aggregator", store, now_utc, bar, require_raw=True, from_tables=True,
                               recompute=recompute)

    def body():
        earliest = roller.earliest()
        low = max(start, earliest.astimezone(UTC)) if earliest is not None else end
        high = min(end, now_utc)
        items = [] if low >= high else [
            PlanItem(p, "backfill") for tier in TIERS
            for p in periods_between(tier, low, high - timedelta(microseconds=1), tz)
            if start <= p.start_utc and p.end_utc <= high]
        items.sort(key=lambda it: (it.period.end_utc, TIER_RANK[it.period.tier]))
        clamped = _clamp_note(start, end, low, high, earliest, now_utc, tz)
        if clamped is not None:
            roller.report.clamped = clamped
            log.info(clamped["message"], **{k: v for k, v in clamped.items() if k != "message"})
        bar.total = len(items)
        bar.refresh()
        roller.run(items)

    try:
        with _few_collections():
            return run_logged(roller, log, "backfill", {"first": str(first), "last": str(last)}, body)
    finally:
        bar.close()


#: Allocations between two young-generation collections of the cyclic garbage collector during a
#: backfill (Python's default: 700). A backfill allocates millions of short-lived objects (rows,
#: dicts, sketches) beside thousands it keeps; collecting every 700 allocations took ~15 % of a
#: 120-day backfill from the tables here. Its data makes few reference cycles, so little waits.
BACKFILL_GC_THRESHOLD = 100_000


@contextlib.contextmanager
def _few_collections():
    """Collect young garbage every :data:`BACKFILL_GC_THRESHOLD` allocations while the block runs
    (never more often than already set; a threshold of 0, no automatic collection, stays), then
    restore the thresholds as they were."""
    before = gc.get_threshold()
    if before[0]:
        gc.set_threshold(max(before[0], BACKFILL_GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _clamp_note(start: datetime, end: datetime, low: datetime, high: datetime,
                earliest: datetime | None, now: datetime, tz) -> dict | None:
    """What a backfill of ``[start, end)`` left out to stay within ``[low, high)`` (or None)."""
    def show(moment: datetime) -> str:
        return to_local(moment, tz).isoformat(timespec="minutes")
    if earliest is None:
        return {"from": None, "to": None, "message": "backfill: the store holds no raw results, so "
                "there is nothing to roll up"}
    why = []
    if low > start:
        why.append(f"from {show(low)} (the earliest raw result's hour) instead of {show(start)}")
    if high < end:
        why.append(f"up to {show(high)} (now) instead of up to {show(end)}")
    if not why:
        return None
    empty = " (nothing left to roll up)" if low >= high else ""
    return {"from": show(low), "to": show(high),
            "message": f"backfill clamped to the data: {' and '.join(why)}{empty}"}



def run_due(config, now: datetime | None = None, *, store: Store | None = None,
            progress: bool = False) -> RollupReport:
    """The scheduler's job: roll up every period that is due and missing, stale or marked.

    Idempotent: a second call right after the first finds nothing to do. See
    :mod:`speedlab.scheduler` for the rules; ``report.plan`` lists what was found due and why.

    Raises
    ------
    StoreUnavailable
        If the store cannot be listed, read or written; the next call picks up where this
        one stopped.
    """
    now_utc = utc_now(now)
    roller, log = open_session(config, "scheduler", store, now_utc)
    return run_logged(roller, log, "run-due", {"now": now_utc.isoformat()}, lambda: roll_due(roller, log))


# =========================================================================== session

def require_raw_bucket(config, store: Store, log: JobLog) -> None:
    """Refuse to roll up a store without its raw bucket (a mistyped ``--store``), before any
    summary or log line is written: a log folder inside a missing local store would create it."""
    if store.bucket_exists(config.buckets.raw):
        return
    try:
        list(store.list(config.buckets.raw, HOSTS_PREFIX))  # a missing folder or bucket: its own error
        raise BucketNotFound(f"the main bucket {config.buckets.raw!r} does not exist in {store.url}, "
                             "so there is nothing to roll up: check --store/[buckets], or create it "
                             "with `speedlab infra apply`")
    except SpeedlabError as exc:
        root = getattr(store, "root", None)
        if not (root is not None and not root.is_dir() and log.path and root in log.path.parents):
            log.end(f"rollup refused: {exc}", level="error")
        raise


def open_session(config, job: str, store: Store | None, now: datetime | None, progress=None,
                 require_raw: bool = False, from_tables: bool = False, recompute: bool = False
                 ) -> tuple[Roller, JobLog]:
    """A :class:`Roller` over a counting ``store`` (default the configured one) and the job's
    log; with ``require_raw``, refuse a store without its raw bucket first; with
    ``from_tables``, raw months are read from their tables where current and periods whose
    inputs are unchanged kept as stored (a backfill; ``recompute``: every period rolled up)."""
    settings = config.aggregate
    log = JobLog.for_config(config, job)  # refuses first a missing local store holding the state
    if store is None:
        try:
            store = config.open_store()
        except SpeedlabError as exc:  # a missing store folder, with the state kept elsewhere
            log.end(f"rollup refused: {exc}", level="error")
            raise
    if require_raw:
        require_raw_bucket(config, store, log)
    counting = CountingStore(store)
    return Roller(config, counting, log, utc_now(now), settings, progress, from_tables, recompute), log


def _close(roller: Roller, started: float) -> RollupReport:
    report = roller.report
    report.requests = dict(roller.store.counts)
    report.seconds = time.perf_counter() - started
    return report


def run_logged(roller: Roller, log: JobLog, what: str, fields: dict, body) -> RollupReport:
    """Run ``body()`` between the log's start and end lines, then bring the tables in line with
    what it wrote (:meth:`~speedlab.roller.Roller.keep_tables`: a failure there is reported, not
    raised); close the roller; return its report."""
    started = time.perf_counter()
    log.start(f"{what} started", **fields)
    try:
        body()
        roller.keep_tables()
    except BaseException as exc:
        log.end(f"{what} failed: {exc}", level="error", **fields)
        raise
    finally:
        roller.close()
    report = _close(roller, started)
    replaced = f", {len(report.replaced)} unusable summaries rolled up again" if report.replaced else ""
    replaced += "; tables NOT updated (the next run repairs them)" if report.tables_errors else ""
    log.end(f"{what} finished: {report.periods} periods, {len(report.rejected)} bad objects skipped"
            f"{replaced}", periods=report.periods, rejected=len(report.rejected),
            replaced=len(report.replaced), requests=report.requests,
            seconds=round(report.seconds, 3), tables=report.tables_dict(seconds=True), **fields)
    return report


# =========================================================================== one period on request

@dataclass(frozen=True)
class PeriodReport:
    """One period rolled up on request (``speedlab aggregate``, ``POST /api/aggregate``).

    Attributes
    ----------
    mode : str
        The tier.
    summary : TierSummary
        The all-hosts summary, or the host's that was asked for.
    rollup : RollupReport
        What the rollup did.
    """

    mode: str
    summary: TierSummary
    rollup: RollupReport

    def to_dict(self) -> dict:
        """The summary as plain data (an envelope's ``result``)."""
        return self.summary.to_dict()

    def to_text(self) -> str:
        """One line for people."""
        return (f"{self.mode} {self.summary.period} ({self.summary.host_id or 'all hosts'}): "
                f"{self.summary.records_aggregated} result(s); {self.rollup.to_text()}")


def aggregate(config, mode: str, period: str | None = None, host: str | None = None, *,
              now: datetime | None = None, store: Store | None = None) -> PeriodReport:
    """Roll up one period (all hosts and each host) and report the all-hosts summary, or
    ``host``'s (:func:`speedlab.adapter.envelope` gives the seed's response shape).

    ``period`` is a label of ``mode``'s tier (``2025122914``, ``20251229``/``2025-12-29``,
    ``2025W44``, ``202512``/``2025-12``, ``2025``); default (``None``, not ``""``) the previous
    complete period.

    Raises
    ------
    LayoutError
        For an unknown mode or a period label that does not fit it.
    SpeedlabError
        If ``host`` stored nothing in the period.
    """
    if mode not in TIERS:
        raise LayoutError(f"unknown mode {mode!r}: use one of {', '.join(TIERS)}")
    if host is not None:
        validate_host_id(host)
    target = (parse_period(mode, period, config.timezone) if period is not None  # '' is no period
              else previous_period(mode, utc_now(now), config.timezone))
    report = rollup(config, mode, target, now=now, store=store)
    summaries = report.summaries[(mode, target.label)]
    if host is not None and host not in summaries:
        have = ", ".join(h for h in summaries if h) or "none"
        raise SpeedlabError(f"host {host!r} stored nothing in {mode} period {target.label} "
                            f"(hosts with data: {have}); check the host id or pick another period")
    return PeriodReport(mode, summaries[host], report)
