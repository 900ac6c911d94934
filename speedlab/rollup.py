"""Rolling up: read -> :mod:`speedlab.aggregate` -> write, for one period, a backfill, or
whatever the schedule says is due.

Entry points
------------
* :func:`rollup` — one tier and period: the all-hosts summary and one per host, at
  :func:`speedlab.layout.summary_key` in the tier's bucket. Children that are missing (an
  hour of a day, a day of a month, ...) and have ended are rolled up first.
* :func:`backfill` — every period of every tier between two dates, with a progress bar.
* :func:`run_due` — the scheduler's job: what :func:`speedlab.scheduler.plan_due` finds
  missing, stale or marked, finest tier first.
* :func:`mark_stale` — for tools that change raw data (``speedlab dedupe``): the next
  ``run-due`` re-aggregates that hour, and with it its day, week, month and year.
* :func:`aggregate` — one period on request (``speedlab aggregate``), as a :class:`PeriodReport`.

How it reads
------------
Hours are read a day at a time: one listing per host and day, then every object of the
due hours in parallel (a bounded pool of ``[aggregate] max_workers``). Coarser periods list
their children's all-hosts summaries (for their ``modified`` times, which the summary
records as provenance) and read them, and each host's, from an in-memory cache when this
run wrote them, else from the store. Bad objects (corrupt JSON, an invalid record, a key
outside the layout) are skipped, counted in ``rejected_records`` and logged with their key;
a store that fails to answer fails the run (:class:`~speedlab.errors.StoreUnavailable`)
before anything is written for the hours concerned, so the next run does them again.

Provenance written into every summary: ``source_objects`` (how many input objects were
listed: raw objects of the hour, or child summaries), ``source_max_modified`` (the newest
input's ``modified`` time, UTC) and ``generated_at``.

How stale marks work
--------------------
:func:`mark_stale` writes ``stale/hour=YYYYMMDDHH/<host>.json`` into the hourly bucket (a
prefix no summary reader lists). ``run-due`` lists ``stale/``, rolls those hours up again,
which makes their day, week, month and year due again ("children re-aggregated"), and
deletes the markers it acted on. Old summaries stay readable meanwhile.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from os.path import commonprefix

from .aggregate import Accumulator, anomaly_threshold, hour_summaries, hourly_parts, merge_summaries
from .counting import CountingStore
from .errors import (
    BucketNotFound,
    InvalidHostId,
    InvalidRecord,
    LayoutError,
    ObjectNotFound,
    SpeedlabError,
    StoreUnavailable,
    UnsupportedDate,
)
from .joblog import JobLog
from .layout import (
    GLOBAL_SUMMARY_YEARS_PREFIX,
    HOSTS_PREFIX,
    RAW_PARTITIONS,
    STALE_PREFIX,
    SUMMARY_NAME,
    hour_in_key,
    parse_raw_key,
    parse_stale_marker_key,
    parse_summary_key,
    raw_host_prefix,
    raw_hour_label,
    raw_period_prefix,
    stale_marker_key,
    summary_dir,
    summary_key,
    validate_host_id,
)
from .periods import (
    CHILD_TIER,
    SUPPORTED_DATES,
    TIERS,
    Period,
    children,
    get_zone,
    parse_period,
    period_of,
    periods_between,
    previous_period,
    to_local,
)
from .reader import RawObject, fetch_many, list_hosts, read_objects
from .records import TierSummary, decode_json
from .scheduler import InputState, PlanItem, Recorded, TierState, plan_due
from .settings import AggregateSettings
from .sketch import QuantileSketch
from .store import ObjectInfo, Store
from .text import rollup_line

__all__ = ["PeriodReport", "RollupReport", "aggregate", "backfill",
           "mark_stale", "parse_any_period", "read_input_summary", "rollup", "run_due",
           "STALE_PREFIX"]

UTC = timezone.utc
_RANK = {tier: i for i, tier in enumerate(TIERS)}
#: How long finished periods stay in the in-memory cache, by tier (children of later work).
_KEEP = {"hourly": timedelta(hours=49), "daily": timedelta(days=40), "weekly": timedelta(0),
         "monthly": timedelta(days=370), "yearly": timedelta(0)}


# =========================================================================== report

@dataclass
class RollupReport:
    """What a rollup, backfill or run-due did.

    Attributes
    ----------
    items : list of dict
        One per period rolled up: ``tier``, ``period``, ``reason``, ``records``,
        ``rejected``, ``hosts``.
    summaries : dict
        ``(tier, label) -> {host_id or None: TierSummary}`` for the periods rolled up.
    rejected : list of (key, reason)
        Every input skipped as bad data.
    replaced : list of (key, reason)
        Every input summary found unusable (not a JSON object, wrong types, negative
        counts, ...) and therefore rolled up again from its own inputs.
    results_read : int
        Raw results read and validated.
    requests : dict
        Store requests by kind (``get``, ``put``, ``list``, ``list_pages``, ...).
    seconds : float
        Wall time.
    clamped : dict or None
        Backfill only: ``from``, ``to`` and a ``message`` when the range asked for reached
        before the earliest raw result or after now (see :func:`backfill`).
    """

    items: list[dict] = field(default_factory=list)
    summaries: dict[tuple[str, str], dict[str | None, TierSummary]] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    replaced: list[tuple[str, str]] = field(default_factory=list)
    results_read: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    plan: list[dict] = field(default_factory=list)
    markers_cleared: int = 0
    clamped: dict | None = None

    @property
    def periods(self) -> int:
        """How many periods were rolled up."""
        return len(self.items)

    def to_dict(self) -> dict:
        """Plain data for ``--json`` (without the summaries themselves)."""
        by_tier = Counter(item["tier"] for item in self.items)
        return {"periods": self.periods, "by_tier": {t: by_tier[t] for t in TIERS if by_tier[t]},
                "results_read": self.results_read, "rejected": len(self.rejected),
                "requests": dict(self.requests), "seconds": round(self.seconds, 3),
                "markers_cleared": self.markers_cleared,
                "replaced_summaries": [{"key": k, "reason": why} for k, why in self.replaced],
                **({"clamped": self.clamped} if self.clamped else {}), "items": self.items}

    def to_text(self) -> str:
        """One line for people: ``3 period(s) rolled up (hourly 2, daily 1); 0 bad object(s) skipped``."""
        return rollup_line(self.to_dict())


# =========================================================================== the roller

def read_input_summary(body: bytes, key: str, alpha: float) -> tuple[dict, None] | tuple[None, str]:
    """The one validity check of a stored summary that a rollup reads as an input.

    Returns
    -------
    (data, None) or (None, reason)
        The decoded summary, or why it cannot be used (corrupt JSON, not a JSON object, wrong
        field types, negative counts, a sketch of another ``alpha``...), naming ``key``.
        Never raises for bad content: the caller rolls the period up again.
    """
    try:
        data = decode_json(body, key)
        Accumulator.from_summary(data, alpha, key)
    except InvalidRecord as exc:
        return None, str(exc)
    except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError) as exc:
        return None, f"not a usable summary in {key}: {type(exc).__name__}: {exc}"
    return data, None


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


class _Roller:
    """Rolls up a list of periods in order, batching reads and caching what it wrote."""

    def __init__(self, config, store: CountingStore, log: JobLog, now: datetime,
                 settings: AggregateSettings, progress=None) -> None:
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

    # ------------------------------------------------------------------ helpers
    def hosts(self) -> list[str]:
        if self._hosts is None:
            self._hosts = list_hosts(self.store, self.buckets)
        return self._hosts

    def earliest(self) -> datetime | None:
        """The start of the earliest hour with raw data (periods before it need no summary)."""
        if not self._earliest:
            self._earliest.append(_earliest_raw(self.store, self.buckets, self.hosts(), self.zone))
        return self._earliest[0]

    def _pool_map(self, fn, items: Sequence) -> list:
        if len(items) <= 1:
            return [fn(item) for item in items]
        return list(self.pool.map(fn, items))

    def close(self) -> None:
        """Stop the worker threads."""
        self.pool.shutdown(wait=True)

    def _put_many(self, writes: Sequence[tuple[str, str, bytes]]) -> None:
        def put(item):
            bucket, key, data = item
            self.store.put(bucket, key, data)
        self._pool_map(put, writes)

    def _remember(self, tier: str, period: Period, host: str | None, data: dict) -> None:
        self.cache[(tier, period.label, host)] = (period.end_utc, data)

    def _evict(self, moment: datetime) -> None:
        for cache_key in [k for k, (end, _) in self.cache.items() if end < moment - _KEEP[k[0]]]:
            del self.cache[cache_key]
        old = moment - _KEEP["hourly"]
        for sketch_key in [k for k in self.sketches
                           if parse_period("hourly", k[1], self.zone).end_utc < old]:
            del self.sketches[sketch_key]

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

    @staticmethod
    def _provenance(summary: TierSummary, infos: Sequence[ObjectInfo | datetime]) -> TierSummary:
        times = [i.modified if isinstance(i, ObjectInfo) else i for i in infos]
        newest = max(times) if times else None
        return summary.with_fields(
            source_objects=len(times),
            source_max_modified=newest.astimezone(UTC).isoformat() if newest else None,
            generated_at=datetime.now(UTC).isoformat(timespec="seconds"))

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
                j = i
                day = period.start.date()
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
    def _list_raw_day(self, host: str, day: Period, labels: set[str]):
        objects: dict[str, list[RawObject]] = defaultdict(list)
        infos: dict[tuple[str, str], list[ObjectInfo]] = defaultdict(list)
        rejected: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for info in self.store.list(self.buckets.raw, raw_period_prefix(host, day)):
            label = hour_in_key(info.key)
            if label is None or label not in labels:
                continue
            infos[(label, host)].append(info)
            try:
                objects[label].append(RawObject(info, parse_raw_key(info.key)))
            except (LayoutError, InvalidHostId) as exc:
                rejected[label].append((info.key, str(exc)))
        return objects, infos, rejected

    def _baseline_prefetch(self, hours: list[Period], hosts: Iterable[str]) -> None:
        """Make sure the per-host hourly summaries of every batch hour's window are known."""
        window = timedelta(hours=self.settings.anomaly_window_hours)
        first = hours[0].start_utc - window
        wanted_months = periods_between("monthly", first, hours[-1].start_utc, self.zone)
        batch = {h.label for h in hours}
        window_hours = [p for p in periods_between("hourly", first, hours[-1].start_utc, self.zone)
                        if p.label not in batch]
        to_list = [(host, month) for host in hosts for month in wanted_months
                   if (host, month.label) not in self.listed_months]

        def listing(item):
            host, month = item
            prefix = summary_dir(month, host)  # a month's folder holds its day=/hour= folders
            return item, [i.key for i in self.store.list(self.buckets.hourly, prefix)]
        for (host, month), keys in self._pool_map(listing, to_list):
            self.listed_months.add((host, month.label))
            self.existing.update(keys)
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

    def _download_sketch(self, host: str, hour: Period) -> QuantileSketch | None:
        if (host, hour.label) in self.sketches:
            return self.sketches[(host, hour.label)]
        cached = self.cache.get(("hourly", hour.label, host))
        sketch = None
        if cached is not None:
            try:  # a summary read back may be the original system's, without statistics
                sketch = QuantileSketch.from_dict(cached[1]["stats"]["download_mbps"]["sketch"])
            except (InvalidRecord, KeyError, TypeError):
                sketch = None
        self.sketches[(host, hour.label)] = sketch
        return sketch

    def _thresholds(self, hour: Period, hosts: Iterable[str]) -> dict[str, float | None]:
        out = {}
        window = [hour.start_utc - timedelta(hours=k)
                  for k in range(1, self.settings.anomaly_window_hours + 1)]
        periods = [period_of("hourly", t, self.zone) for t in window]
        for host in hosts:
            sketches = [s for s in (self._download_sketch(host, p) for p in periods) if s is not None]
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
        for o, i, r in self._pool_map(lambda h: self._list_raw_day(h, day, labels), hosts):
            for label, objs in o.items():
                objects[label].extend(objs)
            infos.update(i)
            for label, rej in r.items():
                rejected[label].extend(rej)
        read = read_objects(self.store, self.buckets, [o for label in labels for o in objects[label]],
                            self.settings.max_workers, self.pool)
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
        parts, unattributed = hourly_parts(results, rejected, self.settings)
        self._baseline_prefetch(hours, hosts)

        host_writes: list[tuple[str, str, bytes]] = []
        global_writes: list[tuple[str, str, bytes]] = []
        for item in items:
            hour = item.period
            hour_parts = parts.get(hour.label, {})
            for host_id in hosts:  # this hour's baseline sketches are about to change
                self.sketches.pop((host_id, hour.label), None)
            summaries = hour_summaries(hour, hour_parts,
                                       thresholds=self._thresholds(hour, sorted(hour_parts)),
                                       unattributed=unattributed.get(hour.label, 0),
                                       settings=self.settings, **self._common)
            for host, summary in summaries.items():
                if host is None:
                    source = [i for h in hosts for i in infos.get((hour.label, h), [])]
                else:
                    source = infos.get((hour.label, host), [])
                summary = self._provenance(summary, source)
                summaries[host] = summary
                self._remember("hourly", hour, host, summary.to_dict())
                write = (self.buckets.hourly, summary_key(hour, host), summary.to_json().encode())
                (global_writes if host is None else host_writes).append(write)
                if host is not None:
                    self.existing.add(write[1])
            self._finish_item(hour, item.reason, summaries, rejected[hour.label])
        self._put_many(host_writes)
        self._put_many(global_writes)

    # ------------------------------------------------------------------ coarser tiers
    def _list_modified(self, bucket: str, keys: Iterable[str]) -> dict[str, datetime]:
        groups: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            groups["/".join(key.split("/")[:3])].append(key)
        wanted = set(k for g in groups.values() for k in g)
        out = {}
        for group in groups.values():
            for info in self.store.list(bucket, commonprefix(group)):  # noqa: RUF071 - a string prefix to list
                if info.key in wanted:
                    out[info.key] = info.modified
        return out

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
            bodies = fetch_many(self.store, self.buckets.for_tier(tier), [k for *_, k in fetch],
                                self.settings.max_workers, self.pool)
            for period, host, key in fetch:
                body = bodies[key]
                if isinstance(body, ObjectNotFound):
                    continue
                if isinstance(body, Exception):
                    if isinstance(body, SpeedlabError) and not isinstance(body, StoreUnavailable):
                        invalid.append((period, key, str(body)))
                        continue
                    raise StoreUnavailable(f"could not read {key}: {body}; run again when the "
                                           "store answers") from None
                checked = read_input_summary(body, key, self.settings.sketch_alpha)
                if checked[0] is None:
                    invalid.append((period, key, checked[1]))
                    continue
                data = checked[0]
                found[(period.label, host)] = data
                self._remember(tier, period, host, data)
        return found, invalid

    def _ensure(self, periods: Sequence[Period], reason: str) -> None:
        items = sorted((PlanItem(p, reason) for p in periods),
                       key=lambda it: (it.period.end_utc, _RANK[it.period.tier]))
        self.run(items)

    def _roll_coarse(self, period: Period, reason: str, depth: int = 0) -> None:
        tier = period.tier
        child_tier = CHILD_TIER[tier]
        bucket = self.buckets.for_tier(child_tier)
        kids = children(period)
        keys = {summary_key(c, None): c for c in kids}
        modified = self._list_modified(bucket, keys)
        missing = [c for key, c in keys.items() if key not in modified and c.end_utc <= self.now
                   and (child_tier, c.label) not in self.done]
        earliest = self.earliest() if missing else None
        missing = [c for c in missing if earliest is not None and c.end_utc > earliest]
        if missing:
            self._ensure(missing, f"needed by {tier} {period.label}")
            modified = self._list_modified(bucket, keys)
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
            summary = merge_summaries(period, host, kids_data, settings=self.settings, **self._common)
            summaries[host] = summary.with_fields(
                source_objects=len(kids_data),
                source_max_modified=max(times).isoformat() if times else None,
                generated_at=datetime.now(UTC).isoformat(timespec="seconds"))
        everyone = merge_summaries(period, None, [found[(c.label, None)] for c in present
                                                  if (c.label, None) in found],
                                   settings=self.settings, **self._common)
        summaries[None] = self._provenance(everyone, times)
        out_bucket = self.buckets.for_tier(tier)
        host_writes = []
        for host, summary in summaries.items():
            self._remember(tier, period, host, summary.to_dict())
            if host is not None:
                host_writes.append((out_bucket, summary_key(period, host), summary.to_json().encode()))
        self._put_many(host_writes)
        self.store.put(out_bucket, summary_key(period, None), summaries[None].to_json().encode())
        self._finish_item(period, reason, summaries, skipped)


