"""The newest entries of any tier (the seed's ``check_latest.py``), and plain-text tables.

``latest(config, "daily", last=7)`` answers "what did the rollups write most recently?";
``latest(config, "latest")`` answers "when did each host last report, and what?".

Listings are always current: nothing is cached between calls. Keys sort chronologically within
a host (``year=2025/month=202512/day=20251229/hour=…``), so instead of listing a whole bucket
the walk lists the newest ``year=`` folder first, then its newest ``month=``, then ``day=``,
and stops as soon as it holds ``last`` entries. Reading the newest entry of a host that has
years of data costs a handful of small listings.

Periods
-------
latest
    Each host's newest raw result (``last`` per host, default 1).
minutes
    The newest raw results across the selected hosts (default 10).
hourly, daily, weekly, monthly, yearly
    The newest summaries of that tier: the all-hosts summaries, or one host's with ``host``
    (default 10).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from .errors import InvalidRecord, LayoutError
from .layout import (
    SUMMARY_NAME,
    Buckets,
    RawKey,
    parse_raw_key,
    parse_summary_key,
    raw_host_prefix,
    summary_prefix,
    validate_host_id,
)
from .periods import DEFAULT_TIMEZONE, SLOT, TIERS
from .reader import fetch_many, list_hosts, parse_result, parse_summary
from .storebase import ObjectInfo, Store
from .text import format_table
from .walk import newest_objects

__all__ = ["PERIODS", "Entry", "LatestReport", "latest", "latest_table", "newest_raw",
           "newest_summaries"]

PERIODS = ("latest", "minutes") + TIERS
#: How many entries ``latest`` returns when ``last`` is not given.
DEFAULT_LAST = {"latest": 1}
DEFAULT_LAST_OTHER = 10

#: How far after ``now`` an object may be dated (clock skew) before it counts as from the future.
FUTURE_SKEW = SLOT

#: Folder levels walked newest-first before listing objects, per tier (then one listing).
_LEVELS = {"raw": ("year=", "month=", "day="), "hourly": ("year=", "month=", "day="),
           "daily": ("year=", "month="), "weekly": ("year=",), "monthly": ("year=",),
           "yearly": ("year=",)}


@dataclass(frozen=True)
class Entry:
    """One stored result or summary, as ``latest`` shows it.

    Attributes
    ----------
    tier : str
        ``raw`` or a summary tier.
    host_id : str or None
        The host; ``None`` for an all-hosts summary.
    label : str
        The slot's local start (``2025-12-29T14:00``) or the period label (``2025W52``).
    bucket, key : str
        Where the object is.
    size : int
        Its size [bytes].
    modified : datetime
        When it was last written (UTC).
    data : dict or None
        The decoded JSON object; ``None`` when it could not be read or validated.
    error : str or None
        Why ``data`` is ``None``.
    """

    tier: str
    host_id: str | None
    label: str
    bucket: str
    key: str
    size: int
    modified: datetime
    data: dict | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        """Plain data for ``--json``."""
        return {"tier": self.tier, "host": self.host_id, "label": self.label,
                "bucket": self.bucket, "key": self.key, "size": self.size,
                "modified": self.modified.isoformat(), "data": self.data, "error": self.error}


# --------------------------------------------------------------------------- listing

def newest_raw(store: Store, buckets: Buckets, host_id: str, last: int, *,
               now: datetime | None = None, tz=DEFAULT_TIMEZONE,
               future: list | None = None) -> list[tuple[RawKey, ObjectInfo]]:
    """The ``last`` newest raw-result objects of one host, newest first (listing only).

    With ``now``, a key whose slot starts after ``now`` + :data:`FUTURE_SKEW` (local zone
    ``tz``) is not counted among the newest but appended to ``future`` as ``(key, info)``:
    an object from the future must not pass for the host's latest result.
    """
    def accept(info: ObjectInfo):
        try:
            key = parse_raw_key(info.key)
        except LayoutError:
            return None  # not a result; ``speedlab coverage`` and ``dedupe`` report such keys
        if now is not None and key.slot(tz) > now + FUTURE_SKEW:
            if future is not None:
                future.append((key, info))
            return None
        return (key.slot_local, key.epoch_s or 0, key.name), (key, info)

    found = newest_objects(store, buckets.raw, raw_host_prefix(host_id), _LEVELS["raw"], last, accept)
    return [item for _, item in found[:last]]


def _summary_bound(key, tz, end: bool) -> datetime:
    """When the key's period starts (or, with ``end``, ends) [UTC]."""
    try:
        period = key.period(tz)
    except LayoutError:  # a label no period has: shown (and refused) as it is
        return datetime.min.replace(tzinfo=timezone.utc)
    return period.end_utc if end else period.start_utc


