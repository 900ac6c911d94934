"""A store double for what request counts cannot show: which prefixes were listed, how many GETs overlapped.

Counting requests is the library's job (:class:`speedlab.counting.CountingStore`); wrap a
:class:`SpyStore` in one to have both.
"""

from __future__ import annotations

import threading
import time

from speedlab.errors import StoreUnavailable


class SpyStore:
    """Forwards to ``inner``; logs every listed prefix and the most GETs in flight at once.

    Each GET first sleeps ``delay_s`` [s] (a slow store, so that parallel reads overlap).
    """

    def __init__(self, inner, delay_s: float = 0.0) -> None:
        self.inner, self.url, self.delay_s = inner, inner.url, delay_s
        self.listed: list[str] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()

    def __getattr__(self, name):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def get(self, bucket, key):
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay_s)
            return self.inner.get(bucket, key)
        finally:
            with self._lock:
                self.in_flight -= 1

    def list(self, bucket, prefix="", **span):
        self.listed.append(prefix)
        return self.inner.list(bucket, prefix, **span)

    def list_prefixes(self, bucket, prefix=""):
        self.listed.append(prefix)
        return self.inner.list_prefixes(bucket, prefix)


class TableWritesFail:
    """Forwards to ``inner``, but every compare-and-swap write (the tables' only write) fails with
    :class:`StoreUnavailable` (``message``): a job whose table update never lands, summaries written."""

    def __init__(self, inner, message: str = "connection reset while writing a table") -> None:
        self.inner, self.url, self.message = inner, inner.url, message

    def __getattr__(self, name):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def put_if_version(self, bucket, key, data, version):
        raise StoreUnavailable(self.message)
