"""Keeping the columnar tables beside the original layout, checking them, reading them (docs/tables.md).

The original layout (one JSON object per summary and per raw result) is the source of truth;
the tables (:mod:`speedlab.tables` rows, :mod:`speedlab.layout` keys) are derived from it.
Every change to a table partition is one compare-and-swap
(:meth:`~speedlab.storebase.Store.get_versioned`, then
:meth:`~speedlab.storebase.Store.put_if_version`): read the table with its version, list the
partition's sources, keep the rows whose source still has the row's version, read the others
again (a row made from bytes the rollup just wrote is kept without a read when the store's
ETag proves they are what is stored), drop rows whose source is gone, then write if still at
the version read. A writer that loses the race starts over (:data:`MAX_ATTEMPTS`), so two jobs
at once, a crash between a summary and its table, or late data never leave a table that
disagrees with the layout once an update of that partition has run.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from .counting import CountingStore
from .errors import InvalidHostId, InvalidRecord, LayoutError, TableError
from .layout import (
    AGGREGATED,
    ALL_HOSTS,
    GLOBAL_SUMMARY_YEARS_PREFIX,
    RAW_TABLES_PREFIX,
    SUMMARY_NAME,
    SUMMARY_TABLES_PREFIX,
    TABLES_PREFIX,
    Buckets,
    TablePartition,
    parse_raw_key,
    parse_summary_key,
    parse_table_key,
    raw_host_prefix,
    raw_table_partition,
    raw_table_source,
    summary_prefix,
    summary_table_partition,
    summary_table_sources,
    table_partitions_between,
    tables_bucket,
    validate_host_id,
)
from .monthsource import RawMonth
from .periods import TIERS, Period
from .reader import list_hosts, parse_result, parse_summary
from .records import SpeedTestResult, decode_json
from .storebase import ObjectInfo, Store
from .tables import (
    HOST,
    INPUTS,
    LABEL,
    RAW_TABLE,
    SOURCE_KEY,
    SOURCE_SHA256,
    SOURCE_VERSION,
    SUMMARY_TABLE,
    CheckReport,
    Inputs,
    TableSchema,
    TablesReport,
    diff_partition,
    first_difference,
    frame_from_parquet,
    frame_to_parquet,
    latest_slot,
    raw_table_results,
    with_inputs,
    with_key_slot,
)

__all__ = ["MAX_ATTEMPTS", "REPAIR_PREFIX", "RawMonth", "TableRead", "check", "keep_current", "list_partitions",
           "list_raw_tables", "marked_for_repair", "raw_month_key", "read_raw_month",
           "read_raw_table", "read_summaries_table", "rebuild", "update_partitions",
           "update_raw", "update_summaries"]

#: Where a job that could not update a partition leaves a mark for the next one (in the tables bucket).
REPAIR_PREFIX = f"{TABLES_PREFIX}repair/"
#: Compare-and-swap attempts per partition before :class:`~speedlab.errors.TableError`.
MAX_ATTEMPTS = 8
#: Parallel requests when listing hosts' prefixes or reading source objects.
MAX_WORKERS = 16


@dataclass
class _Run:
    """One maintenance or check run: the counted store and the report's running totals."""

    store: CountingStore
    buckets: Buckets
    report: Any
    bytes_lock: Any = None

    def schema(self, part: TablePartition) -> TableSchema:
        return RAW_TABLE if part.tier == "raw" else SUMMARY_TABLE

    def sources(self, part: TablePartition, rows: Mapping[str, str | None] | None = None) -> dict[str, ObjectInfo]:
        """The partition's source objects, listed now (key -> info with its version). A listed
        key that has a row made from its listed version (``rows``: key -> the row's version) is
        this partition's without parsing its key again: the row was made from it."""
        rows = rows or {}
        store, found = self.store, {}
        if part.tier == "raw":
            bucket = self.buckets.raw
            prefixes = [raw_table_source(part, h) for h in list_hosts(store, self.buckets)]
        else:
            bucket = self.buckets.for_tier(part.tier)
            prefixes = [summary_table_sources(part)] + [summary_table_sources(part, h) for h in _summary_hosts(
                store, bucket)]
        with ThreadPoolExecutor(MAX_WORKERS) as pool:
            listings = list(pool.map(lambda p: list(store.list(bucket, p)), prefixes))
        for info in (i for listing in listings for i in listing):
            if (info.version is not None and rows.get(info.key) == info.version) \
                    or _source_partition(part.tier, info.key) == part:
                found[info.key] = info
        return found

    def source_bucket(self, part: TablePartition) -> str:
        return self.buckets.raw if part.tier == "raw" else self.buckets.for_tier(part.tier)

    def fetch(self, bucket: str, keys: Sequence[str]) -> dict[str, tuple[bytes, str | None]]:
        """GET with versions in parallel; absent objects come back as ``(b"", None)``."""
        if not keys:
            return {}
        with ThreadPoolExecutor(min(MAX_WORKERS, len(keys))) as pool:
            out = dict(zip(keys, pool.map(lambda k: self.store.get_versioned(bucket, k), keys), strict=True))
        self.report.bytes_read += sum(len(body) for body, _ in out.values())
        return out


