"""``latest``: the newest entries of every tier, newest first, from current listings."""

from __future__ import annotations

from datetime import datetime

import pytest

from speedlab.errors import InvalidHostId, LayoutError
from speedlab.latest import latest, latest_table
from speedlab.text import format_table
from tests.helpers.data import IST, B, put, put_summary, result
from tests.helpers.stores import SpyStore


def _raw_store(store):
    put(store, result("home-primary", "2025-12-29 13:47:10", download=11))
    put(store, result("home-primary", "2025-12-29 14:02:10", download=12))
    put(store, result("home-primary", "2025-12-31 23:46:00", download=13))  # newest day of 2025
    put(store, result("home-primary", "2024-06-01 10:00:30", download=10))
    put(store, result("office-main", "2026-01-01 00:01:00", download=21))   # next year
    put(store, result("office-main", "2025-12-31 23:31:00", status="failed"), legacy=True)


def test_minutes_merges_hosts_newest_first(store, config_for):
    _raw_store(store)
    entries = latest(config_for(store), "minutes", last=4)
    assert [(e.host_id, e.label) for e in entries] == [
        ("office-main", "2026-01-01T00:00"), ("home-primary", "2025-12-31T23:45"),
        ("office-main", "2025-12-31T23:30"), ("home-primary", "2025-12-29T14:00")]
    assert [e.data["download_mbps"] for e in entries] == [21, 13, None, 12]
    assert entries[2].data["status"] == "failed"
    assert entries[2].key.endswith("/minute=30/speed_data_ookla_30_1767204060.json")
    assert all(e.error is None and e.tier == "raw" and e.bucket == B.raw for e in entries)


def test_latest_is_each_hosts_newest_and_host_filter(store, config_for):
    _raw_store(store)
    config = config_for(store)
    assert [(e.host_id, e.data["download_mbps"]) for e in latest(config, "latest")] == [
        ("office-main", 21), ("home-primary", 13)]
    two = latest(config, "latest", last=2, host="home-primary")
    assert [e.data["download_mbps"] for e in two] == [13, 12]


def test_listings_are_current_not_cached(store, config_for):
    config = config_for(store)
    put(store, result("home-primary", "2025-12-29 14:02:10", download=1))
    assert [e.label for e in latest(config, "latest")] == ["2025-12-29T14:00"]
    put(store, result("home-primary", "2025-12-29 14:17:10", download=2))
    assert [e.data["download_mbps"] for e in latest(config, "latest")] == [2]


def test_summaries_newest_first_global_or_per_host(store, config_for):
    for label in ("20251130", "20251201", "20251231", "20260101"):
        put_summary(store, "daily", label, avg_download=float(label[-2:]))
    put_summary(store, "daily", "20260101", name="speed_test_summary_old.json", avg_download=-1.0)
    put_summary(store, "daily", "20260102", host="home-primary", avg_download=2.0)
    config = config_for(store)
    glob = latest(config, "daily", last=3)
    assert [(e.label, e.host_id, e.data["avg_download"]) for e in glob] == [
        ("20260101", None, 1.0), ("20251231", None, 31.0), ("20251201", None, 1.0)]
    assert glob[0].key == "aggregated/year=2026/month=202601/day=20260101/speed_test_summary.json"
    mine = latest(config, "daily", host="home-primary")
    assert [(e.label, e.host_id) for e in mine] == [("20260102", "home-primary")]
    put_summary(store, "weekly", "2025W52")
    put_summary(store, "weekly", "2026W01")
    assert [e.label for e in latest(config, "weekly")] == ["2026W01", "2025W52"]
    assert latest(config, "yearly") == []


def test_unreadable_objects_are_shown_with_the_reason(store, config_for):
    key = put(store, result("home-primary", "2025-12-29 14:02:10"))
    store.put(B.raw, key, b'{"schema_version": 1, ')
    put_summary(store, "hourly", "2025122914")
    store.put(B.hourly, "aggregated/year=2025/month=202512/day=20251229/hour=2025122914/speed_test_summary.json",
              b"[1]")
    (raw,) = latest(config_for(store), "latest")
    assert raw.data is None and "corrupt JSON" in raw.error
    (hourly,) = latest(config_for(store), "hourly")
    assert hourly.data is None and "must be a JSON object" in hourly.error


