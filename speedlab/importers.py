"""Other trackers' history as speedlab records: one pure parser per format (bytes in, records out).

Each parser takes the file's bytes, the host id the results belong to and the configured time
zone, and returns a :class:`Parsed`: the records with the line each came from, and the lines
it skipped with the reason. Nothing here reads a file or a store (:mod:`speedlab.importing`
does); ``docs/import-export.md`` has the field mapping of every format.

==================  ==============================================  ==========================
format              file                                            speeds in the file
==================  ==============================================  ==========================
ookla               ``speedtest --format=json`` (Ookla CLI), one    ``bandwidth`` [bytes/s]
                    JSON object per line; ``type: log`` lines are
                    not results
speedtest-tracker   speedtest-tracker's CSV export (``Download``,    [bit/s] (``download_bits``)
                    ``Upload``, ``Ping``, ``Created at``, ...)
speedtest-tracker-  the same CSV from versions that exported the     [bytes/s]
bytes               stored bytes per second (before 2024)
myspeed             MySpeed's JSON export (``/api/export/json``)    [Mbit/s]
librespeed          ``librespeed-cli --json`` (an array, or one     [Mbit/s]
                    array/object per line)
speedlab            speedlab's own raw export (JSON lines or CSV)   [Mbit/s]
==================  ==============================================  ==========================

A value that breaks the record schema (a negative or absurd speed, a timestamp without a zone
where one is needed, a date outside 1970-9998) skips that line with the schema's message; a
direction that moved no data makes a ``failed`` record (``transfer_failed``), as the collector
would store it.
"""

from __future__ import annotations

import bisect
import csv
import functools
import io
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any

from .errors import InvalidHostId, InvalidRecord, LayoutError, TransferError
from .layout import validate_host_id
from .ookla_json import OOKLA_PATHS, ookla_value
from .periods import check_moment, parse_timestamp, slot_of, to_local
from .records import LATENCY_FIELDS, Client, Server, SpeedTestResult, TestError

__all__ = ["FORMATS", "Parsed", "Skipped", "flatten_result", "parse_import", "parse_librespeed", "parse_myspeed",
           "parse_ookla", "parse_speedlab", "parse_speedtest_tracker", "record_times", "unflatten_result"]

UTC = timezone.utc
#: Why a line was skipped: not a result by design (a log line, a test without speeds), a value
#: that breaks the schema or cannot be read, another result of the file in the same slot, a
#: slot of the store already holding a different result.
SKIP_KINDS = ("not_a_result", "invalid", "same_slot_in_file", "slot_taken", "other_host")


@dataclass(frozen=True)
class Skipped:
    """One line (or entry) left out: where (``line``, 1-based), ``kind`` (:data:`SKIP_KINDS`) and why."""

    line: int
    kind: str
    reason: str

    def to_dict(self) -> dict:
        """Plain data for ``--json``."""
        return {"line": self.line, "kind": self.kind, "reason": self.reason}