# =========================================================================== public functions

def _require_raw_bucket(config, store: Store, log: JobLog) -> None:
    """Refuse to roll up a store without its raw bucket (a mistyped ``--store``), before any
    summary or log line is written: a log folder inside a missing local store would create it."""
    if store.bucket_exists(config.buckets.raw):
        return
    try:
        list(store.list(config.buckets.raw, HOSTS_PREFIX))  # a missing folder or bucket: its own error
        raise BucketNotFound(f"the main bucket {config.buckets.raw!r} does not exist in {store.url}, "
                             "so there is nothing to roll up: check --store/[buckets], or create it "
                             "with `speedlab infra apply`")
    except SpeedlabError as exc:
        root = getattr(store, "root", None)
        if not (root is not None and not root.is_dir() and log.path and root in log.path.parents):
            log.end(f"rollup refused: {exc}", level="error")
        raise


def _session(config, job: str, store: Store | None, now: datetime | None, progress=None,
             require_raw: bool = False):
    settings = config.aggregate
    log = JobLog.for_config(config, job)  # refuses first a missing local store holding the state
    if store is None:
        try:
            store = config.open_store()
        except SpeedlabError as exc:  # a missing store folder, with the state kept elsewhere
            log.end(f"rollup refused: {exc}", level="error")
            raise
    if require_raw:
        _require_raw_bucket(config, store, log)
    counting = CountingStore(store)
    return _Roller(config, counting, log, _now(now), settings, progress), log


