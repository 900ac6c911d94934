"""The columnar tables beside the original layout: exact round trips, rebuild and check, two
writers at once, a crash mid-write, late data, and reading the tables from S3 with polars."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import datetime, timedelta

import polars as pl
import pytest

from speedlab import layout, tables
from speedlab.aggregate import hourly_summaries
from speedlab.config import Plan
from speedlab.errors import StoreUnavailable, TableError
from speedlab.layout import TablePartition, parse_summary_key, summary_table_partition, tables_bucket
from speedlab.periods import TIERS, parse_period
from speedlab.reader import read_results
from speedlab.records import SpeedTestResult
from speedlab.rollup import rollup
from speedlab.rowbuild import ROW_SUMMARY_FIELDS, summary_row
from speedlab.tables import (
    INPUTS,
    RAW_TABLE,
    SOURCE_SHA256,
    SUMMARY_TABLE,
    diff_partition,
    frame_from_parquet,
    frame_to_parquet,
)
from speedlab.tables_engines import storage_options, table_glob
from speedlab.tables_io import (
    check,
    keep_current,
    read_raw_table,
    read_summaries_table,
    rebuild,
    update_partitions,
    update_raw,
    update_summaries,
)
from tests.helpers.data import IST, B, put, result, series, summary_objects
from tests.helpers.stores import TableWritesFail

NOW = datetime(2026, 2, 1, tzinfo=IST)
HOSTS = ("home-primary", "office-main")


def build(store, config_for):
    """Two hosts' hourly results on 2025-12-27 and every tier rolled up by the real rollup."""
    for host in HOSTS:
        for record in series(host, datetime(2025, 12, 27, 10, 0, tzinfo=IST), 12, every=timedelta(hours=1)):
            put(store, record)
    put(store, result("home-primary", "2025-12-27 12:31", status="failed"))
    config = config_for(store)
    rollup(config, "yearly", parse_period("yearly", "2025", IST), now=NOW)
    rollup(config, "weekly", parse_period("weekly", "2025W52", IST), now=NOW)
    return config


def rollup_leaving_tables_behind(store, config, hour, now):
    """Roll ``hour`` up, then put every table object back as it was: the layout moves on and the
    tables do not (what a job killed before its table update, or an older speedlab, leaves)."""
    before = {i.key: store.get(tables_bucket(B), i.key) for i in store.list(tables_bucket(B), "tables/")}
    rollup(config, "hourly", hour, now=now)
    for info in list(store.list(tables_bucket(B), "tables/")):
        if info.key in before:
            store.put(tables_bucket(B), info.key, before[info.key])
        else:
            store.delete(tables_bucket(B), info.key)


def table_of(store, key, schema=SUMMARY_TABLE):
    return frame_from_parquet(store.get(tables_bucket(B), key), schema, key)


# --------------------------------------------------------------------------- pure

def test_rows_give_back_any_object_exactly_fields_order_types_and_absence():
    seed = {"avg_download": 185, "avg_upload": 95.67, "avg_ping": 12.34, "min_download": 45.12,
            "records_aggregated": 228, "days": 7, "connection_types": ["Ethernet", "Wi-Fi 5GHz"]}
    odd = {"stats": None, "tier": "daily", "year": "2025", "records_aggregated": 2 ** 70, "avg_download": None,
           "records_by_host": {"a": True}, "new_field": {"nested": [1, 2.5, None]}, "hosts": ["a", 3],
           "exact": 1, "schema_version": 1}
    sketchy = {"stats": {"download_mbps": {"count": 2, "sum": 3.0, "odd": "x",
                                           "sketch": {"alpha": 0.01, "index": [1, 2], "counts": [1, 1]}}}}
    for data in (seed, odd, sketchy, {}):
        row = SUMMARY_TABLE.encode_row(data, host="all", label="20251229", source_key="k", source_version="v")
        frame = frame_from_parquet(frame_to_parquet(SUMMARY_TABLE.frame([row])), SUMMARY_TABLE)
        back = SUMMARY_TABLE.decode_row(frame.row(0, named=True))
        assert json.dumps(back) == json.dumps(data)  # values, types (185 stays an int), key order
    row = SUMMARY_TABLE.encode_row(seed, host="all", label="x", source_key="k", source_version=None)
    assert row["avg_download"] == 185.0 and row["connection_types"] == ["Ethernet", "Wi-Fi 5GHz"]  # typed for engines
    assert type(row["avg_download"]) is float and json.loads(row["json_overrides"]) == [[["avg_download"], 185]]
    assert "summary_tier" in SUMMARY_TABLE.schema and "tier" not in SUMMARY_TABLE.schema  # hive names stay free


