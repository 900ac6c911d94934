"""``speedlab import``: another tracker's history into the store, through the collector's writer.

:func:`import_file` reads the file, parses it (:mod:`speedlab.importers`, pure), and writes each
result with :func:`speedlab.collect.store_result` (the collector's validation and conditional
write) to ``raw_key(host, slot of its timestamp)`` in the original layout.

**One result per slot, never overwritten.** A slot holds at most one result (the collector's
rule). When a file has several results in one 15-minute slot, the one
:func:`speedlab.records.slot_preference` prefers is imported (a full ``ok`` before a partial one
before a failure, then the earliest) and the others are skipped (``same_slot_in_file``). When
the store's slot is already filled, nothing is written: if the stored result *is* this one
(the same record: an earlier import of the same file) it counts as ``already_present``;
otherwise (the collector's own test, another import) the line is skipped as ``slot_taken``,
naming the object that stays. A second import of a file therefore adds nothing.

**Rollups.** Every hour that received a result is marked stale
(:func:`speedlab.stale.mark_stale`): the next ``speedlab scheduler run-due`` rolls it up again,
and with it its day, week, month and year. For years of history, ``speedlab aggregate
--backfill FROM TO`` does the same in one go.

The answer is an :class:`ImportReport` (``to_dict``/``to_text``, ``ok``): ``ok`` is false when a
line was invalid (garbage, an impossible value), a write failed or the hours could not be
marked; lines that are not results by design (the Ookla CLI's log lines), results of another
slot owner and results of another host do not make it false.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .collect import slot_objects, store_result
from .config import Config
from .errors import InvalidRecord, StoreError, StoreUnavailable, TransferError
from .importers import Parsed, Skipped, parse_import
from .joblog import JobLog
from .records import SpeedTestResult, slot_preference
from .stale import mark_stale
from .storebase import Store

__all__ = ["ImportReport", "import_file", "choose_per_slot"]

#: Skipped lines shown by :meth:`ImportReport.to_text` (``--json`` lists all).
TEXT_LIMIT = 20
#: Writes in flight at once (each is a listing and a conditional put of its own slot).
WRITERS = 8


@dataclass
class ImportReport:
    """What :func:`import_file` did.

    Attributes
    ----------
    file, format, host : str
        The file, its format and the host the results were stored for (``None``: the hosts the
        ``speedlab`` format names).
    results : int
        Results found in the file (before the one-per-slot choice).
    stored, already_present : list of str
        Keys written now; keys that already held the same result.
    skipped : list of Skipped
        Lines left out, with their line number, kind and reason, in line order.
    failed : list of (line, reason)
        Writes the store refused.
    marked_stale : list of str
        The stale markers written (one per host and hour that received a result).
    stale_error : str or None
        Why marking stopped, if it did.
    """

    file: str
    format: str
    host: str | None
    results: int = 0
    stored: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    marked_stale: list[str] = field(default_factory=list)
    stale_error: str | None = None

    @property
    def invalid(self) -> list[Skipped]:
        """Skipped lines that were bad data (garbage, impossible values)."""
        return [s for s in self.skipped if s.kind == "invalid"]

    @property
    def ok(self) -> bool:
        """False when a line was invalid, a write failed or the touched hours are not marked."""
        return not self.invalid and not self.failed and self.stale_error is None

    def to_dict(self) -> dict:
        """Plain data for ``--json``."""
        kinds: dict[str, int] = {}
        for item in self.skipped:
            kinds[item.kind] = kinds.get(item.kind, 0) + 1
        return {"file": self.file, "format": self.format, "host": self.host, "ok": self.ok,
                "results": self.results, "stored": len(self.stored), "already_present": len(self.already_present),
                "skipped": len(self.skipped), "skipped_by_kind": kinds,
                "skipped_lines": [s.to_dict() for s in self.skipped],
                "failed": [{"line": line, "reason": reason} for line, reason in self.failed],
                "stored_keys": self.stored, "marked_stale": self.marked_stale, "stale_error": self.stale_error}

    def to_text(self) -> str:
        """A summary line, then the skipped lines (at most :data:`TEXT_LIMIT`) and failures."""
        lines = [f"import {self.file} ({self.format}): {self.results} result(s) found, {len(self.stored)} stored, "
                 f"{len(self.already_present)} already present, {len(self.skipped)} line(s) skipped, "
                 f"{len(self.failed)} failed; {len(self.marked_stale)} hour(s) marked for run-due"]
        for item in self.skipped[:TEXT_LIMIT]:
            lines.append(f"  line {item.line}: {item.kind}: {item.reason}")
        if len(self.skipped) > TEXT_LIMIT:
            lines.append(f"  ... {len(self.skipped) - TEXT_LIMIT} more skipped line(s) (--json lists all)")
        lines += [f"  line {line}: FAILED: {reason}" for line, reason in self.failed]
        if self.stale_error:
            lines.append(f"  {self.stale_error}")
        return "\n".join(lines)


def choose_per_slot(parsed: Parsed, tz: str) -> list[tuple[int, SpeedTestResult]]:
    """One result per host and slot (:func:`~speedlab.records.slot_preference`, the line number
    breaking ties); the others are added to ``parsed.skipped`` as ``same_slot_in_file`` (pure)."""
    best: dict[tuple[str, str], tuple[tuple, int, SpeedTestResult]] = {}
    for line, record in parsed.records:
        slot = (record.host_id, record.slot_start.isoformat())
        rank = slot_preference(f"{line:012d}", record)
        if slot not in best or rank < best[slot][0]:
            best[slot] = (rank, line, record)
    chosen = {line for _, line, _ in best.values()}
    for line, record in parsed.records:
        if line not in chosen:
            keeper = best[(record.host_id, record.slot_start.isoformat())][1]
            parsed.skip(line, f"slot {record.slot} ({record.host_id}) also holds line {keeper}'s result, "
                              "which is imported (one result per slot)", "same_slot_in_file")
    return [(line, record) for line, record in parsed.records if line in chosen]


def _existing(store: Store, config: Config, record: SpeedTestResult) -> tuple[bool, str]:
    """Whether the filled slot holds this very record, and the key of what it holds."""
    keys = slot_objects(store, config.buckets.raw, record.host_id, record.slot_start, config.timezone)
    for key in keys:
        try:
            if SpeedTestResult.from_json(store.get(config.buckets.raw, key), key) == record:
                return True, key
        except (InvalidRecord, StoreError):
            continue
    return False, ", ".join(keys) or "(an object the listing no longer shows)"


def _write_one(config: Config, store: Store, record: SpeedTestResult, now: datetime) -> tuple[str, str]:
    """Write one result: ``(outcome, key or reason)``, outcome ``stored``, ``already_present``,
    ``slot_taken``, ``invalid`` or ``failed``; :class:`StoreUnavailable` is raised."""
    try:
        record.validate(now=now)  # a result from the future is refused, as the collector's flush does
        outcome = store_result(config, record, store=store)
        if outcome.status == "stored":
            return "stored", outcome.key
        same, key = _existing(store, config, record)
    except InvalidRecord as exc:
        return "invalid", str(exc)
    except StoreUnavailable:
        raise  # the store is down: stop (importing again later adds what is missing)
    except StoreError as exc:
        return "failed", str(exc)
    if same:
        return "already_present", key
    return "slot_taken", (f"slot {record.slot} already holds another result ({key}); it stays (a measurement "
                          "is never overwritten)")


def _write_all(config: Config, store: Store, report: ImportReport, chosen: Sequence[tuple[int, SpeedTestResult]],
               now: datetime, log: JobLog, workers: int = WRITERS) -> list[SpeedTestResult]:
    """Write the chosen results, ``workers`` at a time (one slot each: the writes are independent)."""
    written = []
    with ThreadPoolExecutor(max(1, workers)) as pool:
        outcomes = list(pool.map(lambda item: _write_one(config, store, item[1], now), chosen))
    for (line, record), (outcome, detail) in zip(chosen, outcomes, strict=True):
        if outcome == "stored":
            report.stored.append(detail)
            written.append(record)
        elif outcome == "already_present":
            report.already_present.append(detail)
        elif outcome == "failed":
            report.failed.append((line, detail))
            log.error(f"line {line}: the store refused the result: {detail}")
        else:
            report.skipped.append(Skipped(line, outcome, detail))
    return written


def _mark(config: Config, store: Store, report: ImportReport, written: Sequence[SpeedTestResult]) -> None:
    hours: dict[tuple[str, str], datetime] = {}
    for record in written:
        hours.setdefault((record.host_id, record.slot_start.strftime("%Y%m%d%H")), record.slot_start)
    for (host, _), slot in sorted(hours.items()):
        try:
            report.marked_stale.append(mark_stale(config, host, slot, store=store))
        except StoreError as exc:
            report.stale_error = (f"could not mark the hour of {slot.isoformat()} stale ({exc}): run speedlab "
                                  "aggregate --backfill over the imported dates")
            return


def import_file(config: Config, path: str | os.PathLike, fmt: str, host: str | None = None, *,
                store: Store | None = None, now: datetime | None = None) -> ImportReport:
    """Import the results in the file at ``path`` (format ``fmt``) as ``host``'s.

    Parameters
    ----------
    config : Config
        The store, buckets and time zone (slots are the zone's 15-minute slots).
    path : path-like
        The file (see :data:`speedlab.importers.FORMATS`).
    fmt : str
        ``ookla``, ``speedtest-tracker``, ``speedtest-tracker-bytes``, ``myspeed``, ``librespeed``
        or ``speedlab``.
    host : str, optional
        Whose results these are (required except for ``speedlab``, whose records name their host;
        there it keeps only that host's).
    store : Store, optional
        Default: ``config.open_store()``.
    now : datetime, optional
        Results dated after ``now`` (plus one slot) are refused; default the clock.

    Returns
    -------
    ImportReport

    Raises
    ------
    TransferError
        If the file cannot be read, the format is unknown, or a CSV lacks the format's columns.
    InvalidHostId
        For a bad ``host``.
    StoreUnavailable
        If the store cannot be reached (what was written stays; importing again adds the rest).
    """
    parsed = parse_import(_read(path), fmt, host, config.timezone)  # argument errors before the store opens
    store = store if store is not None else config.open_store()
    report = ImportReport(str(path), fmt, host, results=len(parsed.records))
    log = JobLog.for_config(config, "import")
    log.start("import started", file=str(path), format=fmt, target_host=host)
    chosen = choose_per_slot(parsed, config.timezone)
    report.skipped.extend(parsed.skipped)
    try:
        written = _write_all(config, store, report, chosen, now or datetime.now(timezone.utc), log)
    except StoreUnavailable as exc:
        log.end(f"import stopped: {exc}", level="error", stored=len(report.stored))
        raise
    _mark(config, store, report, written)
    report.skipped.sort(key=lambda s: s.line)
    log.end(f"import finished: {len(report.stored)} stored, {len(report.already_present)} already present, "
            f"{len(report.skipped)} skipped, {len(report.failed)} failed",
            level="info" if report.ok else "warning", **{k: v for k, v in report.to_dict().items()
                                                         if k not in ("skipped_lines", "stored_keys", "file")})
    return report


def _read(path: str | os.PathLike) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise TransferError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}") from None
