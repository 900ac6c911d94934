"""The rows' cache: :class:`DataCache` (a time-to-live, one load per key at a time)
and one cache per store and configuration (:func:`cache_for`), keyed as the original
dashboard's ``{data_type}_{host_id}_{mode}_{days}`` (120 s).

In one process the cache is a dictionary. A dashboard server shares it between its kernels
(every visit gets its own kernel): :func:`speedlab.serve.launch` makes a private folder and names
it in ``$SPEEDLAB_CACHE_DIR``; :func:`cache_for` then backs each cache with
:class:`SharedEntries`, one JSON file per key in a sub-folder per store and configuration,
written atomically and fresh while its modification time is within the time-to-live. A load
holds a lock file, so two kernels asking for one key at once read the store once.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import Config
from .storebase import Store

__all__ = ["CACHE_DIR_ENV", "CACHE_TTL_S", "DataCache", "SharedEntries", "cache_for", "cache_key", "clear_caches",
           "shared_result"]

CACHE_TTL_S = 120.0
#: The environment variable naming the folder a server's kernels share their cache in.
CACHE_DIR_ENV = "SPEEDLAB_CACHE_DIR"


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


def _file_lock(path: Path) -> contextlib.AbstractContextManager:
    """An exclusive lock on ``path`` held across processes (``flock``; none where there is no fcntl)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: kernels may load one key twice at once
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def held() -> Iterator[None]:
        try:
            handle = open(path, "a+b")  # noqa: SIM115 - closed below
        except OSError:  # the folder is not there (yet, or any more): load without the lock
            handle = None
        if handle is None:
            yield
            return
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            yield
    return held()


class SharedEntries:
    """A cache layer shared by processes: one JSON file per key in ``folder``.

    A file holds ``{"key", "host", "value"}``, is written to a temporary name and renamed into
    place (a reader never sees half a file), and is fresh while ``clock() - mtime < ttl_s``.
    A value that JSON does not give back equal (tuples, datetimes, NaN) is not stored here.
    Parsed values are kept per file version (its ``mtime``), so a hit costs a ``stat``.

    Parameters
    ----------
    folder : path
        The folder of this store and configuration's entries (created on the first write; its
        parent must exist).
    ttl_s : float
        How long an entry stays fresh [s].
    clock : callable
        Returns the wall-clock time [s] that file modification times are compared with
        (``time.time``).
    """

    def __init__(self, folder: str | os.PathLike, ttl_s: float = CACHE_TTL_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(folder)
        self.ttl_s = ttl_s
        self.clock = clock
        self._parsed: dict[str, tuple[int, Any]] = {}   # key -> (mtime_ns, value)
        self._lock = threading.Lock()

    def path(self, key: str) -> Path:
        """The file of ``key`` (a hash of it: keys hold host ids and any character)."""
        return self.folder / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:32] + ".json")

    def _read(self, path: Path) -> tuple[int, dict] | None:
        try:
            with open(path, "rb") as handle:
                mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
                if self.clock() - mtime_ns / 1e9 >= self.ttl_s:
                    return None
                payload = json.loads(handle.read())
        except (OSError, ValueError):
            return None
        return (mtime_ns, payload) if isinstance(payload, dict) else None

    def get(self, key: str) -> Any | None:
        """A copy of the fresh value under ``key``, or ``None``."""
        path = self.path(key)
        try:
            mtime_ns = path.stat().st_mtime_ns
        except OSError:
            return None
        if self.clock() - mtime_ns / 1e9 >= self.ttl_s:
            return None
        with self._lock:
            parsed = self._parsed.get(key)
        if parsed is not None and parsed[0] == mtime_ns:
            return _copy(parsed[1])
        read = self._read(path)
        if read is None or read[1].get("key") != key:
            return None
        with self._lock:
            self._parsed[key] = (read[0], read[1].get("value"))
        return _copy(read[1].get("value"))

    def put(self, key: str, value: Any, host: str | None = None) -> bool:
        """Write ``value`` under ``key`` (tagged with ``host``); ``False`` if it was not stored
        (not JSON, or the folder is gone)."""
        try:
            text = json.dumps({"key": key, "host": host, "value": value}, allow_nan=False)
        except (TypeError, ValueError):
            return False
        if json.loads(text)["value"] != value:
            return False
        try:
            self.folder.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            path = self.path(key)
            os.replace(tmp, path)
            mtime_ns = path.stat().st_mtime_ns
        except OSError:
            return False
        now = self.clock()
        with self._lock:
            for old in [k for k, (t, _) in self._parsed.items() if now - t / 1e9 >= self.ttl_s]:
                del self._parsed[old]
            self._parsed[key] = (mtime_ns, _copy(value))
        return True

    def lock(self, key: str) -> contextlib.AbstractContextManager:
        """Hold ``key``'s lock file while loading it (other processes wait, then find the entry)."""
        with contextlib.suppress(OSError):  # only the sub-folder: a removed server folder stays removed
            self.folder.mkdir(exist_ok=True)
        return _file_lock(self.folder / (self.path(key).stem + ".lock"))

    def _entries(self) -> Iterator[dict]:
        for path in sorted(self.folder.glob("*.json")):
            read = self._read(path)
            if read is not None and isinstance(read[1].get("key"), str):
                yield {**read[1], "path": path}

    def keys(self) -> list[str]:
        """The keys of fresh entries, sorted."""
        return sorted(entry["key"] for entry in self._entries())

    def remove(self, host: str | None = None) -> int:
        """Delete every fresh entry (or only ``host``'s); return how many were deleted."""
        removed = 0
        for entry in self._entries():
            if host is None or entry.get("host") == host:
                with contextlib.suppress(OSError):
                    entry["path"].unlink()
                    removed += 1
        with self._lock:
            self._parsed.clear()
        return removed

    def prune(self) -> int:
        """Delete the entries that are no longer fresh (their modification time is ``ttl_s`` old);
        return how many. Entries named by a hash of their inputs (:func:`shared_result`) are never
        overwritten, so without this a server running for weeks would keep every one."""
        removed = 0
        now = self.clock()
        for path in self.folder.glob("*.json"):
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime >= self.ttl_s:
                    path.unlink()
                    removed += 1
        return removed


