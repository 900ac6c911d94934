"""Typed, frozen records and their JSON form (results: schema version 2; summaries: 1). No I/O.

A :class:`SpeedTestResult` is one test on one host in one 15-minute slot; its JSON is a
contract shared with other tools and the original system's data::

    {"schema_version": 2, "host_id": "home-primary", "engine": "speedtest-cli", "status": "ok",
     "error": null, "timestamp_utc": "2025-12-29T08:33:12Z",
     "timestamp_local": "2025-12-29T14:03:12+05:30", "slot": "2025-12-29T14:00:00+05:30",
     "download_mbps": 187.4, "upload_mbps": 94.1, "ping_ms": 11.8, "jitter_ms": 0.9,
     "packet_loss_pct": null, "latency_idle_ms": 12.1, "latency_download_ms": 48.3,
     "latency_upload_ms": 95.0, "server": {...}, "client": {...}, "connection_type": "Ethernet",
     "interface": "eth0", "bytes_sent": 52428800, "bytes_received": 234881024, "duration_s": 21.3}

Schema 2 added the latency probes' figures (:data:`LATENCY_FIELDS`). A schema-1 document (the
original system's and speedlab's first results) has none of them: it reads with them ``None``
(a key of that name in a schema-1 document is an unknown field, kept in ``extra``) and writes
back exactly as it was.

Reading validates: a missing field, a wrong type, a negative or absurd value (a speed above
100 Gbit/s), an unknown schema version or an unparseable document raises
:class:`~speedlab.errors.InvalidRecord` naming the object and the problem. Fields that an
engine does not provide are ``null``. Unknown extra fields are kept in ``extra`` so that a
newer writer's data survives a round trip.

A :class:`TierSummary` is one period's roll-up; :mod:`speedlab.aggregate` fills it.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from .errors import InvalidHostId, InvalidRecord
from .layout import validate_host_id
from .periods import SLOT_MINUTES, parse_timestamp

#: The schema version of summaries (and of the first raw results).
SCHEMA_VERSION = 1
#: The schema version raw results are written with (2: the latency probes' fields).
RECORD_SCHEMA_VERSION = 2
#: Raw result versions this speedlab reads.
RECORD_SCHEMA_VERSIONS = (1, 2)
#: The fields record schema 2 added, all [ms] (``None``: not measured): the median idle probe
#: round trip, and the median probe round trip during the download and during the upload.
LATENCY_FIELDS = ("latency_idle_ms", "latency_download_ms", "latency_upload_ms")
#: The latency figures a summary carries (record field -> short name in ``avg_<short>``...,
#: ``stats.<field>``) [ms; packet loss %]; summaries written before them have none.
SUMMARY_LATENCY_METRICS = {"latency_idle_ms": "latency_idle", "jitter_ms": "jitter",
                           "latency_download_ms": "latency_download", "latency_upload_ms": "latency_upload",
                           "packet_loss_pct": "packet_loss"}
#: Speeds above this are impossible for any consumer link today [Mbit/s] (100 Gbit/s).
MAX_SPEED_MBPS = 100_000.0
#: Pings above this are reported as invalid rather than averaged in [ms].
MAX_PING_MS = 60_000.0
CONNECTION_TYPES = ("Ethernet", "Wi-Fi 2.4GHz", "Wi-Fi 5GHz", "Wi-Fi 6GHz", "Wi-Fi",
                    "Cellular", "VPN", "Unknown")
STATUSES = ("ok", "failed")


def _where(source: str | None) -> str:
    return f" in {source}" if source else ""


def _check_type(source: str | None, name: str, value: Any, kinds: tuple, nullable: bool) -> None:
    if type(value) in kinds:  # the common case (a bool only where bool is one of the kinds)
        return
    if value is None:
        if not nullable:
            raise InvalidRecord(f"field {name!r} must not be null{_where(source)}")
        return
    if isinstance(value, bool) and bool not in kinds:
        raise InvalidRecord(f"field {name!r} must be {'/'.join(k.__name__ for k in kinds)}, "
                            f"not a boolean{_where(source)}")
    if not isinstance(value, kinds):
        raise InvalidRecord(f"field {name!r} must be {'/'.join(k.__name__ for k in kinds)}, "
                            f"not {type(value).__name__} ({value!r}){_where(source)}")


def _check_range(source: str | None, name: str, value: float | None, high: float, unit: str) -> None:
    if value is None:
        return
    if not math.isfinite(value) or value < 0 or value > high:
        raise InvalidRecord(f"field {name!r} = {value!r} {unit} is impossible (allowed 0 to {high:g})"
                            f"{_where(source)}")


@functools.cache
def _fields(cls) -> tuple[Field, ...]:
    """``dataclasses.fields(cls)``, computed once per class (a record class never changes; the
    readers build hundreds of thousands of records)."""
    return fields(cls)


def _from_dict(cls, data: Any, source: str | None, context: str, absent: tuple[str, ...] = ()):
    """Build dataclass ``cls`` from ``data``: every declared field must be present, except
    ``absent`` ones (left at their defaults; a key of that name in ``data`` goes to ``extra``)."""
    if not isinstance(data, dict):
        raise InvalidRecord(f"{context} must be a JSON object, not {type(data).__name__}{_where(source)}")
    names = [f.name for f in _fields(cls) if f.name != "extra" and f.name not in absent]
    missing = [n for n in names if n not in data and n not in getattr(cls, "_OPTIONAL", ())]
    if missing:
        raise InvalidRecord(f"{context} is missing field(s) {', '.join(missing)}{_where(source)}")
    kwargs = {n: data[n] for n in names if n in data}
    for name, (kinds, nullable) in cls._TYPES.items():
        if name in kwargs:
            _check_type(source, f"{context}.{name}" if context != "record" else name, kwargs[name], kinds, nullable)
    if any(f.name == "extra" for f in _fields(cls)):
        kwargs["extra"] = {k: v for k, v in data.items() if k not in names}
    return _build(cls, kwargs)


def _build(cls, values: dict):
    """Make a frozen ``cls`` without ``__post_init__`` (the caller validates, naming the source)."""
    obj = object.__new__(cls)
    for f in _fields(cls):
        if f.name in values:
            value = values[f.name]
        elif f.default_factory is not MISSING:
            value = f.default_factory()
        else:
            value = f.default
        object.__setattr__(obj, f.name, value)
    return obj


#: A record class's field checks: name -> (accepted types, may be None).
_FieldTypes = dict[str, tuple[tuple[type, ...], bool]]


@dataclass(frozen=True)
class Server:
    """The speed test server that answered. ``distance_km`` [km] from the client."""

    id: str | None = None
    name: str | None = None
    sponsor: str | None = None
    country: str | None = None
    host: str | None = None
    distance_km: float | None = None

    _TYPES: ClassVar[_FieldTypes] = {"id": ((str,), True), "name": ((str,), True), "sponsor": ((str,), True),
                                     "country": ((str,), True), "host": ((str,), True),
                                     "distance_km": ((int, float), True)}
    _OPTIONAL = ("id", "name", "sponsor", "country", "host", "distance_km")


@dataclass(frozen=True)
class Client:
    """The testing client as the engine saw it: public ``ip`` and ``isp``."""

    ip: str | None = None
    isp: str | None = None

    _TYPES: ClassVar[_FieldTypes] = {"ip": ((str,), True), "isp": ((str,), True)}
    _OPTIONAL = ("ip", "isp")


@dataclass(frozen=True)
class TestError:
    """Why a test failed: a machine-readable ``kind`` (``no_connectivity``, ``http_403``,
    ``config_refused``, ``no_server``, ``timeout``, ``engine_error``…) and a human message."""

    __test__ = False  # not a pytest test class

    kind: str
    message: str

    _TYPES: ClassVar[_FieldTypes] = {"kind": ((str,), False), "message": ((str,), False)}


@dataclass(frozen=True)
class SpeedTestResult:
    """One speed test on one host in one 15-minute slot (schema version 2; 1 is read too).

    Speeds are [Mbit/s], ``ping_ms`` (the engine's own figure), ``jitter_ms`` and the
    :data:`LATENCY_FIELDS` [ms], ``packet_loss_pct`` [%],
    ``bytes_sent``/``bytes_received`` [bytes], ``duration_s`` [s]. Timestamps are ISO 8601
    strings: ``timestamp_utc`` ends in ``Z``; ``timestamp_local`` and ``slot`` carry the
    configured zone's offset. ``engine_output`` keeps the engine's raw result for audits.
    """

    host_id: str
    engine: str
    status: str
    error: TestError | None
    timestamp_utc: str
    timestamp_local: str
    slot: str
    download_mbps: float | None
    upload_mbps: float | None
    ping_ms: float | None
    jitter_ms: float | None = None
    packet_loss_pct: float | None = None
    latency_idle_ms: float | None = None
    latency_download_ms: float | None = None
    latency_upload_ms: float | None = None
    server: Server | None = None
    client: Client | None = None
    connection_type: str = "Unknown"
    interface: str | None = None
    bytes_sent: int | None = None
    bytes_received: int | None = None
    duration_s: float | None = None
    engine_output: dict | None = None
    schema_version: int = RECORD_SCHEMA_VERSION
    extra: dict = field(default_factory=dict, compare=False)

    __test__ = False

    _NUM = (int, float)
    _TYPES: ClassVar[_FieldTypes] = {
        "schema_version": ((int,), False), "host_id": ((str,), False), "engine": ((str,), False),
        "status": ((str,), False), "error": ((dict, TestError), True),
        "timestamp_utc": ((str,), False), "timestamp_local": ((str,), False),
        "slot": ((str,), False), "download_mbps": (_NUM, True), "upload_mbps": (_NUM, True),
        "ping_ms": (_NUM, True), "jitter_ms": (_NUM, True), "packet_loss_pct": (_NUM, True),
        "latency_idle_ms": (_NUM, True), "latency_download_ms": (_NUM, True), "latency_upload_ms": (_NUM, True),
        "server": ((dict, Server), True), "client": ((dict, Client), True),
        "connection_type": ((str,), False), "interface": ((str,), True),
        "bytes_sent": ((int,), True), "bytes_received": ((int,), True),
        "duration_s": (_NUM, True), "engine_output": ((dict,), True),
    }
    #: Fields a version-1 document may leave out (added after the contract was fixed).
    _OPTIONAL = ("engine_output",)

    def __post_init__(self) -> None:
        self.validate()

    # ---------------------------------------------------------------- validation
    def validate(self, source: str | None = None, now: datetime | None = None, *, typed: bool = False) -> None:
        """Check types, ranges and consistency; raise :class:`InvalidRecord` naming the problem.

        With ``now`` (aware), a test dated more than one slot after it is refused too: a
        result from the future would pass for a host's newest and hide a silent host.
        ``typed``: the field types are checked already (:meth:`from_dict`); the rest is checked.
        """
        for name, (kinds, nullable) in () if typed else self._TYPES.items():
            _check_type(source, name, getattr(self, name), kinds, nullable)
        if self.schema_version not in RECORD_SCHEMA_VERSIONS:
            raise InvalidRecord(_unknown_version(self.schema_version, source))
        if self.schema_version == 1 and any(getattr(self, name) is not None for name in LATENCY_FIELDS):
            raise InvalidRecord(f"a schema-1 record has no {'/'.join(LATENCY_FIELDS)} (write schema_version "
                                f"{RECORD_SCHEMA_VERSION}){_where(source)}")
        try:
            validate_host_id(self.host_id)
        except Exception as exc:
            raise InvalidRecord(f"{exc}{_where(source)}") from None
        if self.status not in STATUSES:
            raise InvalidRecord(f"field 'status' = {self.status!r} must be 'ok' or 'failed'{_where(source)}")
        for name, high, unit in (("download_mbps", MAX_SPEED_MBPS, "Mbit/s"),
                                 ("upload_mbps", MAX_SPEED_MBPS, "Mbit/s"),
                                 ("ping_ms", MAX_PING_MS, "ms"), ("jitter_ms", MAX_PING_MS, "ms"),
                                 *((name, MAX_PING_MS, "ms") for name in LATENCY_FIELDS),
                                 ("packet_loss_pct", 100.0, "%"),
                                 ("duration_s", 86_400.0, "s"),
                                 ("bytes_sent", 1e15, "bytes"), ("bytes_received", 1e15, "bytes")):
            _check_range(source, name, getattr(self, name), high, unit)
        if self.status == "failed":
            if self.error is None:
                raise InvalidRecord(f"a failed test needs an 'error' with kind and message{_where(source)}")
            if self.download_mbps is not None or self.upload_mbps is not None:
                raise InvalidRecord(f"a failed test must have null speeds{_where(source)}")
        else:
            if self.error is not None:
                raise InvalidRecord(f"an 'ok' test must have 'error': null{_where(source)}")
            if self.download_mbps is None and self.upload_mbps is None:
                raise InvalidRecord(f"an 'ok' test needs a download or upload speed{_where(source)}")
        try:
            utc = parse_timestamp(self.timestamp_utc)
            local = parse_timestamp(self.timestamp_local)
            slot = parse_timestamp(self.slot)
        except ValueError as exc:
            raise InvalidRecord(f"bad timestamp: {exc}{_where(source)}") from None
        if utc.utcoffset() != timedelta(0):  # parse_timestamp returns aware datetimes only
            raise InvalidRecord(f"timestamp_utc {self.timestamp_utc!r} is not UTC{_where(source)}")
        if utc != local:
            raise InvalidRecord(f"timestamp_local {self.timestamp_local!r} is not the same instant "
                                f"as timestamp_utc {self.timestamp_utc!r}{_where(source)}")
        if slot.minute % SLOT_MINUTES or slot.second or slot.microsecond:
            raise InvalidRecord(f"slot {self.slot!r} is not the start of a 15-minute slot{_where(source)}")
        if not (0 <= (local - slot).total_seconds() < 86_400):
            raise InvalidRecord(f"slot {self.slot!r} is not at or before the test's time "
                                f"{self.timestamp_local!r}{_where(source)}")
        if now is not None and utc > now + timedelta(minutes=SLOT_MINUTES):
            raise InvalidRecord(f"timestamp_utc {self.timestamp_utc!r} is after now "
                                f"({now.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}): a result from "
                                f"the future (check the clock of the host that made it){_where(source)}")

    # ---------------------------------------------------------------- derived values
    @property
    def ok(self) -> bool:
        """True for a successful test."""
        return self.status == "ok"

    @functools.cached_property
    def time_utc(self) -> datetime:
        """``timestamp_utc`` as an aware datetime (parsed once: the rows and rules ask often)."""
        return parse_timestamp(self.timestamp_utc)

    @functools.cached_property
    def slot_start(self) -> datetime:
        """``slot`` as an aware datetime (local offset; parsed once)."""
        return parse_timestamp(self.slot)

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        """The JSON object of the record's schema version (``extra`` fields merged back in; a
        schema-1 record has no :data:`LATENCY_FIELDS`)."""
        data: dict[str, Any] = {"schema_version": self.schema_version}
        skip = ("extra", "schema_version", *(LATENCY_FIELDS if self.schema_version == 1 else ()))
        for f in fields(self):
            if f.name in skip:
                continue
            value = getattr(self, f.name)
            if f.name == "engine_output" and value is None:
                continue  # optional, written only when an engine gave it
            data[f.name] = asdict(value) if hasattr(value, "__dataclass_fields__") else value
        data.update(self.extra)
        return data

    def to_json(self) -> str:
        """The record as compact JSON text."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> SpeedTestResult:
        """Validate and build a record from a decoded JSON object; ``source`` names it in errors."""
        version = data.get("schema_version") if isinstance(data, dict) else None
        if isinstance(data, dict) and "schema_version" in data and (
                isinstance(version, bool) or version not in RECORD_SCHEMA_VERSIONS):
            raise InvalidRecord(_unknown_version(version, source))
        record = _from_dict(cls, data, source, "record", LATENCY_FIELDS if version == 1 else ())
        nested = {}
        if isinstance(record.error, dict):
            nested["error"] = _from_dict(TestError, record.error, source, "error")
        if isinstance(record.server, dict):
            nested["server"] = _from_dict(Server, record.server, source, "server")
        if isinstance(record.client, dict):
            nested["client"] = _from_dict(Client, record.client, source, "client")
        try:
            if nested:
                record = _build(cls, {**{f.name: getattr(record, f.name) for f in fields(cls)}, **nested})
            record.validate(source, typed=True)  # _from_dict checked every field's type
        except InvalidRecord:
            raise
        except (TypeError, ValueError) as exc:
            raise InvalidRecord(f"{exc}{_where(source)}") from None
        return record

    @classmethod
    def from_json(cls, text: str | bytes, source: str | None = None) -> SpeedTestResult:
        """Parse and validate JSON text; corrupt JSON raises :class:`InvalidRecord`."""
        return cls.from_dict(decode_json(text, source), source)


