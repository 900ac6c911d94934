"""Reading raw results and summaries back, on both backends, with bad objects counted."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from speedlab import layout
from speedlab.layout import Buckets
from speedlab.periods import parse_period, period_of
from speedlab.reader import list_hosts, read_results, read_summaries
from speedlab.records import SpeedTestResult

B = Buckets()


def make_result(host: str, utc: str, download: float = 100.0) -> SpeedTestResult:
    moment = datetime.fromisoformat(utc.replace("Z", "+00:00"))
    local = moment.astimezone(layout.ZoneInfo("Asia/Kolkata"))
    slot = local.replace(minute=local.minute - local.minute % 15, second=0)
    return SpeedTestResult(host_id=host, engine="test", status="ok", error=None,
                           timestamp_utc=utc, timestamp_local=local.isoformat(),
                           slot=slot.isoformat(), download_mbps=download, upload_mbps=50.0,
                           ping_ms=10.0)


def put(store, record: SpeedTestResult) -> str:
    key = layout.raw_key(record.host_id, record.slot_start)
    store.put(B.raw, key, record.to_json().encode())
    return key


def test_read_results_filters_by_ist_day_and_counts_bad_objects(store):
    # 18:29:59Z is still 31 Dec in IST; 18:30Z is 1 Jan
    k1 = put(store, make_result("home-primary", "2025-12-31T18:29:59Z", 10))
    put(store, make_result("home-primary", "2025-12-31T18:30:00Z", 20))
    k3 = put(store, make_result("office-main", "2025-12-31T03:00:00Z", 30))
    bad = "host=office-main/year=2025/month=202512/day=20251231/hour=2025123110/minute=15/test.json"
    store.put(B.raw, bad, b'{"schema_version": 1, "host_id": ')
    wrong_host = "host=office-main/year=2025/month=202512/day=20251231/hour=2025123110/minute=30/test.json"
    store.put(B.raw, wrong_host, make_result("home-primary", "2025-12-31T05:00:00Z").to_json().encode())
    store.put(B.raw, "host=office-main/year=2025/month=202512/day=20251231/notes.txt", b"hello")

    read = read_results(store, B, parse_period("daily", "20251231"))
    assert [k for k, _ in read.results] == sorted([k1, k3])
    assert [r.download_mbps for _, r in read.results] == [10, 30]
    reasons = dict(read.rejected)
    assert "corrupt JSON" in reasons[bad]
    assert "host=office-main" in reasons[wrong_host]
    assert "not a raw result key" in reasons["host=office-main/year=2025/month=202512/day=20251231/notes.txt"]
    assert read.newest_modified is not None
    assert list_hosts(store, B) == ["home-primary", "office-main"]


def test_read_summaries_returns_present_and_rejects_corrupt(store):
    days = [parse_period("daily", d) for d in ("20251229", "20251230", "20251231")]
    store.put(B.daily, layout.summary_key(days[0]), json.dumps({"avg_download": 1}).encode())
    store.put(B.daily, layout.summary_key(days[2]), b"{broken")
    found, rejected = read_summaries(store, B, days)
    assert found == {"20251229": {"avg_download": 1}}
    assert rejected[0][0] == layout.summary_key(days[2])
    assert "corrupt JSON" in rejected[0][1]


def test_week_across_new_year_reads_both_year_folders(store):
    put(store, make_result("home-primary", "2025-12-29T05:00:00Z", 1))   # Monday of 2026W01
    put(store, make_result("home-primary", "2026-01-04T05:00:00Z", 2))   # Sunday of 2026W01
    put(store, make_result("home-primary", "2026-01-05T05:00:00Z", 3))   # next week
    week = period_of("weekly", datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert week.label == "2026W01"
    read = read_results(store, B, week)
    assert [r.download_mbps for _, r in read.results] == [1, 2]
