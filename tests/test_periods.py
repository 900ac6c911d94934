"""Time: IST day boundaries, ISO weeks and week-years, slots, previous periods."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from speedlab.errors import ConfigError, LayoutError, UnsupportedDate
from speedlab.periods import (
    check_moment,
    children,
    get_zone,
    parse_period,
    parse_timestamp,
    period_of,
    periods_between,
    previous_period,
    slot_of,
)

UTC = timezone.utc


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("moment, day, year", [
    ("2025-12-31T18:29:59", "20251231", "2025"),
    ("2025-12-31T18:30:00", "20260101", "2026"),
    ("2025-06-15T00:00:00", "20250615", "2025"),
])
def test_ist_midnight_is_1830_utc(moment, day, year):
    assert period_of("daily", utc(moment)).label == day
    assert period_of("yearly", utc(moment)).label == year


@pytest.mark.parametrize("day, week, year_partition", [
    ("2021-01-03", "2020W53", 2020),
    ("2024-12-30", "2025W01", 2025),
    ("2026-12-31", "2026W53", 2026),
    ("2027-01-03", "2026W53", 2026),
    ("2027-01-04", "2027W01", 2027),
])
def test_iso_week_and_week_year(day, week, year_partition):
    moment = datetime.fromisoformat(day).replace(hour=12, tzinfo=get_zone())
    period = period_of("weekly", moment)
    assert period.label == week
    assert period.year == year_partition
    assert period.start.weekday() == 0 and (period.end - period.start) == timedelta(days=7)


def test_ist_day_bounds_in_utc():
    day = parse_period("daily", "2026-01-01")
    assert day.start_utc == utc("2025-12-31T18:30:00")
    assert day.end_utc == utc("2026-01-01T18:30:00")
    assert day.expected_slots == 96


def test_slot_of_floors_to_quarter_hour_local():
    assert slot_of(utc("2025-12-29T08:33:12")).isoformat() == "2025-12-29T14:00:00+05:30"
    assert slot_of(utc("2025-12-29T08:44:59")).isoformat() == "2025-12-29T14:00:00+05:30"
    assert slot_of(utc("2025-12-29T08:45:00")).isoformat() == "2025-12-29T14:15:00+05:30"


@pytest.mark.parametrize("tier, label, iso", [
    ("hourly", "2025122914", "2025-12-29T14"), ("daily", "20251229", "2025-12-29"),
    ("weekly", "2025W44", "2025-W44"), ("monthly", "202512", "2025-12"), ("yearly", "2025", "2025"),
])
def test_parse_period_accepts_key_labels_and_iso_forms(tier, label, iso):
    assert parse_period(tier, label).label == label
    assert parse_period(tier, iso).label == label
    assert parse_period(tier, label).iso_label == iso


@pytest.mark.parametrize("tier, label, message", [
    ("daily", "20251332", "not a real date"), ("weekly", "2025W54", "not a real date"),
    ("hourly", "2025122925", "not a real date"), ("monthly", "2025-1", "write it like"),
    ("fortnightly", "2025", "unknown tier"),
])
def test_parse_period_errors_name_the_problem(tier, label, message):
    with pytest.raises(LayoutError, match=message):
        parse_period(tier, label)


@pytest.mark.parametrize("tier, now, expected", [
    ("hourly", "2025-11-01T18:40:00", "2025110123"),   # 00:10 IST on 2 Nov -> 1 Nov 23:00
    ("daily", "2025-11-01T00:30:00", "20251031"),      # 06:00 IST on 1 Nov -> 31 Oct
    ("weekly", "2025-11-03T20:30:00", "2025W44"),      # Tue 02:00 IST 4 Nov -> 27 Oct - 2 Nov
    ("monthly", "2025-10-31T20:30:00", "202510"),      # 1 Nov 02:00 IST -> October
    ("yearly", "2025-12-31T20:30:00", "2025"),         # 1 Jan 2026 02:00 IST -> 2025
])
def test_previous_complete_period(tier, now, expected):
    assert previous_period(tier, utc(now)).label == expected


def test_week_2025w44_bounds_match_the_seed():
    week = parse_period("weekly", "2025W44")
    assert week.start.date().isoformat() == "2025-10-27"
    assert (week.end - timedelta(days=1)).date().isoformat() == "2025-11-02"


def test_children_compose_parents():
    assert len(children(parse_period("daily", "20251229"))) == 24
    assert children(parse_period("weekly", "2026W01"))[0].label == "20251229"
    assert len(children(parse_period("weekly", "2026W01"))) == 7
    assert len(children(parse_period("monthly", "202402"))) == 29
    assert [p.label for p in children(parse_period("yearly", "2025"))] == [f"2025{m:02d}" for m in range(1, 13)]
    assert children(parse_period("hourly", "2025122914")) == []


def test_periods_between_and_next_previous():
    days = periods_between("daily", utc("2025-12-30T00:00:00"), utc("2026-01-02T00:00:00"))
    assert [d.label for d in days] == ["20251230", "20251231", "20260101", "20260102"]
    assert days[0].next() == days[1] and days[1].previous() == days[0]


def test_other_zones_and_dst():
    day = parse_period("daily", "20250330", "Europe/Berlin")  # spring forward: 23 hours
    assert day.expected_slots == 92
    assert parse_period("daily", "20251026", "Europe/Berlin").expected_slots == 100
    with pytest.raises(ConfigError, match="unknown time zone"):
        get_zone("Mars/Olympus_Mons")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("zone, label, hours, slots, long_hour", [
    ("Europe/Berlin", "20251026", 24, 100, "2025102602"),      # fall back: 02:00-03:00 twice
    ("America/New_York", "20251102", 24, 100, "2025110201"),   # fall back: 01:00-02:00 twice
    ("Europe/Berlin", "20250330", 23, 92, None),               # spring forward: no 02:00
    ("Asia/Kolkata", "20251229", 24, 96, None)])
def test_the_hours_of_a_dst_change_day_are_its_local_hours_and_cover_it(zone, label, hours, slots, long_hour):
    """Each local hour label is one period (a repeated hour is one period of two hours), so the
    hours of a day end (this looped for ever on a fall-back day), tile it and name distinct keys."""
    day = parse_period("daily", label, zone)
    hourly = children(day)
    assert len(hourly) == hours == len({h.label for h in hourly})
    assert hourly[0].start_utc == day.start_utc and hourly[-1].end_utc == day.end_utc
    assert all(a.end_utc == b.start_utc for a, b in itertools.pairwise(hourly))
    assert sum(h.expected_slots for h in hourly) == slots == day.expected_slots
    assert [h.label for h in hourly if h.expected_slots != 4] == ([long_hour] if long_hour else [])
    for hour in hourly:
        assert parse_period("hourly", hour.label, zone) == hour
        assert period_of("hourly", hour.start_utc, zone) == hour
        assert period_of("hourly", hour.end_utc - timedelta(microseconds=1), zone) == hour
        assert hour.end.utcoffset() == hour.end.astimezone(UTC).astimezone(hour.zone).utcoffset()


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
       st.sampled_from(["hourly", "daily", "weekly", "monthly", "yearly"]),
       st.sampled_from(["Asia/Kolkata", "Europe/Berlin", "America/New_York"]))
def test_every_moment_lies_in_its_period_and_label_round_trips(moment, tier, zone):
    moment = moment.replace(tzinfo=UTC)
    period = period_of(tier, moment, zone)
    assert period.contains(moment)
    assert parse_period(tier, period.label, zone) == period
    assert period.next().start_utc == period.end_utc > period.start_utc
    assert period.next().start == period.end


@pytest.mark.parametrize("call", [
    lambda: parse_period("yearly", "9999"), lambda: parse_period("daily", "0001-01-01"),
    lambda: parse_period("hourly", "0001010100"), lambda: parse_period("weekly", "1969W01"),
    lambda: period_of("daily", datetime(1, 1, 1, tzinfo=UTC)),
    lambda: period_of("yearly", datetime(9999, 12, 31, 23, tzinfo=UTC)),
    lambda: period_of("yearly", utc("9998-12-31T23:00:00")),     # 9999 in IST
    lambda: previous_period("daily", utc("1970-01-01T00:00:00")),  # its previous day is 1969 in UTC
    lambda: parse_timestamp("0001-01-01T00:00:00+05:30"), lambda: parse_timestamp("9999-12-31T23:59:59Z"),
])
def test_dates_outside_1970_to_9998_are_one_layout_error_not_an_overflow(call):
    with pytest.raises(UnsupportedDate, match=r"outside the dates speedlab handles \(1970-01-01 to 9998-12-31\)"):
        call()
    assert issubclass(UnsupportedDate, LayoutError) and issubclass(UnsupportedDate, ValueError)


def test_the_edges_of_the_supported_dates_work_in_any_zone():
    for zone in ("Asia/Kolkata", "Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"):
        first, last = parse_period("yearly", "1970", zone), parse_period("yearly", "9998", zone)
        assert (first.label, last.label) == ("1970", "9998")
        assert [p.label for p in periods_between("monthly", utc("9998-11-15T00:00:00"),
                                                 utc("9998-12-15T00:00:00"), zone)] == ["999811", "999812"]
        assert parse_period("hourly", "9998123123", zone).end_utc > first.start_utc
        assert check_moment(utc("9998-06-01T00:00:00")).year == 9998
        with pytest.raises(UnsupportedDate):
            last.next()


def test_slots_begun_counts_the_slot_now_falls_in_and_never_more_than_the_period_holds():
    zone = ZoneInfo("Asia/Kolkata")
    day = parse_period("daily", "2026-01-06", zone)
    at = lambda h, m=0: datetime(2026, 1, 6, h, m, tzinfo=zone)  # noqa: E731
    assert day.slots_begun(at(0)) == 1 and day.slots_begun(at(18)) == 73 and day.slots_begun(at(18, 14)) == 73
    assert day.slots_begun(at(18, 15)) == 74 and day.slots_begun(at(23, 59)) == 96
    assert day.slots_begun(datetime(2026, 1, 5, 23, 59, tzinfo=zone)) == 0
    assert day.slots_begun(datetime(2027, 1, 1, tzinfo=zone)) == day.expected_slots == 96
