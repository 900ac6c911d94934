"""Summaries and raw results as rows of columnar tables, and back, exactly (pure; docs/tables.md).

A stored JSON object (a tier summary or a raw result) becomes one row of a fixed schema: every
field the contract knows is a typed column (nested ones flattened: ``stats.download_mbps.sketch.index``
is ``stats_download_mbps_sketch_index``), and two text columns make the way back exact:

* ``json_shape``: the object's keys, in order and nested (``{"schema_version": 0, "stats": {...}}``),
  so absent fields stay absent, ``null`` stays ``null`` and the key order is the object's;
* ``json_overrides``: ``[[path, value], ...]`` for every value a column cannot give back as it was
  (an unknown field, a value of another type, an integer in a float column, an integer beyond
  64 bits); ``null`` when there are none, as for everything speedlab writes.

So ``decode_row(encode_row(d)) == d`` for any JSON object ``d`` whose top level is an object, and
query engines still see typed columns (an integer in a float column is in the column as a float too).
Each row also names its source: ``source_key`` and ``source_version`` (the version the store gave
with the bytes the row was made from; see :meth:`speedlab.storebase.Store.get_versioned`), and a
summary row ``source_sha256``, those bytes' SHA-256 (a bulk writer compares a new summary with it
instead of rebuilding the stored bytes: :mod:`speedlab.unchanged`).

Nothing here touches a store: :mod:`speedlab.tables_io` reads and writes the tables.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import polars as pl

from .errors import TableError
from .frames import series_of
from .layout import validate_host_id
from .periods import Period, parse_timestamp
from .records import LATENCY_FIELDS, SUMMARY_LATENCY_METRICS, SpeedTestResult

__all__ = ["INPUTS", "RAW_TABLE", "SOURCE_SHA256", "SUMMARY_TABLE", "CheckReport", "Column", "Inputs",
           "PartitionDiff", "TableSchema", "TablesReport", "diff_partition", "first_difference", "frame_from_parquet",
           "frame_to_parquet", "latest_slot", "raw_table_results", "with_inputs", "with_key_slot"]

_DTYPES: dict[str, Any] = {
    "str": pl.String, "f64": pl.Float64, "i64": pl.Int64, "bool": pl.Boolean, "json": pl.String,
    "list_str": pl.List(pl.String), "list_i64": pl.List(pl.Int64),
    "by_host": pl.List(pl.Struct({"host": pl.String, "count": pl.Int64})),
}
_I64 = (-(2 ** 63), 2 ** 63 - 1)
SHAPE, OVERRIDES = "json_shape", "json_overrides"
SOURCE_KEY, SOURCE_VERSION, HOST, LABEL = "source_key", "source_version", "host", "label"
#: A summary row's SHA-256 (hex) of the bytes it was made from (rows written before it: null).
SOURCE_SHA256 = "source_sha256"
#: What a backfill computed a summary from (:mod:`speedlab.inputs`; null when not known).
INPUTS = "inputs"
_AS_STORED = frozenset(("str", "f64", "i64", "bool"))  # kinds whose column value is the JSON value
#: kind -> the type whose values a column of that kind holds as they are (i64 also checks a range)
_EXACT_TYPE: dict[str, type] = {"str": str, "f64": float, "bool": bool}
_MAX_PLANS = 256


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and _I64[0] <= v <= _I64[1]


def _to_column(kind: str, value: Any) -> tuple[Any, bool]:
    """``(column value, exact)``: what column ``kind`` holds for ``value``, and whether reading
    it back gives ``value`` itself (else the value also goes to ``json_overrides``)."""
    if value is None:
        return None, True
    if kind == "json":
        return json.dumps(value, separators=(",", ":"), allow_nan=False), True
    if kind == "str":
        return (value, True) if isinstance(value, str) else (None, False)
    if kind == "f64":
        if isinstance(value, float):
            return value, True
        return (float(value), False) if _int(value) and abs(value) <= 2 ** 53 else (None, False)
    if kind == "i64":
        return (value, True) if _int(value) else (None, False)
    if kind == "bool":
        return (value, True) if isinstance(value, bool) else (None, False)
    if kind in ("list_str", "list_i64"):
        ok = str if kind == "list_str" else None
        if isinstance(value, list) and all(isinstance(v, str) if ok else _int(v) for v in value):
            return value, True
        return None, False
    if kind == "by_host":
        if isinstance(value, dict) and all(isinstance(k, str) and _int(n) for k, n in value.items()):
            return [{"host": k, "count": n} for k, n in value.items()], True
        return None, False
    raise TableError(f"unknown column kind {kind!r}")


def _from_column(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "json":
        return json.loads(value)
    if kind == "by_host":
        return {item["host"]: item["count"] for item in value}
    if kind in ("list_str", "list_i64"):
        return list(value)
    return value


@dataclass(frozen=True)
class Column:
    """One typed column: the JSON ``path`` it holds, its ``name`` and ``kind`` (a key of the dtypes)."""

    path: tuple[str, ...]
    name: str
    kind: str


@lru_cache(maxsize=4096)  # rows share a few shapes: each one's JSON is made once
def _shape_text(shape: tuple) -> str:
    """:meth:`TableSchema.encode_row`'s shape (keys in order, 0 for a leaf) as ``json_shape``."""
    def as_dict(node: tuple) -> dict:
        return {k: as_dict(sub) if isinstance(sub, tuple) else sub for k, sub in node}
    return json.dumps(as_dict(shape), separators=(",", ":"))


