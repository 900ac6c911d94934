"""Typed settings: one frozen dataclass per ``[section]`` of ``speedlab.toml``, checked at load.

Pure: no I/O. :func:`speedlab.config.load_config` (through :class:`speedlab.config.Config`)
turns every table into its dataclass with ``from_table``, so a bad value or an unknown key
stops the command at start-up with one line naming the section and the key, and each module
reads its own section as ``config.<section>`` (``config.collector``, ``config.aggregate``,
``config.dashboard``, ``config.health``, ``config.api``, ``config.alerts``, ``config.infra``).

Every ``from_table`` refuses unknown keys with :class:`~speedlab.errors.ConfigError`
(``[section]: unknown key(s) ...; known: ...``). What each key means is documented with the
module that uses it (``collect``, ``aggregate``/``docs/aggregation.md``, ``dashboard``,
``health``, ``api``, ``alerts``, ``infra``) and in ``docs/production.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, InvalidHostId
from .layout import Buckets, validate_host_id
from .periods import TIERS
from .sketch import DEFAULT_ALPHA

__all__ = ["CHECK_KINDS", "DEFAULT_DEBOUNCE", "DEFAULT_MAX_ENTRIES", "ENGINE_NAMES", "FORMATS", "HEATMAP_DAYS",
           "MIN_TOKEN_CHARS", "READ_ONLY_ROUTES", "RESULT_KINDS", "STORAGE_CLASSES", "THRESHOLD_KEYS",
           "AggregateSettings", "AlertSettings", "ApiSettings", "CollectorSettings", "DashboardSettings", "Debounce",
           "EmailSettings", "HealthSettings", "InfraSettings", "WebhookSettings", "check_token_length"]

#: Results a collector keeps while the store is down (30 days of 15-minute slots).
DEFAULT_MAX_ENTRIES = 2880
#: The speed test engines ``[collector] engine`` may name (each made by :mod:`speedlab.engines`).
ENGINE_NAMES = ("speedtest-cli", "ookla", "librespeed")
#: Days of hourly summaries behind the dashboard's heatmap.
HEATMAP_DAYS = 28
#: The health checks (``[health.debounce.KIND]``).
CHECK_KINDS = ("host_silent", "tier_stale", "run_failed", "below_expected", "tests_failing",
               "loaded_latency_high", "jitter_high", "packet_loss_high")
#: The checks of a result's figure against a ``[health]`` maximum, each with its key (off while unset).
THRESHOLD_KEYS = {"loaded_latency_high": "max_loaded_latency_ms", "jitter_high": "max_jitter_ms",
                  "packet_loss_high": "max_packet_loss_pct"}
#: Checks whose observations are speed test results (the others observe once per run).
RESULT_KINDS = ("below_expected", "tests_failing", *THRESHOLD_KEYS)
#: Webhook payload formats (``[alerts] webhook_format``, ``[alerts.webhooks.NAME] format``).
FORMATS = ("generic", "slack", "discord", "ntfy", "gotify")
#: API routes ``[api] public`` may open (read-only ones).
READ_ONLY_ROUTES = ("dashboard", "coverage", "latest", "openapi")
#: The shortest ``[api] token`` / ``$SPEEDLAB_API_TOKEN`` accepted (a guessable token opens the API).
MIN_TOKEN_CHARS = 16
#: Storage classes a lifecycle rule may move raw results to, with S3's minimum age [days].
STORAGE_CLASSES = {"STANDARD_IA": 30, "ONEZONE_IA": 30, "INTELLIGENT_TIERING": 0,
                   "GLACIER_IR": 0, "GLACIER": 0, "DEEP_ARCHIVE": 0}


def _known(section: str, table: Mapping[str, Any], known) -> dict[str, Any]:
    """``table`` as a dict, refusing keys not in ``known`` (the one message for every section)."""
    table = dict(table or {})
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"[{section}]: unknown key(s) {', '.join(map(str, unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    return table


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# =========================================================================== [collector]

@dataclass(frozen=True)
class CollectorSettings:
    """The ``[collector]`` table, checked. See :mod:`speedlab.collect` for each key."""

    secure: bool = False
    servers: tuple[int, ...] = ()
    timeout_s: float = 10.0
    max_test_s: float = 180.0
    spool_max_entries: int = DEFAULT_MAX_ENTRIES
    start_offset_minutes: int | None = None
    engine: str = "speedtest-cli"
    librespeed_url: str | None = None

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> CollectorSettings:
        """Check the ``[collector]`` table.

        Raises
        ------
        ConfigError
            For unknown keys or values of the wrong type or range.
        """
        table = _known("collector", table, {f.name for f in fields(cls)})
        if "secure" in table and not isinstance(table["secure"], bool):
            raise ConfigError(f"[collector] secure = {table['secure']!r} must be true or false")
        servers = table.get("servers", ())
        if isinstance(servers, (int, str)):
            servers = [servers]
        try:
            ids = tuple(int(s) for s in servers if not isinstance(s, bool))
            if len(ids) != len(servers) or any(i <= 0 for i in ids):
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"[collector] servers = {servers!r} must be a list of speedtest.net "
                              "server ids (positive whole numbers), e.g. [12345]") from None
        table["servers"] = ids
        engine = table.get("engine", cls.engine)
        if engine not in ENGINE_NAMES:
            raise ConfigError(f"[collector] engine = {engine!r} is not a known engine: use one of "
                              f"{', '.join(ENGINE_NAMES)}")
        if engine == "ookla" and len(ids) > 1:
            raise ConfigError(f"[collector] servers = {list(ids)}: the ookla engine tests against one server "
                              "(--server-id); name one id, or none for Ookla's choice")
        url = table.get("librespeed_url")
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))
                                    and urlsplit(url).netloc):
            raise ConfigError(f"[collector] librespeed_url = {url!r} must be an http(s) URL of a LibreSpeed "
                              'server, e.g. "http://speed.example:8080/"')
        for name, low in (("timeout_s", 0.1), ("max_test_s", 1.0)):
            value = table.get(name, getattr(cls, name))
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
                raise ConfigError(f"[collector] {name} = {value!r} must be a number of at least {low:g} [s]")
        for name, low, high in (("spool_max_entries", 1, 10**7), ("start_offset_minutes", 0, 14)):
            value = table.get(name, getattr(cls, name))
            if value is None and name == "start_offset_minutes":
                continue
            if not _is_whole(value) or not low <= value <= high:
                raise ConfigError(f"[collector] {name} = {value!r} must be a whole number from {low} to {high}")
        return cls(**table)

    def with_overrides(self, **overrides: Any) -> CollectorSettings:
        """A checked copy with some keys replaced (``None`` values are ignored: command-line flags)."""
        return type(self).from_table({**asdict(self), **{k: v for k, v in overrides.items() if v is not None}})


# =========================================================================== [aggregate]

@dataclass(frozen=True)
class AggregateSettings:
    """The ``[aggregate]`` table of ``speedlab.toml`` (every key optional).

    Attributes
    ----------
    sketch_alpha : float
        Relative error of percentiles (0.01 = 1 %).
    anomaly_window_hours : int
        Trailing window of the host's own results that defines "typical" [h].
    anomaly_mad_factor : float
        ``k``: a test is an anomaly below ``median - k * 1.4826 * MAD`` ...
    anomaly_min_drop_fraction : float
        ... and at least this fraction below the median (so a very steady link does not
        flag a 1 % dip).
    anomaly_min_baseline_tests : int
        Fewer tests than this in the window: only the floor applies.
    anomaly_floor_download_mbps : float or None
        Any download below this is an anomaly [Mbit/s] (``None``: no floor).
    late_data_days : int
        How far back ``scheduler run-due`` looks for late raw results [days].
    staleness_grace_minutes : float
        Inputs written this close before a summary are checked against its recorded
        provenance rather than trusted [min].
    max_workers : int
        Parallel store requests (bounded pool).
    runs_in_store : bool
        Also copy executed notebooks into the store (``runs/`` in the hourly bucket).
    """

    sketch_alpha: float = DEFAULT_ALPHA
    anomaly_window_hours: int = 24
    anomaly_mad_factor: float = 3.0
    anomaly_min_drop_fraction: float = 0.25
    anomaly_min_baseline_tests: int = 8
    anomaly_floor_download_mbps: float | None = None
    late_data_days: int = 35
    staleness_grace_minutes: float = 15.0
    max_workers: int = 16
    runs_in_store: bool = False

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> AggregateSettings:
        """Check the ``[aggregate]`` table.

        Raises
        ------
        ConfigError
            For an unknown key or a value of the wrong type or range.
        """
        table = _known("aggregate", table, {f.name for f in fields(cls)})
        positive_int = ("anomaly_window_hours", "anomaly_min_baseline_tests", "late_data_days",
                        "max_workers")
        for name, value in table.items():
            if name == "runs_in_store":
                ok = isinstance(value, bool)
            elif name in positive_int:
                ok = _is_whole(value) and value > 0
            elif name == "anomaly_floor_download_mbps":
                ok = value is None or (_is_number(value) and value >= 0)
            elif name in ("sketch_alpha", "anomaly_min_drop_fraction"):
                ok = _is_number(value) and 0 < value < 1
            else:
                ok = _is_number(value) and value >= 0
            if not ok:
                raise ConfigError(f"[aggregate] {name} = {value!r} is not valid: see "
                                  "docs/aggregation.md for what each key takes")
        return cls(**table)


# =========================================================================== [dashboard]

@dataclass(frozen=True)
class DashboardSettings:
    """The ``[dashboard]`` table, checked (``docs/dashboard.md``).

    Attributes
    ----------
    heatmap_days : int
        Days of hourly summaries behind the heatmap (1-366) [days].
    title : str or None
        The page's heading (``None``: "Internet Speed Overview").
    pool_size : int
        Kernels Voilà keeps started, with the default view drawn, for the next visitors (0-8;
        0 turns preheating off: each visit starts its own kernel). Each costs memory
        (``docs/dashboard.md``).
    """

    heatmap_days: int = HEATMAP_DAYS
    title: str | None = None
    pool_size: int = 1

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> DashboardSettings:
        """Check the ``[dashboard]`` table.

        Raises
        ------
        ConfigError
            For an unknown key, ``heatmap_days`` that is not a whole number from 1 to 366, or a
            ``title`` that is not a string, or ``pool_size`` that is not a whole number from 0 to 8.
        """
        table = _known("dashboard", table, {f.name for f in fields(cls)})
        days = table.get("heatmap_days", HEATMAP_DAYS)
        if not _is_whole(days) or not 1 <= days <= 366:
            raise ConfigError(f"[dashboard] heatmap_days = {days!r} must be a whole number of days from 1 to 366")
        pool = table.get("pool_size", 1)
        if not _is_whole(pool) or not 0 <= pool <= 8:
            raise ConfigError(f"[dashboard] pool_size = {pool!r} must be a whole number of kernels from 0 to 8 "
                              "(0: no preheated kernels)")
        if "title" in table and not isinstance(table["title"], str):
            raise ConfigError(f"[dashboard] title = {table['title']!r} must be a quoted string")
        return cls(**table)


# =========================================================================== [health]

@dataclass(frozen=True)
class Debounce:
    """When an incident opens and closes.

    ``alert_after`` bad observations among the last ``window`` open it; ``recover_after``
    good ones in a row close it.
    """

    alert_after: int = 1
    window: int = 1
    recover_after: int = 1


DEFAULT_DEBOUNCE = {
    "host_silent": Debounce(1, 1, 1),
    "tier_stale": Debounce(1, 1, 1),
    "run_failed": Debounce(1, 1, 1),
    "below_expected": Debounce(5, 5, 1),
    "tests_failing": Debounce(3, 3, 1),
    **dict.fromkeys(THRESHOLD_KEYS, Debounce(3, 3, 1)),
}


def _positive(table: Mapping, name: str, default: float, where: str = "[health]", at_most: float = math.inf) -> float:
    value = table.get(name, default)
    if not _is_number(value) or not 0 < value <= at_most:
        raise ConfigError(f"{where} {name} = {value!r} must be a positive number"
                          + (f" up to {at_most:g}" if at_most < math.inf else ""))
    return float(value)


@dataclass(frozen=True)
class HealthSettings:
    """The ``[health]`` table, checked (see :mod:`speedlab.health`)."""

    hosts: tuple[str, ...] = ()
    silent_after_minutes: float = 50.0
    silent_after_minutes_by_host: dict = field(default_factory=dict)
    grace_minutes: float = 30.0
    tiers: tuple[str, ...] = TIERS
    max_retry_hours: float = 24.0
    debounce: dict = field(default_factory=lambda: dict(DEFAULT_DEBOUNCE))
    maximums: dict = field(default_factory=dict)  # {key of THRESHOLD_KEYS: value}, the keys set
    maximums_by_host: dict = field(default_factory=dict)  # {key: {host: value}}: [health.<key>_by_host]

    def silent_after(self, host_id: str) -> float:
        """How long ``host_id`` may be quiet [min]."""
        return float(self.silent_after_minutes_by_host.get(host_id, self.silent_after_minutes))

    def maximum(self, kind: str, host_id: str) -> float | None:
        """The limit the ``kind`` check (:data:`THRESHOLD_KEYS`) holds ``host_id`` to (``None``: off)."""
        key = THRESHOLD_KEYS[kind]
        return self.maximums_by_host.get(key, {}).get(host_id, self.maximums.get(key))

    @property
    def results_to_read(self) -> int:
        """How many newest results per host the result checks need."""
        return max(max(d.window, d.recover_after) for k, d in self.debounce.items() if k in RESULT_KINDS) + 5

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> HealthSettings:
        """Check the ``[health]`` table.

        Raises
        ------
        ConfigError
            For unknown keys, bad host ids, unknown tiers, non-positive numbers (percentages over
            100) or a debounce rule that can never fire (``alert_after`` > ``window``).
        """
        table = _known("health", table, {"hosts", "silent_after_minutes", "silent_after_minutes_by_host",
                                         "grace_minutes", "tiers", "max_retry_hours", "debounce",
                                         *THRESHOLD_KEYS.values(), *(f"{k}_by_host" for k in THRESHOLD_KEYS.values())})
        try:
            hosts = tuple(validate_host_id(h) for h in table.get("hosts", ()))
            by_host = {validate_host_id(h): _positive({"m": m}, "m", 1, f"[health.silent_after_minutes_by_host] {h}")
                       for h, m in dict(table.get("silent_after_minutes_by_host", {})).items()}
            maximums, maximums_by_host = {}, {}
            for key in THRESHOLD_KEYS.values():  # each max_* and its [health.<key>_by_host] table
                top, per_host = 100.0 if key.endswith("_pct") else math.inf, table.get(f"{key}_by_host", {})
                if not isinstance(per_host, Mapping):
                    raise ConfigError(f"[health] {key}_by_host must be a table ([health.{key}_by_host]: host = limit)")
                if key in table:
                    maximums[key] = _positive(table, key, 0, "[health]", top)
                maximums_by_host[key] = {validate_host_id(h): _positive(per_host, h, 0, f"[health.{key}_by_host]", top)
                                         for h in per_host}
        except InvalidHostId as exc:
            raise ConfigError(f"[health]: {exc}") from None
        tiers = tuple(table.get("tiers", TIERS))
        bad = [t for t in tiers if t not in TIERS]
        if bad:
            raise ConfigError(f"[health] tiers: unknown {', '.join(map(str, bad))}; use {', '.join(TIERS)}")
        rules = dict(DEFAULT_DEBOUNCE)
        for kind, sub in dict(table.get("debounce", {})).items():
            if kind not in CHECK_KINDS:
                raise ConfigError(f"[health.debounce.{kind}]: unknown check; use {', '.join(CHECK_KINDS)}")
            _known(f"health.debounce.{kind}", sub, ("alert_after", "window", "recover_after"))
            values = {}
            for name in ("alert_after", "window", "recover_after"):
                value = sub.get(name, sub.get("alert_after") if name == "window" else getattr(rules[kind], name))
                if not _is_whole(value) or not 1 <= value <= 1000:
                    raise ConfigError(f"[health.debounce.{kind}] {name} = {value!r} must be a whole number "
                                      "from 1 to 1000")
                values[name] = value
            if values["alert_after"] > values["window"]:
                raise ConfigError(f"[health.debounce.{kind}] alert_after = {values['alert_after']} cannot exceed "
                                  f"window = {values['window']}")
            rules[kind] = Debounce(**values)
        return cls(hosts, _positive(table, "silent_after_minutes", 50.0), by_host,
                   _positive(table, "grace_minutes", 30.0), tiers,
                   _positive(table, "max_retry_hours", 24.0), rules, maximums, maximums_by_host)


# =========================================================================== [api]

@dataclass(frozen=True)
class ApiSettings:
    """The ``[api]`` table, checked (see :mod:`speedlab.api`).

    Attributes
    ----------
    token : str or None
        The token requests must present (at least :data:`MIN_TOKEN_CHARS` characters);
        ``None``: ``$SPEEDLAB_API_TOKEN``, Voilà's token or a generated one.
    public : tuple of str
        Read-only routes that answer without the token.
    """

    token: str | None = None
    public: tuple[str, ...] = ()

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> ApiSettings:
        """Check the ``[api]`` table.

        Raises
        ------
        ConfigError
            For unknown keys, an empty token or one shorter than :data:`MIN_TOKEN_CHARS`, or a
            non-read-only route in ``public``.
        """
        table = _known("api", table, ("token", "public"))
        public = table.get("public", [])
        if isinstance(public, str):
            public = [public]
        bad = [p for p in public if p not in READ_ONLY_ROUTES]
        if bad:
            raise ConfigError(f"[api] public: {', '.join(map(str, bad))} cannot be opened; only the read-only "
                              f"routes can: {', '.join(READ_ONLY_ROUTES)}")
        token = table.get("token")
        if "token" in table and not (isinstance(token, str) and token.strip()):
            raise ConfigError("[api] token must be a non-empty string (or leave it out to have one generated)")
        if token is not None:
            check_token_length(token, "[api] token")
        return cls(token, tuple(public))


def check_token_length(token: str, where: str) -> None:
    """Refuse a token shorter than :data:`MIN_TOKEN_CHARS` (``where`` names its origin)."""
    if len(token.strip()) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{where} has {len(token.strip())} characters, fewer than {MIN_TOKEN_CHARS}: anyone could "
                          "guess it; make a random one with python -c \"import secrets; "
                          "print(secrets.token_urlsafe(24))\"")


# =========================================================================== [alerts]

@dataclass(frozen=True)
class WebhookSettings:
    """One webhook of ``[alerts]`` (``webhook_url``) or ``[alerts.webhooks.NAME]``."""

    name: str
    url: str
    format: str = "generic"
    topic: str | None = None
    token: str | None = None
    headers: dict = field(default_factory=dict)
    timeout_s: float = 10.0

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any], url_key: str = "webhook_url",
                   format_key: str = "format") -> WebhookSettings:
        """Check one webhook's table (``name``: ``default`` for ``[alerts] webhook_url``)."""
        if not isinstance(table, Mapping):
            raise ConfigError(f"[alerts.webhooks.{name}] must be a table")
        table = _known(f"alerts.webhooks.{name}", table,
                       (url_key, format_key, "topic", "token", "headers", "timeout_s"))
        url = table.get(url_key)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"[alerts] webhook {name}: {url_key} must be an http(s) URL")
        fmt = table.get(format_key, "generic")
        if fmt not in FORMATS:
            raise ConfigError(f"[alerts] webhook {name}: format {fmt!r} is not one of {', '.join(FORMATS)}")
        headers = table.get("headers", {})
        if not isinstance(headers, dict):
            raise ConfigError(f"[alerts] webhook {name}: headers must be a table of name = value")
        return cls(name, url, fmt, table.get("topic"), table.get("token"), headers,
                   float(table.get("timeout_s", 10.0)))