def _close(roller: _Roller, started: float) -> RollupReport:
    report = roller.report
    report.requests = dict(roller.store.counts)
    report.seconds = time.perf_counter() - started
    return report


def _run_logged(roller: _Roller, log: JobLog, what: str, fields: dict, body) -> RollupReport:
    started = time.perf_counter()
    log.start(f"{what} started", **fields)
    try:
        body()
    except BaseException as exc:
        log.end(f"{what} failed: {exc}", level="error", **fields)
        raise
    finally:
        roller.close()
    report = _close(roller, started)
    replaced = f", {len(report.replaced)} unusable summaries rolled up again" if report.replaced else ""
    log.end(f"{what} finished: {report.periods} periods, {len(report.rejected)} bad objects skipped"
            f"{replaced}", periods=report.periods, rejected=len(report.rejected),
            replaced=len(report.replaced), requests=report.requests,
            seconds=round(report.seconds, 3), **fields)
    return report


def rollup(config, tier: str, period: Period, *, now: datetime | None = None,
           store: Store | None = None) -> RollupReport:
    """Roll up one ``tier`` ``period``: the all-hosts summary and one per host.

    Missing children that have ended are rolled up first. ``report.summaries[(tier,
    period.label)]`` holds the summaries written.

    Raises
    ------
    LayoutError
        If ``period`` is not a ``tier`` period, or has not started at ``now``: a summary of a
        future period (``2099-01-01``) holds nothing and would look newer than every real one.
        A period in progress may be rolled up (the dashboard's "so far"; ``speedlab demo``
        does it); the rollup due at its end replaces that summary.
    StoreUnavailable
        If the store cannot be read or written (nothing half-done is left: run it again).
    """
    if period.tier != tier:
        raise LayoutError(f"period {period.label} is {period.tier}, not {tier}")
    now_utc = _now(now)
    if period.start_utc > now_utc:
        now_local = now_utc.astimezone(period.start.tzinfo).isoformat(timespec="seconds")
        raise LayoutError(f"{tier} period {period.iso_label} has not started yet (it starts "
                          f"{period.start.isoformat()}; now is {now_local}): roll up a period "
                          "that has begun")
    roller, log = _session(config, "aggregator", store, now, require_raw=True)
    return _run_logged(roller, log, f"{tier} rollup of {period.label}",
                       {"tier": tier, "period": period.label},
                       lambda: roller.run([PlanItem(period, "requested")]))


