"""``coverage``: hour-by-hour slots of one local day: ok, failed, missing, duplicates."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from speedlab.coverage import FutureDate, coverage, coverage_table, host_coverage, parse_day, slots_of
from speedlab.errors import InvalidHostId, LayoutError
from tests.helpers.data import B, put, result, slots

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def _hour(expected=4, ok=4, failed=0, missing=(), duplicates=0, invalid=0):
    return {"expected": expected, "ok": ok, "failed": failed, "missing": list(missing),
            "duplicates": duplicates, "invalid": invalid}


def test_day_with_missing_hours_a_failed_test_duplicates_and_a_corrupt_object(store, config_for):
    for local in slots("2025-12-29 00:00", 96):          # 00:02, 00:17, ... 23:47
        if local.startswith(("2025-12-29 05:", "2025-12-29 10:32")):
            continue                                       # all of 05:00, and 10:30
        put(store, result("home-primary", local, status="failed" if local.startswith("2025-12-29 12:17") else "ok"))
    put(store, result("home-primary", "2025-12-29 14:09:00"), legacy=True)   # catch-up duplicate
    bad = put(store, result("home-primary", "2025-12-29 20:47:00"))
    store.put(B.raw, bad, b"{not json")                                         # 20:45 now corrupt
    put(store, result("home-primary", "2025-12-28 23:59:00"))               # previous IST day
    put(store, result("home-primary", "2025-12-30 00:00:10"))               # next IST day
    put(store, result("office-main", "2025-12-29 23:50:00"))

    report = coverage(config_for(store), "2025-12-29", now=NOW)
    assert report["date"] == "2025-12-29" and report["timezone"] == "Asia/Kolkata"
    assert sorted(report["hosts"]) == ["home-primary", "office-main"]
    hours = report["hosts"]["home-primary"]["hours"]
    assert list(hours) == [f"{h:02d}" for h in range(24)]
    assert hours["00"] == _hour()
    assert hours["05"] == _hour(ok=0, missing=["00", "15", "30", "45"])
    assert hours["10"] == _hour(ok=3, missing=["30"])
    assert hours["12"] == _hour(ok=3, failed=1)
    assert hours["14"] == _hour(duplicates=1)
    assert hours["20"] == _hour(ok=3, missing=["45"], invalid=1)
    assert report["hosts"]["home-primary"]["total"] == {
        "expected": 96, "ok": 89, "failed": 1, "missing": 6, "duplicates": 1, "invalid": 1}
    (problem,) = report["hosts"]["home-primary"]["problems"]
    assert problem["key"] == bad and "corrupt JSON" in problem["reason"]
    office = report["hosts"]["office-main"]
    assert office["hours"]["23"] == _hour(ok=1, missing=["00", "15", "30"])
    assert office["total"]["ok"] == 1 and office["total"]["missing"] == 95

    only = coverage(config_for(store), "2025-12-29", host="office-main", now=NOW)
    assert list(only["hosts"]) == ["office-main"]


def test_an_invalid_object_in_a_slot_is_counted_as_invalid_not_as_a_duplicate(store, config_for):
    """The rollup counts valid extras only (duplicates_ignored); coverage agrees with it."""
    first = put(store, result("home-primary", "2025-12-29 14:02:00"))
    put(store, result("home-primary", "2025-12-29 14:09:00"), legacy=True)     # a valid duplicate
    for name, body in (("speed_data_ookla_00_1.json", b"[1, 2]"), ("speed_data_ookla_00_2.json", b"{bad")):
        store.put(B.raw, first.rsplit("/", 1)[0] + "/" + name, body)               # two invalid objects
    put(store, result("home-primary", "2025-12-29 14:17:00"))
    store.put(B.raw, first.replace("minute=00", "minute=30").rsplit("/", 1)[0] + "/speed_data_ookla_30_3.json",
              b'"hello"')                                                          # only an invalid one
    hours = coverage(config_for(store), "2025-12-29", now=NOW)["hosts"]["home-primary"]["hours"]
    assert hours["14"] == _hour(ok=2, missing=["30", "45"], duplicates=1, invalid=3)


def test_a_host_without_any_result_is_all_missing(local_store, config_for):
    report = coverage(config_for(local_store), "2025-12-29", host="backup-location", now=NOW)
    total = report["hosts"]["backup-location"]["total"]
    assert total == {"expected": 96, "ok": 0, "failed": 0, "missing": 96, "duplicates": 0, "invalid": 0}
    assert coverage(config_for(local_store), "2025-12-29", now=NOW)["hosts"] == {}


def test_today_expects_only_finished_slots():
    now = datetime(2025, 12, 29, 14, 20, tzinfo=ZoneInfo("Asia/Kolkata"))
    day = parse_day("today", "Asia/Kolkata", now)
    report = host_coverage(day, [(datetime(2025, 12, 29, 14, 15), "ok")], now)
    assert report["hours"]["14"] == _hour(expected=2, ok=1, missing=["00"])
    assert report["hours"]["15"] == _hour(expected=0, ok=0)
    assert report["total"]["expected"] == 14 * 4 + 2


def test_daylight_saving_days_have_23_and_25_hours():
    london = ZoneInfo("Europe/London")
    spring = parse_day("2025-03-30", "Europe/London", NOW)
    autumn = parse_day("2025-10-26", "Europe/London", NOW)
    assert len(slots_of(spring)) == 92 and len(slots_of(autumn)) == 100
    report = host_coverage(spring, [], NOW)
    assert report["hours"]["01"]["expected"] == 0 and report["total"]["expected"] == 92
    assert host_coverage(autumn, [], NOW)["hours"]["01"]["expected"] == 8
    assert slots_of(spring)[0] == datetime(2025, 3, 30, tzinfo=london)


def test_dates_future_malformed_and_relative():
    assert parse_day("yesterday", "Asia/Kolkata", NOW).label == "20260104"
    assert parse_day("2026-01-05", "Asia/Kolkata", NOW).label == "20260105"
    with pytest.raises(FutureDate, match=r"2026-01-06 is in the future \(today in Asia/Kolkata is 2026-01-05\)"):
        parse_day("2026-01-06", "Asia/Kolkata", NOW)
    with pytest.raises(LayoutError, match="not a real date"):
        parse_day("2025-02-30", "Asia/Kolkata", NOW)
    for text in ("29-12-2025", "20251229", "2025-12-29T10", ""):
        with pytest.raises(LayoutError, match="write it as YYYY-MM-DD"):
            parse_day(text, "Asia/Kolkata", NOW)


def test_bad_host_and_table(local_store, config_for):
    with pytest.raises(InvalidHostId):
        coverage(config_for(local_store), "2025-12-29", host="a b", now=NOW)
    put(local_store, result("home-primary", "2025-12-29 00:01:00"))
    text = coverage_table(coverage(config_for(local_store), "2025-12-29", now=NOW))
    lines = text.splitlines()
    assert lines[0] == ("home-primary  2025-12-29 (Asia/Kolkata): 1/96 ok, 0 failed, 95 missing, "
                        "0 duplicates, 0 invalid")
    assert lines[3].split() == ["00", "4", "1", "0", "15", "30", "45"]
    assert len(lines) == 2 + 1 + 24
