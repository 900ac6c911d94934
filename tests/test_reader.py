"""Reading raw results and summaries back, on both backends, with bad objects counted."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from speedlab import layout
from speedlab.counting import CountingStore
from speedlab.periods import parse_period, period_of
from speedlab.reader import list_hosts, list_raw, list_raw_span, parse_summary, read_results, read_summaries
from tests.helpers.data import IST, B, put, result


def test_read_results_filters_by_ist_day_and_counts_bad_objects(store):
    # 18:29:59Z is still 31 Dec in IST; 18:30Z is 1 Jan
    k1 = put(store, result("home-primary", "2025-12-31T18:29:59Z", 10))
    put(store, result("home-primary", "2025-12-31T18:30:00Z", 20))
    k3 = put(store, result("office-main", "2025-12-31T03:00:00Z", 30))
    bad = "host=office-main/year=2025/month=202512/day=20251231/hour=2025123110/minute=15/test.json"
    store.put(B.raw, bad, b'{"schema_version": 1, "host_id": ')
    wrong_host = "host=office-main/year=2025/month=202512/day=20251231/hour=2025123110/minute=30/test.json"
    store.put(B.raw, wrong_host, result("home-primary", "2025-12-31T05:00:00Z").to_json().encode())
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
    days = [parse_period("daily", d) for d in ("20251229", "20251230", "20251231", "20260101")]
    seed = {"avg_download": 1.0, "avg_upload": 2.0, "avg_ping": 3.0, "records_aggregated": 1}
    store.put(B.daily, layout.summary_key(days[0]), json.dumps(seed).encode())
    store.put(B.daily, layout.summary_key(days[2]), b"{broken")
    store.put(B.daily, layout.summary_key(days[3]), json.dumps({**seed, "records_aggregated": -5}).encode())
    found, rejected = read_summaries(store, B, days)
    assert found == {"20251229": seed}
    assert [key for key, _ in rejected] == [layout.summary_key(days[2]), layout.summary_key(days[3])]
    assert "corrupt JSON" in rejected[0][1] and "records_aggregated" in rejected[1][1]


def test_parse_summary_is_the_one_validity_decision():
    seed = {"avg_download": 1.0, "avg_upload": 2.0, "avg_ping": 3.0, "records_aggregated": 1}
    assert parse_summary(json.dumps(seed).encode(), "k") == (seed, None)
    assert parse_summary(b"[1, 2]", "k") == (None, "summary must be a JSON object, not list in k")
    assert parse_summary(b"{broken", "k")[1].startswith("corrupt JSON in k")

    def refuse(data, key):
        raise ValueError("sketch of another alpha")
    assert parse_summary(json.dumps(seed).encode(), "k", refuse) == (
        None, "not a usable summary in k: ValueError: sketch of another alpha")


def test_week_across_new_year_reads_both_year_folders(store):
    put(store, result("home-primary", "2025-12-29T05:00:00Z", 1))   # Monday of 2026W01
    put(store, result("home-primary", "2026-01-04T05:00:00Z", 2))   # Sunday of 2026W01
    put(store, result("home-primary", "2026-01-05T05:00:00Z", 3))   # next week
    week = period_of("weekly", datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert week.label == "2026W01"
    read = read_results(store, B, week)
    assert [r.download_mbps for _, r in read.results] == [1, 2]


def test_a_span_of_hours_is_one_listing_per_host_across_day_month_and_year(store):
    """list_raw_span: the results of 31 Dec 23:00 .. 1 Jan 01:59 (IST) from one LIST, the same
    objects as listing each hour, a bad key in the span rejected, neighbours and other hosts left out."""
    inside = [put(store, result("home-primary", f"{day} {hour}:{minute}", 1))
              for day, hour, minute in (("2025-12-31", 23, "01"), ("2025-12-31", 23, "47"),
                                        ("2026-01-01", "00", "16"), ("2026-01-01", "01", "59"))]
    put(store, result("home-primary", "2025-12-31 22:59", 2))       # the hour before
    put(store, result("home-primary", "2026-01-01 02:00", 3))       # the hour after
    put(store, result("office-main", "2026-01-01 00:16", 4))        # another host
    bad = "host=home-primary/year=2026/month=202601/day=20260101/hour=2026010100/minute=07/test.json"
    store.put(B.raw, bad, b"{}")
    first, last = parse_period("hourly", "2025123123", IST), parse_period("hourly", "2026010101", IST)
    counting = CountingStore(store)
    found, rejected = list_raw_span(counting, B, "home-primary", first, last)
    assert [o.info.key for o in found] == sorted(inside) and [k for k, _ in rejected] == [bad]
    assert counting.counts["list"] == 1
    hourly = [o.info.key for h in ("2025123123", "2026010100", "2026010101")
              for o in list_raw(store, B, "home-primary", parse_period("hourly", h, IST))[0]]
    assert hourly == sorted(inside)
