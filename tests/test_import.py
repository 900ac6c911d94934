"""``speedlab import``: the four trackers' formats parsed (figures checked against the fixtures,
decoded here independently), written through the collector's writer to the slots of their
times, idempotent, never over another result, skipped lines with their numbers, hours marked."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from speedlab.cli import main
from speedlab.errors import InvalidHostId, StoreUnavailable, TransferError
from speedlab.importers import parse_import, parse_ookla
from speedlab.importing import import_file
from speedlab.layout import raw_key, stale_marker_key
from speedlab.records import SpeedTestResult
from tests.helpers.data import IST, B, everything, put, result

FIXTURES = Path(__file__).parent / "fixtures" / "import"
HOST = "home-primary"
#: After every fixture's tests (none is from the future then).
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def _slot(moment: datetime) -> datetime:
    """The 15-minute slot of an aware moment, in IST (computed here, not with speedlab's)."""
    local = moment.astimezone(IST)
    return local - timedelta(minutes=local.minute % 15, seconds=local.second, microseconds=local.microsecond)


def _utc(text: str) -> datetime:
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)


def _parse(name: str, fmt: str):
    return parse_import((FIXTURES / name).read_bytes(), fmt, HOST, "Asia/Kolkata")


def _raw(store) -> dict[str, bytes]:
    return {key: body for (bucket, key), body in everything(store).items() if bucket == B.raw}


# =========================================================================== parsers (pure)

def test_ookla_results_have_the_clis_figures_and_log_lines_garbage_and_negatives_are_skipped():
    expected = {}
    for number, text in enumerate((FIXTURES / "ookla.jsonl").read_text().splitlines(), 1):
        try:
            obj = json.loads(text)
        except ValueError:
            continue
        if obj.get("type") == "result" and obj["download"]["bandwidth"] >= 0:
            expected[number] = obj
    parsed = _parse("ookla.jsonl", "ookla")
    assert [line for line, _ in parsed.records] == sorted(expected) == [1, 3, 6, 7]
    for line, record in parsed.records:
        obj = expected[line]
        assert record.download_mbps == pytest.approx(obj["download"]["bandwidth"] * 8 / 1e6, abs=5e-4)
        assert record.upload_mbps == pytest.approx(obj["upload"]["bandwidth"] * 8 / 1e6, abs=5e-4)
        assert (record.ping_ms, record.jitter_ms) == (obj["ping"]["latency"], obj["ping"]["jitter"])
        assert record.packet_loss_pct == obj.get("packetLoss")
        assert record.latency_idle_ms == obj["ping"]["latency"]      # as the ookla engine stores them
        assert (record.latency_download_ms, record.latency_upload_ms) == (
            obj["download"].get("latency", {}).get("iqm"), obj["upload"].get("latency", {}).get("iqm"))
        assert record.slot_start == _slot(_utc(obj["timestamp"]))
        assert record.client.isp == obj["isp"] and record.client.ip == obj["interface"]["externalIp"]
        assert record.server.id == str(obj["server"]["id"]) and record.server.sponsor == obj["server"]["name"]
        assert record.engine_output["result"]["url"] == obj["result"]["url"]
        assert record.connection_type == ("VPN" if obj["interface"]["isVpn"] else "Unknown")
    first = dict(parsed.records)[1]
    assert first.download_mbps == 187.654  # 23456789 bytes/s * 8 / 1e6 = 187.654312
    assert first.bytes_received == 301234567 and first.bytes_sent == 52345678
    assert first.duration_s == pytest.approx((12807 + 11503) / 1000)
    assert [(s.line, s.kind) for s in parsed.skipped] == [(2, "not_a_result"), (4, "invalid"), (5, "invalid")]
    assert "Couldn't resolve host name" in parsed.skipped[0].reason
    assert "Segmentation fault" in parsed.skipped[1].reason and "negative" in parsed.skipped[2].reason


def test_ookla_pretty_json_and_a_zero_bandwidth():
    pretty = json.dumps({"type": "result", "timestamp": "2026-03-01T04:31:12Z", "ping": {"latency": 9.5},
                         "download": {"bandwidth": 0}, "upload": {"bandwidth": 1000000}}, indent=2)
    parsed = parse_ookla(("\n" + pretty + "\n" + pretty.replace("04:31", "05:31")).encode(), HOST, "UTC")
    starts = [i for i, line in enumerate(("\n" + pretty + "\n" + pretty).splitlines(), 1) if line == "{"]
    assert [line for line, _ in parsed.records] == starts and parsed.skipped == []
    record = parsed.records[0][1]
    assert record.status == "failed" and record.error.kind == "transfer_failed"


