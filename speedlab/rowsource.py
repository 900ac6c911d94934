"""What one view of the dashboard reads: each table partition once with a listing of its
sources, the original objects where a source differs from its table row or a partition has no
table yet, and the raw results of the hours shown.

:class:`ViewSource` is made by :func:`speedlab.query.rows` for one call. It holds what it has
read, so the figures of the window's finished periods (:meth:`ViewSource.load_summaries`) and
the figures so far of a period in progress (:func:`speedlab.live.live_summary`, fed by
:meth:`ViewSource.stored` and :meth:`ViewSource.results`) come from the same reads.

The original layout is the truth and the tables spare the GETs: every table row names its
source object and the version it was made from, and a view lists the sources it shows (while
the table is read, so the listing costs a request but no waiting), so a summary or result
rewritten, added or removed since the table was written (by a job whose table upkeep failed,
by hand, by another tool) is read from its object and shown as it is now:

* summaries: per table partition (hourly by local month, the other tiers by year) one GET
  (:func:`speedlab.tables_io.read_summaries_table`), and per tier one LIST of the window's
  sources, a key range from its first period's folder to its last's across partitions (so a
  window within a year costs 2 requests, and 1 more per further year); a source whose listed
  version is not its row's is read (one GET each), so a corrupt summary is an ``unreadable``
  row with its reason. For a partition without a table (a store written before the tables, a
  table not built yet, a year without summaries) the listing says which of the window's
  periods have an object, and those are read (one GET each);
* raw results: the raw month table (:func:`speedlab.tables_io.read_raw_table`) while the hours
  shown are listed (one LIST per host of the key range from the first hour's folder to the
  last's, :func:`speedlab.reader.list_raw_span`); a listed object the table holds at the listed version
  comes from the table, every other one is read (one GET each: the live tail, late or
  rewritten results, bad objects, which count as ``rejected`` in their slot).

Only what the view shows is decoded: a summary row when it is asked for (:meth:`ViewSource.summary`),
the raw rows of the hours asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from typing import Any

import polars as pl

from .config import Config
from .errors import InvalidHostId, LayoutError
from .joblog import JobLog
from .layout import (
    SUMMARY_NAME,
    TablePartition,
    folders_between,
    hour_in_key,
    parse_summary_key,
    summary_dir,
    summary_key,
    summary_prefix,
    summary_table_partition,
    table_partitions_between,
)
from .periods import UTC, Period, get_zone, period_of, periods_between
from .reader import MAX_WORKERS, RawObject, list_raw_span, read_objects, read_summary_objects
from .records import SpeedTestResult
from .scheduler import due_at
from .storebase import Store
from .tables import LABEL, SOURCE_KEY, SOURCE_VERSION, SUMMARY_TABLE, diff_partition, raw_table_results
from .tables_io import read_raw_table, read_summaries_table

__all__ = ["SETTLE_AFTER_DUE", "ViewSource", "partition_bounds"]

#: A finished period without a stored summary had no data once its rollup has been due this long
#: (before that it is computed so far from finer data, like a period in progress).
SETTLE_AFTER_DUE = timedelta(hours=1)


def partition_bounds(part: TablePartition, zone) -> tuple[Period, Period]:
    """The first and last periods of ``part``'s tier (hours for ``raw``) the partition holds."""
    tier = "hourly" if part.tier == "raw" else part.tier
    if part.month is not None:
        start = datetime(part.year, part.month, 1, tzinfo=zone)
        end = datetime(part.year + part.month // 12, part.month % 12 + 1, 1, tzinfo=zone)
    elif part.tier == "weekly":  # the ISO week-year
        start = datetime.combine(date.fromisocalendar(part.year, 1, 1), time(), zone)
        end = datetime.combine(date.fromisocalendar(part.year + 1, 1, 1), time(), zone)
    else:
        start, end = datetime(part.year, 1, 1, tzinfo=zone), datetime(part.year + 1, 1, 1, tzinfo=zone)
    return period_of(tier, start, zone), period_of(tier, end.astimezone(UTC) - timedelta(microseconds=1), zone)


def _runs(parts: Sequence[TablePartition], every: Sequence[TablePartition]) -> list[list[TablePartition]]:
    """``parts`` (a subset of the ordered ``every``) as runs of neighbours in ``every``."""
    out: list[list[TablePartition]] = []
    position = {p: i for i, p in enumerate(every)}
    for part in parts:
        if out and position[part] == position[out[-1][-1]] + 1:
            out[-1].append(part)
        else:
            out.append([part])
    return out


class ViewSource:
    """The reads of one view for one host (``host_id`` ``None``: the all-hosts summaries and
    every host's raw results), kept so that nothing is read twice.

    Parameters
    ----------
    store, config
        Where to read and the buckets, time zone and plans.
    host_id : str or None
        One host, or ``None`` for all hosts.
    now : datetime
        Aware; nothing at or after it is read.
    hosts : callable
        ``hosts()`` -> every host id (listed once, when the raw tail of all hosts is needed).
    max_workers : int
        Parallel store requests at most.
    log : JobLog, optional
        Where unreadable objects and keys outside the layout are reported.
    """

    def __init__(self, store: Store, config: Config, host_id: str | None, now: datetime, *,
                 hosts: Callable[[], list[str]], max_workers: int = MAX_WORKERS, log: JobLog | None = None):
        self.store, self.config, self.host_id, self.now = store, config, host_id, now
        self.zone = get_zone(config.timezone)
        self.max_workers, self.log, self._hosts = max_workers, log, hosts
        #: (tier, label) -> the stored summary of this view's host
        self.summaries: dict[tuple[str, str], dict] = {}
        #: summary key -> why it cannot be used (objects read one by one)
        self.errors: dict[str, str] = {}
        #: raw key -> result (this view's host, or all), and objects that could not be used
        self.results: dict[str, SpeedTestResult] = {}
        self.rejected: list[tuple[str, str]] = []
        #: where live lookups of a partition without a table start (the period in progress)
        self.live_from: datetime | None = None
        self._tables: dict[TablePartition, bool] = {}          # partition read -> it has a table
        self._fetched: set[tuple[str, str]] = set()            # (tier, label) read as an object
        self._ranges: dict[str, list[tuple[str, str]]] = {}    # tier -> label ranges whose sources were listed
        self._listed: dict[str, dict[str, tuple[str, str | None]]] = {}  # tier -> key -> (label, version) listed
        #: (tier, label) -> a table row (frame, index, source key, source version) not yet checked against a listing
        #: id of a table frame that holds only some fields -> (the frame, their tree); keyed by id,
        #: these hold the frame so that its id is never reused by another while the view lives
        self._projected: dict[int, tuple[pl.DataFrame, Mapping[str, Any]]] = {}
        #: (id of a table frame, id of a ``wanted`` tree or None) -> (the frame, its column names
        #: and rows, taken out of polars once)
        self._frame_rows: dict[tuple[int, int | None], tuple[pl.DataFrame, list[str], list[tuple]]] = {}
        self._unverified: dict[tuple[str, str], tuple[pl.DataFrame, int, str, str | None]] = {}
        self._unmergeable: dict[str, set[str]] = {}             # tier -> labels whose summary cannot be merged
        self._rows: dict[tuple[str, str], tuple[pl.DataFrame, int]] = {}  # (tier, label) -> its table row
        self._raw_read: set[TablePartition] = set()                # raw months whose table was read
        self._raw_frames: dict[TablePartition, pl.DataFrame] = {}   # raw month -> its table (decoded on demand)
        self._hours: set[str] = set()                          # hour labels whose results are here
        self._by_hour: dict[str, list[tuple[str, SpeedTestResult]]] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ when a summary is final
    def settled(self, period: Period) -> bool:
        """Whether the rollup of the finished ``period`` has had time to run, so that no stored
        summary means no data (:data:`SETTLE_AFTER_DUE` after it was due)."""
        if summary_key(period, self.host_id) in self.errors or period.label in self._unmergeable.get(period.tier, ()):
            return False  # its object cannot be used: recomputed from finer data, as the rollup would
        return due_at(period) + SETTLE_AFTER_DUE <= self.now

    # ------------------------------------------------------------------ summaries
    def prefetch(self, tasks: Sequence[Callable[[], object]], meanwhile: Callable[[], object] | None = None) -> None:
        """Run independent reads at once (each a call of this source's loaders); ``meanwhile``
        runs on the calling thread while they do (work that does not need them)."""
        if len(tasks) <= 1 and meanwhile is None:
            for task in tasks:
                task()
            return
        with ThreadPoolExecutor(max(1, min(self.max_workers, len(tasks)))) as pool:
            futures = [pool.submit(task) for task in tasks]
            if meanwhile is not None:
                meanwhile()
            for future in futures:
                future.result()

    def load_tables(self, tier: str, first: Period, last: Period,
                    wanted: Mapping[str, Any] | None = None) -> list[TablePartition]:
        """Read the table partitions of ``tier`` holding ``first`` .. ``last`` (not read yet);
        return the partitions in that span that have no table. ``wanted``: only those summary
        fields are needed (``SUMMARY_TABLE.decode_row``'s tree): only their columns are decoded.

        The window's sources are listed while the tables are read: one LIST of the key range
        from ``first``'s folder to ``last``'s, across partitions (S3's ``StartAfter``; no page
        past the window). A row whose source changed since the table was written (another
        version, an object written by something else than speedlab), a source without a row (a
        bad object, a summary the table's upkeep has not reached) and a row whose source is
        gone are read from the original objects instead (one GET each, so a corrupt summary
        shows as ``unreadable`` with its reason). The original layout stays the truth; the
        table spares the GETs. Rows outside the window are used only once a later window lists
        them.
        """
        every = table_partitions_between(tier, first, last)
        with self._lock:
            new = [p for p in every if p not in self._tables]
            listed = self._covered(tier, first.label, last.label)
        if not new and listed:
            with self._lock:
                return [p for p in every if not self._tables[p]]
        bucket = self.config.buckets.for_tier(tier)
        with ThreadPoolExecutor(max(1, min(self.max_workers, 1 + len(new)))) as pool:
            listing = None if listed else pool.submit(self._list_sources, tier, bucket, first, last)
            for run in _runs(new, every):
                start, end = partition_bounds(run[0], self.zone)[0], partition_bounds(run[-1], self.zone)[1]
                read = read_summaries_table(self.store, self.config.buckets, tier, start, end, self.host_id,
                                            decode=False, wanted=wanted)
                with self._lock:
                    for part in run:
                        self._tables[part] = part not in read.missing
                    for frame in read.frames.values():
                        if wanted is not None:
                            self._projected[id(frame)] = (frame, wanted)
                        for index, (key, label, version) in enumerate(zip(
                                frame[SOURCE_KEY].to_list(), frame[LABEL].to_list(), frame[SOURCE_VERSION].to_list(),
                                strict=True)):
                            self._unverified[(tier, label)] = (frame, index, key, version)
            sources = listing.result() if listing is not None else None
        with self._lock:
            if sources is not None:
                self._ranges.setdefault(tier, []).append((first.label, last.label))
                self._listed.setdefault(tier, {}).update(sources)
            pending = {label: row for (t, label), row in self._unverified.items()
                       if t == tier and first.label <= label <= last.label}
            rows = {row[2]: row[3] for row in pending.values()}
            listed_now = {key: version for key, (label, version) in self._listed.get(tier, {}).items()
                          if first.label <= label <= last.label
                          and (tier, label) not in self._rows and (tier, label) not in self._fetched}
        diff = diff_partition(rows, listed_now)
        fresh = set(diff.unchanged)
        with self._lock:
            for label, (frame, index, key, _) in pending.items():
                del self._unverified[(tier, label)]
                if key in fresh:  # decoded when asked for (summary())
                    self._rows[(tier, label)] = (frame, index)
        stale = [*diff.changed, *diff.added]
        if stale:
            self._read_summary_keys(tier, bucket, stale)
        with self._lock:
            return [p for p in every if not self._tables[p]]

    def _covered(self, tier: str, first: str, last: str) -> bool:
        """Whether the sources of ``tier``'s labels ``first`` .. ``last`` have been listed."""
        return any(a <= first and last <= b for a, b in self._ranges.get(tier, ()))

    def _list_sources(self, tier: str, bucket: str, first: Period, last: Period
                      ) -> dict[str, tuple[str, str | None]]:
        """The summary objects of ``tier`` (this view's host) from ``first`` to ``last``: key ->
        (period label, version), from one listing of that key range."""
        span = folders_between(summary_dir(first, self.host_id), summary_dir(last, self.host_id))
        out = {}
        for info in self.store.list(bucket, summary_prefix(self.host_id) + "year=", **span):
            try:
                parsed = parse_summary_key(info.key)
            except (LayoutError, InvalidHostId):
                continue
            if (parsed.tier == tier and parsed.host_id == self.host_id and parsed.name == SUMMARY_NAME
                    and first.label <= parsed.label <= last.label):
                out[info.key] = (parsed.label, info.version)
        return out

    def _read_summary_keys(self, tier: str, bucket: str, keys: Sequence[str]) -> None:
        """Read the summary objects at ``keys`` (of ``tier``, this view's host) one by one."""
        read = read_summary_objects(self.store, bucket, keys, max_workers=self.max_workers)
        problems = {**{k: f"could not read: {exc}" for k, exc in read.failed.items()}, **read.rejected}
        with self._lock:
            for key in keys:
                label = parse_summary_key(key).label
                self._fetched.add((tier, label))
                if key in read.found:
                    self.summaries[(tier, label)] = read.found[key]
                elif key in problems:
                    self.errors[key] = problems[key]
        for key in sorted(problems):
            if self.log:
                self.log.warning(f"unreadable summary: {problems[key]}", key=key)

    def load_summaries(self, tier: str, periods: Sequence[Period], wanted: Mapping[str, Any] | None = None) -> None:
        """Read the summaries of ``periods`` (one tier, in order): from the tables, and for the
        periods whose partition has no table, the objects its listing shows (one GET each).
        ``wanted``: only those fields will be asked for (:meth:`load_tables`)."""
        if not periods:
            return
        without = set(self.load_tables(tier, periods[0], periods[-1], wanted))
        untabled = [p for p in periods if summary_table_partition(tier, p.label) in without
                    and (tier, p.label) not in self._fetched]
        if not untabled:
            return
        listed = self._listed.get(tier, {})
        keys = [key for p in untabled if (key := summary_key(p, self.host_id)) in listed]
        with self._lock:
            self._fetched.update((tier, p.label) for p in untabled)
        if keys:
            self._read_summary_keys(tier, self.config.buckets.for_tier(tier), keys)

    def error(self, period: Period) -> str | None:
        """Why the object of ``period`` could not be used (read one by one), if it could not."""
        return self.errors.get(summary_key(period, self.host_id)) if self.errors else None

    def stored(self, period: Period, host_id: str | None) -> dict | None:
        """:data:`speedlab.live.StoredLookup`: the stored summary of ``period`` (this view's host).

        A partition not read yet is read now; without a table, the finished periods of its tier
        from :attr:`live_from` to ``now`` are read as objects at once.
        """
        if host_id != self.host_id:
            raise ValueError(f"this view reads host {self.host_id!r}, not {host_id!r}")
        tier, label = period.tier, period.label
        part = summary_table_partition(tier, label)
        if (part not in self._tables or not self._covered(tier, label, label)
                or (not self._tables[part] and (tier, label) not in self._fetched)):
            first, last = partition_bounds(part, self.zone)
            since = max(first.start_utc, min(period.start_utc, (self.live_from or period.start).astimezone(UTC)))
            until = min(last.start_utc, self.now.astimezone(UTC))
            span = [p for p in periods_between(tier, since, until, self.zone) if p.end_utc <= self.now]
            self.load_summaries(tier, span or [period])
        found = self.summary(tier, label)  # live_summary checks it can be merged (see unusable())
        return None if self.error(period) is not None else found

    def unusable(self, period: Period, error: Exception) -> None:
        """``live_summary``'s ``unusable``: the stored summary of ``period`` cannot be merged into a
        period in progress, so it is recomputed from finer data (and not taken as settled)."""
        with self._lock:
            self._unmergeable.setdefault(period.tier, set()).add(period.label)
        if self.log:
            self.log.warning(f"summary not mergeable, recomputed from finer data: {error}",
                             key=summary_key(period, self.host_id))

    def summary(self, tier: str, label: str, wanted: Mapping[str, Any] | None = None) -> dict | None:
        """The summary of this view's host for ``tier`` and ``label`` read so far (``None``: none).

        ``wanted`` (``SUMMARY_TABLE.decode_row``'s tree, e.g. :data:`~speedlab.rowbuild.ROW_SUMMARY_FIELDS`):
        only those fields are needed, so a summary held as a table row decodes only their columns."""
        found = self.summaries.get((tier, label))
        if found is None and (tier, label) in self._rows:
            frame, index = self._rows[(tier, label)]
            if self._projected.get(id(frame), (frame, wanted))[1] is not wanted:  # read for other fields
                with self._lock:
                    del self._rows[(tier, label)]
                self._read_summary_keys(tier, self.config.buckets.for_tier(tier), [frame[SOURCE_KEY][index]])
                return self.summaries.get((tier, label))
            cached = (id(frame), None if wanted is None else id(wanted))
            taken = self._frame_rows.get(cached)
            if taken is None:
                # the fields of a view's rows: every row of the frame at once (row(i) costs far more
                # per row); whole summaries (the few children of a period in progress): row by row,
                # as the partition's other rows, sketches and all, are not wanted
                part = frame if wanted is None else frame.select(SUMMARY_TABLE.columns_of(wanted))
                taken = self._frame_rows[cached] = (frame, part.columns, [] if wanted is None else part.rows())
            _, columns, rows = taken
            values = frame.row(index) if wanted is None else rows[index]
            found = SUMMARY_TABLE.decode_row(dict(zip(columns, values, strict=True)), wanted)
            if wanted is None:
                with self._lock:
                    self.summaries[(tier, label)] = found
        return found

    # ------------------------------------------------------------------ raw results
    def _hosts_listed(self) -> list[str]:
        return self._hosts() if self.host_id is None else [self.host_id]

    def load_raw(self, first: Period, last: Period) -> None:
        """Have every result whose slot is in the hours ``first`` .. ``last`` (up to ``now``).

        The hours are listed (one LIST per host of the hours' key range) while the raw month
        tables are read; a listed object the table holds at the
        listed version comes from the table, any other (newer than the table, rewritten, bad) is
        read (one GET each), and a table row whose object is gone is left out.
        """
        hours = [h for h in periods_between("hourly", first.start, last.start, self.zone)
                 if h.start_utc < self.now and h.label not in self._hours]
        if not hours:
            return
        every = table_partitions_between("raw", hours[0], hours[-1])
        with self._lock:
            new = [p for p in every if p not in self._raw_read]
        with ThreadPoolExecutor(1) as pool:
            listing = pool.submit(self._list, hours[0], hours[-1])  # while the tables are read
            for run in _runs(new, every):
                start, end = partition_bounds(run[0], self.zone)[0], partition_bounds(run[-1], self.zone)[1]
                read = read_raw_table(self.store, self.config.buckets, start, end, hosts=())  # none decoded
                with self._lock:
                    self._raw_read.update(run)
                    self._raw_frames.update(read.frames)
            table = self._table_results(every, hours)  # decoded while the listing is in flight
            listings = listing.result()
        self._read_listed({h.label for h in hours}, listings, table)
        with self._lock:
            self._hours.update(h.label for h in hours)

    def _table_results(self, parts: Sequence[TablePartition], hours: Sequence[Period]
                       ) -> dict[str, tuple[str | None, SpeedTestResult]]:
        """The raw table rows of ``hours`` (this view's host, or all) in the partitions ``parts``
        read so far: key -> (the version its row was made from, the result); only those rows decoded."""
        hosts = None if self.host_id is None else [self.host_id]
        table: dict[str, tuple[str | None, SpeedTestResult]] = {}
        for part in parts:
            frame = self._raw_frames.get(part)
            if frame is None:
                continue
            results = raw_table_results(frame, hours[0], hours[-1], hosts)
            if not results:
                continue
            picked = frame.filter(pl.col(SOURCE_KEY).is_in([key for key, _ in results]))
            versions = dict(zip(picked[SOURCE_KEY].to_list(), picked[SOURCE_VERSION].to_list(), strict=True))
            table.update({key: (versions.get(key), record) for key, record in results})
        return table

    def _add(self, key: str, record: SpeedTestResult) -> None:
        with self._lock:
            if key in self.results:
                return
            self.results[key] = record
            self._by_hour.setdefault(hour_in_key(key) or "", []).append((key, record))

    def _list(self, first: Period, last: Period) -> list[tuple[list[RawObject], list[tuple[str, str]]]]:
        """The raw objects of the hours ``first`` .. ``last`` of every host listed (one ranged LIST each)."""
        hosts = self._hosts_listed()
        if not hosts:
            return []
        with ThreadPoolExecutor(max(1, min(self.max_workers, len(hosts)))) as pool:
            return list(pool.map(lambda host: list_raw_span(self.store, self.config.buckets, host, first, last),
                                 hosts))

    def _read_listed(self, labels: set[str], listings: Sequence[tuple[list[RawObject], list[tuple[str, str]]]],
                     table: Mapping[str, tuple[str | None, SpeedTestResult]]) -> None:
        """Take the listed objects of the hours ``labels``: from ``table`` (key -> the version its
        row was made from, the result) where the listed version is the row's, else read them."""
        objects: list[RawObject] = []
        for found, bad in listings:
            for key, reason in bad:  # outside the layout: no slot to count it in
                if self.log:
                    self.log.warning(f"raw key outside the layout: {reason}", key=key)
            for o in found:
                key = o.info.key
                if hour_in_key(key) not in labels or key in self.results:
                    continue
                row = table.get(key)
                if row is not None and row[0] is not None and row[0] == o.info.version:
                    self._add(key, row[1])
                else:
                    objects.append(o)
        if not objects:
            return
        read = read_objects(self.store, self.config.buckets, objects, self.max_workers)
        for key, reason in sorted(read.rejected):
            self.rejected.append((key, reason))
            if self.log:
                self.log.warning(f"rejected raw result: {reason}", key=key)
        for key, record in read.results:
            self._add(key, record)

    def results_of(self, hour: Period) -> list[tuple[str, SpeedTestResult]]:
        """:data:`speedlab.live.ResultsLookup`: the results whose slot is in ``hour`` (read if needed)."""
        self.load_raw(hour, hour)
        return sorted(self._by_hour.get(hour.label, []), key=lambda item: item[0])
