"""Which summaries a bulk writer need not write again: the ones whose stored bytes would not change.

A backfill over periods already rolled up computes every summary again; most come out exactly as
stored. :class:`StoredSummaries` knows what each summary object holds without a GET per summary:
one listing of the summary tables, then per table partition (docs/tables.md) that has a table
one GET of it and one listing per host of the partition's summary objects. A row whose
``source_version`` is the version listed now was made from exactly the stored bytes: its
``source_sha256`` is their SHA-256, and :meth:`~speedlab.tables.TableSchema.decode_row` gives
them back. :meth:`StoredSummaries.settle` then compares the new summary, with the stored
``generated_at`` (the one field that says when, not what), byte for byte with the stored
object: through the hash (one SHA-256 of the new bytes), or for a row written before the hash
existed by rebuilding the stored bytes from the row.
An object without a current row (no table yet, a row older than the object, a deleted object) is
written as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from .errors import TableError
from .layout import (
    SUMMARY_TABLES_PREFIX,
    Buckets,
    TablePartition,
    summary_key,
    summary_table_partition,
    summary_table_sources,
    tables_bucket,
)
from .periods import Period
from .records import TierSummary
from .storebase import Store
from .tables import SOURCE_KEY, SOURCE_SHA256, SOURCE_VERSION, SUMMARY_TABLE, frame_from_parquet
from .tables_io import MAX_WORKERS, _summary_hosts

__all__ = ["StoredSummaries", "same_as_held"]


class StoredSummaries:
    """What the summary objects of the partitions asked about hold now (one partition per tier
    is kept in memory at a time).

    Parameters
    ----------
    store : Store
        The store (a counting one to count the table GETs and the listings).
    buckets : Buckets
        Where each tier's summaries and the tables live.
    """

    def __init__(self, store: Store, buckets: Buckets) -> None:
        self.store, self.buckets = store, buckets
        #: tier -> (partition, key -> what that object holds: :class:`_Held`)
        self._parts: dict[str, tuple[TablePartition, dict[str, _Held]]] = {}
        #: summaries found identical to the stored object and not written again
        self.unchanged = 0
        self._tables: set[str] | None = None  # the summary tables' keys, listed once

    def _load(self, part: TablePartition) -> dict[str, _Held]:
        """key -> :class:`_Held` for each summary object of ``part`` whose row is current; nothing
        for a partition without a table when first asked (a table made since changes nothing:
        a summary without a row is written)."""
        if self._tables is None:
            self._tables = {i.key for i in self.store.list(tables_bucket(self.buckets), SUMMARY_TABLES_PREFIX)}
        return self._read(part) if part.key in self._tables else {}

    def _read(self, part: TablePartition) -> dict[str, _Held]:
        body, version = self.store.get_versioned(tables_bucket(self.buckets), part.key)
        if version is None:
            return {}
        try:
            frame = frame_from_parquet(body, SUMMARY_TABLE, part.key)
        except TableError:
            return {}  # unreadable: every summary is written (the table update rebuilds it)
        # a row is decoded whole only when it has no hash (written before it): the rest need 4 columns
        rows = {key: _Held(0, sha, generated, row_version, frame, i) for i, (key, row_version, sha, generated)
                in enumerate(frame.select(SOURCE_KEY, SOURCE_VERSION, SOURCE_SHA256, "generated_at").iter_rows())}
        bucket = self.buckets.for_tier(part.tier)
        prefixes = [summary_table_sources(part)] + [summary_table_sources(part, h)
                                                    for h in _summary_hosts(self.store, bucket)]
        with ThreadPoolExecutor(min(MAX_WORKERS, len(prefixes))) as pool:
            listings = list(pool.map(lambda p: list(self.store.list(bucket, p)), prefixes))
        out = {}
        for info in (i for listing in listings for i in listing):
            held = rows.get(info.key)
            if held is not None and info.version is not None and held.version == info.version:
                out[info.key] = dataclasses.replace(held, size=info.size)
        return out

    def _stored(self, period: Period, key: str) -> _Held | None:
        part = summary_table_partition(period.tier, period.label)
        held = self._parts.get(period.tier)
        if held is None or held[0] != part:
            self._parts.pop(period.tier, None)  # free the previous partition first
            held = (part, self._load(part))
            self._parts[period.tier] = held
        return held[1].get(key)

    def settle(self, period: Period, host: str | None, summary: TierSummary) -> tuple[TierSummary, bytes | None]:
        """The summary as it stands in the store after this write and the bytes to write:
        ``(summary, its JSON)``, or ``(the stored summary, None)`` when the stored object holds
        exactly ``summary`` but for ``generated_at`` (nothing to write)."""
        key = summary_key(period, host)
        held = self._stored(period, key)
        if held is not None:
            same = summary.with_fields(generated_at=held.generated_at)
            body = same.to_json().encode()
            if len(body) == held.size and held.holds(body):
                self.unchanged += 1
                return same, None
            self._parts[period.tier][1].pop(key)  # rewritten: no longer what it holds
        return summary, summary.to_json().encode()


@dataclass(frozen=True)
class _Held:
    """What one summary object holds per its current table row: its listed ``size`` [bytes],
    ``sha256`` of its bytes (``None`` in a row from before the hash), ``generated_at``, and
    where the row is (``frame``, ``index``) for a row without the hash."""

    size: int
    sha256: str | None
    generated_at: Any
    version: str | None
    frame: pl.DataFrame = field(repr=False)
    index: int

    def holds(self, body: bytes) -> bool:
        """Whether the object's bytes are exactly ``body``."""
        if self.sha256 is not None:
            return hashlib.sha256(body).hexdigest() == self.sha256
        row = SUMMARY_TABLE.decode_row(self.frame.row(self.index, named=True))
        return body == json.dumps(row, separators=(",", ":"), allow_nan=False).encode()


def same_as_held(summary: TierSummary, held: Mapping[str, Any] | None) -> TierSummary | None:
    """``summary`` with ``held``'s ``generated_at`` when that gives exactly ``held`` (a summary a
    run read or wrote itself: its figures, types and provenance), else ``None`` (write it)."""
    if held is None or not isinstance(held.get("generated_at"), str):
        return None
    same = summary.with_fields(generated_at=held["generated_at"])
    return same if json.dumps(same.to_dict(), sort_keys=True) == json.dumps(held, sort_keys=True) else None