def _summary_hosts(store: Store, bucket: str) -> list[str]:
    hosts = []
    for prefix in store.list_prefixes(bucket, f"{AGGREGATED}/host="):
        try:
            hosts.append(validate_host_id(prefix[len(f"{AGGREGATED}/host="):].rstrip("/")))
        except InvalidHostId:
            continue
    return hosts


def _source_partition(tier: str, key: str) -> TablePartition | None:
    """The partition a source key belongs to in ``tier``'s table (``None``: not a source of it)."""
    try:
        if tier == "raw":
            return raw_table_partition(parse_raw_key(key))
        parsed = parse_summary_key(key)
    except (LayoutError, InvalidHostId):
        return None
    if parsed.tier != tier or parsed.name != SUMMARY_NAME:
        return None
    return summary_table_partition(tier, parsed.label)


def _make_row(tier: str, key: str, body: bytes, version: str | None, checked: bool = False) -> dict[str, Any]:
    """The row of one source object; raises :class:`InvalidRecord` for a bad one (``checked``: a
    raw body :func:`~speedlab.reader.parse_result` has already accepted under ``key``, or a
    summary a rollup has just written from its own :class:`~speedlab.records.TierSummary`)."""
    if tier == "raw":
        if not checked:
            parse_result(key, body)  # the raw reading layer's rules: valid, and where it belongs
        raw = parse_raw_key(key)
        return RAW_TABLE.encode_row(decode_json(body, key), host=raw.host_id, source_key=key,
                                    source_version=version)
    data, reason = (decode_json(body, key), None) if checked else parse_summary(body, key)
    if data is None:
        raise InvalidRecord(str(reason))
    parsed = parse_summary_key(key)
    return SUMMARY_TABLE.encode_row(data, host=parsed.host_id or ALL_HOSTS, label=parsed.label,
                                    source_key=key, source_version=version,
                                    source_sha256=hashlib.sha256(body).hexdigest())


def _stored_is(body: bytes, version: str | None) -> bool:
    """Whether a listed ``version`` proves the object holds ``body``: an S3 ETag of a single-part
    upload is the MD5 of the content. A local version (or a multipart/KMS ETag) never does."""
    return version is not None and version.strip('"') == hashlib.md5(body, usedforsecurity=False).hexdigest()


#: What a caller has just written or read: key -> bytes, or ``(bytes, version)`` with the version a
#: listing showed *before* those bytes were read (they are then at least that new) or that
#: :meth:`~speedlab.storebase.Store.put` returned, or ``(bytes, version, True)`` for raw bytes that
#: :func:`~speedlab.reader.parse_result` has accepted under their key (not validated again).
Fresh = Mapping[str, "bytes | tuple"]


