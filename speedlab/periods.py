"""Time: the configured zone's slots, hours, days, ISO weeks, months and years.

Pure functions only: no clock calls (``now`` is always an argument) and no I/O.

Every period is a half-open interval ``[start, end)`` of *local* wall-clock time in the
configured zone (default ``Asia/Kolkata``, IST, UTC+05:30 with no daylight saving). An IST
day therefore runs from 18:30 UTC to 18:30 UTC. Weeks are ISO 8601 weeks (Monday to Sunday)
labelled by their ISO week-year, so 2024-12-30 is in ``2025W01`` and 2021-01-03 in
``2020W53``.

Supported dates: years :data:`MIN_YEAR` (1970) to :data:`MAX_YEAR` (9998), so that every period
and its neighbours can be represented in every zone without overflowing Python's dates. A label
or a moment outside them raises :class:`~speedlab.errors.LayoutError` naming the range, checked
in one place (:func:`check_moment`), never an ``OverflowError``.

Labels are the ones the storage layout uses:

========  ==============  ===========================================
tier      label           other accepted spellings (``parse_period``)
========  ==============  ===========================================
hourly    ``2025122914``  ``2025-12-29T14``, ``2025-12-29 14``
daily     ``20251229``    ``2025-12-29``
weekly    ``2025W52``     ``2025-W52``
monthly   ``202512``      ``2025-12``
yearly    ``2025``
========  ==============  ===========================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError, LayoutError, UnsupportedDate

DEFAULT_TIMEZONE = "Asia/Kolkata"
SLOT_MINUTES = 15
SLOT = timedelta(minutes=SLOT_MINUTES)
TIERS = ("hourly", "daily", "weekly", "monthly", "yearly")
#: ISO weekday names, Monday first (``datetime.weekday()`` indexes them).
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
UTC = timezone.utc
#: The first and last years speedlab handles (a period's neighbours stay representable in any zone).
MIN_YEAR, MAX_YEAR = 1970, 9998
SUPPORTED_DATES = f"{MIN_YEAR}-01-01 to {MAX_YEAR}-12-31"

__all__ = [
    "DEFAULT_TIMEZONE",
    "SLOT",
    "SLOT_MINUTES",
    "TIERS",
    "WEEKDAYS",
    "MAX_YEAR",
    "MIN_YEAR",
    "SUPPORTED_DATES",
    "Period",
    "check_moment",
    "children",
    "get_zone",
    "parse_period",
    "parse_timestamp",
    "period_of",
    "periods_between",
    "previous_period",
    "slot_of",
    "to_local",
]


def get_zone(name: str = DEFAULT_TIMEZONE) -> ZoneInfo:
    """Return the IANA zone ``name``.

    Raises
    ------
    ConfigError
        If ``name`` is not a known IANA zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(
            f"unknown time zone {name!r}: use an IANA name such as 'Asia/Kolkata' or 'UTC'"
        ) from None


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else get_zone(tz)


def check_moment(moment: datetime, what: str = "time") -> datetime:
    """Return ``moment`` if its year is one speedlab handles (:data:`MIN_YEAR`..:data:`MAX_YEAR`).

    Raises
    ------
    UnsupportedDate
        Naming ``what`` and the supported dates (a ``LayoutError`` and ``ValueError`` too).
    """
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise UnsupportedDate(f"{what} {moment.isoformat()} is outside the dates speedlab handles "
                          f"({SUPPORTED_DATES})")
    return moment


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp with an offset (``Z`` allowed) into an aware datetime.

    Raises
    ------
    ValueError
        If the text is not ISO 8601, has no UTC offset, or is outside the supported dates
        (:func:`check_moment`; a :class:`~speedlab.errors.LayoutError`).
    """
    value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return check_moment(value, "timestamp")


def to_local(moment: datetime, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> datetime:
    """Return the aware datetime ``moment`` in zone ``tz``; naive input is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(_zone(tz))