def test_a_row_decoded_for_a_dashboard_row_gives_exactly_the_fields_the_row_reads():
    """``decode_row(row, ROW_SUMMARY_FIELDS)`` from only ``columns_of``'s columns: each field as the
    whole object holds it, and the same dashboard row as the whole summary gives."""
    hour = parse_period("hourly", "2025122914", IST)
    records = [(f"k{i}", replace(result(h, f"2025-12-29 14:{i * 15 + 2:02d}", 150.0 + i, 40.5, 9.0 + i),
                                 latency_idle_ms=11.0 + i, latency_download_ms=40.0, jitter_ms=1.5))
               for i in range(4) for h in HOSTS]
    real = hourly_summaries(hour, records, plan_for=lambda host: Plan(200.0, 50.0))[None].to_dict()
    legacy = {"avg_download": 185, "avg_upload": 95.67, "avg_ping": 12.34, "records_aggregated": 228,
              "connection_types": ["Ethernet"], "anomalies_count": 2}
    odd = {**real, "stats": {"download_mbps": "garbage", "ping_ms": {"count": "x"}}, "hosts": "a",
           "records_aggregated": 2 ** 70, "coverage_pct": "n/a"}
    columns = SUMMARY_TABLE.columns_of(ROW_SUMMARY_FIELDS)
    assert len(columns) < len(SUMMARY_TABLE.columns) / 3
    for data in (real, legacy, odd, {}):
        row = SUMMARY_TABLE.encode_row(data, host="all", label=hour.label, source_key="k", source_version="v")
        frame = frame_from_parquet(frame_to_parquet(SUMMARY_TABLE.frame([row])), SUMMARY_TABLE)
        part = SUMMARY_TABLE.decode_row(frame.select(columns).row(0, named=True), ROW_SUMMARY_FIELDS)
        whole = SUMMARY_TABLE.decode_row(frame.row(0, named=True))
        expected = {k: ({m: {"count": v["count"]} if isinstance(v, dict) and "count" in v else
                         {} if isinstance(v, dict) else v for m, v in whole[k].items()
                         if m in ROW_SUMMARY_FIELDS["stats"]} if k == "stats" and isinstance(whole[k], dict)
                        else whole[k]) for k in whole if k in ROW_SUMMARY_FIELDS}
        assert json.dumps(part) == json.dumps(expected)
        for mode in ("hourly", "daily"):
            kwargs = {"host": "all", "now": NOW, "plan": (200.0, 50.0)}
            assert summary_row(mode, hour, part, **kwargs) == summary_row(mode, hour, whole, **kwargs)
    assert part == {}


def test_a_table_in_row_groups_read_for_one_host_gives_exactly_its_rows(monkeypatch):
    """Tables are written in row groups (by source key, so by host); a read for one host and
    some columns gives exactly those rows and columns of the whole table."""
    monkeypatch.setattr(tables, "ROW_GROUP_ROWS", 3)   # 12 rows: 4 groups
    rows = [SUMMARY_TABLE.encode_row({"records_aggregated": i, "avg_download": 10.0 * i},
                                     host=h, label=f"2025122{i}", source_key=f"aggregated/host={h}/{i}",
                                     source_version="v") for h in ("a", "b", "c") for i in range(4)]
    body = frame_to_parquet(SUMMARY_TABLE.frame(rows))
    whole = frame_from_parquet(body, SUMMARY_TABLE)
    columns = ["host", "label", "records_aggregated", "avg_download"]
    for host in ("a", "b", "c", "nobody"):
        got = frame_from_parquet(body, SUMMARY_TABLE, "t", columns, pl.col("host") == host)
        assert got.columns == [c for c in whole.columns if c in columns]   # in the table's order
        assert got.equals(whole.filter(pl.col("host") == host).select(got.columns))
    assert frame_from_parquet(body, SUMMARY_TABLE, where=pl.col("host") == "b").equals(
        whole.filter(pl.col("host") == "b"))
    with pytest.raises(TableError, match="not readable Parquet"):
        frame_from_parquet(b"garbage", SUMMARY_TABLE, "t", columns, pl.col("host") == "a")


