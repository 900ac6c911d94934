"""A store wrapper that counts requests by kind: what a rollup reports and the benchmarks measure.

:class:`CountingStore` is a backend like any other (fsspec's wrapper filesystems are the
model): it holds another store and forwards every call to it, counting each request on the
way. It does no I/O of its own.
"""

from __future__ import annotations

import builtins
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from .storebase import ObjectInfo, Store

__all__ = ["CountingStore"]


class CountingStore:
    """A store wrapper that counts requests by kind (thread-safe), for reports and benchmarks.

    ``list``/``list_prefixes`` are counted once per call and, in ``*_pages``, once per 1,000
    keys returned (what S3 bills as requests). Wrapping a ``CountingStore`` again shares its
    counts. Every method of the :class:`~speedlab.storebase.Store` protocol has its counted method
    here; any other attribute (a later protocol method, a backend's own ``root``) is the inner
    store's, forwarded uncounted.
    """

    def __init__(self, store: Store) -> None:
        self.inner: Store = store.inner if isinstance(store, CountingStore) else store
        self.url = store.url
        self.counts: Counter = store.counts if isinstance(store, CountingStore) else Counter()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CountingStore({self.inner!r})"

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.counts[kind] += n

    @property
    def requests(self) -> int:
        """GET + PUT + DELETE + list pages + other calls."""
        return sum(n for kind, n in self.counts.items() if kind not in ("list", "list_prefixes"))

    def get(self, bucket: str, key: str) -> bytes:
        self._count("get")
        return self.inner.get(bucket, key)

    def put(self, bucket: str, key: str, data: bytes) -> str | None:
        self._count("put")
        return self.inner.put(bucket, key, data)

    def put_deferred(self, bucket: str, key: str, data: bytes) -> str | None:
        """The inner store's ``put_deferred`` (atomic now, durable at :meth:`sync_writes`; see
        :meth:`speedlab.store.LocalStore.put_deferred`), or its ``put`` for a backend without one."""
        self._count("put")
        deferred = getattr(self.inner, "put_deferred", None)
        return deferred(bucket, key, data) if deferred is not None else self.inner.put(bucket, key, data)

    def sync_writes(self) -> None:
        """The inner store's ``sync_writes`` (not a request: uncounted); nothing for a backend
        without one (its writes are durable when they return)."""
        sync = getattr(self.inner, "sync_writes", None)
        if sync is not None:
            sync()

    def put_if_absent(self, bucket: str, key: str, data: bytes) -> bool:
        self._count("put")
        return self.inner.put_if_absent(bucket, key, data)

    def get_versioned(self, bucket: str, key: str) -> tuple[bytes, str | None]:
        self._count("get")
        return self.inner.get_versioned(bucket, key)

    def put_if_version(self, bucket: str, key: str, data: bytes, version: str | None) -> bool:
        self._count("put")
        return self.inner.put_if_version(bucket, key, data, version)

    def list(self, bucket: str, prefix: str = "", *, start_after: str = "",
             before: str | None = None) -> Iterator[ObjectInfo]:
        out = builtins.list(self.inner.list(bucket, prefix, start_after=start_after, before=before))
        self._count("list")
        self._count("list_pages", max(1, -(-len(out) // 1000)))
        return iter(out)

    def list_prefixes(self, bucket: str, prefix: str = "") -> builtins.list[str]:
        out = self.inner.list_prefixes(bucket, prefix)
        self._count("list_prefixes")
        self._count("list_pages", max(1, -(-len(out) // 1000)))
        return out

    def delete(self, bucket: str, key: str) -> None:
        self._count("delete")
        self.inner.delete(bucket, key)

    def bucket_exists(self, bucket: str) -> bool:
        self._count("head")
        return self.inner.bucket_exists(bucket)

    def create_bucket(self, bucket: str) -> bool:
        self._count("create")
        return self.inner.create_bucket(bucket)