class DataCache:
    """A thread-safe in-memory cache with a time-to-live, one load per key at a time.

    Parameters
    ----------
    ttl_s : float
        How long an entry stays fresh [s].
    clock : callable
        Returns the current time [s] (``time.monotonic``; tests pass a fake).
    shared : SharedEntries, optional
        The layer shared with other processes (a dashboard server's kernels). Values it holds
        are read and written there; values it cannot hold (not JSON) stay in this process.
    """

    def __init__(self, ttl_s: float = CACHE_TTL_S, clock: Callable[[], float] = time.monotonic,
                 shared: SharedEntries | None = None) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.shared = shared
        self.hits = 0
        self.misses = 0
        self._entries: dict[str, tuple[float, Any]] = {}
        self._tags: dict[str, str | None] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        """A copy of the fresh value under ``key``, or ``None``."""
        if self.shared is not None:
            hit = self.shared.get(key)
            if hit is not None:
                return hit
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.clock() - entry[0] >= self.ttl_s:
                del self._entries[key]
                return None
            return _copy(entry[1])

    def put(self, key: str, value: Any, host: str | None = None) -> None:
        """Store a copy of ``value`` under ``key``, tagged with its ``host`` (drops expired entries).

        With a shared layer the value goes there (and any copy held here is dropped)."""
        if self.shared is not None and self.shared.put(key, value, host):
            with self._lock:
                self._entries.pop(key, None)
            return
        now = self.clock()
        with self._lock:
            for old in [k for k, (t, _) in self._entries.items() if now - t >= self.ttl_s]:
                del self._entries[old]
                self._tags.pop(old, None)
            self._entries[key] = (now, _copy(value))
            self._tags[key] = host

    def get_or_load(self, key: str, load: Callable[[], Any], force_refresh: bool = False,
                    host: str | None = None) -> tuple[Any, bool]:
        """Return ``(value, from_cache)``; concurrent callers of one key share one load (with a
        shared layer, callers in every process). The value is the caller's to change: a copy of
        the entry, or what ``load`` returned (the cache keeps a copy of it)."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        shared_lock = self.shared.lock(key) if self.shared is not None else contextlib.nullcontext()
        with key_lock, shared_lock:
            if not force_refresh:
                hit = self.get(key)
                if hit is not None:
                    self.hits += 1
                    return hit, True
            self.misses += 1
            value = load()
            self.put(key, value, host)  # the cache keeps a copy: the loaded value is the caller's own
            return value, False

    def invalidate(self, host: str | None = None) -> int:
        """Forget every entry (or only those of ``host``), shared ones too; return how many were dropped."""
        with self._lock:
            doomed = [k for k in self._entries if host is None or self._tags.get(k) == host]
            for key in doomed:
                del self._entries[key]
                self._tags.pop(key, None)
        return len(doomed) + (self.shared.remove(host) if self.shared is not None else 0)

    def keys(self) -> list[str]:
        """The keys of fresh entries (shared ones too), sorted."""
        now = self.clock()
        with self._lock:
            mine = {k for k, (t, _) in self._entries.items() if now - t < self.ttl_s}
        return sorted(mine | set(self.shared.keys() if self.shared is not None else ()))


def shared_result(kind: str, inputs: Any, compute: Callable[[Any], str], *,
                  shared_dir: str | os.PathLike | None = None, ttl_s: float = CACHE_TTL_S) -> str:
    """``compute(inputs)`` (a pure function of JSON ``inputs``), shared by a server's kernels for ``ttl_s``.

    A dashboard server's kernels render a view's snapshot chart (vl-convert, 0.2-0.4 s) from its
    Vega-Lite spec; a visit whose view another kernel rendered in the last ``ttl_s`` seconds
    (its rows come from the rows' cache, so its spec is the same) takes that SVG instead. The
    entry is named by ``kind`` and a hash of ``inputs``, so equal inputs find it and others never
    do. Without a shared folder (``shared_dir``, default ``$SPEEDLAB_CACHE_DIR``) it computes.
    """
    if shared_dir is None:
        shared_dir = os.environ.get(CACHE_DIR_ENV) or None
    if shared_dir is None:
        return compute(inputs)
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode("utf-8")).hexdigest()
    entries, key = SharedEntries(Path(shared_dir) / kind, ttl_s), f"{kind}_{digest}"
    hit = entries.get(key)
    if isinstance(hit, str):
        return hit
    value = compute(inputs)
    entries.put(key, value)
    entries.prune()   # a handful of files: the views drawn in the last ttl_s
    return value


_CACHES: OrderedDict[str, DataCache] = OrderedDict()
_CACHES_LOCK = threading.Lock()
_MAX_CACHES = 16


def clear_caches() -> None:
    """Forget every cached row (all stores)."""
    with _CACHES_LOCK:
        _CACHES.clear()


def cache_for(store: Store, config: Config, now: datetime | None = None,
              shared_dir: str | os.PathLike | None = None) -> DataCache:
    """The cache of one store and configuration (and one pinned ``now``, if given).

    Everything that changes a row besides ``(mode, days, host)`` names the cache, so the
    keys inside stay the original ``{data_type}_{host_id}_{mode}_{days}``. ``shared_dir``
    (default ``$SPEEDLAB_CACHE_DIR``; none: this process only) is the folder shared with other
    processes; each cache's entries live in a sub-folder named by a hash of that name, so
    entries never cross stores or configurations.
    """
    if shared_dir is None:
        shared_dir = os.environ.get(CACHE_DIR_ENV) or None
    plans = sorted((h, p.download_mbps, p.upload_mbps) for h, p in config.host_plans.items())
    name = "|".join(map(str, (getattr(store, "url", repr(store)), config.timezone,
                              sorted(config.buckets.as_dict().items()), config.plan, plans,
                              config.below_expected_fraction, now.isoformat() if now else "live")))
    folder = None
    if shared_dir is not None:
        folder = Path(shared_dir) / hashlib.sha256(name.encode("utf-8")).hexdigest()[:24]
        name = f"{name}|{folder}"
    with _CACHES_LOCK:
        cache = _CACHES.get(name)
        if cache is None:
            cache = _CACHES[name] = DataCache(shared=SharedEntries(folder) if folder is not None else None)
            while len(_CACHES) > _MAX_CACHES:
                _CACHES.popitem(last=False)
        _CACHES.move_to_end(name)
        return cache
