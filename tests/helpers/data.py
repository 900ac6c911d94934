"""Building raw results for the aggregation tests: any host, any local time, any metrics."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from speedlab import layout
from speedlab.layout import Buckets
from speedlab.records import SpeedTestResult, TestError

B = Buckets()
IST = ZoneInfo("Asia/Kolkata")


def result(host: str, local: datetime | str, download: float | None = 100.0,
           upload: float | None = 50.0, ping: float | None = 10.0, status: str = "ok",
           connection: str = "Ethernet", zone: ZoneInfo = IST) -> SpeedTestResult:
    """A valid record for a test started at local time ``local`` (naive = ``zone``)."""
    if isinstance(local, str):
        local = datetime.fromisoformat(local)
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone)
    slot = local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)
    ok = status == "ok"
    return SpeedTestResult(
        host_id=host, engine="test", status=status,
        error=None if ok else TestError("timeout", "server did not answer"),
        timestamp_utc=local.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        timestamp_local=local.replace(microsecond=0).isoformat(), slot=slot.isoformat(),
        download_mbps=download if ok else None, upload_mbps=upload if ok else None,
        ping_ms=ping if ok else None, connection_type=connection)


def put(store, record: SpeedTestResult, name: str | None = None, zone: ZoneInfo = IST) -> str:
    """Store ``record`` in its slot as ``test.json`` (or ``name``); return the key."""
    prefix = layout.raw_slot_prefix(record.host_id, record.slot_start, zone)
    key = prefix + (name or layout.RAW_NAME)
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
