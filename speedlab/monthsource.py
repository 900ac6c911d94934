"""A raw month read from its table for a backfill (docs/tables.md): which listed objects the
table holds as they are now, and the statistics of every (hour, host) of the month computed
from the table's columns in one polars pass.

The rollup's own path (:func:`speedlab.aggregate.hourly_parts`) builds one
:class:`~speedlab.records.SpeedTestResult` per result and counts a day at a time. For a month
whose rows are current it need not: the table's columns are the results' fields, so
:meth:`MonthSource.groups` feeds them to the same polars rules
(:func:`~speedlab.aggregate.grouped_frame`, a slot's duplicates kept within their local day
as a day's batch keeps them) and hands each day its rows. Same figures, byte for byte
(``tests/test_monthsource.py`` checks them against the per-day path). A month falls back to the
per-day path when a row holds a value of a field the statistics read that its column does not
give back as it was (in ``json_overrides``: an integer speed, say) or an ``ok`` result holds
-0.0 (whose min and max polars and Python may keep with another sign); a day does when an
object of it is not current or its batch leaves out an hour of that day that has rows.

Pure: :meth:`speedlab.roller.Roller._raw_month` reads the table and lists the month.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from .aggregate import FRAME_COLUMNS, columns_frame, grouped_frame
from .layout import raw_hour_label
from .mergeable import ALL_METRICS
from .periods import parse_timestamp
from .records import SpeedTestResult
from .tables import OVERRIDES, RAW_TABLE, SOURCE_KEY

__all__ = ["MonthSource", "RawMonth", "table_results_frame"]

#: The record fields the statistics read: each is a raw table column of the same name.
_FIELDS = ("host_id", "slot", "timestamp_utc", "status", *ALL_METRICS, "connection_type")
assert all(name in RAW_TABLE.schema for name in _FIELDS)
_CORE = ("download_mbps", "upload_mbps", "ping_ms")


def table_results_frame(frame: pl.DataFrame) -> pl.DataFrame | None:
    """:func:`speedlab.aggregate.results_frame` of a raw table's rows, plus ``hour`` (the key's
    hour label) and ``day`` (its local date), made from the columns; ``None`` when a row holds a
    value its column does not give back as it was, an ``ok`` result holds -0.0, or a key is
    in two rows."""
    if frame[SOURCE_KEY].is_duplicated().any():
        return None
    for text in frame[OVERRIDES].drop_nulls().unique().to_list():  # a few distinct ones (server: null...)
        if any(path[0] in _FIELDS for path, _value in json.loads(text)):
            return None
    columns = {name: frame[name].to_list() for name in (SOURCE_KEY, *_FIELDS)}
    keys, status = columns[SOURCE_KEY], columns["status"]
    ok = [s == "ok" for s in status]
    out: dict[str, Any] = {"key": keys, "host_id": columns["host_id"],
                           # parse_timestamp: SpeedTestResult.slot_start and time_utc's own parse
                           "slot": [parse_timestamp(s) for s in columns["slot"]],
                           "time_utc": [parse_timestamp(t) for t in columns["timestamp_utc"]],
                           "status": status, "connection_type": columns["connection_type"]}
    for metric in ALL_METRICS:
        values = columns[metric]
        if any(good and v == 0 and math.copysign(1.0, v) < 0 for v, good in zip(values, ok, strict=True)):
            return None
        out[metric] = [v if good else None for v, good in zip(values, ok, strict=True)]
    core = zip(*(columns[m] for m in _CORE), strict=True)
    # slot_preference's rank: 0 a full ok, 1 an ok missing a core metric, 2 failed
    out["rank"] = [2 if not good else (0 if None not in values else 1) for good, values in zip(ok, core, strict=True)]
    hours = [raw_hour_label(k) for k in keys]
    return columns_frame({name: out[name] for name in FRAME_COLUMNS}).with_columns(
        hour=pl.Series(hours, dtype=pl.String), day=pl.Series([h[:8] for h in hours], dtype=pl.String))


@dataclass
class RawMonth:
    """One raw month's table as a backfill uses it (:func:`speedlab.tables_io.read_raw_month`):
    its ``frame``, ``versions`` (source key -> the version its row was made from) and
    :meth:`result` (the row as the original object gives it; rows are decoded only when asked for)."""

    versions: dict[str, str | None]
    frame: pl.DataFrame
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def result(self, key: str) -> SpeedTestResult:
        """The row of ``key`` as :func:`speedlab.reader.parse_result` gives its object."""
        if not self._index:  # the last row wins for a repeated key, as in TableSchema.rows
            self._index.update((k, i) for i, k in enumerate(self.frame[SOURCE_KEY].to_list()))
        return SpeedTestResult.from_dict(RAW_TABLE.decode_row(self.frame.row(self._index[key], named=True)), key)


@dataclass
class MonthSource:
    """A raw month read for a backfill: its table and one listing per host
    (:func:`speedlab.reader.list_raw_hours` over the month)."""

    table: RawMonth
    listings: list
    #: local date (YYYYMMDD) -> its (hour, host) rows; ``None`` until first asked; empty and
    #: :attr:`_usable` False when the month cannot be counted from its columns
    _days: dict[str, list[dict[str, Any]]] | None = field(default=None, repr=False)
    #: local date -> the hour labels with a current row
    _labels: dict[str, set[str]] = field(default_factory=dict, repr=False)
    _usable: bool = field(default=True, repr=False)

    def current(self, objects: Iterable[Any]) -> set[str]:
        """The keys of ``objects`` (:class:`speedlab.reader.RawObject`) whose row was made from
        exactly the version listed (the rest are read)."""
        versions = self.table.versions
        return {o.info.key for o in objects
                if o.info.version is not None and versions.get(o.info.key) == o.info.version}

    def groups(self, labels: set[str]) -> list[Mapping[str, Any]] | None:
        """The (hour, host) rows (:func:`speedlab.aggregate.grouped_frame`'s) of the hours
        ``labels``, one local day's, counted from the columns; ``None`` when they cannot be:
        the month holds a value its columns do not give back (see the module docstring), or
        the day has rows outside ``labels`` (they would share its slots' deduplication). The
        caller asks only when every object listed in ``labels`` is current."""
        if self._days is None:
            self._count()
        days = {label[:8] for label in labels}
        if not self._usable or len(days) != 1:
            return None
        day = days.pop()
        if not self._labels.get(day, set()) <= labels:
            return None
        return [row for row in self._days.get(day, []) if row["hour"] in labels]  # type: ignore[union-attr]

    def _count(self) -> None:
        current = self.current(o for objects, _infos, _rejected in self.listings
                               for objs in objects.values() for o in objs)
        frame = table_results_frame(self.table.frame.filter(pl.col(SOURCE_KEY).is_in(sorted(current))))
        self._days = defaultdict(list)
        if frame is None:
            self._usable = False
            return
        for label in frame["hour"].unique().to_list():
            self._labels.setdefault(label[:8], set()).add(label)
        for row in grouped_frame(frame, scope=("day",)).iter_rows(named=True):
            self._days[row["hour"][:8]].append(row)