def _unknown_version(version: Any, source: str | None) -> str:
    return (f"unknown schema_version {version!r}{_where(source)}: this speedlab reads results of version "
            f"{' or '.join(map(str, RECORD_SCHEMA_VERSIONS))}; upgrade speedlab")


def slot_preference(key: str, result: SpeedTestResult) -> tuple:
    """Sort key of the one result kept per host and slot (smallest wins): a *full* ``ok``
    (download, upload and ping all measured) before an ``ok`` missing one of them before a ``failed`` test, then the
    earliest ``timestamp_utc``, then the key. The one rule: the rollup
    (:func:`speedlab.aggregate.dedupe_slots`), the dashboard's 15-minute rows, ``dedupe``
    (which object of a crowded slot stays) and ``health`` (which result of a slot is judged)."""
    if not result.ok:
        rank = 2
    else:
        rank = 0 if None not in (result.download_mbps, result.upload_mbps, result.ping_ms) else 1
    return (rank, result.time_utc, key)


def below_plan(download_mbps: float | None, upload_mbps: float | None, plan_download_mbps: float | None,
               plan_upload_mbps: float | None, fraction: float) -> bool | None:
    """Whether speeds [Mbit/s] are below ``fraction`` x the plan in either direction (pure).

    The one "below plan" rule: a summary's averages (the rollup), a dashboard row (query) and
    one result (health) are all judged by it. ``None``: nothing to judge (no plan figure, or
    no speed, for both directions).
    """
    judged = [value < promised * fraction
              for value, promised in ((download_mbps, plan_download_mbps), (upload_mbps, plan_upload_mbps))
              if value is not None and promised is not None]
    return any(judged) if judged else None


