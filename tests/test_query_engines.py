"""docs/query-engines.md is true: its polars code reads the tables from an S3 server and gives
exactly the original summary objects' figures, its Athena DDL lists exactly the tables' columns
and the layout's partitions, and its DuckDB query runs (when duckdb is installed)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from speedlab.layout import TablePartition, parse_summary_key, tables_bucket
from speedlab.periods import TIERS, parse_period
from speedlab.reader import read_results
from speedlab.rollup import rollup
from speedlab.tables import RAW_TABLE, SUMMARY_TABLE
from speedlab.tables_io import rebuild
from tests.helpers.data import IST, B, put, series, summary_objects

DOC = Path(__file__).resolve().parent.parent / "docs" / "query-engines.md"
HOSTS = ("home-primary", "office-main")
#: Mid-morning on 2 January 2026: December 2025 and 2025 have ended, January 2026 has begun.
NOW = datetime(2026, 1, 2, 11, 0, tzinfo=IST)


def blocks(language: str) -> list[str]:
    """The doc's fenced code blocks of ``language``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.S | re.M)


def build(store, config_for):
    """Two hosts' hourly results across New Year (IST), every tier rolled up, the tables rebuilt:
    hourly and raw in two months, daily and yearly in two years."""
    for host in HOSTS:
        for record in series(host, datetime(2025, 12, 31, 20, 0, tzinfo=IST), 8, every=timedelta(hours=1),
                             download=lambda i: 90.0 + 3 * i + (i % 2) * 0.25):
            put(store, record)
    config = config_for(store)
    for tier, label in (("yearly", "2025"), ("yearly", "2026"), ("weekly", "2026W01")):
        rollup(config, tier, parse_period(tier, label, IST), now=NOW)
    rebuild(store, B)


def figures(data: dict) -> dict[str, object]:
    """Column name -> value of every typed column the object ``data`` fills (nested stats too)."""
    out = {}
    for column in SUMMARY_TABLE.columns:
        node: object = data
        for part in column.path:
            node = node.get(part, KeyError) if isinstance(node, dict) else KeyError
        if node is not KeyError:
            out[column.name] = (sorted(node.items()) if column.kind == "by_host" and node is not None else node)
    return out


def row_figures(row: dict, names) -> dict[str, object]:
    out = {name: row[name] for name in names}
    if out.get("records_by_host") is not None:
        out["records_by_host"] = sorted((item["host"], item["count"]) for item in out["records_by_host"])
    return out


# --------------------------------------------------------------------------- polars

def test_the_documented_polars_code_reads_the_original_figures_from_the_s3_server(s3_store, config_for):
    build(s3_store, config_for)
    code = blocks("python")
    assert len(code) == 5, "the doc's polars blocks changed: update this test"
    space: dict = {"store": s3_store, "buckets": B}
    exec(code[0], space)  # defines scan_tier
    for tier in TIERS:  # every tier, every row, every figure: exactly the objects' values
        objects = summary_objects(s3_store, tier)
        scanned = space["scan_tier"](s3_store, B, tier).collect()
        assert sorted(scanned["source_key"]) == sorted(objects) and objects, tier
        for row in scanned.iter_rows(named=True):
            data = objects[row["source_key"]]
            want = figures(data)
            assert row_figures(row, want) == want, row["source_key"]
            assert row["host"] == (data["host_id"] or "all") and row["tier"] == tier
            assert (row["summary_tier"], row["year"]) == (data["tier"], int(row["label"][:4]))
            assert row.get("month") == (int(row["label"][4:6]) if tier == "hourly" else None)
    hourly = summary_objects(s3_store, "hourly")
    daily = summary_objects(s3_store, "daily")
    monthly = summary_objects(s3_store, "monthly")

    for block in code[1:]:
        exec(block, space)
    december = sorted((parse_summary_key(k).label, d) for k, d in hourly.items()
                      if d["host_id"] is None and "/month=202512/" in k)
    assert space["december_hours"].rows() == [
        (label, d["avg_download"], d["p95_ping"], d["records_aggregated"], d["coverage_pct"]) for label, d in december]
    assert len(december) >= 4  # 20:00 to 23:00 on New Year's Eve, and the all-hosts rows only
    office = sorted((parse_summary_key(k).label, d) for k, d in daily.items()
                    if d["host_id"] == "office-main" and d["date"].startswith("2025"))
    assert space["office_days"].rows() == [(label, "daily", d["date"], d["avg_download"],
                                            d["stats"]["download_mbps"]["count"]) for label, d in office]
    merged = {(row[0], row[1]): row[2] for row in space["monthly_from_daily"].rows()}
    assert merged.keys() == {(d["host_id"] or "all", parse_summary_key(k).label) for k, d in monthly.items()
                             if parse_summary_key(k).label.startswith("2025")}
    for key, data in monthly.items():  # merged from the daily statistics = the monthly summary's mean
        if parse_summary_key(key).label.startswith("2025"):
            mean = merged[(data["host_id"] or "all", parse_summary_key(key).label)]
            assert mean == data["avg_download"], key
    december_results = read_results(s3_store, B, parse_period("monthly", "202512", IST)).results
    assert space["results_per_host"].rows() == [
        (h, n, sum(r.download_mbps for _, r in december_results if r.host_id == h) / n)
        for h in HOSTS if (n := sum(1 for _, r in december_results if r.host_id == h))]