@dataclass(frozen=True)
class EmailSettings:
    """``[alerts.email]``: SMTP delivery (``password_env`` is read when the channel is built)."""

    smtp_host: str
    sender: str
    recipients: tuple[str, ...]
    smtp_port: int = 587
    security: str = "starttls"
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    timeout_s: float = 20.0

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> EmailSettings:
        """Check the ``[alerts.email]`` table."""
        if not isinstance(table, Mapping):
            raise ConfigError("[alerts.email] must be a table")
        table = _known("alerts.email", table, ("smtp_host", "smtp_port", "security", "username", "password",
                                               "password_env", "from", "to", "timeout_s"))
        recipients = table.get("to")
        if isinstance(recipients, str):
            recipients = [recipients]
        if not table.get("smtp_host") or not table.get("from") or not recipients:
            raise ConfigError("[alerts.email] needs smtp_host, from and to")
        security = table.get("security", "starttls")
        if security not in ("starttls", "ssl", "none"):
            raise ConfigError(f"[alerts.email] security = {security!r} must be starttls, ssl or none")
        port = table.get("smtp_port", 465 if security == "ssl" else 587)
        return cls(str(table["smtp_host"]), str(table["from"]), tuple(recipients), int(port), security,
                   table.get("username"), table.get("password"), table.get("password_env") or None,
                   float(table.get("timeout_s", 20.0)))


