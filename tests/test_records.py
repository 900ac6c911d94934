"""The record contract (schema 2, and schema 1 still read): round trip, and every kind of bad input
named in the error."""

from __future__ import annotations

import copy
import json

import pytest

from speedlab.errors import InvalidRecord
from speedlab.records import LATENCY_FIELDS, RECORD_SCHEMA_VERSION, SpeedTestResult, TierSummary

CONTRACT = json.loads("""
{"schema_version": 1, "host_id": "home-primary", "engine": "speedtest-cli", "status": "ok",
 "error": null, "timestamp_utc": "2025-12-29T08:33:12Z",
 "timestamp_local": "2025-12-29T14:03:12+05:30", "slot": "2025-12-29T14:00:00+05:30",
 "download_mbps": 187.4, "upload_mbps": 94.1, "ping_ms": 11.8, "jitter_ms": null,
 "packet_loss_pct": null,
 "server": {"id": "4242", "name": "Mumbai", "sponsor": "Example ISP", "country": "India",
            "host": "speedtest.example.net:8080", "distance_km": 12.3},
 "client": {"ip": "203.0.113.7", "isp": "Example ISP"},
 "connection_type": "Ethernet", "interface": "eth0",
 "bytes_sent": 52428800, "bytes_received": 234881024, "duration_s": 21.3}
""")
SOURCE = "host=home-primary/year=2025/month=202512/day=20251229/hour=2025122914/minute=00/test.json"


def variant(**changes):
    data = copy.deepcopy(CONTRACT)
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return data


def test_contract_document_round_trips_exactly():
    record = SpeedTestResult.from_dict(CONTRACT, SOURCE)
    assert record.download_mbps == 187.4 and record.server.distance_km == 12.3
    assert record.client.isp == "Example ISP"
    assert record.to_dict() == CONTRACT
    assert SpeedTestResult.from_json(record.to_json(), SOURCE) == record


def test_failed_record_round_trips():
    data = variant(status="failed", error={"kind": "no_connectivity", "message": "DNS failed"},
                   download_mbps=None, upload_mbps=None, ping_ms=None, server=None, client=None)
    record = SpeedTestResult.from_dict(data)
    assert not record.ok and record.error.kind == "no_connectivity"
    assert record.to_dict() == data


def test_unknown_fields_survive_a_round_trip():
    record = SpeedTestResult.from_dict(variant(isp_plan="gold"))
    assert record.to_dict()["isp_plan"] == "gold"


