"""Aggregation: exact merging across tiers (property test), and a hand-built data set whose
every summary is known, at its expected key (IST midnight, ISO week 53, the ISO week-year at
New Year, a failed test, a corrupt object, a duplicate slot, several hosts)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from speedlab import aggregate, layout
from speedlab.aggregate import (
    LATENCY_METRICS,
    Accumulator,
    MetricStats,
    anomaly_threshold,
    count_anomalies,
    hour_summaries,
    hourly_parts,
    hourly_summaries,
    label_fields,
    merge_summaries,
    quantise,
)
from speedlab.config import Plan
from speedlab.errors import ConfigError
from speedlab.periods import TIERS, parse_period, period_of
from speedlab.records import TierSummary
from speedlab.rollup import backfill, run_due
from speedlab.settings import AggregateSettings
from speedlab.sketch import DEFAULT_ALPHA, QuantileSketch
from tests.helpers.data import IST, B, put, read_json, result

HOSTS = ("backup-location", "home-primary", "office-main")
NO_PLAN = Plan()


def no_plan(host):
    return NO_PLAN


# =========================================================================== property test

START = datetime(2024, 12, 16, tzinfo=IST)   # spans New Year, 2025W01 (starts 2024-12-30), 3 months
SPAN_SLOTS = 96 * 60
speed = st.one_of(st.floats(min_value=0.0, max_value=2_000.0, allow_nan=False),
                  st.sampled_from([0.0, 0.0005, 0.0015, 100.0, 187.4, 1_000.0]))


@st.composite
def datasets(draw):
    rows = []
    for host in draw(st.lists(st.sampled_from(HOSTS), min_size=1, max_size=3, unique=True)):
        # uneven: a few tests spread out, and bursts in a handful of hours
        spread = draw(st.lists(st.integers(0, SPAN_SLOTS - 1), min_size=1, max_size=25, unique=True))
        burst_at = draw(st.integers(0, SPAN_SLOTS - 8))
        burst = list(range(burst_at, burst_at + draw(st.integers(0, 8))))
        for slot in sorted(set(spread) | set(burst)):
            status = draw(st.sampled_from(["ok"] * 6 + ["failed"]))
            upload = draw(st.one_of(st.none(), speed))
            rows.append((host, slot, draw(st.integers(0, 14)), draw(speed), upload,
                         draw(st.floats(min_value=0.0, max_value=500.0)), status))
    return rows


def build(rows):
    by_hour = defaultdict(list)
    for host, slot, minute, down, up, ping, status in rows:
        local = START + timedelta(minutes=15 * slot + minute)
        record = result(host, local, down, up, ping, status=status,
                        connection="Ethernet" if slot % 2 else "Wi-Fi 5GHz")
        hour = period_of("hourly", local, IST)
        by_hour[hour.label].append((layout.raw_key(host, local, IST), record))
    return by_hour


def roll_everything(by_hour):
    """raw -> hours -> days -> weeks and months -> years, all hosts and per host."""
    common = dict(plan_for=no_plan, fraction=0.8, timezone="Asia/Kolkata")
    parts, _ = hourly_parts(by_hour, {})
    out = {tier: defaultdict(dict) for tier in TIERS}
    for label, host_parts in parts.items():
        hour = parse_period("hourly", label, IST)
        for host, summary in hour_summaries(hour, host_parts, **common).items():
            out["hourly"][label][host] = summary.to_dict()
    for tier, child in (("daily", "hourly"), ("weekly", "daily"), ("monthly", "daily"),
                        ("yearly", "monthly")):
        groups = defaultdict(lambda: defaultdict(list))
        for label, by_host in out[child].items():
            child_period = parse_period(child, label, IST)
            parent = period_of(tier, child_period.start, IST)
            for host, data in by_host.items():
                groups[parent.label][host].append(data)
        for label, by_host in groups.items():
            period = parse_period(tier, label, IST)
            for host, children in by_host.items():
                out[tier][label][host] = merge_summaries(period, host, children, **common).to_dict()
    return out


def direct(rows, period, host):
    """The statistics of ``period`` computed straight from the raw rows, by hand."""
    chosen = [r for r in rows if (host is None or r[0] == host)
              and period.contains(START + timedelta(minutes=15 * r[1]))]
    ok = [r for r in chosen if r[6] == "ok"]
    values = {"download_mbps": [r[3] for r in ok], "upload_mbps": [r[4] for r in ok if r[4] is not None],
              "ping_ms": [r[5] for r in ok]}
    days = {(START + timedelta(minutes=15 * r[1] + r[2])).date() for r in ok}
    return chosen, ok, values, days


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
@pytest.mark.slow
def test_every_tier_equals_direct_computation_from_raw(rows):
    rolled = roll_everything(build(rows))
    checked = 0
    for tier in TIERS:
        for label, by_host in rolled[tier].items():
            period = parse_period(tier, label, IST)
            for host, summary in by_host.items():
                chosen, ok, values, days = direct(rows, period, host)
                assert summary["records_aggregated"] == len(ok)
                assert summary["failed_tests"] == len(chosen) - len(ok)
                assert summary["slots_with_result"] == len(chosen)
                assert summary["days"] == len(days)
                assert summary["hosts"] == sorted({r[0] for r in chosen})
                assert summary["expected_slots"] == len(summary["hosts"]) * period.expected_slots
                assert summary["connection_types"] == sorted(
                    {"Ethernet" if r[1] % 2 else "Wi-Fi 5GHz" for r in ok})
                for metric, short in (("download_mbps", "download"), ("upload_mbps", "upload"),
                                      ("ping_ms", "ping")):
                    xs = values[metric]
                    stats = summary["stats"][metric]
                    # exact: counts, sums (integer milli-units), min, max, the sketch itself
                    assert stats["count"] == len(xs)
                    assert stats["sum_milli"] == sum(math.floor(x * 1000 + 0.5) for x in xs)
                    assert stats["sum_sq_micro"] == sum(math.floor(x * 1000 + 0.5) ** 2 for x in xs)
                    assert stats["min"] == (min(xs) if xs else None)
                    assert stats["max"] == (max(xs) if xs else None)
                    assert stats["sketch"] == QuantileSketch.of(xs).to_dict()
                    if not xs:
                        assert summary[f"avg_{short}"] is None and summary[f"median_{short}"] is None
                        continue
                    # means within float tolerance (quantisation moves them by < 0.0005)
                    assert summary[f"avg_{short}"] == pytest.approx(sum(xs) / len(xs), abs=5e-4, rel=1e-12)
                    # percentiles within the sketch's relative error
                    for q, name in ((0.5, "median"), (0.95, "p95")):
                        truth = sorted(xs)[max(1, math.ceil(q * len(xs))) - 1]  # nearest rank
                        assert abs(summary[f"{name}_{short}"] - truth) <= DEFAULT_ALPHA * truth + 1e-9
                checked += 1
    assert checked >= 5


latency = st.one_of(st.none(), st.floats(min_value=0.0, max_value=100.0), st.sampled_from([0, 3, 12.5]))


@st.composite
def crowded_hours(draw):
    """A few hours of a few hosts: several results per slot (full, partial, failed; equal times),
    null and integer metrics, latency figures, -0.0, and rejected objects with and without a host."""
    by_hour, rejected = defaultdict(list), defaultdict(list)
    base = datetime(2025, 3, 30, 23, tzinfo=IST)  # the hours cross a local midnight
    zero = draw(st.sampled_from([0.0] * 4 + [-0.0]))  # one example in five holds -0.0 (polars counts those)
    for n in range(draw(st.integers(0, 30))):
        host = draw(st.sampled_from(HOSTS))
        local = base + timedelta(minutes=draw(st.sampled_from([0, 3, 14, 15, 29, 44, 45, 59, 61, 75, 121])),
                                 seconds=draw(st.sampled_from([0, 0, 7])))
        status = draw(st.sampled_from(["ok"] * 4 + ["failed"]))
        download = draw(st.one_of(st.none(), speed, st.just(zero), st.just(100)))
        upload = draw(st.one_of(speed, st.none()) if download is not None else speed)  # an ok test has one
        record = result(host, local, download, upload, draw(st.one_of(st.none(), st.just(9.0))), status=status,
                        connection=draw(st.sampled_from(["Ethernet", "Wi-Fi 5GHz"])))
        if status == "ok":
            record = replace(record, **{m: draw(latency) for m in LATENCY_METRICS})
        key = layout.raw_key(host, local, IST).replace(".json", f"-{n}.json")
        by_hour[period_of("hourly", local, IST).label].append((key, record))
    for label in draw(st.lists(st.sampled_from(["2025033023", "2025033100", "2025033101"]), max_size=3)):
        rejected[label].append((draw(st.sampled_from(["no-host.json", f"x/host={HOSTS[0]}/y.json"])), "bad"))
    return by_hour, rejected


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(crowded_hours())
@pytest.mark.slow
def test_hourly_parts_in_python_equal_the_polars_pass(data):
    """hourly_parts counts small inputs in plain Python: the same parts, and summaries byte for
    byte, as the polars pass (forced with PYTHON_ROWS_MAX = 0); -0.0 goes to polars."""
    by_hour, rejected = data
    rows = [item for items in by_hour.values() for item in items]
    fast, fast_unattributed = hourly_parts(by_hour, rejected)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(aggregate, "PYTHON_ROWS_MAX", 0)
        slow, slow_unattributed = hourly_parts(by_hour, rejected)
    assert fast == slow and fast_unattributed == slow_unattributed
    negative_zero = any(getattr(r, m) == 0 and math.copysign(1.0, getattr(r, m)) < 0
                        for _, r in rows if r.ok for m in aggregate.ALL_METRICS)
    labels = [label for label, items in by_hour.items() for _ in items]
    assert (aggregate._grouped_python(labels, rows) is None) == negative_zero  # the fast path ran
    for label, parts in slow.items():
        hour = parse_period("hourly", label, IST)
        expected = hour_summaries(hour, parts, plan_for=no_plan, unattributed=slow_unattributed.get(label, 0))
        got = hour_summaries(hour, fast[label], plan_for=no_plan, unattributed=fast_unattributed.get(label, 0))
        assert {h: s.to_json() for h, s in got.items()} == {h: s.to_json() for h, s in expected.items()}
        for summary in got.values():  # built unchecked (check=False), yet what the checks accept
            assert TierSummary.from_dict(summary.to_dict()).to_json() == summary.to_json()


# =========================================================================== pure pieces

def test_quantise_is_round_half_up_in_milli_units():
    assert quantise(187.4) == 187400
    assert quantise(0.0005) == 1 and quantise(0.0004) == 0
    assert quantise(0.0) == 0


def test_one_result_per_slot_earliest_complete_wins():
    hour = parse_period("hourly", "2025122914", IST)
    rows = [
        ("k1", result("home-primary", "2025-12-29 14:02", status="failed")),
        ("k2", result("home-primary", "2025-12-29 14:05", 150.0, None, 9.0)),    # partial
        ("k3", result("home-primary", "2025-12-29 14:09", 120.0, 60.0, 12.0)),   # complete
        ("k4", result("home-primary", "2025-12-29 14:11", 90.0, 45.0, 11.0)),    # later
        ("k5", result("home-primary", "2025-12-29 14:31", status="failed")),
        ("k6", result("home-primary", "2025-12-29 14:40", status="failed")),
    ]
    out = hourly_summaries(hour, rows, plan_for=no_plan)["home-primary"].to_dict()
    assert out["avg_download"] == 120.0 and out["records_aggregated"] == 1
    assert out["duplicates_ignored"] == 4         # 3 in slot 14:00, 1 in slot 14:30
    assert out["failed_tests"] == 1 and out["slots_with_result"] == 2
    assert out["coverage_pct"] == 50.0


def test_anomaly_rule_median_mad_and_floor():
    base = QuantileSketch.of([100.0, 101.0, 99.0, 100.0, 102.0, 98.0, 100.0, 100.0, 101.0, 99.0])
    s = AggregateSettings()
    threshold = anomaly_threshold(base, s)
    # MAD ~1 -> 3 * 1.4826 * 1 = 4.4 < 25 % of 100: the minimum drop decides
    assert threshold == pytest.approx(75.0, rel=0.02)
    assert count_anomalies([60.0, 74.0, 76.0, 99.0], threshold) == 2
    noisy = QuantileSketch.of([100.0, 60.0, 140.0, 70.0, 130.0, 100.0, 90.0, 110.0, 80.0, 120.0])
    assert anomaly_threshold(noisy, s) < 75.0 * 0.9              # wide spread -> MAD decides
    few = QuantileSketch.of([100.0] * 3)
    assert anomaly_threshold(few, s) is None                      # too little history
    floor = AggregateSettings(anomaly_floor_download_mbps=20.0)
    assert anomaly_threshold(few, floor) == 20.0
    assert anomaly_threshold(base, floor) == pytest.approx(75.0, rel=0.02)
    assert count_anomalies([10.0], None) == 0


def test_thresholds_count_anomalies_per_host_and_in_total():
    hour = parse_period("hourly", "2025122914", IST)
    rows = [("a", result("home-primary", "2025-12-29 14:01", 50.0)),
            ("b", result("home-primary", "2025-12-29 14:16", 95.0)),
            ("c", result("office-main", "2025-12-29 14:01", 50.0))]
    out = hourly_summaries(hour, rows, thresholds={"home-primary": 75.0, "office-main": None},
                           plan_for=no_plan)
    assert out["home-primary"].anomalies_count == 1
    assert out["office-main"].anomalies_count == 0
    assert out[None].anomalies_count == 1


def test_below_expected_uses_each_hosts_plan_and_weights_all_hosts_by_tests():
    plans = {"home-primary": Plan(200, 100), "office-main": Plan(500, 500), None: Plan(200, 100)}
    hour = parse_period("hourly", "2025122914", IST)
    rows = [("a", result("home-primary", "2025-12-29 14:01", 170.0, 90.0)),
            ("b", result("home-primary", "2025-12-29 14:16", 170.0, 90.0)),
            ("c", result("office-main", "2025-12-29 14:01", 390.0, 450.0))]
    out = hourly_summaries(hour, rows, plan_for=plans.get, fraction=0.8)
    assert out["home-primary"].get("below_expected") is False          # 170 >= 160, 90 >= 80
    assert out["office-main"].get("below_expected") is True            # 390 < 400
    everyone = out[None].to_dict()
    assert everyone["expected_download_mbps"] == pytest.approx((200 * 2 + 500) / 3)
    assert everyone["avg_download"] == pytest.approx((170 * 2 + 390) / 3)
    assert everyone["below_expected"] is False                          # 243.3 >= 240
    no = hourly_summaries(hour, rows, plan_for=no_plan)[None].to_dict()
    assert no["below_expected"] is None and no["expected_download_mbps"] is None


def test_label_fields_for_every_tier():
    assert label_fields(parse_period("hourly", "2025122914", IST)) == {
        "hour": "2025-12-29T14", "period_start": "2025-12-29T14:00:00+05:30",
        "period_end": "2025-12-29T15:00:00+05:30"}
    assert label_fields(parse_period("daily", "2025-12-29", IST))["date"] == "2025-12-29"
    week = label_fields(parse_period("weekly", "2025W44", IST))
    assert (week["week"], week["week_start"], week["week_end"]) == ("2025W44", "2025-10-27", "2025-11-02")
    assert label_fields(parse_period("monthly", "202512", IST))["month"] == "2025-12"
    year = label_fields(parse_period("yearly", "2025", IST))
    assert year["year"] == "2025" and year["period_end"] == "2026-01-01T00:00:00+05:30"


def test_original_systems_summaries_merge_as_inexact():
    seed_day = {"avg_download": 100.0, "avg_upload": 50.0, "avg_ping": 10.0, "min_download": 80.0,
                "max_download": 120.0, "records_aggregated": 4, "connection_types": ["Ethernet"],
                "anomalies_count": 1}
    ours = hourly_summaries(parse_period("hourly", "2025123014", IST),
                            [("k", result("home-primary", "2025-12-30 14:01", 200.0))],
                            plan_for=no_plan)["home-primary"].to_dict()
    week = merge_summaries(parse_period("weekly", "2026W01", IST), "home-primary",
                           [seed_day, ours], plan_for=no_plan).to_dict()
    assert week["records_aggregated"] == 5 and week["anomalies_count"] == 1
    assert week["avg_download"] == pytest.approx((4 * 100 + 200) / 5)
    assert (week["min_download"], week["max_download"]) == (80.0, 200.0)
    assert week["exact"] is False and week["legacy_inputs"] == 1
    assert week["median_download"] is None          # the seed kept no distribution


def test_metric_stats_round_trip_and_merge():
    a, b = MetricStats.of([1.25, 2.5]), MetricStats.of([None, 4.0])
    a.add(b)
    assert (a.count, a.sum_milli, a.min, a.max) == (3, 7750, 1.25, 4.0)
    again = MetricStats.from_dict(a.to_dict())
    assert again.to_dict() == a.to_dict()
    assert a.to_dict()["sum"] == 7.75 and a.mean == pytest.approx(7.75 / 3)


def test_settings_are_validated():
    assert AggregateSettings.from_table({"anomaly_window_hours": 48}).anomaly_window_hours == 48
    with pytest.raises(ConfigError, match="unknown key"):
        AggregateSettings.from_table({"anomaly_window": 48})
    with pytest.raises(ConfigError, match="sketch_alpha"):
        AggregateSettings.from_table({"sketch_alpha": 2})
    with pytest.raises(ConfigError, match="max_workers"):
        AggregateSettings.from_table({"max_workers": 0})


def test_accumulator_refuses_a_broken_summary():
    from speedlab.errors import InvalidRecord
    with pytest.raises(InvalidRecord, match=r"invalid statistics in x\.json"):
        Accumulator.from_summary({"avg_download": 1.0, "avg_upload": 1.0, "avg_ping": 1.0,
                                  "records_aggregated": 1,
                                  "stats": {m: {"count": "many"} for m in
                                            ("download_mbps", "upload_mbps", "ping_ms")}},
                                 source="x.json")


# =========================================================================== hand-built data set

def summary_at(store, tier, label, host=None):
    period = parse_period(tier, label, IST)
    return read_json(store, B.for_tier(tier), layout.summary_key(period, host))


#: The latency figures of a summary (checked in tests/test_aggregate_latency.py; null here: no latency).
LATENCY_FIGURES = {f"{kind}_{short}" for short in ("latency_idle", "jitter", "latency_download", "latency_upload",
                                                   "packet_loss") for kind in ("avg", "min", "max", "median", "p95")}


def core(summary):
    assert all(summary[name] is None for name in LATENCY_FIGURES), "these results have no latency figures"
    drop = {"stats", "generated_at", "source_max_modified", "median_download", "p95_download",
            "median_upload", "p95_upload", "median_ping", "p95_ping", *LATENCY_FIGURES}
    return {k: v for k, v in summary.items() if k not in drop}


@pytest.fixture
def new_year_store(local_store, config_for):
    """Three hosts around IST midnight 2026-12-31 -> 2027-01-01 (ISO week 2026W53)."""
    s = local_store
    put(s, result("backup-location", "2026-12-31 12:00", 50.0, 10.0, 30.0, connection="Cellular"))
    put(s, result("home-primary", "2026-12-31 23:46", 120.0, 60.0, 10.0))
    put(s, result("office-main", "2026-12-31 23:50", 400.0, 450.0, 5.0))
    # 00:01 IST on 1 January is still 31 December in UTC (18:31Z)
    first = result("home-primary", "2027-01-01 00:01", 80.0, 40.0, 20.0, connection="Wi-Fi 5GHz")
    put(s, first)
    later = result("home-primary", "2027-01-01 00:07", 999.0, 999.0, 1.0)      # duplicate slot
    put(s, later, layout.legacy_raw_name("ookla", 0, int(later.time_utc.timestamp())))
    put(s, result("home-primary", "2027-01-01 00:16", status="failed"))
    corrupt = layout.raw_key("home-primary", datetime(2027, 1, 1, 0, 30, tzinfo=IST), IST)
    s.put(B.raw, corrupt, b'{"schema_version": 1, "host_id": "home-pri')
    put(s, result("office-main", "2027-01-01 00:05", 450.0, 450.0, 7.0))
    config = config_for(s, plan=Plan(200, 100), host_plans={"office-main": Plan(500, 500)},
                        sections={"aggregate": {"anomaly_floor_download_mbps": 60.0}})
    now = datetime(2027, 1, 15, tzinfo=IST)
    report = backfill(config, "2026-12-31", "2027-01-01", progress=False, now=now)
    later = run_due(config, now)  # the week, month and year reach outside the backfilled days
    return s, config, report, later, corrupt


@pytest.mark.slow
def test_hand_built_hours_at_ist_midnight(new_year_store):
    store, config, report, _later, corrupt = new_year_store
    last = summary_at(store, "hourly", "2026123123")
    assert core(last) == {
        "schema_version": 1, "tier": "hourly", "period": "2026123123", "hour": "2026-12-31T23",
        "period_start": "2026-12-31T23:00:00+05:30", "period_end": "2027-01-01T00:00:00+05:30",
        "timezone": "Asia/Kolkata", "host_id": None, "hosts": ["home-primary", "office-main"],
        "avg_download": 260.0, "avg_upload": 255.0, "avg_ping": 7.5,
        "min_download": 120.0, "max_download": 400.0, "min_upload": 60.0, "max_upload": 450.0,
        "min_ping": 5.0, "max_ping": 10.0, "records_aggregated": 2, "failed_tests": 0,
        "rejected_records": 0, "duplicates_ignored": 0, "expected_slots": 8,
        "slots_with_result": 2, "coverage_pct": 25.0, "days": 1, "connection_types": ["Ethernet"],
        "anomalies_count": 0, "expected_download_mbps": 350.0, "expected_upload_mbps": 300.0,
        "below_expected": True, "records_by_host": {"home-primary": 1, "office-main": 1},
        "exact": True, "source_objects": 2}
    first = summary_at(store, "hourly", "2027010100")
    assert {k: first[k] for k in ("hosts", "records_aggregated", "failed_tests", "rejected_records",
                                  "duplicates_ignored", "slots_with_result", "expected_slots",
                                  "coverage_pct", "avg_download", "connection_types",
                                  "source_objects")} == {
        "hosts": ["home-primary", "office-main"], "records_aggregated": 2, "failed_tests": 1,
        "rejected_records": 1, "duplicates_ignored": 1, "slots_with_result": 3,
        "expected_slots": 8, "coverage_pct": 37.5, "avg_download": 265.0,
        "connection_types": ["Ethernet", "Wi-Fi 5GHz"], "source_objects": 5}
    home = summary_at(store, "hourly", "2027010100", "home-primary")
    assert (home["avg_download"], home["duplicates_ignored"], home["failed_tests"],
            home["rejected_records"], home["expected_download_mbps"], home["below_expected"]) == (
        80.0, 1, 1, 1, 200, True)
    office = summary_at(store, "hourly", "2026123123", "office-main")
    assert (office["expected_download_mbps"], office["below_expected"]) == (500, False)
    # the corrupt object was skipped, counted, reported and logged with its key
    assert [k for k, _ in report.rejected] == [corrupt]
    log = (config.state_path / "logs" / "aggregator.jsonl").read_text()
    assert corrupt in log and "corrupt JSON" in log


@pytest.mark.slow
def test_hand_built_days_week_53_month_and_year(new_year_store):
    store, _config, report, later, _ = new_year_store
    dec31 = summary_at(store, "daily", "20261231")
    assert (dec31["hosts"], dec31["records_aggregated"], dec31["avg_download"], dec31["expected_slots"],
            dec31["slots_with_result"], dec31["coverage_pct"], dec31["days"], dec31["anomalies_count"],
            dec31["connection_types"]) == (
        list(HOSTS), 3, 190.0, 288, 3, 1.04, 1, 1, ["Cellular", "Ethernet"])
    jan1 = summary_at(store, "daily", "2027-01-01")
    assert (jan1["records_aggregated"], jan1["failed_tests"], jan1["rejected_records"],
            jan1["duplicates_ignored"], jan1["expected_slots"], jan1["coverage_pct"]) == (2, 1, 1, 1, 192, 1.56)

    week = summary_at(store, "weekly", "2026W53")
    assert layout.summary_key(parse_period("weekly", "2026W53", IST)) == \
        "aggregated/year=2026/week=2026W53/speed_test_summary.json"
    assert core(week) | {"source_objects": None} == {
        "schema_version": 1, "tier": "weekly", "period": "2026W53", "week": "2026W53",
        "week_start": "2026-12-28", "week_end": "2027-01-03",
        "period_start": "2026-12-28T00:00:00+05:30", "period_end": "2027-01-04T00:00:00+05:30",
        "timezone": "Asia/Kolkata", "host_id": None, "hosts": list(HOSTS),
        "avg_download": 220.0, "avg_upload": 202.0, "avg_ping": 14.4,
        "min_download": 50.0, "max_download": 450.0, "min_upload": 10.0, "max_upload": 450.0,
        "min_ping": 5.0, "max_ping": 30.0, "records_aggregated": 5, "failed_tests": 1,
        "rejected_records": 1, "duplicates_ignored": 1, "expected_slots": 3 * 672,
        "slots_with_result": 6, "coverage_pct": 0.3, "days": 2,
        "connection_types": ["Cellular", "Ethernet", "Wi-Fi 5GHz"], "anomalies_count": 1,
        "expected_download_mbps": pytest.approx((200 * 3 + 500 * 2) / 5),
        "expected_upload_mbps": pytest.approx((100 * 3 + 500 * 2) / 5),
        "below_expected": True,
        "records_by_host": {"backup-location": 1, "home-primary": 2, "office-main": 2},
        "exact": True, "source_objects": None}
    # sorted downloads 50, 80, 120, 400, 450: median = 3rd, p95 = 5th
    assert week["median_download"] == pytest.approx(120.0, rel=DEFAULT_ALPHA)
    assert week["p95_download"] == pytest.approx(450.0, rel=DEFAULT_ALPHA)
    assert week["stats"]["download_mbps"]["sum_milli"] == 1_100_000

    month = summary_at(store, "monthly", "202612")
    year = summary_at(store, "yearly", "2026")
    for summary, slots in ((month, 3 * 31 * 96), (year, 3 * 365 * 96)):
        assert (summary["records_aggregated"], summary["avg_download"], summary["days"],
                summary["expected_slots"], summary["anomalies_count"]) == (3, 190.0, 1, slots, 1)
    assert year["year"] == "2026" and month["month"] == "2026-12"
    home_week = summary_at(store, "weekly", "2026W53", "home-primary")
    assert (home_week["records_aggregated"], home_week["avg_download"], home_week["days"]) == (2, 100.0, 2)
    # January 2027 has not ended on 15 January: no monthly or yearly summary yet; the backfill
    # starts at the hour of the first result (31 December 12:00), not at the range's start
    assert {(i["tier"], i["period"]) for i in report.items} == \
        {("hourly", f"{d}{h:02d}") for d in ("20261231", "20270101") for h in range(24)
         if d == "20270101" or h >= 12} | {("daily", "20261231"), ("daily", "20270101")}
    rolled = {(item["tier"], item["period"]) for item in later.items}
    assert ("monthly", "202701") not in rolled and ("yearly", "2027") not in rolled
    assert {("weekly", "2026W53"), ("monthly", "202612"), ("yearly", "2026")} <= rolled
    assert ("daily", "20270103") in rolled and ("daily", "20261231") not in rolled


@pytest.mark.parametrize("moment, week, week_key, day_key, now", [
    # 2021-01-03 is the Sunday of ISO week 2020W53
    ("2021-01-03 10:00", "2020W53", "aggregated/year=2020/week=2020W53/speed_test_summary.json",
     "aggregated/year=2021/month=202101/day=20210103/speed_test_summary.json", datetime(2021, 2, 10, tzinfo=IST)),
    # 2024-12-30 is the Monday of ISO week 2025W01 (week-year at New Year)
    ("2024-12-30 09:00", "2025W01", "aggregated/year=2025/week=2025W01/speed_test_summary.json",
     "aggregated/year=2024/month=202412/day=20241230/speed_test_summary.json", datetime(2025, 1, 10, tzinfo=IST)),
])
@pytest.mark.slow
def test_iso_week_year_edges_land_at_the_right_keys(local_store, config_for, moment, week,
                                                      week_key, day_key, now):
    put(local_store, result("office-main", moment, 321.0))
    config = config_for(local_store)
    backfill(config, moment[:10], moment[:10], progress=False, now=now)
    run_due(config, now)
    weekly = read_json(local_store, B.weekly, week_key)
    assert (weekly["week"], weekly["records_aggregated"], weekly["avg_download"], weekly["days"]) == (
        week, 1, 321.0, 1)
    monday = date.fromisocalendar(int(week[:4]), int(week[5:]), 1)
    assert (weekly["week_start"], weekly["week_end"]) == (monday.isoformat(),
                                                          (monday + timedelta(days=6)).isoformat())
    assert read_json(local_store, B.daily, day_key)["records_aggregated"] == 1
    monthly_key = "aggregated/year={0}/month={0}{1}/speed_test_summary.json".format(moment[:4], moment[5:7])
    assert read_json(local_store, B.monthly, monthly_key)["records_aggregated"] == 1


@pytest.mark.parametrize("data", [[1, 2], "hello", 42, None, {"avg_download": 1, "avg_upload": 1, "avg_ping": 1,
                                                            "records_aggregated": -5},
                                  {"avg_download": -1.0, "avg_upload": 1, "avg_ping": 1, "records_aggregated": 1},
                                  {"avg_download": 1, "avg_upload": 1, "avg_ping": 1, "records_aggregated": 1,
                                   "days": "1"}])
def test_from_summary_refuses_a_non_object_or_impossible_summary_with_invalid_record(data):
    from speedlab.errors import InvalidRecord
    with pytest.raises(InvalidRecord, match=r"in day\.json"):
        Accumulator.from_summary(data, DEFAULT_ALPHA, "day.json")