def parse_any_period(text: str, tz) -> Period:
    """A period from any label ``parse_period`` understands, whatever its tier
    (``2025122914``, ``2025-12-29``, ``2025W44``, ``2025-12``, ``2025``...).

    Raises
    ------
    LayoutError
        If no tier understands ``text``.
    """
    for tier in TIERS:
        try:
            return parse_period(tier, text, tz)
        except UnsupportedDate:
            raise UnsupportedDate(f"{text!r} is outside the dates speedlab handles "
                                  f"({SUPPORTED_DATES})") from None
        except LayoutError:
            continue
    raise LayoutError(f"{text!r} is not a period: write a date (2025-12-29), a month (2025-12), "
                      "a year (2025), an ISO week (2025W44) or an hour (2025122914)")


def backfill(config, first: str | Period, last: str | Period, *, progress: bool = True,
             now: datetime | None = None, store: Store | None = None) -> RollupReport:
    """Roll up every period of every tier from ``first`` to ``last`` (inclusive), finest first.

    ``first``/``last`` are periods or labels of any tier (``2025-01-01``, ``2025-12``,
    ``2025``). Only periods that lie wholly inside the range and have ended at ``now`` are
    rolled up (existing summaries are replaced); a week, month or year that reaches outside
    the range is left to the next ``scheduler run-due``, which sees its children changed
    (or it missing) and rolls it up then. A tqdm progress bar goes to stderr.

    The work is bounded by the data, not by the range: periods that end before the hour of
    the earliest raw result (found by walking the ``host=/year=/month=/day=/hour=`` folders)
    or after ``now`` are not rolled up. ``report.clamped`` says what was left out and why
    (``None`` when nothing was).
    """
    now_utc = _now(now)
    tz = config.timezone
    start = (first if isinstance(first, Period) else parse_any_period(first, tz)).start_utc
    end = (last if isinstance(last, Period) else parse_any_period(last, tz)).end_utc
    if end <= start:
        raise LayoutError(f"backfill range is empty: {first} comes after {last}")
    from tqdm.auto import tqdm
    bar = tqdm(total=0, unit="period", desc="backfill", disable=not progress, dynamic_ncols=True)
    roller, log = _session(config, "aggregator", store, now_utc, bar, require_raw=True)

    def body():
        earliest = roller.earliest()
        low = max(start, earliest.astimezone(UTC)) if earliest is not None else end
        high = min(end, now_utc)
        items = [] if low >= high else [
            PlanItem(p, "backfill") for tier in TIERS
            for p in periods_between(tier, low, high - timedelta(microseconds=1), tz)
            if start <= p.start_utc and p.end_utc <= high]
        items.sort(key=lambda it: (it.period.end_utc, _RANK[it.period.tier]))
        clamped = _clamp_note(start, end, low, high, earliest, now_utc, tz)
        if clamped is not None:
            roller.report.clamped = clamped
            log.info(clamped["message"], **{k: v for k, v in clamped.items() if k != "message"})
        bar.total = len(items)
        bar.refresh()
        roller.run(items)

    try:
        return _run_logged(roller, log, "backfill", {"first": str(first), "last": str(last)}, body)
    finally:
        bar.close()