@dataclass(frozen=True)
class TableSchema:
    """A table's columns: ``keys`` (the table's own: host, source...), then the JSON fields."""

    name: str
    keys: tuple[Column, ...]
    columns: tuple[Column, ...]
    #: columns added after the table's first version: a table written without them still reads
    #: (:func:`frame_from_parquet` fills them with nulls; the rows it holds never had those fields)
    added: frozenset[str] = frozenset()
    by_path: dict[tuple[str, ...], Column] = field(init=False, compare=False, repr=False)
    nested: frozenset[tuple[str, ...]] = field(init=False, compare=False, repr=False)
    #: json_shape text -> its compiled plan (rows written by one version share a few shapes)
    plans: dict[str, tuple] = field(init=False, compare=False, repr=False)
    #: the columns as a tree for :meth:`encode_row`: key -> [column or None, subtree or None]
    #: (a subtree exactly where ``path + (key,)`` is in ``nested``)
    tree: dict[str, list] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_path", {c.path: c for c in self.columns})
        object.__setattr__(self, "nested", frozenset(c.path[:i] for c in self.columns
                                                     for i in range(1, len(c.path))))
        object.__setattr__(self, "plans", {})
        tree: dict[str, list] = {}
        for c in self.columns:
            node = tree
            for k in c.path[:-1]:
                entry = node.setdefault(k, [None, None])
                node = entry[1] = entry[1] if entry[1] is not None else {}
            node.setdefault(c.path[-1], [None, None])[0] = c
        object.__setattr__(self, "tree", tree)

    @property
    def schema(self) -> dict[str, Any]:
        """Column name -> polars dtype, in table order (the same in every partition)."""
        out = {c.name: _DTYPES[c.kind] for c in self.keys}
        out.update({c.name: _DTYPES[c.kind] for c in self.columns})
        out[SHAPE] = pl.String
        out[OVERRIDES] = pl.String
        return out

    def encode_row(self, data: Mapping, **keys: Any) -> dict[str, Any]:
        """One row for the JSON object ``data``; ``keys`` fill the table's own columns."""
        if not isinstance(data, Mapping):
            raise TableError(f"a {self.name} row is made from a JSON object, not {type(data).__name__}")
        row: dict[str, Any] = {c.name: keys.get(c.name) for c in self.keys}
        row.update({c.name: None for c in self.columns})
        overrides: list[list] = []

        def walk(node: Mapping, tree: dict[str, list], path: tuple[str, ...]) -> tuple:
            """Fill the row from ``node``; returns its shape: ``((key, 0 or sub-shape), ...)``."""
            shape: list = []
            for k, v in node.items():
                entry = tree.get(k)
                if entry is not None and entry[1] is not None and isinstance(v, dict):
                    shape.append((k, walk(v, entry[1], path + (k,))))
                    continue
                shape.append((k, 0))
                column = entry[0] if entry is not None else None
                if column is not None:
                    if v is None or type(v) is _EXACT_TYPE.get(column.kind):  # _to_column's exact cases at once
                        row[column.name] = v
                        continue
                    row[column.name], exact = _to_column(column.kind, v)
                    if exact:
                        continue
                overrides.append([list(path + (k,)), v])
            return tuple(shape)

        row[SHAPE] = _shape_text(walk(data, self.tree, ()))
        row[OVERRIDES] = json.dumps(overrides, separators=(",", ":"), allow_nan=False) if overrides else None
        return row

    def _plan(self, shape: Mapping, path: tuple[str, ...] = ()) -> tuple:
        """``shape`` compiled: ``((key, path, column name or None, kind, sub-plan or None), ...)``."""
        out: list[tuple] = []
        for k, sub in shape.items():
            here = path + (k,)
            if isinstance(sub, dict):
                out.append((k, here, None, None, self._plan(sub, here)))
            else:
                column = self.by_path.get(here)
                out.append((k, here, None if column is None else column.name,
                            None if column is None else column.kind, None))
        return tuple(out)

    def decode_row(self, row: Mapping[str, Any], wanted: Mapping[str, Any] | None = None) -> dict:
        """The JSON object a row was made from, exactly (fields, nesting, order, types).

        ``wanted`` (a tree: field name -> ``None`` for all of it, or a tree of its fields) keeps
        only those fields, each exactly as the whole object holds it; the row then needs only the
        columns :meth:`columns_of` names."""
        try:
            shape_text = row[SHAPE]
            plan = self.plans.get(shape_text) if isinstance(shape_text, str) else None
            shape = json.loads(shape_text) if plan is None else None
            overrides = {tuple(p): v for p, v in json.loads(row[OVERRIDES] or "[]")}
        except (TypeError, ValueError, KeyError) as exc:
            raise TableError(f"a {self.name} row has no readable {SHAPE}/{OVERRIDES}: {exc}") from None
        if plan is None:
            if not isinstance(shape, dict):
                raise TableError(f"a {self.name} row's {SHAPE} is not a JSON object ({row.get(SOURCE_KEY)})")
            plan = self._plan(shape)  # rows written by one version share a few shapes: compiled once each
            if len(self.plans) >= _MAX_PLANS:
                self.plans.clear()
            self.plans[shape_text] = plan
        return self._decode(plan, row, overrides, wanted)

    def columns_of(self, wanted: Mapping[str, Any]) -> list[str]:
        """The columns :meth:`decode_row` reads for the fields ``wanted`` (its tree), with the
        row's shape and overrides."""
        def inside(path: tuple[str, ...], tree: Mapping[str, Any] | None) -> bool:
            if not path or tree is None:
                return True
            return path[0] in tree and inside(path[1:], tree[path[0]])
        return [c.name for c in self.columns if inside(c.path, wanted)] + [SHAPE, OVERRIDES]

    def _decode(self, plan: tuple, row: Mapping[str, Any], overrides: dict[tuple, Any],
                wanted: Mapping[str, Any] | None = None) -> dict:
        out: dict[str, Any] = {}
        for k, here, name, kind, sub in plan:
            if wanted is not None:
                if k not in wanted:
                    continue
                if sub is not None:
                    out[k] = self._decode(sub, row, overrides, wanted[k])
                    continue
            if sub is not None:
                out[k] = self._decode(sub, row, overrides)
            elif overrides and here in overrides:
                out[k] = overrides[here]
            elif name is None:
                raise TableError(f"a {self.name} row lost field {'.'.join(here)} ({row.get(SOURCE_KEY)})")
            else:
                value = row[name]
                out[k] = value if value is None or kind in _AS_STORED else _from_column(kind, value)
        return out

    def frame(self, rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
        """The rows as a frame of this schema, sorted by ``source_key`` (empty frames keep it)."""
        rows = list(rows)
        if len(rows) < 64:  # polars' fixed cost per column outweighs the rows: 1.2 ms a row this way, 4.2 by columns
            return pl.DataFrame(rows, schema=self.schema, orient="row").sort(SOURCE_KEY)
        # many rows: column by column (lists from their flat values), ~30 % less time than from the row dicts
        frame = pl.DataFrame([series_of(name, [row.get(name) for row in rows], dtype)
                              for name, dtype in self.schema.items()])
        return frame.sort(SOURCE_KEY)

    def rows(self, frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
        """``source_key`` -> row of a frame read back (the last row wins for a repeated key)."""
        return {row[SOURCE_KEY]: row for row in frame.iter_rows(named=True)}


#: The summary columns of the latency figures (summaries since issue 15; older rows hold nulls).
_LATENCY_FIGURES = tuple(f"{kind}_{short}" for short in SUMMARY_LATENCY_METRICS.values()
                         for kind in ("avg", "min", "max", "median", "p95"))


def _summary_columns() -> tuple[Column, ...]:
    reserved = {"tier", "year", "month", HOST, LABEL, SOURCE_KEY, SOURCE_VERSION}
    top = [("schema_version", "i64"), ("tier", "str"), ("period", "str"), ("hour", "str"), ("date", "str"),
           ("week", "str"), ("week_start", "str"), ("week_end", "str"), ("month", "str"), ("year", "str"),
           ("period_start", "str"), ("period_end", "str"), ("timezone", "str"), ("host_id", "str"),
           ("hosts", "list_str")]
    top += [(f"{kind}_{metric}", "f64") for metric in ("download", "upload", "ping")
            for kind in ("avg", "min", "max", "median", "p95")]
    top += [(name, "f64") for name in _LATENCY_FIGURES]
    top += [(name, "i64") for name in ("records_aggregated", "failed_tests", "rejected_records",
                                       "duplicates_ignored", "expected_slots", "slots_with_result")]
    top += [("coverage_pct", "f64"), ("days", "i64"), ("connection_types", "list_str"), ("anomalies_count", "i64"),
            ("expected_download_mbps", "f64"), ("expected_upload_mbps", "f64"), ("below_expected", "bool"),
            ("records_by_host", "by_host"), ("exact", "bool"), ("source_objects", "i64"),
            ("legacy_inputs", "i64"), ("source_max_modified", "str"), ("generated_at", "str")]
    out = [Column((name,), f"summary_{name}" if name in reserved else name, kind) for name, kind in top]
    stat = [("count", "i64"), ("sum", "f64"), ("sum_sq", "f64"), ("min", "f64"), ("max", "f64"),
            ("sum_milli", "i64"), ("sum_sq_micro", "i64"), ("exact", "bool")]
    sketch = [("alpha", "f64"), ("zero_count", "i64"), ("index", "list_i64"), ("counts", "list_i64")]
    for metric in ("download_mbps", "upload_mbps", "ping_ms", *SUMMARY_LATENCY_METRICS):
        out += [Column(("stats", metric, name), f"stats_{metric}_{name}", kind) for name, kind in stat]
        out += [Column(("stats", metric, "sketch", name), f"stats_{metric}_sketch_{name}", kind)
                for name, kind in sketch]
    return tuple(out)


def _result_columns() -> tuple[Column, ...]:
    top = [("schema_version", "i64"), ("host_id", "str"), ("engine", "str"), ("status", "str"),
           ("timestamp_utc", "str"), ("timestamp_local", "str"), ("slot", "str"), ("download_mbps", "f64"),
           ("upload_mbps", "f64"), ("ping_ms", "f64"), ("jitter_ms", "f64"), ("packet_loss_pct", "f64"),
           *((name, "f64") for name in LATENCY_FIELDS),
           ("connection_type", "str"), ("interface", "str"), ("bytes_sent", "i64"), ("bytes_received", "i64"),
           ("duration_s", "f64"), ("engine_output", "json")]
    out = [Column((name,), name, kind) for name, kind in top]
    out += [Column(("error", name), f"error_{name}", "str") for name in ("kind", "message")]
    out += [Column(("server", name), f"server_{name}", "str") for name in ("id", "name", "sponsor", "country", "host")]
    out += [Column(("server", "distance_km"), "server_distance_km", "f64")]
    out += [Column(("client", name), f"client_{name}", "str") for name in ("ip", "isp")]
    return tuple(out)


_SOURCE = (Column((), SOURCE_KEY, "str"), Column((), SOURCE_VERSION, "str"))
#: Every tier's summaries: ``host`` is the host id, or ``"all"`` for the all-hosts summaries;
#: ``label`` the period label of the source key (``2025122914``, ``20251229``, ``2025W52``...);
#: ``source_sha256`` the SHA-256 of the source bytes (null in rows written before it existed);
#: ``inputs`` the digest of what a backfill computed the summary from (:mod:`speedlab.inputs`;
#: null unless a backfill settled this very version).
SUMMARY_TABLE = TableSchema("summary", (Column((), HOST, "str"), Column((), LABEL, "str"), *_SOURCE,
                                        Column((), SOURCE_SHA256, "str"), Column((), INPUTS, "str")),
                            _summary_columns(),
                            added=frozenset([SOURCE_SHA256, INPUTS, *(
                                c.name for c in _summary_columns() if c.path[0] in _LATENCY_FIGURES
                                or c.path[:2] in {("stats", m) for m in SUMMARY_LATENCY_METRICS})]))
#: Raw results of every host: ``host`` is the host of the source key.
RAW_TABLE = TableSchema("raw result", (Column((), HOST, "str"), *_SOURCE), _result_columns(),
                        added=frozenset(LATENCY_FIELDS))  # record schema 2


# ---------------------------------------------------------------- raw rows by slot

def raw_table_results(frame: pl.DataFrame, first: Period, last: Period, hosts: Iterable[str] | None = None
                      ) -> list[tuple[str, SpeedTestResult]]:
    """The results of a raw frame with :func:`with_key_slot`'s columns whose slot is in ``first``
    .. ``last`` (inclusive) of ``hosts`` (default all); only those rows are decoded."""
    zone = first.zone
    # rows whose key's hour is within a day of the window, then the exact check
    low, high = f"{first.start - timedelta(days=1):%Y%m%d%H}", f"{last.start + timedelta(days=1):%Y%m%d%H}"
    picked = frame.filter(pl.col(_HOUR).is_between(pl.lit(low), pl.lit(high)))
    if hosts is not None:
        picked = picked.filter(pl.col(HOST).is_in(sorted({validate_host_id(h) for h in hosts})))
    out = []
    for row in picked.iter_rows(named=True):
        key, hour = row[SOURCE_KEY], row[_HOUR]
        # parse_raw_key(key).slot(zone): every row's key passed parse_raw_key when it was written
        slot = datetime(int(hour[:4]), int(hour[4:6]), int(hour[6:8]), int(hour[8:]), int(row[_MINUTE]),
                        tzinfo=zone)
        if first.start <= slot < last.end:
            out.append((key, SpeedTestResult.from_dict(RAW_TABLE.decode_row(row), key)))
    return out


_KEY_HOUR, _HOUR, _MINUTE = r"/hour=(\d{10})/minute=(\d{2})/", "__hour", "__minute"


def with_key_slot(frame: pl.DataFrame) -> pl.DataFrame:
    """A raw table's frame with its keys' ``hour=`` and ``minute=`` as two more columns (for
    :func:`raw_table_results` and :func:`latest_slot`; :meth:`TableSchema.decode_row` ignores them)."""
    return frame.with_columns(pl.col(SOURCE_KEY).str.extract(_KEY_HOUR, 1).alias(_HOUR),
                              pl.col(SOURCE_KEY).str.extract(_KEY_HOUR, 2).alias(_MINUTE))


def latest_slot(frame: pl.DataFrame) -> datetime | None:
    """The latest ``slot`` of a raw table's rows (aware). A row's slot is its key's local hour and
    minute at an offset within a day, so only rows within three days of the latest key are parsed."""
    newest_hour = frame[_HOUR].max()
    if newest_hour is None:
        return None
    newest = datetime.strptime(str(newest_hour), "%Y%m%d%H")
    near = frame.filter(pl.col(_HOUR) >= f"{newest - timedelta(days=3):%Y%m%d%H}")
    slots = [parse_timestamp(slot) for slot in near["slot"].drop_nulls().unique()]
    return max(slots) if slots else None


#: Rows per Parquet row group. A table is sorted by source key, so by host: a reader that wants
#: one host (:func:`frame_from_parquet`'s ``where``, an engine's filter) decodes only the groups
#: whose statistics hold it. A fleet's daily table of a year (100 hosts, 35,249 rows): one host
#: decoded in 80 ms instead of 426 ms, the file 18 % larger. A table of a few hosts is one group.
ROW_GROUP_ROWS = 4096


#: Summary key -> (version, the ``inputs`` value its row of that version holds).
Inputs = Mapping[str, "tuple[str | None, str]"]


def with_inputs(frame: pl.DataFrame, new: dict[str, dict], gone: set[str], inputs: Inputs
                ) -> tuple[pl.DataFrame, int]:
    """A summary partition's update (:func:`speedlab.tables_io.update_partitions`): the
    ``inputs`` value of each key's row of the version ``inputs`` names, set in the ``new`` rows
    in place and in the stored ``frame`` (bar the ``gone`` rows); returns that frame and how many
    of its rows changed."""
    for key, row in new.items():
        item = inputs.get(key)
        if item is not None and item[0] is not None and item[0] == row[SOURCE_VERSION]:
            row[INPUTS] = item[1]
    if not inputs or frame.is_empty():
        return frame, 0
    marks = {}
    for key, row_version, value in frame.select(SOURCE_KEY, SOURCE_VERSION, INPUTS).iter_rows():
        item = inputs.get(key)
        if item is not None and key not in gone and key not in new and item[0] is not None \
                and item[0] == row_version and item[1] != value:
            marks[key] = item[1]
    if not marks:
        return frame, 0
    return frame.with_columns(pl.when(pl.col(SOURCE_KEY).is_in(list(marks)))
                              .then(pl.col(SOURCE_KEY).replace_strict(marks, default=None))
                              .otherwise(pl.col(INPUTS)).alias(INPUTS)), len(marks)


def frame_to_parquet(frame: pl.DataFrame) -> bytes:
    """A frame as the bytes of one Parquet file (zstd; statistics for engines' pruning; row groups
    of :data:`ROW_GROUP_ROWS`)."""
    out = io.BytesIO()
    frame.write_parquet(out, compression="zstd", statistics=True, row_group_size=ROW_GROUP_ROWS)
    return out.getvalue()


def frame_from_parquet(body: bytes, schema: TableSchema, source: str = "",
                       columns: Sequence[str] | None = None, where: pl.Expr | None = None) -> pl.DataFrame:
    """A table object's frame, checked against ``schema`` (only ``columns`` of it, if given:
    Parquet decodes just those, e.g. a view's row fields without the sketches, ~25x less work;
    only the rows ``where`` holds, if given: row groups whose statistics rule it out are skipped).

    A table written before some of ``schema.added`` existed (a raw table of record schema 1, a
    summary table from before the latency figures) comes back with those columns as nulls, in
    the schema's order: its rows' ``json_shape`` never names them, so every row still decodes to
    its object exactly.

    Raises
    ------
    TableError
        If ``body`` is not Parquet or its columns are not ``schema``'s (a table written by
        another version, or damaged): the caller rebuilds the partition from its sources.
    """
    want = schema.schema
    try:
        if columns is None and where is None:
            frame = pl.read_parquet(io.BytesIO(body))
        else:
            lazy = pl.scan_parquet(io.BytesIO(body))
            if where is not None:
                lazy = lazy.filter(where)
            if columns is not None:
                wanted = set(columns)
                want = {name: dtype for name, dtype in want.items() if name in wanted}
                stored = pl.read_parquet_schema(io.BytesIO(body))
                lazy = lazy.select([name for name in want if name in stored])
            frame = lazy.collect()
    except Exception as exc:  # polars raises its own ComputeError/OSError/... for garbage
        raise TableError(f"table {source} is not readable Parquet: {type(exc).__name__}: {exc}") from None
    have = frame.schema   # each .schema builds a new dict: once, not per column
    missing = [name for name in want if name not in have]
    if missing and set(missing) <= schema.added:
        frame = frame.select([pl.col(name) if name in have else pl.lit(None, dtype).alias(name)
                              for name, dtype in want.items()] + [pl.col(name) for name in frame.columns
                                                                  if name not in want])
    if dict(frame.schema) != want:
        raise TableError(f"table {source} does not have the {schema.name} table's columns: rebuild it")
    return frame


@dataclass(frozen=True)
class PartitionDiff:
    """How a table partition stands against a listing of its sources (keys sorted).

    ``unchanged``: rows whose source still has the row's version; ``changed``: sources with
    another version than the row's; ``added``: sources without a row; ``removed``: rows whose
    source is gone.
    """

    unchanged: tuple[str, ...]
    changed: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]


def diff_partition(rows: Mapping[str, str | None], sources: Mapping[str, str | None]) -> PartitionDiff:
    """Compare ``rows`` (source key -> the row's source version) with ``sources`` (key -> the
    listed version). A version of ``None`` on either side never matches (not known)."""
    same = sorted(k for k, v in rows.items() if k in sources and v is not None and sources[k] == v)
    kept = set(same)
    changed = sorted(k for k in rows if k in sources and k not in kept)
    return PartitionDiff(tuple(same), tuple(changed), tuple(sorted(set(sources) - set(rows))),
                         tuple(sorted(set(rows) - set(sources))))


@dataclass
class TablesReport:
    """What table maintenance did: partitions written or already current, rows, what was read
    from the sources, lost races, bad source objects (``rejected``: key and reason), requests
    by kind and bytes read and written."""

    partitions_written: list[str] = field(default_factory=list)
    partitions_current: list[str] = field(default_factory=list)
    rows: int = 0
    rows_fixed: int = 0
    rows_dropped: int = 0
    sources_read: int = 0
    conflicts: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    bytes_read: int = 0
    bytes_written: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """The report as plain JSON data."""
        return {"partitions_written": list(self.partitions_written),
                "partitions_current": list(self.partitions_current), "rows": self.rows,
                "rows_fixed": self.rows_fixed, "rows_dropped": self.rows_dropped,
                "sources_read": self.sources_read, "conflicts": self.conflicts,
                "rejected": [{"key": k, "reason": why} for k, why in self.rejected],
                "requests": dict(self.requests), "bytes_read": self.bytes_read,
                "bytes_written": self.bytes_written, "seconds": round(self.seconds, 3)}

    def merge(self, other: TablesReport) -> None:
        """Add ``other``'s counts to this report (a job that updates its tables more than once)."""
        self.partitions_written += other.partitions_written
        self.partitions_current += other.partitions_current
        self.rejected += other.rejected
        for name in ("rows", "rows_fixed", "rows_dropped", "sources_read", "conflicts", "bytes_read",
                     "bytes_written", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for kind, n in other.requests.items():
            self.requests[kind] = self.requests.get(kind, 0) + n

    def to_text(self) -> str:
        """A few lines for a person."""
        lines = [f"tables: {len(self.partitions_written)} partition(s) written, "
                 f"{len(self.partitions_current)} already current, {self.rows} row(s)",
                 f"  read {self.sources_read} source object(s); fixed {self.rows_fixed} row(s), dropped "
                 f"{self.rows_dropped}; {self.conflicts} lost race(s) retried",
                 f"  {sum(self.requests.values())} request(s) {dict(sorted(self.requests.items()))}, "
                 f"{self.bytes_read:,} bytes read, {self.bytes_written:,} written, {self.seconds:.2f} s"]
        lines += [f"  skipped {key}: {why}" for key, why in self.rejected]
        return "\n".join(lines)


@dataclass
class CheckReport:
    """``tables check``: every row against its source object and every source against its row.

    ``disagreements``: ``(key, reason)`` with the source key (or the table key for a table that
    cannot be read); ``rejected``: bad source objects, which have no row by design.
    """

    partitions: int = 0
    rows: int = 0
    sources: int = 0
    disagreements: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    bytes_read: int = 0

    @property
    def ok(self) -> bool:
        """Whether every table agrees with the original layout."""
        return not self.disagreements

    def to_dict(self) -> dict:
        """The report as plain JSON data."""
        return {"ok": self.ok, "partitions": self.partitions, "rows": self.rows, "sources": self.sources,
                "disagreements": [{"key": k, "reason": why} for k, why in self.disagreements],
                "rejected": [{"key": k, "reason": why} for k, why in self.rejected],
                "requests": dict(self.requests), "bytes_read": self.bytes_read}

    def to_text(self) -> str:
        """A few lines for a person."""
        head = (f"tables {'agree' if self.ok else 'DISAGREE'} with the original layout: "
                f"{self.partitions} partition(s), {self.rows} row(s), {self.sources} source object(s)")
        return "\n".join([head, *(f"  {key}: {why}" for key, why in self.disagreements),
                          *(f"  skipped bad source {key}: {why}" for key, why in self.rejected)])


def first_difference(expected: Any, actual: Any, path: Sequence[str] = ()) -> str | None:
    """The dotted path of the first field where two JSON values differ (``None``: equal; types
    count, so ``1`` and ``1.0`` differ), for ``check``'s reasons."""
    if type(expected) is not type(actual):
        return ".".join(path) or "(object)"
    if isinstance(expected, dict) and list(expected) != list(actual):
        return ".".join(path) + "{keys}" if path else "{keys}"
    if isinstance(expected, list) and len(expected) != len(actual):
        return ".".join(path) or "(list)"
    if isinstance(expected, (dict, list)):
        pairs = ((k, expected[k], actual[k]) for k in expected) if isinstance(expected, dict) else (
            (str(i), a, b) for i, (a, b) in enumerate(zip(expected, actual, strict=True)))
        return next((found for k, a, b in pairs if (found := first_difference(a, b, [*path, k]))), None)
    return None if expected == actual else ".".join(path) or "(value)"