def test_a_raw_result_row_gives_the_same_record():
    record = result("home-primary", "2025-12-29 14:03", 187.4, 94.1, 11.8)
    data = {**record.to_dict(), "engine_output": {"raw": [1, {"x": None}]}, "newer_field": 5,
            "server": {"id": "1", "name": "n", "distance_km": 3}}
    row = RAW_TABLE.encode_row(data, host="home-primary", source_key="k", source_version="v")
    back = RAW_TABLE.decode_row(RAW_TABLE.frame([row]).row(0, named=True))
    assert json.dumps(back) == json.dumps(data)
    assert SpeedTestResult.from_dict(back) == SpeedTestResult.from_dict(data)


def test_diff_partition_sorts_rows_into_kept_changed_added_removed():
    diff = diff_partition({"a": "1", "b": "1", "c": "1", "d": None}, {"a": "1", "b": "2", "d": None, "e": "1"})
    assert (diff.unchanged, diff.changed, diff.added, diff.removed) == (("a",), ("b", "d"), ("e",), ("c",))


def test_a_damaged_table_is_refused_with_a_clear_error():
    with pytest.raises(TableError, match="not readable Parquet"):
        frame_from_parquet(b"PAR1 not really", SUMMARY_TABLE, "tables/x")
    with pytest.raises(TableError, match="columns"):
        frame_from_parquet(frame_to_parquet(pl.DataFrame({"a": [1]})), SUMMARY_TABLE, "tables/x")


# --------------------------------------------------------------------------- against stores

@pytest.mark.slow
def test_rebuild_then_every_tier_and_raw_read_back_exactly_and_check_is_clean(store, config_for):
    build(store, config_for)
    report = rebuild(store, B)
    assert report.rows > 0 and report.conflicts == 0 and report.rejected == []
    assert report.requests["put"] == len(report.partitions_written)
    for tier in TIERS:
        objects = summary_objects(store, tier)
        assert objects, tier
        for host in (None, *HOSTS):
            mine = {k: v for k, v in objects.items() if parse_summary_key(k).host_id == host}
            labels = sorted(parse_summary_key(k).label for k in mine)
            first, last = parse_period(tier, labels[0], IST), parse_period(tier, labels[-1], IST)
            read = read_summaries_table(store, B, tier, first, last, host)
            assert read.missing == [] and read.requests == 1
            assert list(read.summaries.values()) == [mine[k] for k in sorted(mine)]
            assert [json.dumps(v) for v in read.summaries.values()] == [json.dumps(mine[k]) for k in sorted(mine)]
    day = parse_period("daily", "20251227", IST)
    raw = read_raw_table(store, B, day, day)
    assert raw.results == read_results(store, B, day).results and len(raw.results) == 25
    assert [k for k, _ in read_raw_table(store, B, day, day, ["office-main"]).results] == [
        k for k, _ in raw.results if "office-main" in k]
    audit = check(store, B)
    assert audit.ok, audit.to_text()
    assert audit.rows == audit.sources == report.rows
    again = update_partitions(store, B, [summary_table_partition("hourly", "2025122710")])
    assert again.partitions_written == [] and again.sources_read == 0 and again.requests.get("put", 0) == 0