def test_a_year_filter_prunes_the_partitions_of_other_years(local_store, config_for):
    build(local_store, config_for)
    space: dict = {}
    exec(blocks("python")[0], space)
    other = local_store.root / tables_bucket(B) / TablePartition("daily", 2026).key
    other.write_bytes(b"not parquet: read only if the filter did not prune this partition")
    pruned = space["scan_tier"](local_store, B, "daily").filter(pl.col("year") == 2025).collect()
    assert len(pruned) == len([k for k, d in summary_objects(local_store, "daily").items() if d["date"] < "2026"])
    with pytest.raises(pl.exceptions.PolarsError):  # the same scan without the filter opens the damaged object
        space["scan_tier"](local_store, B, "daily").collect()


# --------------------------------------------------------------------------- Athena

def athena_type(dtype) -> str:
    """The Athena (Hive DDL) type of a polars column type of the tables."""
    simple = {pl.String: "string", pl.Float64: "double", pl.Int64: "bigint", pl.Boolean: "boolean"}
    if isinstance(dtype, pl.List):
        return f"array<{athena_type(dtype.inner)}>"
    if isinstance(dtype, pl.Struct):
        return "struct<" + ",".join(f"{f.name}:{athena_type(f.dtype)}" for f in dtype.fields) + ">"
    return simple[dtype]


def parse_ddl(sql: str) -> dict:
    """Name, columns (name -> type), partition columns, location and properties of one
    ``CREATE EXTERNAL TABLE``."""
    match = re.search(r"CREATE EXTERNAL TABLE (\w+) \((.*?)\n\)\nPARTITIONED BY \((.*?)\)\nSTORED AS PARQUET\n"
                      r"LOCATION '(.*?)'\nTBLPROPERTIES \((.*?)\);", sql, re.S)
    assert match, sql[:200]
    columns = dict(re.findall(r"^\s*`(\w+)` (\S+?),?$", match[2], re.M))
    return {"name": match[1], "columns": columns, "partitions": dict(re.findall(r"`(\w+)` (\w+)", match[3])),
            "location": match[4], "properties": dict(re.findall(r"'([\w.]+)' = '(.*?)'", match[5]))}


def documented_tables() -> dict[str, dict]:
    """Tier -> parsed DDL: every CREATE EXTERNAL TABLE of the doc, and the weekly, monthly and
    yearly ones made from the daily block as the doc says (``sed 's/daily/TIER/g'``)."""
    ddl = [block for block in blocks("sql") if "CREATE EXTERNAL TABLE" in block]
    parsed = {parse_ddl(block)["name"].removeprefix("speedlab_"): parse_ddl(block) for block in ddl}
    daily = next(block for block in ddl if "speedlab_daily" in block)
    for tier in ("weekly", "monthly", "yearly"):
        parsed[tier] = parse_ddl(daily.replace("daily", tier))
    return parsed


def test_the_athena_ddl_lists_exactly_the_table_columns_and_projects_the_layout_partitions():
    tables = documented_tables()
    assert set(tables) == set(TIERS) | {"raw"}
    for tier, table in tables.items():
        schema = RAW_TABLE if tier == "raw" else SUMMARY_TABLE
        assert table["columns"] == {name: athena_type(dtype) for name, dtype in schema.schema.items()}, tier
        assert list(table["columns"]) == list(schema.schema), tier  # the files' order too
        monthly = tier in ("hourly", "raw")
        assert table["partitions"] == ({"year": "int", "month": "int"} if monthly else {"year": "int"}), tier
        props = table["properties"]
        assert props["projection.enabled"] == "true" and props["projection.year.type"] == "integer"
        if monthly:
            assert (props["projection.month.type"], props["projection.month.range"],
                    props["projection.month.digits"]) == ("integer", "1,12", "2"), tier
        else:
            assert not any(name.startswith("projection.month") for name in props), tier
        # the template, filled as Athena fills it, is the folder of the layout's table key
        for year, month in ((2025, 1), (2026, 12)):
            filled = (props["storage.location.template"].replace("${year}", str(year))
                      .replace("${month}", f"{month:02d}"))
            key = TablePartition(tier, year, month if monthly else None).key
            assert filled == f"s3://{tables_bucket(B)}/{key.rsplit('/', 1)[0]}/", tier
            assert filled.startswith(table["location"])


# --------------------------------------------------------------------------- DuckDB

def test_the_documented_duckdb_query_gives_the_monthly_means_from_a_local_store(local_store, config_for):
    duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed (not a speedlab dependency; "
                                                  "docs/query-engines.md only documents it)")
    build(local_store, config_for)
    query = next(block for block in blocks("sql") if "read_parquet(" in block and "SELECT" in block)
    local = f"{local_store.root}/{tables_bucket(B)}/tables/"
    rows = duckdb.sql(query.replace(f"s3://{tables_bucket(B)}/tables/", local)).fetchall()
    monthly = {(d["host_id"] or "all", parse_summary_key(k).label): d
               for k, d in summary_objects(local_store, "monthly").items() if parse_summary_key(k).label < "2026"}
    assert {(host, month) for host, month, _, _ in rows} == set(monthly)
    for host, month, mean, results in rows:
        assert mean == monthly[(host, month)]["avg_download"]
        assert results == monthly[(host, month)]["records_aggregated"]
