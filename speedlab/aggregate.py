"""Exact, mergeable summaries: raw results -> hourly, and summaries -> coarser summaries.

Pure functions: no I/O, no clocks, no keys. :mod:`speedlab.rollup` reads the inputs, calls
these, and writes what they return. ``docs/aggregation.md`` explains the statistics; the
short version:

* **Mergeable statistics** (:mod:`speedlab.mergeable`). Each metric (``download_mbps``,
  ``upload_mbps``, ``ping_ms``, and the latency figures of record schema 2:
  ``latency_idle_ms``, ``jitter_ms``, ``latency_download_ms``, ``latency_upload_ms``,
  ``packet_loss_pct``, null when not measured and then not counted) keeps ``count``, the
  sum and the sum of squares, ``min``, ``max`` and a
  :class:`~speedlab.sketch.QuantileSketch`. Sums are exact integers of *milli-units*
  (each value is quantised once, ``floor(x * 1000 + 0.5)``, i.e. to 1 kbit/s or 1 µs), so
  adding them in any order, hour by hour or all at once, gives the same bits; means are
  ``sum / count`` and therefore identical whichever way they are computed. A coarser summary
  merges its children's statistics; it never averages averages.
* **Hours from raw results** (:func:`hourly_summaries`, polars; plain Python for small inputs,
  the same figures): one result per host and
  15-minute slot (the earliest *full* one: ``ok`` with download, upload and ping, then
  any ``ok``, then ``failed``; ties broken by ``timestamp_utc`` then key; the others are
  ``duplicates_ignored``); failed tests are counted in ``failed_tests`` and never enter the
  statistics; objects that could not be used are counted in ``rejected_records``.
* **Anomalies**: an ``ok`` test whose download is below the host's threshold,
  ``max(floor, median - max(k * 1.4826 * MAD, min_drop * median))`` where median and MAD come
  from the host's trailing window (see :func:`anomaly_threshold`, configurable in
  ``[aggregate]``).
* **Coverage**: ``expected_slots = len(hosts) * period.expected_slots`` where ``hosts`` are
  the hosts that stored anything in the period (for a period rolled up before it ends, only
  the slots begun by ``now`` are expected); ``slots_with_result`` counts slots with a
  kept result (``ok`` or ``failed``).
* **Plan**: ``below_expected`` compares the period's averages with the plan times
  ``below_expected_fraction``; for all hosts the plan is the test-count-weighted mean of the
  hosts' plans.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from .layout import host_in_key
from .mergeable import ALL_METRICS, LATENCY_METRICS, METRICS, SCALE, Accumulator, MetricStats, quantise
from .periods import Period, period_of
from .records import SCHEMA_VERSION, SpeedTestResult, TierSummary, below_plan, slot_preference
from .settings import AggregateSettings
from .sketch import QuantileSketch

# METRICS, LATENCY_METRICS, SCALE, Accumulator, MetricStats and quantise live in speedlab.mergeable
# (pure, no polars) and are re-exported here, where callers have always found them.
__all__ = ["ALL_METRICS", "FRAME_COLUMNS", "LATENCY_METRICS", "METRICS", "SCALE", "Accumulator", "HourPart",
           "MetricStats", "anomaly_threshold", "columns_frame", "count_anomalies", "dedupe_slots", "grouped_frame",
           "hour_summaries", "hourly_parts", "hourly_summaries", "label_fields", "parts_from_groups",
           "expected_slots_so_far", "merge_summaries", "quantise", "results_frame", "summary_from_accumulator"]

#: MAD of a normal distribution is 0.6745 sigma; 1.4826 * MAD estimates sigma.
MAD_TO_SIGMA = 1.4826


def _quantise_expr(column: pl.Expr) -> pl.Expr:
    return (column * SCALE + 0.5).floor().cast(pl.Int64)


# =========================================================================== calendar fields

def label_fields(period: Period) -> dict:
    """The period's own label field(s) in human form, plus its bounds and zone.

    ``hour`` "2025-12-29T14", ``date`` "2025-12-29", ``week`` "2025W44" with ``week_start``
    and ``week_end`` (Monday and Sunday), ``month`` "2025-12" or ``year`` "2025"; then
    ``period_start``/``period_end`` (ISO 8601 local with offset, end exclusive).
    """
    s = period.start
    own = {
        "hourly": lambda: {"hour": s.strftime("%Y-%m-%dT%H")},
        "daily": lambda: {"date": s.strftime("%Y-%m-%d")},
        "weekly": lambda: {"week": period.label, "week_start": s.date().isoformat(),
                           "week_end": (period.end.date() - timedelta(days=1)).isoformat()},
        "monthly": lambda: {"month": s.strftime("%Y-%m")},
        "yearly": lambda: {"year": s.strftime("%Y")},
    }[period.tier]()
    return {**own, "period_start": period.start.isoformat(), "period_end": period.end.isoformat()}


# =========================================================================== plan

def _expected(acc: Accumulator, host_id: str | None, plan_for: Callable) -> tuple[float | None, float | None]:
    """The plan speeds a summary is judged against (count-weighted over hosts for all hosts)."""
    if host_id is not None:
        plan = plan_for(host_id)
        return plan.download_mbps, plan.upload_mbps
    weights = {h: n for h, n in acc.records_by_host.items() if n > 0}
    if not weights:
        weights = {h: 1 for h in acc.hosts}
    if not weights:
        plan = plan_for(None)
        return plan.download_mbps, plan.upload_mbps
    out: list[float | None] = []
    for attr in ("download_mbps", "upload_mbps"):
        values = [(getattr(plan_for(h), attr), n) for h, n in weights.items()]
        if any(v is None for v, _ in values):
            out.append(None)
        else:
            out.append(sum(v * n for v, n in values) / sum(n for _, n in values))
    return out[0], out[1]


def _below(avg_down: float | None, avg_up: float | None, plan_down: float | None,
           plan_up: float | None, fraction: float) -> bool | None:
    return below_plan(avg_down, avg_up, plan_down, plan_up, fraction)  # the one rule


# =========================================================================== finishing

def expected_slots_so_far(period: Period, now: datetime | None) -> int:
    """The slots one host is expected to have filled in ``period`` at ``now``.

    All of them once the period is over (or without ``now``). An hour in progress: the slots
    begun by ``now``. A longer period in progress is rolled up from the hours that are over, so:
    the slots before the start of ``now``'s hour (a day at 18:05: 72, never the 216 of 288 that
    would count the evening's slots as missing).
    """
    if now is None or period.end_utc <= now:
        return period.expected_slots
    if period.tier == "hourly":
        return period.slots_begun(now)
    hour = period_of("hourly", now, period.zone)
    return period.slots_begun(hour.start_utc - timedelta(microseconds=1))


def summary_from_accumulator(acc: Accumulator, period: Period, host_id: str | None, *,
                             plan_for: Callable, fraction: float, timezone: str,
                             now: datetime | None = None, check: bool = True) -> TierSummary:
    """Turn counted statistics into the summary of ``period`` for ``host_id`` (None: all).

    With ``now`` inside the period (a period rolled up so far), ``expected_slots`` counts only
    the slots that could have a result yet (:func:`expected_slots_so_far`); for a period that is
    over it is all of them either way. ``check=False`` skips :meth:`TierSummary.from_dict`'s
    rules: only for statistics of validated raw results (:func:`hour_summaries`); merged stored
    summaries are checked (a stored negative sum would make a negative average).
    """
    alpha = acc.stats["download_mbps"].sketch.alpha
    stats = {m: acc.stats.get(m) or MetricStats(sketch=QuantileSketch(alpha)) for m in ALL_METRICS}
    data: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "tier": period.tier,
                            "period": period.label, **label_fields(period),
                            "timezone": timezone, "host_id": host_id, "hosts": sorted(acc.hosts)}
    for metric, short in METRICS.items():
        data[f"avg_{short}"] = stats[metric].mean
    for metric, short in METRICS.items():
        data[f"min_{short}"] = stats[metric].min
        data[f"max_{short}"] = stats[metric].max
    for metric, short in METRICS.items():
        data[f"median_{short}"], data[f"p95_{short}"] = stats[metric].quantiles(0.5, 0.95)
    for metric, short in LATENCY_METRICS.items():  # the same figures for the latency metrics
        latency = stats[metric]
        median, p95 = latency.quantiles(0.5, 0.95)
        data.update({f"avg_{short}": latency.mean, f"min_{short}": latency.min, f"max_{short}": latency.max,
                     f"median_{short}": median, f"p95_{short}": p95})
    expected_slots = len(acc.hosts) * expected_slots_so_far(period, now)
    plan_down, plan_up = _expected(acc, host_id, plan_for)
    data.update(
        records_aggregated=acc.records, failed_tests=acc.failed_tests,
        rejected_records=acc.rejected_records, duplicates_ignored=acc.duplicates_ignored,
        expected_slots=expected_slots, slots_with_result=acc.slots_with_result,
        coverage_pct=round(100 * acc.slots_with_result / expected_slots, 2) if expected_slots else None,
        days=acc.days, connection_types=sorted(acc.connection_types),
        anomalies_count=acc.anomalies_count, expected_download_mbps=plan_down,
        expected_upload_mbps=plan_up,
        below_expected=_below(data["avg_download"], data["avg_upload"], plan_down, plan_up, fraction)
        if acc.records else None,
        records_by_host=dict(sorted(acc.records_by_host.items())),
        exact=all(s.exact for s in stats.values()),
        # a latency metric nobody measured is left out (it reads back empty and exact): a
        # deployment without latency figures keeps summaries of the size they were
        stats={m: stats[m].to_dict() for m in ALL_METRICS if m in METRICS or stats[m].count},
    )
    if acc.legacy_inputs:
        data["legacy_inputs"] = acc.legacy_inputs
    return TierSummary.from_dict(data, check=check)


# =========================================================================== raw -> hourly

_FRAME_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "key": pl.String, "host_id": pl.String, "slot": pl.Datetime("us", "UTC"),
    "time_utc": pl.Datetime("us", "UTC"), "status": pl.String, "rank": pl.Int8,
    "download_mbps": pl.Float64, "upload_mbps": pl.Float64, "ping_ms": pl.Float64,
    "connection_type": pl.String, **dict.fromkeys(LATENCY_METRICS, pl.Float64)}


def _rank(result: SpeedTestResult) -> int:
    return slot_preference("", result)[0]


def results_frame(results: Sequence[tuple[str, SpeedTestResult]]) -> pl.DataFrame:
    """One row per result (``key``, ``host_id``, ``slot``, ``time_utc`` in UTC, ``status``,
    ``rank`` 0 full ``ok`` / 1 ``ok`` missing a metric / 2 failed, the three metrics, ``connection_type``,
    then the latency metrics: :data:`~speedlab.mergeable.LATENCY_METRICS`, null when not measured)."""
    rows: dict[str, list[Any]] = {name: [] for name in FRAME_COLUMNS}
    for key, r in results:
        rows["key"].append(key)
        rows["host_id"].append(r.host_id)
        rows["slot"].append(r.slot_start)
        rows["time_utc"].append(r.time_utc)
        rows["status"].append(r.status)
        rows["rank"].append(_rank(r))
        for metric in ALL_METRICS:
            value = getattr(r, metric)
            rows[metric].append(float(value) if value is not None and r.ok else None)
        rows["connection_type"].append(r.connection_type)
    return columns_frame(rows)


#: The columns of :func:`results_frame`, in order.
FRAME_COLUMNS = tuple(_FRAME_SCHEMA)


def columns_frame(columns: Mapping[str, Sequence[Any]]) -> pl.DataFrame:
    """:func:`results_frame` from its :data:`FRAME_COLUMNS` computed elsewhere (the same rules:
    :mod:`speedlab.monthsource` makes them from a raw table's columns)."""
    return pl.DataFrame(dict(columns), schema=_FRAME_SCHEMA)


def dedupe_slots(frame: pl.DataFrame, scope: Sequence[str] = ()) -> pl.DataFrame:
    """Keep one result per host and slot: the earliest full one (see the module doc).
    ``scope``: more columns the duplicates must share (a month's rows kept day by day)."""
    ordered = frame.sort([*scope, "host_id", "slot", "rank", "time_utc", "key"])
    return ordered.unique(subset=[*scope, "host_id", "slot"], keep="first", maintain_order=True)


def anomaly_threshold(baseline: QuantileSketch | None, settings: AggregateSettings) -> float | None:
    """The download below which a host's test is an anomaly [Mbit/s] (``None``: no rule).

    ``max(floor, median - max(k * 1.4826 * MAD, min_drop * median))`` over the host's
    trailing-window sketch when it holds at least ``anomaly_min_baseline_tests`` tests;
    otherwise the floor alone.
    """
    floor = settings.anomaly_floor_download_mbps
    relative = None
    if baseline is not None and baseline.count >= settings.anomaly_min_baseline_tests:
        median, mad = baseline.quantile(0.5), baseline.mad()
        if median is not None and mad is not None:  # None only for an empty sketch
            margin = max(settings.anomaly_mad_factor * MAD_TO_SIGMA * mad,
                         settings.anomaly_min_drop_fraction * median)
            relative = median - margin
    candidates = [v for v in (floor, relative) if v is not None]
    return max(candidates) if candidates else None


@dataclass
class HourPart:
    """One host's hour before anomalies are counted: its statistics and kept downloads."""

    acc: Accumulator
    downloads: list[float] = field(default_factory=list)


def count_anomalies(downloads: Iterable[float], threshold: float | None) -> int:
    """How many downloads are below ``threshold`` (0 without a threshold)."""
    return 0 if threshold is None else sum(1 for d in downloads if d < threshold)


def hourly_parts(results: Mapping[str, Sequence[tuple[str, SpeedTestResult]]],
                 rejected: Mapping[str, Sequence[tuple[str, str]]] | None = None,
                 settings: AggregateSettings = AggregateSettings(),
                 ) -> tuple[dict[str, dict[str, HourPart]], dict[str, int]]:
    """Statistics of many hours at once, per hour label and host: one polars pass, or for up to
    :data:`PYTHON_ROWS_MAX` results (a backfill's day, a live tail) the same rules in plain
    Python, whose figures are the same (``tests/test_aggregate.py`` checks both ways).

    Parameters
    ----------
    results : mapping hour label -> sequence of (key, SpeedTestResult)
        Valid results of each hour (several per slot allowed).
    rejected : mapping hour label -> sequence of (key, reason)
        Objects of each hour that could not be used; counted per host (``host=`` in the key).

    Returns
    -------
    (parts, unattributed)
        ``parts[label][host]``; ``unattributed[label]``: rejected objects without a host.
    """
    labels: list[str] = []
    rows: list[tuple[str, SpeedTestResult]] = []
    for label, items in results.items():
        labels.extend([label] * len(items))
        rows.extend(items)
    groups = _grouped_python(labels, rows) if len(rows) <= PYTHON_ROWS_MAX else None
    return parts_from_groups(groups if groups is not None else _grouped_polars(labels, rows), rejected, settings)


def parts_from_groups(groups: Iterable[Mapping[str, Any]],
                      rejected: Mapping[str, Sequence[tuple[str, str]]] | None = None,
                      settings: AggregateSettings = AggregateSettings(),
                      ) -> tuple[dict[str, dict[str, HourPart]], dict[str, int]]:
    """:func:`hourly_parts`' answer from the rows of :func:`grouped_frame` (or its plain-Python
    twin): one (hour, host) each, with its counts and kept metric values."""
    alpha = settings.sketch_alpha
    parts: dict[str, dict[str, HourPart]] = defaultdict(dict)
    for row in groups:
        host = row["host_id"]
        acc = Accumulator(hosts={host}, records=int(row["ok"]))  # every statistic set below
        acc.records_by_host = Counter({host: acc.records} if acc.records else {})
        acc.failed_tests = int(row["failed"])
        acc.slots_with_result = int(row["results"])
        acc.duplicates_ignored = int(row["all"]) - int(row["results"])
        acc.days = int(acc.records > 0)
        acc.connection_types = set(row["types"])
        for metric in ALL_METRICS:
            acc.stats[metric] = MetricStats(
                int(row[f"{metric}.count"]), int(row[f"{metric}.sum"]), int(row[f"{metric}.sum_sq"]),
                row[f"{metric}.min"], row[f"{metric}.max"],
                QuantileSketch.of(row[f"{metric}.values"], alpha))
        parts[row["hour"]][host] = HourPart(acc, list(row["download_mbps.values"]))
    unattributed: dict[str, int] = Counter()
    for label, rejections in (rejected or {}).items():
        for key, _reason in rejections:
            host = host_in_key(key)
            if host is None:
                unattributed[label] += 1
                continue
            if host not in parts[label]:
                empty = Accumulator.empty(alpha)
                empty.hosts = {host}
                parts[label][host] = HourPart(empty)
            parts[label][host].acc.rejected_records += 1
    return dict(parts), dict(unattributed)


#: Up to this many results :func:`hourly_parts` counts in plain Python (polars' fixed cost per
#: call outweighs its speed on a day of a few hosts); more go through polars. Same figures either way.
PYTHON_ROWS_MAX = 20_000


def _grouped_polars(labels: list[str], rows: list[tuple[str, SpeedTestResult]]) -> Iterator[dict[str, Any]]:
    """Each (hour, host)'s counts and kept metric values, sorted by hour then host (polars)."""
    frame = results_frame(rows).with_columns(hour=pl.Series(labels, dtype=pl.String))
    return grouped_frame(frame).iter_rows(named=True)


def grouped_frame(frame: pl.DataFrame, scope: Sequence[str] = ()) -> pl.DataFrame:
    """One row per (hour, host) of a :func:`results_frame` with an ``hour`` label column: its
    counts and kept metric values (``<metric>.values``), sorted by hour then host. ``scope``:
    more columns a slot's duplicates must share (:func:`dedupe_slots`)."""
    kept = dedupe_slots(frame, scope)
    ok = pl.col("status") == "ok"
    aggs = [pl.len().alias("results"), ok.sum().alias("ok"), (~ok).sum().alias("failed"),
            pl.col("connection_type").filter(ok).unique().alias("types")]
    for metric in ALL_METRICS:
        values = pl.col(metric).filter(ok & pl.col(metric).is_not_null())
        q = _quantise_expr(values)
        aggs += [values.count().alias(f"{metric}.count"), q.sum().alias(f"{metric}.sum"),
                 (q.cast(pl.Int128) * q.cast(pl.Int128)).sum().alias(f"{metric}.sum_sq"),
                 values.min().alias(f"{metric}.min"), values.max().alias(f"{metric}.max"),
                 values.alias(f"{metric}.values")]
    grouped = kept.group_by(["hour", "host_id"]).agg(aggs)
    totals = frame.group_by(["hour", "host_id"]).agg(pl.len().alias("all"))
    grouped = grouped.join(totals, on=["hour", "host_id"], how="left")
    return grouped.sort(["hour", "host_id"])


def _grouped_python(labels: list[str], rows: list[tuple[str, SpeedTestResult]]) -> list[dict[str, Any]] | None:
    """:func:`_grouped_polars`'s rows computed in plain Python, the same rules step by step: one
    result per host and slot (:func:`dedupe_slots`' sort key), then per (hour, host) the counts,
    the quantised sums (``floor(x * 1000 + 0.5)``, the same float operations), min, max and the
    values in slot order. ``None`` (use polars) when an ``ok`` result holds -0.0: polars' min and
    max of 0.0 and -0.0 keep another one than Python's."""
    best: dict[tuple[str, datetime], tuple[tuple, int]] = {}
    totals: Counter = Counter()
    decoded = []
    for i, (key, r) in enumerate(rows):
        if r.ok and any(getattr(r, m) == 0 and math.copysign(1.0, getattr(r, m)) < 0 for m in ALL_METRICS):
            return None
        host, slot = r.host_id, r.slot_start
        totals[(labels[i], host)] += 1
        order = slot_preference(key, r)  # (rank, time_utc, key): dedupe_slots' order after host and slot
        held = best.get((host, slot))
        if held is None or order < held[0]:
            best[(host, slot)] = (order, i)
        decoded.append((host, slot, order))
    kept = sorted((decoded[i][0], decoded[i][1], order, i) for order, i in best.values())
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for host, _slot, _order, i in kept:
        r = rows[i][1]
        group = groups.get((labels[i], host))
        if group is None:
            group = groups[(labels[i], host)] = {"results": 0, "ok": 0, "failed": 0, "types": set(),
                                                 **{m: [] for m in ALL_METRICS}}
        group["results"] += 1
        if r.status != "ok":
            group["failed"] += 1
            continue
        group["ok"] += 1
        group["types"].add(r.connection_type)
        for metric in ALL_METRICS:
            value = getattr(r, metric)
            if value is not None:
                group[metric].append(float(value))
    out = []
    for (label, host) in sorted(groups):
        group = groups[(label, host)]
        row = {"hour": label, "host_id": host, "results": group["results"], "ok": group["ok"],
               "failed": group["failed"], "types": group["types"], "all": totals[(label, host)]}
        for metric in ALL_METRICS:
            values = group[metric]
            quantised = [math.floor(v * SCALE + 0.5) for v in values]
            row.update({f"{metric}.count": len(values), f"{metric}.sum": sum(quantised),
                        f"{metric}.sum_sq": sum(q * q for q in quantised),
                        f"{metric}.min": min(values) if values else None,
                        f"{metric}.max": max(values) if values else None, f"{metric}.values": values})
        out.append(row)
    return out


def hour_summaries(period: Period, parts: Mapping[str, HourPart], *,
                   thresholds: Mapping[str, float | None] | None = None, unattributed: int = 0,
                   plan_for: Callable, fraction: float = 0.8, timezone: str = "Asia/Kolkata",
                   settings: AggregateSettings = AggregateSettings(),
                   now: datetime | None = None) -> dict[str | None, TierSummary]:
    """Finish one hour from :func:`hourly_parts`: count anomalies against each host's
    threshold, then the per-host summaries and the all-hosts one (key ``None``)."""
    thresholds = thresholds or {}
    # the statistics come from validated raw results: the summaries need no second check
    common: dict[str, Any] = dict(plan_for=plan_for, fraction=fraction, timezone=timezone, now=now, check=False)
    everyone = Accumulator.empty(settings.sketch_alpha)
    out: dict[str | None, TierSummary] = {}
    for host in sorted(parts):
        part = parts[host]
        # the part's statistics as they are (read, never changed), with its anomalies counted
        acc = dataclasses.replace(part.acc, anomalies_count=count_anomalies(part.downloads, thresholds.get(host)))
        everyone.add(acc)
        out[host] = summary_from_accumulator(acc, period, host, **common)
    everyone.rejected_records += unattributed
    everyone.days = int(everyone.records > 0)
    out[None] = summary_from_accumulator(everyone, period, None, **common)
    return out


def hourly_summaries(period: Period, results: Sequence[tuple[str, SpeedTestResult]],
                     rejected: Sequence[tuple[str, str]] = (), *,
                     thresholds: Mapping[str, float | None] | None = None,
                     plan_for: Callable, fraction: float = 0.8, timezone: str = "Asia/Kolkata",
                     settings: AggregateSettings = AggregateSettings(), now: datetime | None = None,
                     ) -> dict[str | None, TierSummary]:
    """Summaries of one hour: one per host that stored anything, and the all-hosts one (key None).

    Parameters
    ----------
    period : Period
        The hour (``tier == "hourly"``).
    results : sequence of (key, SpeedTestResult)
        Valid results whose slot is in the hour (several per slot allowed).
    rejected : sequence of (key, reason)
        Objects of the hour that could not be used; counted per host (from ``host=`` in
        the key) and in total.
    thresholds : mapping host -> float or None
        Each host's anomaly threshold (:func:`anomaly_threshold`) [Mbit/s].
    plan_for : callable
        ``plan_for(host_id or None)`` -> an object with ``download_mbps``/``upload_mbps``
        (``Config.plan_for``).
    """
    if period.tier != "hourly":
        raise ValueError(f"hourly_summaries needs an hour, not a {period.tier} period")
    parts, unattributed = hourly_parts({period.label: results}, {period.label: rejected}, settings)
    return hour_summaries(period, parts.get(period.label, {}), thresholds=thresholds,
                          unattributed=unattributed.get(period.label, 0), plan_for=plan_for,
                          fraction=fraction, timezone=timezone, settings=settings, now=now)


# =========================================================================== summaries -> coarser

def merge_summaries(period: Period, host_id: str | None, children: Sequence[Mapping[str, Any]], *,
                    plan_for: Callable, fraction: float = 0.8, timezone: str = "Asia/Kolkata",
                    settings: AggregateSettings = AggregateSettings(),
                    sources: Sequence[str | None] | None = None, now: datetime | None = None,
                    checked: bool = False) -> TierSummary:
    """The summary of ``period`` from its children's summaries (hours -> day, days -> week or
    month, months -> year), for one host or all hosts.

    Statistics merge exactly (counts, sums, min, max, sketches); ``days`` is 1 for a day with
    data and the sum of the children's ``days`` above that. ``checked``: every child has passed
    :meth:`Accumulator.from_summary` before (the rollup's own summaries and those it read), so
    :meth:`TierSummary.from_dict`'s rules are not applied to them again.

    Raises
    ------
    InvalidRecord
        If a child is not a valid summary (the caller counts and skips it instead).
    """
    acc = Accumulator.empty(settings.sketch_alpha)
    for i, child in enumerate(children):
        source = sources[i] if sources else None
        acc.add(Accumulator.from_summary(child, settings.sketch_alpha, source, check=not checked))
    if period.tier == "daily":
        acc.days = int(acc.days > 0 or acc.records > 0)
    return summary_from_accumulator(acc, period, host_id, plan_for=plan_for, fraction=fraction,
                                    timezone=timezone, now=now)
