"""The dashboard's one data function: :func:`rows` for a mode, a number of periods and a host.

The notebook, the CLI (``speedlab query``) and any later HTTP API call :func:`rows`, which
returns the original dashboard API's rows, oldest first::

    {"date_ist": "2025-10-27", "date_ist_str": "2025-10-27 to 2025-11-02",
     "download_avg": 185.23, "upload_avg": 95.67, "ping_avg": 12.34, "days": 7,
     "connection_type": "Ethernet, Wi-Fi 5GHz", "below_expected": false, ...}

plus what the charts and the table need (see :data:`speedlab.rowbuild.ROW_FIELDS`). Every period of
the window
has a row. The period in progress is live: its row holds the figures so far, merged exactly
from the finer stored summaries and the raw results of the hour(s) not rolled up yet
(:func:`speedlab.live.live_summary`; coverage counts the slots begun), with ``status``
``partial``, ``complete`` false and ``source`` ``live``; a finished period whose rollup is not
due yet is computed the same way (``source`` ``live``). A period without data is a row whose
values are ``null`` and whose ``status`` says why (``missing``: no summary or no test;
``pending``: the period has not ended and has no data so far; ``failed``: only failed tests;
``unreadable``: the stored object is corrupt, with the reason in ``error``). Nothing is ever
reported as a zero speed. In minute mode the slot in progress shows the results it has.

Modes and windows (``days`` keeps the original meaning):

==========  ===========================  ================================================
mode        source                       window
==========  ===========================  ================================================
minute      raw results (15-min slots)   the last ``days`` x 96 slots, ending with the current slot
hourly      hourly summaries             the last ``days`` x 24 hours, ending with the current hour
daily       daily summaries              ``days`` calendar days, ending today
weekly      weekly summaries             ``days`` ISO weeks, ending this week
monthly     monthly summaries            ``days`` months, ending this month
yearly      yearly summaries             ``days`` years, ending this year
==========  ===========================  ================================================

Layers: window functions and row transforms are pure (no clock, no I/O) and live in
:mod:`speedlab.rowbuild` with the modes and limits; ``_read_*`` here read through one
:class:`~speedlab.rowsource.ViewSource` per call (the Parquet tables, one GET per partition;
the original objects only for partitions without a table; the raw tail), in parallel on a
bounded pool; :func:`get_rows` puts them
together behind an in-memory :class:`~speedlab.cache.DataCache` (keys
``{data_type}_{host_id}_{mode}_{days}``, 120 s TTL).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .cache import DataCache, cache_for, cache_key
from .config import Config, load_config
from .errors import InvalidRecord, QueryError  # QueryError importable from here too, as before errors.py held it
from .joblog import JobLog
from .layout import parse_raw_key
from .live import live_summary
from .periods import CHILD_TIER, UTC, Period, get_zone, period_of
from .reader import MAX_WORKERS, list_hosts
from .records import slot_preference
from .rowbuild import (
    ALL_HOSTS,
    ROW_SUMMARY_FIELDS,
    check_query,
    heatmap_cells,
    minute_row,
    slot_window,
    summary_periods,
    summary_row,
)
from .rowsource import ViewSource
from .settings import HEATMAP_DAYS
from .storebase import Store

__all__ = ["QueryError", "RowsAnswer", "get_rows", "heatmap", "rows"]

# ============================================================================ reads

def _plan(config: Config, host: str) -> tuple[float | None, float | None]:
    plan = config.plan_for(None if host == ALL_HOSTS else host)
    return plan.download_mbps, plan.upload_mbps


def _hosts(store: Store, config: Config, cache: DataCache, force_refresh: bool) -> list[str]:
    hosts, _ = cache.get_or_load("hosts", lambda: list_hosts(store, config.buckets), force_refresh)
    return hosts


def _live(source: ViewSource, config: Config, period: Period, log: JobLog | None) -> dict | None:
    """The figures so far of ``period`` (:func:`speedlab.live.live_summary`), ``None`` if none."""
    source.live_from = period.start
    try:
        return live_summary(period, source.host_id, source.now, stored=source.stored, results=source.results_of,
                            plan_for=config.plan_for, fraction=config.below_expected_fraction,
                            timezone=config.timezone, settings=config.aggregate,
                            rolled_up_before=source.settled, unusable=source.unusable)
    except InvalidRecord as exc:  # a stored child that cannot be merged: no figures so far
        if log:
            log.warning(f"no figures so far for {period.label}: {exc}")
        return None


def _read_summary_rows(store: Store, config: Config, mode: str, periods: list[Period], host: str,
                       now: datetime, n_hosts: Callable[[], int], hosts: Callable[[], list[str]],
                       max_workers: int, log: JobLog | None) -> list[dict]:
    source = ViewSource(store, config, None if host == ALL_HOSTS else host, now, hosts=hosts,
                        max_workers=max_workers, log=log)
    finished = [p for p in periods if p.end_utc <= now]  # a period in progress has no summary yet
    tasks: list[Callable[[], object]] = []
    if periods and periods[-1].end_utc > now:  # the period in progress: its finer tables at once
        # the raw tail first: its listings wait for the host list, the longest chain of requests
        if host == ALL_HOSTS:
            tasks.append(hosts)
        hour = period_of("hourly", now, source.zone)
        tasks.append(lambda: source.load_raw(hour, hour))
        parent = mode   # each finer tier from the start of the period above it that is in progress
        while parent in CHILD_TIER:
            tier = CHILD_TIER[parent]
            first = period_of(tier, period_of(parent, now, source.zone).start, source.zone)
            tasks.append(functools.partial(source.load_tables, tier, first, period_of(tier, now, source.zone)))
            parent = tier
    plan = _plan(config, host)
    out: dict[str, dict] = {}
    live_periods: list[Period] = []
    hosts_count = 1

    def finished_rows() -> None:
        """The rows of stored periods, made while the period in progress is still being read."""
        nonlocal hosts_count
        source.load_summaries(mode, finished, ROW_SUMMARY_FIELDS)  # only the fields of a row decoded
        found = {p.label: summary for p in periods
                 if (summary := source.summary(mode, p.label, ROW_SUMMARY_FIELDS)) is not None}
        if any(p.label not in found and p.end <= now for p in periods):
            hosts_count = max(1, n_hosts())  # only a missing period needs the host count
        for period in periods:
            error = source.error(period)
            summary = found.get(period.label)
            if error is None and (period.end_utc > now or (summary is None and not source.settled(period))):
                live_periods.append(period)
                continue
            out[period.label] = summary_row(mode, period, summary, host=host, now=now, plan=plan,
                                            fraction=config.below_expected_fraction, n_hosts=hosts_count,
                                            error=error)
    source.prefetch(tasks, meanwhile=finished_rows)
    for period in live_periods:
        out[period.label] = summary_row(mode, period, _live(source, config, period, log), host=host, now=now,
                                        plan=plan, fraction=config.below_expected_fraction, n_hosts=hosts_count,
                                        error=None, live=True)
    return [out[p.label] for p in periods]


def _read_minute_rows(store: Store, config: Config, slots: list[datetime], host: str,
                      hosts: Callable[[], list[str]], now: datetime, max_workers: int,
                      log: JobLog | None) -> list[dict]:
    source = ViewSource(store, config, None if host == ALL_HOSTS else host, now, hosts=hosts,
                        max_workers=max_workers, log=log)
    first_hour, last_hour = (period_of("hourly", slots[i], source.zone) for i in (0, -1))
    source.prefetch([hosts, lambda: source.load_raw(first_hour, last_hour)] if host == ALL_HOSTS
                    else [lambda: source.load_raw(first_hour, last_hour)])  # hosts first: the listings need them
    first, last = slots[0].replace(tzinfo=None), slots[-1].replace(tzinfo=None)
    by_slot: dict[datetime, dict[str, Any]] = {}  # results, rejected, duplicates

    def cell_of(slot: datetime) -> dict[str, Any] | None:
        if not first <= slot <= last:
            return None
        return by_slot.setdefault(slot, {"results": {}, "rejected": [], "duplicates": 0})
    for key, reason in sorted(source.rejected):
        cell = cell_of(parse_raw_key(key).slot_local)
        if cell is not None:
            cell["rejected"].append(reason)
    for key, record in sorted(source.results.items()):
        # a result read is where its key says: its slot is the key's (reader.parse_result), cheaper to take
        cell = cell_of(record.slot_start.replace(tzinfo=None))
        if cell is None:
            continue
        # one result per host and slot, chosen as the rollup chooses (records.slot_preference)
        results = cell["results"]
        previous = results.get(record.host_id)
        if previous is not None:
            cell["duplicates"] += 1
        if previous is None or slot_preference(key, record) < previous[0]:
            results[record.host_id] = (slot_preference(key, record), record)
    plan = _plan(config, host)
    n_hosts = len(hosts())
    out = []
    for slot in slots:
        cell = by_slot.get(slot.replace(tzinfo=None), {"results": {}, "rejected": [], "duplicates": 0})
        out.append(minute_row(slot, [r for _, r in cell["results"].values()], host=host, now=now, plan=plan,
                              fraction=config.below_expected_fraction, n_hosts=n_hosts,
                              rejected=cell["rejected"], duplicates=cell["duplicates"]))
    return out


@dataclass
class RowsAnswer:
    """What :func:`get_rows` returns: the rows and how they were obtained."""

    rows: list[dict]
    from_cache: bool
    elapsed_s: float
    key: str = ""
    notes: list[str] = field(default_factory=list)


def _resolve(store: Store | None, config: Config | None) -> tuple[Store, Config]:
    config = config if config is not None else load_config()
    return (store if store is not None else config.open_store()), config


def get_rows(mode: str, days: int, host: str = ALL_HOSTS, *, store: Store | None = None,
             config: Config | None = None, force_refresh: bool = False, now: datetime | None = None,
             max_workers: int = MAX_WORKERS, log: JobLog | None = None) -> RowsAnswer:
    """Like :func:`rows`, but also say whether the cache answered and how long it took."""
    started = time.perf_counter()
    mode, days, host = check_query(mode, days, host)
    store, config = _resolve(store, config)
    cache = cache_for(store, config, now)
    moment = now if now is not None else datetime.now(UTC)
    zone = get_zone(config.timezone)

    def hosts() -> list[str]:
        return _hosts(store, config, cache, force_refresh) if host == ALL_HOSTS else [host]

    def load() -> list[dict]:
        if mode == "minute":
            return _read_minute_rows(store, config, slot_window(days, moment, zone), host, hosts,
                                     moment, max_workers, log)
        return _read_summary_rows(store, config, mode, summary_periods(mode, days, moment, zone),
                                  host, moment, lambda: len(hosts()), hosts, max_workers, log)

    key = cache_key(mode, host, mode, days)
    value, hit = cache.get_or_load(key, load, force_refresh, host)
    return RowsAnswer(value, hit, time.perf_counter() - started, key)


def rows(mode: str, days: int, host: str = ALL_HOSTS, *, store: Store | None = None,
         config: Config | None = None, force_refresh: bool = False, now: datetime | None = None,
         max_workers: int = MAX_WORKERS, log: JobLog | None = None) -> list[dict]:
    """The dashboard's rows for ``mode``, ``days`` periods and ``host``, oldest first.

    Parameters
    ----------
    mode : str
        ``minute`` (raw 15-minute results), ``hourly``, ``daily``, ``weekly``, ``monthly`` or
        ``yearly``.
    days : int
        How many periods, ending with the current one: days for minute/hourly/daily, weeks,
        months or years for the coarser modes (see the module's table).
    host : str
        A host id, or ``all`` for the all-hosts summaries (minute mode: every host's results).
    store, config
        Where to read (default: the configured store) and the configuration (time zone,
        buckets, plans; default :func:`~speedlab.config.load_config`).
    force_refresh : bool
        Read the store even if the cache holds fresh rows (and refresh the cache).
    now : datetime, optional
        The current time (aware); default the clock. A pinned ``now`` gets its own cache.
    max_workers : int
        Parallel store reads at most.
    log : JobLog, optional
        Where unreadable objects are reported (they are also counted in the rows).

    Returns
    -------
    list of dict
        One row per period with the keys of :data:`~speedlab.rowbuild.ROW_FIELDS`; periods without data have
        ``null`` values and a ``status`` other than ``ok``.

    Raises
    ------
    QueryError
        For a bad mode, number of periods or host.
    StoreUnavailable
        If the store cannot be reached at all.
    """
    return get_rows(mode, days, host, store=store, config=config, force_refresh=force_refresh,
                    now=now, max_workers=max_workers, log=log).rows


def heatmap(days: int = HEATMAP_DAYS, host: str = ALL_HOSTS, *, store: Store | None = None,
            config: Config | None = None, force_refresh: bool = False, now: datetime | None = None,
            max_workers: int = MAX_WORKERS, log: JobLog | None = None) -> list[dict]:
    """Hour-of-day x day-of-week cells for the last ``days`` days of hourly summaries.

    Answers "what time of day has the best speeds"; see :func:`heatmap_cells`.
    """
    return heatmap_cells(rows("hourly", days, host, store=store, config=config,
                              force_refresh=force_refresh, now=now, max_workers=max_workers, log=log))