@dataclass
class Parsed:
    """A parser's answer: ``records`` as ``(line, record)`` in file order, and ``skipped``."""

    records: list[tuple[int, SpeedTestResult]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def skip(self, line: int, reason: str, kind: str = "invalid") -> None:
        self.skipped.append(Skipped(line, kind, reason))


# --------------------------------------------------------------------------- shared helpers

def record_times(host_id: str, started: datetime, tz: str) -> dict:
    """A record's ``host_id`` and time fields for a test at ``started`` (aware), to the whole
    second, as the collector writes them."""
    started = check_moment(started.astimezone(UTC).replace(microsecond=0), "the test's time")
    return {"host_id": host_id, "timestamp_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timestamp_local": to_local(started, tz).isoformat(), "slot": slot_of(started, tz).isoformat()}


def _moment(value: Any, naive_utc: bool = False) -> datetime:
    """An ISO 8601 time with ``Z`` or an offset (without one: UTC if ``naive_utc``, else an error)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"no test time (got {value!r})")
    text = value.strip()
    if naive_utc:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return parse_timestamp(text)


def _number(value: Any, name: str, empty: bool = False) -> float | None:
    """A finite number from JSON or CSV text; ``None`` for a missing or empty value if ``empty``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if empty:
            return None
        raise ValueError(f"{name} is missing")
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return number


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _mbps(value: float | None, factor: float, name: str) -> float | None:
    """A speed in the file's unit -> [Mbit/s] (3 decimals, as the collector stores them)."""
    if value is not None and value < 0:
        raise ValueError(f"{name} = {value:g} is negative: impossible")
    return None if value is None else round(value * factor, 3)


def _result(line: int, out: Parsed, build: Callable[[], SpeedTestResult]) -> None:
    """Build one record; a value the schema refuses skips the line with the schema's reason."""
    try:
        out.records.append((line, build()))
    except KeyError as exc:
        out.skip(line, f"field {exc} is missing")
    except (InvalidRecord, LayoutError, ValueError, TypeError, AttributeError) as exc:
        out.skip(line, str(exc) or type(exc).__name__)


def _speeds_record(*, engine: str, download_mbps: float | None, upload_mbps: float | None,
                   times: dict, output: Any, **fields: Any) -> SpeedTestResult:
    """An ``ok`` record, or a ``failed`` one (``transfer_failed``) when a direction moved no data."""
    idle = [name for name, value in (("download", download_mbps), ("upload", upload_mbps))
            if value is not None and value == 0]
    if idle:
        return SpeedTestResult(engine=engine, status="failed", download_mbps=None, upload_mbps=None,
                               ping_ms=None, engine_output=output,
                               error=TestError("transfer_failed", f"the {' and '.join(idle)} moved no data"),
                               **times)
    return SpeedTestResult(engine=engine, status="ok", error=None, download_mbps=download_mbps,
                           upload_mbps=upload_mbps, engine_output=output, **fields,
                           **times)


def _decode(data: bytes) -> str:
    """The file's text (UTF-8, a byte-order mark dropped; bytes that are not UTF-8 become U+FFFD,
    so the line holding them fails on its own)."""
    return data.decode("utf-8-sig", errors="replace")


def _json_values(text: str) -> Iterator[tuple[int, Any]]:
    """Every JSON value of ``text`` with its first line: JSON lines, a top-level array (each
    element), or several arrays/objects in a row. A part that does not decode yields a
    :class:`ValueError` for its line; reading goes on at the next line."""
    decoder = json.JSONDecoder()
    starts = [0] + [match.end() for match in re.finditer("\n", text)]
    n = len(text)

    def line_of(pos: int) -> int:
        return bisect.bisect_right(starts, pos)

    def skip_space(pos: int) -> int:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        return pos

    def next_line(pos: int) -> int:
        end = text.find("\n", pos)
        return n if end < 0 else end + 1

    pos = skip_space(0)
    depth = 0  # inside a top-level array
    while pos < n:
        if depth and text[pos] in ",]":
            depth -= text[pos] == "]"
            pos = skip_space(pos + 1)
            continue
        if not depth and text[pos] == "[":
            depth, pos = 1, skip_space(pos + 1)
            continue
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            excerpt = text[pos:pos + 40].split("\n", 1)[0]
            yield line_of(pos), ValueError(f"not JSON ({exc.msg}): {excerpt!r}")
            pos = skip_space(next_line(pos))
            continue
        yield line_of(pos), value
        pos = skip_space(end)


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """CSV rows as ``{normalised header: value}`` with the line each starts on (headers are
    lower-cased, spaces to ``_``: ``Created at`` and ``created_at`` both read as ``created_at``)."""
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    line = 1
    for values in reader:
        start, line = line, reader.line_num + 1
        if not any(v.strip() for v in values):
            continue
        if header is None:
            header = [v.strip().lower().replace(" ", "_") for v in values]
            continue
        yield start, dict(zip(header, values, strict=False))


def _require_columns(columns: set[str], needed: tuple[str, ...], fmt: str) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise TransferError(f"this is not a {fmt} file: the column(s) {', '.join(missing)} are missing "
                            f"(found: {', '.join(sorted(columns)) or 'none'}); check --format")


# --------------------------------------------------------------------------- Ookla CLI

def parse_ookla(data: bytes, host_id: str, tz: str) -> Parsed:
    """``speedtest --format=json`` output (Ookla's CLI), one object per line (pure).

    ``type: result`` objects are results: ``download.bandwidth``/``upload.bandwidth`` [bytes/s]
    x 8 / 10^6 -> [Mbit/s], ``ping.latency``/``ping.jitter`` [ms], ``packetLoss`` [%],
    ``download.bytes`` -> ``bytes_received``, ``upload.bytes`` -> ``bytes_sent``, the elapsed
    times [ms] -> ``duration_s``; ``isp``, ``interface.externalIp``/``name``/``isVpn``, the
    server; the object (with ``result.url``) is kept in ``engine_output``. Other types (``log``,
    progress lines) are skipped as not results.
    """
    out = Parsed()
    for line, value in _json_values(_decode(data)):
        if isinstance(value, ValueError):
            out.skip(line, str(value))
        elif not isinstance(value, dict):
            out.skip(line, f"not a JSON object ({type(value).__name__})")
        elif value.get("type") != "result":
            what = value.get("type")
            detail = f" ({value.get('level')}): {value.get('message')}" if what == "log" else ""
            out.skip(line, f"not a result: type {what!r}{detail}", "not_a_result")
        else:
            _result(line, out, functools.partial(_ookla_record, value, host_id, tz))
    return out


def _ookla_record(value: dict, host_id: str, tz: str) -> SpeedTestResult:
    down, up = (value.get(k) or {} for k in ("download", "upload"))
    server, interface = value.get("server") or {}, value.get("interface") or {}
    elapsed = [_number(d.get("elapsed"), "elapsed", empty=True) for d in (down, up)]
    bytes_ = [_number(d.get("bytes"), "bytes", empty=True) for d in (up, down)]
    return _speeds_record(
        engine="ookla-cli", times=record_times(host_id, _moment(value.get("timestamp")), tz), output=value,
        download_mbps=_mbps(_number(down.get("bandwidth"), "download.bandwidth"), 8 / 1e6, "download.bandwidth"),
        upload_mbps=_mbps(_number(up.get("bandwidth"), "upload.bandwidth"), 8 / 1e6, "upload.bandwidth"),
        # ping, jitter, loss and latencies: the ookla engine's table (speedlab.ookla_json), strictly
        **{name: _number(ookla_value(value, path), path, empty=True) for name, path in OOKLA_PATHS},
        server=Server(id=_text(server.get("id")), name=_text(server.get("location")),
                      sponsor=_text(server.get("name")), country=_text(server.get("country")),
                      host=_text(server.get("host"))),
        client=Client(ip=_text(interface.get("externalIp")), isp=_text(value.get("isp"))),
        connection_type="VPN" if interface.get("isVpn") is True else "Unknown",
        interface=_text(interface.get("name")),
        bytes_sent=None if bytes_[0] is None else int(bytes_[0]),
        bytes_received=None if bytes_[1] is None else int(bytes_[1]),
        duration_s=None if None in elapsed else round(sum(e or 0 for e in elapsed) / 1000, 3))


# --------------------------------------------------------------------------- speedtest-tracker

def parse_speedtest_tracker(data: bytes, host_id: str, tz: str, speed_unit: str = "bits") -> Parsed:
    """speedtest-tracker's CSV export (pure).

    ``download``/``upload`` are [bit/s] in current exports (``ResultExporter`` writes the
    model's ``download_bits``); ``speed_unit="bytes"`` reads exports that held the stored
    [bytes/s] (format ``speedtest-tracker-bytes``). ``ping`` [ms], ``packet_loss`` [%],
    ``ping_jitter`` [ms], ``created_at`` (without an offset: UTC, Laravel's storage zone),
    optional ``isp``, ``ip_address``, ``server_id``, ``server_name``, ``server_location``.
    A row without either speed (a failed, skipped or unfinished test) is not a result.
    """
    factor = {"bits": 1 / 1e6, "bytes": 8 / 1e6}[speed_unit]
    out = Parsed()
    rows = list(_csv_rows(_decode(data)))
    if rows:
        _require_columns(set(rows[0][1]), ("download", "upload", "created_at"), "speedtest-tracker CSV")
    for line, row in rows:
        if not (row.get("download") or "").strip() and not (row.get("upload") or "").strip():
            out.skip(line, "not a result: no download or upload speed (a failed, skipped or unfinished "
                           "test)", "not_a_result")
            continue
        _result(line, out, functools.partial(_tracker_record, row, host_id, tz, factor))
    return out


def _tracker_record(r: dict[str, str], host_id: str, tz: str, factor: float) -> SpeedTestResult:
    return _speeds_record(
        engine="speedtest-tracker", output=r,
        times=record_times(host_id, _moment(r.get("created_at"), naive_utc=True), tz),
        download_mbps=_mbps(_number(r.get("download"), "download", empty=True), factor, "download"),
        upload_mbps=_mbps(_number(r.get("upload"), "upload", empty=True), factor, "upload"),
        ping_ms=_number(r.get("ping"), "ping", empty=True),
        jitter_ms=_number(r.get("ping_jitter"), "ping_jitter", empty=True),
        packet_loss_pct=_number(r.get("packet_loss"), "packet_loss", empty=True),
        server=Server(id=_text(r.get("server_id")), name=_text(r.get("server_location")),
                      sponsor=_text(r.get("server_name"))),
        client=Client(ip=_text(r.get("ip_address")), isp=_text(r.get("isp"))))


# --------------------------------------------------------------------------- MySpeed, LibreSpeed

def _json_objects(data: bytes, out: Parsed) -> Iterator[tuple[int, dict]]:
    for line, value in _json_values(_decode(data)):
        if isinstance(value, ValueError):
            out.skip(line, str(value))
        elif not isinstance(value, dict):
            out.skip(line, f"not a JSON object ({type(value).__name__})")
        else:
            yield line, value


def parse_myspeed(data: bytes, host_id: str, tz: str) -> Parsed:
    """MySpeed's JSON export (an array of tests; pure).

    ``download``/``upload`` [Mbit/s], ``ping`` [ms], ``time`` [s] -> ``duration_s``, ``created``
    (ISO 8601, UTC). A test with an ``error`` (MySpeed stores -1 for its figures) becomes a
    ``failed`` record (``engine_error``) with MySpeed's message.
    """
    out = Parsed()
    for line, value in _json_objects(data, out):
        _result(line, out, functools.partial(_myspeed_record, value, host_id, tz))
    return out


def _myspeed_record(value: dict, host_id: str, tz: str) -> SpeedTestResult:
    times = record_times(host_id, _moment(value.get("created")), tz)
    if value.get("error"):
        return SpeedTestResult(engine="myspeed", status="failed", download_mbps=None, upload_mbps=None,
                               ping_ms=None, engine_output=value,
                               error=TestError("engine_error", str(value["error"])), **times)
    duration = _number(value.get("time"), "time", empty=True)
    return _speeds_record(
        engine="myspeed", times=times, output=value,
        download_mbps=_number(value.get("download"), "download"), upload_mbps=_number(value.get("upload"), "upload"),
        ping_ms=_number(value.get("ping"), "ping", empty=True),
        jitter_ms=_number(value.get("jitter"), "jitter", empty=True),
        server=Server(id=_text(value.get("serverId"))), duration_s=duration or None)


def parse_librespeed(data: bytes, host_id: str, tz: str) -> Parsed:
    """``librespeed-cli --json`` output: an array of results, or one array/object per line (pure).

    ``download``/``upload`` [Mbit/s], ``ping``/``jitter`` [ms], ``bytes_sent``/``bytes_received``
    [bytes], ``timestamp`` (RFC 3339), ``server.name``/``url``, ``client.ip``/``org`` (the ISP).
    """
    out = Parsed()
    for line, value in _json_objects(data, out):
        _result(line, out, functools.partial(_librespeed_record, value, host_id, tz))
    return out


def _librespeed_record(value: dict, host_id: str, tz: str) -> SpeedTestResult:
    server, client = value.get("server") or {}, value.get("client") or {}
    sent, received = (_number(value.get(k), k, empty=True) for k in ("bytes_sent", "bytes_received"))
    return _speeds_record(
        engine="librespeed-cli", times=record_times(host_id, _moment(value.get("timestamp")), tz), output=value,
        download_mbps=_number(value.get("download"), "download"), upload_mbps=_number(value.get("upload"), "upload"),
        ping_ms=_number(value.get("ping"), "ping", empty=True),
        jitter_ms=_number(value.get("jitter"), "jitter", empty=True),
        server=Server(name=_text(server.get("name")), host=_text(server.get("url"))),
        client=Client(ip=_text(client.get("ip")), isp=_text(client.get("org"))),
        bytes_sent=None if sent is None else int(sent), bytes_received=None if received is None else int(received))


# --------------------------------------------------------------------------- speedlab's own export

_NESTED: dict[str, Any] = {"server": Server, "client": Client, "error": TestError}
_INT_FIELDS = ("schema_version", "bytes_sent", "bytes_received")
_FLOAT_FIELDS = ("download_mbps", "upload_mbps", "ping_ms", "jitter_ms", "packet_loss_pct", *LATENCY_FIELDS,
                 "duration_s", "server.distance_km")


def _field_names(cls: Any) -> list[str]:
    return [f.name for f in fields(cls)]


def flatten_result(record: SpeedTestResult) -> dict[str, Any]:
    """One record as a flat row (CSV, Parquet): ``server.id``, ``client.isp``, ``error.kind`` ...
    columns; ``engine_output`` and fields unknown to this speedlab (``extra``) as JSON text (pure)."""
    data = record.to_dict()
    row: dict[str, Any] = {}
    for name, value in data.items():
        if name in _NESTED:
            for sub in _field_names(_NESTED[name]):
                row[f"{name}.{sub}"] = (value or {}).get(sub)
        elif name == "engine_output" or name in record.extra:
            continue
        else:
            row[name] = value
    row["engine_output"] = None if record.engine_output is None else json.dumps(record.engine_output)
    row["extra"] = json.dumps(record.extra) if record.extra else None
    return row


def unflatten_result(row: dict[str, Any]) -> dict[str, Any]:
    """A row of :func:`flatten_result` (values possibly CSV text) back into the record's JSON
    object (pure); an empty cell is ``null``."""
    def value(name: str) -> Any:
        cell = row.get(name)
        if cell is None or (isinstance(cell, str) and cell == ""):
            return None
        if name in _INT_FIELDS:
            number = _number(cell, name)
            if number is None or number != int(number):
                raise ValueError(f"{name} must be a whole number, not {cell!r}")
            return int(number)
        if name in _FLOAT_FIELDS:
            return _number(cell, name)
        return cell

    data: dict[str, Any] = {}
    for name in row:
        if "." in name or name in ("engine_output", "extra"):
            continue
        data[name] = value(name)
    for nested, cls in _NESTED.items():
        subs = {sub: value(f"{nested}.{sub}") for sub in _field_names(cls)}
        data[nested] = subs if any(v is not None for v in subs.values()) else None
    for name in ("engine_output", "extra"):
        text = value(name)
        parsed = json.loads(text) if isinstance(text, str) else text
        if name == "engine_output" and parsed is not None:
            data[name] = parsed
        elif name == "extra" and parsed:
            data.update(parsed)
    return data


def parse_speedlab(data: bytes, host_id: str | None, tz: str) -> Parsed:
    """speedlab's own raw export, JSON lines (one record per line) or CSV (:func:`flatten_result`
    columns), read back as records (pure). ``host_id`` (``None``: every host) keeps one host's
    results; the others are skipped (``other_host``). A record written in another time zone gets
    its local time and slot in ``tz``.
    """
    out = Parsed()
    text = _decode(data)
    if text.lstrip()[:1] in ("{", "["):
        items: Iterator[tuple[int, Any]] = _json_values(text)
    else:
        items = ((line, row) for line, row in _csv_rows(text))
    for line, value in items:
        if isinstance(value, ValueError):
            out.skip(line, str(value))
            continue
        try:
            if not isinstance(value, dict):
                raise ValueError(f"not a JSON object ({type(value).__name__})")
            if "download_avg" in value and "timestamp_utc" not in value:
                out.skip(line, "not a result: a row of a view (export --raw results to import them)",
                         "not_a_result")
                continue
            flat = any("." in name for name in value)  # CSV: server.id, client.isp, ...
            record = SpeedTestResult.from_dict(unflatten_result(value) if flat else value, source=f"line {line}")
            if host_id is not None and record.host_id != host_id:
                out.skip(line, f"a result of host {record.host_id!r}, not of --host {host_id!r}", "other_host")
                continue
            times = record_times(record.host_id, record.time_utc, tz)
            if (record.timestamp_local, record.slot) != (times["timestamp_local"], times["slot"]):
                record = replace(record, timestamp_local=times["timestamp_local"], slot=times["slot"])
        except (InvalidRecord, ValueError, TypeError) as exc:
            out.skip(line, str(exc))
            continue
        out.records.append((line, record))
    return out


#: format name -> parser(bytes, host_id, tz) -> Parsed (plain data: the one table of formats).
FORMATS: dict[str, Callable[[bytes, Any, str], Parsed]] = {
    "ookla": parse_ookla,
    "speedtest-tracker": parse_speedtest_tracker,
    "speedtest-tracker-bytes": lambda data, host_id, tz: parse_speedtest_tracker(data, host_id, tz, "bytes"),
    "myspeed": parse_myspeed,
    "librespeed": parse_librespeed,
    "speedlab": parse_speedlab,
}


def parse_import(data: bytes, fmt: str, host_id: str | None, tz: str) -> Parsed:
    """Parse ``data`` in format ``fmt`` (:data:`FORMATS`) as results of ``host_id`` (pure).

    Raises
    ------
    TransferError
        For an unknown format, a missing host (every format but ``speedlab`` needs one), or a
        CSV without the format's columns.
    InvalidHostId
        For a host id that would not make a safe key.
    """
    if fmt not in FORMATS:
        raise TransferError(f"unknown import format {fmt!r}: use one of {', '.join(FORMATS)}")
    if host_id is None and fmt != "speedlab":
        raise TransferError(f"say whose results these are: --host HOST_ID (needed for format {fmt})")
    if host_id is not None:
        try:
            validate_host_id(host_id)
        except InvalidHostId as exc:
            raise InvalidHostId(f"--host: {exc}") from None
    return FORMATS[fmt](data, host_id, tz)
