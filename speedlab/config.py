"""Configuration: defaults < ``speedlab.toml`` < environment < command-line flags.

The file is found at ``--config``, else ``$SPEEDLAB_CONFIG``, else ``./speedlab.toml`` if it
exists. Nothing needs configuring to start: the store defaults to the local folder
``./speedlab-data``. Example::

    store = "s3://"                     # SPEEDLAB_STORE; or a path, or file:///path (no bucket here:
                                        # s3://BUCKET is refused, [buckets] names them; a local
                                        # folder must exist: only `up`/`infra apply` create one)
    timezone = "Asia/Kolkata"           # SPEEDLAB_TIMEZONE; any IANA zone
    host_id = "home-primary"            # SPEEDLAB_HOST_ID; default: this machine's name

    [s3]                                # used when store is s3://
    endpoint_url = "http://127.0.0.1:9000"   # SPEEDLAB_S3_ENDPOINT_URL; none for AWS
    region = "eu-west-1"                # SPEEDLAB_S3_REGION
    profile = "speedlab"                # or access_key_id / secret_access_key / session_token
                                        # (SPEEDLAB_S3_ACCESS_KEY_ID, ...); default: boto3's chain

    [buckets]                           # one name per tier (these are the defaults)
    raw = "vd-speed-test"
    hourly = "vd-speed-test-hourly-prod"
    daily = "vd-speed-test"
    weekly = "vd-speed-test-weekly-prod"
    monthly = "vd-speed-test-monthly-prod"
    yearly = "vd-speed-test-yearly-prod"

    [plan]                              # what you pay for [Mbit/s]
    download_mbps = 200                 # SPEEDLAB_PLAN_DOWNLOAD_MBPS
    upload_mbps = 100                   # SPEEDLAB_PLAN_UPLOAD_MBPS
    below_expected_fraction = 0.8       # SPEEDLAB_BELOW_EXPECTED_FRACTION
    [plan.hosts.office-main]            # per-host plans override the global one
    download_mbps = 500
    upload_mbps = 500

Every other table (``[collector]``, ``[aggregate]``, ``[dashboard]``, ``[health]``, ``[api]``,
``[alerts]``, ``[infra]``) is checked at load by its dataclass in :mod:`speedlab.settings` and
read as ``config.<section>`` (``config.aggregate.max_workers``); an unknown table or key is
refused with its name. (``[logs]``, once accepted and never read, is refused: job logs are
always ``<state>/logs/<job>.jsonl``, see ``state_dir``.)

A child process (a scheduler entry, Voilà and its kernels, a papermill kernel) gets the
configuration one way: :meth:`Config.child_env`, the ``SPEEDLAB_*`` variables
:func:`load_config` reads back.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from .errors import ConfigError, InvalidHostId, StoreUnavailable
from .layout import Buckets, validate_host_id
from .masking import CREDENTIAL_OPTIONS, mask_data, secret_values, split_credentials
from .periods import DEFAULT_TIMEZONE, get_zone
from .settings import (
    AggregateSettings,
    AlertSettings,
    ApiSettings,
    CollectorSettings,
    DashboardSettings,
    HealthSettings,
    InfraSettings,
)
from .store import LocalStore, check_store_url, open_store
from .storebase import Store

DEFAULT_STORE = "./speedlab-data"
CONFIG_FILE = "speedlab.toml"
#: The tables read by one module each: name -> the dataclass that checks it (``Config.<name>``).
SECTIONS: dict[str, Any] = {
    "collector": CollectorSettings, "aggregate": AggregateSettings, "dashboard": DashboardSettings,
    "health": HealthSettings, "api": ApiSettings, "alerts": AlertSettings, "infra": InfraSettings}


@dataclass(frozen=True)
class Plan:
    """The speeds a host's contract promises [Mbit/s] (``None``: not configured)."""

    download_mbps: float | None = None
    upload_mbps: float | None = None


