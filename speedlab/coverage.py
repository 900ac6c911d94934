"""Hour-by-hour coverage of one day (the seed's hourly checker: "did I have any tests yesterday?").

For the day in the configured time zone, per host and local hour: how many 15-minute slots
were expected, how many hold a successful result, how many only a failed test, which are
missing (by minute), how many extra objects share a slot (duplicates), and how many objects
could not be read or validated. :func:`coverage` reads; :func:`host_coverage` is the pure
computation behind it. The JSON shape (``speedlab coverage --json``)::

    {"date": "2025-12-29", "timezone": "Asia/Kolkata",
     "hosts": {"home-primary": {
        "hours": {"00": {"expected": 4, "ok": 3, "failed": 1, "missing": [], "duplicates": 0,
                         "invalid": 0},
                  ...,
                  "23": {...}},
        "total": {"expected": 96, "ok": 90, "failed": 1, "missing": 5, "duplicates": 0,
                  "invalid": 0},
        "problems": [{"key": "...", "reason": "..."}]}}}

Definitions
-----------
expected
    Slots of the hour that are over at ``now`` (all 4 for a past day; for today only the
    finished ones, plus any slot that already holds a result). A day with a daylight-saving
    change has hours with 0 or 8 slots.
ok / failed
    Slots with at least one valid ``ok`` result / with only valid ``failed`` results.
missing
    Expected slots with no valid result, as minutes (``"15"``); in ``total``, their count.
duplicates
    Valid objects beyond the first in a slot (what ``speedlab dedupe`` looks at, and what the
    rollup counts as ``duplicates_ignored``).
invalid
    Objects in the hour that could not be read or validated (listed in ``problems``); they are
    never counted as duplicates.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import date as Date, datetime, timezone
from typing import Any

from .errors import FutureDate, LayoutError, UnsupportedDate
from .layout import host_in_key, parse_raw_key, printable, validate_host_id
from .periods import MAX_YEAR, MIN_YEAR, SLOT, SUPPORTED_DATES, Period, get_zone, period_of
from .reader import list_hosts, read_results
from .text import format_table

__all__ = ["CoverageReport", "FutureDate", "coverage", "coverage_table", "host_coverage", "parse_day", "slots_of"]

UTC = timezone.utc


def parse_day(text: str, tz: str, now: datetime) -> Period:
    """The local day named by ``text``: ``YYYY-MM-DD``, ``today`` or ``yesterday``.

    Raises
    ------
    LayoutError
        If ``text`` is not such a date or names an impossible one (``2025-02-30``).
    FutureDate
        If the day starts after ``now``.
    """
    zone = get_zone(tz)
    today = period_of("daily", now, zone)
    word = str(text).strip().lower()
    if word in ("today", "yesterday"):
        return today if word == "today" else today.previous()
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", word)
    if not match:
        raise LayoutError(f"date {text!r} is not understood: write it as YYYY-MM-DD "
                          "(e.g. 2025-11-02), 'today' or 'yesterday'")
    try:
        day = Date(*map(int, match.groups()))
    except ValueError as exc:
        raise LayoutError(f"date {text!r} is not a real date ({exc}): write it as YYYY-MM-DD") from None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise UnsupportedDate(f"date {text!r} is outside the dates speedlab handles ({SUPPORTED_DATES})")
    period = period_of("daily", datetime(day.year, day.month, day.day, 12, tzinfo=zone), zone)
    if period.start_utc > now.astimezone(UTC):
        raise FutureDate(f"date {text} is in the future (today in {tz} is "
                         f"{today.start:%Y-%m-%d}): ask about today or an earlier day")
    return period


def slots_of(day: Period) -> list[datetime]:
    """Every 15-minute slot start of ``day``, aware local times, stepping in UTC (DST-safe)."""
    zone = day.start.tzinfo
    out, moment = [], day.start_utc
    while moment < day.end_utc:
        out.append(moment.astimezone(zone))
        moment += SLOT
    return out


def host_coverage(day: Period, observations: Iterable[tuple[datetime, str]], now: datetime,
                  problems: Iterable[tuple[str, str]] = ()) -> dict:
    """One host's coverage of ``day`` (pure).

    Parameters
    ----------
    day : Period
        A ``daily`` period.
    observations : iterable of (slot_local, status)
        One per stored object: the naive local slot start from its key, and ``ok``,
        ``failed`` or ``invalid`` (could not be read or validated).
    now : datetime
        Aware; slots that end after it are not expected yet.
    problems : iterable of (key, reason)
        Objects that could not be used, passed through to the answer.
    """
    statuses: dict[datetime, list[str]] = defaultdict(list)
    for slot_local, status in observations:
        statuses[slot_local.replace(tzinfo=None)].append(status)
    hours: dict[str, dict[str, Any]] = {
        f"{h:02d}": {"expected": 0, "ok": 0, "failed": 0, "missing": [], "duplicates": 0, "invalid": 0}
        for h in range(24)}
    now_utc = now.astimezone(UTC)
    for slot in slots_of(day):
        hour = hours[f"{slot.hour:02d}"]
        seen = statuses.get(slot.replace(tzinfo=None), [])
        if not seen and slot.astimezone(UTC) + SLOT > now_utc:
            continue  # not over yet, nothing there: not expected
        hour["expected"] += 1
        hour["invalid"] += seen.count("invalid")
        hour["duplicates"] += max(0, len(seen) - seen.count("invalid") - 1)
        if "ok" in seen:
            hour["ok"] += 1
        elif "failed" in seen:
            hour["failed"] += 1
        else:
            hour["missing"].append(f"{slot.minute:02d}")
    total = {name: sum(h[name] if name != "missing" else len(h[name]) for h in hours.values())
             for name in ("expected", "ok", "failed", "missing", "duplicates", "invalid")}
    return {"hours": hours, "total": total,
            "problems": [{"key": key, "reason": reason} for key, reason in problems]}


class CoverageReport(dict):
    """:func:`coverage`'s answer: ``date``, ``timezone`` and ``hosts`` (a dict, as JSON has it)."""

    def to_dict(self) -> dict:
        """Plain data for ``--json`` and the API."""
        return dict(self)

    def to_text(self) -> str:
        """One table of 24 hours per host (:func:`coverage_table`)."""
        return coverage_table(self)