def _clamp_note(start: datetime, end: datetime, low: datetime, high: datetime,
                earliest: datetime | None, now: datetime, tz) -> dict | None:
    """What a backfill of ``[start, end)`` left out to stay within ``[low, high)`` (or None)."""
    def show(moment: datetime) -> str:
        return to_local(moment, tz).isoformat(timespec="minutes")
    if earliest is None:
        return {"from": None, "to": None, "message": "backfill: the store holds no raw results, so "
                "there is nothing to roll up"}
    why = []
    if low > start:
        why.append(f"from {show(low)} (the earliest raw result's hour) instead of {show(start)}")
    if high < end:
        why.append(f"up to {show(high)} (now) instead of up to {show(end)}")
    if not why:
        return None
    empty = " (nothing left to roll up)" if low >= high else ""
    return {"from": show(low), "to": show(high),
            "message": f"backfill clamped to the data: {' and '.join(why)}{empty}"}


# =========================================================================== stale marks

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


# =========================================================================== run-due

def _first_hour(store: Store, bucket: str, prefix: str, zone, depth: int = 0) -> datetime | None:
    """The start of the first hour folder below ``prefix`` (oldest first, depth first); a
    folder that is not a partition, or an hour outside the supported dates, is passed over."""
    for sub in store.list_prefixes(bucket, prefix):
        match = RAW_PARTITIONS[depth].fullmatch(sub[len(prefix):])
        if not match:
            continue
        if depth == len(RAW_PARTITIONS) - 1:
            try:
                return parse_period("hourly", match.group(1), zone).start
            except LayoutError:
                continue
        found = _first_hour(store, bucket, sub, zone, depth + 1)
        if found is not None:
            return found
    return None


