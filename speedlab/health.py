"""Health checks with debounced alerts: the original system's CloudWatch alarms, without AWS.

``speedlab health`` (cron, a systemd timer, or a monitoring system) checks that

* **host_silent** - each known host reported within its cadence (newest raw result no older
  than ``silent_after_minutes``);
* **tier_stale** - each tier's newest all-hosts summary is at least the period the schedule
  says must exist by now (:mod:`speedlab.scheduler`: hourly at :10, daily 06:00, weekly
  Tuesday 02:00, monthly the 1st 02:00, yearly 1 January 02:00, in the configured zone), plus
  ``grace_minutes``; nothing is expected for periods that ended before the first raw result;
* **run_failed** - the newest record of each scheduled run (``<state>/runs``) did not fail;
* **below_expected** - recent results are not below the plan times
  ``below_expected_fraction``; **tests_failing** - recent tests did not fail;
* **loaded_latency_high**, **jitter_high**, **packet_loss_high** - recent results' loaded
  latency (the larger of ``latency_download_ms`` and ``latency_upload_ms``), ``jitter_ms`` and
  ``packet_loss_pct`` are not above ``max_loaded_latency_ms``, ``max_jitter_ms`` and
  ``max_packet_loss_pct``. Each is off until its maximum is set; a result without the figure
  (schema 1, or an engine that does not measure it) is not judged.

Debouncing. Every check turns what it saw into *observations* (good or bad): each new speed
test result for ``below_expected``/``tests_failing``, one per health run for the others. An
incident opens when ``alert_after`` of the last ``window`` observations are bad (``window``
defaults to ``alert_after``: N in a row; ``alert_after = 3, window = 5`` is "3 of the last
5"), alerts once, and closes with one recovery message when the last ``recover_after``
observations are good. The state (history, open incidents, alerts still to deliver) lives in
``<state>/health/state.json``; an alert a channel could not take is retried on the next runs.

Settings (``speedlab.toml``; every key optional)::

    [health]
    hosts = ["home-primary", "office-main", "backup-location"]  # known even before they report
    silent_after_minutes = 50          # 3 missed 15-minute slots plus upload time
    grace_minutes = 30                 # a summary may be this late before it is stale
    tiers = ["hourly", "daily", "weekly", "monthly", "yearly"]
    max_retry_hours = 24               # give up re-sending an alert after this (logged)
    max_loaded_latency_ms = 250        # alert above these [ms, %]; each off while unset (default)
    max_jitter_ms = 30
    max_packet_loss_pct = 2
    [health.silent_after_minutes_by_host]
    backup-location = 180
    [health.max_loaded_latency_ms_by_host]   # also max_jitter_ms_by_host, max_packet_loss_pct_by_host
    backup-location = 600
    [health.debounce.below_expected]   # also tests_failing, host_silent, tier_stale, run_failed,
                                       # loaded_latency_high, jitter_high, packet_loss_high (3 in a row)
    alert_after = 5
    window = 5
    recover_after = 1

The rules themselves (silence, below the plan, a tier's due period, debouncing) are pure, in
:mod:`speedlab.checks`; this module reads, remembers and alerts.

Exit status of ``speedlab health``: 0 healthy, 1 an incident is open, 2 the check itself could
not run (store unreachable, bad configuration).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .alerts import Alert, channels_from_config, deliver
from .checks import (
    CheckOutcome,
    debounce,
    host_is_silent,
    result_below_expected,
    result_figure,
    result_over_maximum,
    threshold_message,
    tier_due_period,
)
from .config import Plan
from .errors import BucketNotFound, ConfigError, InvalidRecord, ObjectNotFound, StoreError
from .latest import newest_raw, newest_summaries
from .layout import Buckets, parse_raw_key, printable
from .periods import get_zone, parse_period, parse_timestamp, to_local
from .reader import RawObject, list_hosts, read_objects
from .records import SpeedTestResult, TierSummary, slot_preference
from .scheduler import due_at
from .settings import RESULT_KINDS, THRESHOLD_KEYS, HealthSettings
from .storebase import Store
from .walk import earliest_raw_hour  # the one walk to a deployment's first raw hour (no polars)

__all__ = ["HealthReport", "evaluate", "load_state", "plan_for_host", "read_run_records", "run_health",
           "save_state"]

STATE_VERSION = 1
FAILED_RUN_STATUSES = frozenset({"failed", "error", "errored", "crashed", "timeout", "timed_out"})


# =========================================================================== reading

def _fmt(moment: datetime | None, tz: str) -> str:
    return to_local(moment, tz).strftime("%Y-%m-%d %H:%M %Z") if moment else "never"


def plan_for_host(config, store: Store, host_id: str, now: datetime | None = None) -> tuple[Plan, str | None]:
    """The plan ``host_id``'s results are judged against, and where it came from.

    ``config``'s ``[plan]`` (per host, else the default) when it has a figure; otherwise the
    plan the rollup recorded in the host's newest hourly (else daily) summary
    (``expected_download_mbps``/``expected_upload_mbps``): the same figures ``speedlab query``
    shows for a store given with only ``--store`` (the demo's plans live in its
    ``speedlab.toml`` and in every summary rolled up with it). ``(Plan(), None)`` when neither
    has one.
    """
    plan = config.plan_for(host_id)
    if plan.download_mbps is not None or plan.upload_mbps is not None:
        return plan, "config"
    for tier in ("hourly", "daily"):
        try:
            newest = newest_summaries(store, config.buckets, tier, host_id, 1, now=now, tz=config.timezone)
            if not newest:
                continue
            bucket = config.buckets.for_tier(tier)
            summary = TierSummary.from_json(store.get(bucket, newest[0][1].key), newest[0][1].key)
        except (InvalidRecord, StoreError):
            continue  # an unreadable summary is the tier check's business; try the next source
        down, up = summary.get("expected_download_mbps"), summary.get("expected_upload_mbps")
        numbers = [v if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None
                   for v in (down, up)]
        if numbers != [None, None]:
            return Plan(*numbers), newest[0][1].key
    return Plan(), None


def _recent_results(store: Store, buckets: Buckets, host_id: str, count: int, tz: str,
                    now: datetime | None = None, future: list | None = None
                    ) -> tuple[datetime | None, list[tuple[datetime, SpeedTestResult]], int]:
    """The host's newest slot, and its newest ``count`` valid results, one per slot, oldest first.

    Of a slot holding several results, the one the rollup and ``dedupe`` keep is judged
    (:func:`speedlab.records.slot_preference`).

    Results dated after ``now`` (plus a slot of clock skew) are not among them: they are
    appended to ``future`` instead, so one object from the future cannot hide a silent host.
    """
    found = newest_raw(store, buckets, host_id, count, now=now, tz=tz, future=future)
    if not found:
        return None, [], 0
    newest_slot = found[0][0].slot(tz)
    read = read_objects(store, buckets, [RawObject(info, key) for key, info in found])
    per_slot: dict[datetime, tuple[tuple, SpeedTestResult]] = {}
    for key, result in read.results:
        slot = parse_raw_key(key).slot(tz)
        rank = slot_preference(key, result)  # the result the rollup and dedupe keep
        if slot not in per_slot or rank < per_slot[slot][0]:
            per_slot[slot] = (rank, result)
    rejected = len(read.rejected)
    kept = sorted(((slot, result) for slot, (_, result) in per_slot.items()), key=lambda item: item[0])
    return newest_slot, kept, rejected


def _run_record(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "status" not in data:
        return None
    job = next((str(data[k]) for k in ("job", "name", "tier", "notebook") if data.get(k)), None)
    if job is None:
        return None
    when = next((str(data[k]) for k in ("finished_at", "ended_at", "started_at") if data.get(k)), "")
    return {**data, "_job": job, "_time": when, "_path": str(path)}


def read_run_records(runs_dir: Path) -> dict[str, dict]:
    """The newest record of each scheduled job under ``runs_dir`` (:mod:`speedlab.notebook_runs`).

    Records are ``<runs>/<job>/<job>-<UTC start>-<id>.json`` objects with ``job``, ``status``
    and ``finished_at``; per job folder only the newest valid record (by file name, which
    starts with the start time) is read, so years of hourly runs cost one read per job.
    JSON records directly in ``runs_dir`` are read too. Files that are not records are skipped.
    """
    newest: dict[str, dict] = {}
    if not runs_dir.is_dir():
        return newest
    candidates = [sorted(runs_dir.glob("*.json"))]
    candidates += [sorted(folder.glob("*.json"), reverse=True) for folder in sorted(runs_dir.iterdir())
                   if folder.is_dir()]
    for index, paths in enumerate(candidates):
        first_stem = None
        for path in paths:
            stem = path.stem.rsplit("-", 1)[0]  # <job>-<UTC start>, without the run id
            if index and first_stem is not None and stem != first_stem:
                break  # a job folder: only the runs that started last (same second) compete
            record = _run_record(path)
            if record is None:
                continue
            first_stem = first_stem or stem
            record["_order"] = (record["_time"], path.stat().st_mtime_ns)
            job = record["_job"]
            if job not in newest or record["_order"] >= newest[job]["_order"]:
                newest[job] = record
    return newest


# =========================================================================== the checks

def _observe_state(kind: str, subject: str, bad: bool, message: str, now: datetime, **details) -> CheckOutcome:
    return CheckOutcome(f"{kind}:{subject}", kind, subject, bad, message,
                        [(now.astimezone(timezone.utc).isoformat(), bad)], details)


def _host_checks(config, settings: HealthSettings, store: Store, host: str, now: datetime,
                 seen: Mapping[str, str]) -> list[CheckOutcome]:
    tz = config.timezone
    future: list = []
    newest_slot, results, rejected = _recent_results(store, config.buckets, host, settings.results_to_read,
                                                     tz, now, future)
    silent_after = settings.silent_after(host)
    silent = host_is_silent(newest_slot, now, silent_after)
    age = None if newest_slot is None else round((now - newest_slot).total_seconds() / 60)
    message = (f"host {host} has not reported since {_fmt(newest_slot, tz)} "
               f"({'no results at all' if age is None else f'{age} min ago'}; allowed {silent_after:g} min): "
               "check its collector schedule, its network, and `speedlab logs` on it"
               if silent else f"host {host} reported at {_fmt(newest_slot, tz)}")
    if future:
        message += (f" ({len(future)} result(s) dated after now ignored, e.g. {printable(future[0][1].key)}:"
                    " check that host's clock)")
    out = [_observe_state("host_silent", host, silent, message, now,
                          last_slot=newest_slot.isoformat() if newest_slot else None, minutes_since=age,
                          future_objects=len(future))]
    plan, plan_source = plan_for_host(config, store, host, now)
    fraction = config.below_expected_fraction
    for kind in RESULT_KINDS:
        check = f"{kind}:{host}"
        after = seen.get(check)
        maximum = settings.maximum(kind, host) if kind in THRESHOLD_KEYS else None
        if kind in THRESHOLD_KEYS and maximum is None:
            continue  # off until [health] sets its maximum
        observations, judged = [], []
        for slot, result in results:
            bad = (result_below_expected(result, plan, fraction) if kind == "below_expected"
                   else not result.ok if maximum is None else result_over_maximum(result, kind, maximum))
            if bad is None:
                continue
            judged.append((slot, result, bad))
            slot_id = slot.astimezone(timezone.utc).isoformat()
            if after is None or slot_id > after:
                observations.append((slot_id, bad))
        if kind == "below_expected" and plan.download_mbps is None and plan.upload_mbps is None:
            out.append(CheckOutcome(check, kind, host, None, f"host {host} has no plan: [plan] "
                                    "download_mbps/upload_mbps to check results against it"))
            continue
        recent = judged[-settings.debounce[kind].window:]
        bad_now = sum(b for _, _, b in recent)
        latest = judged[-1][1] if judged else None
        if maximum is not None:
            figures = [(figure, b) for _, r, b in recent if (figure := result_figure(r, kind)) is not None]
            message = threshold_message(host, kind, maximum, figures, unjudged=len(results))
            out.append(CheckOutcome(check, kind, host, recent[-1][2] if recent else None, message, observations,
                                    {"bad_of_recent": [bad_now, len(recent)], "maximum": maximum,
                                     "rejected_objects": rejected}))
            continue
        if kind == "below_expected":
            wanted = (f"{(plan.download_mbps or 0) * fraction:g}/{(plan.upload_mbps or 0) * fraction:g}")
            message = (f"{bad_now} of the last {len(recent)} results on {host} are below {fraction:.0%} of "
                       f"the plan ({wanted} Mbit/s down/up"
                       + (f", as recorded in {printable(plan_source)}" if plan_source != "config" else "") + ")"
                       + (f"; latest {latest.download_mbps}/{latest.upload_mbps} Mbit/s" if latest else ""))
        else:
            message = (f"{bad_now} of the last {len(recent)} tests on {host} failed"
                       + (f"; latest: {latest.error.kind}: {latest.error.message}"
                          if latest is not None and latest.error else ""))
        out.append(CheckOutcome(check, kind, host, bool(judged) and bool(recent[-1][2]), message,
                                observations, {"bad_of_recent": [bad_now, len(recent)],
                                               "rejected_objects": rejected,
                                               **({"plan_source": plan_source} if kind == "below_expected" else {})}))
    return out


def _unreadable_summary(store: Store, bucket: str, key: str) -> str | None:
    """Why the summary at ``key`` is unusable (the rule the rollup applies), or ``None``."""
    try:
        TierSummary.from_json(store.get(bucket, key), key)
    except InvalidRecord as exc:
        return str(exc)
    except ObjectNotFound:
        return "it disappeared while being read"
    return None


def _tier_checks(config, settings: HealthSettings, store: Store, now: datetime,
                 earliest: datetime | None) -> list[CheckOutcome]:
    out = []
    for tier in settings.tiers:
        due = tier_due_period(tier, now, config.timezone, settings.grace_minutes, earliest)
        future: list = []  # only a complete summary makes a tier current (not 2099's, nor today's)
        newest = newest_summaries(store, config.buckets, tier, None, 1, now=now, tz=config.timezone,
                                  future=future, complete=True)
        label = newest[0][0] if newest else None
        if due is None:
            out.append(_observe_state("tier_stale", tier, False, f"no {tier} summary is due yet", now,
                                      newest=label, due=None))
            continue
        fresh = label is not None and parse_period(tier, label, config.timezone).start >= due.start
        unreadable = _unreadable_summary(store, config.buckets.for_tier(tier), newest[0][1].key) if fresh else None
        if unreadable:
            fresh = False
            message = (f"the newest {tier} summary {label} is unreadable ({unreadable}): roll it up "
                       f"again with `speedlab aggregate --mode {tier} --period {label}`")
        else:
            message = (f"{tier} summaries are current (newest {label})" if fresh else
                       f"the {tier} summary for {due.label} was due at {_fmt(due_at(due), config.timezone)} "
                       f"(+{settings.grace_minutes:g} min grace) but the newest is {label or 'none'}: check "
                       "that `speedlab scheduler run-due` is scheduled and its runs succeed")
        if future:
            message += (f" ({len(future)} summary/ies of periods not over yet ignored, e.g. "
                        f"{printable(future[0][1].key)})")
        out.append(_observe_state("tier_stale", tier, not fresh, message, now, newest=label, due=due.label,
                                  future_objects=len(future)))
    return out


def _run_checks(config, now: datetime) -> list[CheckOutcome]:
    out = []
    for job, record in sorted(read_run_records(Path(config.state_path) / "runs").items()):
        failed = str(record.get("status", "")).lower() in FAILED_RUN_STATUSES
        error = record.get("error") or record.get("message") or ""
        kept = record.get("output") or record["_path"]
        message = (f"the last {job} run ({record['_time'] or 'time unknown'}) failed"
                   + (f": {error}" if error else "") + f"; open {kept} to see the failing cell"
                   if failed else f"the last {job} run ({record['_time']}) succeeded")
        out.append(_observe_state("run_failed", job, failed, message, now, status=record.get("status"),
                                  record=record["_path"]))
    return out


# =========================================================================== state

@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside the state file, so overlapping runs never double-alert."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+") as handle:
        try:
            import fcntl
            fcntl.flock(handle, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: runs do not overlap under Task Scheduler
            pass
        yield


def load_state(path: Path) -> dict:
    """The persisted incident state (an empty one if there is none).

    Raises
    ------
    ConfigError
        If the file exists but is not speedlab health state (move it away to start afresh).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"version": STATE_VERSION, "checks": {}, "pending": []}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"health state {path} is unreadable ({exc}): move it away to start afresh") from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ConfigError(f"health state {path} is not version {STATE_VERSION}: move it away to start afresh")
    data.setdefault("checks", {})
    data.setdefault("pending", [])
    return data


