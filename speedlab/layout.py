"""Every storage key speedlab reads or writes: built and parsed here, and nowhere else.

The layout is the original system's (``ARCHITECTURE.md``), so an existing deployment's data
keeps working:

* raw results, main bucket (``vd-speed-test``)::

    host={host_id}/year=2025/month=202512/day=20251229/hour=2025122914/minute=00/test.json

  ``test.json`` is speedlab's one object per slot (the diagram's name); the original
  collector's ``speed_data_ookla_00_1735467234.json`` names are parsed too. Times in the key
  are local (configured zone, default IST), minute one of 00, 15, 30, 45.

* summaries, ``speed_test_summary.json`` under ``aggregated/`` (all hosts) or
  ``aggregated/host={host_id}/`` (one host), in the tier's bucket::

    hourly   vd-speed-test-hourly-prod  aggregated/year=2025/month=202512/day=20251229/hour=2025122914/
    daily    vd-speed-test              aggregated/year=2025/month=202512/day=20251229/
    weekly   vd-speed-test-weekly-prod  aggregated/year=2025/week=2025W52/   (year = ISO week-year)
    monthly  vd-speed-test-monthly-prod aggregated/year=2025/month=202512/
    yearly   vd-speed-test-yearly-prod  aggregated/year=2025/

Pure functions: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from .errors import InvalidHostId, LayoutError
from .periods import DEFAULT_TIMEZONE, TIERS, Period, parse_period, slot_of

SUMMARY_NAME = "speed_test_summary.json"
RAW_NAME = "test.json"
AGGREGATED = "aggregated"
#: Host ids speedlab refuses because they mean something else ("all hosts").
RESERVED_HOST_IDS = frozenset({"all", "aggregated"})
_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_LEGACY_RAW_RE = re.compile(r"speed_data_(?P<engine>[a-z0-9]+)_(?P<minute>\d{2})_(?P<epoch>\d+)\.json")


@dataclass(frozen=True)
class Buckets:
    """Bucket names, one per tier (``raw`` and ``daily`` share the main bucket by default)."""

    raw: str = "vd-speed-test"
    hourly: str = "vd-speed-test-hourly-prod"
    daily: str = "vd-speed-test"
    weekly: str = "vd-speed-test-weekly-prod"
    monthly: str = "vd-speed-test-monthly-prod"
    yearly: str = "vd-speed-test-yearly-prod"

    def for_tier(self, tier: str) -> str:
        """The bucket of ``tier`` (``raw`` or one of the summary tiers)."""
        if tier not in {f.name for f in fields(self)}:
            raise LayoutError(f"unknown tier {tier!r}: use raw or one of {', '.join(TIERS)}")
        return getattr(self, tier)

    def with_overrides(self, overrides: dict[str, str]) -> Buckets:
        """A copy with some names replaced (``{"hourly": "my-hourly"}``)."""
        for tier, name in overrides.items():
            self.for_tier(tier)
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", str(name)):
                raise LayoutError(f"bucket name {name!r} for {tier} is not a valid S3 bucket name")
        return replace(self, **overrides)

    def as_dict(self) -> dict[str, str]:
        """``{tier: bucket}`` for every tier."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def printable(text) -> str:
    """``text`` as one printable line: control characters are shown escaped (pure).

    Keys come from the store, which accepts any bytes in a name: a newline, a carriage return
    or an ANSI escape in a key (or an id or message that quotes one) must not forge lines or
    colours in a table, ``speedlab logs`` or an error line. ``"a\\nb"`` -> ``a\\nb``,
    ``"\\x1b[31m"`` -> ``\\x1b[31m``; printable text (also non-ASCII) is returned unchanged.
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def validate_host_id(host_id: str) -> str:
    """Return ``host_id`` if it is safe in a key, else raise.

    Allowed: 1-63 letters, digits, ``-``, ``_`` and ``.``, starting with a letter or digit,
    without ``..``; ``all`` and ``aggregated`` are reserved.

    Raises
    ------
    InvalidHostId
        With the reason, for anything else (``/``, ``=``, spaces, ``..``, empty, too long).
    """
    if not isinstance(host_id, str) or not _HOST_RE.fullmatch(host_id) or ".." in host_id:
        raise InvalidHostId(
            f"invalid host id {host_id!r}: use 1-63 letters, digits, '-', '_' or '.', starting "
            "with a letter or digit (no '/', '=', '..' or spaces), e.g. 'home-primary'"
        )
    if host_id.lower() in RESERVED_HOST_IDS:
        raise InvalidHostId(f"invalid host id {host_id!r}: it is reserved; pick another name")
    return host_id


# --------------------------------------------------------------------------- raw results

def raw_slot_prefix(host_id: str, slot_start: datetime, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> str:
    """The folder of one host's 15-minute slot (ends with ``/``), from any moment in the slot."""
    s = slot_of(slot_start, tz)
    return (f"host={validate_host_id(host_id)}/year={s:%Y}/month={s:%Y%m}/day={s:%Y%m%d}/"
            f"hour={s:%Y%m%d%H}/minute={s:%M}/")


