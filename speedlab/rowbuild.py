"""The dashboard's rows, built from plain data: the query's vocabulary (modes, windows, limits),
one row per period from a stored summary or per 15-minute slot from raw results, the
headline statistics and the heatmap cells.

Pure: no store, no clock (``now`` is an argument). :mod:`speedlab.query` reads the store and
calls these; charts (:mod:`speedlab.charts`), the page and the analyses take the rows. See
:mod:`speedlab.query` for the rows' fields and statuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .errors import InvalidHostId, QueryError, UnsupportedDate
from .layout import validate_host_id
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
from .records import SpeedTestResult, below_plan
from .sketch import rank_of

__all__ = [
    "ALL_HOSTS", "DEFAULT_DAYS", "MAX_DAYS", "MODES", "ROW_FIELDS", "ROW_SUMMARY_FIELDS", "STATUSES", "check_query",
    "headline",
    "heatmap_cells", "minute_row", "parse_now", "slot_window", "summary_periods", "summary_row",
]

MODES = ("minute", "hourly", "daily", "weekly", "monthly", "yearly")
#: The most periods one query may ask for, per mode (minute/hourly/daily count days).
MAX_DAYS = {"minute": 31, "hourly": 92, "daily": 3660, "weekly": 520, "monthly": 240, "yearly": 50}
#: What the dashboard shows first for each mode (the seed's defaults and scenarios).
DEFAULT_DAYS = {"minute": 1, "hourly": 1, "daily": 7, "weekly": 12, "monthly": 6, "yearly": 5}
ALL_HOSTS = "all"
STATUSES = ("ok", "partial", "failed", "missing", "pending", "unreadable")

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
    "latency_idle_avg", "latency_download_avg", "latency_upload_avg", "jitter_avg", "packet_loss_avg",
    "latency_idle_p95", "latency_download_p95", "latency_upload_p95",
    "latency_idle_count", "latency_download_count", "latency_upload_count",
)
_METRICS = (("download", "download_mbps", "avg_download"), ("upload", "upload_mbps", "avg_upload"),
            ("ping", "ping_ms", "avg_ping"))
#: The latency figures of a row: (row prefix, record field / stats name, summary short name) [ms; %].
_LATENCY = (("latency_idle", "latency_idle_ms", "latency_idle"),
            ("latency_download", "latency_download_ms", "latency_download"),
            ("latency_upload", "latency_upload_ms", "latency_upload"),
            ("jitter", "jitter_ms", "jitter"), ("packet_loss", "packet_loss_pct", "packet_loss"))
#: The latency figures whose p95 and count a row carries.
_LATENCY_P95 = ("latency_idle", "latency_download", "latency_upload")
#: The summary fields :func:`summary_row` reads (a tree for ``SUMMARY_TABLE.decode_row``'s
#: ``wanted``: a row's summary decoded from a table needs only these; None: all of the field).
ROW_SUMMARY_FIELDS: dict[str, Any] = {
    **dict.fromkeys(("records_aggregated", "failed_tests", "connection_types", "hosts", "rejected_records",
                     "duplicates_ignored", "anomalies_count", "days", "expected_slots", "slots_with_result",
                     "coverage_pct", "expected_download_mbps", "expected_upload_mbps", "below_expected")),
    **dict.fromkeys(f"{kind}_{metric}" for metric in ("download", "upload", "ping") for kind in ("min", "max")),
    **dict.fromkeys(avg for _, _, avg in _METRICS),
    **dict.fromkeys(f"{kind}_{short}" for _, _, short in _LATENCY for kind in ("avg", "p95")),
    "stats": {stat: {"count": None} for stat in (*(m for _, m, _ in _METRICS), *(m for _, m, _ in _LATENCY))},
}
#: How headline() weights each latency average: its own count, or (jitter, packet loss: no count
#: in a row) the idle probes' count, whose records carry them.
_LATENCY_WEIGHT = {"latency_idle": "latency_idle_count", "latency_download": "latency_download_count",
                   "latency_upload": "latency_upload_count", "jitter": "latency_idle_count",
                   "packet_loss": "latency_idle_count"}


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
                n_hosts: int = 1, error: str | None = None, live: bool = False) -> dict:
    """One period's row from its stored summary (``None``: no summary; ``error``: unreadable).

    Reads the summary contract's fields and tolerates the original system's summaries, which
    carry only ``avg_*``, ``min_download``/``max_download``, ``records_aggregated``,
    ``connection_types`` and ``anomalies_count``.

    ``live``: ``summary`` holds figures so far (:func:`speedlab.live.live_summary`), not a stored
    summary: ``source`` is ``live`` and a period that has not ended is ``partial`` (with data).
    """
    row = _empty_row(mode, period.label, period.start, period.end, host, now, plan)
    row["source"] = "live" if live and summary is not None else "summary"
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
    if live and not row["complete"] and (tests or failed):
        row["status"] = "partial"
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
    for prefix, stat_name, short in _LATENCY:
        row[f"{prefix}_avg"] = _number(s.get(f"avg_{short}")) if tests else None
        if prefix in _LATENCY_P95:
            row[f"{prefix}_p95"] = _number(s.get(f"p95_{short}")) if tests else None
            count = stats[stat_name].get("count") if isinstance(stats.get(stat_name), dict) else None
            row[f"{prefix}_count"] = (int(count) if isinstance(count, int) and row[f"{prefix}_avg"] is not None
                                      else 0)
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
    for prefix, attr, _ in _LATENCY:
        values = [getattr(r, attr) for r in ok if getattr(r, attr) is not None]
        row[f"{prefix}_avg"] = _mean(values)  # one result: its own value
        if prefix in _LATENCY_P95:
            row[f"{prefix}_p95"] = sorted(values)[rank_of(0.95, len(values))] if values else None
            row[f"{prefix}_count"] = len(values)
    return row


def _weighted(rows: Iterable[Mapping[str, Any]], metric: str, weight: str | None = None) -> float | None:
    """The mean of the rows' ``{metric}_avg`` weighted by ``weight`` (default ``{metric}_count``)."""
    weight = weight or f"{metric}_count"
    total = count = 0.0
    for row in rows:
        if row.get(f"{metric}_avg") is not None and row.get(weight):
            total += row[f"{metric}_avg"] * row[weight]
            count += row[weight]
    return total / count if count else None


