"""What one view of the dashboard reads: each table partition once, the original objects where
a partition has no table yet, and the raw results younger than the raw table (the live tail).

:class:`ViewSource` is made by :func:`speedlab.query.rows` for one call. It holds what it has
read, so the figures of the window's finished periods (:meth:`ViewSource.load_summaries`) and
the figures so far of a period in progress (:func:`speedlab.live.live_summary`, fed by
:meth:`ViewSource.stored` and :meth:`ViewSource.results`) come from the same reads:

* summaries: one GET per table partition (:func:`speedlab.tables_io.read_summaries_table`:
  hourly by local month, the other tiers by year); for a partition without a table (a store
  written before the tables, or a table not built yet) the per-period JSON objects of exactly
  those periods, as before the tables;
* raw results: the raw month table (:func:`speedlab.tables_io.read_raw_table`), plus the tail:
  the hours from the table's newest hour on are listed (one LIST per host and hour, or per day
  beyond :data:`HOURS_LISTED_SINGLY` hours; the hour in progress is listed while the table is
  read) and each object the table does not hold is read (one GET each). A month without a
  table is listed and read the same way.

Only what the view shows is decoded: a summary row when it is asked for (:meth:`ViewSource.summary`),
the raw rows of the hours asked for. Where a tier's tables are built but a partition has none, its
periods' objects are read only in year folders that exist (one LIST of them).

A table holds no row for a source object it could not read (``speedlab tables check`` lists
them); such a period shows as ``missing`` rather than ``unreadable`` where a table answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, time, timedelta

import polars as pl

from .config import Config
from .joblog import JobLog
from .layout import (
    TablePartition,
    hour_in_key,
    summary_key,
    summary_prefix,
    summary_table_partition,
    table_partitions_between,
)
from .periods import UTC, Period, get_zone, period_of, periods_between
from .reader import MAX_WORKERS, RawObject, list_raw, read_objects, read_summaries
from .records import SpeedTestResult
from .scheduler import due_at
from .storebase import Store
from .tables import LABEL, SUMMARY_TABLE, raw_table_results
from .tables_io import read_raw_table, read_summaries_table

__all__ = ["HOURS_LISTED_SINGLY", "SETTLE_AFTER_DUE", "ViewSource", "partition_bounds"]

#: A finished period without a stored summary had no data once its rollup has been due this long
#: (before that it is computed so far from finer data, like a period in progress).
SETTLE_AFTER_DUE = timedelta(hours=1)
#: Raw listings (the tail, a month without a table) go hour by hour up to this many hours, by day beyond.
HOURS_LISTED_SINGLY = 6


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
        self._rows: dict[tuple[str, str], tuple[pl.DataFrame, int]] = {}  # (tier, label) -> its table row
        self._raw_newest: dict[TablePartition, Period | None] = {}  # raw month -> its table's newest hour
        self._raw_frames: dict[TablePartition, pl.DataFrame] = {}   # raw month -> its table (decoded on demand)
        self._hours: set[str] = set()                          # hour labels whose results are here
        self._by_hour: dict[str, list[tuple[str, SpeedTestResult]]] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ when a summary is final
    def settled(self, period: Period) -> bool:
        """Whether the rollup of the finished ``period`` has had time to run, so that no stored
        summary means no data (:data:`SETTLE_AFTER_DUE` after it was due)."""
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

    def load_tables(self, tier: str, first: Period, last: Period) -> list[TablePartition]:
        """Read the table partitions of ``tier`` holding ``first`` .. ``last`` (not read yet);
        return the partitions in that span that have no table."""
        every = table_partitions_between(tier, first, last)
        with self._lock:
            new = [p for p in every if p not in self._tables]
        for run in _runs(new, every):
            start, end = partition_bounds(run[0], self.zone)[0], partition_bounds(run[-1], self.zone)[1]
            read = read_summaries_table(self.store, self.config.buckets, tier, start, end, self.host_id,
                                        decode=False)
            with self._lock:
                for part in run:
                    self._tables[part] = part not in read.missing
                for frame in read.frames.values():  # decoded when asked for (summary())
                    for index, label in enumerate(frame[LABEL].to_list()):
                        self._rows[(tier, label)] = (frame, index)
        with self._lock:
            return [p for p in every if not self._tables[p]]

    def load_summaries(self, tier: str, periods: Sequence[Period]) -> None:
        """Read the summaries of ``periods`` (one tier, in order): from the tables, and one object
        per period for the periods whose partition has no table."""
        if not periods:
            return
        without = set(self.load_tables(tier, periods[0], periods[-1]))
        tabled = any(self._tables.get(p) for p in table_partitions_between(tier, periods[0], periods[-1]))
        wanted = [p for p in periods if summary_table_partition(tier, p.label) in without
                  and (tier, p.label) not in self._fetched]
        if not wanted:
            return
        to_read = wanted
        if tabled and len(wanted) > 1:
            # the tables are built, so a partition without one is most likely a year without summaries:
            # one LIST of the year folders spares a GET per period of a year without any
            prefix = summary_prefix(self.host_id)
            years = set(self.store.list_prefixes(self.config.buckets.for_tier(tier), prefix))
            to_read = [p for p in wanted if f"{prefix}year={p.year}/" in years]
        found, rejected = read_summaries(self.store, self.config.buckets, to_read, self.host_id, self.max_workers)
        with self._lock:
            self._fetched.update((tier, p.label) for p in wanted)
            self.summaries.update({(tier, label): data for label, data in found.items()})
            for key, reason in rejected:
                self.errors[key] = reason
                if self.log:
                    self.log.warning(f"unreadable summary: {reason}", key=key)

    def error(self, period: Period) -> str | None:
        """Why the object of ``period`` could not be used (read one by one), if it could not."""
        return self.errors.get(summary_key(period, self.host_id))

    def stored(self, period: Period, host_id: str | None) -> dict | None:
        """:data:`speedlab.live.StoredLookup`: the stored summary of ``period`` (this view's host).

        A partition not read yet is read now; without a table, the finished periods of its tier
        from :attr:`live_from` to ``now`` are read as objects at once.
        """
        if host_id != self.host_id:
            raise ValueError(f"this view reads host {self.host_id!r}, not {host_id!r}")
        tier, label = period.tier, period.label
        part = summary_table_partition(tier, label)
        if part not in self._tables or (not self._tables[part] and (tier, label) not in self._fetched):
            first, last = partition_bounds(part, self.zone)
            since = max(first.start_utc, (self.live_from or period.start).astimezone(UTC))
            until = min(last.start_utc, self.now.astimezone(UTC))
            span = [p for p in periods_between(tier, since, until, self.zone) if p.end_utc <= self.now]
            self.load_summaries(tier, span or [period])
        if self.error(period) is not None:
            return None
        return self.summary(tier, label)

    def summary(self, tier: str, label: str) -> dict | None:
        """The summary of this view's host for ``tier`` and ``label`` read so far (``None``: none)."""
        found = self.summaries.get((tier, label))
        if found is None and (tier, label) in self._rows:
            frame, index = self._rows[(tier, label)]
            found = SUMMARY_TABLE.decode_row(frame.row(index, named=True))
            with self._lock:
                self.summaries[(tier, label)] = found
        return found

    # ------------------------------------------------------------------ raw results
    def _hosts_listed(self) -> list[str]:
        return self._hosts() if self.host_id is None else [self.host_id]

    def load_raw(self, first: Period, last: Period) -> None:
        """Have every result whose slot is in the hours ``first`` .. ``last`` (up to ``now``):
        the raw month tables, then a listing of the hours they cannot vouch for."""
        hours = [h for h in periods_between("hourly", first.start, last.start, self.zone)
                 if h.start_utc < self.now and h.label not in self._hours]
        if not hours:
            return
        every = table_partitions_between("raw", hours[0], hours[-1])
        new = [p for p in every if p not in self._raw_newest]
        # the hour in progress is in the tail unless the table holds later hours: list it while the table is read
        current = period_of("hourly", self.now, self.zone)
        early: Future | None = None
        if new and hours[-1].label == current.label:
            pool = ThreadPoolExecutor(1)
            early = pool.submit(self._list, [current])
            pool.shutdown(wait=False)
        for run in _runs(new, every):
            start, end = partition_bounds(run[0], self.zone)[0], partition_bounds(run[-1], self.zone)[1]
            read = read_raw_table(self.store, self.config.buckets, start, end, hosts=())  # the frames, none decoded
            newest: dict[TablePartition, Period | None] = dict.fromkeys(run)
            for part in run:
                if part not in read.missing:
                    newest[part] = partition_bounds(part, self.zone)[0]  # a table: at least its first hour
            for latest in read.latest_slot.values():  # every host's newest hour
                if latest is None:
                    continue
                hour = period_of("hourly", latest, self.zone)
                part = TablePartition("raw", hour.start.year, hour.start.month)
                known = newest.get(part)
                if known is not None and hour.start_utc > known.start_utc:
                    newest[part] = hour
            with self._lock:
                self._raw_newest.update(newest)
                self._raw_frames.update(read.frames)
        hosts = None if self.host_id is None else [self.host_id]
        for part in every:  # decode only the rows of the hours asked for
            frame = self._raw_frames.get(part)
            if frame is not None:
                for key, record in raw_table_results(frame, hours[0], hours[-1], hosts):
                    self._add(key, record)
        to_list = []
        for hour in hours:
            newest_hour = self._raw_newest[TablePartition("raw", hour.start.year, hour.start.month)]
            if newest_hour is None or hour.start_utc >= newest_hour.start_utc:
                to_list.append(hour)
        listed = None
        if early is not None:
            wanted = any(h.label == current.label for h in to_list)
            try:
                listed = {current.label: early.result()}
            except Exception:
                if wanted:  # as if listed now
                    raise
        self._list_and_read(to_list, listed)
        with self._lock:
            self._hours.update(h.label for h in hours)

    def _add(self, key: str, record: SpeedTestResult) -> None:
        with self._lock:
            if key in self.results:
                return
            self.results[key] = record
            self._by_hour.setdefault(hour_in_key(key) or "", []).append((key, record))

    def _list(self, spans: Sequence[Period]) -> list[tuple[list[RawObject], list[tuple[str, str]]]]:
        """The raw listings of ``spans`` (hours or days) of every host listed (one LIST each)."""
        jobs = [(host, span) for host in self._hosts_listed() for span in spans]
        if not jobs:
            return []
        with ThreadPoolExecutor(max(1, min(self.max_workers, len(jobs)))) as pool:
            return list(pool.map(lambda job: list_raw(self.store, self.config.buckets, *job), jobs))

    def _list_and_read(self, hours: Sequence[Period], listed: Mapping[str, list] | None = None) -> None:
        """List ``hours`` (per host; by day when there are many) and read the objects not held;
        ``listed``: hour label -> the listings of that hour made already (not made again)."""
        if not hours:
            return
        labels = {h.label for h in hours}
        listings = []
        if len(hours) <= HOURS_LISTED_SINGLY:
            listings = [item for h in hours if listed and h.label in listed for item in listed[h.label]]
            spans = [h for h in hours if not (listed and h.label in listed)]
        else:
            spans = periods_between("daily", hours[0].start, hours[-1].start, self.zone)
        listings += self._list(spans) if spans else []
        if not listings:
            return
        objects: list[RawObject] = []
        for found, bad in listings:
            for key, reason in bad:  # outside the layout: no slot to count it in
                if self.log:
                    self.log.warning(f"raw key outside the layout: {reason}", key=key)
            objects.extend(o for o in found if hour_in_key(o.info.key) in labels and o.info.key not in self.results)
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
