"""Building stores for the operator-tool tests: results at local times, legacy names, summaries."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from speedlab import layout
from speedlab.layout import SUMMARY_NAME, Buckets
from speedlab.periods import parse_period
from speedlab.records import SpeedTestResult, TestError
from speedlab.store import S3Store

B = Buckets()
IST = ZoneInfo("Asia/Kolkata")


def result(host: str, local: str, status: str = "ok", download: float = 100.0,
           zone: ZoneInfo = IST) -> SpeedTestResult:
    """A valid record for a test run at local time ``local`` ("2025-12-29 14:03:12")."""
    moment = datetime.fromisoformat(local).replace(tzinfo=zone)
    slot = moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)
    utc = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    ok = status == "ok"
    return SpeedTestResult(host_id=host, engine="test", status=status,
                           error=None if ok else TestError("timeout", "server did not answer"),
                           timestamp_utc=utc, timestamp_local=moment.isoformat(),
                           slot=slot.isoformat(), download_mbps=download if ok else None,
                           upload_mbps=download / 2 if ok else None, ping_ms=10.0 if ok else None)


def legacy_key(record: SpeedTestResult, zone: ZoneInfo = IST) -> str:
    """Where the seed's collector stored it: ``…/minute=MM/speed_data_ookla_MM_EPOCH.json``."""
    slot = record.slot_start
    epoch = int(record.time_utc.timestamp())
    return layout.raw_slot_prefix(record.host_id, slot, zone) + layout.legacy_raw_name("ookla", slot.minute, epoch)


def put_raw(store, record: SpeedTestResult, legacy: bool = False, zone: ZoneInfo = IST) -> str:
    """Store ``record`` as ``test.json`` (or under its legacy name); return the key."""
    key = legacy_key(record, zone) if legacy else layout.raw_key(record.host_id, record.slot_start, zone)
    store.put(B.raw, key, record.to_json().encode())
    return key


def put_summary(store, tier: str, label: str, host: str | None = None, name: str = SUMMARY_NAME,
                **values) -> str:
    """A minimal summary object of ``tier``/``label`` (``name`` for stray extras)."""
    period = parse_period(tier, label, IST)
    key = layout.summary_dir(period, host) + name
    data = {"avg_download": 100.0, "avg_upload": 50.0, "avg_ping": 10.0, "records_aggregated": 4,
            **values}
    store.put(B.for_tier(tier), key, json.dumps(data).encode())
    return key


def everything(store) -> dict[tuple[str, str], bytes]:
    """Every object in every default bucket: ``{(bucket, key): bytes}``."""
    return {(bucket, info.key): store.get(bucket, info.key)
            for bucket in sorted(set(B.as_dict().values()))
            for info in store.list(bucket)}


def store_url(store) -> str:
    """The ``--store`` value naming ``store`` (credentials come from the test environment)."""
    if isinstance(store, S3Store):
        return f"s3://?endpoint_url={store.endpoint_url}&region=us-east-1"
    return str(store.root)


def slots(first_local: str, count: int) -> list[str]:
    """``count`` local times 15 minutes apart, 2 minutes into each slot, from ``first_local``."""
    start = datetime.fromisoformat(first_local)
    return [(start + timedelta(minutes=15 * i, seconds=120)).isoformat(sep=" ") for i in range(count)]