def slot_of(moment: datetime, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> datetime:
    """Return the start of the 15-minute slot holding ``moment``, in local time."""
    local = to_local(moment, tz)
    return local.replace(minute=local.minute - local.minute % SLOT_MINUTES, second=0, microsecond=0)


@dataclass(frozen=True, order=True)
class Period:
    """One hour, day, ISO week, month or year of local time, ``[start, end)``.

    Attributes
    ----------
    tier : str
        ``hourly``, ``daily``, ``weekly``, ``monthly`` or ``yearly``.
    start, end : datetime
        Aware local datetimes; ``end`` is exclusive.
    """

    tier: str
    start: datetime
    end: datetime

    @property
    def zone(self) -> ZoneInfo:
        """The time zone of ``start`` and ``end`` (:func:`period_of` builds every period in one)."""
        zone = self.start.tzinfo
        if not isinstance(zone, ZoneInfo):
            raise TypeError(f"period {self.tier} {self.start} is not in a ZoneInfo time zone")
        return zone

    @cached_property
    def label(self) -> str:
        """The layout's label: ``2025122914``, ``20251229``, ``2025W52``, ``202512``, ``2025``
        (computed once per period: a view asks for it thousands of times)."""
        s = self.start
        if self.tier == "hourly":
            return s.strftime("%Y%m%d%H")
        if self.tier == "daily":
            return s.strftime("%Y%m%d")
        if self.tier == "weekly":
            year, week, _ = s.isocalendar()
            return f"{year}W{week:02d}"
        if self.tier == "monthly":
            return s.strftime("%Y%m")
        return s.strftime("%Y")

    @property
    def iso_label(self) -> str:
        """A human spelling: ``2025-12-29T14``, ``2025-12-29``, ``2025-W52``, ``2025-12``, ``2025``."""
        s = self.start
        return {
            "hourly": s.strftime("%Y-%m-%dT%H"),
            "daily": s.strftime("%Y-%m-%d"),
            "weekly": self.label.replace("W", "-W"),
            "monthly": s.strftime("%Y-%m"),
            "yearly": s.strftime("%Y"),
        }[self.tier]

    @property
    def year(self) -> int:
        """The ``year=`` partition: the ISO week-year for weeks, the calendar year otherwise."""
        return self.start.isocalendar()[0] if self.tier == "weekly" else self.start.year

    @cached_property
    def start_utc(self) -> datetime:
        """``start`` in UTC."""
        return self.start.astimezone(UTC)

    @cached_property
    def end_utc(self) -> datetime:
        """``end`` in UTC."""
        return self.end.astimezone(UTC)

    @property
    def expected_slots(self) -> int:
        """How many 15-minute slots the period holds (96 for a day without a DST change)."""
        return int((self.end_utc - self.start_utc) / SLOT)

    def slots_begun(self, now: datetime) -> int:
        """How many of the period's 15-minute slots have begun at the aware ``now``: all of them
        (:attr:`expected_slots`) once the period is over, none before it starts, and for a period
        in progress the ones up to and including the slot ``now`` falls in (a day at 18:00: 73,
        the slots 00:00 to 18:00). Coverage of a period so far counts against these, not against
        slots that have not happened yet."""
        if now.tzinfo is None:
            raise ValueError("slots_begun needs an aware datetime")
        elapsed = now.astimezone(UTC) - self.start_utc
        if elapsed < timedelta(0):
            return 0
        return min(self.expected_slots, int(elapsed / SLOT) + 1)

    @property
    def days(self) -> int:
        """How many calendar days the period spans (1 for an hour)."""
        return max(1, (self.end.date() - self.start.date()).days)

    def contains(self, moment: datetime) -> bool:
        """Whether the aware ``moment`` falls in ``[start, end)``."""
        return self.start_utc <= moment.astimezone(UTC) < self.end_utc

    def next(self) -> Period:
        """The period of the same tier that follows this one."""
        return period_of(self.tier, self.end, self.zone)

    def previous(self) -> Period:
        """The period of the same tier that precedes this one."""
        return period_of(self.tier, self.start_utc - timedelta(microseconds=1), self.zone)


def _local(tz: ZoneInfo, year: int, month: int = 1, day: int = 1, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=tz)


def period_of(tier: str, moment: datetime, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> Period:
    """Return the ``tier`` period holding ``moment`` (aware; naive is taken as UTC).

    Raises
    ------
    LayoutError
        If ``tier`` is not one of :data:`TIERS`, or ``moment`` is outside the supported dates.
    """
    zone = _zone(tz)
    local = check_moment(to_local(check_moment(moment), zone))  # the local year counts too
    if tier == "hourly":
        # a local hour, as its label names it: an hour the clocks repeat (fall back) is one period
        # of both (its label and the layout's hour= folder name both; 8 slots), an hour they skip
        # is none. The end is the next wall-clock hour, normalised through UTC (in a skipped hour
        # the wall clock names no instant of its own)
        start = _local(zone, local.year, local.month, local.day, local.hour)
        wall = datetime(local.year, local.month, local.day, local.hour) + timedelta(hours=1)
        end = _local(zone, wall.year, wall.month, wall.day, wall.hour).astimezone(UTC).astimezone(zone)
    elif tier == "daily":
        start = _local(zone, local.year, local.month, local.day)
        nxt = local.date() + timedelta(days=1)
        end = _local(zone, nxt.year, nxt.month, nxt.day)
    elif tier == "weekly":
        monday = local.date() - timedelta(days=local.weekday())
        sunday_next = monday + timedelta(days=7)
        start = _local(zone, monday.year, monday.month, monday.day)
        end = _local(zone, sunday_next.year, sunday_next.month, sunday_next.day)
    elif tier == "monthly":
        start = _local(zone, local.year, local.month)
        end = _local(zone, local.year + local.month // 12, local.month % 12 + 1)
    elif tier == "yearly":
        start = _local(zone, local.year)
        end = _local(zone, local.year + 1)
    else:
        raise LayoutError(f"unknown tier {tier!r}: use one of {', '.join(TIERS)}")
    return Period(tier, start, end)


_PATTERNS = {
    "hourly": [r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?P<h>\d{2})",
               r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})[T ](?P<h>\d{2})(:00)?"],
    "daily": [r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})", r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"],
    "weekly": [r"(?P<y>\d{4})-?W(?P<w>\d{2})"],
    "monthly": [r"(?P<y>\d{4})(?P<m>\d{2})", r"(?P<y>\d{4})-(?P<m>\d{2})"],
    "yearly": [r"(?P<y>\d{4})"],
}