def _earliest_raw(store: Store, buckets, hosts: Sequence[str], zone) -> datetime | None:
    """The start of the earliest hour holding a raw result, over all hosts (a handful of
    listings per host: the oldest ``year=``, then its oldest ``month=``, ...)."""
    found = [hour for host in hosts
             if (hour := _first_hour(store, buckets.raw, raw_host_prefix(host), zone)) is not None]
    return min(found) if found else None


def _list_global(store: Store, bucket: str, tier: str) -> dict[str, datetime]:
    out = {}
    for info in store.list(bucket, GLOBAL_SUMMARY_YEARS_PREFIX):
        try:
            parsed = parse_summary_key(info.key)
        except (LayoutError, InvalidHostId):
            continue
        if parsed.tier == tier and parsed.host_id is None and parsed.name == SUMMARY_NAME:
            out[parsed.label] = info.modified
    return out


def _raw_inputs(store: Store, buckets, hosts: Sequence[str], start: datetime, now: datetime,
                zone) -> dict[str, InputState]:
    """Raw objects per hour label (all hosts) in the months from ``start`` to ``now``."""
    counts: Counter = Counter()
    newest: dict[str, datetime] = {}
    months = periods_between("monthly", start, now, zone)

    def listing(item):
        host, month = item
        return list(store.list(buckets.raw, raw_period_prefix(host, month)))
    jobs = [(h, m) for h in hosts for m in months]
    with ThreadPoolExecutor(max(1, min(8, len(jobs)))) as pool:
        for infos in pool.map(listing, jobs):
            for info in infos:
                label = hour_in_key(info.key)
                if label is None:
                    continue
                counts[label] += 1
                if label not in newest or info.modified > newest[label]:
                    newest[label] = info.modified
    return {label: InputState(counts[label], newest[label]) for label in counts}


