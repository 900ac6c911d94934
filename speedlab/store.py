"""The local storage backend, and the URL that picks a backend.

``(bucket, key) -> bytes`` is all a store knows (the contract, :class:`~speedlab.storebase.Store`
and :class:`~speedlab.storebase.ObjectInfo`, is in :mod:`speedlab.storebase`); which bucket and
key hold what is :mod:`speedlab.layout`'s business. Two backends:

* :class:`LocalStore` (``file:///path`` or a plain path) — the embedded default. A root folder
  holds one sub-folder per bucket (``<root>/vd-speed-test/host=…/…``). Writes are atomic (temp
  file, fsync, rename), so a crash never leaves half a JSON object; the conditional put is an
  exclusive hard link, so exactly one of several racing writers wins. A writer killed between
  the two (``kill -9``) leaves its ``.speedlab-tmp-*`` file: listings never return one, and one
  older than :attr:`LocalStore.TEMP_MAX_AGE_S` is removed when a listing or a write meets it.
* :class:`~speedlab.store_s3.S3Store` (``s3://``, optionally ``s3://?endpoint_url=http://host:port&region=…``)
  through boto3, in :mod:`speedlab.store_s3`: paginated listings, ``put_object(IfNoneMatch="*")``
  as the conditional put, botocore's ``standard`` retry mode, and errors that say what to do.

Compare-and-swap: :meth:`Store.get_versioned` returns an object with its version (S3's ETag;
locally :meth:`LocalStore.version_of`), :meth:`Store.put_if_version` writes only if it is still
that version; listings carry the same token (:attr:`ObjectInfo.version`).

:data:`BACKENDS` maps a URL scheme to its class; :func:`open_store` turns a URL into a store.
Listings are never cached: every call asks the backend.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import os
import secrets
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import (
    ConfigError,
    ObjectNotFound,
    StoreError,
    StoreUnavailable,
)
from .masking import mask_secrets
from .store_s3 import S3Store
from .storebase import ObjectInfo, Store

__all__ = ["BACKENDS", "LocalStore", "check_store_url", "open_store"]


# ============================================================================ local

class LocalStore:
    """A folder per bucket under ``root``; see the module docstring.

    Parameters
    ----------
    root : str or Path
        The folder holding the buckets. Buckets are created on first write.
    durable : bool
        fsync every write (default). ``False`` keeps writes atomic (temp file and rename or
        link) but skips the fsyncs: for data that can be made again, such as
        ``speedlab demo``'s, where the fsyncs would cost most of the time.
    """

    _TMP = ".speedlab-tmp-"
    #: A temporary file older than this [s] belongs to a writer that died (kill -9): removed.
    TEMP_MAX_AGE_S = 600.0

    def __init__(self, root: str | os.PathLike, durable: bool = True) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = self.root.as_uri()
        self.durable = durable
        self._token = secrets.token_hex(4)  # temporary files' names: this store object's writes
        self._serial = itertools.count()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    @property
    def local_root(self) -> Path:
        """The folder holding the buckets (a capability: a remote store has ``None``)."""
        return self.root

    def _path(self, bucket: str, key: str) -> Path:
        if not bucket or "/" in bucket or bucket in (".", ".."):
            raise StoreError(f"invalid bucket name {bucket!r}")
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise StoreError(f"invalid key {key!r}: keys are relative, without '.', '..' or '//'")
        return self.root / bucket / Path(*parts)

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise StoreUnavailable(f"local store folder {self.root} does not exist or is not a folder: "
                                   "create it, or point --store / SPEEDLAB_STORE elsewhere")

    def get(self, bucket: str, key: str) -> bytes:
        path = self._path(bucket, key)
        try:
            return self._read(path)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(f"no object {key!r} in bucket {bucket!r} of {self.url}") from None
        except IsADirectoryError:
            raise ObjectNotFound(f"{key!r} in bucket {bucket!r} is a folder, not an object") from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {path}: {exc.strerror}") from None

    @staticmethod
    def _read(path: Path) -> bytes:
        """A file's bytes in 5 system calls (``Path.read_bytes`` makes 8: a buffered file object
        asks whether it is a terminal and where it is): open, size, read, read to the end, close."""
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
        try:
            chunks = [os.read(fd, os.fstat(fd).st_size + 1)]
            while chunks[-1]:  # until the end, however the file changed since its size was taken
                chunks.append(os.read(fd, 1 << 16))
        finally:
            os.close(fd)
        return chunks[0] if len(chunks) == 2 else b"".join(chunks)

    def _write_temp(self, path: Path, data: bytes, sync: bool = True) -> tuple[Path, bool]:
        """The temporary file holding ``data`` beside ``path``, and whether its folder was made."""
        try:
            fd, tmp, made = self._open_temp(str(path.parent))
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {path}: {exc.strerror or exc}") from None
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view):]
            if self.durable and sync:
                os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):  # half a file is nobody's
                os.unlink(tmp)
            raise StoreUnavailable(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        return Path(tmp), made

    def _open_temp(self, folder: str) -> tuple[int, str, bool]:
        """A new temporary file in ``folder`` (made if missing; the third value), opened for writing: what
        :func:`tempfile.mkstemp` gives (mode 0600, never an existing file), named by process,
        a per-store token and a counter instead of a random draw, and the folder made only when
        the first open finds it missing (``mkdir`` and ``mkstemp`` were ~6 % of a backfill from JSON)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        made = False
        while True:
            name = os.path.join(folder, f"{self._TMP}{os.getpid()}-{self._token}-{next(self._serial)}")
            try:
                return os.open(name, flags, 0o600), name, made
            except FileExistsError:  # another writer's, by chance: the next number
                continue
            except FileNotFoundError:
                if made:
                    raise
                os.makedirs(folder, exist_ok=True)
                made = True

    def _remove_if_stale(self, path: str | os.PathLike, now_s: float | None = None) -> bool:
        """Remove the temporary file ``path`` if it is older than :attr:`TEMP_MAX_AGE_S` (its
        writer died); a younger one may belong to a write in progress. Best effort."""
        try:
            if (now_s or time.time()) - os.stat(path).st_mtime <= self.TEMP_MAX_AGE_S:
                return False
            os.unlink(path)
            return True
        except OSError:  # gone already, or not ours to remove
            return False

    def _sweep_folder(self, folder: Path) -> None:
        """Remove stale temporary files in ``folder`` (the one a write just went to)."""
        try:
            with os.scandir(folder) as entries:
                stale = [e.path for e in entries if e.name.startswith(self._TMP)]
        except OSError:
            return
        now_s = time.time()
        for path in stale:
            self._remove_if_stale(path, now_s)

    def _sync_dir(self, folder: Path) -> None:
        if not self.durable:
            return
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def put(self, bucket: str, key: str, data: bytes) -> str:
        return self._put(bucket, key, data, sync=True)

    def put_deferred(self, bucket: str, key: str, data: bytes) -> str:
        """:meth:`put` without its two fsyncs, for a bulk writer (a backfill): atomic at once (a
        temporary file renamed into place: no reader, and no crash of the writing process, ever
        leaves half an object), durable once :meth:`sync_writes` returns, which the writer calls
        once per batch before it reports the batch done. A power cut before that may lose
        (or leave empty) objects of the batch; running the writer again rewrites them."""
        return self._put(bucket, key, data, sync=False)

    def sync_writes(self) -> None:
        """Make every write so far durable: one ``syncfs`` of the store's file system (``sync``
        where there is no ``syncfs``). Nothing to do for a store with ``durable=False``."""
        if not self.durable:
            return
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(self.root, os.O_RDONLY)
            try:
                if libc.syncfs(fd) == 0:
                    return
            finally:
                os.close(fd)
        except (OSError, AttributeError):  # no syncfs here (not Linux), or no root folder
            pass
        os.sync()

    def _put(self, bucket: str, key: str, data: bytes, sync: bool) -> str:
        path = self._path(bucket, key)
        tmp, made = self._write_temp(path, data, sync)
        try:
            # the version of exactly the file written: a rename keeps its mtime, size and inode
            # (a stat after the rename could see another writer's file)
            version = self.version_of(os.stat(tmp))
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if path.is_dir():  # not an outage: a folder where this object belongs, left by hand
                raise StoreUnavailable(f"cannot write {path}: a folder stands where this object belongs; "
                                       "move that folder out of the store") from None
            raise StoreUnavailable(f"cannot write {path}: {exc.strerror}") from None
        if sync:
            self._sync_dir(path.parent)
        if not made:  # a folder this write made holds no stale temporary file
            self._sweep_folder(path.parent)
        return version

    def put_if_absent(self, bucket: str, key: str, data: bytes) -> bool:
        path = self._path(bucket, key)
        tmp, _ = self._write_temp(path, data)
        try:
            os.link(tmp, path)  # atomic, fails if the name exists: the local If-None-Match
        except FileExistsError:
            return False
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {path}: {exc.strerror}") from None
        finally:
            tmp.unlink(missing_ok=True)
        self._sync_dir(path.parent)
        self._sweep_folder(path.parent)
        return True

    @staticmethod
    def version_of(st: os.stat_result) -> str:
        """A file's version: ``mtime_ns-size-inode`` [hex]. Every write makes a new file (new inode);
        :meth:`put_if_version` also moves the mtime strictly forward, so its versions never repeat."""
        return f"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}"

    def get_versioned(self, bucket: str, key: str) -> tuple[bytes, str | None]:
        path = self._path(bucket, key)
        try:
            with open(path, "rb") as handle:  # the version of exactly the file read
                return handle.read(), self.version_of(os.fstat(handle.fileno()))
        except (FileNotFoundError, NotADirectoryError):
            return b"", None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {path}: {exc.strerror}") from None

    def put_if_version(self, bucket: str, key: str, data: bytes, version: str | None) -> bool:
        """Compare and swap under an exclusive ``flock`` on the object's folder (taken by this
        method only: a plain :meth:`put` does not wait for it)."""
        import fcntl  # POSIX only: imported here so that the rest of the store works everywhere
        path = self._path(bucket, key)
        tmp, _ = self._write_temp(path, data)
        folder = -1
        try:
            folder = os.open(path.parent, os.O_RDONLY)
            fcntl.flock(folder, fcntl.LOCK_EX)  # released by closing
            st = os.stat(path) if path.exists() else None
            if (st and self.version_of(st)) != version:
                return False
            if st is not None:
                mtime_ns = max(time.time_ns(), st.st_mtime_ns + 1)
                os.utime(tmp, ns=(mtime_ns, mtime_ns))
            os.replace(tmp, path)
            self._sync_dir(path.parent)
            return True
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
            if folder >= 0:
                os.close(folder)

    def list(self, bucket: str, prefix: str = "", *, start_after: str = "",
             before: str | None = None) -> Iterator[ObjectInfo]:
        self._check_root()
        base = self.root / bucket
        if not base.is_dir():
            return iter(())
        folder_part = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = base / folder_part if folder_part else base
        if not start.is_dir():
            return iter(())
        found: builtins.list[ObjectInfo] = []
        self._scan(str(start), folder_part + "/" if folder_part else "", prefix, found, (start_after, before))
        found.sort(key=lambda info: info.key)
        return iter(found)

    def _scan(self, folder: str, rel_dir: str, prefix: str, found: builtins.list[ObjectInfo],
              span: tuple[str, str | None] = ("", None)) -> None:
        """The objects under ``folder`` (key prefix ``rel_dir``) whose keys start with ``prefix``
        and lie in ``span`` (after its first, before its second key), appended to ``found``: one
        ``scandir`` per folder and one ``stat`` per object (the raw layout has a folder per
        result); a folder wholly outside ``span`` is not entered, nor symbolic links to folders."""
        after, before = span
        try:
            entries = os.scandir(folder)
        except OSError:  # gone or unreadable while listing
            return
        with entries:
            for entry in entries:
                key = rel_dir + entry.name
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    continue
                if is_dir:
                    sub = key + "/"
                    if (not entry.is_symlink() and (sub.startswith(prefix) or prefix.startswith(sub))
                            and (before is None or sub < before)
                            and (sub >= after or after.startswith(sub))):
                        self._scan(entry.path, sub, prefix, found, span)
                    continue
                if entry.name.startswith(self._TMP):  # never listed; removed once its writer is surely dead
                    self._remove_if_stale(entry.path)
                    continue
                if not key.startswith(prefix) or key <= after or (before is not None and key >= before):
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:  # deleted while listing
                    continue
                found.append(ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc),
                                        self.version_of(st)))

    def list_prefixes(self, bucket: str, prefix: str = "") -> builtins.list[str]:
        self._check_root()
        folder = self.root / bucket / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root / bucket
        if not folder.is_dir():
            return []
        base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        return sorted(base + entry.name + "/" for entry in folder.iterdir()
                      if entry.is_dir() and (base + entry.name).startswith(prefix))

    def delete(self, bucket: str, key: str) -> None:
        path = self._path(bucket, key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreUnavailable(f"cannot delete {path}: {exc.strerror}") from None
        # tidy empty folders up to the bucket, as S3 has no folders to leave behind
        parent, top = path.parent, self.root / bucket
        while parent != top and top in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def bucket_exists(self, bucket: str) -> bool:
        return (self.root / bucket).is_dir()

    def create_bucket(self, bucket: str) -> bool:
        if self.bucket_exists(bucket):
            return False
        try:
            (self.root / bucket).mkdir(parents=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create {self.root / bucket}: {exc.strerror}") from None
        return True


# ============================================================================ URL -> store

#: URL scheme -> backend class. Plain data: no registration order to get wrong.
BACKENDS: dict[str, type] = {"file": LocalStore, "s3": S3Store}


def check_store_url(url: str | os.PathLike) -> None:
    """Refuse a store URL that cannot name a store, without opening anything (pure).

    ``s3://BUCKET`` and ``s3://BUCKET/prefix`` are refused: an S3 store is the account (and
    endpoint), and which bucket holds each tier is ``[buckets]``'s business, so a bucket in
    the URL would be ignored or disagree with ``[buckets]``.

    Raises
    ------
    ConfigError
        For an unknown scheme, a ``file://`` URL naming a host, or an ``s3://`` URL naming a
        bucket.
    """
    text = os.fspath(url)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    shown = mask_secrets(text)
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        if scheme == "file" and parts.netloc not in ("", "localhost"):
            raise ConfigError(f"file URL {shown!r} names a host: write file:///absolute/path")
        return
    if scheme not in BACKENDS:
        raise ConfigError(f"unknown store {shown!r}: use a folder path, file:///path or s3:// "
                          f"(known schemes: {', '.join(sorted(BACKENDS))})")
    bucket = (parts.netloc + parts.path).strip("/")
    if bucket:
        raise ConfigError(f"store {shown!r} names a bucket ({bucket!r}), but bucket names come from "
                          f"[buckets] in speedlab.toml (raw = \"{bucket.split('/')[0]}\" ...): write the "
                          "store as s3:// or s3://?endpoint_url=...&region=...")


def _open_local_root(path: str, create: bool) -> LocalStore:
    store = LocalStore(path)
    if store.root.is_dir():
        return store
    if not create or store.root.exists():
        store._check_root()  # the one message: "... does not exist ...: create it, or point --store elsewhere"
        return store  # it appeared meanwhile
    try:
        store.root.mkdir()
    except FileNotFoundError:
        raise StoreUnavailable(f"cannot create the store folder {store.root}: its parent "
                               f"{store.root.parent} does not exist (a mistyped --store?); create the "
                               "parent first or choose another folder") from None
    except OSError as exc:
        raise StoreUnavailable(f"cannot create the store folder {store.root}: {exc.strerror}") from None
    return store


def open_store(url: str | os.PathLike, *, create: bool = False, **options) -> Store:
    """Return the store a URL names.

    Parameters
    ----------
    url : str or Path
        ``file:///abs/path``, a plain path (relative to the working folder), ``s3://`` or
        ``s3://?endpoint_url=http://127.0.0.1:9000&region=eu-west-1`` (no bucket: see
        :func:`check_store_url`).
    create : bool
        Create a missing local store folder (its parent must exist). Only commands that make
        a store on purpose pass it (``speedlab up``, ``speedlab infra apply``); everything
        else refuses a folder that does not exist, so a mistyped ``--store`` is an error
        instead of a new, empty store.
    **options
        Passed to the backend (for S3: ``endpoint_url``, ``region``, ``access_key_id``,
        ``secret_access_key``, ``session_token``, ``profile``); URL query values win.

    Raises
    ------
    ConfigError
        For an unknown scheme or an S3 URL naming a bucket.
    StoreUnavailable
        For a local store folder that does not exist (and is not to be created).
    """
    check_store_url(url)
    text = os.fspath(url)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        return _open_local_root(unquote(parts.path) if scheme == "file" else text, create)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    aliases = {"endpoint": "endpoint_url", "region_name": "region"}
    query = {aliases.get(k, k): v for k, v in query.items()}
    merged = {k: v for k, v in options.items() if v is not None}
    merged.update(query)
    allowed = {"endpoint_url", "region", "access_key_id", "secret_access_key", "session_token",
               "profile", "max_attempts", "max_pool_connections"}
    unknown = sorted(set(merged) - allowed)
    if unknown:
        raise ConfigError(f"unknown S3 store option(s) {', '.join(unknown)} in {mask_secrets(text)!r}; "
                          f"known: {', '.join(sorted(allowed))}")
    for name in ("max_attempts", "max_pool_connections"):  # URL query values arrive as text
        if name in merged:
            value = merged[name]
            try:
                merged[name] = int(value)
                if merged[name] < 1:
                    raise ValueError
            except (TypeError, ValueError):
                raise ConfigError(f"S3 store option {name}={value!r} in {mask_secrets(text)!r} must be a "
                                  "whole number of at least 1") from None
    return S3Store(**merged)

