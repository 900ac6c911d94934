"""speedlab.monthsource: a raw month's statistics counted from its table's columns give exactly
what the per-day path (one SpeedTestResult per result) gives, and the month or day falls back
to it when the columns cannot say what the objects say."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timedelta

import polars as pl
import pytest

from speedlab import tables_io
from speedlab.aggregate import results_frame
from speedlab.layout import raw_hour_label
from speedlab.monthsource import MonthSource, table_results_frame
from speedlab.periods import parse_period, periods_between
from speedlab.reader import list_raw_hours
from speedlab.rollup import backfill
from speedlab.tables import RAW_TABLE
from tests.helpers.data import IST, B, put, result

NOW = datetime(2026, 2, 1, tzinfo=IST)


def messy_month(store) -> list[str]:
    """Three days of two hosts with what deduplication and the statistics must get right: two
    results in one slot (a full one taken later, one missing its upload taken earlier), failed
    tests, a few slow tests (anomalies), latency figures on some results, another connection
    type, a legacy object name."""
    keys = []
    for n, host in enumerate(("home-primary", "office-main")):
        start = datetime(2025, 12, 29, tzinfo=IST) + timedelta(minutes=1 + 3 * n)
        for i in range(3 * 96 // 2):
            local = start + timedelta(minutes=30 * i)
            status = "failed" if i % 23 == 5 else "ok"
            down = 20.0 if i % 29 == 7 else 90.0 + (i * 7 + n) % 41 + 0.125
            record = result(host, local, down, 40.0 + i % 9, 8.0 + i % 4,
                            status=status, connection="Wi-Fi" if i % 11 == 3 else "Ethernet")
            if i % 5 == 0 and status == "ok":
                record = dataclasses.replace(record, latency_idle_ms=9.5 + i % 3, latency_download_ms=40.0 + i % 7,
                                             jitter_ms=1.25, packet_loss_pct=0.0)
            keys.append(put(store, record, legacy=i % 13 == 0))
            if i % 17 == 2 and status == "ok":  # a second, earlier result in the slot, missing its upload
                earlier = result(host, local - timedelta(seconds=50), 12.0, None, 30.0)
                keys.append(put(store, earlier, name="second.json"))
    return keys


def _decoded(frame: pl.DataFrame):
    return [(k, tables_io.RawMonth({}, frame).result(k)) for k in frame["source_key"].to_list()]


def test_the_columns_give_the_frame_the_decoded_results_give(local_store):
    keys = messy_month(local_store)
    rows = [RAW_TABLE.encode_row(json.loads(local_store.get(B.raw, k)), host=k.split("/")[0][5:],
                                 source_key=k, source_version="v") for k in keys]
    frame = RAW_TABLE.frame(rows)
    mine = table_results_frame(frame)
    decoded = _decoded(frame)
    expected = results_frame(decoded).with_columns(
        hour=pl.Series([raw_hour_label(k) for k, _ in decoded]),
        day=pl.Series([raw_hour_label(k)[:8] for k, _ in decoded]))
    assert mine is not None and mine.height == len(keys)
    assert mine.equals(expected)
    assert mine.filter(pl.col("rank") == 1).height > 0 and mine.filter(pl.col("rank") == 2).height > 0
    assert mine["latency_idle_ms"].drop_nulls().len() > 0


@pytest.mark.parametrize("change", ["integer speed", "minus zero", "repeated key"])
def test_a_month_the_columns_cannot_give_back_is_left_to_the_objects(change):
    record = result("home-primary", "2025-12-29 10:02", 100.5)
    key = "host=home-primary/year=2025/month=202512/day=20251229/hour=2025122910/minute=00/test.json"
    data = json.loads(record.to_json())
    if change == "integer speed":
        data["download_mbps"] = 100  # the column holds 100.0; the object says 100
    elif change == "minus zero":
        data["upload_mbps"] = -0.0
    rows = [RAW_TABLE.encode_row(data, host="home-primary", source_key=key, source_version="v")]
    if change == "repeated key":
        rows.append(dict(rows[0]))
    frame = RAW_TABLE.frame(rows)
    assert table_results_frame(frame) is None
    clean = json.loads(record.to_json())
    assert table_results_frame(RAW_TABLE.frame([RAW_TABLE.encode_row(clean, host="home-primary", source_key=key,
                                                                     source_version="v")])) is not None


def _summaries(store) -> dict[str, bytes]:
    out = {}
    for tier in ("hourly", "daily", "weekly", "monthly", "yearly"):
        for info in store.list(B.for_tier(tier), "aggregated/"):
            out[info.key] = re.sub(rb'"(generated_at|source_max_modified)": ?"[^"]*"', b"",
                                   store.get(B.for_tier(tier), info.key))
    return out


def test_a_backfill_counted_from_the_columns_writes_what_the_objects_give(local_store, config_for, monkeypatch):
    messy_month(local_store)
    config = config_for(local_store)
    backfill(config, "2025-12-29", "2025-12-31", progress=False, now=NOW)  # from JSON: compacts December
    # a setting every hourly summary depends on changes, so the next backfills rewrite every summary
    changed = config.with_overrides(sections={"aggregate": {"anomaly_min_drop_fraction": 0.05}})
    asked = []
    original = MonthSource.groups
    monkeypatch.setattr(MonthSource, "groups", lambda self, labels: asked.append(original(self, labels)) or asked[-1])
    from_columns = backfill(changed, "2025-12-29", "2025-12-31", progress=False, now=NOW)
    columns_view = _summaries(local_store)
    assert len(asked) == 3 and all(rows for rows in asked)      # every day was counted from the columns
    monkeypatch.setattr(MonthSource, "groups", lambda self, labels: None)
    for info in list(local_store.list(B.hourly, "aggregated/")):  # nothing left to compare with
        local_store.delete(B.hourly, info.key)
    from_objects = backfill(changed, "2025-12-29", "2025-12-31", progress=False, now=NOW)
    assert _summaries(local_store) == columns_view                # byte for byte
    assert from_columns.items == from_objects.items and from_columns.results_read == from_objects.results_read
    anomalies = sum(s.anomalies_count for summaries in from_columns.summaries.values() for h, s in summaries.items()
                    if h is None and s.tier == "hourly")
    assert anomalies > 0


def test_a_day_whose_batch_leaves_out_an_hour_with_rows_is_left_to_the_objects(local_store, config_for):
    messy_month(local_store)
    backfill(config_for(local_store), "2025-12-29", "2025-12-31", progress=False, now=NOW)
    month = parse_period("monthly", "202512", IST)
    table = tables_io.read_raw_month(local_store, B, month)
    labels = {p.label for p in periods_between("hourly", month.start_utc, month.end_utc - timedelta(seconds=1), IST)}
    hosts = ("home-primary", "office-main")
    source = MonthSource(table, [list_raw_hours(local_store, B, h, month, labels) for h in hosts])
    day = {f"20251230{h:02d}" for h in range(24)}
    whole = source.groups(day)
    assert whole is not None and {row["hour"] for row in whole} == day
    assert source.groups(day - {"2025123005"}) is None            # its slots' duplicates are the day's
    assert source.groups({"2025123023", "2025123100"}) is None    # two days
    assert source.groups({f"20251225{h:02d}" for h in range(24)}) == []  # a day without results