def parse_period(tier: str, label: str, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> Period:
    """Return the ``tier`` period named by ``label`` (see the module's table of spellings).

    Raises
    ------
    LayoutError
        If the label does not match the tier, names an impossible date (``2025W54``) or a
        year outside :data:`MIN_YEAR`..:data:`MAX_YEAR`.
    """
    if tier not in _PATTERNS:
        raise LayoutError(f"unknown tier {tier!r}: use one of {', '.join(TIERS)}")
    zone = _zone(tz)
    for pattern in _PATTERNS[tier]:
        match = re.fullmatch(pattern, label.strip())
        if not match:
            continue
        g = {k: int(v) for k, v in match.groupdict().items() if v is not None}
        if not MIN_YEAR <= g["y"] <= MAX_YEAR:
            raise UnsupportedDate(f"{tier} period {label!r} is outside the dates speedlab handles "
                              f"({SUPPORTED_DATES})")
        try:
            if tier == "weekly":
                monday = date.fromisocalendar(g["y"], g["w"], 1)
                moment = _local(zone, monday.year, monday.month, monday.day)
            else:
                moment = _local(zone, g["y"], g.get("m", 1), g.get("d", 1), g.get("h", 0))
                if g.get("h", 0) > 23:
                    raise ValueError("hour must be in 0..23")
        except ValueError as exc:
            raise LayoutError(f"{tier} period {label!r} is not a real date: {exc}") from None
        return period_of(tier, moment, zone)
    examples = {"hourly": "2025122914", "daily": "20251229 or 2025-12-29", "weekly": "2025W44",
                "monthly": "202512 or 2025-12", "yearly": "2025"}
    raise LayoutError(f"{tier} period {label!r} is not understood: write it like {examples[tier]}")


def previous_period(tier: str, now: datetime, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> Period:
    """Return the last *complete* ``tier`` period before ``now``."""
    return period_of(tier, now, tz).previous()


def periods_between(tier: str, first: datetime, last: datetime,
                    tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> list[Period]:
    """Return every ``tier`` period from the one holding ``first`` to the one holding ``last``."""
    current = period_of(tier, first, tz)
    final = period_of(tier, last, tz)
    out = []
    while current.start_utc <= final.start_utc:
        out.append(current)
        if current.start_utc == final.start_utc:
            break  # the period after the last one may lie beyond the supported dates
        current = current.next()
    return out


#: Which finer tier a coarser summary is built from.
CHILD_TIER = {"daily": "hourly", "weekly": "daily", "monthly": "daily", "yearly": "monthly"}


def children(period: Period) -> list[Period]:
    """Return the finer periods that make up ``period`` (see :data:`CHILD_TIER`).

    Hours make days, days make weeks and months, months make years. Hours have no children
    (they are built from raw results).
    """
    if period.tier == "hourly":
        return []
    child = CHILD_TIER[period.tier]
    return periods_between(child, period.start, period.end - timedelta(microseconds=1), period.zone)
