"""The latency figures in summaries and rows (issue 15 part 3), against a direct computation.

Schema-2 results with latency figures and schema-1 results without, on two hosts around IST
midnight at an ISO week, month and year boundary (Sunday 2023-12-31 -> Monday 2024-01-01, 2023W52 ->
2024W01),
rolled up by the real rollup into a local store; every tier's avg/min/max/median/p95 of each
latency metric is checked against plain Python (``statistics``), p95 within the sketch's alpha.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
from datetime import datetime, timedelta

import pytest

from speedlab import layout
from speedlab.aggregate import Accumulator, hourly_summaries, merge_summaries
from speedlab.errors import InvalidRecord
from speedlab.mergeable import ALL_METRICS, LATENCY_METRICS, METRICS
from speedlab.periods import parse_period, period_of
from speedlab.query import rows
from speedlab.rollup import backfill, run_due
from speedlab.rowbuild import ROW_FIELDS, headline, minute_row, summary_row
from speedlab.sketch import DEFAULT_ALPHA, rank_of
from tests.helpers.data import IST, B, put, read_json, result

HOSTS = ("home-primary", "office-main")
FIRST = datetime(2023, 12, 31, 22, 0, tzinfo=IST)  # Sunday, ISO week 2023W52
LAST = datetime(2024, 1, 1, 2, 0, tzinfo=IST)     # Monday 02:00 IST, 2024W01
NOW = datetime(2024, 1, 15, 12, 0, tzinfo=IST)  # December and 2023 are over, not January


class _NoPlan:
    download_mbps = None
    upload_mbps = None


def no_plan(host):
    return _NoPlan()


def _dataset() -> list:
    """One result per host and slot: every third a schema-1 one (no latency), every seventh
    failed, packet loss on some, a schema-2 result without jitter now and then."""
    rng = random.Random(15)
    out, moment, i = [], FIRST, 0
    while moment < LAST:
        for host in HOSTS:
            i += 1
            status = "failed" if i % 7 == 0 else "ok"
            rec = result(host, moment + timedelta(seconds=40), 80.0 + i % 13, 30.0 + i % 5, 9.0 + i % 4,
                         status=status)
            if i % 3 == 0:
                rec = dataclasses.replace(rec, schema_version=1)
            elif status == "ok":
                rec = dataclasses.replace(
                    rec, latency_idle_ms=round(rng.uniform(8, 30), 3),
                    latency_download_ms=round(rng.uniform(20, 400), 3),
                    latency_upload_ms=None if i % 5 == 0 else round(rng.uniform(30, 900), 3),
                    jitter_ms=None if i % 4 == 0 else round(rng.uniform(0.1, 6), 3),
                    packet_loss_pct=round(rng.uniform(0, 2), 2) if i % 2 == 0 else None)
            out.append(rec)
        moment += timedelta(minutes=15)
    return out


DATA = _dataset()


def _expected(records, metric):
    values = sorted(getattr(r, metric) for r in records if r.ok and getattr(r, metric) is not None)
    if not values:
        return None
    return {"count": len(values), "avg": statistics.fmean(values), "min": values[0], "max": values[-1],
            "median": values[rank_of(0.5, len(values))], "p95": values[rank_of(0.95, len(values))]}


def _check(summary, records, where):
    for metric, short in LATENCY_METRICS.items():
        want = _expected(records, metric)
        if want is None:  # nothing measured: no statistics written (they read back empty)
            assert metric not in summary["stats"] and summary[f"avg_{short}"] is None, (where, metric)
            assert summary[f"p95_{short}"] is None and summary[f"min_{short}"] is None, (where, metric)
            continue
        stats = summary["stats"][metric]
        assert stats["count"] == want["count"] and stats["exact"], (where, metric)
        assert summary[f"avg_{short}"] == pytest.approx(want["avg"], abs=5e-4), (where, metric)
        assert (summary[f"min_{short}"], summary[f"max_{short}"]) == (want["min"], want["max"]), (where, metric)
        for kind in ("median", "p95"):
            assert math.isclose(summary[f"{kind}_{short}"], want[kind], rel_tol=DEFAULT_ALPHA), (where, metric, kind)


@pytest.fixture(scope="module")
def rolled(tmp_path_factory):
    from speedlab.config import load_config
    from speedlab.store import LocalStore

    root = tmp_path_factory.mktemp("latency")
    (root / "store").mkdir()
    store = LocalStore(root / "store")
    for rec in DATA:
        put(store, rec)
    config = load_config(env={}, store=store.url, host_id="home-primary", state_dir=str(root / "state"))
    backfill(config, "2023-12-31", "2024-01-01", progress=False, now=NOW)
    run_due(config, NOW)
    return store, config


@pytest.mark.slow
def test_every_tier_carries_the_latency_figures_of_a_direct_computation(rolled):
    store, _config = rolled
    assert sum(1 for r in DATA if r.schema_version == 1) > 5 and any(r.packet_loss_pct for r in DATA)
    checked = 0
    for tier, labels in (("hourly", ["2023123122", "2023123123", "2024010100", "2024010101"]),
                         ("daily", ["20231231", "20240101"]), ("weekly", ["2023W52", "2024W01"]),
                         ("monthly", ["202312"]), ("yearly", ["2023"])):
        for label in labels:
            period = parse_period(tier, label, IST)
            inside = [r for r in DATA if period.start <= r.slot_start < period.end]
            for host in (None, *HOSTS):
                summary = read_json(store, B.for_tier(tier), layout.summary_key(period, host))
                mine = [r for r in inside if host is None or r.host_id == host]
                _check(summary, mine, (tier, label, host))
                # the core metrics always, then each latency metric that was measured, in order
                assert list(summary["stats"]) == [m for m in ALL_METRICS if m in METRICS
                                                  or _expected(mine, m) is not None]
                checked += 1
    assert checked == 30
    week = read_json(store, B.weekly, layout.summary_key(parse_period("weekly", "2024W01", IST), None))
    assert week["stats"]["latency_download_ms"]["count"] == sum(
        1 for r in DATA if r.ok and r.latency_download_ms is not None and r.slot_start >= LAST - timedelta(hours=2))


@pytest.mark.slow
def test_rows_carry_the_latency_keys_hourly_daily_and_minute(rolled):
    store, config = rolled
    day = rows("daily", 2, store=store, config=config, now=datetime(2024, 1, 1, 23, 0, tzinfo=IST))
    assert [r["period"] for r in day] == ["20231231", "20240101"]
    for row in day:
        period = parse_period("daily", row["period"], IST)
        inside = [r for r in DATA if period.start <= r.slot_start < period.end]
        assert list(row) == list(ROW_FIELDS)
        for prefix in ("latency_idle", "latency_download", "latency_upload", "jitter", "packet_loss"):
            want = _expected(inside, f"{prefix}_pct" if prefix == "packet_loss" else f"{prefix}_ms")
            assert row[f"{prefix}_avg"] == pytest.approx(want["avg"], abs=5e-4)
            if prefix.startswith("latency_"):
                assert row[f"{prefix}_count"] == want["count"]
                assert math.isclose(row[f"{prefix}_p95"], want["p95"], rel_tol=DEFAULT_ALPHA)
    hours = rows("hourly", 1, "office-main", store=store, config=config, now=datetime(2024, 1, 1, 1, 59, tzinfo=IST))
    hour = next(r for r in hours if r["period"] == "2024010100")
    mine = [r for r in DATA
            if r.host_id == "office-main" and period_of("hourly", r.slot_start, IST).label == "2024010100"]
    assert hour["latency_idle_count"] == _expected(mine, "latency_idle_ms")["count"]
    assert hour["latency_idle_avg"] == pytest.approx(_expected(mine, "latency_idle_ms")["avg"], abs=5e-4)
    minutes = rows("minute", 1, "home-primary", store=store, config=config, now=datetime(2024, 1, 1, 1, 59, tzinfo=IST))
    by_slot = {r.slot_start: r for r in DATA if r.host_id == "home-primary"}
    seen = 0
    for row in minutes:
        rec = by_slot.get(datetime.fromisoformat(row["period_start"]))
        if rec is None or not rec.ok:
            continue
        seen += 1
        assert row["latency_download_avg"] == rec.latency_download_ms and row["jitter_avg"] == rec.jitter_ms
        assert row["latency_upload_p95"] == rec.latency_upload_ms
        assert row["latency_idle_count"] == (rec.latency_idle_ms is not None)
    assert seen >= 8


def test_a_summary_without_latency_stats_merges_with_new_ones_and_stays_exact():
    hour = parse_period("hourly", "2024010100", IST)
    new = hourly_summaries(hour, [(f"k{i}", r) for i, r in enumerate(DATA)
                                  if period_of("hourly", r.slot_start, IST) == hour], plan_for=no_plan)[None].to_dict()
    old_hour = parse_period("hourly", "2024010101", IST)
    old = hourly_summaries(old_hour, [(f"k{i}", r) for i, r in enumerate(DATA)
                                      if period_of("hourly", r.slot_start, IST) == old_hour], plan_for=no_plan)[None]
    old = old.to_dict()
    for metric, short in LATENCY_METRICS.items():  # as written before the latency figures
        del old["stats"][metric]
        for kind in ("avg", "min", "max", "median", "p95"):
            del old[f"{kind}_{short}"]
    day = merge_summaries(parse_period("daily", "20240101", IST), None, [old, new], plan_for=no_plan).to_dict()
    in_new = [r for r in DATA if period_of("hourly", r.slot_start, IST) == hour]
    both = [r for r in DATA if period_of("hourly", r.slot_start, IST) in (hour, old_hour)]
    _check(day, in_new, "new hour only")
    assert day["exact"] is True and day["records_aggregated"] == sum(r.ok for r in both)
    assert day["avg_download"] == pytest.approx(statistics.fmean(r.download_mbps for r in both if r.ok), abs=5e-4)
    legacy = {k: old[k] for k in ("avg_download", "avg_upload", "avg_ping", "min_download", "max_download",
                                  "records_aggregated", "connection_types", "anomalies_count")}
    acc = Accumulator.from_summary(legacy)  # the original system's: core rebuilt, latency empty and exact
    assert acc.legacy_inputs == 1 and not acc.stats["download_mbps"].exact
    assert all(acc.stats[m].count == 0 and acc.stats[m].exact for m in LATENCY_METRICS)
    assert set(acc.stats) == set(ALL_METRICS) and set(METRICS) < set(ALL_METRICS)


@pytest.mark.parametrize("bad", ["text", 3, {"count": 1}, {"count": -1, "sum_milli": 0, "sum_sq_micro": 0,
                                                          "sketch": {}}])
def test_invalid_latency_stats_are_refused_like_invalid_core_stats(bad):
    hour = parse_period("hourly", "2024010100", IST)
    summary = hourly_summaries(hour, [("k", DATA[1])], plan_for=no_plan)[None].to_dict()
    summary["stats"]["jitter_ms"] = bad
    with pytest.raises(InvalidRecord, match="jitter_ms"):
        Accumulator.from_summary(summary, source="day.json")
    summary["stats"]["jitter_ms"] = None  # absent: no values
    assert Accumulator.from_summary(summary).stats["jitter_ms"].count == 0
    core = dict(summary, stats={"download_mbps": "broken"})
    assert Accumulator.from_summary(core).legacy_inputs == 1  # core stats unusable: rebuilt as before


def test_rows_of_a_summary_a_partial_period_and_raw_results():
    hour = parse_period("hourly", "2024010100", IST)
    mine = [r for r in DATA if period_of("hourly", r.slot_start, IST) == hour]
    summary = hourly_summaries(hour, [(f"k{i}", r) for i, r in enumerate(mine)], plan_for=no_plan)[None].to_dict()
    during = datetime(2024, 1, 1, 0, 40, tzinfo=IST)
    row = summary_row("hourly", hour, summary, host="all", now=during, live=True)
    assert row["status"] == "partial" and list(row) == list(ROW_FIELDS)
    want = _expected(mine, "latency_upload_ms")
    assert row["latency_upload_count"] == want["count"]
    assert math.isclose(row["latency_upload_p95"], want["p95"], rel_tol=DEFAULT_ALPHA)
    old = {k: v for k, v in summary.items() if "latency" not in k and "jitter" not in k and "packet" not in k}
    old["stats"] = {m: summary["stats"][m] for m in METRICS}
    before = summary_row("hourly", hour, old, host="all", now=NOW)
    assert before["latency_idle_avg"] is None and before["latency_idle_count"] == 0 and before["tests"] > 0
    slot = [r for r in mine if r.slot_start == mine[0].slot_start]
    raw = minute_row(slot[0].slot_start, slot, host="all", now=NOW, n_hosts=2)
    values = [r.latency_idle_ms for r in slot if r.ok and r.latency_idle_ms is not None]
    assert raw["latency_idle_count"] == len(values)
    assert raw["latency_idle_avg"] == (statistics.fmean(values) if values else None)
    both = headline([row, before, raw])
    weights = [(row["latency_upload_avg"], row["latency_upload_count"]),
               (raw["latency_upload_avg"], raw["latency_upload_count"])]
    weights = [(v, n) for v, n in weights if v is not None and n]
    assert both["latency_upload_avg"] == pytest.approx(sum(v * n for v, n in weights) / sum(n for _, n in weights))
    assert headline([before])["jitter_avg"] is None