def test_a_summary_query_calls_unreadable_is_unreadable_in_latest_too(local_store, config_for):
    """One validity rule (TierSummary.from_dict): wrong types and negative counts are not a normal row."""
    from speedlab.query import rows
    put_summary(local_store, "daily", "20251228")
    put_summary(local_store, "daily", "20251229", avg_download="fast", records_aggregated=-5)
    put_summary(local_store, "daily", "20251230", records_aggregated=-5)
    config = config_for(local_store)
    negative, wrong_type, good = latest(config, "daily")
    assert (good.label, good.error, good.data["avg_download"]) == ("20251228", None, 100.0)
    assert negative.data is None and "records_aggregated' = -5 must not be negative" in negative.error
    assert wrong_type.data is None and "avg_download" in wrong_type.error
    answered = {r["period"]: r for r in rows("daily", 4, config=config, store=local_store,
                                             now=datetime(2025, 12, 31, 12, tzinfo=IST))}
    assert [answered[e.label]["status"] for e in (negative, wrong_type, good)] == ["unreadable", "unreadable", "ok"]
    table = latest_table([negative, wrong_type, good]).splitlines()
    assert table[2].startswith("20251230") and table[2].split()[1:6] == ["all", "-", "-", "-", "-"]
    assert table[3].startswith("20251229") and table[3].split()[1:7] == ["all", "-", "-", "-", "-", "unreadable:"]


def test_walk_lists_only_the_newest_folders(local_store, config_for):
    for year in (2022, 2023, 2024, 2025):
        for month in (3, 11):
            put(local_store, result("home-primary", f"{year}-{month:02d}-10 08:01:00", download=year))
    spy = SpyStore(local_store)
    (entry,) = latest(config_for(local_store), "latest", store=spy)
    assert entry.data["download_mbps"] == 2025 and entry.label == "2025-11-10T08:00"
    assert not [p for p in spy.listed if "year=2024" in p or "month=202503" in p]
    assert spy.listed[-1] == "host=home-primary/year=2025/month=202511/day=20251110/"


def test_bad_arguments(local_store, config_for):
    config = config_for(local_store)
    with pytest.raises(LayoutError, match=r"unknown period 'daily2'.*latest, minutes, hourly"):
        latest(config, "daily2")
    with pytest.raises(LayoutError, match="at least 1"):
        latest(config, "minutes", last=0)
    with pytest.raises(InvalidHostId):
        latest(config, "latest", host="../etc")


def test_tables_for_people(local_store, config_for):
    put(local_store, result("home-primary", "2025-12-29 14:02:10", download=187.44, upload=93.72))
    text = latest_table(latest(config_for(local_store), "latest"))
    assert text.splitlines() == [
        "slot (local)      host          status  down Mbit/s  up Mbit/s  ping ms  object",
        "----------------  ------------  ------  -----------  ---------  -------  ---------",
        "2025-12-29 14:00  home-primary  ok            187.4       93.7     10.0  test.json"]
    assert latest_table([]) == "no entries found"
    assert format_table(("a", "bb"), [(1, None)], right=(0,)).splitlines() == ["a  bb", "-  --", "1  -"]


def test_objects_dated_after_now_are_flagged_after_the_newest_not_listed_first(local_store, config_for):
    for label in ("20251230", "20251231", "20260102", "20990101"):  # 2 January is in progress
        put_summary(local_store, "daily", label, avg_download=1.0)
    put(local_store, result("home-primary", "2025-12-31 23:46:00", download=13))
    put(local_store, result("home-primary", "2030-06-01 10:00:00", download=99))
    config = config_for(local_store)
    now = datetime(2026, 1, 2, 12, 0, tzinfo=IST)
    daily = latest(config, "daily", last=2, now=now)
    assert [(e.label, e.error is None) for e in daily] == [("20260102", True), ("20251231", True),
                                                          ("20990101", False)]
    assert daily[-1].data is None and daily[-1].error.startswith("dated after now (2026-01-02T06:30+00:00)")
    newest = latest(config, "latest", now=now)
    assert [(e.label, e.error is None) for e in newest] == [("2025-12-31T23:45", True), ("2030-06-01T10:00", False)]
    assert "dated after now" in latest_table(newest)