def save_state(path: Path, state: dict) -> None:
    """Write the state atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


# =========================================================================== running

@dataclass
class HealthReport:
    """The outcome of one health run.

    Attributes
    ----------
    checked_at : str
        ``now`` (UTC ISO).
    checks : list of dict
        Every check: id, kind, subject, status (``ok``, ``pending`` = bad but not yet an
        incident, ``alerting``, ``unknown``), message, details.
    alerts : list of dict
        Alerts raised this run (incidents and recoveries).
    delivery_errors : list of str
        Channels that could not take an alert (it is retried next run).
    open_incidents : list of str
        Check ids with an open incident after this run.
    """

    checked_at: str
    checks: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    delivery_errors: list[str] = field(default_factory=list)
    open_incidents: list[str] = field(default_factory=list)
    sent: bool = True

    @property
    def healthy(self) -> bool:
        """No incident is open."""
        return not self.open_incidents

    @property
    def ok(self) -> bool:
        """Healthy (the command exits 1 when not: :func:`speedlab.adapter.exit_code`)."""
        return self.healthy

    def to_dict(self) -> dict:
        """Plain data for ``--json``."""
        return {"healthy": self.healthy, "checked_at": self.checked_at, "open_incidents": self.open_incidents,
                "checks": self.checks, "alerts": self.alerts, "alerts_sent": self.sent,
                "delivery_errors": self.delivery_errors}

    def to_text(self) -> str:
        """Lines for people: one per check, then the alerts."""
        marks = {"ok": "ok  ", "pending": "warn", "alerting": "FAIL", "unknown": "?   "}
        lines = [f"{'healthy' if self.healthy else 'UNHEALTHY'} at {self.checked_at}"]
        lines += [f"  {marks[c['status']]} " + printable(f"{c['check']}: {c['message']}") for c in self.checks]
        verb = "alert sent" if self.sent else "would alert (--no-alerts)"
        lines += [printable(f"{verb}: {a['kind']} {a['check']}") for a in self.alerts]
        lines += [printable(f"delivery failed: {e}") for e in self.delivery_errors]
        return "\n".join(lines)


#: Each check's alert title: (incident, recovery), ``{}`` being the subject.
_TITLES = {"host_silent": ("host {} silent", "host {} reporting again"),
           "tier_stale": ("{} summaries late", "{} summaries current again"),
           "run_failed": ("scheduled run {} failed", "scheduled run {} succeeded again"),
           "below_expected": ("{} below expected speed", "{} back to expected speed"),
           "tests_failing": ("speed tests failing on {}", "speed tests working again on {}"),
           "loaded_latency_high": ("loaded latency high on {}", "loaded latency normal again on {}"),
           "jitter_high": ("jitter high on {}", "jitter normal again on {}"),
           "packet_loss_high": ("packet loss high on {}", "packet loss normal again on {}")}


def _alert(kind: str, outcome: CheckOutcome, incident_id: str, now: datetime) -> Alert:
    recovery = kind == "recover"
    title = _TITLES[outcome.kind][recovery].format(outcome.subject)
    return Alert("recovery" if recovery else "incident", outcome.check, outcome.subject, title,
                 outcome.message, now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 incident_id, outcome.details)


def evaluate(config, *, now: datetime, store: Store | None = None,
             settings: HealthSettings | None = None, seen: Mapping[str, str] | None = None) -> list[CheckOutcome]:
    """Run every check once and return what each saw (reads the store; no state, no alerts).

    Raises
    ------
    StoreError
        If the store cannot be read.
    """
    settings = settings or config.health
    store = store or config.open_store()
    if not store.bucket_exists(config.buckets.raw):
        raise BucketNotFound(f"the main bucket {config.buckets.raw!r} does not exist in {store.url}: check "
                             "--store/[buckets], or create it with `speedlab infra apply`")
    hosts = sorted(set(list_hosts(store, config.buckets)) | set(settings.hosts))
    outcomes: list[CheckOutcome] = []
    for host in hosts:
        outcomes.extend(_host_checks(config, settings, store, host, now, seen or {}))
    if settings.tiers:
        earliest = earliest_raw_hour(store, config.buckets, hosts, get_zone(config.timezone))
        outcomes.extend(_tier_checks(config, settings, store, now, earliest))
    outcomes.extend(_run_checks(config, now))
    return outcomes


def run_health(config, *, now: datetime, store: Store | None = None, send_alerts: bool = True,
               channels: list | None = None, log=None) -> HealthReport:
    """Check, debounce, alert and remember; the library side of ``speedlab health``.

    Parameters
    ----------
    config : Config
    now : datetime
        Aware; the clock is the caller's.
    store : Store, optional
    send_alerts : bool
        False (``--no-alerts``) evaluates and reports what *would* be alerted, but sends
        nothing and changes no incident state.
    channels : list, optional
        Alert channels (default: from ``[alerts]``, with ``log`` as the log channel).
    log : JobLog, optional
        Default: the ``health`` job log of ``config``. The run's start and end, delivery
        failures and (through the log channel) alerts are written to it.

    Raises
    ------
    SpeedlabError
        If the checks could not run (the CLI exits 2).
    """
    if log is None:
        from .joblog import JobLog
        log = JobLog.for_config(config, "health")
    log.start("health check", send_alerts=send_alerts)
    try:
        report = _check_and_alert(config, now, store, send_alerts, channels, log)
    except Exception as exc:
        log.end(f"health check could not run: {exc}", level="error")
        raise
    for error in report.delivery_errors:
        log.warning(f"alert delivery failed (retried next run): {error}")
    log.end("healthy" if report.healthy else f"unhealthy: {', '.join(report.open_incidents)}",
            level="info" if report.healthy else "warning", open_incidents=report.open_incidents)
    return report


def _check_and_alert(config, now: datetime, store: Store | None, send_alerts: bool,
                     channels: list | None, log) -> HealthReport:
    settings = config.health
    if channels is None:
        channels = channels_from_config(config.alerts, log)
    state_path = Path(config.state_path) / "health" / "state.json"
    with _locked(state_path):
        state = load_state(state_path)
        seen = {check: s["last_observation"] for check, s in state["checks"].items() if s.get("last_observation")}
        outcomes = evaluate(config, now=now, store=store, settings=settings, seen=seen)
        report = HealthReport(now.astimezone(timezone.utc).isoformat())
        new_alerts: list[Alert] = []
        for outcome in outcomes:
            before = state["checks"].get(outcome.check, {})
            after, events = debounce(before, [bad for _, bad in outcome.observations], settings.debounce[outcome.kind])
            if outcome.observations:
                after["last_observation"] = outcome.observations[-1][0]
            for event in events:
                if event == "open":
                    after["incident_id"] = f"{outcome.check}@{now.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}"
                    after["opened_at"] = now.astimezone(timezone.utc).isoformat()
                new_alerts.append(_alert(event, outcome, after.get("incident_id", outcome.check), now))
            after["message"] = outcome.message
            state["checks"][outcome.check] = after
            status = ("alerting" if after["open"] else "unknown" if outcome.bad is None
                      else "pending" if outcome.bad else "ok")
            report.checks.append({"check": outcome.check, "kind": outcome.kind, "subject": outcome.subject,
                                  "status": status, "message": outcome.message, "details": outcome.details})
        report.alerts = [a.to_dict() for a in new_alerts]
        report.open_incidents = sorted(o.check for o in outcomes if state["checks"][o.check]["open"])
        report.sent = send_alerts
        if not send_alerts:
            return report
        pending = state["pending"] + [{"alert": a.to_dict(), "channels": [c.name for c in channels],
                                       "first_attempt": now.astimezone(timezone.utc).isoformat()}
                                      for a in new_alerts]
        state["pending"] = _send(pending, channels, now, settings, report, log)
        save_state(state_path, state)
    return report


def _send(pending: list[dict], channels: list, now: datetime, settings: HealthSettings,
          report: HealthReport, log) -> list[dict]:
    """Deliver every pending alert to the channels that still owe it; return what is left."""
    left = []
    by_name = {c.name for c in channels}
    for item in pending:
        alert = Alert.from_dict(item["alert"])
        owed = [name for name in item["channels"] if name in by_name]
        results = deliver(alert, channels, skip=set(by_name) - set(owed))
        failed = [name for name, error in results.items() if error]
        for name in failed:
            report.delivery_errors.append(f"{alert.check} via {name}: {results[name]}")
        if not failed:
            continue
        age = now - parse_timestamp(item["first_attempt"])
        if age > timedelta(hours=settings.max_retry_hours):
            if log is not None:
                log.error(f"gave up delivering {alert.kind} alert for {alert.check} via "
                          f"{', '.join(failed)} after {settings.max_retry_hours:g} h", incident_id=alert.incident_id)
            continue
        left.append({**item, "channels": failed})
    return left
