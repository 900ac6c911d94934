"""Reading what the collectors and aggregators wrote: hosts, raw results, summaries.

The one home for "which objects hold this period's data, fetch them in parallel, validate
them". Nothing here computes statistics. Bad objects never stop a read: each one is returned
in ``rejected`` with its key and the reason, so callers can count and log them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from .errors import InvalidHostId, InvalidRecord, LayoutError, ObjectNotFound, StoreUnavailable
from .layout import (
    HOSTS_PREFIX,
    Buckets,
    RawKey,
    host_of_prefix,
    parse_raw_key,
    raw_host_prefix,
    raw_period_prefix,
    summary_key,
    validate_host_id,
)
from .periods import Period
from .records import SpeedTestResult, decode_json
from .store import ObjectInfo, Store

#: Parallel GETs per read (the store's connection pool is sized to match).
MAX_WORKERS = 16


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
    found, rejected = [], []
    for info in store.list(buckets.raw, prefix):
        try:
            key = parse_raw_key(info.key)
        except (LayoutError, InvalidHostId) as exc:
            rejected.append((info.key, str(exc)))
            continue
        if period is not None and not period.contains(key.slot(period.zone)):
            continue
        found.append(RawObject(info, key))
    return found, rejected


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


def read_summaries(store: Store, buckets: Buckets, periods: Sequence[Period],
                   host_id: str | None = None, max_workers: int = MAX_WORKERS
                   ) -> tuple[dict[str, dict], list[tuple[str, str]]]:
    """Fetch the summaries of ``periods`` (one tier) for ``host_id`` (``None``: all hosts).

    Returns
    -------
    (summaries, rejected)
        ``summaries`` maps period label -> decoded JSON object for the periods that have one;
        missing summaries are simply absent; ``rejected`` lists corrupt ones with the reason.
    """
    if not periods:
        return {}, []
    tier = periods[0].tier
    keys = {summary_key(p, host_id): p.label for p in periods}
    bodies = fetch_many(store, buckets.for_tier(tier), list(keys), max_workers)
    found, rejected = {}, []
    for key, body in bodies.items():
        if isinstance(body, ObjectNotFound):
            continue
        if isinstance(body, Exception):
            rejected.append((key, f"could not read: {body}"))
            continue
        try:
            data = decode_json(body, key)
            if not isinstance(data, dict):
                raise InvalidRecord(f"summary must be a JSON object in {key}")
            found[keys[key]] = data
        except InvalidRecord as exc:
            rejected.append((key, str(exc)))
    return found, rejected
