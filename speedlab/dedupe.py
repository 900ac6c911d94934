"""The duplicate detector (the seed's ``cleanup_duplicates.py`` and ``DuplicateDetector``).

Two kinds of duplicates exist in a store:

* **Raw slots with more than one result.** The seed's collector could run twice in a
  15-minute slot (Task Scheduler catch-up) and named each file
  ``speed_data_ookla_MM_EPOCH.json``; speedlab writes one ``test.json`` per slot. A slot can so
  hold several legacy files, or a legacy file next to ``test.json``.
* **Summary folders with stray extra objects**: any ``.json`` beside a tier's
  ``speed_test_summary.json``.

Which object is kept
--------------------
In a raw slot, the result the rollup counts is kept (one rule,
:func:`speedlab.records.slot_preference`, also used by the rollup, the 15-minute rows and
``health``): a complete ``ok`` result (download, upload and ping) before a partial ``ok`` before
a ``failed`` one, then the earliest ``timestamp_utc``, then the key. Every other *valid* result
in the slot is an extra and may be deleted. Objects that cannot be validated (corrupt JSON, an
invalid record, a record whose host or slot disagrees with its key) are never deleted: they
are listed as ``skip`` with the reason, to be inspected by hand. If any object of a slot cannot
be *read* (the store failed), the whole slot is skipped. In a summary folder the kept object is
``speed_test_summary.json``; a folder without one is left alone.

Using it
--------
:func:`find_duplicates` only lists and reads, and returns a :class:`DedupePlan`;
:func:`apply_plan` deletes exactly the plan's ``delete`` actions (after checking that each
group's kept object is still there) and never the kept object; :func:`dedupe` is the whole
``speedlab dedupe`` job: plan, delete only when asked, log, and mark the affected summaries
stale so that the next ``scheduler run-due`` re-aggregates them::

    from speedlab.config import load_config
    from speedlab.dedupe import find_duplicates
    config = load_config()
    plan = find_duplicates(config.open_store(), config.buckets, scope="raw")
    for group in plan.groups:
        print(group.host_id, group.label, group.keep, group.deletions)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from .errors import InvalidHostId, InvalidRecord, LayoutError, ObjectNotFound, StoreError
from .joblog import JobLog
from .layout import (
    HOSTS_PREFIX,
    SUMMARY_NAME,
    Buckets,
    host_of_prefix,
    parse_summary_key,
    printable,
    summary_prefix,
    validate_host_id,
)
from .periods import DEFAULT_TIMEZONE, TIERS, get_zone
from .reader import RawObject, fetch_many, list_hosts, list_raw, parse_result
from .records import SpeedTestResult, slot_preference
from .stale import mark_stale
from .storebase import Store
from .text import format_table

__all__ = ["SCOPES", "Action", "Candidate", "DedupePlan", "DedupeReport", "DuplicateGroup",
           "apply_plan", "dedupe", "dedupe_table", "find_duplicates", "plan_slot",
           "plan_summary_folder"]

#: What ``--period`` selects: raw slots, one summary tier, or everything.
SCOPES = ("all", "raw") + TIERS


@dataclass(frozen=True)
class Candidate:
    """One raw object of a crowded slot, as far as choosing a keeper needs.

    ``status`` is ``ok`` or ``failed`` for a valid record (then ``record`` holds it),
    ``invalid`` for one that cannot be validated and ``unreadable`` when the store failed to
    return it; ``detail`` says why.
    """

    key: str
    status: str
    timestamp_utc: str | None = None
    epoch_s: int | None = None
    detail: str | None = None
    record: SpeedTestResult | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Action:
    """What happens to one object: ``keep``, ``delete`` or ``skip`` (left alone), and why."""

    key: str
    action: str
    reason: str


@dataclass
class DuplicateGroup:
    """One raw slot or summary folder holding more than one object.

    Attributes
    ----------
    tier : str
        ``raw`` or a summary tier.
    bucket : str
    host_id : str or None
        ``None`` for an all-hosts summary.
    label : str
        The slot (``2025-12-29T14:00``, local) or the period label (``2025122914``).
    start : datetime
        The aware local start of the slot or period (what is marked stale).
    actions : list of Action
    """

    tier: str
    bucket: str
    host_id: str | None
    label: str
    start: datetime
    actions: list[Action] = field(default_factory=list)

    @property
    def keep(self) -> str | None:
        """The key that stays (``None`` if nothing is kept: every object is skipped)."""
        return next((a.key for a in self.actions if a.action == "keep"), None)

    @property
    def deletions(self) -> list[str]:
        """The keys the plan would delete."""
        return [a.key for a in self.actions if a.action == "delete"]

    def to_dict(self) -> dict:
        """Plain data for ``--json``."""
        return {"tier": self.tier, "bucket": self.bucket, "host": self.host_id, "label": self.label,
                "start": self.start.isoformat(), "keep": self.keep,
                "actions": [vars(a) for a in self.actions]}


@dataclass
class DedupePlan:
    """What :func:`find_duplicates` found: the groups, and keys outside the layout (``problems``)."""

    groups: list[DuplicateGroup] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (bucket, key, reason)
    scanned: int = 0

    @property
    def deletions(self) -> list[tuple[str, str]]:
        """Every ``(bucket, key)`` the plan would delete."""
        return [(g.bucket, key) for g in self.groups for key in g.deletions]

    def to_dict(self) -> dict:
        """Plain data for ``--json``."""
        return {"scanned": self.scanned, "groups": [g.to_dict() for g in self.groups],
                "to_delete": [{"bucket": b, "key": k} for b, k in self.deletions],
                "problems": [{"bucket": b, "key": k, "reason": r} for b, k, r in self.problems]}


# --------------------------------------------------------------------------- pure rules

def _rank(c: Candidate) -> tuple:
    if c.record is None:
        raise ValueError(f"candidate {c.key} is {c.status} but carries no record to rank")
    return slot_preference(c.key, c.record)


def _complete(record: SpeedTestResult | None) -> bool:
    return record is not None and record.ok and None not in (record.download_mbps, record.upload_mbps, record.ping_ms)


def plan_slot(candidates: Sequence[Candidate]) -> list[Action]:
    """Decide, for the objects of one raw slot, which is kept and which are extras (pure).

    See the module docstring for the rule (:func:`speedlab.records.slot_preference`); valid
    (``ok``/``failed``) candidates must carry their ``record``. Returns one action per
    candidate, kept first.
    """
    unreadable = [c for c in candidates if c.status == "unreadable"]
    if unreadable:
        return [Action(c.key, "skip", f"slot left alone: {unreadable[0].key} could not be read "
                                      f"({unreadable[0].detail}); rerun dedupe") for c in candidates]
    valid = sorted((c for c in candidates if c.status in ("ok", "failed")), key=_rank)
    actions = []
    if valid:
        kept = valid[0]
        why = ("earliest complete ok result" if _complete(kept.record) else
               "no complete ok result in the slot; earliest partial ok result" if kept.status == "ok" else
               "no ok result in the slot; earliest failed test")
        actions.append(Action(kept.key, "keep", f"{why} ({kept.timestamp_utc})"))
        for c in valid[1:]:
            if c.status == "failed" and kept.status == "ok":
                reason = f"failed test ({c.timestamp_utc}) in a slot that holds an ok result"
            elif c.status == "ok" and not _complete(c.record) and _complete(kept.record):
                reason = f"partial ok result ({c.timestamp_utc}) in a slot that holds a complete one"
            else:
                reason = f"later {c.status} result ({c.timestamp_utc}) than the kept one"
            actions.append(Action(c.key, "delete", reason))
    actions.extend(Action(c.key, "skip", f"not deleted: cannot be validated ({c.detail}); "
                                         "inspect or remove it by hand")
                   for c in candidates if c.status == "invalid")
    return actions


def plan_summary_folder(keys: Sequence[str], tier: str, label: str) -> list[Action]:
    """Decide, for the objects of one summary folder, which are stray extras (pure)."""
    canonical = [k for k in keys if k.rsplit("/", 1)[-1] == SUMMARY_NAME]
    extras = sorted(k for k in keys if k not in canonical)
    if not canonical:
        return [Action(k, "skip", f"not deleted: the folder has no {SUMMARY_NAME}; run the {tier} "
                                  f"rollup for {label} first") for k in extras]
    return ([Action(canonical[0], "keep", f"the {tier} summary of {label}")]
            + [Action(k, "delete", f"stray object in the folder of the {tier} summary of {label} "
                                   f"(the summary is {SUMMARY_NAME})") for k in extras])


# --------------------------------------------------------------------------- finding

def _candidate(obj: RawObject, body) -> Candidate | None:
    key = obj.info.key
    if isinstance(body, ObjectNotFound):
        return None  # deleted since the listing: no longer there to keep or delete
    if isinstance(body, Exception):
        return Candidate(key, "unreadable", epoch_s=obj.key.epoch_s, detail=str(body))
    try:
        record = parse_result(key, body, obj.key)
    except InvalidRecord as exc:
        return Candidate(key, "invalid", epoch_s=obj.key.epoch_s, detail=str(exc))
    return Candidate(key, record.status, record.timestamp_utc, obj.key.epoch_s, record=record)


def _raw_groups(store: Store, buckets: Buckets, host_id: str, zone: ZoneInfo, plan: DedupePlan) -> None:
    objects, rejected = list_raw(store, buckets, host_id)
    plan.scanned += len(objects) + len(rejected)
    plan.problems.extend((buckets.raw, key, reason) for key, reason in rejected)
    slots: dict[datetime, list[RawObject]] = defaultdict(list)
    for obj in objects:
        slots[obj.key.slot_local].append(obj)
    crowded = {slot: objs for slot, objs in slots.items() if len(objs) > 1}
    bodies = fetch_many(store, buckets.raw, [o.info.key for objs in crowded.values() for o in objs])
    for slot, objs in sorted(crowded.items()):
        candidates = [c for o in objs if (c := _candidate(o, bodies[o.info.key])) is not None]
        if len(candidates) > 1:
            plan.groups.append(DuplicateGroup("raw", buckets.raw, host_id, slot.strftime("%Y-%m-%dT%H:%M"),
                                              slot.replace(tzinfo=zone), plan_slot(candidates)))


def _foreign_host_problems(store: Store, buckets: Buckets, plan: DedupePlan) -> None:
    """Objects under a ``host=`` folder that names no valid host (``host=../x/``): no rollup or
    tool reads them, so they are reported here as keys outside the layout (never deleted)."""
    for prefix in store.list_prefixes(buckets.raw, HOSTS_PREFIX):
        try:
            validate_host_id(host_of_prefix(prefix))
        except InvalidHostId as exc:
            for info in store.list(buckets.raw, prefix):
                plan.scanned += 1
                plan.problems.append((buckets.raw, info.key, f"{exc}; no rollup reads this folder"))


def _summary_groups(store: Store, buckets: Buckets, tier: str, host_id: str | None, zone: ZoneInfo,
                    plan: DedupePlan, seen_problems: set) -> None:
    bucket = buckets.for_tier(tier)
    folders: dict[tuple, list[str]] = defaultdict(list)
    for info in store.list(bucket, summary_prefix(host_id)):
        try:
            key = parse_summary_key(info.key)
        except LayoutError as exc:
            if (bucket, info.key) not in seen_problems:
                seen_problems.add((bucket, info.key))
                plan.problems.append((bucket, info.key, str(exc)))
            continue
        if key.tier == tier:
            plan.scanned += 1
            folders[(key.host_id or "", key.label)].append(info.key)
    for (host, label), keys in sorted(folders.items()):
        if len(keys) > 1 or keys[0].rsplit("/", 1)[-1] != SUMMARY_NAME:  # a lone stray counts too
            start = parse_summary_key(keys[0]).period(zone).start
            plan.groups.append(DuplicateGroup(tier, bucket, host or None, label, start,
                                              plan_summary_folder(keys, tier, label)))


def _check_arguments(scope: str, host: str | None) -> None:
    if scope not in SCOPES:
        raise LayoutError(f"unknown period {scope!r}: use one of {', '.join(SCOPES)}")
    if host is not None:
        validate_host_id(host)


def find_duplicates(store: Store, buckets: Buckets = Buckets(), scope: str = "all",
                    host: str | None = None, tz: str | ZoneInfo = DEFAULT_TIMEZONE) -> DedupePlan:
    """List (and for raw slots, read) the store and plan what to delete. Deletes nothing.

    Parameters
    ----------
    store : Store
    buckets : Buckets
    scope : str
        ``all``, ``raw`` or a summary tier (see :data:`SCOPES`).
    host : str, optional
        Only this host's raw slots and per-host summaries; default every host and the
        all-hosts summaries too.
    tz : str or ZoneInfo
        The zone of the keys' local times.

    Raises
    ------
    LayoutError
        For an unknown scope.
    InvalidHostId
        For a malformed ``host``.
    StoreError
        When the store or a bucket does not exist or cannot be reached.
    """
    _check_arguments(scope, host)
    zone = tz if isinstance(tz, ZoneInfo) else get_zone(tz)
    plan = DedupePlan()
    if scope in ("all", "raw"):
        for host_id in ([host] if host else list_hosts(store, buckets)):
            _raw_groups(store, buckets, host_id, zone, plan)
        if not host:
            _foreign_host_problems(store, buckets, plan)
    seen_problems: set = set()
    for tier in (TIERS if scope == "all" else (scope,) if scope in TIERS else ()):
        _summary_groups(store, buckets, tier, host, zone, plan, seen_problems)
    return plan


# --------------------------------------------------------------------------- deleting

def apply_plan(store: Store, plan: DedupePlan) -> tuple[list[DuplicateGroup], list[tuple[str, str]],
                                                        list[tuple[str, str, str]]]:
    """Delete exactly the plan's ``delete`` actions; never a kept or skipped object.

    Before touching a group, its kept object is fetched: if it has gone (someone else cleaned
    up meanwhile), the group is left alone, so a slot never loses its last result.

    Returns
    -------
    (changed_groups, deleted, failures)
        The groups with at least one deletion, ``(bucket, key)`` deleted, and
        ``(bucket, key, reason)`` for deletions not done.
    """
    changed, deleted = [], []
    failures: list[tuple[str, str, str]] = []
    for group in plan.groups:
        targets = group.deletions
        if not targets:
            continue
        keep = group.keep
        if keep is None:  # a plan from plan_slot/plan_summary_folder always keeps when deleting
            failures.extend((group.bucket, k, "nothing is kept in this group: not deleted") for k in targets)
            continue
        try:
            store.get(group.bucket, keep)
        except StoreError as exc:
            failures.extend((group.bucket, k, f"kept object {keep} cannot be read ({exc}): "
                                              "nothing deleted here; rerun dedupe") for k in targets)
            continue
        done = False
        for key in targets:
            if key == keep:  # impossible by construction; the one rule that must never break
                raise AssertionError(f"dedupe plan would delete its kept object {key}")
            try:
                store.delete(group.bucket, key)
            except StoreError as exc:
                failures.append((group.bucket, key, str(exc)))
                continue
            deleted.append((group.bucket, key))
            done = True
        if done:
            changed.append(group)
    return changed, deleted, failures


@dataclass
class DedupeReport:
    """The outcome of :func:`dedupe`: the plan, and with ``delete`` what was done."""

    plan: DedupePlan
    dry_run: bool
    deleted: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    stale: list[dict] = field(default_factory=list)
    stale_error: str | None = None

    @property
    def ok(self) -> bool:
        """False when a planned deletion or a stale mark failed."""
        return not self.failures and self.stale_error is None

    def to_dict(self) -> dict:
        """Plain data for ``--json``."""
        data = self.plan.to_dict()
        data.update(dry_run=self.dry_run, deleted=[{"bucket": b, "key": k} for b, k in self.deleted],
                    failures=[{"bucket": b, "key": k, "reason": r} for b, k, r in self.failures],
                    marked_stale=self.stale, stale_error=self.stale_error)
        return data

    def to_text(self) -> str:
        """The plan and what was done, for people (:func:`dedupe_table`)."""
        return dedupe_table(self)


def _mark_stale(config, store: Store, groups: Sequence[DuplicateGroup]) -> tuple[list[dict], str | None]:
    """Mark the hour holding each changed slot or period start stale, so the next
    ``scheduler run-due`` redoes it and its day, week, month and year. Returns what was
    marked, and why marking stopped (``None`` when all went well)."""
    marked: list[dict[str, str | None]] = []
    seen = set()
    for group in groups:
        item = (group.host_id, group.start)
        if item in seen:
            continue
        seen.add(item)
        try:
            key = mark_stale(config, group.host_id, group.start, store=store)
        except StoreError as exc:
            return marked, (f"could not mark {group.label} stale ({exc}): run speedlab aggregate "
                            "for the changed periods by hand")
        marked.append({"host": group.host_id, "time": group.start.isoformat(), "marker": key})
    return marked, None


def dedupe(config, scope: str = "all", host: str | None = None, delete: bool = False,
           store: Store | None = None) -> DedupeReport:
    """The ``speedlab dedupe`` job: find duplicates; with ``delete``, remove the extras.

    A dry run (the default) changes nothing. With ``delete=True`` exactly the planned extras
    are deleted (see :func:`apply_plan`) and the summaries covering each changed slot or
    period are marked stale for the next ``scheduler run-due``. Start, end, every deletion and
    every failure are written to the ``dedupe`` job log.
    """
    _check_arguments(scope, host)
    store = store or config.open_store()
    list_hosts(store, config.buckets)  # a store or bucket that does not exist fails here, before
    log = JobLog.for_config(config, "dedupe")  # the log would create a local store's folder
    log.start("dedupe started", scope=scope, target_host=host, delete=delete)
    try:
        plan = find_duplicates(store, config.buckets, scope, host, config.timezone)
    except Exception as exc:
        log.end(f"dedupe failed: {exc}", level="error")
        raise
    for bucket, key, reason in plan.problems:
        log.warning(f"not a layout key: {reason}", bucket=bucket, key=key)
    report = DedupeReport(plan, dry_run=not delete)
    if delete:
        changed, report.deleted, report.failures = apply_plan(store, plan)
        for bucket, key in report.deleted:
            log.info("deleted duplicate", bucket=bucket, key=key)
        for bucket, key, reason in report.failures:
            log.error(f"could not delete a duplicate: {reason}", bucket=bucket, key=key)
        report.stale, report.stale_error = _mark_stale(config, store, changed)
        if report.stale_error:
            log.error(report.stale_error)
    log.end(f"dedupe finished: {len(plan.groups)} groups, {len(plan.deletions)} extras, "
            f"{len(report.deleted)} deleted", level="error" if report.failures else "info",
            dry_run=not delete)
    return report


def dedupe_table(report: DedupeReport) -> str:
    """:func:`dedupe`'s answer as text for people."""
    plan = report.plan
    lines = []
    if plan.groups:
        rows = [(g.tier, g.host_id or "all", g.label.replace("T", " "),
                 a.action if report.dry_run or a.action != "delete" else
                 ("deleted" if (g.bucket, a.key) in set(report.deleted) else "NOT deleted"),
                 a.key.rsplit("/", 1)[-1], a.reason)
                for g in plan.groups for a in g.actions]
        lines.append(format_table(("tier", "host", "slot/period", "action", "object", "why"), rows))
    lines.extend(printable(f"problem: {b}/{k}: {r}") for b, k, r in plan.problems)
    lines.extend(printable(f"failed: {b}/{k}: {r}") for b, k, r in report.failures)
    count = len(plan.deletions)
    if report.dry_run:
        lines.append(f"dry run: {plan.scanned} objects scanned, {len(plan.groups)} groups with "
                     f"duplicates, {count} extras would be deleted"
                     + ("; rerun with --delete to delete them" if count else ""))
    else:
        lines.append(f"deleted {len(report.deleted)} of {count} extras ({plan.scanned} objects scanned)")
        if report.stale:
            lines.append(f"marked {len(report.stale)} slots/periods stale: the next scheduler "
                         "run-due re-aggregates them")
        if report.stale_error:
            lines.append(f"warning: {report.stale_error}")
    return "\n".join(lines)