def _known(fresh: Fresh, key: str, version: str | None) -> bytes | None:
    """``fresh[key]`` when it is provably what the source at ``version`` holds: its ETag is the
    bytes' MD5, or the bytes were read after a listing showed this very version (versions never
    repeat, so an object still at it has not changed since)."""
    item = fresh.get(key)
    if item is None:
        return None
    body, seen = item[:2] if isinstance(item, tuple) else (item, None)
    return body if (seen is not None and seen == version) or _stored_is(body, version) else None


def _maintain(run: _Run, part: TablePartition, fresh: Fresh, rebuild: bool = False, inputs: Inputs | None = None
              ) -> None:
    """Bring one partition in line with its sources (see the module docstring); a summary row
    of the version ``inputs`` names gets that ``inputs`` value."""
    bucket, schema, report = tables_bucket(run.buckets), run.schema(part), run.report
    for _attempt in range(MAX_ATTEMPTS):
        body, version = run.store.get_versioned(bucket, part.key)
        report.bytes_read += len(body)
        frame, repeated = _stored_frame(report, schema, part, body if version is not None and not rebuild else None)
        # the rows stay in the frame: only their keys and versions come out of it
        stored = dict(zip(frame[SOURCE_KEY].to_list(), frame[SOURCE_VERSION].to_list(), strict=True))
        sources = run.sources(part, stored)
        diff = diff_partition(stored, {k: i.version for k, i in sources.items()})
        new: dict[str, dict] = {}
        rejected: list[tuple[str, str]] = []
        wanted = [*diff.changed, *diff.added]
        known = {k: (proven, sources[k].version) for k in wanted
                 if (proven := _known(fresh, k, sources[k].version)) is not None}
        read = run.fetch(run.source_bucket(part), [k for k in wanted if k not in known])
        for key, (source, source_version) in {**known, **read}.items():
            if source_version is None:
                continue  # deleted since the listing: no longer a source
            try:
                item = fresh.get(key) if key in known else None
                checked = isinstance(item, tuple) and len(item) > 2 and item[2] is True
                new[key] = _make_row(part.tier, key, source, source_version, checked)
            except InvalidRecord as exc:
                rejected.append((key, str(exc)))
        gone = [*diff.changed, *diff.removed]
        frame, marks = with_inputs(frame, new, set(gone), inputs or {}) if part.tier != "raw" else (frame, 0)
        if version is not None and not new and not gone and not repeated and not marks:
            report.partitions_current.append(part.key)
        elif version is None and not new:
            pass  # nothing to hold and nothing stored: no empty table is made
        else:
            kept = frame.filter(~pl.col(SOURCE_KEY).is_in(gone)) if gone else frame
            data = frame_to_parquet(pl.concat([kept, schema.frame(new.values())]).sort(SOURCE_KEY) if new else kept)
            if not run.store.put_if_version(bucket, part.key, data, version):
                report.conflicts += 1
                time.sleep(random.uniform(0.005, 0.05))  # let the winner finish before reloading
                continue
            report.bytes_written += len(data)
            report.partitions_written.append(part.key)
        report.rows += len(diff.unchanged) + len(new)
        report.sources_read += len(read)
        report.rows_fixed += 0 if rebuild else sum(1 for k in diff.changed if k in new)
        report.rows_dropped += len(diff.removed) + sum(1 for k in diff.changed if k not in new)
        report.rejected.extend(rejected)
        return
    raise TableError(f"table {part.key} changed under every one of {MAX_ATTEMPTS} attempts to update it: "
                     "too many writers at once; run `speedlab tables rebuild` when they are done")


def _stored_frame(report: TablesReport, schema: TableSchema, part: TablePartition, body: bytes | None
                  ) -> tuple[pl.DataFrame, bool]:
    """A partition's stored frame (empty for ``None`` or an unreadable table, which is then
    rebuilt from its sources) and whether a source key had more than one row (the last one is
    kept, as :meth:`TableSchema.rows` keeps it)."""
    if body is not None:
        try:
            frame = frame_from_parquet(body, schema, part.key)
        except TableError as exc:
            report.rejected.append((part.key, f"{exc}; rebuilt from its sources"))
        else:
            if frame[SOURCE_KEY].is_duplicated().any():
                return frame.unique(SOURCE_KEY, keep="last", maintain_order=True), True
            return frame, False
    return schema.frame(()), False


