"""The store-and-forward spool: durable adds, oldest-first flushes, corrupt entries, the bound."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from speedlab.engine import record_from_output
from speedlab.errors import (
    BucketNotFound,
    CredentialsInvalid,
    CredentialsRefused,
    InvalidRecord,
    SpoolError,
    StoreError,
    StoreUnavailable,
)
from speedlab.layout import raw_key
from speedlab.spool import Spool
from speedlab.store import LocalStore
from tests.helpers.fake_speedtest import QuickEngine

T0 = datetime(2025, 12, 29, 8, 33, 12, tzinfo=timezone.utc)  # 14:03 IST: slot 14:00


def make(minutes_later: int = 0, host: str = "home-primary", download: float = 100.0):
    output = QuickEngine(download_mbps=download)()
    return record_from_output(output, host_id=host, engine="quick-fake",
                              started=T0 + timedelta(minutes=minutes_later), tz="Asia/Kolkata")


def test_add_is_durable_and_named_by_slot(tmp_path):
    spool = Spool(tmp_path / "spool")
    path, dropped = spool.add(make())
    assert dropped == []
    assert path.name.startswith("20251229T0830Z+home-primary+") and path.suffix == ".json"
    assert json.loads(path.read_text()) == make().to_dict()
    assert [p.name for p in (tmp_path / "spool").iterdir()] == [path.name]  # no temp file left


def test_entries_are_oldest_slot_first(tmp_path):
    spool = Spool(tmp_path)
    for minutes in (45, 0, 30, 15):
        spool.add(make(minutes, download=100 + minutes))
    slots = [json.loads(p.read_text())["slot"] for p in spool.entries()]
    assert slots == ["2025-12-29T14:00:00+05:30", "2025-12-29T14:15:00+05:30",
                     "2025-12-29T14:30:00+05:30", "2025-12-29T14:45:00+05:30"]


def test_holds_slot(tmp_path):
    spool = Spool(tmp_path)
    spool.add(make(15))
    slot = datetime(2025, 12, 29, 14, 15, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert spool.holds_slot("home-primary", slot)
    assert not spool.holds_slot("office-main", slot)
    assert not spool.holds_slot("home-primary", slot - timedelta(minutes=15))


def test_flush_uploads_oldest_first_and_empties_the_spool(tmp_path):
    spool = Spool(tmp_path)
    for minutes in (30, 0, 15):
        spool.add(make(minutes))
    seen = []
    report = spool.flush(lambda record: seen.append(record.slot) or True)
    assert seen == ["2025-12-29T14:00:00+05:30", "2025-12-29T14:15:00+05:30", "2025-12-29T14:30:00+05:30"]
    assert (len(report.uploaded), report.already_filled, report.rejected, report.remaining) == (3, [], [], 0)
    assert spool.entries() == []


def test_slot_already_filled_also_removes_the_entry(tmp_path):
    spool = Spool(tmp_path)
    spool.add(make())
    report = spool.flush(lambda record: False)
    assert len(report.already_filled) == 1 and report.flushed == 1 and spool.entries() == []


def test_a_store_error_stops_the_flush_and_keeps_the_rest(tmp_path):
    spool = Spool(tmp_path)
    for minutes in (0, 15, 30):
        spool.add(make(minutes))
    calls = []

    def write(record):
        calls.append(record.slot)
        if len(calls) == 2:
            raise StoreUnavailable("S3 is down")
        return True
    report = spool.flush(write)
    assert len(calls) == 2 and len(report.uploaded) == 1
    assert report.remaining == 2 and report.error == "S3 is down"
    assert [json.loads(p.read_text())["slot"][11:16] for p in spool.entries()] == ["14:15", "14:30"]


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],                       # truncated
    lambda text: "\x00\x01 not json",                          # garbage
    lambda text: text.replace('"status":"ok"', '"status":"maybe"'),  # valid JSON, bad record
])
def test_corrupt_entry_is_set_aside_and_the_rest_flows(tmp_path, damage):
    spool = Spool(tmp_path / "spool")
    first, _ = spool.add(make(0))
    spool.add(make(15))
    first.write_text(damage(first.read_text()))
    uploaded = []
    report = spool.flush(lambda record: uploaded.append(record.slot) or True)
    assert uploaded == ["2025-12-29T14:15:00+05:30"]
    assert report.rejected == [str(tmp_path / "spool" / "rejected" / first.name)]
    assert (tmp_path / "spool" / "rejected" / first.name).read_text() == damage(make(0).to_json())
    assert spool.entries() == [] and report.remaining == 0


def test_entry_the_writer_refuses_as_invalid_is_set_aside(tmp_path):
    spool = Spool(tmp_path)
    spool.add(make())

    def write(record):
        raise InvalidRecord("host id reserved")
    report = spool.flush(write)
    assert len(report.rejected) == 1 and spool.entries() == []


@pytest.mark.parametrize("refusal", [
    CredentialsRefused("127.0.0.1 refused access to s3://vd-speed-test/host=office-main/... (AccessDenied)"),
    StoreError("127.0.0.1 refused s3://vd-speed-test/host=office-main/...: KeyTooLongError (HTTP 400)"),
])
def test_an_entry_the_store_refuses_is_set_aside_with_its_reason_and_the_rest_flow(tmp_path, refusal):
    spool = Spool(tmp_path / "spool")
    foreign, _ = spool.add(make(0, host="office-main"))  # the oldest: flushed first
    spool.add(make(15))
    spool.add(make(30))
    uploaded = []

    def write(record):
        if record.host_id == "office-main":
            raise refusal
        uploaded.append(record.slot)
        return True
    report = spool.flush(write)
    target = str(tmp_path / "spool" / "rejected" / foreign.name)
    assert uploaded == ["2025-12-29T14:15:00+05:30", "2025-12-29T14:30:00+05:30"]
    assert (report.refused, report.rejected, report.error, report.remaining) == ([target], [], None, 0)
    assert report.reasons == {target: str(refusal)}
    assert report.to_dict()["refused"] == [{"path": target, "reason": str(refusal)}]
    assert spool.entries() == [] and json.loads(Path(target).read_text())["host_id"] == "office-main"
    note = json.loads(spool.reasons_log.read_text())
    assert (note["entry"], note["kind"], note["reason"]) == (foreign.name, "refused", str(refusal))


@pytest.mark.parametrize("outage", [
    StoreUnavailable("cannot reach 127.0.0.1"), BucketNotFound("bucket 'vd-speed-test' does not exist"),
    CredentialsInvalid("127.0.0.1 refused the credentials (InvalidAccessKeyId)"),
])
def test_an_outage_or_unusable_credentials_stop_the_flush_and_set_nothing_aside(tmp_path, outage):
    spool = Spool(tmp_path / "spool")
    for minutes in (0, 15):
        spool.add(make(minutes))

    def write(record):
        raise outage
    report = spool.flush(write)
    assert (report.refused, report.rejected, report.remaining, report.error) == ([], [], 2, str(outage))
    assert len(spool) == 2 and not spool.rejected_folder.exists()


def test_set_aside_writes_the_record_to_rejected_with_its_reason(tmp_path):
    spool = Spool(tmp_path / "spool")
    path = spool.set_aside(make(), "AccessDenied")
    assert path.parent == spool.rejected_folder and json.loads(path.read_text()) == make().to_dict()
    assert spool.entries() == [] and json.loads(spool.reasons_log.read_text())["reason"] == "AccessDenied"


def test_the_bound_drops_oldest_and_says_so(tmp_path):
    spool = Spool(tmp_path, max_entries=3)
    dropped = []
    for minutes in (0, 15, 30, 45, 60):
        dropped += spool.add(make(minutes, download=100 + minutes))[1]
    assert len(dropped) == 2 and dropped[0].startswith("20251229T0830Z") and dropped[1].startswith("20251229T0845Z")
    assert len(spool) == 3
    lines = [json.loads(line) for line in spool.dropped_log.read_text().splitlines()]
    assert [(d["slot"], d["download_mbps"]) for d in lines] == [
        ("2025-12-29T14:00:00+05:30", 100.0), ("2025-12-29T14:15:00+05:30", 115.0)]
    assert all(d["reason"] == "spool full (3 entries)" for d in lines)
    assert spool.dropped_total() == 2


def test_concurrent_flushes_upload_each_entry_once(tmp_path):
    spool = Spool(tmp_path / "spool")
    for minutes in range(0, 15 * 20, 15):
        spool.add(make(minutes))
    store = LocalStore(tmp_path / "store")
    writes = []

    def write(record):
        stored = store.put_if_absent("raw", raw_key(record.host_id, record.slot_start), record.to_json().encode())
        writes.append(stored)
        return stored
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(spool.flush(write))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(list(store.list("raw"))) == 20 and spool.entries() == []
    assert sum(len(r.uploaded) for r in reports) == 20 == writes.count(True)


def test_unwritable_spool_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SpoolError, match="cannot write the spool entry"):
        Spool(tmp_path / "file" / "spool").add(make())
    with pytest.raises(SpoolError, match="at least 1"):
        Spool(tmp_path, max_entries=0)
