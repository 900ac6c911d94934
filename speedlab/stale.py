"""Stale marks: how a tool that changed raw data (``speedlab dedupe``) makes the next
``run-due`` roll an hour up again, and with it its day, week, month and year.

:func:`mark_stale` writes ``stale/hour=YYYYMMDDHH/<host>.json`` into the hourly bucket (a
prefix no summary reader lists; :func:`speedlab.layout.stale_marker_key`). ``run-due`` reads
the marked hours (:func:`stale_hours`), rolls them up again and deletes the markers it acted
on (:func:`clear_markers`). Old summaries stay readable meanwhile. No polars here: a tool
that only marks does not import the aggregation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from .errors import LayoutError
from .layout import Buckets, stale_marker_key, validate_host_id
from .periods import parse_period, period_of, to_local
from .reader import list_stale_markers
from .storebase import Store

__all__ = ["clear_markers", "mark_stale", "stale_hours"]

UTC = timezone.utc


def mark_stale(config, host_id: str | None, slot_time: datetime, *, store: Store | None = None) -> str:
    """Make the next ``run-due`` re-aggregate the hour holding ``slot_time`` for every host,
    and therefore its day, week, month and year. Returns the marker's key.

    ``host_id`` (``None``: all hosts) is recorded for the log; the rollup always redoes the
    whole hour.
    """
    if host_id is not None:
        validate_host_id(host_id)
    hour = period_of("hourly", slot_time, config.timezone)
    key = stale_marker_key(hour.label, host_id)
    body = {"hour": hour.label, "host_id": host_id, "slot": to_local(slot_time, config.timezone).isoformat(),
            "marked_at": datetime.now(UTC).isoformat(timespec="seconds")}
    (store if store is not None else config.open_store()).put(
        config.buckets.hourly, key, json.dumps(body).encode())
    return key


def stale_hours(store: Store, buckets: Buckets, zone: str | ZoneInfo
                ) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """The hours marked stale: ``(hour label -> its marker keys, [(key, why)] of markers that
    name no hour)``; a bad marker is reported, not a crash on every run."""
    markers: dict[str, list[str]] = {}
    bad = []
    for key, label in list_stale_markers(store, buckets):
        try:  # hour=2025123099 names no hour
            parse_period("hourly", label, zone)
        except LayoutError as exc:
            bad.append((key, f"stale marker names no hour ({exc}): delete it"))
            continue
        markers.setdefault(label, []).append(key)
    return markers, bad


def clear_markers(store: Store, buckets: Buckets, keys: Iterable[str]) -> None:
    """Delete the stale markers at ``keys`` (acted on)."""
    for key in keys:
        store.delete(buckets.hourly, key)