def _recorded(store: Store, buckets, tier: str, periods: Sequence[Period], alpha: float,
              unusable: list[tuple[str, str]]) -> dict[str, Recorded]:
    """The provenance recorded in these periods' all-hosts summaries; an unusable summary
    records nothing (so it is stale and rolled up again) and is added to ``unusable``."""
    keys = {summary_key(p, None): p.label for p in periods}
    bodies = fetch_many(store, buckets.for_tier(tier), list(keys))
    out = {}
    for key, label in keys.items():
        body = bodies[key]
        if isinstance(body, StoreUnavailable):
            raise body
        data, why = read_input_summary(body, key, alpha) if isinstance(body, bytes) else ({}, None)
        if why is not None:
            unusable.append((key, why))
        try:
            newest = (data or {}).get("source_max_modified")
            newest = datetime.fromisoformat(newest) if isinstance(newest, str) else None
            out[label] = Recorded((data or {}).get("source_objects"),  # naive: unusable, so stale
                                  newest if newest is not None and newest.tzinfo else None)
        except ValueError:
            out[label] = Recorded(None, None)
    return out


def run_due(config, now: datetime | None = None, *, store: Store | None = None,
            progress: bool = False) -> RollupReport:
    """The scheduler's job: roll up every period that is due and missing, stale or marked.

    Idempotent: a second call right after the first finds nothing to do. See
    :mod:`speedlab.scheduler` for the rules; ``report.plan`` lists what was found due and why.

    Raises
    ------
    StoreUnavailable
        If the store cannot be listed, read or written; the next call picks up where this
        one stopped.
    """
    now_utc = _now(now)
    roller, log = _session(config, "scheduler", store, now_utc)
    store_ = roller.store
    zone, buckets, settings = roller.zone, roller.buckets, roller.settings

    def body():
        hosts = roller.hosts()
        earliest = roller.earliest()
        states = {tier: TierState(summaries=_list_global(store_, buckets.for_tier(tier), tier))
                  for tier in TIERS}
        lookback = now_utc - timedelta(days=settings.late_data_days)
        states["hourly"].inputs = _raw_inputs(store_, buckets, hosts, lookback, now_utc, zone)
        markers: dict[str, list[str]] = {}
        for info in store_.list(buckets.hourly, STALE_PREFIX):
            label = parse_stale_marker_key(info.key)
            if label is not None:
                try:  # hour=2025123099 names no hour: skipped and reported, not a crash each run
                    parse_period("hourly", label, zone)
                except LayoutError as exc:
                    why = f"stale marker names no hour ({exc}): delete it"
                    log.warning(f"skipped bad object {info.key}: {why}", key=info.key, reason=why)
                    roller.report.rejected.append((info.key, why))
                    continue
                markers.setdefault(label, []).append(info.key)
        states["hourly"].marked = set(markers)
        grace = timedelta(minutes=settings.staleness_grace_minutes)
        now_local = now_utc.astimezone(zone)
        unusable: list[tuple[str, str]] = []
        plan, checks = plan_due(states, earliest, now_local, zone, grace)
        if checks:
            for tier, periods in checks.items():
                states[tier].recorded.update(_recorded(store_, buckets, tier, periods,
                                                       settings.sketch_alpha, unusable))
            for key, why in unusable:
                log.warning(f"unusable summary {key}: {why}; rolling it up again", key=key,
                            reason=why)
            roller.report.replaced.extend(unusable)
            plan, checks = plan_due(states, earliest, now_local, zone, grace)
        roller.report.plan = [item.to_dict() for item in plan]
        log.info(f"{len(plan)} periods due", due=len(plan), checked=sum(map(len, checks.values())))
        roller.run(plan)
        cleared = [k for label, keys in markers.items() for k in keys
                   if ("hourly", label) in roller.done
                   or (earliest is not None and parse_period("hourly", label, zone).end <= earliest)]
        for key in cleared:
            store_.delete(buckets.hourly, key)
        roller.report.markers_cleared = len(cleared)

    return _run_logged(roller, log, "run-due", {"now": now_utc.isoformat()}, body)


