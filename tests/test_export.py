"""``speedlab export``: views and raw ranges as CSV, JSON lines and Parquet; a raw export imported
back into an empty store gives the same results."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import polars as pl
import pytest

from speedlab.cli import main
from speedlab.errors import TransferError
from speedlab.export import encode_rows, export_format, export_raw, export_view, raw_records
from speedlab.importing import import_file
from speedlab.query import rows
from speedlab.reader import read_results
from speedlab.records import Client, Server, SpeedTestResult
from tests.helpers.data import IST, B, put, result

NOW = datetime(2026, 1, 3, 8, 0, tzinfo=IST)  # the minute view of 2 days starts 2026-01-01 08:15


def _seed(store) -> list[SpeedTestResult]:
    """Two hosts over three days: full, partial and failed results, one with server, client,
    engine output and a field this speedlab does not know."""
    from dataclasses import replace
    made = [result("home-primary", "2026-01-01 09:02:11", 187.4, 94.1, 11.8),
            result("home-primary", "2026-01-01 23:59:00", 120.0, None, 14.0),
            result("home-primary", "2026-01-02 00:01:00", status="failed"),
            result("office", "2026-01-02 10:17:45", 95.25, 40.5, 7.0, connection="Wi-Fi 5GHz"),
            result("office", "2026-01-03 08:00:30", 99.0, 41.0, 8.5)]
    made[0] = replace(made[0], server=Server(id="12345", name="Mumbai", sponsor="Example", distance_km=3.2),
                      client=Client(ip="203.0.113.7", isp="Example Broadband"), jitter_ms=0.8,
                      bytes_sent=52428800, engine_output={"download": 187400000.0, "nested": {"a": [1, 2]}},
                      extra={"future_field": {"x": 1}})
    for record in made:
        put(store, record)
    return made


def _results(store, zone: object = IST) -> dict[tuple[str, str], SpeedTestResult]:
    from speedlab.periods import parse_period
    read = read_results(store, B, parse_period("monthly", "2026-01", zone))
    assert read.rejected == []  # every object where its key says (host, slot in the zone)
    return {(r.host_id, r.timestamp_utc): r for _, r in read.results}


# =========================================================================== formats (pure)

def test_the_format_comes_from_the_flag_or_the_suffix():
    assert export_format(None, "out/x.CSV") == "csv" and export_format(None, "x.ndjson") == "jsonl"
    assert export_format(None, "x.parquet") == "parquet" and export_format("jsonl", "x.csv") == "jsonl"
    assert export_format(None, None) == "csv"
    with pytest.raises(TransferError, match="cannot tell"):
        export_format(None, "x.xlsx")
    with pytest.raises(TransferError, match="Parquet is binary"):
        export_format("parquet", None)
    with pytest.raises(TransferError, match="unknown export format"):
        export_format("xml", "x.xml")


def test_encoded_rows_read_back_with_polars_in_every_format(tmp_path):
    data = [{"period": "2026-01-01", "download_avg": 187.4, "tests": 3, "hosts": ["a", "b"], "error": None},
            {"period": "2026-01-02", "download_avg": None, "tests": 0, "hosts": [], "error": "missing"}]
    lines = [json.loads(line) for line in encode_rows(data, "jsonl").decode().splitlines()]
    assert lines == data
    table = list(csv.DictReader(io.StringIO(encode_rows(data, "csv").decode())))
    assert [r["download_avg"] for r in table] == ["187.4", ""] and json.loads(table[0]["hosts"]) == ["a", "b"]
    (tmp_path / "x.parquet").write_bytes(encode_rows(data, "parquet"))
    frame = pl.read_parquet(tmp_path / "x.parquet")
    assert frame["download_avg"].to_list() == [187.4, None] and frame["tests"].to_list() == [3, 0]
    assert frame.columns == list(data[0])


# =========================================================================== raw ranges

def test_raw_records_are_the_days_inclusive_of_one_or_every_host(local_store, config_for):
    made = _seed(local_store)
    local_store.put(B.raw, "host=office/year=2026/month=202601/day=20260102/hour=2026010211/minute=00/test.json",
                    b'{"schema_version": 1, "host_')
    config = config_for(local_store)
    records, rejected = raw_records(local_store, config, "2026-01-01", "2026-01-02")
    in_range = sorted((r for r in made if r.slot_start.date() <= datetime(2026, 1, 2).date()),
                      key=lambda r: r.time_utc)
    assert records == in_range and len(records) == 4
    assert len(rejected) == 1 and "minute=00" in rejected[0][0]
    only, _ = raw_records(local_store, config, "2026-01-02", "2026-01-03", "office")
    assert [r.timestamp_utc for r in only] == [r.timestamp_utc for r in made if r.host_id == "office"]
    with pytest.raises(TransferError, match="before the first"):
        raw_records(local_store, config, "2026-01-03", "2026-01-01")
    with pytest.raises(TransferError, match="YYYY-MM-DD"):
        raw_records(local_store, config, "2026-01", "2026-01-03")


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_a_raw_export_imports_back_into_an_empty_store_as_the_same_results(local_store, config_for, tmp_path,
                                                                            suffix):
    from speedlab.store import LocalStore
    made = _seed(local_store)
    out = tmp_path / f"raw.{suffix}"
    report = export_raw(config_for(local_store), "2026-01-01", "2026-01-03", output=out)
    assert report.rows == len(made) and report.output == str(out)
    (tmp_path / "empty").mkdir()
    empty = LocalStore(tmp_path / "empty")
    imported = import_file(config_for(empty), out, "speedlab", now=datetime.now(timezone.utc))
    assert len(imported.stored) == len(made) and imported.ok and imported.skipped == []
    assert _results(empty) == _results(local_store) == {(r.host_id, r.timestamp_utc): r for r in made}
    back = _results(empty)[("home-primary", made[0].timestamp_utc)]
    assert back.extra == made[0].extra and back.engine_output == made[0].engine_output
    if suffix == "jsonl":  # the records' own JSON, byte for byte
        assert out.read_text().splitlines() == [r.to_json() for r in sorted(made, key=lambda r: r.time_utc)]
    again = import_file(config_for(empty), out, "speedlab", now=datetime.now(timezone.utc))
    assert again.stored == [] and len(again.already_present) == len(made)


def test_a_raw_export_imported_in_another_zone_gets_that_zones_slots(local_store, config_for, tmp_path):
    from speedlab.store import LocalStore
    made = _seed(local_store)
    export_raw(config_for(local_store), "2026-01-01", "2026-01-03", output=tmp_path / "raw.jsonl")
    (tmp_path / "utc").mkdir()
    utc_store = LocalStore(tmp_path / "utc")
    report = import_file(config_for(utc_store, timezone="UTC"), tmp_path / "raw.jsonl", "speedlab", "office",
                         now=datetime.now(timezone.utc))
    assert len(report.stored) == 2 and {s.kind for s in report.skipped} == {"other_host"}
    back = _results(utc_store, "UTC")
    for record in (r for r in made if r.host_id == "office"):
        got = back[("office", record.timestamp_utc)]
        assert got.slot_start.utcoffset().total_seconds() == 0 and got.time_utc == record.time_utc
        assert (got.download_mbps, got.upload_mbps) == (record.download_mbps, record.upload_mbps)


# =========================================================================== views

def test_a_view_exports_the_rows_query_gives(local_store, config_for, tmp_path):
    made = _seed(local_store)
    config = config_for(local_store)
    expected = rows("minute", 2, "home-primary", config=config, now=NOW)
    report = export_view(config, "minute", 2, "home-primary", output=tmp_path / "m.jsonl", now=NOW)
    got = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert got == expected and report.rows == 2 * 96
    with_data = [row for row in got if row["download_avg"] is not None]
    assert [row["download_avg"] for row in with_data] == [r.download_mbps for r in made[:2]]
    export_view(config, "minute", 2, "home-primary", output=tmp_path / "m.csv", now=NOW)
    table = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert [float(r["download_avg"]) for r in table if r["download_avg"]] == [187.4, 120.0]


def test_cli_export_to_stdout_to_a_file_and_refusals(local_store, tmp_path, capsys):
    made = _seed(local_store)
    store = ["--store", str(local_store.root)]
    assert main(["export", "--raw", "2026-01-01", "2026-01-03", "--format", "jsonl", *store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [SpeedTestResult.from_json(line) for line in lines] == sorted(made, key=lambda r: r.time_utc)
    assert main(["export", "--raw", "2026-01-02", "2026-01-03", "--host", "office", "-o",
                 str(tmp_path / "o.parquet"), "--json", *store]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 2
    frame = pl.read_parquet(tmp_path / "o.parquet")
    assert frame["download_mbps"].to_list() == [95.25, 99.0] and frame["host_id"].unique().to_list() == ["office"]
    assert main(["export", "--mode", "daily", "--format", "parquet", *store]) == 1
    assert "Parquet is binary" in capsys.readouterr().err
    assert main(["export", "--raw", "2026-01-01", "2026-01-03", "-o", str(tmp_path / "nope" / "x.csv"),
                 *store]) == 1
    assert "cannot write" in capsys.readouterr().err
    # --days and --now choose a view's periods: with --raw they are refused, not ignored
    assert main(["export", "--raw", "2026-01-01", "2026-01-03", "--days", "3", *store]) == 1
    assert "--raw takes its days as FROM TO" in capsys.readouterr().err