def coverage(config, date: str = "yesterday", host: str | None = None,
             now: datetime | None = None, store=None) -> CoverageReport:
    """The hour-by-hour coverage of one local day, for one host or every host.

    Parameters
    ----------
    config : speedlab.config.Config
        Store, buckets and time zone.
    date : str
        ``YYYY-MM-DD``, ``today`` or ``yesterday`` (in the configured zone).
    host : str, optional
        One host (reported even if it has no results at all); default every host with data.
    now : datetime, optional
        The current time (default the clock); decides what is "future".
    store : Store, optional
        An open store (default ``config.open_store()``).

    Returns
    -------
    dict
        The shape in the module docstring.

    Raises
    ------
    LayoutError, FutureDate
        For a malformed or future date.
    InvalidHostId
        For a malformed ``host``.
    StoreError
        When the store or its bucket does not exist or cannot be reached.
    """
    now = now or datetime.now(UTC)
    day = parse_day(date, config.timezone, now)
    if host is not None:
        validate_host_id(host)
    store = store or config.open_store()
    hosts = [host] if host else list_hosts(store, config.buckets)
    read = read_results(store, config.buckets, day, hosts)
    observations: dict[str, list] = {h: [] for h in hosts}
    problems: dict[str, list] = {h: [] for h in hosts}
    for key, record in read.results:
        raw = parse_raw_key(key)
        observations[raw.host_id].append((raw.slot_local, record.status))
    for key, reason in read.rejected:
        try:
            raw = parse_raw_key(key)
            observations[raw.host_id].append((raw.slot_local, "invalid"))
            problems[raw.host_id].append((key, reason))
        except (LayoutError, KeyError):
            owner = host_in_key(key) or key.split("/", 1)[0]
            problems.setdefault(owner, []).append((key, reason))
    return CoverageReport(date=f"{day.start:%Y-%m-%d}", timezone=config.timezone,
                          hosts={h: host_coverage(day, observations.get(h, []), now, problems.get(h, []))
                                 for h in sorted(set(hosts) | set(problems))})


def coverage_table(report: dict) -> str:
    """:func:`coverage`'s answer as text for people: one table of 24 hours per host."""
    if not report["hosts"]:
        return f"{report['date']} ({report['timezone']}): no host has any results in this store"
    parts = []
    for host, data in report["hosts"].items():
        t = data["total"]
        parts.append(f"{printable(host)}  {report['date']} ({report['timezone']}): {t['ok']}/{t['expected']} ok, "
                     f"{t['failed']} failed, {t['missing']} missing, {t['duplicates']} duplicates, "
                     f"{t['invalid']} invalid")
        rows = [(hour, h["expected"], h["ok"], h["failed"], " ".join(h["missing"]) or "",
                 h["duplicates"] or "", h["invalid"] or "") for hour, h in data["hours"].items()]
        parts.append(format_table(("hour", "expected", "ok", "failed", "missing minutes",
                                   "duplicates", "invalid"), rows, right=(1, 2, 3, 5, 6)))
        parts.extend("  " + printable(f"problem: {p['key']}: {p['reason']}") for p in data["problems"])
        parts.append("")
    return "\n".join(parts).rstrip()
