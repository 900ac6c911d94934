"""Buckets, lifecycle rules, versioning and least-privilege IAM policies for a deployment.

Three layers, as everywhere in speedlab:

* pure builders of the *desired* state (from ``config.infra``, the ``[infra]`` table checked at
  load by :class:`speedlab.settings.InfraSettings`):
  :func:`desired_state` (which buckets, which lifecycle rules, which versioning) and
  :func:`iam_policy` (JSON policy documents per role);
* :func:`read_state` asks the store what exists, and :func:`diff` (pure) turns desired versus
  actual into a list of :class:`Change`;
* :func:`plan_infra` and :func:`apply_infra` put them together. Applying twice changes nothing the
  second time and says so.

Settings (``speedlab.toml``)::

    [infra]
    raw_transition_days = 30            # raw results (host=… in the main bucket) move to
    raw_storage_class = "STANDARD_IA"   #   this class after N days; 0 = never
    raw_expire_days = 0                 # and are deleted after M days; 0 = keep forever
    versioning = false                  # true (every bucket) or a list of tiers/bucket names
    noncurrent_expire_days = 90         # on versioned buckets: drop old versions after N days

Summaries (``aggregated/…``) are never transitioned or expired: they are small and are the
long-term record. **S3 does not transition objects smaller than 128 KB** (the default
``TransitionDefaultMinimumObjectSize`` since September 2024), and a raw result is 1-3 KB, so raw
JSON stays in S3 Standard and only expiry has an effect on it. That costs next to nothing: one
host writes 35,040 results a year, about 70 MB, some US$0.02 a year in Standard. Forcing the
transition would be worse, not better: Standard-IA bills every object as at least 128 KB and
charges per transition request. The transition rule is kept for the large objects a deployment
may add later (exports, Parquet compactions), and costs nothing while it matches nothing.

Rules are recognised by their ``ID`` (``speedlab-…``); rules with other IDs are the user's and
are kept untouched. Versioning is only ever enabled, never suspended, by ``apply``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ConfigError, InfraError, InvalidHostId
from .layout import AGGREGATED, HOSTS_PREFIX, RUNS_PREFIX, STALE_PREFIX, Buckets, raw_host_prefix, validate_host_id
from .settings import InfraSettings
from .store_s3 import S3Store
from .storebase import Store

__all__ = ["BucketState", "Change", "InfraPlan", "ROLES",
           "desired_state", "read_state", "diff", "plan_infra", "apply_infra", "iam_policy",
           "iam_policy_json", "normalize_rule"]

RULE_PREFIX = "speedlab-"
RAW_RULE_ID = "speedlab-raw-results"
NONCURRENT_RULE_ID = "speedlab-noncurrent-versions"
#: Roles :func:`iam_policy` knows.
ROLES = ("collector", "aggregator", "dashboard", "operator", "infra")


# =========================================================================== desired state

@dataclass(frozen=True)
class BucketState:
    """One bucket as it is or should be.

    Attributes
    ----------
    bucket : str
    tiers : tuple of str
        The tiers stored in it (``raw``, ``daily``, …).
    exists : bool
    rules : tuple of dict
        Lifecycle rules in S3's JSON form, sorted by ``ID`` (speedlab's and the user's).
    versioning : str
        ``Enabled``, ``Suspended`` or ``Off``.
    """

    bucket: str
    tiers: tuple[str, ...]
    exists: bool = True
    rules: tuple[dict, ...] = ()
    versioning: str = "Off"


def _raw_rule(settings: InfraSettings) -> dict | None:
    if not settings.raw_transition_days and not settings.raw_expire_days:
        return None
    rule: dict[str, Any] = {"ID": RAW_RULE_ID, "Filter": {"Prefix": HOSTS_PREFIX}, "Status": "Enabled"}
    if settings.raw_transition_days:
        rule["Transitions"] = [{"Days": settings.raw_transition_days,
                                "StorageClass": settings.raw_storage_class}]
    if settings.raw_expire_days:
        rule["Expiration"] = {"Days": settings.raw_expire_days}
    return rule


def desired_state(buckets: Buckets, settings: InfraSettings) -> dict[str, BucketState]:
    """The buckets speedlab needs and the speedlab rules and versioning each should have.

    Only ``speedlab-…`` rules appear here; :func:`diff` keeps the user's other rules.
    """
    tiers: dict[str, list[str]] = {}
    for tier, name in buckets.as_dict().items():
        tiers.setdefault(name, []).append(tier)
    out = {}
    for name, held in sorted(tiers.items()):
        rules = []
        if "raw" in held and (rule := _raw_rule(settings)):
            rules.append(rule)
        versioned = name in settings.versioning
        if versioned and settings.noncurrent_expire_days:
            rules.append({"ID": NONCURRENT_RULE_ID, "Filter": {"Prefix": ""}, "Status": "Enabled",
                          "NoncurrentVersionExpiration": {"NoncurrentDays": settings.noncurrent_expire_days}})
        out[name] = BucketState(name, tuple(held), True, tuple(sorted(rules, key=lambda r: r["ID"])),
                                "Enabled" if versioned else "Off")
    return out


_RULE_KEYS = ("ID", "Filter", "Status", "Transitions", "Expiration", "NoncurrentVersionTransitions",
              "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload", "Prefix")


def normalize_rule(rule: dict) -> dict:
    """A lifecycle rule reduced to the fields that matter, so equal rules compare equal."""
    out = {k: rule[k] for k in _RULE_KEYS if k in rule and rule[k] not in (None, [], {})}
    if "Filter" in rule and rule["Filter"] in ({}, None):
        out["Filter"] = {"Prefix": ""}
    return out


# =========================================================================== actual state

def _client_call(store: S3Store, bucket: str, fn, **kwargs):
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        return fn(Bucket=bucket, **kwargs)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchLifecycleConfiguration",):
            return None
        raise store._translate(exc, bucket) from None  # the store's one home for S3 error messages
    except BotoCoreError as exc:
        raise store._translate(exc, bucket) from None


def read_state(store: Store, buckets: Buckets) -> dict[str, BucketState]:
    """What the store has now for each of speedlab's buckets (I/O).

    For a local store only existence is known (lifecycle and versioning do not apply).
    """
    tiers: dict[str, list[str]] = {}
    for tier, name in buckets.as_dict().items():
        tiers.setdefault(name, []).append(tier)
    out = {}
    for name, held in sorted(tiers.items()):
        exists = store.bucket_exists(name)
        rules: tuple[dict, ...] = ()
        versioning = "Off"
        if exists and isinstance(store, S3Store):
            lifecycle = _client_call(store, name, store.client.get_bucket_lifecycle_configuration)
            if lifecycle:
                rules = tuple(sorted((normalize_rule(r) for r in lifecycle.get("Rules", [])),
                                     key=lambda r: r.get("ID", "")))
            status = _client_call(store, name, store.client.get_bucket_versioning) or {}
            versioning = status.get("Status") or "Off"
        out[name] = BucketState(name, tuple(held), exists, rules, versioning)
    return out


# =========================================================================== diff

@dataclass(frozen=True)
class Change:
    """One thing ``apply`` would do (or did).

    ``action`` is ``create_bucket``, ``put_lifecycle``, ``delete_lifecycle`` or
    ``enable_versioning``; ``before``/``after`` are the lifecycle rules or versioning status.
    """

    bucket: str
    action: str
    summary: str
    before: Any = None
    after: Any = None


def _describe(rule: dict) -> str:
    parts = []
    for t in rule.get("Transitions", []):
        parts.append(f"to {t['StorageClass']} after {t['Days']} d")
    if "Expiration" in rule:
        parts.append(f"delete after {rule['Expiration'].get('Days')} d")
    if "NoncurrentVersionExpiration" in rule:
        parts.append(f"old versions deleted after {rule['NoncurrentVersionExpiration']['NoncurrentDays']} d")
    prefix = rule.get("Filter", {}).get("Prefix", "")
    return f"{rule['ID']} ({prefix or 'all objects'}: {', '.join(parts) or 'no action'})"


def diff(desired: dict[str, BucketState], actual: dict[str, BucketState],
         local: bool = False) -> list[Change]:
    """The changes that turn ``actual`` into ``desired`` (pure).

    The user's own lifecycle rules (IDs not starting ``speedlab-``) are kept; speedlab's rules
    are replaced by the desired ones. Versioning is only enabled, never suspended. With
    ``local`` only missing buckets are created (folders).
    """
    changes = []
    for name, want in desired.items():
        have = actual.get(name, BucketState(name, want.tiers, exists=False))
        if not have.exists:
            changes.append(Change(name, "create_bucket",
                                  f"create bucket {name} ({', '.join(want.tiers)})"))
        if local:
            continue
        if want.versioning == "Enabled" and have.versioning != "Enabled":
            changes.append(Change(name, "enable_versioning", f"enable versioning on {name}",
                                  have.versioning, "Enabled"))
        theirs = [r for r in have.rules if not str(r.get("ID", "")).startswith(RULE_PREFIX)]
        ours_now = [r for r in have.rules if str(r.get("ID", "")).startswith(RULE_PREFIX)]
        target = sorted([normalize_rule(r) for r in (*theirs, *want.rules)], key=lambda r: r.get("ID", ""))
        if [normalize_rule(r) for r in want.rules] == sorted(ours_now, key=lambda r: r.get("ID", "")):
            continue
        if not target:
            changes.append(Change(name, "delete_lifecycle", f"remove speedlab's lifecycle rules from {name}",
                                  list(have.rules), []))
            continue
        what = "; ".join(_describe(r) for r in want.rules) or "remove speedlab's rules"
        changes.append(Change(name, "put_lifecycle", f"set lifecycle on {name}: {what}",
                              list(have.rules), target))
    return changes


# =========================================================================== plan / apply

@dataclass
class InfraPlan:
    """The outcome of ``infra plan`` or ``infra apply``.

    Attributes
    ----------
    store : str
        The store's URL.
    backend : str
        ``s3`` or ``local``.
    desired : list of dict
        Each bucket's desired state.
    changes : list of Change
        What differs (plan) or what was changed (apply).
    notes : list of str
        Things the user should know (local store, the 128 KB rule, expiry deletes data).
    applied : bool
        True after ``apply``.
    message : str
        One line: what happened.
    """

    store: str
    backend: str
    desired: list[dict] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    applied: bool = False
    message: str = ""

    def to_dict(self) -> dict:
        """Plain data for ``--json``."""
        return {"store": self.store, "backend": self.backend, "applied": self.applied,
                "message": self.message, "changes": [asdict(c) for c in self.changes],
                "desired": self.desired, "notes": self.notes}

    def to_text(self) -> str:
        """Human lines for the terminal."""
        lines = [self.message]
        lines += [f"  {'+' if self.applied else '~'} {c.summary}" for c in self.changes]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _notes(settings: InfraSettings, local: bool) -> list[str]:
    if local:
        return ["a local store has no storage classes, lifecycle rules or versioning: only the "
                "bucket folders are managed; delete old raw results yourself if disk runs short"]
    notes = ["S3 does not transition objects under 128 KB: raw JSON results (1-3 KB) stay in "
             "S3 Standard and only expiry applies to them (about US$0.02 per host per year)"]
    if settings.raw_expire_days:
        notes.append(f"raw results older than {settings.raw_expire_days} days will be DELETED by S3; "
                     "summaries are kept; make sure every period is aggregated before that")
    return notes


def plan_infra(config, store: Store | None = None) -> InfraPlan:
    """Compare the configured buckets and rules with the store (reads only).

    Raises
    ------
    ConfigError
        For a bad ``[infra]`` table.
    StoreError
        If the store cannot be read (credentials, network).
    """
    settings = config.infra
    store = store or config.open_store()
    local = store.local_root is not None
    desired = desired_state(config.buckets, settings)
    if local:
        desired = {n: BucketState(n, s.tiers) for n, s in desired.items()}
    actual = read_state(store, config.buckets)
    changes = diff(desired, actual, local=local)
    plan = InfraPlan(store.url, "local" if local else "s3",
                     [{**asdict(s), "tiers": list(s.tiers), "rules": list(s.rules)} for s in desired.values()],
                     changes, _notes(settings, local))
    plan.message = (f"{len(changes)} change(s) to make (run: speedlab infra apply)" if changes
                    else "nothing to change: the store already matches the configuration")
    return plan


def _apply_change(store: Store, change: Change) -> None:
    if change.action == "create_bucket":
        store.create_bucket(change.bucket)
        return
    assert isinstance(store, S3Store)
    client = store.client
    if change.action == "enable_versioning":
        _client_call(store, change.bucket, client.put_bucket_versioning,
                     VersioningConfiguration={"Status": "Enabled"})
    elif change.action == "put_lifecycle":
        _client_call(store, change.bucket, client.put_bucket_lifecycle_configuration,
                     LifecycleConfiguration={"Rules": change.after})
    elif change.action == "delete_lifecycle":
        _client_call(store, change.bucket, client.delete_bucket_lifecycle)
    else:  # pragma: no cover - diff() only makes the actions above
        raise InfraError(f"unknown change {change.action!r}")


def apply_infra(config, store: Store | None = None, log=None) -> InfraPlan:
    """Make the store match the configuration; a second call changes nothing and says so.

    Parameters
    ----------
    config : Config
    store : Store, optional
        Default ``config.open_store(create=True)``: a missing local store folder is created
        (its parent must exist), as S3 buckets are.
    log : JobLog, optional
        The run's start, each change as it is made, and the outcome are logged.

    Raises
    ------
    StoreError
        If a change is refused; the changes made before it are listed in the log.
    """
    if log is not None:
        log.start("infra apply", store=config.store)
    store = store or config.open_store(create=True)
    plan = plan_infra(config, store)
    for change in plan.changes:
        _apply_change(store, change)
        if log is not None:
            log.info(change.summary, bucket=change.bucket, action=change.action)
    plan.applied = True
    plan.message = (f"applied {len(plan.changes)} change(s)" if plan.changes
                    else "nothing to change: the store already matches the configuration")
    if log is not None:
        log.end(plan.message, changes=len(plan.changes))
    return plan


# =========================================================================== IAM

def _arn(bucket: str, key_pattern: str | None = None) -> str:
    return f"arn:aws:s3:::{bucket}" + (f"/{key_pattern}" if key_pattern is not None else "")


def _allow(sid: str, actions: list[str], resources: list[str], condition: dict | None = None) -> dict:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def iam_policy(role: str, buckets: Buckets = Buckets(), host_id: str | None = None) -> dict:
    """A least-privilege IAM policy document (pure JSON data) for one speedlab role.

    Parameters
    ----------
    role : str
        ``collector`` (needs ``host_id``): put and get only under ``host=H/`` of the main
        bucket, list only that prefix. ``aggregator``: read raw results, read and write
        summaries (``aggregated/…``) in every tier's bucket, act on stale marks and copy run
        records (``stale/``, ``runs/`` in the hourly bucket). ``dashboard``: read-only on
        results and summaries. ``operator``: what ``speedlab dedupe --delete`` needs (read and
        delete results and summaries, write stale marks). ``infra``: create the buckets and
        manage their lifecycle and versioning.
    buckets : Buckets
    host_id : str, optional
        The collector's host.

    Raises
    ------
    ConfigError
        For an unknown role or a collector without a valid host id.
    """
    all_buckets = sorted(set(buckets.as_dict().values()))
    summary_buckets = sorted({buckets.for_tier(t) for t in ("hourly", "daily", "weekly", "monthly", "yearly")})
    raw_all = _arn(buckets.raw, f"{HOSTS_PREFIX}*")
    summaries = [_arn(b, f"{AGGREGATED}/*") for b in summary_buckets]
    stale_marks = [_arn(buckets.hourly, f"{STALE_PREFIX}*")]
    list_all = _allow("ListBuckets", ["s3:ListBucket"], [_arn(b) for b in all_buckets])
    if role == "collector":
        if not host_id:
            raise ConfigError("a collector policy is for one host: pass --host HOST_ID")
        try:
            prefix = raw_host_prefix(validate_host_id(host_id))
        except InvalidHostId as exc:
            raise ConfigError(str(exc)) from None
        statements = [
            _allow("WriteAndReadOwnResults", ["s3:PutObject", "s3:GetObject"], [_arn(buckets.raw, prefix + "*")]),
            _allow("ListOwnPrefixOnly", ["s3:ListBucket"], [_arn(buckets.raw)],
                   {"StringLike": {"s3:prefix": [prefix + "*"]}}),
        ]
    elif role == "aggregator":
        statements = [
            list_all,
            _allow("ReadRawResults", ["s3:GetObject"], [raw_all]),
            _allow("ReadAndWriteSummaries", ["s3:GetObject", "s3:PutObject"], summaries),
            _allow("ActOnStaleMarks", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], stale_marks),
            _allow("CopyRunRecords", ["s3:PutObject"], [_arn(buckets.hourly, f"{RUNS_PREFIX}*")]),
        ]
    elif role == "operator":
        statements = [
            list_all,
            _allow("ReadAndRemoveDuplicates", ["s3:GetObject", "s3:DeleteObject"], [raw_all, *summaries]),
            _allow("MarkSummariesStale", ["s3:PutObject"], stale_marks),
        ]
    elif role == "dashboard":
        statements = [list_all, _allow("ReadResultsAndSummaries", ["s3:GetObject"], [raw_all, *summaries])]
    elif role == "infra":
        statements = [
            _allow("ManageSpeedlabBuckets",
                   ["s3:CreateBucket", "s3:ListBucket", "s3:GetLifecycleConfiguration",
                    "s3:PutLifecycleConfiguration", "s3:GetBucketVersioning", "s3:PutBucketVersioning"],
                   [_arn(b) for b in all_buckets]),
        ]
    else:
        raise ConfigError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return {"Version": "2012-10-17", "Statement": statements}


def iam_policy_json(role: str, buckets: Buckets = Buckets(), host_id: str | None = None) -> str:
    """:func:`iam_policy` as indented JSON text (what ``speedlab infra iam-policy`` prints)."""
    return json.dumps(iam_policy(role, buckets, host_id), indent=2)
