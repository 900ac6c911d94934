"""The one result factory and what puts results and summaries into a store, and reads them back."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from speedlab import layout
from speedlab.layout import SUMMARY_NAME, Buckets, parse_summary_key
from speedlab.periods import parse_period
from speedlab.records import SpeedTestResult, TestError
from speedlab.store_s3 import S3Store

B = Buckets()
IST = ZoneInfo("Asia/Kolkata")
#: The error of every failed result built here.
NO_CONNECTIVITY = TestError("no_connectivity", "network unreachable")
#: Where a result made for a slot start is taken inside its slot.
IN_SLOT = timedelta(minutes=2, seconds=7)


def result(host: str, local: datetime | str, download: float | None = 100.0,
           upload: float | None = 50.0, ping: float | None = 10.0, status: str = "ok",
           connection: str = "Ethernet", zone: ZoneInfo = IST) -> SpeedTestResult:
    """A valid record for a test started at local time ``local`` (naive = ``zone``).

    ``local`` is a datetime or ISO text ("2025-12-29 14:03:12", "2025-12-31T18:29:59Z"); an aware
    one is converted to ``zone``. Speeds are [Mbit/s], ``ping``
    [ms]. A result whose ``status`` is not "ok" has no speeds and the error :data:`NO_CONNECTIVITY`.
    """
    if isinstance(local, str):
        local = datetime.fromisoformat(local)
    local = local.replace(tzinfo=zone) if local.tzinfo is None else local.astimezone(zone)
    slot = local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)
    ok = status == "ok"
    return SpeedTestResult(
        host_id=host, engine="test", status=status,
        error=None if ok else NO_CONNECTIVITY,
        timestamp_utc=local.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        timestamp_local=local.replace(microsecond=0).isoformat(), slot=slot.isoformat(),
        download_mbps=download if ok else None, upload_mbps=upload if ok else None,
        ping_ms=ping if ok else None, connection_type=connection)


def legacy_key(record: SpeedTestResult, zone: ZoneInfo = IST) -> str:
    """Where the seed's collector stored it: ``…/minute=MM/speed_data_ookla_MM_EPOCH.json``."""
    slot = record.slot_start
    epoch = int(record.time_utc.timestamp())
    return layout.raw_slot_prefix(record.host_id, slot, zone) + layout.legacy_raw_name("ookla", slot.minute, epoch)


def put(store, record: SpeedTestResult, name: str | None = None, legacy: bool = False, zone: ZoneInfo = IST) -> str:
    """Store ``record`` in its slot as ``test.json`` (or ``name``, or its legacy name); return the key."""
    prefix = layout.raw_slot_prefix(record.host_id, record.slot_start, zone)
    key = legacy_key(record, zone) if legacy else prefix + (name or layout.RAW_NAME)
    store.put(B.raw, key, record.to_json().encode())
    return key


def series(host: str, start: datetime, slots: int, download=lambda i: 100.0 + i % 7,
           every: timedelta = timedelta(minutes=15)) -> list[SpeedTestResult]:
    """``slots`` results, one per ``every``, starting at aware ``start`` (+1 min into the slot)."""
    return [result(host, start + i * every + timedelta(minutes=1), download(i), 50.0 + i % 3,
                   10.0 + i % 5) for i in range(slots)]


def read_json(store, bucket: str, key: str) -> dict:
    """A stored object, decoded."""
    return json.loads(store.get(bucket, key))


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


def summary_objects(store, tier: str) -> dict[str, dict]:
    """Every summary object of ``tier`` in the original layout: key -> decoded JSON."""
    out = {}
    for info in store.list(B.for_tier(tier), "aggregated/"):
        parsed = parse_summary_key(info.key)
        if parsed.tier == tier and parsed.name == SUMMARY_NAME:
            out[info.key] = json.loads(store.get(B.for_tier(tier), info.key))
    return out