def newest_summaries(store: Store, buckets: Buckets, tier: str, host_id: str | None, last: int, *,
                     now: datetime | None = None, tz=DEFAULT_TIMEZONE, future: list | None = None,
                     complete: bool = False) -> list[tuple[str, ObjectInfo]]:
    """The ``last`` newest ``tier`` summaries (all hosts, or ``host_id``'s): ``(label, info)``.

    With ``now``, a summary of a period that starts after ``now`` + :data:`FUTURE_SKEW` (from
    the future) is not counted but appended to ``future`` as ``(label, info)``; with
    ``complete`` too, so is one of a period still in progress (it ends after that).
    """
    def accept(info: ObjectInfo):
        try:
            key = parse_summary_key(info.key)
        except LayoutError:
            return None
        if key.tier != tier or key.host_id != host_id or key.name != SUMMARY_NAME:
            return None
        if now is not None and _summary_bound(key, tz, complete) > now + FUTURE_SKEW:
            if future is not None:
                future.append((key.label, info))
            return None
        return key.label, (key.label, info)

    found = newest_objects(store, buckets.for_tier(tier), summary_prefix(host_id), _LEVELS[tier],
                         last, accept)
    return [item for _, item in found[:last]]


class LatestReport(list):
    """:func:`latest`'s answer: its :class:`Entry` items, newest first (a list)."""

    def to_dict(self) -> list[dict]:
        """Plain data for ``--json`` and the API: one dict per entry."""
        return [entry.to_dict() for entry in self]

    def to_text(self) -> str:
        """A table for people (:func:`latest_table`)."""
        return latest_table(self)


# --------------------------------------------------------------------------- reading

def _entries(store: Store, bucket: str, tier: str, found: list[tuple[str | None, str, ObjectInfo]],
             decode: Callable[[ObjectInfo, bytes], dict]) -> list[Entry]:
    """GET the listed objects in parallel and decode each; failures become ``Entry.error``."""
    bodies = fetch_many(store, bucket, [info.key for _, _, info in found])
    entries = []
    for host_id, label, info in found:
        data, error = None, None
        body = bodies[info.key]
        if isinstance(body, Exception):
            error = f"could not read: {body}"
        else:
            try:
                data = decode(info, body)
            except InvalidRecord as exc:
                error = str(exc)
        entries.append(Entry(tier, host_id, label, bucket, info.key, info.size, info.modified, data, error))
    return entries


def _raw_record(info: ObjectInfo, body: bytes) -> dict:
    return parse_result(info.key, body).to_dict()


def _summary_object(info: ObjectInfo, body: bytes) -> dict:
    """The decoded summary if it passes the one validity rule (:func:`speedlab.reader.parse_summary`,
    which query and the rollup use too); else InvalidRecord: the entry is shown unreadable."""
    data, why = parse_summary(body, info.key)
    if data is None:
        raise InvalidRecord(str(why))
    return data


