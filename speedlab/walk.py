"""Partition walks: the ``year=/month=/day=/hour=`` folders of the store, oldest or newest first.

Keys sort chronologically within a host (``host=…/year=2025/month=202512/day=20251229/…``),
so the first or last entries of a tree are found by listing one folder per level instead of
the whole tree. :func:`walk_folders` is the one walker; ``latest`` walks newest first to the
newest entries, :func:`earliest_raw_hour` oldest first to a deployment's first raw hour (the
rollup, the backfill's clamp and ``health``'s tier checks). Listings only: nothing is read,
nothing is cached, and nothing here needs polars.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from .errors import LayoutError
from .layout import RAW_PARTITIONS, Buckets, raw_host_prefix
from .periods import parse_period
from .storebase import ObjectInfo, Store

__all__ = ["earliest_raw_hour", "newest_objects", "walk_folders"]

#: A folder level: a name prefix (``"year="``) or a pattern the folder's name (with its
#: trailing ``/``) must match whole.
Level = str | re.Pattern


def _match(level: Level, name: str) -> re.Match | bool | None:
    if isinstance(level, str):
        return name.startswith(level)
    return level.fullmatch(name)


def walk_folders(store: Store, bucket: str, prefix: str, levels: Sequence[Level], *,
                 newest_first: bool = False) -> Iterator[tuple[str, re.Match | bool]]:
    """The folders ``len(levels)`` levels below ``prefix``, depth first, in key order (or
    reversed with ``newest_first``), as ``(folder prefix, match of its last level)``.

    Lazy: each folder is listed only when the walk reaches it, so a caller that stops after
    the first few folders makes a handful of listings. A folder whose name does not fit its
    level (``aggregated/host=…/`` beside ``aggregated/year=…/``, a stray folder) is passed
    over. With no ``levels``, ``prefix`` itself is the one folder.
    """
    if not levels:
        yield prefix, True
        return
    children = store.list_prefixes(bucket, prefix)
    for child in (reversed(children) if newest_first else children):
        match = _match(levels[0], child[len(prefix):])
        if not match:
            continue
        if len(levels) == 1:
            yield child, match
        else:
            yield from walk_folders(store, bucket, child, levels[1:], newest_first=newest_first)


def newest_objects(store: Store, bucket: str, prefix: str, levels: Sequence[Level], want: int,
                   accept: Callable[[ObjectInfo], tuple | None]) -> list[tuple]:
    """Accepted objects under ``prefix``, newest folder first, stopping once ``want`` are found.

    ``accept(info)`` returns ``(sort_key, item)`` or ``None``; within a listed folder items
    come back newest first by ``sort_key``. Used by ``latest`` (and ``health`` through it).
    """
    found: list[tuple] = []
    for folder, _ in walk_folders(store, bucket, prefix, levels, newest_first=True):
        items = [item for info in store.list(bucket, folder) if (item := accept(info)) is not None]
        found.extend(sorted(items, key=lambda pair: pair[0], reverse=True))
        if len(found) >= want:
            break
    return found


def _first_hour(store: Store, bucket: str, prefix: str, tz: str | ZoneInfo) -> datetime | None:
    """The start of the first hour folder below ``prefix`` (oldest first); an hour outside the
    supported dates is passed over."""
    for _, match in walk_folders(store, bucket, prefix, RAW_PARTITIONS):
        try:
            return parse_period("hourly", match.group(1), tz).start  # type: ignore[union-attr]  # patterns match
        except LayoutError:
            continue
    return None


def earliest_raw_hour(store: Store, buckets: Buckets, hosts: Sequence[str],
                      tz: str | ZoneInfo) -> datetime | None:
    """The start of the earliest hour holding a raw result, over all ``hosts`` (a handful of
    listings per host: the oldest ``year=``, then its oldest ``month=``, ...)."""
    found = [hour for host in hosts
             if (hour := _first_hour(store, buckets.raw, raw_host_prefix(host), tz)) is not None]
    return min(found) if found else None
