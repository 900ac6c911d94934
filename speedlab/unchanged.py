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

:class:`KeepsUnchanged` (the roller's part) goes one step further: a period whose summaries'
current rows hold the digest of the inputs it has now (:mod:`speedlab.inputs`) is not computed
at all, and its stored summaries stand.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, NamedTuple

import polars as pl

from .errors import TableError
from .inputs import ABSENT, all_hosts_inputs, base_inputs, hours_inputs, period_inputs, split_all_hosts_inputs
from .layout import (
    SUMMARY_TABLES_PREFIX,
    Buckets,
    TablePartition,
    summary_key,
    summary_table_partition,
    summary_table_sources,
    tables_bucket,
)
from .periods import CHILD_TIER, Period, periods_between
from .reader import map_listings
from .records import TierSummary
from .scheduler import PlanItem
from .storebase import Store
from .tables import INPUTS, SOURCE_KEY, SOURCE_SHA256, SOURCE_VERSION, SUMMARY_TABLE, frame_from_parquet
from .tables_io import _summary_hosts

__all__ = ["KeepsUnchanged", "StoredSummaries", "inputs_of", "same_as_held"]


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
        #: key -> (version, inputs) for unchanged summaries whose row's ``inputs`` is to be set
        self.inputs: dict[str, tuple[str | None, str]] = {}

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
        # a row is decoded whole only when it has no hash (written before it): the rest need 8 columns
        rows = {row[0]: (i, row) for i, row in enumerate(frame.select(
            SOURCE_KEY, SOURCE_SHA256, "generated_at", SOURCE_VERSION, INPUTS, "records_aggregated",
            "rejected_records", "hosts").iter_rows())}
        bucket = self.buckets.for_tier(part.tier)
        prefixes = [summary_table_sources(part)] + [summary_table_sources(part, h)
                                                    for h in _summary_hosts(self.store, bucket)]
        listings = map_listings(self.store, lambda p: list(self.store.list(bucket, p)), prefixes)
        out = {}
        for info in (i for listing in listings for i in listing):
            found = rows.get(info.key)
            if found is not None and info.version is not None and found[1][3] == info.version:
                _, sha, generated, version, inputs, records, rejected, hosts = found[1]
                out[info.key] = _Held(info.size, sha, generated, version, inputs, records, rejected, hosts,
                                      info.modified, frame, found[0])
        return out

    def held(self, period: Period, key: str) -> _Held | None:
        """What the summary object ``key`` of ``period`` holds per its current row (``None``: no
        current row)."""
        part = summary_table_partition(period.tier, period.label)
        held = self._parts.get(period.tier)
        if held is None or held[0] != part:
            self._parts.pop(period.tier, None)  # free the previous partition first
            held = (part, self._load(part))
            self._parts[period.tier] = held
        return held[1].get(key)

    def settle(self, period: Period, host: str | None, summary: TierSummary, inputs: str | None = None
               ) -> tuple[TierSummary, bytes | None, str]:
        """The summary as it stands in the store after this write, the bytes to write and their
        SHA-256: ``(summary, its JSON, …)``, or ``(the stored summary, None, …)`` when the
        stored object holds exactly ``summary`` but for ``generated_at`` (nothing to write; a
        row's ``inputs`` other than ``inputs`` is then noted in :attr:`inputs`)."""
        key = summary_key(period, host)
        held = self.held(period, key)
        if held is not None:
            same = summary.with_fields(generated_at=held.generated_at)
            body = same.to_json().encode()
            if len(body) == held.size:
                sha = held.digest(body)
                if sha is not None:
                    self.unchanged += 1
                    if inputs is not None and held.inputs != inputs:
                        self.inputs[key] = (held.version, inputs)
                    return same, None, sha
            self._parts[period.tier][1].pop(key)  # rewritten: no longer what it holds
        body = summary.to_json().encode()
        return summary, body, hashlib.sha256(body).hexdigest()


class _Held(NamedTuple):
    """What one summary object holds per its current table row: its listed ``size`` [bytes],
    ``sha256`` of its bytes (``None`` in a row from before the hash), ``generated_at``, its
    ``version``, the row's ``inputs`` (:mod:`speedlab.inputs`), ``records_aggregated``,
    ``rejected_records`` and ``hosts``, its listed ``modified`` time, and where the row is
    (``frame``, ``position``) for a row without the hash."""

    size: int
    sha256: str | None
    generated_at: Any
    version: str | None
    inputs: str | None
    records: int | None
    rejected: int | None
    hosts: list[str] | None
    modified: datetime
    frame: pl.DataFrame
    position: int

    def digest(self, body: bytes) -> str | None:
        """The SHA-256 of ``body`` when the object's bytes are exactly ``body``, else ``None``."""
        sha = hashlib.sha256(body).hexdigest()
        if self.sha256 is not None:
            return sha if sha == self.sha256 else None
        row = SUMMARY_TABLE.decode_row(self.frame.row(self.position, named=True))
        return sha if body == json.dumps(row, separators=(",", ":"), allow_nan=False).encode() else None


class KeepsUnchanged:
    """What :class:`speedlab.roller.Roller` does to keep as stored the periods whose inputs are
    unchanged (:mod:`speedlab.inputs`): it digests a batch's inputs, finds the summaries whose
    rows were settled from that digest and reports them; the roller rolls up the rest."""

    config: Any
    settings: Any
    zone: Any
    stored: StoredSummaries | None
    report: Any
    progress: Any
    done: set[tuple[str, str]]
    existing: set[str]
    record_inputs: bool
    skip_unchanged: bool
    _base: str | None
    _previous_batch: list[Period]
    #: (tier, label) -> (end_utc, host or None -> SHA-256 of the summary stored) for periods settled
    shas: dict[tuple[str, str], tuple[datetime, dict[str | None, str]]]
    #: (tier, label) -> the listed modified time of the all-hosts summary of a period kept as stored
    kept_modified: dict[tuple[str, str], datetime]

    def hosts(self) -> list[str]:  # pragma: no cover - the roller's
        raise NotImplementedError

    def _list_window_months(self, first: datetime, last: datetime, hosts: Iterable[str]) -> None:  # pragma: no cover
        raise NotImplementedError

    def base_inputs(self) -> str | None:
        """:func:`speedlab.inputs.base_inputs` of this run (``None``: not a backfill, no inputs recorded)."""
        if self.record_inputs and self._base is None:
            self._base = base_inputs(self.config, self.settings, self.hosts())
        return self._base

    def _hours_inputs(self, hours: list[Period], hosts: Sequence[str], infos: dict, rejected: dict) -> str | None:
        """:func:`speedlab.inputs.hours_inputs` of a batch of ``hours`` (``None`` also when one
        has bad objects: such hours are always rolled up, so that the report names them)."""
        base = self.base_inputs()
        if base is None or any(rejected.get(h.label) for h in hours):
            return None
        first = hours[0].start_utc - timedelta(hours=self.settings.anomaly_window_hours)
        batch = {h.label for h in hours}
        previous, self._previous_batch = self._previous_batch, hours
        if previous and previous[0].start_utc <= first and previous[-1].end_utc == hours[0].start_utc \
                and _contiguous(previous) and _contiguous(hours):
            window = [p for p in previous if p.end_utc > first]  # the day before, as a backfill goes
        else:
            window = [p for p in periods_between("hourly", first, hours[-1].start_utc, self.zone)
                      if p.label not in batch]
        listed = [i for h in hours for host in hosts for i in infos.get((h.label, host), ())]
        return hours_inputs(base, sorted(batch), listed, {h: [self._window_sha(p, h) for p in window] for h in hosts})

    def _window_sha(self, hour: Period, host: str) -> str | None:
        """The SHA-256 of ``host``'s summary of ``hour`` (:data:`ABSENT`: none; ``None``: not
        known, such as one this run did not settle, the anomaly window reads it all the same)."""
        outputs = self.shas.get(("hourly", hour.label))
        if outputs is not None and host in outputs[1]:
            return outputs[1][host]
        self._list_window_months(hour.start_utc, hour.start_utc, [host])
        return None if summary_key(hour, host) in self.existing else ABSENT

    def _unchanged(self, period: Period, inputs: str | None, hosts: Sequence[str]) -> dict[str | None, str] | None:
        """The SHA-256 of each summary of ``period`` (``None`` for all hosts) when they are all
        current and computed from ``inputs``, else ``None``."""
        if inputs is None or self.stored is None or not self.skip_unchanged:
            return None
        whole = self.stored.held(period, summary_key(period, None))
        if whole is None or whole.sha256 is None or (period.tier == "hourly" and whole.rejected):
            return None
        recorded = split_all_hosts_inputs(whole.inputs)
        if recorded is None or recorded[0] != inputs:
            return None
        out: dict[str | None, str] = {None: whole.sha256}
        for host in hosts:
            held = self.stored.held(period, summary_key(period, host))
            if held is not None and held.inputs == inputs and held.sha256 is not None:
                out[host] = held.sha256
        return out if len(out) - 1 == recorded[1] else None

    def _keep_stored(self, period: Period, reason: str, outputs: dict[str | None, str]) -> None:
        """``period``'s summaries stand as stored: report it as rolled up, inputs unchanged."""
        whole = self.stored.held(period, summary_key(period, None)) if self.stored else None
        assert whole is not None
        self.shas[(period.tier, period.label)] = (period.end_utc, outputs)
        self.kept_modified[(period.tier, period.label)] = whole.modified
        self.report.inputs_unchanged += 1
        self.report.items.append({"tier": period.tier, "period": period.label, "reason": reason,
                                  "records": whole.records or 0, "rejected": whole.rejected or 0,
                                  "hosts": list(whole.hosts or []), "inputs_unchanged": True})
        self.done.add((period.tier, period.label))
        if self.progress is not None:
            self.progress.update(1)

    def _kept_children(self, tier: str, keys: Mapping[str, Period]) -> dict[str, datetime] | None:
        """key -> modified time of each child's all-hosts summary when every child was kept as
        stored in this run (its listing then says it all: no listing again), else ``None``."""
        if not self.skip_unchanged:
            return None
        out = {}
        for key, child in keys.items():
            modified = self.kept_modified.get((tier, child.label))
            if modified is None:
                return None
            out[key] = modified
        return out

    def _period_inputs(self, period: Period, children: list[tuple[str, datetime | None]]) -> str | None:
        """:func:`speedlab.inputs.period_inputs` of a coarser ``period`` from its children's
        labels and the modified times of their all-hosts summaries (``None``: none)."""
        base = self.base_inputs()
        if base is None:
            return None
        tier = CHILD_TIER[period.tier]
        return period_inputs(base, period.tier, period.label, [
            (label, modified, (self.shas.get((tier, label)) or (None, None))[1]) for label, modified in children])

    def _keep_period(self, period: Period, reason: str, inputs: str | None) -> bool:
        """Keep ``period`` as stored when its summaries were computed from ``inputs``."""
        outputs = self._unchanged(period, inputs, self.hosts())
        if outputs is not None:
            self._keep_stored(period, reason, outputs)
        return outputs is not None

    def _keep_hours(self, items: Sequence[PlanItem], inputs: str | None, hosts: Sequence[str]) -> bool:
        """Keep every hour of ``items`` as stored when each one's summaries were computed from
        ``inputs`` (:meth:`_hours_inputs`); ``False`` (and nothing kept) otherwise."""
        kept = [(item, self._unchanged(item.period, inputs, hosts)) for item in items]
        if inputs is None or any(outputs is None for _, outputs in kept):
            return False
        for item, outputs in kept:
            assert outputs is not None
            self._keep_stored(item.period, item.reason, outputs)
        return True


def inputs_of(inputs: str | None, host: str | None, summaries: dict) -> str | None:
    """The ``inputs`` value of ``host``'s summary (all hosts': with how many per-host ones)."""
    if inputs is None or host is not None:
        return inputs
    return all_hosts_inputs(inputs, sum(1 for h in summaries if h is not None))


def _contiguous(hours: Sequence[Period]) -> bool:
    """Whether each of ``hours`` starts where the one before ends."""
    return all(a.end_utc == b.start_utc for a, b in pairwise(hours))


def same_as_held(summary: TierSummary, held: Mapping[str, Any] | None) -> TierSummary | None:
    """``summary`` with ``held``'s ``generated_at`` when that gives exactly ``held`` (a summary a
    run read or wrote itself: its figures, types and provenance), else ``None`` (write it)."""
    if held is None or not isinstance(held.get("generated_at"), str):
        return None
    same = summary.with_fields(generated_at=held["generated_at"])
    return same if json.dumps(same.to_dict(), sort_keys=True) == json.dumps(held, sort_keys=True) else None