def _run(store: Store, buckets: Buckets, report: Any, body: Callable[[_Run], None]) -> Any:
    counted = CountingStore(store)
    before = dict(counted.counts)
    started = time.perf_counter()
    body(_Run(counted, buckets, report))
    report.requests = {k: n - before.get(k, 0) for k, n in counted.counts.items()
                       if n - before.get(k, 0) and k not in ("list", "list_prefixes")}
    if hasattr(report, "seconds"):
        report.seconds = time.perf_counter() - started
    return report


def update_partitions(store: Store, buckets: Buckets, partitions: Iterable[TablePartition],
                      fresh: Fresh | None = None, *, rebuild: bool = False,
                      progress: Callable[[int, int, str], None] | None = None,
                      inputs: Inputs | None = None) -> TablesReport:
    """Bring each partition in line with the original layout (one compare-and-swap each).

    Parameters
    ----------
    fresh : dict, optional
        Source key -> bytes a caller has just written, or ``(bytes, version)`` it read after a
        listing showed that version (used without a read where they are provably what the
        store holds).
    rebuild : bool
        Ignore the rows stored (read every source again).
    progress : callable, optional
        ``progress(done, total, table_key)`` after each partition.
    inputs : dict, optional
        Summary key -> ``(version, inputs)``: the ``inputs`` column of that summary's row when
        the row is of that version (:mod:`speedlab.inputs`; a row of another version keeps its own).

    Raises
    ------
    TableError
        When a partition lost :data:`MAX_ATTEMPTS` races in a row.
    """
    parts = sorted(set(partitions))

    def body(run: _Run) -> None:
        for done, part in enumerate(parts, 1):
            _maintain(run, part, fresh or {}, rebuild, inputs or {})
            if progress is not None:
                progress(done, len(parts), part.key)

    return _run(store, buckets, TablesReport(), body)


def update_summaries(store: Store, buckets: Buckets, written: Iterable[tuple[str, bytes]]) -> TablesReport:
    """After a rollup: update the partitions of the summary objects it wrote (``(key, body)``,
    every tier, per host and all hosts), verifying each whole partition against its sources."""
    fresh, parts = {}, set()
    for key, data in written:
        tier = parse_summary_key(key).tier
        parts.add(summary_table_partition(tier, parse_summary_key(key).label))
        fresh[key] = data
    return update_partitions(store, buckets, parts, fresh)


def update_raw(store: Store, buckets: Buckets, written: Iterable[str | tuple] = (),
               *, periods: Iterable[Period] = ()) -> TablesReport:
    """Update the raw partitions (local months) of the raw keys ``written`` (keys, ``(key,
    body)``, or ``(key, body, version listed before the read)``) and of ``periods`` (an hour
    just rolled up, say), each verified as a whole."""
    fresh, parts = _raw_fresh(written)
    for period in periods:
        parts.update(table_partitions_between("raw", period, period))
    return update_partitions(store, buckets, parts, fresh)


def _raw_fresh(written: Iterable[str | tuple]) -> tuple[dict[str, bytes | tuple],
                                                        set[TablePartition]]:
    fresh: dict[str, bytes | tuple] = {}
    parts: set[TablePartition] = set()
    for item in written:
        key = item if isinstance(item, str) else item[0]
        if not isinstance(item, str):
            fresh[key] = item[1] if len(item) == 2 else tuple(item[1:])
        parts.add(raw_table_partition(parse_raw_key(key)))
    return fresh, parts


def _repair_key(part: TablePartition) -> str:
    return REPAIR_PREFIX + part.key[len(TABLES_PREFIX):] + ".todo"