def headline(rows: Sequence[Mapping[str, Any]]) -> dict:
    """Headline statistics of a window: averages weighted by test counts, extremes, counts.

    Returns
    -------
    dict
        ``download_avg``/``upload_avg``/``ping_avg`` [Mbit/s, ms], ``*_min``/``*_max``,
        ``tests``, ``failed``, ``coverage_pct`` (slots with a result / expected slots over
        the rows that know both), ``periods``, ``periods_with_data``, ``periods_missing``,
        ``periods_pending``, ``periods_partial`` (in progress, figures so far),
        ``periods_failed``, ``periods_unreadable``, ``periods_below_expected``,
        ``periods_judged`` (rows with a plan and data). ``periods_with_data`` counts ``ok`` rows
        and ``partial`` rows with tests. Then ``latency_idle_avg``, ``latency_download_avg``,
        ``latency_upload_avg``, ``jitter_avg`` [ms] and ``packet_loss_avg`` [%], each weighted by
        its row count (jitter and packet loss, which rows do not count, by ``latency_idle_count``:
        the probes that measure jitter run in the same tests; exact when every test has both).
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
        periods_with_data=sum(r["status"] == "ok" or (r["status"] == "partial" and r["tests"] > 0) for r in rows),
        periods_below_expected=sum(r["below_expected"] is True for r in rows),
        periods_judged=sum(r["below_expected"] is not None for r in rows),
    )
    for status in ("missing", "pending", "partial", "failed", "unreadable"):
        out[f"periods_{status}"] = sum(r["status"] == status for r in rows)
    for prefix, weight in _LATENCY_WEIGHT.items():
        out[f"{prefix}_avg"] = _weighted(rows, prefix, weight)
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
