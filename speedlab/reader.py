"""Reading what the collectors and aggregators wrote: hosts, raw results, summaries.

The one home for "which objects hold this period's data, fetch them in parallel, validate
them": every read and listing of results and summaries (the rollup's, the dashboard's, the
operator tools'), and the one decision whether a stored summary is usable
(:func:`parse_summary`). Partition walks live beside it in :mod:`speedlab.walk`. Nothing here
computes statistics or writes. Bad objects never stop a read: each one is returned in
``rejected`` with its key and the reason, so callers can count and log them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from os.path import commonprefix
from zoneinfo import ZoneInfo

from .errors import InvalidHostId, InvalidRecord, LayoutError, ObjectNotFound, StoreUnavailable
from .layout import (
    GLOBAL_SUMMARY_YEARS_PREFIX,
    HOSTS_PREFIX,
    STALE_PREFIX,
    SUMMARY_NAME,
    Buckets,
    RawKey,
    folders_between,
    host_of_prefix,
    hour_in_key,
    parse_raw_key,
    parse_stale_marker_key,
    parse_summary_key,
    raw_host_prefix,
    raw_period_prefix,
    summary_dir,
    summary_key,
    validate_host_id,
)
from .periods import Period, periods_between
from .records import SpeedTestResult, TierSummary, decode_json
from .storebase import ObjectInfo, Store

__all__ = ["MAX_WORKERS", "KeepingStore", "RawObject", "RawRead", "SummaryCheck", "SummaryRead", "count_raw_hours",
           "fetch_many", "list_global_summaries", "list_hosts", "list_modified", "list_raw",
           "list_raw_hours", "list_raw_span", "list_stale_markers", "list_summary_keys", "map_listings", "parse_result",
           "parse_summary", "read_objects", "read_results", "read_summaries", "read_summary_objects"]

#: Parallel GETs per read (the store's connection pool is sized to match).
MAX_WORKERS = 16

#: A caller's own condition on a summary, beyond the contract: ``check(data, key)`` raises
#: :class:`~speedlab.errors.InvalidRecord` (or ``TypeError``/``ValueError``/...) when unmet. The
#: rollup's: the summary can be merged at its sketch ``alpha``.
SummaryCheck = Callable[[dict, str], object]


@dataclass
class RawObject:
    """One raw-result object found in a listing: where it is and what its key says."""

    info: ObjectInfo
    key: RawKey


@dataclass
class RawRead:
    """The outcome of reading raw results.

    Attributes
    ----------
    results : list of (key, SpeedTestResult)
        Valid records, sorted by key.
    rejected : list of (key, reason)
        Objects that could not be used (corrupt JSON, invalid record, a record whose host or
        slot disagrees with its key, a key outside the layout) with why.
    newest_modified : datetime or None
        The latest ``modified`` time of any object read (for staleness checks).
    objects : int
        How many objects were listed in the period.
    """

    results: list[tuple[str, SpeedTestResult]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    newest_modified: datetime | None = None
    objects: int = 0
    #: Objects the store failed to return (also in ``rejected``): not bad data, a failed read.
    unreadable: list[tuple[str, Exception]] = field(default_factory=list)


def list_hosts(store: Store, buckets: Buckets = Buckets()) -> list[str]:
    """Every host with raw results in the main bucket (``host=…/`` prefixes), sorted.

    Prefixes that are not valid host ids are left out (they cannot be speedlab's).
    """
    hosts = []
    for prefix in store.list_prefixes(buckets.raw, HOSTS_PREFIX):
        try:
            hosts.append(validate_host_id(host_of_prefix(prefix)))
        except InvalidHostId:
            continue
    return hosts


def list_raw(store: Store, buckets: Buckets, host_id: str, period: Period | None = None
             ) -> tuple[list[RawObject], list[tuple[str, str]]]:
    """List one host's raw-result objects, optionally only those whose slot is in ``period``.

    Returns
    -------
    (objects, rejected)
        ``objects`` sorted by key; ``rejected`` holds keys under the host that do not follow
        the layout, with the reason.
    """
    prefix = raw_period_prefix(host_id, period) if period else raw_host_prefix(host_id)
    return _raw_objects(store.list(buckets.raw, prefix),
                        None if period is None else lambda key: period.contains(key.slot(period.zone)))


def _raw_objects(infos: Iterable[ObjectInfo], keep: Callable[[RawKey], bool] | None
                 ) -> tuple[list[RawObject], list[tuple[str, str]]]:
    """The listed raw objects whose key follows the layout (and ``keep`` keeps), and the others'
    keys with the reason."""
    found, rejected = [], []
    for info in infos:
        try:
            key = parse_raw_key(info.key)
        except (LayoutError, InvalidHostId) as exc:
            rejected.append((info.key, str(exc)))
            continue
        if keep is None or keep(key):
            found.append(RawObject(info, key))
    return found, rejected


def list_raw_span(store: Store, buckets: Buckets, host_id: str, first: Period, last: Period
                  ) -> tuple[list[RawObject], list[tuple[str, str]]]:
    """One host's raw-result objects whose slot is in the hours ``first`` .. ``last``, from one
    listing of that key range (S3's ``StartAfter``: one request per 1,000 keys, however many
    hours or days the span crosses), as :func:`list_raw` gives them."""
    span = folders_between(raw_period_prefix(host_id, first), raw_period_prefix(host_id, last))
    return _raw_objects(store.list(buckets.raw, raw_host_prefix(host_id) + "year=", **span),
                        lambda key: first.start <= key.slot(first.zone) < last.end)


def map_listings(store: Store, fn, items: Sequence, pool: ThreadPoolExecutor | None = None) -> list:
    """``[fn(item) for item in items]``, listings of ``store``: in ``pool`` (default a new one of
    up to :data:`MAX_WORKERS`) for a remote store, in this thread for a local folder (a listing
    there is Python work that threads only contend for: 1.7x less time for a year's raw months)."""
    if store.local_root is not None or len(items) <= 1:
        return [fn(item) for item in items]
    if pool is not None:
        return list(pool.map(fn, items))
    with ThreadPoolExecutor(min(MAX_WORKERS, len(items))) as own:
        return list(own.map(fn, items))


def fetch_many(store: Store, bucket: str, keys: Sequence[str], max_workers: int = MAX_WORKERS,
               executor: Executor | None = None) -> dict[str, bytes | Exception]:
    """GET many objects in parallel; each value is the bytes or the exception it raised.

    :class:`~speedlab.errors.StoreUnavailable` is raised rather than returned when every
    request failed that way (the store is down: the caller should stop, not count rejects).
    ``executor``: a long-lived pool to use instead of starting one per call (batch jobs).
    """
    def one(key: str):
        try:
            return key, store.get(bucket, key)
        except Exception as exc:  # returned, so one bad object never stops the rest
            return key, exc

    if not keys:
        return {}
    if len(keys) == 1:
        out = dict([one(keys[0])])
    elif executor is not None:
        out = dict(executor.map(one, keys))
    else:
        with ThreadPoolExecutor(min(max_workers, len(keys))) as pool:
            out = dict(pool.map(one, keys))
    errors = [v for v in out.values() if isinstance(v, StoreUnavailable)]
    if errors and len(errors) == len(out):
        raise errors[0]
    return out


def parse_result(key: str, body: bytes, raw: RawKey | None = None) -> SpeedTestResult:
    """Validate one raw object and check it belongs where it is stored.

    Raises
    ------
    InvalidRecord
        If the JSON is corrupt, the record invalid, or its host/slot disagree with the key.
    """
    record = SpeedTestResult.from_json(body, key)
    raw = raw or parse_raw_key(key)
    if record.host_id != raw.host_id:
        raise InvalidRecord(f"record says host {record.host_id!r} but is stored under host={raw.host_id} in {key}")
    slot = record.slot_start
    if slot.replace(tzinfo=None) != raw.slot_local:
        raise InvalidRecord(f"record slot {record.slot} disagrees with its key's hour/minute in {key}")
    return record


def read_results(store: Store, buckets: Buckets, period: Period,
                 hosts: Iterable[str] | None = None) -> RawRead:
    """Read and validate every raw result of ``hosts`` (default: all) whose slot is in ``period``."""
    objects: list[RawObject] = []
    listing_rejects: list[tuple[str, str]] = []
    for host in (list(hosts) if hosts is not None else list_hosts(store, buckets)):
        found, rejected = list_raw(store, buckets, host, period)
        objects.extend(found)
        listing_rejects.extend(rejected)
    out = read_objects(store, buckets, objects)
    out.rejected[:0] = listing_rejects
    out.objects += len(listing_rejects)
    return out


def read_objects(store: Store, buckets: Buckets, objects: Sequence[RawObject],
                 max_workers: int = MAX_WORKERS, executor: Executor | None = None) -> RawRead:
    """GET and validate already-listed raw objects in parallel (the second half of
    :func:`read_results`, for callers that list once and read in batches)."""
    out = RawRead(objects=len(objects))
    bodies = fetch_many(store, buckets.raw, [o.info.key for o in objects], max_workers, executor)
    for obj in objects:
        key = obj.info.key
        if out.newest_modified is None or obj.info.modified > out.newest_modified:
            out.newest_modified = obj.info.modified
        body = bodies[key]
        if isinstance(body, ObjectNotFound):
            continue  # deleted between listing and reading: it is no longer data
        if isinstance(body, Exception):
            out.rejected.append((key, f"could not read: {body}"))
            out.unreadable.append((key, body))
            continue
        try:
            out.results.append((key, parse_result(key, body, obj.key)))
        except InvalidRecord as exc:
            out.rejected.append((key, str(exc)))
    out.results.sort(key=lambda item: item[0])
    return out


# ------------------------------------------------------------------------------- summaries

def parse_summary(body: bytes, key: str, check: SummaryCheck | None = None
                  ) -> tuple[dict, None] | tuple[None, str]:
    """The one validity decision of a stored summary: the dashboard, the rollup and ``latest``
    all read summaries through it.

    A summary is usable when it is JSON, a JSON object, keeps
    :meth:`~speedlab.records.TierSummary.from_dict`'s rules (schema version, field types,
    counts that are not negative, ...) and passes the caller's ``check``, if any.

    Returns
    -------
    (data, None) or (None, reason)
        The decoded summary, or why it cannot be used, naming ``key``. Never raises for bad
        content.
    """
    try:
        data = decode_json(body, key)
        TierSummary.from_dict(data, key)
        if check is not None:
            check(data, key)
    except InvalidRecord as exc:
        return None, str(exc)
    except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError) as exc:
        return None, f"not a usable summary in {key}: {type(exc).__name__}: {exc}"
    return data, None


@dataclass
class SummaryRead:
    """The outcome of reading summaries by key; a key in none of the three has no summary.

    Attributes
    ----------
    found : dict
        key -> the usable summary (decoded JSON object).
    rejected : dict
        key -> why its content is unusable (:func:`parse_summary`).
    failed : dict
        key -> the exception the store raised reading it (not :class:`ObjectNotFound`).
    """

    found: dict[str, dict] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    failed: dict[str, Exception] = field(default_factory=dict)


def read_summary_objects(store: Store, bucket: str, keys: Sequence[str], check: SummaryCheck | None = None,
                         max_workers: int = MAX_WORKERS, executor: Executor | None = None) -> SummaryRead:
    """GET the summaries at ``keys`` in parallel and judge each with :func:`parse_summary`.

    Raises
    ------
    StoreUnavailable
        When every request failed that way (see :func:`fetch_many`).
    """
    out = SummaryRead()
    for key, body in fetch_many(store, bucket, list(keys), max_workers, executor).items():
        if isinstance(body, ObjectNotFound):
            continue
        if isinstance(body, Exception):
            out.failed[key] = body
            continue
        data, why = parse_summary(body, key, check)
        if data is not None:
            out.found[key] = data
        else:
            out.rejected[key] = str(why)
    return out


def read_summaries(store: Store, buckets: Buckets, periods: Sequence[Period],
                   host_id: str | None = None, max_workers: int = MAX_WORKERS
                   ) -> tuple[dict[str, dict], list[tuple[str, str]]]:
    """Fetch the summaries of ``periods`` (one tier) for ``host_id`` (``None``: all hosts).

    Returns
    -------
    (summaries, rejected)
        ``summaries`` maps period label -> decoded JSON object for the periods that have a
        usable one (:func:`parse_summary`); missing summaries are simply absent; ``rejected``
        lists unusable or unreadable ones with the reason.
    """
    if not periods:
        return {}, []
    tier = periods[0].tier
    keys = {summary_key(p, host_id): p.label for p in periods}
    read = read_summary_objects(store, buckets.for_tier(tier), list(keys), max_workers=max_workers)
    rejected = [(key, f"could not read: {read.failed[key]}" if key in read.failed else read.rejected[key])
                for key in keys if key in read.failed or key in read.rejected]
    return {keys[key]: data for key, data in read.found.items()}, rejected


# ------------------------------------------------------------------------------- inventories

def list_raw_hours(store: Store, buckets: Buckets, host: str, day: Period, labels: set[str]
                   ) -> tuple[dict[str, list[RawObject]], dict[tuple[str, str], list[ObjectInfo]],
                              dict[str, list[tuple[str, str]]]]:
    """One listing of ``host``'s raw objects of ``day``, kept for the hours in ``labels``.

    Returns
    -------
    (objects, infos, rejected)
        By hour label: the objects whose key follows the layout; by ``(label, host)`` every
        object listed in the hour (the rollup's provenance counts them all); by label the keys
        outside the layout, with the reason.
    """
    objects: dict[str, list[RawObject]] = defaultdict(list)
    infos: dict[tuple[str, str], list[ObjectInfo]] = defaultdict(list)
    rejected: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for info in store.list(buckets.raw, raw_period_prefix(host, day)):
        label = hour_in_key(info.key)
        if label is None or label not in labels:
            continue
        infos[(label, host)].append(info)
        try:
            objects[label].append(RawObject(info, parse_raw_key(info.key)))
        except (LayoutError, InvalidHostId) as exc:
            rejected[label].append((info.key, str(exc)))
    return objects, infos, rejected


def count_raw_hours(store: Store, buckets: Buckets, hosts: Sequence[str], start: datetime,
                    now: datetime, tz: str | ZoneInfo) -> dict[str, tuple[int, datetime]]:
    """Raw objects per hour label (all hosts) in the months from ``start`` to ``now``:
    ``label -> (how many, the newest modified time)`` (listings only, 8 in parallel)."""
    counts: Counter = Counter()
    newest: dict[str, datetime] = {}
    months = periods_between("monthly", start, now, tz)

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
    return {label: (counts[label], newest[label]) for label in counts}


def list_global_summaries(store: Store, bucket: str, tier: str) -> dict[str, datetime]:
    """The all-hosts ``tier`` summaries in ``bucket``: period label -> modified time."""
    out = {}
    for info in store.list(bucket, GLOBAL_SUMMARY_YEARS_PREFIX):
        try:
            parsed = parse_summary_key(info.key)
        except (LayoutError, InvalidHostId):
            continue
        if parsed.tier == tier and parsed.host_id is None and parsed.name == SUMMARY_NAME:
            out[parsed.label] = info.modified
    return out


def list_summary_keys(store: Store, bucket: str, period: Period, host_id: str | None = None) -> list[str]:
    """Every key under ``period``'s summary folder of ``host_id`` (a month's folder holds its
    ``day=``/``hour=`` folders)."""
    return [info.key for info in store.list(bucket, summary_dir(period, host_id))]


def list_modified(store: Store, bucket: str, keys: Iterable[str]) -> dict[str, datetime]:
    """The modified time of each of ``keys`` that exists (one listing per top-level folder
    group of the keys, not one request per key)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        groups["/".join(key.split("/")[:3])].append(key)
    wanted = set(k for g in groups.values() for k in g)
    out = {}
    for group in groups.values():
        for info in store.list(bucket, commonprefix(group)):  # noqa: RUF071 - a string prefix to list
            if info.key in wanted:
                out[info.key] = info.modified
    return out


def list_stale_markers(store: Store, buckets: Buckets) -> list[tuple[str, str]]:
    """The stale markers in the hourly bucket: ``(key, hour label)`` (the label as written,
    still to be checked); keys under ``stale/`` that name no hour are left out."""
    found = []
    for info in store.list(buckets.hourly, STALE_PREFIX):
        label = parse_stale_marker_key(info.key)
        if label is not None:
            found.append((info.key, label))
    return found


class KeepingStore:
    """A store keeping the bytes of each GET in ``kept`` (raw bodies a table update then need not
    read again: :meth:`speedlab.roller.Roller._roll_hours`)."""

    def __init__(self, store: Store, kept: dict[str, bytes]) -> None:
        self.store, self.kept = store, kept

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def get(self, bucket: str, key: str) -> bytes:
        body = self.store.get(bucket, key)
        self.kept[key] = body
        return body