def latest(config, period: str = "latest", last: int | None = None, host: str | None = None,
           store: Store | None = None, now: datetime | None = None) -> LatestReport:
    """The newest entries of one tier, newest first (see the module docstring).

    Parameters
    ----------
    config : speedlab.config.Config
        Which store and buckets.
    period : str
        ``latest``, ``minutes``, ``hourly``, ``daily``, ``weekly``, ``monthly`` or ``yearly``.
    last : int, optional
        How many entries (per host for ``latest``); default 1 for ``latest``, else 10.
    host : str, optional
        One host; default every host (raw) or the all-hosts summaries (summary tiers).
    store : Store, optional
        An open store (default ``config.open_store()``).
    now : datetime, optional
        The clock (default the live one). Objects dated after it (a slot or a summary's
        period starting more than :data:`FUTURE_SKEW` later) are not counted as the newest;
        they follow the newest entries, unread, with ``error`` saying so.

    Returns
    -------
    list of Entry
        Objects that cannot be read or validated are included with ``error`` set.

    Raises
    ------
    LayoutError
        For an unknown period or a ``last`` below 1.
    InvalidHostId
        For a malformed ``host``.
    StoreError
        When the store or its bucket does not exist or cannot be reached.
    """
    if period not in PERIODS:
        raise LayoutError(f"unknown period {period!r}: use one of {', '.join(PERIODS)}")
    last = DEFAULT_LAST.get(period, DEFAULT_LAST_OTHER) if last is None else last
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise LayoutError(f"--last {last!r} must be a whole number of at least 1")
    if host is not None:
        validate_host_id(host)
    store = store or config.open_store()
    buckets = config.buckets
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    future: list = []
    clock = dict(now=now, tz=config.timezone, future=future)
    if period in TIERS:
        found = newest_summaries(store, buckets, period, host, last, **clock)
        return LatestReport(_entries(store, buckets.for_tier(period), period,
                                     [(host, label, info) for label, info in found], _summary_object) +
                            _future_entries(buckets.for_tier(period), period,
                                            [(host, label, info) for label, info in future], now))
    hosts = [host] if host else list_hosts(store, buckets)
    per_host = [newest_raw(store, buckets, h, last, **clock) for h in hosts]
    merged = [item for items in per_host for item in items]
    merged.sort(key=lambda pair: (pair[0].slot_local, pair[0].host_id, pair[0].epoch_s or 0,
                                  pair[0].name), reverse=True)
    if period == "minutes":
        merged = merged[:last]
    return LatestReport(
        _entries(store, buckets.raw, "raw", [(key.host_id, key.slot_local.strftime("%Y-%m-%dT%H:%M"), info)
                                             for key, info in merged], _raw_record) +
        _future_entries(buckets.raw, "raw", [(key.host_id, key.slot_local.strftime("%Y-%m-%dT%H:%M"), info)
                                             for key, info in future], now))


def _future_entries(bucket: str, tier: str, found: list[tuple[str | None, str, ObjectInfo]],
                    now: datetime) -> list[Entry]:
    """Objects dated after ``now``, flagged and unread (they are never the newest)."""
    return [Entry(tier, host_id, label, bucket, info.key, info.size, info.modified, None,
                  f"dated after now ({now.isoformat(timespec='minutes')}): not counted as the "
                  "newest; a clock or a key from the future (check the writer, or delete it)")
            for host_id, label, info in found]


# --------------------------------------------------------------------------- tables

def _number(value, digits: int = 1):
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def latest_table(entries: Sequence[Entry]) -> str:
    """``latest``'s answer as a table for people (``--json`` gives everything)."""
    if not entries:
        return "no entries found"
    if entries[0].tier == "raw":
        headers = ("slot (local)", "host", "status", "down Mbit/s", "up Mbit/s", "ping ms", "object")
        rows = []
        for e in entries:
            d = e.data or {}
            status = d.get("status", "invalid") if e.data else f"invalid: {e.error}"
            rows.append((e.label.replace("T", " "), e.host_id, status, _number(d.get("download_mbps")),
                         _number(d.get("upload_mbps")), _number(d.get("ping_ms")), e.key.rsplit("/", 1)[-1]))
        return format_table(headers, rows, right=(3, 4, 5))
    headers = ("period", "host", "avg down Mbit/s", "avg up Mbit/s", "avg ping ms", "records", "note")
    rows = []
    for e in entries:
        d = e.data or {}
        note = f"unreadable: {e.error}" if e.error else ("below expected" if d.get("below_expected") else "")
        rows.append((e.label, e.host_id or "all", _number(d.get("avg_download")),
                     _number(d.get("avg_upload")), _number(d.get("avg_ping")),
                     d.get("records_aggregated"), note))
    return format_table(headers, rows, right=(2, 3, 4, 5))
