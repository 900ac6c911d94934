"""The roller: rolls up a list of periods in order (:class:`Roller`) and keeps the columnar
tables current with what it wrote (:meth:`Roller.keep_tables`); :mod:`speedlab.rollup` opens
the session that runs it (a counting store, the job log, the report).

Reads go through :mod:`speedlab.reader` (listings, parallel GETs, the one validity decision of
a summary, here with the rollup's own condition :func:`mergeable`); statistics are
:mod:`speedlab.aggregate`'s; this module decides what to read in which order, what to keep in
memory, and writes the summaries. The public functions are :mod:`speedlab.rollup`'s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from . import tables_io
from .aggregate import Accumulator, anomaly_threshold, hour_summaries, hourly_parts, merge_summaries, parts_from_groups
from .counting import CountingStore
from .errors import InvalidRecord, SpeedlabError, StoreUnavailable, TableError
from .joblog import JobLog
from .layout import raw_hour_label, summary_key
from .monthsource import MonthSource
from .periods import CHILD_TIER, TIERS, Period, children, get_zone, period_of, periods_between
from .reader import (
    KeepingStore,
    RawObject,
    SummaryCheck,
    fetch_many,
    list_hosts,
    list_modified,
    list_raw_hours,
    list_summary_keys,
    map_listings,
    read_objects,
    read_summary_objects,
)
from .records import TierSummary, decode_json
from .rollreport import RollupReport
from .scheduler import PlanItem
from .settings import AggregateSettings
from .sketch import QuantileSketch
from .storebase import ObjectInfo
from .unchanged import KeepsUnchanged, StoredSummaries, inputs_of, same_as_held
from .walk import earliest_raw_hour

__all__ = ["TIER_RANK", "Roller", "RollupReport", "utc_now", "mergeable"]

UTC = timezone.utc
#: Finest tier first: the order periods ending together are rolled up in.
TIER_RANK = {tier: i for i, tier in enumerate(TIERS)}
#: How long finished periods stay in the in-memory cache, by tier (children of later work).
_KEEP = {"hourly": timedelta(hours=49), "daily": timedelta(days=40), "weekly": timedelta(0),
         "monthly": timedelta(days=370), "yearly": timedelta(0)}


# =========================================================================== the roller

def mergeable(alpha: float) -> SummaryCheck:
    """The rollup's condition on an input summary beyond the contract (``parse_summary`` applies it):
    it reads back into mergeable form at the sketch ``alpha`` (``Accumulator.from_summary``)."""
    def check(data: dict, key: str) -> None:
        Accumulator.from_summary(data, alpha, key)
    return check


@lru_cache(maxsize=4096)
def _hour_label(moment: datetime, zone) -> str:
    """The label of the hour holding ``moment`` (each hour is in 24 anomaly windows: parsed once)."""
    return period_of("hourly", moment, zone).label


def utc_now(now: datetime | None) -> datetime:
    """``now`` (default the clock) in UTC."""
    return (now or datetime.now(UTC)).astimezone(UTC)


@dataclass
class _Month:
    """A backfill's raw month: its listings (one per host) and, once asked for, its table."""

    period: Period
    listings: list
    source: MonthSource | None = None
    read: bool = False
    _days: dict[str, list] | None = None

    def of_day(self, day: str) -> list:
        """The listings cut to the hours of local date ``day`` (``YYYYMMDD``), in
        :func:`list_raw_hours`' shape (cut once for the whole month)."""
        if self._days is None:
            self._days = defaultdict(list)
            for objects, infos, rejected in self.listings:
                cut: dict[str, tuple[dict, dict, dict]] = defaultdict(lambda: ({}, {}, {}))
                for label, objs in objects.items():
                    cut[label[:8]][0][label] = objs
                for key, listed in infos.items():
                    cut[key[0][:8]][1][key] = listed
                for label, bad in rejected.items():
                    cut[label[:8]][2][label] = bad
                for date, item in cut.items():
                    self._days[date].append(item)
        return self._days.get(day, [])


