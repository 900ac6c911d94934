"""The dashboard's one data function: :func:`rows` for a mode, a number of periods and a host.

The notebook, the CLI (``speedlab query``) and any later HTTP API call :func:`rows`, which
returns the original dashboard API's rows, oldest first::

    {"date_ist": "2025-10-27", "date_ist_str": "2025-10-27 to 2025-11-02",
     "download_avg": 185.23, "upload_avg": 95.67, "ping_avg": 12.34, "days": 7,
     "connection_type": "Ethernet, Wi-Fi 5GHz", "below_expected": false, ...}

plus what the charts and the table need (see :data:`ROW_FIELDS`). Every period of the window
has a row: a period without data is a row whose values are ``null`` and whose ``status`` says
why (``missing``: no summary or no test; ``pending``: the period has not ended and has no
summary yet; ``failed``: only failed tests; ``unreadable``: the stored object is corrupt, with
the reason in ``error``). Nothing is ever reported as a zero speed.

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

Layers: window functions and row transforms are pure (no clock, no I/O); ``_read_*`` do the
store reads (in parallel on a bounded pool); :func:`get_rows` puts them together behind an
in-memory :class:`DataCache` (keys ``{data_type}_{host_id}_{mode}_{days}``, 120 s TTL).
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .config import Config, load_config
from .errors import InvalidHostId, InvalidRecord, ObjectNotFound, QueryError, UnsupportedDate
from .joblog import JobLog
from .layout import summary_key, validate_host_id
from .periods import (
    SLOT,
    UTC,
    WEEKDAYS,
    Period,
    get_zone,
    parse_timestamp,
    period_of,
    periods_between,
    slot_of,
    to_local,
)
from .reader import (
    MAX_WORKERS,
    RawObject,
    fetch_many,
    list_hosts,
    list_raw,
    parse_result,
    read_summaries,
)
from .records import SpeedTestResult, TierSummary, below_plan, slot_preference
from .store import Store

__all__ = [
    "ALL_HOSTS", "CACHE_TTL_S", "DEFAULT_DAYS", "MAX_DAYS", "MODES", "ROW_FIELDS", "DataCache",
    "QueryError", "RowsAnswer", "cache_for", "cache_key", "check_query", "clear_caches", "get_rows", "headline",
    "heatmap", "heatmap_cells", "minute_row", "parse_now", "rows", "slot_window", "summary_periods",
    "summary_row",
]

MODES = ("minute", "hourly", "daily", "weekly", "monthly", "yearly")
#: The most periods one query may ask for, per mode (minute/hourly/daily count days).
MAX_DAYS = {"minute": 31, "hourly": 92, "daily": 3660, "weekly": 520, "monthly": 240, "yearly": 50}
#: What the dashboard shows first for each mode (the seed's defaults and scenarios).
DEFAULT_DAYS = {"minute": 1, "hourly": 1, "daily": 7, "weekly": 12, "monthly": 6, "yearly": 5}
ALL_HOSTS = "all"
CACHE_TTL_S = 120.0
HEATMAP_DAYS = 28
STATUSES = ("ok", "failed", "missing", "pending", "unreadable")

#: Every key of a row, in order. The first eight are the original API's.
ROW_FIELDS = (
    "date_ist", "date_ist_str", "download_avg", "upload_avg", "ping_avg", "days",
    "connection_type", "below_expected",
    "mode", "period", "period_start", "period_end", "x_local", "timezone", "host", "hosts",
    "status", "complete", "source", "error",
    "download_min", "download_max", "upload_min", "upload_max", "ping_min", "ping_max",
    "download_count", "upload_count", "ping_count",
    "tests", "failed", "rejected", "duplicates",
    "expected_slots", "slots_with_result", "coverage_pct",
    "expected_download_mbps", "expected_upload_mbps", "anomalies",
)
_METRICS = (("download", "download_mbps", "avg_download"), ("upload", "upload_mbps", "avg_upload"),
            ("ping", "ping_ms", "avg_ping"))


def check_query(mode: str, days: Any, host: str | None = ALL_HOSTS) -> tuple[str, int, str]:
    """Validate a query; return ``(mode, days, host)`` normalised (``host`` ``None`` -> ``all``).

    Raises
    ------
    QueryError
        For an unknown mode, a ``days`` that is not a whole number in ``1..MAX_DAYS[mode]``,
        or an invalid host id.
    """
    mode = str(mode).strip().lower()
    mode = {"15-min": "minute", "15min": "minute", "15m": "minute"}.get(mode, mode)
    if mode not in MODES:
        raise QueryError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    try:
        if isinstance(days, bool) or float(days) != int(float(days)):
            raise ValueError
        number = int(float(days))
    except (TypeError, ValueError):
        raise QueryError(f"days={days!r} is not a whole number: give how many periods to show, "
                         f"e.g. {DEFAULT_DAYS[mode]}") from None
    unit = {"weekly": "weeks", "monthly": "months", "yearly": "years"}.get(mode, "days")
    if not 1 <= number <= MAX_DAYS[mode]:
        raise QueryError(f"days={number} is out of range for mode {mode}: use 1 to "
                         f"{MAX_DAYS[mode]} {unit}")
    host = ALL_HOSTS if host in (None, "", ALL_HOSTS) else str(host)
    if host != ALL_HOSTS:
        try:
            validate_host_id(host)
        except InvalidHostId as exc:
            raise QueryError(f"{exc}; or use 'all' for every host") from None
    return mode, number, host


def parse_now(value: str | datetime | None) -> datetime | None:
    """Read a pinned "now" (ISO 8601 with an offset); ``None`` or ``""`` mean the live clock.

    Raises
    ------
    QueryError
        If the text is not an ISO 8601 time with a UTC offset.
    """
    if isinstance(value, datetime):
        return value
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(str(value))
    except UnsupportedDate as exc:  # a real time, but outside the supported dates
        raise QueryError(f"now={value!r}: {exc}") from None
    except ValueError:
        raise QueryError(f"now={value!r} is not an ISO 8601 time with an offset: write it like "
                         "2026-03-15T10:20:00+05:30") from None


# ============================================================================ windows (pure)

def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def summary_periods(mode: str, days: int, now: datetime, tz: str | ZoneInfo) -> list[Period]:
    """The ``days`` periods of ``mode``'s tier ending with the one holding ``now``, oldest first."""
    zone = tz if isinstance(tz, ZoneInfo) else get_zone(tz)
    current = period_of(mode, now, zone)
    start = current.start
    if mode == "hourly":
        first = (current.start_utc - timedelta(hours=days * 24 - 1)).astimezone(zone)
    elif mode == "daily":
        first = _midnight(start.date() - timedelta(days=days - 1), zone)
    elif mode == "weekly":
        first = _midnight(start.date() - timedelta(weeks=days - 1), zone)
    elif mode == "monthly":
        months = start.year * 12 + start.month - 1 - (days - 1)
        first = datetime(months // 12, months % 12 + 1, 1, tzinfo=zone)
    elif mode == "yearly":
        first = datetime(start.year - (days - 1), 1, 1, tzinfo=zone)
    else:
        raise QueryError(f"mode {mode!r} has no summaries: use one of {', '.join(MODES[1:])}")
    return periods_between(mode, first, now, zone)


def slot_window(days: int, now: datetime, tz: str | ZoneInfo) -> list[datetime]:
    """The last ``days`` x 96 slot starts (aware, local) ending with the slot holding ``now``."""
    zone = tz if isinstance(tz, ZoneInfo) else get_zone(tz)
    last = slot_of(now, zone).astimezone(UTC)
    count = days * 24 * 60 // int(SLOT.total_seconds() // 60)
    return [(last - SLOT * i).astimezone(zone) for i in range(count - 1, -1, -1)]


# ============================================================================ rows (pure)

def _naive(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


def _labels(mode: str, start: datetime, end: datetime) -> tuple[str, str]:
    """``(date_ist, date_ist_str)`` for a period ``[start, end)`` of local time."""
    last_day = (end - timedelta(microseconds=1)).date()
    if mode == "minute":
        text = start.strftime("%Y-%m-%d %H:%M")
        return text, text
    if mode == "hourly":
        return start.strftime("%Y-%m-%d %H:%M"), f"{start:%Y-%m-%d %H:%M} to {end:%H:%M}"
    if mode == "daily":
        return f"{start:%Y-%m-%d}", f"{start:%Y-%m-%d}"
    return f"{start:%Y-%m-%d}", f"{start:%Y-%m-%d} to {last_day:%Y-%m-%d}"


def _empty_row(mode: str, label: str, start: datetime, end: datetime, host: str, now: datetime,
               plan: tuple[float | None, float | None]) -> dict:
    date_ist, date_ist_str = _labels(mode, start, end)
    row = dict.fromkeys(ROW_FIELDS)
    row.update(date_ist=date_ist, date_ist_str=date_ist_str, mode=mode, period=label,
               period_start=start.isoformat(), period_end=end.isoformat(), x_local=_naive(start),
               timezone=str(start.tzinfo), host=host, hosts=[], complete=end <= to_local(now, "UTC"),
               tests=0, failed=0, rejected=0, duplicates=0,
               expected_download_mbps=plan[0], expected_upload_mbps=plan[1])
    row["status"] = "missing" if row["complete"] else "pending"
    return row


def _below(row: dict, fraction: float) -> bool | None:
    """Whether the row's average is under ``fraction`` of the plan (``None``: no plan or no data)."""
    return below_plan(row["download_avg"], row["upload_avg"], row["expected_download_mbps"],
                      row["expected_upload_mbps"], fraction)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def summary_row(mode: str, period: Period, summary: dict | None, *, host: str, now: datetime,
                plan: tuple[float | None, float | None] = (None, None), fraction: float = 0.8,
                n_hosts: int = 1, error: str | None = None) -> dict:
    """One period's row from its stored summary (``None``: no summary; ``error``: unreadable).

    Reads the summary contract's fields and tolerates the original system's summaries, which
    carry only ``avg_*``, ``min_download``/``max_download``, ``records_aggregated``,
    ``connection_types`` and ``anomalies_count``.
    """
    row = _empty_row(mode, period.label, period.start, period.end, host, now, plan)
    row["source"] = "summary"
    if error is not None:
        row.update(status="unreadable", error=error)
        return row
    if summary is None:
        if row["complete"]:
            row.update(expected_slots=period.expected_slots * n_hosts, slots_with_result=0,
                       coverage_pct=0.0)
        return row
    s = summary
    tests = int(s.get("records_aggregated") or 0)
    failed = int(s.get("failed_tests") or 0)
    stats: dict[str, Any] = s["stats"] if isinstance(s.get("stats"), dict) else {}
    for metric, stat_name, avg_name in _METRICS:
        row[f"{metric}_avg"] = _number(s.get(avg_name)) if tests else None
        row[f"{metric}_min"] = _number(s.get(f"min_{metric}")) if tests else None
        row[f"{metric}_max"] = _number(s.get(f"max_{metric}")) if tests else None
        count = (stats.get(stat_name) or {}).get("count") if isinstance(stats.get(stat_name), dict) else None
        row[f"{metric}_count"] = (int(count) if isinstance(count, int)
                                  else tests if row[f"{metric}_avg"] is not None else 0)
    types = s.get("connection_types") or []
    hosts = s.get("hosts")
    row.update(
        hosts=sorted(hosts) if isinstance(hosts, list) else ([host] if host != ALL_HOSTS else []),
        tests=tests, failed=failed,
        rejected=int(s.get("rejected_records") or 0), duplicates=int(s.get("duplicates_ignored") or 0),
        connection_type=", ".join(types) if tests else None,
        anomalies=s.get("anomalies_count"),
        status="ok" if tests else ("failed" if failed else ("missing" if row["complete"] else "pending")),
    )
    if tests:
        days = s.get("days")
        row["days"] = int(days) if isinstance(days, int) else (1 if mode in ("hourly", "daily") else None)
    for name in ("expected_slots", "slots_with_result"):
        if isinstance(s.get(name), int):
            row[name] = s[name]
    coverage = _number(s.get("coverage_pct"))
    if coverage is None and row["expected_slots"]:
        coverage = 100.0 * (row["slots_with_result"] or 0) / row["expected_slots"]
    row["coverage_pct"] = coverage
    for metric in ("download", "upload"):
        stored = _number(s.get(f"expected_{metric}_mbps"))
        if stored is not None:
            row[f"expected_{metric}_mbps"] = stored
    below = s.get("below_expected")
    row["below_expected"] = below if isinstance(below, bool) else _below(row, fraction)
    return row


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def minute_row(slot: datetime, results: Sequence[SpeedTestResult], *, host: str, now: datetime,
               plan: tuple[float | None, float | None] = (None, None), fraction: float = 0.8,
               n_hosts: int = 1, rejected: Sequence[str] = (), duplicates: int = 0) -> dict:
    """One 15-minute slot's row from the raw results in it (several hosts for ``all``)."""
    end = (slot.astimezone(UTC) + SLOT).astimezone(slot.tzinfo)
    row = _empty_row("minute", slot.strftime("%Y%m%d%H%M"), slot, end, host, now, plan)
    row.update(source="raw", rejected=len(rejected), duplicates=duplicates,
               hosts=sorted({r.host_id for r in results}))
    ok = [r for r in results if r.ok]
    row["tests"], row["failed"] = len(ok), len(results) - len(ok)
    for metric, attr, _ in _METRICS:
        values = [getattr(r, attr) for r in ok if getattr(r, attr) is not None]
        row[f"{metric}_avg"] = _mean(values)
        row[f"{metric}_min"] = min(values) if values else None
        row[f"{metric}_max"] = max(values) if values else None
        row[f"{metric}_count"] = len(values)
    row["expected_slots"] = n_hosts
    row["slots_with_result"] = len(row["hosts"])
    row["coverage_pct"] = 100.0 * row["slots_with_result"] / n_hosts if n_hosts else None
    if ok:
        row.update(status="ok", days=1, connection_type=", ".join(sorted({r.connection_type for r in ok})))
    elif results:
        row["status"] = "failed"
    elif rejected:
        row.update(status="unreadable", error=rejected[0])
    elif not row["complete"]:
        row.update(expected_slots=None, slots_with_result=None, coverage_pct=None)
    row["below_expected"] = _below(row, fraction)
    return row


def _weighted(rows: Iterable[Mapping[str, Any]], metric: str) -> float | None:
    total = count = 0.0
    for row in rows:
        if row[f"{metric}_avg"] is not None and row.get(f"{metric}_count"):
            total += row[f"{metric}_avg"] * row[f"{metric}_count"]
            count += row[f"{metric}_count"]
    return total / count if count else None


def headline(rows: Sequence[Mapping[str, Any]]) -> dict:
    """Headline statistics of a window: averages weighted by test counts, extremes, counts.

    Returns
    -------
    dict
        ``download_avg``/``upload_avg``/``ping_avg`` [Mbit/s, ms], ``*_min``/``*_max``,
        ``tests``, ``failed``, ``coverage_pct`` (slots with a result / expected slots over
        the rows that know both), ``periods``, ``periods_with_data``, ``periods_missing``,
        ``periods_pending``, ``periods_failed``, ``periods_unreadable``,
        ``periods_below_expected``, ``periods_judged`` (rows with a plan and data).
    """
    out: dict[str, Any] = {}
    for metric in ("download", "upload", "ping"):
        out[f"{metric}_avg"] = _weighted(rows, metric)
        lows = [r[f"{metric}_min"] if r[f"{metric}_min"] is not None else r[f"{metric}_avg"] for r in rows]
        highs = [r[f"{metric}_max"] if r[f"{metric}_max"] is not None else r[f"{metric}_avg"] for r in rows]
        lows, highs = [v for v in lows if v is not None], [v for v in highs if v is not None]
        out[f"{metric}_min"] = min(lows) if lows else None
        out[f"{metric}_max"] = max(highs) if highs else None
    known = [r for r in rows if r["expected_slots"] and r["slots_with_result"] is not None]
    expected = sum(r["expected_slots"] for r in known)
    out.update(
        tests=sum(r["tests"] for r in rows), failed=sum(r["failed"] for r in rows),
        rejected=sum(r["rejected"] for r in rows),
        coverage_pct=100.0 * sum(r["slots_with_result"] for r in known) / expected if expected else None,
        periods=len(rows),
        periods_with_data=sum(r["status"] == "ok" for r in rows),
        periods_below_expected=sum(r["below_expected"] is True for r in rows),
        periods_judged=sum(r["below_expected"] is not None for r in rows),
    )
    for status in ("missing", "pending", "failed", "unreadable"):
        out[f"periods_{status}"] = sum(r["status"] == status for r in rows)
    return out


def heatmap_cells(rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Hour-of-day x day-of-week averages from hourly (or 15-minute) rows.

    Each cell averages the rows that start in that local hour on that weekday, weighted by
    their test counts; cells without data are left out (drawn blank, never as zero).

    Returns
    -------
    list of dict
        ``weekday`` (``Mon``..``Sun``), ``weekday_index`` (0..6), ``hour`` (0..23),
        ``download_avg``, ``upload_avg`` [Mbit/s], ``ping_avg`` [ms], ``tests``, ``periods``,
        sorted by weekday then hour.
    """
    groups: dict[tuple[int, int], list[Mapping[str, Any]]] = {}
    for row in rows:
        if row["status"] != "ok":
            continue
        start = datetime.fromisoformat(row["x_local"])
        groups.setdefault((start.weekday(), start.hour), []).append(row)
    cells = []
    for (weekday, hour), members in sorted(groups.items()):
        cell = {"weekday": WEEKDAYS[weekday], "weekday_index": weekday, "hour": hour,
                "tests": sum(r["tests"] for r in members), "periods": len(members)}
        for metric in ("download", "upload", "ping"):
            cell[f"{metric}_avg"] = _weighted(members, metric)
        cells.append(cell)
    return cells


# ============================================================================ cache

def _copy(value: Any) -> Any:
    """A copy callers may change: fast for lists of flat rows (lists inside copied), else deep."""
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return [{k: (list(v) if isinstance(v, list) else copy.deepcopy(v) if isinstance(v, dict) else v)
                 for k, v in item.items()} for item in value]
    if isinstance(value, list) and all(isinstance(item, (str, int, float)) for item in value):
        return list(value)
    return copy.deepcopy(value)


def cache_key(data_type: str, host: str, mode: str, days: int) -> str:
    """The original dashboard's cache key, ``{data_type}_{host_id}_{mode}_{days}``."""
    return f"{data_type}_{host}_{mode}_{days}"


class DataCache:
    """A thread-safe in-memory cache with a time-to-live, one load per key at a time.

    Parameters
    ----------
    ttl_s : float
        How long an entry stays fresh [s].
    clock : callable
        Returns the current time [s] (``time.monotonic``; tests pass a fake).
    """

    def __init__(self, ttl_s: float = CACHE_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self._entries: dict[str, tuple[float, Any]] = {}
        self._tags: dict[str, str | None] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        """A copy of the fresh value under ``key``, or ``None``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.clock() - entry[0] >= self.ttl_s:
                del self._entries[key]
                return None
            return _copy(entry[1])

    def put(self, key: str, value: Any, host: str | None = None) -> None:
        """Store a copy of ``value`` under ``key``, tagged with its ``host`` (drops expired entries)."""
        now = self.clock()
        with self._lock:
            for old in [k for k, (t, _) in self._entries.items() if now - t >= self.ttl_s]:
                del self._entries[old]
                self._tags.pop(old, None)
            self._entries[key] = (now, _copy(value))
            self._tags[key] = host

    def get_or_load(self, key: str, load: Callable[[], Any], force_refresh: bool = False,
                    host: str | None = None) -> tuple[Any, bool]:
        """Return ``(value, from_cache)``; concurrent callers of one key share one load."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if not force_refresh:
                hit = self.get(key)
                if hit is not None:
                    self.hits += 1
                    return hit, True
            self.misses += 1
            value = load()
            self.put(key, value, host)
            return _copy(value), False

    def invalidate(self, host: str | None = None) -> int:
        """Forget every entry (or only those of ``host``); return how many were dropped."""
        with self._lock:
            doomed = [k for k in self._entries if host is None or self._tags.get(k) == host]
            for key in doomed:
                del self._entries[key]
                self._tags.pop(key, None)
            return len(doomed)

    def keys(self) -> list[str]:
        """The keys of fresh entries, sorted."""
        now = self.clock()
        with self._lock:
            return sorted(k for k, (t, _) in self._entries.items() if now - t < self.ttl_s)


_CACHES: OrderedDict[str, DataCache] = OrderedDict()
_CACHES_LOCK = threading.Lock()
_MAX_CACHES = 16


def clear_caches() -> None:
    """Forget every cached row (all stores)."""
    with _CACHES_LOCK:
        _CACHES.clear()


def cache_for(store: Store, config: Config, now: datetime | None = None) -> DataCache:
    """The cache of one store and configuration (and one pinned ``now``, if given).

    Everything that changes a row besides ``(mode, days, host)`` names the cache, so the
    keys inside stay the original ``{data_type}_{host_id}_{mode}_{days}``.
    """
    plans = sorted((h, p.download_mbps, p.upload_mbps) for h, p in config.host_plans.items())
    name = "|".join(map(str, (getattr(store, "url", repr(store)), config.timezone,
                              sorted(config.buckets.as_dict().items()), config.plan, plans,
                              config.below_expected_fraction, now.isoformat() if now else "live")))
    with _CACHES_LOCK:
        cache = _CACHES.get(name)
        if cache is None:
            cache = _CACHES[name] = DataCache()
            while len(_CACHES) > _MAX_CACHES:
                _CACHES.popitem(last=False)
        _CACHES.move_to_end(name)
        return cache


# ============================================================================ reads

def _plan(config: Config, host: str) -> tuple[float | None, float | None]:
    plan = config.plan_for(None if host == ALL_HOSTS else host)
    return plan.download_mbps, plan.upload_mbps


def _hosts(store: Store, config: Config, cache: DataCache, force_refresh: bool) -> list[str]:
    hosts, _ = cache.get_or_load("hosts", lambda: list_hosts(store, config.buckets), force_refresh)
    return hosts


def _read_summary_rows(store: Store, config: Config, mode: str, periods: list[Period], host: str,
                       now: datetime, n_hosts: Callable[[], int], max_workers: int,
                       log: JobLog | None) -> list[dict]:
    found, rejected = read_summaries(store, config.buckets, periods,
                                     None if host == ALL_HOSTS else host, max_workers)
    errors = {}
    for key, reason in rejected:
        errors[key] = reason
        if log:
            log.warning(f"unreadable summary: {reason}", key=key)
    plan = _plan(config, host)
    gaps = any(p.label not in found and p.end <= now for p in periods)
    hosts_count = max(1, n_hosts()) if gaps else 1  # only a missing period needs the host count
    out = []
    for period in periods:
        key = summary_key(period, None if host == ALL_HOSTS else host)
        summary, error = found.get(period.label), errors.get(key)
        if summary is not None:
            try:
                TierSummary.from_dict(summary, key)
            except InvalidRecord as exc:
                summary, error = None, str(exc)
                if log:
                    log.warning(f"invalid summary: {exc}", key=key)
        out.append(summary_row(mode, period, summary, host=host, now=now, plan=plan,
                               fraction=config.below_expected_fraction, n_hosts=hosts_count, error=error))
    return out


def _read_minute_rows(store: Store, config: Config, slots: list[datetime], host: str,
                      hosts: list[str], now: datetime, max_workers: int, log: JobLog | None) -> list[dict]:
    zone = slots[0].tzinfo
    days = periods_between("daily", slots[0], slots[-1], zone)  # type: ignore[arg-type]  # slot_window: slots in a ZoneInfo
    first, last = slots[0].replace(tzinfo=None), slots[-1].replace(tzinfo=None)
    jobs = [(h, d) for h in hosts for d in days]
    with ThreadPoolExecutor(max(1, min(max_workers, len(jobs)))) as pool:
        listings = list(pool.map(lambda job: list_raw(store, config.buckets, *job), jobs))
    objects: list[RawObject] = []
    for found, bad in listings:
        for key, reason in bad:
            if log:
                log.warning(f"raw key outside the layout: {reason}", key=key)
        objects.extend(o for o in found if first <= o.key.slot_local <= last)
    bodies = fetch_many(store, config.buckets.raw, [o.info.key for o in objects], max_workers)
    by_slot: dict[datetime, dict[str, Any]] = {}  # results, rejected, duplicates
    for obj in sorted(objects, key=lambda o: o.info.key):
        key, body = obj.info.key, bodies[obj.info.key]
        if isinstance(body, ObjectNotFound):
            continue  # deleted between listing and reading
        cell = by_slot.setdefault(obj.key.slot_local, {"results": {}, "rejected": [], "duplicates": 0})
        try:
            if isinstance(body, Exception):
                raise InvalidRecord(f"could not read {key}: {body}")
            record = parse_result(key, body, obj.key)
        except InvalidRecord as exc:
            cell["rejected"].append(str(exc))
            if log:
                log.warning(f"rejected raw result: {exc}", key=key)
            continue
        # one result per host and slot, chosen as the rollup chooses (earliest complete)
        previous = cell["results"].get(record.host_id)
        if previous is not None:
            cell["duplicates"] += 1
        if previous is None or slot_preference(key, record) < previous[0]:
            cell["results"][record.host_id] = (slot_preference(key, record), record)
    plan = _plan(config, host)
    out = []
    for slot in slots:
        cell = by_slot.get(slot.replace(tzinfo=None), {"results": {}, "rejected": [], "duplicates": 0})
        out.append(minute_row(slot, [r for _, r in cell["results"].values()], host=host, now=now, plan=plan,
                              fraction=config.below_expected_fraction, n_hosts=len(hosts),
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

    def load() -> list[dict]:
        if mode == "minute":
            hosts = _hosts(store, config, cache, force_refresh) if host == ALL_HOSTS else [host]
            return _read_minute_rows(store, config, slot_window(days, moment, zone), host, hosts,
                                     moment, max_workers, log)
        def n_hosts() -> int:
            return len(_hosts(store, config, cache, force_refresh)) if host == ALL_HOSTS else 1
        return _read_summary_rows(store, config, mode, summary_periods(mode, days, moment, zone),
                                  host, moment, n_hosts, max_workers, log)

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
        One row per period with the keys of :data:`ROW_FIELDS`; periods without data have
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