@pytest.mark.parametrize("data, message", [
    (variant(download_mbps=...), "missing field(s) download_mbps"),
    (variant(download_mbps="fast"), "'download_mbps' must be int/float, not str"),
    (variant(download_mbps=-3.0), "'download_mbps' = -3.0 Mbit/s is impossible"),
    (variant(download_mbps=250_000.0), "'download_mbps' = 250000.0 Mbit/s is impossible"),
    (variant(ping_ms=True), "'ping_ms' must be int/float, not a boolean"),
    (variant(packet_loss_pct=140.0), "'packet_loss_pct' = 140.0 % is impossible"),
    (variant(schema_version=3), "unknown schema_version 3"),
    (variant(schema_version=True), "unknown schema_version True"),
    (variant(schema_version=2), "missing field(s) latency_idle_ms, latency_download_ms, latency_upload_ms"),
    (variant(schema_version=2, latency_idle_ms=12.0, latency_download_ms=-1.0, latency_upload_ms=None),
     "'latency_download_ms' = -1.0 ms is impossible"),
    (variant(schema_version=2, latency_idle_ms=12.0, latency_download_ms=None, latency_upload_ms=60_001.0),
     "'latency_upload_ms' = 60001.0 ms is impossible"),
    (variant(schema_version=2, latency_idle_ms="12", latency_download_ms=None, latency_upload_ms=None),
     "'latency_idle_ms' must be int/float, not str"),
    (variant(host_id="home/primary"), "invalid host id 'home/primary'"),
    (variant(status="maybe"), "'status' = 'maybe' must be 'ok' or 'failed'"),
    (variant(status="failed"), "a failed test needs an 'error'"),
    (variant(slot="2025-12-29T14:05:00+05:30"), "not the start of a 15-minute slot"),
    (variant(timestamp_local="2025-12-29T14:03:13+05:30"), "not the same instant"),
    (variant(timestamp_utc="yesterday"), "bad timestamp"),
    (variant(server={"id": 4242}), "'server.id' must be str, not int"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_records_are_rejected_naming_object_and_problem(data, message):
    with pytest.raises(InvalidRecord) as info:
        SpeedTestResult.from_dict(data, SOURCE)
    assert message in str(info.value)
    assert SOURCE in str(info.value)


@pytest.mark.parametrize("text, message", [
    (b'{"schema_version": 1, "host_id": ', "corrupt JSON in x.json: Expecting value at line 1 column 34"),
    (b"\xff\xfe", "not UTF-8 text in x.json"),
    (b"", "corrupt JSON in x.json"),
])
def test_corrupt_json_is_a_clear_error(text, message):
    with pytest.raises(InvalidRecord) as info:
        SpeedTestResult.from_json(text, "x.json")
    assert message in str(info.value)


def test_building_an_invalid_record_in_code_fails_too():
    with pytest.raises(InvalidRecord, match="impossible"):
        SpeedTestResult(**{**{k: v for k, v in CONTRACT.items() if k not in ("server", "client")},
                           "upload_mbps": -1.0})


def test_summary_reads_the_seeds_weekly_result():
    seed = {"week": "2025W44", "week_start": "2025-10-27", "week_end": "2025-11-02",
            "avg_download": 185.23, "avg_upload": 95.67, "avg_ping": 12.34,
            "min_download": 45.12, "max_download": 245.67, "records_aggregated": 228, "days": 7,
            "connection_types": ["Ethernet", "Wi-Fi 5GHz", "Wi-Fi 2.4GHz"], "anomalies_count": 3}
    summary = TierSummary.from_dict(seed, "seed.json")
    assert summary.avg_download == 185.23 and summary.records_aggregated == 228
    out = summary.to_dict()
    assert {k: out[k] for k in seed} == seed
    with pytest.raises(InvalidRecord, match="missing field"):
        TierSummary.from_dict({"avg_download": 1.0}, "seed.json")


SCHEMA_2 = {}
for _name, _value in CONTRACT.items():  # the latency fields follow packet_loss_pct
    SCHEMA_2[_name] = {"schema_version": 2, "jitter_ms": 0.9}.get(_name, _value)
    if _name == "packet_loss_pct":
        SCHEMA_2.update(latency_idle_ms=12.1, latency_download_ms=48.25, latency_upload_ms=95.0)


def test_schema_2_round_trips_exactly_with_the_latency_fields():
    record = SpeedTestResult.from_dict(SCHEMA_2, SOURCE)
    assert (record.latency_idle_ms, record.latency_download_ms, record.latency_upload_ms) == (12.1, 48.25, 95.0)
    assert json.dumps(record.to_dict()) == json.dumps(SCHEMA_2)  # key order too
    assert SpeedTestResult.from_json(record.to_json(), SOURCE) == record


def test_schema_1_reads_with_null_latency_and_writes_back_unchanged():
    record = SpeedTestResult.from_dict(CONTRACT, SOURCE)
    assert record.schema_version == 1 and all(getattr(record, name) is None for name in LATENCY_FIELDS)
    assert json.dumps(record.to_dict()) == json.dumps(CONTRACT)  # no latency keys appear
    # a schema-1 document naming a schema-2 field keeps it as an unknown field, exactly
    odd = variant(latency_idle_ms=5.0)
    back = SpeedTestResult.from_dict(odd)
    assert back.latency_idle_ms is None and back.extra == {"latency_idle_ms": 5.0}
    assert back.to_dict() == odd


def test_new_records_are_schema_2_and_schema_1_cannot_carry_latency():
    fields = {k: v for k, v in CONTRACT.items() if k not in ("server", "client", "schema_version")}
    made = SpeedTestResult(**fields, latency_idle_ms=10.5)
    assert made.schema_version == RECORD_SCHEMA_VERSION == 2
    assert made.to_dict()["latency_idle_ms"] == 10.5 and made.to_dict()["latency_upload_ms"] is None
    with pytest.raises(InvalidRecord, match="schema-1 record has no latency_idle_ms"):
        SpeedTestResult(**fields, schema_version=1, latency_idle_ms=10.5)
