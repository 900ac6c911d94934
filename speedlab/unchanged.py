"""Which summaries a bulk writer need not write again: the ones whose stored bytes would not change.

A backfill over periods already rolled up computes every summary again; most come out exactly as
stored. :class:`StoredSummaries` knows what each summary object holds without a GET per summary:
one listing of the summary tables, then per table partition (docs/tables.md) that has a table
one GET of it and one listing per host of the partition's summary objects. A row whose
``source_version`` is the version listed now was made from exactly the stored bytes, and
:meth:`~speedlab.tables.TableSchema.decode_row` gives them back.
:meth:`StoredSummaries.settle` then compares the new summary, with the stored ``generated_at``
(the one field that says when, not what), byte for byte with the stored object.
An object without a current row (no table yet, a row older than the object, a deleted object) is
written as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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
from .tables import SOURCE_VERSION, SUMMARY_TABLE, frame_from_parquet
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
        #: tier -> (partition, key -> (listed size [bytes], the table row made from that object))
        self._parts: dict[str, tuple[TablePartition, dict[str, tuple[int, dict[str, Any]]]]] = {}
        #: summaries found identical to the stored object and not written again
        self.unchanged = 0
        self._tables: set[str] | None = None  # the summary tables' keys, listed once

    def _load(self, part: TablePartition) -> dict[str, tuple[int, dict[str, Any]]]:
        """key -> (size, row) for each summary object of ``part`` whose row is current; nothing
        for a partition without a table when first asked (a table made since changes nothing:
        a summary without a row is written)."""
        if self._tables is None:
            self._tables = {i.key for i in self.store.list(tables_bucket(self.buckets), SUMMARY_TABLES_PREFIX)}
        return self._read(part) if part.key in self._tables else {}

    def _read(self, part: TablePartition) -> dict[str, tuple[int, dict[str, Any]]]:
        body, version = self.store.get_versioned(tables_bucket(self.buckets), part.key)
        if version is None:
            return {}
        try:
            rows = SUMMARY_TABLE.rows(frame_from_parquet(body, SUMMARY_TABLE, part.key))
        except TableError:
            return {}  # unreadable: every summary is written (the table update rebuilds it)
        bucket = self.buckets.for_tier(part.tier)
        prefixes = [summary_table_sources(part)] + [summary_table_sources(part, h)
                                                    for h in _summary_hosts(self.store, bucket)]
        with ThreadPoolExecutor(min(MAX_WORKERS, len(prefixes))) as pool:
            listings = list(pool.map(lambda p: list(self.store.list(bucket, p)), prefixes))
        out = {}
        for info in (i for listing in listings for i in listing):
            row = rows.get(info.key)
            if row is not None and info.version is not None and row[SOURCE_VERSION] == info.version:
                out[info.key] = (info.size, row)
        return out

    def _stored(self, period: Period, key: str) -> tuple[int, dict[str, Any]] | None:
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
        stored = self._stored(period, summary_key(period, host))
        if stored is not None:
            size, row = stored
            same = summary.with_fields(generated_at=row["generated_at"])
            body = same.to_json().encode()
            if len(body) == size and body == json.dumps(SUMMARY_TABLE.decode_row(row), separators=(",", ":"),
                                                        allow_nan=False).encode():
                self.unchanged += 1
                return same, None
            self._parts[period.tier][1].pop(summary_key(period, host))  # rewritten: no longer what it holds
        return summary, summary.to_json().encode()


def same_as_held(summary: TierSummary, held: Mapping[str, Any] | None) -> TierSummary | None:
    """``summary`` with ``held``'s ``generated_at`` when that gives exactly ``held`` (a summary a
    run read or wrote itself: its figures, types and provenance), else ``None`` (write it)."""
    if held is None or not isinstance(held.get("generated_at"), str):
        return None
    same = summary.with_fields(generated_at=held["generated_at"])
    return same if json.dumps(same.to_dict(), sort_keys=True) == json.dumps(held, sort_keys=True) else None