def marked_for_repair(store: Store, buckets: Buckets) -> list[TablePartition]:
    """The partitions a job could not update (:func:`keep_current` marks them; one LIST)."""
    out = []
    for info in store.list(tables_bucket(buckets), REPAIR_PREFIX):
        try:
            out.append(parse_table_key(TABLES_PREFIX + info.key[len(REPAIR_PREFIX):].removesuffix(".todo")))
        except LayoutError:
            continue
    return out


def keep_current(store: Store, buckets: Buckets, summaries: Iterable[tuple] = (),
                 raw: Iterable[str | tuple] = (), periods: Iterable[Period] = (),
                 inputs: Inputs | None = None) -> TablesReport:
    """What every job that writes summaries calls once per run (or per month of a backfill):
    one update of each partition of the ``summaries`` it wrote (``(key, body)``, or ``(key,
    body, version)`` with the version :meth:`~speedlab.storebase.Store.put` returned; its own
    summaries' JSON, not validated again), of the raw
    months of ``raw`` (as :func:`update_raw`'s ``written``) and of the hours ``periods``, and of
    every partition an earlier job marked for repair. ``inputs`` (key -> ``(version, value)``)
    sets summary rows' ``inputs`` column (:func:`update_partitions`); their partitions are updated too.

    A partition that cannot be updated is marked for repair (``tables/repair/…``, best effort)
    so that the next job updates it, and the error is raised: the caller reports it and goes on.
    """
    fresh, parts = _raw_fresh(raw)
    for key, *data in summaries:
        parsed = parse_summary_key(key)
        parts.add(summary_table_partition(parsed.tier, parsed.label))
        fresh[key] = (data[0], data[1] if len(data) > 1 else None, True)
    for key in inputs or {}:
        parsed = parse_summary_key(key)
        parts.add(summary_table_partition(parsed.tier, parsed.label))
    for period in periods:
        parts.update(table_partitions_between("raw", period, period))
    marked = set(marked_for_repair(store, buckets))
    try:
        report = update_partitions(store, buckets, parts | marked, fresh, inputs=inputs)
    except Exception:
        for part in sorted(parts - marked):
            with contextlib.suppress(Exception):  # the store is failing: the error raised says so
                store.put(tables_bucket(buckets), _repair_key(part), b"{}")
        raise
    for part in sorted(marked):
        store.delete(tables_bucket(buckets), _repair_key(part))
    return report


def list_partitions(store: Store, buckets: Buckets, tiers: Sequence[str] | None = None) -> list[TablePartition]:
    """Every partition that has sources in the original layout or a table object, sorted."""
    tiers = list(tiers) if tiers is not None else [*TIERS, "raw"]
    out: set[TablePartition] = set()
    for tier in tiers:
        if tier == "raw":
            for host in list_hosts(store, buckets):
                for year in store.list_prefixes(buckets.raw, raw_host_prefix(host) + "year="):
                    out.update(TablePartition("raw", int(m[-7:-3]), int(m[-3:-1]))
                               for m in store.list_prefixes(buckets.raw, year + "month="))
            prefix = RAW_TABLES_PREFIX
        else:
            bucket = buckets.for_tier(tier)
            bases = [GLOBAL_SUMMARY_YEARS_PREFIX] + [summary_prefix(h) + "year=" for h in _summary_hosts(store, bucket)]
            for year in (y for base in bases for y in store.list_prefixes(bucket, base)):
                if tier != "hourly":
                    out.add(TablePartition(tier, int(year[-5:-1])))
                    continue
                out.update(TablePartition(tier, int(m[-7:-3]), int(m[-3:-1]))
                           for m in store.list_prefixes(bucket, year + "month="))
            prefix = f"{SUMMARY_TABLES_PREFIX}tier={tier}/"
        for info in store.list(tables_bucket(buckets), prefix):
            try:
                out.add(parse_table_key(info.key))
            except LayoutError:
                continue
    return sorted(out)


