"""The rows' in-memory cache: :class:`DataCache` (a time-to-live, one load per key at a time)
and one cache per store and configuration (:func:`cache_for`), keyed as the original
dashboard's ``{data_type}_{host_id}_{mode}_{days}`` (120 s).
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .config import Config
from .storebase import Store

__all__ = ["CACHE_TTL_S", "DataCache", "cache_for", "cache_key", "clear_caches"]

CACHE_TTL_S = 120.0


def _copy(value: Any) -> Any:
    """A copy callers may change: fast for lists of flat rows (lists inside copied), else deep."""
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return [{k: (list(v) if isinstance(v, list) else copy.deepcopy(v) if isinstance(v, dict) else v)
                 for k, v in item.items()} for item in value]
    if isinstance(value, list) and all(isinstance(item, (str, int, float)) for item in value):
        return list(value)
    return copy.deepcopy(value)


def cache_key(data_type: str, host: str, mode: str, days: int) -> str:
    """The original dashboard's cache key, ``{data_type}_{host_id}_{mode}_{days}``."""
    return f"{data_type}_{host}_{mode}_{days}"


class DataCache:
    """A thread-safe in-memory cache with a time-to-live, one load per key at a time.

    Parameters
    ----------
    ttl_s : float
        How long an entry stays fresh [s].
    clock : callable
        Returns the current time [s] (``time.monotonic``; tests pass a fake).
    """

    def __init__(self, ttl_s: float = CACHE_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self._entries: dict[str, tuple[float, Any]] = {}
        self._tags: dict[str, str | None] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        """A copy of the fresh value under ``key``, or ``None``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.clock() - entry[0] >= self.ttl_s:
                del self._entries[key]
                return None
            return _copy(entry[1])

    def put(self, key: str, value: Any, host: str | None = None) -> None:
        """Store a copy of ``value`` under ``key``, tagged with its ``host`` (drops expired entries)."""
        now = self.clock()
        with self._lock:
            for old in [k for k, (t, _) in self._entries.items() if now - t >= self.ttl_s]:
                del self._entries[old]
                self._tags.pop(old, None)
            self._entries[key] = (now, _copy(value))
            self._tags[key] = host

    def get_or_load(self, key: str, load: Callable[[], Any], force_refresh: bool = False,
                    host: str | None = None) -> tuple[Any, bool]:
        """Return ``(value, from_cache)``; concurrent callers of one key share one load."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if not force_refresh:
                hit = self.get(key)
                if hit is not None:
                    self.hits += 1
                    return hit, True
            self.misses += 1
            value = load()
            self.put(key, value, host)
            return _copy(value), False

    def invalidate(self, host: str | None = None) -> int:
        """Forget every entry (or only those of ``host``); return how many were dropped."""
        with self._lock:
            doomed = [k for k in self._entries if host is None or self._tags.get(k) == host]
            for key in doomed:
                del self._entries[key]
                self._tags.pop(key, None)
            return len(doomed)

    def keys(self) -> list[str]:
        """The keys of fresh entries, sorted."""
        now = self.clock()
        with self._lock:
            return sorted(k for k, (t, _) in self._entries.items() if now - t < self.ttl_s)


_CACHES: OrderedDict[str, DataCache] = OrderedDict()
_CACHES_LOCK = threading.Lock()
_MAX_CACHES = 16


def clear_caches() -> None:
    """Forget every cached row (all stores)."""
    with _CACHES_LOCK:
        _CACHES.clear()


def cache_for(store: Store, config: Config, now: datetime | None = None) -> DataCache:
    """The cache of one store and configuration (and one pinned ``now``, if given).

    Everything that changes a row besides ``(mode, days, host)`` names the cache, so the
    keys inside stay the original ``{data_type}_{host_id}_{mode}_{days}``.
    """
    plans = sorted((h, p.download_mbps, p.upload_mbps) for h, p in config.host_plans.items())
    name = "|".join(map(str, (getattr(store, "url", repr(store)), config.timezone,
                              sorted(config.buckets.as_dict().items()), config.plan, plans,
                              config.below_expected_fraction, now.isoformat() if now else "live")))
    with _CACHES_LOCK:
        cache = _CACHES.get(name)
        if cache is None:
            cache = _CACHES[name] = DataCache()
            while len(_CACHES) > _MAX_CACHES:
                _CACHES.popitem(last=False)
        _CACHES.move_to_end(name)
        return cache