def decode_json(text: str | bytes, source: str | None = None) -> Any:
    """Decode JSON text, raising :class:`InvalidRecord` (with the position) when it is corrupt."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise InvalidRecord(f"not UTF-8 text{_where(source)}: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise InvalidRecord(f"corrupt JSON{_where(source)}: {exc.msg} at line {exc.lineno} "
                            f"column {exc.colno}") from None


#: Summary fields that are counts: a non-negative integer when present (``null`` allowed).
_SUMMARY_COUNTS = ("records_aggregated", "anomalies_count", "failed_tests", "rejected_records",
                   "duplicates_ignored", "expected_slots", "slots_with_result", "days",
                   "legacy_inputs", "source_objects")
#: Summary fields that are measurements: a finite number >= 0 when present (``null`` allowed).
_SUMMARY_FIGURES = tuple(f"{kind}_{metric}" for metric in ("download", "upload", "ping",
                                                           *SUMMARY_LATENCY_METRICS.values())
                         for kind in ("avg", "min", "max", "median", "p95"))


def _check_summary_values(data: dict, source: str | None) -> None:
    """The value rules of a stored summary beyond the field types (one rule for every reader).

    Counts are non-negative integers, measurements finite and non-negative, ``hosts`` and
    ``connection_types`` lists of strings, ``records_by_host`` a mapping of host to count.

    Raises
    ------
    InvalidRecord
        Naming the first field that breaks a rule and ``source``.
    """
    for name in _SUMMARY_COUNTS:
        value = data.get(name)
        if value is None or (type(value) is int and value >= 0):
            continue  # the common case, decided without the general checks below
        _check_type(source, name, value, (int,), True)
        if value < 0:
            raise InvalidRecord(f"field {name!r} = {value} must not be negative{_where(source)}")
    for name in _SUMMARY_FIGURES:
        value = data.get(name)
        if value is None or (type(value) is float and 0.0 <= value < math.inf):
            continue
        _check_type(source, name, value, (int, float), True)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise InvalidRecord(f"field {name!r} = {value!r} must be a finite number >= 0{_where(source)}")
    for name in ("hosts", "connection_types"):
        value = data.get(name)
        _check_type(source, name, value, (list, tuple), True)
        if value is not None and not all(isinstance(v, str) for v in value):
            raise InvalidRecord(f"field {name!r} must be a list of strings{_where(source)}")
    by_host = data.get("records_by_host")
    _check_type(source, "records_by_host", by_host, (dict,), True)
    if by_host is not None and not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in by_host.values()):
        raise InvalidRecord(f"field 'records_by_host' must map each host to a count >= 0{_where(source)}")
    for host in [*(data.get("hosts") or ()), *(by_host or ())]:
        try:
            validate_host_id(host)
        except InvalidHostId as exc:
            raise InvalidRecord(f"field 'hosts'/'records_by_host' names {exc}{_where(source)}") from None


@dataclass(frozen=True)
class TierSummary:
    """One period's roll-up for one host or for all hosts (``host_id`` ``None``).

    The seed's fields are attributes (``avg_download`` [Mbit/s], ``avg_upload`` [Mbit/s],
    ``avg_ping`` [ms], ``min_download``, ``max_download``, ``records_aggregated``,
    ``connection_types``, ``anomalies_count``). ``fields`` holds everything else a tier summary
    carries (the period's label under its tier's name, percentiles, coverage, plan, the
    mergeable ``stats``, provenance); :mod:`speedlab.aggregate` defines them and
    ``docs/aggregation.md`` lists them. :meth:`to_dict` writes one flat JSON object with the
    contract's fields in a fixed order (:data:`SUMMARY_FIELD_ORDER`) and any others after.

    Reading is lenient on purpose: the original system's summaries carry only the seed's
    fields, and newer writers may add fields; both load (missing optional fields are absent
    from ``fields``, extra ones are kept).
    """

    tier: str
    period: str
    host_id: str | None
    avg_download: float | None
    avg_upload: float | None
    avg_ping: float | None
    min_download: float | None
    max_download: float | None
    records_aggregated: int
    connection_types: tuple[str, ...] = ()
    anomalies_count: int = 0
    fields: dict = field(default_factory=dict, compare=False)
    schema_version: int = SCHEMA_VERSION

    _CORE = ("schema_version", "tier", "period", "host_id", "avg_download", "avg_upload",
             "avg_ping", "min_download", "max_download", "records_aggregated",
             "connection_types", "anomalies_count")

    def to_dict(self) -> dict:
        """The summary as one flat JSON object (contract fields first, in a fixed order)."""
        data = {name: getattr(self, name) for name in self._CORE}
        data["connection_types"] = list(self.connection_types)
        data.update(self.fields)
        names = tuple(data)
        order = _ORDERS.get(names)
        if order is None:  # summaries share a few sets of fields: each order is worked out once
            order = (*(n for n in SUMMARY_FIELD_ORDER if n in data), *(n for n in names if n not in _ORDERED))
            if len(_ORDERS) >= 256:
                _ORDERS.clear()
            _ORDERS[names] = order
        return {name: data[name] for name in order}

    def to_json(self) -> str:
        """The summary as compact JSON text (one line: the C encoder, ~5x faster than indented)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    def get(self, name: str, default: Any = None) -> Any:
        """Any field by its JSON name (core or in ``fields``), ``default`` if absent."""
        if name in self._CORE:
            value = getattr(self, name)
            return list(value) if name == "connection_types" else value
        return self.fields.get(name, default)

    def with_fields(self, **values: Any) -> TierSummary:
        """A copy with some non-core fields added or replaced (provenance, for example)."""
        return _build(type(self), {**{f.name: getattr(self, f.name) for f in fields(type(self))},
                                   "fields": {**self.fields, **values}})

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None, *, check: bool = True) -> TierSummary:
        """Validate and build a summary from a decoded JSON object (seed summaries too).

        ``check=False`` skips the type and value rules, for a summary its caller has just computed
        from validated inputs (:func:`speedlab.aggregate.hour_summaries`); it is built the same way.
        """
        if not check:
            return cls._built(data)
        if not isinstance(data, dict):
            raise InvalidRecord(f"summary must be a JSON object, not {type(data).__name__}"
                                f"{_where(source)}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise InvalidRecord(f"unknown summary schema_version {version!r}{_where(source)}: "
                                f"this speedlab reads version {SCHEMA_VERSION}; upgrade speedlab")
        missing = [n for n in ("avg_download", "avg_upload", "avg_ping", "records_aggregated")
                   if n not in data]
        if missing:
            raise InvalidRecord(f"summary is missing field(s) {', '.join(missing)}{_where(source)}")
        for name in ("avg_download", "avg_upload", "avg_ping", "min_download", "max_download"):
            _check_type(source, name, data.get(name), (int, float), True)
        _check_type(source, "records_aggregated", data["records_aggregated"], (int,), False)
        _check_type(source, "anomalies_count", data.get("anomalies_count"), (int,), True)
        _check_type(source, "connection_types", data.get("connection_types"), (list, tuple), True)
        _check_type(source, "host_id", data.get("host_id"), (str,), True)
        _check_type(source, "stats", data.get("stats"), (dict,), True)
        _check_summary_values(data, source)
        return cls._built(data)

    @classmethod
    def _built(cls, data: dict) -> TierSummary:
        core: dict[str, Any] = {n: data.get(n) for n in cls._CORE if n != "schema_version"}
        core["connection_types"] = tuple(core.get("connection_types") or ())
        core["anomalies_count"] = core.get("anomalies_count") or 0
        rest = {k: v for k, v in data.items() if k not in cls._CORE}
        return cls(**core, fields=rest)

    @classmethod
    def from_json(cls, text: str | bytes, source: str | None = None) -> TierSummary:
        """Parse and validate summary JSON text."""
        return cls.from_dict(decode_json(text, source), source)