def raw_key(host_id: str, slot_start: datetime, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> str:
    """The key of speedlab's one result for ``host_id`` in the slot holding ``slot_start``."""
    return raw_slot_prefix(host_id, slot_start, tz) + RAW_NAME


def raw_host_prefix(host_id: str) -> str:
    """``host={host_id}/``: everything one host collected."""
    return f"host={validate_host_id(host_id)}/"


def raw_period_prefix(host_id: str, period: Period) -> str:
    """The narrowest key prefix holding all of one host's raw results in ``period``.

    For a week this is the year (or the host) prefix, so callers filter parsed keys by period.
    """
    s = period.start
    base = raw_host_prefix(host_id)
    if period.tier == "hourly":
        return base + f"year={s:%Y}/month={s:%Y%m}/day={s:%Y%m%d}/hour={s:%Y%m%d%H}/"
    if period.tier == "daily":
        return base + f"year={s:%Y}/month={s:%Y%m}/day={s:%Y%m%d}/"
    if period.tier == "monthly":
        return base + f"year={s:%Y}/month={s:%Y%m}/"
    last_day = (period.end - timedelta(microseconds=1)).date()
    if period.tier == "yearly" or last_day.year == s.year:
        return base + f"year={s:%Y}/"
    return base  # a week across New Year spans two year= folders


@dataclass(frozen=True)
class RawKey:
    """A parsed raw-result key.

    Attributes
    ----------
    host_id : str
    slot_local : datetime
        Naive local wall-clock start of the slot, from the key's ``hour=`` and ``minute=``.
    name : str
        The file name (``test.json`` or a legacy ``speed_data_…json``).
    legacy : bool
        True for the original collector's file names.
    epoch_s : int or None
        The Unix time in a legacy file name [s].
    """

    host_id: str
    slot_local: datetime
    name: str
    legacy: bool = False
    epoch_s: int | None = None

    def slot(self, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> datetime:
        """The aware start of the slot in zone ``tz``."""
        zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        return self.slot_local.replace(tzinfo=zone)


_RAW_RE = re.compile(
    r"host=(?P<host>[^/]+)/year=(?P<y>\d{4})/month=(?P<ym>\d{6})/day=(?P<ymd>\d{8})/"
    r"hour=(?P<ymdh>\d{10})/minute=(?P<mi>\d{2})/(?P<name>[^/]+)"
)


@lru_cache(maxsize=32768)  # a backfill parses each key up to four times (listing, tables); RawKey is frozen
def parse_raw_key(key: str) -> RawKey:
    """Parse a raw-result key (speedlab's or the original collector's).

    Raises
    ------
    LayoutError
        If the key is not a raw-result key or its partitions disagree with each other.
    """
    match = _RAW_RE.fullmatch(key)
    if not match:
        raise LayoutError(f"{key!r} is not a raw result key (host=…/year=…/month=…/day=…/hour=…/minute=…/NAME.json)")
    host, year, month, day, ymdh, mi, name = match.groups()
    if not (day == ymdh[:8] and month == ymdh[:6] and year == ymdh[:4]):
        raise LayoutError(f"{key!r}: year/month/day/hour partitions disagree")
    if mi not in _SLOT_MINUTES:
        raise LayoutError(f"{key!r}: minute={mi} is not a 15-minute slot (00, 15, 30, 45)")
    slot = _slot_start(ymdh, mi)
    if slot is None:
        raise LayoutError(f"{key!r}: hour={ymdh} is not a real date and hour")
    _valid_host(host)
    legacy = None if name == RAW_NAME else _LEGACY_RAW_RE.fullmatch(name)
    if name != RAW_NAME and not legacy and not name.endswith(".json"):
        raise LayoutError(f"{key!r}: a raw result is a .json object")
    return RawKey(host, slot, name, legacy=bool(legacy), epoch_s=int(legacy["epoch"]) if legacy else None)


_SLOT_MINUTES = frozenset(("00", "15", "30", "45"))


@lru_cache(maxsize=8192)
def _slot_start(ymdh: str, minute: str) -> datetime | None:
    """The naive slot start of an ``hour=`` label and ``minute=`` (``None``: not a real date);
    int fields, not strptime (20x slower), and made once for every host listed in that slot."""
    try:
        return datetime(int(ymdh[:4]), int(ymdh[4:6]), int(ymdh[6:8]), int(ymdh[8:10]), int(minute))
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def _valid_host(host_id: str) -> str:
    """:func:`validate_host_id`, remembered for the hosts seen (a listing names each thousands of times)."""
    return validate_host_id(host_id)


def legacy_raw_name(engine: str, minute: int, epoch_s: int) -> str:
    """The original collector's file name, ``speed_data_ookla_00_1735467234.json``."""
    return f"speed_data_{engine}_{minute:02d}_{epoch_s}.json"


# --------------------------------------------------------------------------- summaries

def summary_prefix(host_id: str | None = None) -> str:
    """``aggregated/`` (all hosts) or ``aggregated/host={host_id}/``."""
    return f"{AGGREGATED}/" if host_id is None else f"{AGGREGATED}/host={validate_host_id(host_id)}/"


def summary_dir(period: Period, host_id: str | None = None) -> str:
    """The folder of one summary (ends with ``/``)."""
    # the label is the start's %Y%m%d%H cut to the tier (computed once per period): a backfill
    # asks for ~10^5 keys, and formatting the start each time was a twentieth of its time
    label, tier = period.label, period.tier
    base = summary_prefix(host_id) + f"year={period.year}/"
    if tier == "yearly":
        return base
    if tier == "weekly":
        return base + f"week={label}/"
    base += f"month={label[:6]}/"
    if tier == "monthly":
        return base
    base += f"day={label[:8]}/"
    if tier == "daily":
        return base
    return base + f"hour={label}/"


def summary_key(period: Period, host_id: str | None = None) -> str:
    """The key of the summary of ``period`` for ``host_id`` (``None``: all hosts)."""
    return summary_dir(period, host_id) + SUMMARY_NAME


@dataclass(frozen=True)
class SummaryKey:
    """A parsed summary key: which tier, which period label, which host (``None``: all)."""

    tier: str
    label: str
    host_id: str | None = None
    name: str = SUMMARY_NAME
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def period(self, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> Period:
        """The :class:`~speedlab.periods.Period` the key names."""
        return parse_period(self.tier, self.label, tz)


_SUMMARY_RE = re.compile(
    r"aggregated/(?:host=(?P<host>[^/]+)/)?year=(?P<y>\d{4})/"
    r"(?:week=(?P<week>\d{4}W\d{2})/|month=(?P<ym>\d{6})/(?:day=(?P<ymd>\d{8})/(?:hour=(?P<ymdh>\d{10})/)?)?)?"
    r"(?P<name>[^/]+\.json)"
)


def parse_summary_key(key: str) -> SummaryKey:
    """Parse a summary key of any tier, global or per host.

    Any ``.json`` name is accepted so that stray extra objects in a summary folder can be
    found; :attr:`SummaryKey.name` tells them from ``speed_test_summary.json``.

    Raises
    ------
    LayoutError
        If the key is not a summary key or its partitions disagree.
    """
    match = _SUMMARY_RE.fullmatch(key)
    if not match:
        raise LayoutError(f"{key!r} is not a summary key (aggregated/[host=…/]year=…/…/{SUMMARY_NAME})")
    g = match.groupdict()
    host = validate_host_id(g["host"]) if g["host"] else None
    year = g["y"]
    if g["week"]:
        tier, label = "weekly", g["week"]
        if label[:4] != year:
            raise LayoutError(f"{key!r}: year={year} is not the ISO week-year of week={label}")
    elif g["ymdh"]:
        tier, label = "hourly", g["ymdh"]
        if not (label[:8] == g["ymd"] and label[:6] == g["ym"] and label[:4] == year):
            raise LayoutError(f"{key!r}: year/month/day/hour partitions disagree")
    elif g["ymd"]:
        tier, label = "daily", g["ymd"]
        if not (label[:6] == g["ym"] and label[:4] == year):
            raise LayoutError(f"{key!r}: year/month/day partitions disagree")
    elif g["ym"]:
        tier, label = "monthly", g["ym"]
        if label[:4] != year:
            raise LayoutError(f"{key!r}: year/month partitions disagree")
    else:
        tier, label = "yearly", year
    _real_period(tier, label)
    return SummaryKey(tier, label, host, g["name"])


@lru_cache(maxsize=16384)
def _real_period(tier: str, label: str) -> None:
    """Raise :class:`LayoutError` unless ``label`` is a real period of ``tier`` (zone-independent);
    remembered: each period's label comes once per host and once more for its table row."""
    parse_period(tier, label, "UTC")


def parse_key(key: str) -> RawKey | SummaryKey:
    """Parse any speedlab key: a :class:`RawKey` or a :class:`SummaryKey`."""
    return parse_summary_key(key) if key.startswith(f"{AGGREGATED}/") else parse_raw_key(key)


# --------------------------------------------------------------------------- listing prefixes

#: What every host's raw folder starts with: list ``host=`` in the main bucket for its hosts.
HOSTS_PREFIX = "host="
#: The folders of the all-hosts summaries' years (``aggregated/year=…/``), per host ones left out.
GLOBAL_SUMMARY_YEARS_PREFIX = f"{AGGREGATED}/year="
#: The partition folders below ``host=…/``, in order (year=, month=, day=, hour=); each matches
#: one listed folder name relative to its parent, and the hour's captures its label.
RAW_PARTITIONS = (re.compile(r"year=\d{4}/"), re.compile(r"month=\d{6}/"), re.compile(r"day=\d{8}/"),
                  re.compile(r"hour=(\d{10})/"))
_HOST_IN_KEY = re.compile(r"host=([^/]+)/")
_HOUR_IN_KEY = re.compile(r"/hour=(\d{10})/")


def folders_between(first_dir: str, last_dir: str) -> dict[str, str]:
    """``Store.list``'s ``start_after`` and ``before`` for every key in the folders ``first_dir`` ..
    ``last_dir`` (each ending in ``/``; keys sort folder by folder): after ``first_dir`` itself,
    before anything past ``last_dir`` (its ``/`` raised by one: ``0``)."""
    return {"start_after": first_dir, "before": last_dir[:-1] + chr(ord("/") + 1)}


def host_of_prefix(prefix: str) -> str:
    """The host id a listed ``host={host_id}/`` folder names (not validated: see :func:`validate_host_id`)."""
    return prefix[len(HOSTS_PREFIX):].rstrip("/")


def host_in_key(key: str) -> str | None:
    """The host a raw key is filed under (``host=H/…`` -> ``H``), also for keys :func:`parse_raw_key`
    refuses; ``None`` if the key does not start with a ``host=…/`` folder. Not validated."""
    match = _HOST_IN_KEY.match(key)
    return match.group(1) if match else None


def hour_in_key(key: str) -> str | None:
    """The label of the first ``/hour=YYYYMMDDHH/`` folder in ``key`` (``2025122914``), or ``None``
    if it has none; the label is not checked to be a real hour (see :func:`parse_raw_key`)."""
    match = _HOUR_IN_KEY.search(key)
    return match.group(1) if match else None


def raw_hour_label(key: str) -> str:
    """The ``hour=`` label (``2025122914``) of a raw key :func:`parse_raw_key` accepted.

    Raises
    ------
    LayoutError
        If the key has no ``/hour=YYYYMMDDHH/`` folder.
    """
    label = hour_in_key(key)
    if label is None:
        raise LayoutError(f"{key!r}: a raw key names its hour=YYYYMMDDHH folder")
    return label


# --------------------------------------------------------------------------- stale marks, run copies

#: Where stale marks live in the hourly bucket: ``stale/hour=YYYYMMDDHH/<host or all>.json``.
STALE_PREFIX = "stale/"
#: Where executed scheduled notebooks and their records are copied in the hourly bucket.
RUNS_PREFIX = "runs/"
_STALE_RE = re.compile(rf"{STALE_PREFIX}hour=(\d{{10}})/")


def stale_marker_key(hour_label: str, host_id: str | None = None) -> str:
    """The key of the stale mark of hour ``hour_label`` (``2025122914``) set for ``host_id`` (``None``: all)."""
    return f"{STALE_PREFIX}hour={hour_label}/{host_id or 'all'}.json"


def parse_stale_marker_key(key: str) -> str | None:
    """The hour label a stale mark's key names (not checked to be a real hour), or ``None`` if
    ``key`` is not below ``stale/hour=YYYYMMDDHH/``."""
    match = _STALE_RE.match(key)
    return match.group(1) if match else None


def run_copy_key(job: str, name: str) -> str:
    """The key of a scheduled notebook run's copied file ``name`` (``.ipynb`` or ``.json``) of ``job``."""
    return f"{RUNS_PREFIX}{job}/{name}"


# =========================================================================== columnar tables
# The Parquet tables derived from the layout above (docs/tables.md), in the daily tier's bucket
# (the main bucket: "the summary bucket") under ``tables/``, Hive-partitioned:
#
#   tables/summaries/tier=hourly/year=2025/month=12/part.parquet   hourly: one object per local month
#   tables/summaries/tier=daily/year=2025/part.parquet             daily, monthly, yearly: per year
#   tables/summaries/tier=weekly/year=2026/part.parquet            weekly: per ISO week-year (the
#                                                                  original key's year=)
#   tables/raw/year=2025/month=12/part.parquet                     raw results of every host, per
#                                                                  local month of the key's slot
#
# A partition's values are those of its source keys' folders (year=, month=YYYYMM), so each table
# object mirrors a fixed set of source prefixes (:func:`summary_table_sources`, :func:`raw_table_source`).

TABLES_PREFIX = "tables/"
SUMMARY_TABLES_PREFIX = f"{TABLES_PREFIX}summaries/"
RAW_TABLES_PREFIX = f"{TABLES_PREFIX}raw/"
TABLE_NAME = "part.parquet"
#: The value of a summary table's ``host`` column for the all-hosts summaries.
ALL_HOSTS = "all"


@dataclass(frozen=True, order=True)
class TablePartition:
    """One table object: ``tier`` (``raw`` or a summary tier), ``year`` and, for hourly and raw,
    ``month`` (1-12, the local month); ``None`` for the tiers partitioned by year only."""

    tier: str
    year: int
    month: int | None = None

    @property
    def key(self) -> str:
        """The table object's key in :func:`tables_bucket`."""
        base = RAW_TABLES_PREFIX if self.tier == "raw" else f"{SUMMARY_TABLES_PREFIX}tier={self.tier}/"
        base += f"year={self.year:04d}/"
        if self.month is not None:
            base += f"month={self.month:02d}/"
        return base + TABLE_NAME


def tables_bucket(buckets: Buckets) -> str:
    """The bucket holding every table: the daily tier's (the main bucket by default)."""
    return buckets.daily


def summary_table_partition(tier: str, label: str) -> TablePartition:
    """The partition of the summary of ``tier`` with period ``label`` (as in its key)."""
    if tier not in TIERS:
        raise LayoutError(f"unknown summary tier {tier!r}: use one of {', '.join(TIERS)}")
    year = int(label[:4])
    return TablePartition(tier, year, int(label[4:6]) if tier == "hourly" else None)


def raw_table_partition(key: RawKey) -> TablePartition:
    """The partition of a parsed raw key: the local month of its slot."""
    return TablePartition("raw", key.slot_local.year, key.slot_local.month)


def summary_table_sources(part: TablePartition, host_id: str | None = None) -> str:
    """The source prefix of ``part`` for ``host_id`` (``None``: all hosts) in the tier's bucket.
    Keys under it still need :func:`parse_summary_key` (a bucket may hold several tiers)."""
    base = summary_prefix(host_id) + f"year={part.year:04d}/"
    return base + (f"month={part.year:04d}{part.month:02d}/" if part.month is not None else "")


def raw_table_source(part: TablePartition, host_id: str) -> str:
    """The prefix of one host's raw results in the raw partition ``part`` (main bucket)."""
    return raw_host_prefix(host_id) + f"year={part.year:04d}/month={part.year:04d}{part.month or 0:02d}/"


_TABLE_RE = re.compile(r"tables/(?:summaries/tier=(?P<tier>[a-z]+)|(?P<raw>raw))/year=(?P<y>\d{4})/"
                       r"(?:month=(?P<m>\d{2})/)?" + re.escape(TABLE_NAME))


def parse_table_key(key: str) -> TablePartition:
    """Parse a table object's key.

    Raises
    ------
    LayoutError
        If ``key`` is not a table key of this layout (hourly and raw need ``month=``, the
        other tiers must not have one).
    """
    match = _TABLE_RE.fullmatch(key)
    tier = "raw" if match and match["raw"] else (match["tier"] if match else None)
    monthly = tier in ("raw", "hourly")
    if (not match or (tier != "raw" and tier not in TIERS) or monthly != bool(match["m"])
            or (match["m"] and not 1 <= int(match["m"]) <= 12)):
        raise LayoutError(f"{key!r} is not a table key ({SUMMARY_TABLES_PREFIX}tier=…/year=…/[month=…/]"
                          f"{TABLE_NAME} or {RAW_TABLES_PREFIX}year=…/month=…/{TABLE_NAME})")
    return TablePartition(str(tier), int(match["y"]), int(match["m"]) if match["m"] else None)


def table_partitions_between(tier: str, first: Period, last: Period) -> list[TablePartition]:
    """The partitions holding ``tier``'s periods from ``first`` to ``last`` (periods of ``tier``;
    for ``raw``, any periods: their local months count), in order."""
    if tier in ("raw", "hourly"):
        out, (y, m) = [], (first.start.year, first.start.month)
        end = (last.start.year, last.start.month)
        while (y, m) <= end:
            out.append(TablePartition(tier, y, m))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out
    return [TablePartition(tier, y) for y in range(first.year, last.year + 1)]