def rebuild(store: Store, buckets: Buckets, *, tiers: Sequence[str] | None = None,
            progress: Callable[[int, int, str], None] | None = None) -> TablesReport:
    """Make every table partition again from the original layout (``tiers``: summary tiers
    and/or ``"raw"``; default all). Safe beside running jobs: each partition is a compare-and-swap."""
    return update_partitions(store, buckets, list_partitions(store, buckets, tiers), rebuild=True,
                             progress=progress)


def check(store: Store, buckets: Buckets, *, tiers: Sequence[str] | None = None) -> CheckReport:
    """Compare every table row with its source object's content, and every source with its row.

    Reads every source object (this is the audit; maintenance trusts versions instead).
    """
    def body(run: _Run) -> None:
        report = run.report
        for part in list_partitions(run.store, buckets, tiers):
            report.partitions += 1
            schema = run.schema(part)
            table, version = run.store.get_versioned(tables_bucket(buckets), part.key)
            rows: dict[str, dict] = {}
            if version is not None:
                try:
                    frame = frame_from_parquet(table, schema, part.key)
                    rows = schema.rows(frame)
                    if len(rows) != frame.height:
                        report.disagreements.append((part.key, "a source key has more than one row"))
                except TableError as exc:
                    report.disagreements.append((part.key, str(exc)))
                    continue
            report.rows += len(rows)
            sources = run.sources(part)
            report.sources += len(sources)
            for key, (data, source_version) in run.fetch(run.source_bucket(part), sorted(sources)).items():
                row = rows.get(key)
                if source_version is None:
                    continue  # deleted while checking
                try:
                    expected = _make_row(part.tier, key, data, source_version)
                except InvalidRecord as exc:
                    report.rejected.append((key, str(exc)))
                    if row is not None:
                        report.disagreements.append((key, f"has a row in {part.key} but is not a valid source"))
                    continue
                if row is None:
                    where = part.key if version is not None else f"{part.key} (missing)"
                    report.disagreements.append((key, f"has no row in {where}"))
                    continue
                want, got = schema.decode_row(expected), schema.decode_row(row)
                diff = first_difference(want, got)
                if diff is not None:
                    report.disagreements.append((key, f"its row in {part.key} differs at {diff}"))
                elif any(row[c.name] != expected[c.name] for c in schema.keys
                         if c.name not in (SOURCE_VERSION, SOURCE_SHA256, INPUTS)):  # inputs: a backfill's
                    report.disagreements.append((key, f"its row in {part.key} names another host or period"))
                elif row.get(SOURCE_SHA256) not in (None, expected.get(SOURCE_SHA256)):  # null: a row from before it
                    report.disagreements.append((key, f"its row in {part.key} holds another {SOURCE_SHA256}"))
            for key in sorted(set(rows) - set(sources)):
                report.disagreements.append((key, f"has a row in {part.key} but no source object"))

    return _run(store, buckets, CheckReport(), body)


# =========================================================================== reading

@dataclass
class TableRead:
    """What a table read found: ``summaries`` (label -> the summary object, in period order)
    or ``results`` (``(key, SpeedTestResult)`` sorted by key), and the ``missing`` partitions
    (no table object: the caller reads those periods from the original layout)."""

    summaries: dict[str, dict] = field(default_factory=dict)
    results: list[tuple[str, SpeedTestResult]] = field(default_factory=list)
    missing: list[TablePartition] = field(default_factory=list)
    requests: int = 0
    #: raw tables read: partition -> the latest ``slot`` of any of its rows (every host; aware),
    #: ``None`` for an empty table
    latest_slot: dict[TablePartition, datetime | None] = field(default_factory=dict)
    #: partition -> its frame (raw: for :func:`speedlab.tables.raw_table_results`; summaries: ``decode=False``)
    frames: dict[TablePartition, pl.DataFrame] = field(default_factory=dict)