@dataclass(frozen=True)
class AlertSettings:
    """The ``[alerts]`` table, checked (see :mod:`speedlab.alerts`).

    Attributes
    ----------
    log : bool
        Also write alerts to the health job log.
    webhooks : tuple of WebhookSettings
        ``[alerts] webhook_url`` (named ``default``) first, then ``[alerts.webhooks.NAME]`` by name.
    email : EmailSettings or None
    """

    log: bool = True
    webhooks: tuple[WebhookSettings, ...] = ()
    email: EmailSettings | None = None

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> AlertSettings:
        """Check the ``[alerts]`` table.

        Raises
        ------
        ConfigError
            For unknown keys, a webhook without an http(s) URL or with an unknown format,
            e-mail without host/from/to.
        """
        table = _known("alerts", table, ("log", "webhook_url", "webhook_format", "webhooks", "email"))
        webhooks = []
        if "webhook_url" in table:
            webhooks.append(WebhookSettings.from_table("default", {"webhook_url": table["webhook_url"],
                                                                   "format": table.get("webhook_format", "generic")}))
        named = table.get("webhooks", {})
        if not isinstance(named, Mapping):
            raise ConfigError("[alerts] webhooks must be tables: [alerts.webhooks.NAME]")
        webhooks += [WebhookSettings.from_table(name, sub) for name, sub in sorted(named.items())]
        email = EmailSettings.from_table(table["email"]) if "email" in table else None
        return cls(bool(table.get("log", True)), tuple(webhooks), email)