class Roller(KeepsUnchanged):
    """Rolls up a list of periods in order, batching reads and caching what it wrote."""

    def __init__(self, config, store: CountingStore, log: JobLog, now: datetime,
                 settings: AggregateSettings, progress=None, from_tables: bool = False,
                 recompute: bool = False) -> None:
        self.config = config
        self.store = store
        self.log = log
        self.now = now
        self.settings = settings
        self.zone = get_zone(config.timezone)
        self.buckets = config.buckets
        self.progress = progress
        self.report = RollupReport()
        #: (tier, label, host) -> (end_utc, summary dict) for summaries read or written
        self.cache: dict[tuple[str, str, str | None], tuple[datetime, dict]] = {}
        #: per-host hourly summary folders listed (host, month label), and the keys found
        self.listed_months: set[tuple[str, str]] = set()
        self.existing: set[str] = set()
        self.sketches: dict[tuple[str, str], QuantileSketch | None] = {}
        self.done: set[tuple[str, str]] = set()
        self._hosts: list[str] | None = None
        self._earliest: list[datetime | None] = []
        self._common = dict(plan_for=config.plan_for, fraction=config.below_expected_fraction,
                            timezone=config.timezone, now=now)
        #: one bounded pool for every parallel request of the run (threads start once)
        self.pool = ThreadPoolExecutor(settings.max_workers, thread_name_prefix="speedlab-rollup")
        #: a backfill: raw months read from their tables where the rows are current, summaries
        #: that would not change not written again, writes made durable once per batch
        self.from_tables = from_tables
        self.stored = StoredSummaries(store, self.buckets) if from_tables else None
        self._month: _Month | None = None
        self._raw_tables: set[str] | None = None  # the raw table keys, listed once
        #: what this run wrote and read since the tables were last updated (:meth:`keep_tables`)
        self._table_summaries: dict[str, tuple[bytes, str | None]] = {}
        self._table_raw: dict[str, tuple[bytes, str | None, bool]] = {}
        self._table_hours: list[Period] = []
        #: a backfill records what each summary was computed from (:mod:`speedlab.inputs`) and,
        #: unless told to recompute, keeps as stored the periods whose inputs are unchanged
        self.record_inputs, self.skip_unchanged = from_tables, from_tables and not recompute
        self._base: str | None = None
        self.kept_modified: dict[tuple[str, str], datetime] = {}
        self._previous_batch: list[Period] = []  # the hours of the batch before (its window, in a backfill)
        #: (tier, label) -> (end_utc, host or None -> SHA-256 of the summary stored) for periods settled
        self.shas: dict[tuple[str, str], tuple[datetime, dict[str | None, str]]] = {}
        #: summary key -> the inputs of the bytes about to be written; then key -> (version, inputs)
        self._pending_inputs: dict[str, str] = {}
        self._table_inputs: dict[str, tuple[str | None, str]] = {}

    # ------------------------------------------------------------------ helpers
    def hosts(self) -> list[str]:
        if self._hosts is None:
            self._hosts = list_hosts(self.store, self.buckets)
        return self._hosts

    def earliest(self) -> datetime | None:
        """The start of the earliest hour with raw data (periods before it need no summary)."""
        if not self._earliest:
            self._earliest.append(earliest_raw_hour(self.store, self.buckets, self.hosts(), self.zone))
        return self._earliest[0]

    def _pool_map(self, fn, items: Sequence) -> list:
        return [fn(item) for item in items] if len(items) <= 1 else list(self.pool.map(fn, items))

    def close(self) -> None:
        """Stop the worker threads."""
        self.pool.shutdown(wait=True)

    def _put_many(self, writes: Sequence[tuple[str, str, bytes | None]]) -> None:
        """Write in parallel (``None``: stored already); a backfill's become durable in :meth:`keep_tables`."""
        put_one = self.store.put_deferred if self.from_tables else self.store.put
        todo = [(bucket, key, data) for bucket, key, data in writes if data is not None]
        versions = self._pool_map(lambda write: put_one(*write), todo)
        # the version each put returned: the table update then needs no GET to know what is stored
        for (_, key, data), version in zip(todo, versions, strict=True):
            self._table_summaries[key] = (data, version)
            inputs = self._pending_inputs.pop(key, None)
            if inputs is not None:
                self._table_inputs[key] = (version, inputs)

    # ------------------------------------------------------------------ the tables
    def keep_tables(self) -> None:
        """Bring the columnar tables in line with what the run wrote since the last call: one
        update per partition (:func:`speedlab.tables_io.keep_current`), plus any partition an
        earlier job marked for repair. A failure is reported and logged, never raised: the
        summaries stay written (the original layout is the source of truth) and the
        partitions are marked, so the next job repairs them."""
        summaries, raw, hours = self._table_summaries, self._table_raw, self._table_hours
        self._table_summaries, self._table_raw, self._table_hours = {}, {}, []
        inputs = {**(self.stored.inputs if self.stored else {}), **self._table_inputs}
        self._table_inputs = {}
        if self.stored:
            self.stored.inputs = {}
        if self.from_tables:
            self.store.sync_writes()  # the batch is durable before its tables, and before "done"
        try:
            self.report.tables.merge(tables_io.keep_current(
                self.store.inner, self.buckets, [(key, body, version) for key, (body, version) in summaries.items()],
                [(key, *item) for key, item in raw.items()], hours, inputs))
        except Exception as exc:  # noqa: BLE001 - a table never fails the rollup
            why = f"{type(exc).__name__}: {exc}" if not isinstance(exc, SpeedlabError) else str(exc)
            self.report.tables_errors.append(why)
            self.log.warning(f"tables not updated: {why}; the summaries are written, the next run "
                             "repairs the tables (or run `speedlab tables rebuild`)", reason=why)

    def _month_listings(self, day: Period) -> _Month:
        """One listing per host of ``day``'s month (:func:`list_raw_hours`; a backfill); one
        month is kept at a time."""
        month = period_of("monthly", day.start, self.zone)
        if self._month is None or self._month.period != month:
            self._month = None  # free the previous month first
            labels = {p.label for p in periods_between(
                "hourly", month.start_utc, month.end_utc - timedelta(microseconds=1), self.zone)}
            self._month = _Month(month, map_listings(self.store,
                lambda h: list_raw_hours(self.store, self.buckets, h, month, labels), self.hosts(), self.pool))
        return self._month

    def _raw_month(self, day: Period) -> MonthSource | None:
        """The raw table and per-host listing of ``day``'s month, when it has a table (a
        backfill); the table is read when first asked for."""
        self._month_listings(day)
        state = self._month
        assert state is not None
        if not state.read:
            state.read = True
            if self._raw_tables is None:
                self._raw_tables = tables_io.list_raw_tables(self.store, self.buckets)
            try:
                table = (tables_io.read_raw_month(self.store, self.buckets, state.period)
                         if tables_io.raw_month_key(state.period) in self._raw_tables else None)
            except TableError as exc:
                self.log.warning(f"raw table of {state.period.label} unreadable ({exc}); reading its objects")
                table = None
            state.source = MonthSource(table, state.listings) if table is not None else None
        return state.source

    def _remember(self, tier: str, period: Period, host: str | None, data: dict) -> None:
        self.cache[(tier, period.label, host)] = (period.end_utc, data)

    def _evict(self, moment: datetime) -> None:
        limit = {tier: moment - keep for tier, keep in _KEEP.items()}  # once per call, not per entry
        for cache_key in [k for k, (end, _) in self.cache.items() if end < limit[k[0]]]:
            del self.cache[cache_key]
        # local hour labels never decrease with time: those before the hour an hour before the limit ended before it
        old = period_of("hourly", limit["hourly"] - timedelta(hours=1), self.zone).label
        for sketch_key in [k for k in self.sketches if k[1] < old]:
            del self.sketches[sketch_key]
        for sha_key in [k for k, (end, _) in self.shas.items() if end < limit[k[0]]]:
            del self.shas[sha_key]
            self.kept_modified.pop(sha_key, None)

    def _finish_item(self, period: Period, reason: str, summaries: dict[str | None, TierSummary],
                     rejected: list[tuple[str, str]]) -> None:
        for key, why in rejected:
            self.log.warning(f"skipped bad object {key}: {why}", key=key, tier=period.tier,
                             period=period.label)
        self.report.rejected.extend(rejected)
        whole = summaries[None]
        self.report.items.append({"tier": period.tier, "period": period.label, "reason": reason,
                                  "records": whole.records_aggregated,
                                  "rejected": whole.get("rejected_records", 0),
                                  "hosts": whole.get("hosts", [])})
        self.report.summaries[(period.tier, period.label)] = summaries
        self.done.add((period.tier, period.label))
        if self.progress is not None:
            self.progress.update(1)

    def _settle(self, period: Period, host: str | None, summary: TierSummary, inputs: str | None = None
                ) -> tuple[TierSummary, bytes | None]:
        """The summary as stored after the write, and its bytes (``None``: the same figures as
        stored, per the tables in a backfill, else per what this run read: not written, so its
        object, modified time and its parents' freshness stay). A backfill records the SHA-256
        stored (:attr:`shas`) and the ``inputs`` the table row is to hold."""
        if self.stored:
            summary, body, sha = self.stored.settle(period, host, summary, inputs)
            self.shas.setdefault((period.tier, period.label), (period.end_utc, {}))[1][host] = sha
            if body is not None and inputs is not None:
                self._pending_inputs[summary_key(period, host)] = inputs
            return summary, body
        same = same_as_held(summary, (self.cache.get((period.tier, period.label, host)) or (None, None))[1])
        return (same, None) if same is not None else (summary, summary.to_json().encode())

    @staticmethod
    def _provenance(summary: TierSummary, infos: Sequence[ObjectInfo | datetime]) -> TierSummary:
        times = [i.modified if isinstance(i, ObjectInfo) else i for i in infos]
        newest = max(times) if times else None
        return summary.with_fields(source_objects=len(times), source_max_modified=newest.astimezone(UTC).isoformat()
                                   if newest else None, generated_at=datetime.now(UTC).isoformat(timespec="seconds"))

    # ------------------------------------------------------------------ running a plan
    def run(self, items: Sequence[PlanItem]) -> None:
        """Roll up ``items`` in order (hours of one day are read together)."""
        i = 0
        while i < len(items):
            period = items[i].period
            if (period.tier, period.label) in self.done:
                i += 1
                continue
            if period.tier == "hourly":
                if self._table_hours and self._table_hours[-1].start.strftime("%Y%m") != period.start.strftime("%Y%m"):
                    self.keep_tables()  # a backfill updates its tables once per month
                j, day = i, period.start.date()
                while (j < len(items) and items[j].period.tier == "hourly"
                       and items[j].period.start.date() == day):
                    j += 1
                batch = [it for it in items[i:j] if ("hourly", it.period.label) not in self.done]
                self._roll_hours(batch)
                i = j
            else:
                self._roll_coarse(period, items[i].reason)
                i += 1
            self._evict(period.end_utc)

    # ------------------------------------------------------------------ hours
    def _list_window_months(self, first: datetime, last: datetime, hosts: Iterable[str]) -> None:
        """List the per-host hourly summaries of the months from ``first`` to ``last`` (once each)."""
        to_list = [(host, month) for host in hosts for month in periods_between("monthly", first, last, self.zone)
                   if (host, month.label) not in self.listed_months]

        def listing(item):
            host, month = item
            return item, list_summary_keys(self.store, self.buckets.hourly, month, host)
        for (host, month), keys in self._pool_map(listing, to_list):
            self.listed_months.add((host, month.label))
            self.existing.update(keys)

    def _baseline_prefetch(self, hours: list[Period], hosts: Iterable[str]) -> None:
        """Make sure the per-host hourly summaries of every batch hour's window are known."""
        first = hours[0].start_utc - timedelta(hours=self.settings.anomaly_window_hours)
        self._list_window_months(first, hours[-1].start_utc, hosts)
        batch = {h.label for h in hours}
        window_hours = [p for p in periods_between("hourly", first, hours[-1].start_utc, self.zone)
                        if p.label not in batch]
        need = []
        for host in hosts:
            for p in window_hours:
                key = summary_key(p, host)
                if ("hourly", p.label, host) not in self.cache and (host, p.label) not in self.sketches \
                        and key in self.existing:
                    need.append((p, host, key))
        if not need:
            return
        bodies = fetch_many(self.store, self.buckets.hourly, [k for _, _, k in need],
                            self.settings.max_workers, self.pool)
        for p, host, key in need:
            body = bodies.get(key)
            if isinstance(body, StoreUnavailable):
                raise body
            self.sketches[(host, p.label)] = None
            if isinstance(body, bytes):
                try:
                    data = decode_json(body, key)
                    self.sketches[(host, p.label)] = QuantileSketch.from_dict(
                        data["stats"]["download_mbps"]["sketch"], key)
                except (InvalidRecord, KeyError, TypeError):
                    pass  # no usable baseline from this hour

    def _download_sketch(self, host: str, label: str) -> QuantileSketch | None:
        if (host, label) in self.sketches:
            return self.sketches[(host, label)]
        cached, sketch = self.cache.get(("hourly", label, host)), None
        if cached is not None:
            try:  # a summary read back may be the original system's, without statistics
                sketch = QuantileSketch.from_dict(cached[1]["stats"]["download_mbps"]["sketch"])
            except (InvalidRecord, KeyError, TypeError):
                sketch = None
        self.sketches[(host, label)] = sketch
        return sketch

    def _thresholds(self, hour: Period, hosts: Iterable[str]) -> dict[str, float | None]:
        out, start, window = {}, hour.start_utc, range(1, self.settings.anomaly_window_hours + 1)
        labels = [_hour_label(start - timedelta(hours=k), self.zone) for k in window]  # one parse per new hour
        for host in hosts:
            sketches = [s for s in (self._download_sketch(host, label) for label in labels) if s is not None]
            baseline = QuantileSketch.merge_all(sketches, self.settings.sketch_alpha) if sketches else None
            out[host] = anomaly_threshold(baseline, self.settings)
        return out

    def _roll_hours(self, items: Sequence[PlanItem]) -> None:
        if not items:
            return
        hours = [it.period for it in items]
        labels = {h.label for h in hours}
        day = period_of("daily", hours[0].start, self.zone)
        hosts = self.hosts()
        objects: dict[str, list[RawObject]] = defaultdict(list)
        infos: dict[tuple[str, str], list[ObjectInfo]] = defaultdict(list)
        rejected: dict[str, list[tuple[str, str]]] = defaultdict(list)
        listings = self._month_listings(day).of_day(day.label) if self.from_tables else self._pool_map(
            lambda h: list_raw_hours(self.store, self.buckets, h, day, labels), hosts)
        for o, i, r in listings:
            for label, objs in o.items():
                if label in labels:
                    objects[label].extend(objs)
            infos.update((k, v) for k, v in i.items() if k[0] in labels)
            for label, rej in r.items():
                if label in labels:
                    rejected[label].extend(rej)
        inputs = self._hours_inputs(hours, hosts, infos, rejected)
        if self._keep_hours(items, inputs, hosts):
            return
        month = self._raw_month(day) if self.from_tables else None
        wanted = [o for label in labels for o in objects[label]]
        current = month.current(wanted) if month is not None else set()
        groups = month.groups(labels) if month is not None and len(current) == len(wanted) else None
        if groups is not None:  # every object's row is current: counted from the table's columns
            self._table_hours.extend(hours)
            self.report.results_read += len(wanted)
            parts, unattributed = parts_from_groups(groups, rejected, self.settings)
        else:
            parts, unattributed = self._read_hours(day, hours, wanted, month, current, rejected)
        self._baseline_prefetch(hours, hosts)
        self._finish_hours(items, hosts, parts, unattributed, infos, rejected, inputs)

    def _read_hours(self, day: Period, hours: list[Period], wanted: list[RawObject], month: MonthSource | None,
                    current: set[str], rejected: dict[str, list[tuple[str, str]]]) -> tuple[dict, dict]:
        """:func:`hourly_parts` of ``hours`` from their objects (the ``current`` ones from the table's rows)."""
        kept: dict[str, bytes] = {}
        read = read_objects(KeepingStore(self.store, kept), self.buckets,
                            [o for o in wanted if o.info.key not in current],
                            self.settings.max_workers, self.pool)
        if month is not None and current:
            read.results = sorted([*read.results, *((k, month.table.result(k)) for k in current)],
                                  key=lambda item: item[0])
        accepted = {key for key, _ in read.results}  # parse_result's verdict: the table need not repeat it
        self._table_raw.update((o.info.key, (kept[o.info.key], o.info.version, o.info.key in accepted))
                               for o in wanted if o.info.key in kept)
        self._table_hours.extend(hours)
        if read.unreadable:
            key, exc = read.unreadable[0]
            raise StoreUnavailable(f"could not read {len(read.unreadable)} raw object(s) for "
                                   f"{day.iso_label} (first {key}: {exc}); nothing was written "
                                   "for those hours: run again when the store answers")
        self.report.results_read += len(read.results)
        results: dict[str, list] = defaultdict(list)
        for key, record in read.results:
            results[raw_hour_label(key)].append((key, record))
        for key, why in read.rejected:
            rejected[raw_hour_label(key)].append((key, why))
        return hourly_parts(results, rejected, self.settings)

    def _finish_hours(self, items: Sequence[PlanItem], hosts: list[str], parts: dict, unattributed: dict,
                      infos: dict, rejected: dict[str, list[tuple[str, str]]], inputs: str | None = None) -> None:
        host_writes: list[tuple[str, str, bytes | None]] = []
        global_writes: list[tuple[str, str, bytes | None]] = []
        for item in items:
            hour = item.period
            hour_parts = parts.get(hour.label, {})
            for host_id in hosts:  # this hour's baseline sketches are about to change
                self.sketches.pop((host_id, hour.label), None)
            summaries = hour_summaries(hour, hour_parts,
                                       thresholds=self._thresholds(hour, sorted(hour_parts)),
                                       unattributed=unattributed.get(hour.label, 0),
                                       settings=self.settings, **self._common)
            self.shas.pop(("hourly", hour.label), None)
            for host, summary in summaries.items():
                if host is None:
                    source = [i for h in hosts for i in infos.get((hour.label, h), [])]
                else:
                    source = infos.get((hour.label, host), [])
                summary, body = self._settle(hour, host, self._provenance(summary, source),
                                             inputs_of(inputs, host, summaries))
                summaries[host] = summary
                self._remember("hourly", hour, host, summary.to_dict())
                write = (self.buckets.hourly, summary_key(hour, host), body)
                (global_writes if host is None else host_writes).append(write)
                if host is not None:
                    self.existing.add(write[1])
            self._finish_item(hour, item.reason, summaries, rejected[hour.label])
        self._put_many(host_writes)
        self._put_many(global_writes)

    # ------------------------------------------------------------------ coarser tiers
    def _load(self, tier: str, wanted: Sequence[tuple[Period, str | None]]
              ) -> tuple[dict[tuple[str, str | None], dict], list[tuple[Period, str, str]]]:
        """Summaries from the cache or the store; returns (found, invalid (period, key, why))."""
        found, invalid, fetch = {}, [], []
        for period, host in wanted:
            cached = self.cache.get((tier, period.label, host))
            if cached is not None:
                found[(period.label, host)] = cached[1]
            else:
                fetch.append((period, host, summary_key(period, host)))
        if fetch:
            read = read_summary_objects(self.store, self.buckets.for_tier(tier), [k for *_, k in fetch],
                                        mergeable(self.settings.sketch_alpha), self.settings.max_workers,
                                        self.pool)
            for period, host, key in fetch:
                error = read.failed.get(key)
                if error is not None:
                    if isinstance(error, SpeedlabError) and not isinstance(error, StoreUnavailable):
                        invalid.append((period, key, str(error)))
                        continue
                    raise StoreUnavailable(f"could not read {key}: {error}; run again when the "
                                           "store answers") from None
                if key in read.rejected:
                    invalid.append((period, key, read.rejected[key]))
                    continue
                if key not in read.found:
                    continue  # no summary
                data = read.found[key]
                found[(period.label, host)] = data
                self._remember(tier, period, host, data)
        return found, invalid

    def _ensure(self, periods: Sequence[Period], reason: str) -> None:
        items = sorted((PlanItem(p, reason) for p in periods),
                       key=lambda it: (it.period.end_utc, TIER_RANK[it.period.tier]))
        self.run(items)

    def _roll_coarse(self, period: Period, reason: str, depth: int = 0) -> None:
        tier = period.tier
        child_tier = CHILD_TIER[tier]
        bucket = self.buckets.for_tier(child_tier)
        kids = children(period)
        keys = {summary_key(c, None): c for c in kids}
        modified = self._kept_children(child_tier, keys) or list_modified(self.store, bucket, keys)
        missing = [c for key, c in keys.items() if key not in modified and c.end_utc <= self.now
                   and (child_tier, c.label) not in self.done]
        earliest = self.earliest() if missing else None
        missing = [c for c in missing if earliest is not None and c.end_utc > earliest]
        if missing:
            self._ensure(missing, f"needed by {tier} {period.label}")
            modified = list_modified(self.store, bucket, keys)
        inputs = self._period_inputs(period, [(c.label, modified.get(key)) for key, c in keys.items()])
        if self._keep_period(period, reason, inputs):
            return None
        present = [c for key, c in keys.items() if key in modified]
        found, invalid = self._load(child_tier, [(c, None) for c in present])
        hosts = sorted({h for (label, _), data in found.items() for h in (data.get("hosts") or [])})
        if any(not isinstance(data.get("hosts"), list) for data in found.values()):
            hosts = sorted(set(hosts) | set(self.hosts()))
        def listed(child: Period) -> list[str]:
            named = found.get((child.label, None), {}).get("hosts")
            return named if isinstance(named, list) else hosts  # the seed's summaries name none
        per_host_wanted = [(c, h) for c in present for h in listed(c) if h in hosts]
        host_found, host_invalid = self._load(child_tier, per_host_wanted)
        bad = invalid + host_invalid
        if bad and depth == 0:
            for p, key, why in bad:
                self.log.warning(f"unusable summary {key}: {why}; rolling it up again", key=key,
                                 reason=why)
                self.report.replaced.append((key, why))
                self.done.discard((child_tier, p.label))
            for p in sorted({p for p, _, _ in bad}, key=lambda p: p.start_utc):
                self._ensure([p], f"replaces an unusable summary for {tier} {period.label}")
            return self._roll_coarse(period, reason, depth + 1)
        # what rolling up again could not replace is left out of this period and reported
        skipped = [(key, f"summary still unusable after rolling it up again: {why}")
                   for _, key, why in bad]

        summaries: dict[str | None, TierSummary] = {}
        times = [modified[k] for k in keys if k in modified]
        for host in hosts:
            kids_data = [host_found[(c.label, host)] for c in present if (c.label, host) in host_found]
            if not kids_data:
                continue
            summary = merge_summaries(period, host, kids_data, settings=self.settings, checked=True, **self._common)
            summaries[host] = summary.with_fields(
                source_objects=len(kids_data),
                source_max_modified=max(times).isoformat() if times else None,
                generated_at=datetime.now(UTC).isoformat(timespec="seconds"))
        everyone = merge_summaries(period, None, [found[(c.label, None)] for c in present
                                                  if (c.label, None) in found],
                                   settings=self.settings, checked=True, **self._common)
        summaries[None] = self._provenance(everyone, times)
        out_bucket = self.buckets.for_tier(tier)
        writes = {}
        self.shas.pop((tier, period.label), None)
        for host in summaries:
            summaries[host], writes[host] = self._settle(period, host, summaries[host],
                                                         inputs_of(inputs, host, summaries))
            self._remember(tier, period, host, summaries[host].to_dict())
        self._put_many([(out_bucket, summary_key(period, h), body) for h, body in writes.items() if h is not None])
        self._put_many([(out_bucket, summary_key(period, None), writes[None])])
        self._finish_item(period, reason, summaries, skipped)