def default_host_id() -> str:
    """This machine's name made into a valid host id (lower case, other characters -> ``-``)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", socket.gethostname().lower()).strip("-._")[:63]
    name = re.sub(r"\.\.+", ".", name)
    try:
        return validate_host_id(name or "localhost")
    except InvalidHostId:
        return "localhost"


@dataclass(frozen=True)
class Config:
    """The resolved configuration. Build it with :func:`load_config`."""

    store: str = DEFAULT_STORE
    timezone: str = DEFAULT_TIMEZONE
    host_id: str = field(default_factory=default_host_id)
    buckets: Buckets = field(default_factory=Buckets)
    plan: Plan = field(default_factory=Plan)
    host_plans: dict[str, Plan] = field(default_factory=dict)
    below_expected_fraction: float = 0.8
    s3: dict[str, Any] = field(default_factory=dict)
    state_dir: str | None = None
    sections: dict[str, dict] = field(default_factory=dict)
    source: str | None = None
    # the checked tables (made from ``sections`` by __post_init__)
    collector: CollectorSettings = field(init=False, repr=False, compare=False)
    aggregate: AggregateSettings = field(init=False, repr=False, compare=False)
    dashboard: DashboardSettings = field(init=False, repr=False, compare=False)
    health: HealthSettings = field(init=False, repr=False, compare=False)
    api: ApiSettings = field(init=False, repr=False, compare=False)
    alerts: AlertSettings = field(init=False, repr=False, compare=False)
    infra: InfraSettings = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_store_url(self.store)
        get_zone(self.timezone)
        try:
            validate_host_id(self.host_id)
        except InvalidHostId as exc:
            raise ConfigError(f"host_id: {exc}") from None
        if not 0 < self.below_expected_fraction <= 1:
            raise ConfigError(f"below_expected_fraction = {self.below_expected_fraction!r} must be in (0, 1]")
        for host, plan in self.host_plans.items():
            try:
                validate_host_id(host)
            except InvalidHostId as exc:
                raise ConfigError(f"[plan.hosts]: {exc}") from None
            _check_plan(plan, f"[plan.hosts.{host}]")
        _check_plan(self.plan, "[plan]")
        unknown = sorted(set(self.sections) - set(SECTIONS))
        if unknown:
            raise ConfigError(f"unknown table(s) {', '.join(f'[{u}]' for u in unknown)}; "
                              f"known: {', '.join(sorted(SECTIONS))}")
        for name, settings in SECTIONS.items():
            table = self.sections.get(name, {})
            if not isinstance(table, Mapping):
                raise ConfigError(f"{name} = {table!r} must be a table: write [{name}] and its keys on the "
                                  "lines below")
            checked = (InfraSettings.from_table(table, self.buckets) if settings is InfraSettings
                       else settings.from_table(table))
            object.__setattr__(self, name, checked)

    # ------------------------------------------------------------------ derived
    def open_store(self, create: bool = False) -> Store:
        """The configured store (S3 options from ``[s3]``).

        A local store folder that does not exist is a
        :class:`~speedlab.errors.StoreUnavailable` unless ``create`` (see
        :func:`speedlab.store.open_store`).
        """
        if self.remote_store:
            return open_store(self.store, **self.s3)
        return open_store(self.store, create=create)

    @property
    def remote_store(self) -> bool:
        """Whether the store URL names a remote backend (``s3://``), decided without opening it;
        an opened store says where its buckets are with ``local_root`` (``None``: remote)."""
        return urlsplit(self.store).scheme.lower() == "s3"

    @property
    def secrets(self) -> list[str]:
        """The secret values this configuration holds, for
        :func:`speedlab.masking.mask_secrets` (never print this)."""
        return secret_values(self)

    def plan_for(self, host_id: str | None) -> Plan:
        """The plan of ``host_id`` (the global plan for ``None`` or a host without its own)."""
        return self.host_plans.get(host_id, self.plan) if host_id else self.plan

    @property
    def state_path(self) -> Path:
        """Where this host keeps its spool, logs and executed notebooks.

        ``state_dir`` if set; for a local store ``<store>/_speedlab`` (``_`` cannot start a
        bucket name, so it never collides with one); otherwise ``$XDG_STATE_HOME/speedlab``
        (``~/.local/state/speedlab``).

        Raises
        ------
        StoreUnavailable
            For a local store folder that does not exist (and no ``state_dir``): the state
            folder is never created inside a missing (mistyped) store.
        """
        return self._state_path(check=True)

    def _state_path(self, check: bool) -> Path:
        if self.state_dir:
            return Path(self.state_dir).expanduser()
        if not self.remote_store:
            try:
                store = self.open_store()
            except StoreUnavailable:
                if check:
                    raise
                return LocalStore(unquote(urlsplit(self.store).path) if self.store.startswith("file:")
                                  else self.store).root / "_speedlab"
            if store.local_root is not None:  # always, for a URL that is not s3:
                return store.local_root / "_speedlab"
        base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
        return Path(base) / "speedlab"

    # ------------------------------------------------------------------ a child process
    def child_store(self) -> tuple[str, dict[str, str]]:
        """The store as a child process is told it, and the credentials kept out of it.

        A local store becomes its absolute folder (it must exist); an ``s3://`` URL gains the
        ``[s3]`` endpoint and region (a scheduler entry has no environment to carry them) and
        loses ``access_key_id``, ``secret_access_key`` and ``session_token``, which are
        returned separately (by option name).
        """
        store, credentials = split_credentials(self.store)
        if self.remote_store:
            extra = {k: self.s3[k] for k in ("endpoint_url", "region") if self.s3.get(k) and f"{k}=" not in store}
            if extra:
                store += ("&" if "?" in store else "?") + urlencode(extra)
        else:
            root = self.open_store().local_root
            if root is not None:
                store = str(root)
        return store, credentials

    def child_env(self) -> dict[str, str]:
        """This configuration as the ``SPEEDLAB_*`` variables :func:`load_config` reads back.

        The one way a configuration reaches a child process: Voilà and its kernels get these
        variables, a papermill kernel gets :data:`CHILD_PARAMETERS` of them as parameters and
        the credentials as variables, a scheduler entry gets :data:`CHILD_FLAGS` of them as
        command-line flags. The config file is named by its absolute path (a child starts in
        another folder), the store as :meth:`child_store` gives it; S3 credentials (from
        ``[s3]`` or the store URL) are ``SPEEDLAB_S3_ACCESS_KEY_ID`` /
        ``SPEEDLAB_S3_SECRET_ACCESS_KEY`` / ``SPEEDLAB_S3_SESSION_TOKEN`` (see
        :data:`CHILD_CREDENTIALS`), never part of a value that is shown or kept.

        Raises
        ------
        StoreUnavailable
            For a local store folder that does not exist.
        """
        store, credentials = self.child_store()
        env = {"SPEEDLAB_STORE": store, "SPEEDLAB_TIMEZONE": self.timezone, "SPEEDLAB_HOST_ID": self.host_id,
               "SPEEDLAB_STATE_DIR": str(self.state_path)}
        if self.source:
            env["SPEEDLAB_CONFIG"] = str(Path(self.source).expanduser().resolve())
        for key in ("endpoint_url", "region", "profile"):
            if self.s3.get(key):
                env[f"SPEEDLAB_S3_{key.upper()}"] = str(self.s3[key])
        found = {k: v for k, v in self.s3.items() if k in CREDENTIAL_OPTIONS and isinstance(v, str)}
        found.update(credentials)
        env.update({f"SPEEDLAB_S3_{k.upper()}": v for k, v in found.items() if v})
        if self.plan.download_mbps:
            env["SPEEDLAB_PLAN_DOWNLOAD_MBPS"] = str(self.plan.download_mbps)
        if self.plan.upload_mbps:
            env["SPEEDLAB_PLAN_UPLOAD_MBPS"] = str(self.plan.upload_mbps)
        env["SPEEDLAB_BELOW_EXPECTED_FRACTION"] = str(self.below_expected_fraction)
        return env

    def with_overrides(self, **changes: Any) -> Config:
        """A copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def show(self) -> dict:
        """The configuration as plain data, secrets masked (``config show``).

        Masked by :mod:`speedlab.masking`'s rule: every value whose name looks secret, the
        secret parts of URLs (the store's credentials, webhook paths) and every known secret
        value. Shown even when the local store folder is missing (``state_dir`` is then
        where it would be).
        """
        data = {
            "source": self.source, "store": self.store, "timezone": self.timezone,
            "host_id": self.host_id, "buckets": self.buckets.as_dict(),
            "plan": {"download_mbps": self.plan.download_mbps, "upload_mbps": self.plan.upload_mbps,
                     "below_expected_fraction": self.below_expected_fraction,
                     "hosts": {h: vars(p) for h, p in sorted(self.host_plans.items())}},
            "s3": dict(self.s3), "state_dir": str(self._state_path(check=False)),
        }
        data.update({name: dict(table) for name, table in sorted(self.sections.items())})
        return mask_data(data, self.secrets, by_name=True)


#: The :meth:`Config.child_env` variables that carry credentials (never on a command line or in a parameter).
CHILD_CREDENTIALS = tuple(f"SPEEDLAB_S3_{k.upper()}" for k in CREDENTIAL_OPTIONS)
#: The :meth:`Config.child_env` variables a scheduler entry passes as flags (it has no environment of its own).
CHILD_FLAGS = {"SPEEDLAB_CONFIG": "--config", "SPEEDLAB_STORE": "--store", "SPEEDLAB_TIMEZONE": "--timezone"}
#: The :meth:`Config.child_env` variables a scheduled notebook takes as papermill parameters (kept in its record).
CHILD_PARAMETERS = {"SPEEDLAB_STORE": "store", "SPEEDLAB_TIMEZONE": "timezone", "SPEEDLAB_CONFIG": "config_path",
                    "SPEEDLAB_STATE_DIR": "state_dir"}


def _check_plan(plan: Plan, where: str) -> None:
    for name in ("download_mbps", "upload_mbps"):
        value = getattr(plan, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ConfigError(f"{where} {name} = {value!r} must be a positive number [Mbit/s]")


def _number(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None


def _plan(table: Mapping, where: str) -> Plan:
    unknown = set(table) - {"download_mbps", "upload_mbps", "below_expected_fraction", "hosts"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    return Plan(table.get("download_mbps"), table.get("upload_mbps"))


def load_config(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
                **overrides: Any) -> Config:
    """Resolve the configuration: defaults < file < environment < ``overrides``.

    Parameters
    ----------
    path : str or Path, optional
        The TOML file; default ``$SPEEDLAB_CONFIG``, else ``./speedlab.toml`` if present.
    env : mapping, optional
        The environment (default ``os.environ``).
    **overrides
        Values from command-line flags (``store=``, ``timezone=``, ``host_id=``); ``None`` is
        ignored.

    Raises
    ------
    ConfigError
        For an unreadable file, invalid TOML, unknown keys or invalid values.
    """
    env = os.environ if env is None else env
    path = path or env.get("SPEEDLAB_CONFIG") or (CONFIG_FILE if Path(CONFIG_FILE).is_file() else None)
    table: dict[str, Any] = {}
    if path:
        try:
            table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    known = {"store", "timezone", "host_id", "buckets", "plan", "s3", "state_dir", *SECTIONS}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")
    for key in ("store", "timezone", "host_id", "state_dir"):
        if key in table and not isinstance(table[key], str):
            raise ConfigError(f"config file {path}: {key} = {table[key]!r} must be a quoted string, "
                              f"e.g. {key} = \"...\"")
    for key in ("buckets", "plan", "s3", *SECTIONS):
        if key in table and not isinstance(table[key], dict):
            raise ConfigError(f"config file {path}: {key} = {table[key]!r} must be a table: "
                              f"write [{key}] and its keys on the lines below")
    values: dict[str, Any] = {k: table[k] for k in ("store", "timezone", "host_id", "state_dir") if k in table}
    for key in ("store", "timezone", "host_id", "state_dir"):
        if env.get(f"SPEEDLAB_{key.upper()}"):
            values[key] = env[f"SPEEDLAB_{key.upper()}"]
    plan_table = dict(table.get("plan", {}))
    try:
        plan = _plan(plan_table, "[plan]")
        hosts = {h: _plan(t, f"[plan.hosts.{h}]") for h, t in plan_table.get("hosts", {}).items()}
        values["buckets"] = Buckets().with_overrides(dict(table.get("buckets", {})))
    except Exception as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"config file {path}: {exc}") from None
    if env.get("SPEEDLAB_PLAN_DOWNLOAD_MBPS"):
        plan = replace(plan, download_mbps=_number(env["SPEEDLAB_PLAN_DOWNLOAD_MBPS"], "SPEEDLAB_PLAN_DOWNLOAD_MBPS"))
    if env.get("SPEEDLAB_PLAN_UPLOAD_MBPS"):
        plan = replace(plan, upload_mbps=_number(env["SPEEDLAB_PLAN_UPLOAD_MBPS"], "SPEEDLAB_PLAN_UPLOAD_MBPS"))
    fraction = plan_table.get("below_expected_fraction", 0.8)
    if env.get("SPEEDLAB_BELOW_EXPECTED_FRACTION"):
        fraction = _number(env["SPEEDLAB_BELOW_EXPECTED_FRACTION"], "SPEEDLAB_BELOW_EXPECTED_FRACTION")
    s3 = dict(table.get("s3", {}))
    for key in ("endpoint_url", "region", "profile", "access_key_id", "secret_access_key", "session_token"):
        if env.get(f"SPEEDLAB_S3_{key.upper()}"):
            s3[key] = env[f"SPEEDLAB_S3_{key.upper()}"]
    allowed_s3 = {"endpoint_url", "region", "profile", "access_key_id", "secret_access_key", "session_token"}
    if set(s3) - allowed_s3:
        raise ConfigError(f"[s3]: unknown key(s) {', '.join(sorted(set(s3) - allowed_s3))}; "
                          f"known: {', '.join(sorted(allowed_s3))}")
    values.update(plan=plan, host_plans=hosts, below_expected_fraction=fraction, s3=s3,
                  sections={name: dict(table[name]) for name in SECTIONS if name in table},
                  source=str(path) if path else None)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(values.get("store"), os.PathLike):
        values["store"] = os.fspath(values["store"])
    known_fields = {f.name for f in fields(Config)}
    bad = set(values) - known_fields
    if bad:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(bad))}")
    return Config(**values)