def _read_frames(store: Store, buckets: Buckets, parts: Sequence[TablePartition], out: TableRead,
                 columns: Sequence[str] | None = None, where: pl.Expr | None = None
                 ) -> list[tuple[TablePartition, pl.DataFrame]]:
    frames = []
    schema = RAW_TABLE if parts and parts[0].tier == "raw" else SUMMARY_TABLE
    with ThreadPoolExecutor(max(1, min(MAX_WORKERS, len(parts)))) as pool:
        bodies = list(pool.map(lambda p: store.get_versioned(tables_bucket(buckets), p.key), parts))
    out.requests += len(parts)
    for part, (body, version) in zip(parts, bodies, strict=True):
        if version is None:
            out.missing.append(part)
        else:
            frames.append((part, frame_from_parquet(body, schema, part.key, columns, where)))
    return frames


def read_summaries_table(store: Store, buckets: Buckets, tier: str, first: Period, last: Period,
                         host_id: str | None = None, *, decode: bool = True,
                         wanted: Mapping[str, Any] | None = None) -> TableRead:
    """The summaries of ``tier`` from period ``first`` to ``last`` (inclusive) of ``host_id``
    (``None``: all hosts) from the tables: exactly the objects the original keys hold.
    One GET per partition (two for a window within a year, plus one per further year).
    ``decode=False`` leaves :attr:`TableRead.summaries` empty and keeps each partition's rows of
    the window in :attr:`TableRead.frames` (sorted by label) for ``SUMMARY_TABLE.decode_row``.
    ``wanted`` (``decode_row``'s tree): only those fields are needed, so only their columns (and
    the table's keys) are decoded, and the summaries hold only those fields."""
    out = TableRead()
    host = ALL_HOSTS if host_id is None else validate_host_id(host_id)
    columns = None if wanted is None else [c.name for c in SUMMARY_TABLE.keys] + SUMMARY_TABLE.columns_of(wanted)
    for part, frame in _read_frames(store, buckets, table_partitions_between(tier, first, last), out, columns,
                                    pl.col(HOST) == host):  # only the host's rows (and row groups) decoded
        picked = frame.filter(pl.col(LABEL).is_between(pl.lit(first.label), pl.lit(last.label))).sort(LABEL)
        if not decode:
            out.frames[part] = picked
            continue
        for row in picked.iter_rows(named=True):
            out.summaries[row[LABEL]] = SUMMARY_TABLE.decode_row(row, wanted)
    out.summaries = dict(sorted(out.summaries.items()))
    return out


def read_raw_table(store: Store, buckets: Buckets, first: Period, last: Period,
                   hosts: Iterable[str] | None = None) -> TableRead:
    """The raw results whose slot is in ``first`` .. ``last`` (any tiers; inclusive) of ``hosts``
    (default all) from the tables, as the original objects give them (validated again).
    The frames read stay in :attr:`TableRead.frames` for :func:`speedlab.tables.raw_table_results`."""
    out = TableRead()
    for part, frame in _read_frames(store, buckets, table_partitions_between("raw", first, last), out):
        frame = with_key_slot(frame)
        out.frames[part] = frame
        out.latest_slot[part] = latest_slot(frame)
        out.results += raw_table_results(frame, first, last, hosts)
    out.results.sort(key=lambda item: item[0])
    return out


def list_raw_tables(store: Store, buckets: Buckets) -> set[str]:
    """The keys of every raw month's table (one LIST)."""
    return {info.key for info in store.list(tables_bucket(buckets), RAW_TABLES_PREFIX)}


def raw_month_key(month: Period) -> str:
    """The key of the local ``month``'s raw table (a monthly :class:`Period`)."""
    return TablePartition("raw", month.start.year, month.start.month).key


def read_raw_month(store: Store, buckets: Buckets, month: Period) -> RawMonth | None:
    """The raw table of the local ``month`` (a monthly :class:`Period`), one GET; ``None`` when
    that month has no table yet. Which rows are still current is the caller's listing to say."""
    key = raw_month_key(month)
    body, version = store.get_versioned(tables_bucket(buckets), key)
    if version is None:
        return None
    frame = frame_from_parquet(body, RAW_TABLE, key)
    return RawMonth(dict(zip(frame[SOURCE_KEY].to_list(), frame[SOURCE_VERSION].to_list(), strict=True)), frame)