# =========================================================================== [infra]

@dataclass(frozen=True)
class InfraSettings:
    """The ``[infra]`` table, checked (see :mod:`speedlab.infra`). Ages are [days]; 0 switches a rule part off.

    ``versioning`` holds bucket names (tiers resolved through ``[buckets]``).
    """

    raw_transition_days: int = 30
    raw_storage_class: str = "STANDARD_IA"
    raw_expire_days: int = 0
    versioning: tuple[str, ...] = ()
    noncurrent_expire_days: int = 90

    @classmethod
    def from_table(cls, table: Mapping[str, Any], buckets: Buckets | None = None) -> InfraSettings:
        """Check the ``[infra]`` table (``buckets``: what tiers in ``versioning`` name; default the defaults).

        Raises
        ------
        ConfigError
            For unknown keys, negative ages, an unknown storage class, a transition sooner than
            the class allows, or an expiry that does not come after the transition.
        """
        buckets = buckets or Buckets()
        table = _known("infra", table, {f.name for f in fields(cls)})
        transition = _days(table, "raw_transition_days", 30)
        expire = _days(table, "raw_expire_days", 0)
        noncurrent = _days(table, "noncurrent_expire_days", 90)
        storage_class = str(table.get("raw_storage_class", "STANDARD_IA")).upper()
        if storage_class not in STORAGE_CLASSES:
            raise ConfigError(f"[infra] raw_storage_class = {storage_class!r} is not one of "
                              f"{', '.join(STORAGE_CLASSES)}")
        if transition and transition < STORAGE_CLASSES[storage_class]:
            raise ConfigError(f"[infra] raw_transition_days = {transition}: S3 moves objects to "
                              f"{storage_class} after {STORAGE_CLASSES[storage_class]} days at the earliest")
        if transition and expire and expire <= transition:
            raise ConfigError(f"[infra] raw_expire_days = {expire} must be later than raw_transition_days "
                              f"= {transition} (or set raw_transition_days = 0)")
        versioning = table.get("versioning", False)
        if versioning is True:
            names: tuple[str, ...] = tuple(sorted(set(buckets.as_dict().values())))
        elif versioning is False:
            names = ()
        elif isinstance(versioning, list) and all(isinstance(v, str) for v in versioning):
            by_tier = buckets.as_dict()
            known = set(by_tier.values())
            bad = [v for v in versioning if v not in by_tier and v not in known]
            if bad:
                raise ConfigError(f"[infra] versioning names {', '.join(bad)}: use tiers "
                                  f"({', '.join(by_tier)}) or configured bucket names")
            wanted: list[str] = versioning
            names = tuple(sorted({by_tier.get(v, v) for v in wanted}))
        else:
            raise ConfigError(f"[infra] versioning = {versioning!r} must be true, false or a list of tiers")
        return cls(transition, storage_class, expire, names, noncurrent)


def _days(table: Mapping, name: str, default: int) -> int:
    value = table.get(name, default)
    if not _is_whole(value) or value < 0:
        raise ConfigError(f"[infra] {name} = {value!r} must be a whole number of days >= 0 "
                          "(0 switches it off)")
    return value