def test_check_finds_a_tampered_a_missing_and_an_extra_row_and_rebuild_repairs(store, config_for):
    build(store, config_for)
    rebuild(store, B, tiers=["daily"])
    key = layout.TablePartition("daily", 2025).key
    frame = table_of(store, key)
    keys = frame["source_key"].to_list()
    tampered = frame.with_columns(pl.when(pl.col("source_key") == keys[0]).then(1.5)
                                  .otherwise(pl.col("avg_download")).alias("avg_download"))
    extra = tampered.filter(pl.col("source_key") == keys[2]).with_columns(
        pl.lit("aggregated/year=2025/month=202512/day=20251201/speed_test_summary.json").alias("source_key"))
    store.put(tables_bucket(B), key, frame_to_parquet(pl.concat([tampered.filter(pl.col("source_key") != keys[1]),
                                                                  extra])))
    audit = check(store, B, tiers=["daily"])
    reasons = dict(audit.disagreements)
    assert not audit.ok and len(audit.disagreements) == 3, audit.to_text()
    assert reasons[keys[0]] == f"its row in {key} differs at avg_download"
    assert reasons[keys[1]] == f"has no row in {key}"
    assert reasons["aggregated/year=2025/month=202512/day=20251201/speed_test_summary.json"] == (
        f"has a row in {key} but no source object")
    fixed = update_partitions(store, B, [TablePartition("daily", 2025)])  # versions: the missing and extra rows
    assert (fixed.rows_dropped, fixed.sources_read) == (1, 1)
    assert dict(check(store, B, tiers=["daily"]).disagreements).keys() == {keys[0]}  # content: only check sees it
    rebuild(store, B, tiers=["daily"])
    assert check(store, B, tiers=["daily"]).ok


@pytest.mark.slow
def test_late_data_rewritten_after_the_table_is_picked_up_by_the_next_update(store, config_for):
    config = build(store, config_for)
    rebuild(store, B)
    late = put(store, result("office-main", "2025-12-27 15:46", 900.0, 90.0, 9.0))
    hour = parse_period("hourly", "2025122715", IST)
    rollup_leaving_tables_behind(store, config, hour, NOW + timedelta(days=1))
    key = layout.summary_key(hour, "office-main")
    assert check(store, B, tiers=["hourly", "raw"]).ok is False  # the layout moved on, the tables did not
    report = update_summaries(store, B, [(key, store.get(B.hourly, key))])
    # all three summaries of the hour were rewritten; the two not named are found by the partition's listing
    assert report.partitions_written == [TablePartition("hourly", 2025, 12).key] and report.rows_fixed == 3
    assert update_raw(store, B, [late]).rows_fixed == 0  # an added row, not a fixed one
    read = read_summaries_table(store, B, "hourly", hour, hour, "office-main")
    assert read.summaries["2025122715"]["records_aggregated"] == 2
    assert read.summaries["2025122715"] == json.loads(store.get(B.hourly, key))
    assert late in [k for k, _ in read_raw_table(store, B, hour, hour).results]
    assert check(store, B, tiers=["hourly", "raw"]).ok


