"""The storage contract: what a listing returns (:class:`ObjectInfo`) and what every backend does
(the :class:`Store` protocol).

``(bucket, key) -> bytes`` is all a store knows. The backends live in :mod:`speedlab.store`
(the local folder, and the URL that picks a backend) and :mod:`speedlab.store_s3` (S3 through
boto3); both import this module and nothing imports them back from here.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["ObjectInfo", "Store"]


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object: its ``key``, ``size`` [bytes] and last ``modified`` time (UTC)."""

    key: str
    size: int
    modified: datetime
    #: The object's version as :meth:`Store.get_versioned` returns it (``None``: not known).
    version: str | None = field(default=None, compare=False)


@runtime_checkable
class Store(Protocol):
    """What every backend does. Keys use ``/``; listings come back sorted by key."""

    url: str

    @property
    def local_root(self) -> Path | None:
        """The folder holding the buckets on this machine; ``None`` for a remote store."""

    def get(self, bucket: str, key: str) -> bytes:
        """Return the object's bytes; raise :class:`ObjectNotFound` if absent."""

    def put(self, bucket: str, key: str, data: bytes) -> str | None:
        """Write (or overwrite) the object atomically; return its version, the one
        :meth:`get_versioned` and listings give (``None``: the backend cannot say)."""

    def put_if_absent(self, bucket: str, key: str, data: bytes) -> bool:
        """Write only if the key does not exist; return False (and change nothing) if it does."""

    def get_versioned(self, bucket: str, key: str) -> tuple[bytes, str | None]:
        """The object's bytes and version; ``(b"", None)`` if it does not exist."""

    def put_if_version(self, bucket: str, key: str, data: bytes, version: str | None) -> bool:
        """Write only if the object's version is still ``version`` (``None``: only if absent);
        return False (and change nothing) if it is not."""

    def list(self, bucket: str, prefix: str = "", *, start_after: str = "",
             before: str | None = None) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key; with ``start_after``
        only keys after it, with ``before`` only keys before it (a key range: S3's
        ``StartAfter``, and no page is asked for past ``before``)."""

    def list_prefixes(self, bucket: str, prefix: str = "") -> builtins.list[str]:
        """The next ``/``-level below ``prefix`` (S3's common prefixes), sorted."""

    def delete(self, bucket: str, key: str) -> None:
        """Delete the object; deleting an absent key is not an error."""

    def bucket_exists(self, bucket: str) -> bool:
        """Whether ``bucket`` exists."""

    def create_bucket(self, bucket: str) -> bool:
        """Create ``bucket`` if missing; return True if it was created."""
