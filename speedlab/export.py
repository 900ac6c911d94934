"""``speedlab export``: a dashboard view or a range of raw results as CSV, JSON lines or Parquet.

* :func:`export_view` — any :func:`speedlab.query.rows` view (mode, periods, host, ``now``): the
  rows the dashboard and ``speedlab query`` show, one per period;
* :func:`export_raw` — the raw results of one host (or every host) whose slots lie between two
  dates of the configured zone (inclusive), every valid stored object, oldest first.

Formats (``fmt``, else the output's suffix: ``.csv``, ``.jsonl``/``.ndjson``, ``.parquet``; stdout: CSV):

* ``jsonl`` — one JSON object per line: a raw result exactly as stored (the record's schema-1
  JSON), a view's row as :func:`~speedlab.query.rows` gives it;
* ``csv`` — a header and one line per row; a raw result is flattened
  (:func:`speedlab.importers.flatten_result`: ``server.id``, ``client.isp``, ``error.kind``, ...,
  ``engine_output`` as JSON text); a view's lists (``hosts``) are JSON text; empty cells are null;
* ``parquet`` — the same flat columns, typed by polars (to a file only: it is binary).

``speedlab import FILE --format speedlab`` reads a raw export (JSON lines or CSV) back: into an
empty store it gives the same results. Without an output path the bytes are returned in the
report (``data``) for the command line to print.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import Config
from .errors import LayoutError, TransferError
from .importers import flatten_result
from .layout import validate_host_id
from .periods import parse_period, periods_between
from .reader import read_results
from .records import SpeedTestResult
from .storebase import Store

__all__ = ["EXPORT_FORMATS", "ExportReport", "encode_rows", "export_format", "export_raw", "export_view",
           "raw_records"]

EXPORT_FORMATS = ("csv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


@dataclass
class ExportReport:
    """What an export wrote: ``rows`` in ``format`` to ``output`` (``None``: ``data`` is for stdout),
    the ``columns``, and raw objects the store holds but that could not be read (``rejected``)."""

    what: str
    format: str
    output: str | None
    rows: int
    columns: list[str]
    rejected: list[tuple[str, str]] = field(default_factory=list)
    data: bytes = b""

    def to_dict(self) -> dict:
        """Plain data for ``--json`` (not the exported bytes)."""
        return {"what": self.what, "format": self.format, "output": self.output, "rows": self.rows,
                "columns": self.columns, "rejected": [{"key": k, "reason": r} for k, r in self.rejected]}

    def to_text(self) -> str:
        """One line for people."""
        return f"exported {self.rows} row(s) of {self.what} as {self.format} to {self.output or 'stdout'}"

    def to_warnings(self) -> list[str]:
        """Stored objects left out because they are not valid results."""
        return [f"left out {key}: {reason}" for key, reason in self.rejected]


# --------------------------------------------------------------------------- pure

def export_format(fmt: str | None, output: str | os.PathLike | None) -> str:
    """The format: ``fmt`` if given, else the output's suffix, else (stdout) ``csv`` (pure).

    Raises
    ------
    TransferError
        For an unknown format or suffix, or Parquet without an output file.
    """
    if fmt is None:
        if output is None:
            return "csv"  # stdout: CSV unless told
        suffix = Path(output).suffix.lower()
        if suffix not in _SUFFIXES:
            raise TransferError(f"cannot tell the format from {os.fspath(output)!r}: use a .csv, .jsonl or "
                                ".parquet name, or --format")
        fmt = _SUFFIXES[suffix]
    if fmt not in EXPORT_FORMATS:
        raise TransferError(f"unknown export format {fmt!r}: use csv, jsonl or parquet")
    if fmt == "parquet" and output is None:
        raise TransferError("Parquet is binary: write it to a file with --output PATH")
    return fmt


def _cell(value: Any) -> Any:
    """A flat cell: lists and mappings as JSON text."""
    return json.dumps(value, default=str) if isinstance(value, (list, tuple, dict)) else value


def _columns(rows: Sequence[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def encode_rows(rows: Sequence[dict], fmt: str) -> bytes:
    """``rows`` (JSON-ready dicts) as ``fmt`` bytes (pure).

    ``jsonl``: one compact JSON object per line, as given. ``csv``: the union of the rows' keys as
    the header (first seen first), ``None`` as an empty cell, nested values as JSON text; Python's
    float text, so numbers read back exactly. ``parquet``: the same flat columns through polars.
    """
    if fmt == "jsonl":
        return "".join(json.dumps(row, separators=(",", ":"), default=str, allow_nan=False) + "\n"
                       for row in rows).encode("utf-8")
    columns = _columns(rows)
    flat = [{name: _cell(row.get(name)) for name in columns} for row in rows]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
        return buffer.getvalue().encode("utf-8")
    if fmt == "parquet":
        import polars as pl  # only Parquet needs it
        frame = pl.from_dicts(flat, schema=columns, infer_schema_length=None, strict=False) if flat \
            else pl.DataFrame(schema={name: pl.String for name in columns})
        out = io.BytesIO()
        frame.write_parquet(out)
        return out.getvalue()
    raise TransferError(f"unknown export format {fmt!r}: use csv, jsonl or parquet")


def _raw_rows(records: Iterable[SpeedTestResult], fmt: str) -> list[dict]:
    return [record.to_dict() if fmt == "jsonl" else flatten_result(record) for record in records]


# --------------------------------------------------------------------------- I/O

def _deliver(report: ExportReport, data: bytes, output: str | os.PathLike | None) -> ExportReport:
    """Write ``data`` to ``output`` (whole, or not at all), or keep it in the report for stdout."""
    if output is None:
        report.data = data
        return report
    path = Path(output)
    temporary = None
    try:
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
            temporary = handle.name
            handle.write(data)
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise TransferError(f"cannot write {os.fspath(output)!r}: {exc.strerror or exc}") from None
    return report


def export_view(config: Config, mode: str, days: int, host: str = "all", *, fmt: str | None = None,
                output: str | os.PathLike | None = None, now: datetime | None = None,
                store: Store | None = None) -> ExportReport:
    """Export the rows of :func:`speedlab.query.rows` (``mode``, ``days`` periods, ``host``).

    Raises
    ------
    QueryError
        For a bad mode, number of periods or host.
    TransferError
        For a bad format, or an output that cannot be written.
    """
    from .query import rows
    fmt = export_format(fmt, output)
    found = rows(mode, days, host, store=store, config=config, now=now)
    report = ExportReport(f"the {mode} view ({days} period(s), host {host})", fmt,
                          None if output is None else os.fspath(output), len(found), _columns(found))
    return _deliver(report, encode_rows(found, fmt), output)


def raw_records(store: Store, config: Config, first: str, last: str, host: str | None = None
                ) -> tuple[list[SpeedTestResult], list[tuple[str, str]]]:
    """The valid raw results of ``host`` (``None``: every host) whose slots lie in the days
    ``first`` to ``last`` (``YYYY-MM-DD``, inclusive, configured zone), oldest first, and the
    objects left out with why.

    Raises
    ------
    TransferError
        For a bad date, or ``last`` before ``first``.
    """
    try:
        start, end = (parse_period("daily", label, config.timezone) for label in (first, last))
    except LayoutError as exc:
        raise TransferError(f"--raw FROM TO are days (YYYY-MM-DD): {exc}") from None
    if end.start < start.start:
        raise TransferError(f"--raw {first} {last}: the last day is before the first")
    if host is not None:
        validate_host_id(host)
    found: list[tuple[str, SpeedTestResult]] = []
    rejected: list[tuple[str, str]] = []
    for month in periods_between("monthly", start.start, end.start, config.timezone):
        read = read_results(store, config.buckets, month, None if host is None else [host])
        found.extend((key, r) for key, r in read.results if start.start <= r.slot_start < end.end)
        rejected.extend(read.rejected)
    found.sort(key=lambda item: (item[1].time_utc, item[1].host_id, item[0]))
    return [record for _, record in found], rejected


def export_raw(config: Config, first: str, last: str, host: str | None = None, *, fmt: str | None = None,
               output: str | os.PathLike | None = None, store: Store | None = None) -> ExportReport:
    """Export the raw results of :func:`raw_records` (``jsonl``: each exactly as stored).

    Raises
    ------
    TransferError
        For a bad format or date range, or an output that cannot be written.
    InvalidHostId
        For a bad ``host``.
    """
    fmt = export_format(fmt, output)
    store = store if store is not None else config.open_store()
    records, rejected = raw_records(store, config, first, last, host)
    found = _raw_rows(records, fmt)
    report = ExportReport(f"raw results {first} to {last} (host {host or 'all'})", fmt,
                          None if output is None else os.fspath(output), len(found), _columns(found), rejected)
    return _deliver(report, encode_rows(found, fmt), output)