# =========================================================================== one period on request

@dataclass(frozen=True)
class PeriodReport:
    """One period rolled up on request (``speedlab aggregate``, ``POST /api/aggregate``).

    Attributes
    ----------
    mode : str
        The tier.
    summary : TierSummary
        The all-hosts summary, or the host's that was asked for.
    rollup : RollupReport
        What the rollup did.
    """

    mode: str
    summary: TierSummary
    rollup: RollupReport

    def to_dict(self) -> dict:
        """The summary as plain data (an envelope's ``result``)."""
        return self.summary.to_dict()

    def to_text(self) -> str:
        """One line for people."""
        return (f"{self.mode} {self.summary.period} ({self.summary.host_id or 'all hosts'}): "
                f"{self.summary.records_aggregated} result(s); {self.rollup.to_text()}")


def aggregate(config, mode: str, period: str | None = None, host: str | None = None, *,
              now: datetime | None = None, store: Store | None = None) -> PeriodReport:
    """Roll up one period (all hosts and each host) and report the all-hosts summary, or
    ``host``'s (:func:`speedlab.adapter.envelope` gives the seed's response shape).

    ``period`` is a label of ``mode``'s tier (``2025122914``, ``20251229``/``2025-12-29``,
    ``2025W44``, ``202512``/``2025-12``, ``2025``); default (``None``, not ``""``) the previous
    complete period.

    Raises
    ------
    LayoutError
        For an unknown mode or a period label that does not fit it.
    SpeedlabError
        If ``host`` stored nothing in the period.
    """
    if mode not in TIERS:
        raise LayoutError(f"unknown mode {mode!r}: use one of {', '.join(TIERS)}")
    if host is not None:
        validate_host_id(host)
    target = (parse_period(mode, period, config.timezone) if period is not None  # '' is no period
              else previous_period(mode, _now(now), config.timezone))
    report = rollup(config, mode, target, now=now, store=store)
    summaries = report.summaries[(mode, target.label)]
    if host is not None and host not in summaries:
        have = ", ".join(h for h in summaries if h) or "none"
        raise SpeedlabError(f"host {host!r} stored nothing in {mode} period {target.label} "
                            f"(hosts with data: {have}); check the host id or pick another period")
    return PeriodReport(mode, summaries[host], report)