@pytest.mark.slow
def test_two_writers_at_once_never_lose_an_update(store, config_for):
    build(store, config_for)
    rebuild(store, B, tiers=["hourly"])
    keys = sorted(k for k in summary_objects(store, "hourly") if "day=20251227" in k)[:8]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(mine: list[str], n: int) -> None:
        try:
            barrier.wait()
            for key in mine:
                data = json.loads(store.get(B.hourly, key))
                data["generated_at"] = f"2026-02-0{n}T00:00:00+00:00"
                body = json.dumps(data).encode()
                store.put(B.hourly, key, body)
                update_summaries(store, B, [(key, body)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(keys[i::4], i + 1)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    frame = table_of(store, TablePartition("hourly", 2025, 12).key)
    stamped = dict(zip(frame["source_key"], frame["generated_at"], strict=True))
    assert [stamped[k] for k in keys] == [f"2026-02-0{keys.index(k) % 4 + 1}T00:00:00+00:00" for k in keys]
    assert check(store, B, tiers=["hourly"]).ok


@pytest.mark.slow
def test_a_crash_between_a_summary_and_its_table_is_repaired_by_the_next_update(store, config_for):
    config = build(store, config_for)
    rebuild(store, B)
    put(store, result("home-primary", "2025-12-27 16:31", 500.0))
    hour = parse_period("hourly", "2025122716", IST)
    rollup_leaving_tables_behind(store, config, hour, NOW + timedelta(days=1))
    key = layout.summary_key(hour, "home-primary")
    with pytest.raises(StoreUnavailable):
        update_summaries(TableWritesFail(store, "killed"), B, [(key, store.get(B.hourly, key))])
    assert not check(store, B, tiers=["hourly"]).ok  # the old row stayed: no half-written table
    other = layout.summary_key(parse_period("hourly", "2025122711", IST), "office-main")
    repaired = update_summaries(store, B, [(other, store.get(B.hourly, other))])  # any later update of the month
    assert repaired.rows_fixed >= 2
    assert check(store, B, tiers=["hourly"]).ok


def test_an_update_works_on_the_frame_and_never_decodes_the_rows_it_keeps(local_store, config_for, monkeypatch):
    config = build(local_store, config_for)
    rebuild(local_store, B)
    late = put(local_store, result("office-main", "2025-12-27 15:46", 900.0, 90.0, 9.0))
    hour = parse_period("hourly", "2025122715", IST)
    rollup_leaving_tables_behind(local_store, config, hour, NOW + timedelta(days=1))
    key = layout.summary_key(hour, "office-main")
    kept_rows = []
    for schema in (RAW_TABLE, SUMMARY_TABLE):  # neither the stored rows nor their JSON come back
        monkeypatch.setattr(type(schema), "rows", lambda self, frame: kept_rows.append(frame) or {})
        monkeypatch.setattr(type(schema), "decode_row", lambda self, row: kept_rows.append(row) or {})
    written = local_store.put(B.hourly, key, local_store.get(B.hourly, key))  # the version put returns
    report = update_summaries(local_store, B, [])  # nothing named: nothing to do
    assert report.partitions_written == []
    report = keep_current(local_store, B, [(key, local_store.get(B.hourly, key), written)], [late], [hour])
    assert not kept_rows and report.sources_read == 3  # the late result and the two other summaries: not `key`
    assert sorted(report.partitions_written) == sorted([TablePartition("hourly", 2025, 12).key,
                                                        TablePartition("raw", 2025, 12).key])
    monkeypatch.undo()
    assert check(local_store, B, tiers=["hourly", "raw"]).ok


def test_a_repeated_row_is_collapsed_to_its_source_by_the_next_update(local_store, config_for):
    build(local_store, config_for)
    rebuild(local_store, B, tiers=["raw"])
    part = TablePartition("raw", 2025, 12)
    body, version = local_store.get_versioned(tables_bucket(B), part.key)
    frame = frame_from_parquet(body, RAW_TABLE, part.key)
    assert local_store.put_if_version(tables_bucket(B), part.key, frame_to_parquet(pl.concat([frame, frame[:2]])),
                                      version)
    assert not check(local_store, B, tiers=["raw"]).ok  # a source key has more than one row
    report = update_raw(local_store, B, periods=[parse_period("hourly", "2025122710", IST)])
    assert report.partitions_written == [part.key] and report.sources_read == 0
    assert check(local_store, B, tiers=["raw"]).ok


def test_bad_source_objects_are_skipped_and_reported_never_fatal(local_store, config_for):
    build(local_store, config_for)
    bad = "aggregated/host=home-primary/year=2025/month=202512/day=20251230/speed_test_summary.json"
    local_store.put(B.daily, bad, b"{not json")
    negative = "aggregated/year=2025/month=202512/day=20251201/speed_test_summary.json"
    local_store.put(B.daily, negative, json.dumps({"avg_download": 1.0, "avg_upload": 1.0, "avg_ping": 1.0,
                                                   "records_aggregated": -3}).encode())
    report = rebuild(local_store, B, tiers=["daily"])
    reasons = dict(report.rejected)
    assert set(reasons) == {bad, negative} and "corrupt JSON" in reasons[bad] and "negative" in reasons[negative]
    audit = check(local_store, B, tiers=["daily"])
    assert audit.ok and dict(audit.rejected).keys() == {bad, negative}


def test_polars_reads_the_tables_from_the_s3_server_with_the_original_figures(s3_store, config_for):
    build(s3_store, config_for)
    rebuild(s3_store, B)
    options = storage_options(s3_store)
    assert set(options) == {"aws_access_key_id", "aws_secret_access_key", "aws_region", "aws_endpoint_url",
                            "aws_allow_http"}
    for tier in ("hourly", "daily", "weekly", "monthly", "yearly"):
        scanned = (pl.scan_parquet(table_glob(s3_store, B, tier), hive_partitioning=True, storage_options=options)
                   .select("source_key", "host", "tier", "year", "avg_download", "records_aggregated", "coverage_pct")
                   .collect())
        objects = summary_objects(s3_store, tier)
        assert sorted(scanned["source_key"]) == sorted(objects)
        for row in scanned.iter_rows(named=True):
            data = objects[row["source_key"]]
            assert row["tier"] == tier and str(row["year"]) == parse_summary_key(row["source_key"]).label[:4]
            assert (row["avg_download"], row["records_aggregated"], row["coverage_pct"]) == (
                data["avg_download"], data["records_aggregated"], data["coverage_pct"])
            assert row["host"] == (data["host_id"] or "all")
    raw = (pl.scan_parquet(table_glob(s3_store, B, "raw"), hive_partitioning=True, storage_options=options)
           .filter(pl.col("status") == "ok").group_by("host").agg(pl.col("download_mbps").sum()).sort("host")
           .collect())
    day = read_results(s3_store, B, parse_period("daily", "20251227", IST)).results
    assert raw.rows() == [(h, sum(r.download_mbps or 0.0 for _, r in day if r.host_id == h)) for h in HOSTS]


# --------------------------------------------------------------------------- record schema 2

def test_raw_tables_from_before_the_latency_columns_still_read_check_clean_and_update(local_store, config_for):
    """A store of schema-1 results whose raw table was written without the schema-2 columns (what
    the previous speedlab left), then a schema-2 result with latency figures arrives."""
    import dataclasses

    old = [dataclasses.replace(r, schema_version=1) for r in series("home-primary",
                                                                     datetime(2025, 12, 27, 10, 0, tzinfo=IST), 6)]
    for record in old:
        put(local_store, record)
    rebuild(local_store, B, tiers=["raw"])
    key = TablePartition("raw", 2025, 12).key
    full = table_of(local_store, key, RAW_TABLE)
    latency = ["latency_idle_ms", "latency_download_ms", "latency_upload_ms"]
    local_store.put(tables_bucket(B), key, frame_to_parquet(full.drop(latency)))  # as the old version wrote it
    assert pl.read_parquet(local_store.get(tables_bucket(B), key)).width == full.width - 3
    back = table_of(local_store, key, RAW_TABLE)  # read: the missing columns come back as nulls
    assert back.schema == full.schema and back[latency].null_count().row(0) == (6, 6, 6)
    audit = check(local_store, B, tiers=["raw"])
    assert audit.ok and audit.rows == 6, audit.to_text()
    day = parse_period("daily", "20251227", IST)
    assert read_raw_table(local_store, B, day, day).results == read_results(local_store, B, day).results
    stored = {k: json.loads(local_store.get(B.raw, k)) for k, _ in read_results(local_store, B, day).results}
    assert all(d["schema_version"] == 1 and "latency_idle_ms" not in d for d in stored.values())

    new = dataclasses.replace(result("home-primary", "2025-12-27 18:03", 90.0, 40.0, 9.0), jitter_ms=1.25,
                              latency_idle_ms=10.5, latency_download_ms=48.75, latency_upload_ms=None)
    new_key = put(local_store, new)
    update_raw(local_store, B, [new_key])
    after = table_of(local_store, key, RAW_TABLE)
    assert pl.read_parquet(local_store.get(tables_bucket(B), key)).schema == full.schema  # rewritten whole
    assert after.filter(pl.col("source_key") == new_key)[latency].row(0) == (10.5, 48.75, None)
    for row in after.iter_rows(named=True):  # schema-1 and schema-2 objects: exactly their JSON
        stored = json.loads(local_store.get(B.raw, row["source_key"]))
        assert json.dumps(RAW_TABLE.decode_row(row)) == json.dumps(stored)
    audit = check(local_store, B, tiers=["raw"])
    assert audit.ok and audit.rows == 7, audit.to_text()
    results = dict(read_raw_table(local_store, B, day, day).results)
    assert results[new_key] == new and results[new_key].latency_download_ms == 48.75


@pytest.mark.slow
def test_summary_tables_from_before_the_latency_columns_still_read_check_clean_and_update(local_store, config_for):
    """Daily summaries as the previous speedlab wrote them (no latency figures) in a summary table
    without the latency columns; then a rollup writes a summary with them."""
    store = local_store
    config = build(store, config_for)
    latency = sorted(SUMMARY_TABLE.added - {SOURCE_SHA256, INPUTS})
    assert len(latency) == 25 + 5 * 12 and "avg_latency_idle" in latency and "stats_jitter_ms_count" in latency
    old = {}
    for key, data in summary_objects(store, "daily").items():
        data = {k: v for k, v in data.items() if k not in latency}
        data["stats"] = {m: s for m, s in data["stats"].items() if m in ("download_mbps", "upload_mbps", "ping_ms")}
        store.put(B.daily, key, json.dumps(data).encode())
        old[key] = data
    rebuild(store, B, tiers=["daily"])
    key = summary_table_partition("daily", "20251227").key
    full = table_of(store, key)
    store.put(tables_bucket(B), key, frame_to_parquet(full.drop([*latency, SOURCE_SHA256])))  # as before
    assert pl.read_parquet(store.get(tables_bucket(B), key)).width == full.width - len(latency) - 1
    back = table_of(store, key)  # read: the missing columns come back as nulls
    assert back.schema == full.schema and set(back["avg_latency_idle"].to_list()) == {None}
    assert {row["source_key"]: SUMMARY_TABLE.decode_row(row) for row in back.iter_rows(named=True)} == {
        k: v for k, v in old.items() if k in set(back["source_key"])}
    # read for a dashboard row's fields only: the old table's missing latency columns are nulls too
    columns = ["source_key", *SUMMARY_TABLE.columns_of(ROW_SUMMARY_FIELDS)]
    part = frame_from_parquet(store.get(tables_bucket(B), key), SUMMARY_TABLE, key, columns)
    assert part.columns == [c for c in back.columns if c in columns] and part.height == back.height
    assert part["avg_latency_idle"].null_count() == part.height and part.equals(back.select(part.columns))
    audit = check(store, B, tiers=["daily"])
    assert audit.ok and audit.rows == len(old), audit.to_text()

    rollup(config, "daily", parse_period("daily", "20251227", IST), now=NOW)  # today's speedlab rewrites it
    after = table_of(store, key)
    assert pl.read_parquet(store.get(tables_bucket(B), key)).schema == full.schema
    new = summary_objects(store, "daily")
    rewritten = [k for k in new if new[k] != old.get(k)]
    # the new figures (null: nothing measured latency here, so no latency statistics are written)
    assert rewritten and all("p95_jitter" in new[k] and new[k]["p95_jitter"] is None
                             and "latency_idle_ms" not in new[k]["stats"] for k in rewritten)
    for row in after.iter_rows(named=True):  # old and new summaries: exactly their JSON
        assert json.dumps(SUMMARY_TABLE.decode_row(row)) == json.dumps(new[row["source_key"]])
    audit = check(store, B, tiers=["daily"])
    assert audit.ok and audit.rows == len(new), audit.to_text()
