"""Store-and-forward: results wait here while the store cannot be reached.

The spool is a folder (``<state>/spool``, see :attr:`speedlab.config.Config.state_path`)
holding one JSON file per pending result, named so that sorting the names sorts the results
by slot (oldest first)::

    20251229T0830Z+home-primary+3f9c0a1b.json     (slot start in UTC, host id, random)

Rules:

* :meth:`Spool.add` writes a temporary file, fsyncs it, renames it into place and fsyncs the
  folder before it returns: once the collector says "spooled", a power cut does not lose it.
* :meth:`Spool.flush` uploads entries oldest first through the caller's ``write`` function
  (the collector's conditional write) and removes an entry only after ``write`` returned
  (stored, or "slot already filled"). The first error that says the store is down or unusable
  (:func:`is_refusal` is false: unreachable, 5xx, missing bucket, credentials not accepted at
  all) stops the flush and leaves the rest in place for the next run.
* An entry that cannot be read back as a valid record (truncated, corrupt, wrong schema), or
  that the store refuses on its own (:func:`is_refusal`: access denied to its key, e.g. spooled
  under another host id; an invalid key; another 4xx), is moved to ``spool/rejected/`` with its
  reason appended to ``spool/rejected/reasons.jsonl``, and reported; it never blocks the
  entries behind it. Once the cause is fixed, moving the file back into the spool retries it.
* The spool holds at most ``max_entries``. Adding to a full spool drops the oldest entries;
  each drop is reported to the caller and appended to ``spool/dropped.jsonl`` with the
  dropped result's host, slot and speeds, so no drop is silent.

``+`` cannot appear in a host id, so the names split unambiguously. Several processes may
flush the same spool at once: the conditional write makes a double upload harmless, and an
entry that another process removed first is skipped.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import BucketNotFound, CredentialsInvalid, InvalidRecord, SpoolError, StoreError, StoreUnavailable
from .records import SpeedTestResult, decode_json
from .settings import DEFAULT_MAX_ENTRIES
from .store import LocalStore

__all__ = ["FlushReport", "Spool", "SpoolError", "is_refusal",
           "entry_name"]

_TMP = LocalStore._TMP  # temporary files of an add in progress


@dataclass
class FlushReport:
    """What one :meth:`Spool.flush` did.

    Attributes
    ----------
    uploaded : list of str
        Entry names the store accepted.
    already_filled : list of str
        Entry names whose slot the store already held (removed from the spool).
    rejected : list of str
        Paths of corrupt entries moved to ``spool/rejected/``.
    refused : list of str
        Paths of entries the store refused (:func:`is_refusal`), moved to ``spool/rejected/``.
    reasons : dict
        Why each entry in ``rejected`` and ``refused`` was set aside (path -> reason).
    remaining : int
        Entries still waiting.
    error : str or None
        The store error that stopped the flush, if any.
    """

    uploaded: list[str] = field(default_factory=list)
    already_filled: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    remaining: int = 0
    error: str | None = None

    @property
    def flushed(self) -> int:
        """Entries that left the spool because the store has their slot filled now."""
        return len(self.uploaded) + len(self.already_filled)

    @property
    def ok(self) -> bool:
        """False when an entry was set aside (corrupt, or refused by the store)."""
        return not self.rejected and not self.refused

    def to_dict(self) -> dict:
        """Plain data for JSON output and logs."""
        return {"uploaded": len(self.uploaded), "already_filled": len(self.already_filled),
                "rejected": self.rejected,
                "refused": [{"path": path, "reason": self.reasons.get(path, "")} for path in self.refused],
                "remaining": self.remaining, "error": self.error}

    def to_text(self) -> str:
        """One line for people."""
        return (f"spool: {len(self.uploaded)} uploaded, {len(self.already_filled)} already filled, "
                f"{len(self.rejected)} rejected, {len(self.refused)} refused by the store, "
                f"{self.remaining} waiting" + (f" (store: {self.error})" if self.error else ""))

    def to_warnings(self) -> list[str]:
        """One line per entry set aside (for stderr)."""
        return ([f"corrupt spool entry set aside: {path}" for path in self.rejected] +
                [f"spool entry refused by the store, set aside: {path}: {self.reasons.get(path, '')}"
                 for path in self.refused])


def entry_name(record: SpeedTestResult) -> str:
    """The spool file name of ``record`` (slot start in UTC first, so names sort by slot)."""
    slot_utc = record.slot_start.astimezone(timezone.utc)
    return f"{slot_utc:%Y%m%dT%H%MZ}+{record.host_id}+{secrets.token_hex(4)}.json"


def is_refusal(exc: StoreError) -> bool:
    """Whether the store refused this one write, rather than being down or unusable for all writes.

    A refusal (access denied to this key, an invalid key, another 4xx) sets the entry aside;
    anything else (:class:`~speedlab.errors.StoreUnavailable`: unreachable, timeouts, 5xx;
    :class:`~speedlab.errors.BucketNotFound`; :class:`~speedlab.errors.CredentialsInvalid`:
    no, unknown or expired credentials) means every entry would fail: they stay in the spool.
    """
    return not isinstance(exc, (StoreUnavailable, BucketNotFound, CredentialsInvalid))


def _parse_name(name: str) -> tuple[str, str] | None:
    """``(slot label, host id)`` from an entry name, or ``None`` for a foreign file."""
    parts = name[:-len(".json")].split("+") if name.endswith(".json") else []
    return (parts[0], parts[1]) if len(parts) == 3 else None


class Spool:
    """The pending results in ``folder``; see the module docstring.

    Parameters
    ----------
    folder : str or Path
        The spool folder (created on first write).
    max_entries : int
        How many results it holds at most.
    """

    def __init__(self, folder: str | os.PathLike, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise SpoolError(f"spool_max_entries = {max_entries!r} must be a whole number of at least 1")
        self.folder = Path(folder)
        self.max_entries = max_entries

    def __repr__(self) -> str:
        return f"Spool({str(self.folder)!r}, max_entries={self.max_entries})"

    @property
    def rejected_folder(self) -> Path:
        """Where corrupt entries are set aside."""
        return self.folder / "rejected"

    @property
    def reasons_log(self) -> Path:
        """One JSON line per entry set aside: when, which entry, ``corrupt`` or ``refused``, why."""
        return self.rejected_folder / "reasons.jsonl"

    @property
    def dropped_log(self) -> Path:
        """One JSON line per result dropped because the spool was full."""
        return self.folder / "dropped.jsonl"

    # ------------------------------------------------------------------ reading
    def entries(self) -> list[Path]:
        """Pending entries, oldest slot first."""
        try:
            names = [e.name for e in os.scandir(self.folder)
                     if e.is_file() and e.name.endswith(".json") and not e.name.startswith(_TMP)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise SpoolError(f"cannot read the spool folder {self.folder}: {exc.strerror}") from None
        return [self.folder / name for name in sorted(names)]

    def __len__(self) -> int:
        return len(self.entries())

    def holds_slot(self, host_id: str, slot_start: datetime) -> bool:
        """Whether a result of ``host_id`` for the slot starting at ``slot_start`` is waiting."""
        label = f"{slot_start.astimezone(timezone.utc):%Y%m%dT%H%MZ}"
        return any(_parse_name(p.name) == (label, host_id) for p in self.entries())

    def dropped_total(self) -> int:
        """How many results this spool has ever dropped for lack of room."""
        try:
            with open(self.dropped_log, encoding="utf-8") as handle:
                return sum(1 for line in handle if line.strip())
        except FileNotFoundError:
            return 0
        except OSError:
            return 0

    # ------------------------------------------------------------------ writing
    def add(self, record: SpeedTestResult) -> tuple[Path, list[str]]:
        """Write ``record`` durably; return its path and the names of entries dropped for room.

        Raises
        ------
        SpoolError
            If the spool folder cannot be written: the caller must then report the result
            as not saved.
        """
        path = self.folder / entry_name(record)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            dropped = self._make_room()
            # the local store's write: temporary file, fsync, rename, fsync of the folder
            LocalStore(self.folder.parent).put(self.folder.name, path.name, record.to_json().encode("utf-8"))
        except (OSError, StoreError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise SpoolError(f"cannot write the spool entry {path}: {reason}; free disk space or fix "
                             "the permissions of the state folder (state_dir)") from None
        return path, dropped

    def _make_room(self) -> list[str]:
        entries = self.entries()
        excess = len(entries) - self.max_entries + 1
        dropped = []
        for path in entries[:max(0, excess)]:
            line: dict[str, Any] = {"dropped_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "entry": path.name, "reason": f"spool full ({self.max_entries} entries)"}
            try:
                summary = decode_json(path.read_bytes())
                if isinstance(summary, dict):
                    line.update({k: summary.get(k) for k in (
                        "host_id", "slot", "status", "download_mbps", "upload_mbps", "ping_ms")})
            except (OSError, InvalidRecord):
                pass
            with open(self.dropped_log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
            path.unlink(missing_ok=True)
            dropped.append(path.name)
        return dropped

    def _reject(self, path: Path, kind: str, reason: str) -> str | None:
        target = self.rejected_folder / path.name
        try:
            self.rejected_folder.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        except FileNotFoundError:
            return None  # another flusher moved it first
        self._note_reason(target.name, kind, reason)
        return str(target)

    def _set_aside_entry(self, path: Path, kind: str, exc: Exception, into: list, report, log,
                         message: str) -> None:
        """Move a spool entry to ``rejected/`` and report it in ``into`` with its reason."""
        moved = self._reject(path, kind, str(exc))
        if moved:
            into.append(moved)
            report.reasons[moved] = str(exc)
            if log is not None:
                log.warning(f"{message}: {exc}", path=moved)

    def _note_reason(self, name: str, kind: str, reason: str) -> None:
        line = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "entry": name,
                "kind": kind, "reason": reason}
        try:
            with open(self.reasons_log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
        except OSError:
            pass  # the entry is set aside and reported to the caller; the note is a convenience

    def set_aside(self, record: SpeedTestResult, reason: str) -> Path:
        """Write ``record`` straight to ``spool/rejected/`` (the store refused it); return its path.

        Raises
        ------
        SpoolError
            If the folder cannot be written: the caller must report the result as not saved.
        """
        path = self.rejected_folder / entry_name(record)
        try:
            self.rejected_folder.mkdir(parents=True, exist_ok=True)
            LocalStore(self.folder).put(self.rejected_folder.name, path.name, record.to_json().encode("utf-8"))
        except (OSError, StoreError) as exc:
            reason_text = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise SpoolError(f"cannot write {path}: {reason_text}; free disk space or fix the permissions "
                             "of the state folder (state_dir)") from None
        self._note_reason(path.name, "refused", reason)
        return path

    # ------------------------------------------------------------------ forwarding
    def flush(self, write: Callable[[SpeedTestResult], bool], log=None) -> FlushReport:
        """Upload pending entries oldest first with ``write``; see the module docstring.

        Parameters
        ----------
        write : callable
            ``write(record) -> bool``: True when stored, False when the slot was already
            filled; raises :class:`~speedlab.errors.StoreError` when the store cannot take it.
        log : JobLog, optional
            Receives a warning per rejected or refused entry and for a store error.
        """
        report = FlushReport()
        entries = self.entries()
        for index, path in enumerate(entries):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # another process flushed it
            except OSError as exc:
                report.error = f"cannot read spool entry {path}: {exc.strerror}"
                report.remaining = len(entries) - index
                break
            try:
                stored = write(SpeedTestResult.from_json(data, source=f"spool entry {path.name}"))
            except InvalidRecord as exc:  # unreadable, or refused by the writer's validation
                self._set_aside_entry(path, "corrupt", exc, report.rejected, report, log,
                                      "corrupt spool entry set aside")
                continue
            except StoreError as exc:
                if is_refusal(exc):  # this entry only: the entries behind it still go
                    self._set_aside_entry(path, "refused", exc, report.refused, report, log,
                                          "the store refused a spool entry, set aside")
                    continue
                report.error = str(exc)
                report.remaining = len(entries) - index
                if log is not None:
                    log.warning(f"store unavailable, {report.remaining} result(s) stay in the spool: {exc}")
                break
            (report.uploaded if stored else report.already_filled).append(path.name)
            path.unlink(missing_ok=True)
        if report.error is None:
            report.remaining = len(self.entries())
        return report