@pytest.mark.parametrize("fmt, factor", [("speedtest-tracker", 1 / 1e6), ("speedtest-tracker-bytes", 8 / 1e6)])
def test_speedtest_tracker_csv_in_bits_or_bytes_per_second(fmt, factor):
    with open(FIXTURES / "speedtest-tracker.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    good = {i + 2: row for i, row in enumerate(rows) if row["Download"] and row["Ping"] != "fast"}
    parsed = _parse("speedtest-tracker.csv", fmt)
    assert [line for line, _ in parsed.records] == sorted(good) == [2, 4, 6]
    for line, record in parsed.records:
        row = good[line]
        assert record.download_mbps == pytest.approx(int(row["Download"]) * factor, abs=5e-4)
        assert record.upload_mbps == pytest.approx(int(row["Upload"]) * factor, abs=5e-4)
        assert record.ping_ms == float(row["Ping"]) and record.jitter_ms == float(row["Ping jitter"])
        assert record.packet_loss_pct == (float(row["Packet loss"]) if row["Packet loss"] else None)
        created = datetime.strptime(row["Created at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        assert record.slot_start == _slot(created)  # created_at without an offset is UTC
    assert [(s.line, s.kind) for s in parsed.skipped] == [(3, "not_a_result"), (5, "invalid")]
    assert "fast" in parsed.skipped[1].reason


def test_a_csv_without_the_formats_columns_is_refused_as_a_whole():
    with pytest.raises(TransferError, match="created_at"):
        parse_import(b"when,down\n2026-01-01,5\n", "speedtest-tracker", HOST, "UTC")


def test_myspeed_export_with_a_failed_test_and_an_impossible_speed():
    text = (FIXTURES / "myspeed.json").read_text()
    tests = json.loads(text)
    starts = [i for i, line in enumerate(text.splitlines(), 1) if line.strip() == "{"]
    parsed = _parse("myspeed.json", "myspeed")
    by_line = dict(parsed.records)
    assert sorted(by_line) == [n for n, t in zip(starts, tests, strict=True) if t["download"] <= 100_000]
    for line, test in zip(starts, tests, strict=True):
        if line not in by_line:
            continue
        record = by_line[line]
        assert record.slot_start == _slot(_utc(test["created"]))
        if test["error"]:
            assert record.status == "failed" and record.error.message == test["error"]
            assert record.download_mbps is None
        else:
            assert (record.download_mbps, record.upload_mbps, record.ping_ms) == (
                test["download"], test["upload"], test["ping"])
            assert record.duration_s == test["time"]
    assert [(s.line, s.kind) for s in parsed.skipped] == [(starts[0], "invalid")]
    assert "250000" in parsed.skipped[0].reason


def test_librespeed_arrays_one_per_line():
    lines = (FIXTURES / "librespeed.json").read_text().splitlines()
    parsed = _parse("librespeed.json", "librespeed")
    assert [line for line, _ in parsed.records] == [1, 2, 4]
    for line, record in parsed.records:
        obj = json.loads(lines[line - 1])[0]
        moment = datetime.fromisoformat(obj["timestamp"][:26] + obj["timestamp"][-6:])
        assert record.slot_start == _slot(moment)
        if obj["upload"] == 0:
            assert record.status == "failed" and record.error.kind == "transfer_failed"
            continue
        assert (record.download_mbps, record.upload_mbps) == (obj["download"], obj["upload"])
        assert (record.ping_ms, record.jitter_ms) == (obj["ping"], obj["jitter"])
        assert (record.bytes_sent, record.bytes_received) == (obj["bytes_sent"], obj["bytes_received"])
        assert record.client.isp == obj["client"]["org"]
    assert [(s.line, s.kind) for s in parsed.skipped] == [(3, "invalid")]


def test_arguments_are_checked_before_anything_is_read():
    with pytest.raises(TransferError, match="unknown import format"):
        parse_import(b"", "fast.com", HOST, "UTC")
    with pytest.raises(TransferError, match="--host"):
        parse_import(b"", "ookla", None, "UTC")
    with pytest.raises(InvalidHostId, match="--host"):
        parse_import(b"", "ookla", "../etc", "UTC")


# =========================================================================== import into a store

@pytest.mark.parametrize("name, fmt, stored", [("ookla.jsonl", "ookla", 3), ("speedtest-tracker.csv",
                                                "speedtest-tracker", 3), ("myspeed.json", "myspeed", 4),
                                               ("librespeed.json", "librespeed", 3)])
def test_each_result_lands_in_the_slot_of_its_time_and_a_second_import_adds_nothing(
        local_store, config_for, name, fmt, stored):
    config = config_for(local_store)
    parsed = _parse(name, fmt)
    report = import_file(config, FIXTURES / name, fmt, HOST, now=NOW)
    assert len(report.stored) == stored and not report.ok  # every fixture holds a bad line
    raw = _raw(local_store)
    assert sorted(raw) == sorted(report.stored)
    slots = {raw_key(HOST, r.slot_start, IST) for _, r in parsed.records}
    assert set(raw) == slots  # one per slot of the file (the Ookla file has two in one slot)
    for key, body in raw.items():
        record = SpeedTestResult.from_json(body)
        assert key == raw_key(HOST, _slot(record.time_utc), IST)
    hours = {stale_marker_key(r.slot_start.strftime("%Y%m%d%H"), HOST) for _, r in parsed.records}
    assert sorted(report.marked_stale) == sorted(hours)

    again = import_file(config, FIXTURES / name, fmt, HOST, now=NOW)
    assert again.stored == [] and sorted(again.already_present) == sorted(report.stored)
    assert _raw(local_store) == raw and again.marked_stale == []
    assert [(s.line, s.kind) for s in again.skipped] == [(s.line, s.kind) for s in report.skipped]


def test_a_slot_holding_another_result_is_never_overwritten(local_store, config_for):
    config = config_for(local_store)
    mine = result(HOST, "2026-03-01 10:07:00", download=42.0)  # the collector's, in line 1's slot
    key = put(local_store, mine)
    report = import_file(config, FIXTURES / "ookla.jsonl", "ookla", HOST, now=NOW)
    assert SpeedTestResult.from_json(local_store.get(B.raw, key)) == mine
    taken = [s for s in report.skipped if s.kind == "slot_taken"]
    assert [s.line for s in taken] == [1] and key in taken[0].reason
    assert len(report.stored) == 2


def test_the_file_keeps_one_result_per_slot_by_the_slot_rule(local_store, config_for):
    report = import_file(config_for(local_store), FIXTURES / "ookla.jsonl", "ookla", HOST, now=NOW)
    crowded = [s for s in report.skipped if s.kind == "same_slot_in_file"]
    assert [s.line for s in crowded] == [6] and "line 3" in crowded[0].reason  # the earlier full ok wins
    kept = SpeedTestResult.from_json(local_store.get(B.raw, raw_key(HOST, _slot(_utc("2026-03-01T05:32:40Z")), IST)))
    assert kept.timestamp_utc == "2026-03-01T05:32:40Z"


def test_results_from_the_future_are_refused(local_store, config_for):
    now = datetime(2026, 3, 1, 5, 0, tzinfo=timezone.utc)  # between line 1 and line 3
    report = import_file(config_for(local_store), FIXTURES / "ookla.jsonl", "ookla", HOST, now=now)
    assert len(report.stored) == 1
    assert {s.line for s in report.skipped if "future" in s.reason} == {3, 7}


@pytest.mark.slow
def test_the_marked_hours_are_rolled_up_again_by_run_due(local_store, config_for):
    from speedlab.rollup import run_due
    from tests.helpers.data import summary_objects
    config = config_for(local_store)
    put(local_store, result(HOST, "2026-01-20 12:02:00", download=42.0))  # the collector's, rolled up first
    run_due(config, now=datetime(2026, 1, 20, 17, 0, tzinfo=IST), store=local_store)
    import_file(config, FIXTURES / "myspeed.json", "myspeed", HOST, now=NOW)
    assert list(local_store.list(B.hourly, "stale/"))
    run_due(config, now=datetime(2026, 1, 20, 17, 5, tzinfo=IST), store=local_store)
    hourly = {data["period"]: data for key, data in summary_objects(local_store, "hourly").items()
              if "host=" not in key}
    by_hour: dict[str, list[float]] = {"2026012012": [42.0]}
    for t in json.loads((FIXTURES / "myspeed.json").read_text()):
        if not t["error"] and t["download"] <= 100_000:
            by_hour.setdefault(_utc(t["created"]).astimezone(IST).strftime("%Y%m%d%H"), []).append(t["download"])
    assert len(by_hour["2026012012"]) == 2
    for hour, downloads in by_hour.items():
        assert hourly[hour]["avg_download"] == pytest.approx(sum(downloads) / len(downloads))
    assert not list(local_store.list(B.hourly, "stale/"))


def test_a_store_that_is_down_stops_the_import_with_its_error(tmp_path, config_for, local_store):
    class Down(type(local_store)):
        def put_if_absent(self, bucket, key, body):
            raise StoreUnavailable("store unreachable")
    down = Down(local_store.root)
    with pytest.raises(StoreUnavailable):
        import_file(config_for(down), FIXTURES / "myspeed.json", "myspeed", HOST, store=down, now=NOW)


# =========================================================================== the command

def test_cli_import_json_report_and_exit_status(local_store, tmp_path, capsys):
    code = main(["import", str(FIXTURES / "librespeed.json"), "--format", "librespeed", "--host", HOST,
                 "--store", str(local_store.root), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["stored"] == 3 and report["skipped_lines"][0]["line"] == 3
    clean = tmp_path / "one.jsonl"
    clean.write_text((FIXTURES / "ookla.jsonl").read_text().splitlines()[0] + "\n")
    code = main(["import", str(clean), "--format", "ookla", "--host", "other-host", "--store", str(local_store.root)])
    out = capsys.readouterr().out
    assert code == 0 and "1 stored" in out
    assert main(["import", str(tmp_path / "missing.jsonl"), "--format", "ookla", "--host", HOST,
                 "--store", str(local_store.root)]) == 1
    assert "cannot read" in capsys.readouterr().err