#: A summary's field names as built -> their JSON order (:meth:`TierSummary.to_dict`).
_ORDERS: dict[tuple[str, ...], tuple[str, ...]] = {}

#: The order of a summary's JSON fields (the contract's; unknown fields follow).
SUMMARY_FIELD_ORDER = (
    "schema_version", "tier", "period", "hour", "date", "week", "week_start", "week_end",
    "month", "year", "period_start", "period_end", "timezone", "host_id", "hosts",
    "avg_download", "avg_upload", "avg_ping", "min_download", "max_download", "min_upload",
    "max_upload", "min_ping", "max_ping", "median_download", "p95_download", "median_upload",
    "p95_upload", "median_ping", "p95_ping",
    *(f"avg_{short}" for short in SUMMARY_LATENCY_METRICS.values()),
    *(f"{kind}_{short}" for short in SUMMARY_LATENCY_METRICS.values() for kind in ("min", "max")),
    *(f"{kind}_{short}" for short in SUMMARY_LATENCY_METRICS.values() for kind in ("median", "p95")),
    "records_aggregated", "failed_tests",
    "rejected_records", "duplicates_ignored", "expected_slots", "slots_with_result",
    "coverage_pct", "days", "connection_types", "anomalies_count", "expected_download_mbps",
    "expected_upload_mbps", "below_expected", "records_by_host", "exact", "stats",
    "source_objects", "source_max_modified", "generated_at",
)
_ORDERED = frozenset(SUMMARY_FIELD_ORDER)
