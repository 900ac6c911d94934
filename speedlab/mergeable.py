"""Mergeable statistics: one metric's exact sums, min, max and sketch, and a summary's counts.

Pure, no polars: :mod:`speedlab.aggregate` fills these from raw results and finishes them into
summaries; readers (:mod:`speedlab.roller`, :mod:`speedlab.rowsource`, :mod:`speedlab.metrics`)
read stored summaries back through :meth:`Accumulator.from_summary`. ``docs/aggregation.md``
explains the statistics: each value is quantised once (:func:`quantise`) and the integer sums
add exactly in any order.

Metrics: the core three (:data:`METRICS`, the seed's) and the latency figures of record schema 2
(:data:`LATENCY_METRICS`); :data:`ALL_METRICS` is both, in the order a summary's ``stats`` lists
them. A summary written before the latency figures has no statistics for them: they read as
empty (count 0) and exact.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidRecord
from .records import SUMMARY_LATENCY_METRICS, TierSummary
from .sketch import DEFAULT_ALPHA, QuantileSketch

__all__ = ["ALL_METRICS", "LATENCY_METRICS", "METRICS", "SCALE", "Accumulator", "MetricStats", "quantise"]

#: The metrics summarised, with the short name used in the seed's field names.
METRICS = {"download_mbps": "download", "upload_mbps": "upload", "ping_ms": "ping"}
#: The latency figures summarised since record schema 2 (``avg_<short>``...) [ms; packet loss %].
LATENCY_METRICS: dict[str, str] = dict(SUMMARY_LATENCY_METRICS)
#: Every metric a summary's ``stats`` holds, in order.
ALL_METRICS: dict[str, str] = {**METRICS, **LATENCY_METRICS}
#: Values are quantised to 1/SCALE of their unit before summing (1 kbit/s, 1 µs).
SCALE = 1000


def quantise(value: float) -> int:
    """``floor(value * SCALE + 0.5)``: the exact integer milli-units a value is summed as."""
    return math.floor(value * SCALE + 0.5)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class MetricStats:
    """Mergeable statistics of one metric: exact count, sums, min, max and a quantile sketch.

    ``sum_milli`` is the exact sum of the quantised values (:func:`quantise`),
    ``sum_sq_micro`` the exact sum of their squares. ``exact`` is False when an input was a
    summary without statistics (the original system's), whose sums are reconstructed from
    its average.
    """

    count: int = 0
    sum_milli: int = 0
    sum_sq_micro: int = 0
    min: float | None = None
    max: float | None = None
    sketch: QuantileSketch = field(default_factory=QuantileSketch)
    exact: bool = True

    @classmethod
    def of(cls, values: Iterable[float | None], alpha: float = DEFAULT_ALPHA) -> MetricStats:
        """Statistics of ``values`` (``None`` skipped), computed directly in Python."""
        out = cls(sketch=QuantileSketch(alpha))
        for value in values:
            if value is None:
                continue
            q = quantise(value)
            out.count += 1
            out.sum_milli += q
            out.sum_sq_micro += q * q
            out.min = value if out.min is None else min(out.min, value)
            out.max = value if out.max is None else max(out.max, value)
            out.sketch.add(value)
        return out

    def add(self, other: MetricStats) -> None:
        """Merge ``other`` into this one."""
        self.count += other.count
        self.sum_milli += other.sum_milli
        self.sum_sq_micro += other.sum_sq_micro
        if other.min is not None:
            self.min = other.min if self.min is None else min(self.min, other.min)
        if other.max is not None:
            self.max = other.max if self.max is None else max(self.max, other.max)
        self.sketch = self.sketch.merge(other.sketch)
        self.exact = self.exact and other.exact

    @property
    def mean(self) -> float | None:
        """``sum / count`` [unit] (``None`` without values)."""
        return self.sum_milli / (self.count * SCALE) if self.count else None

    def quantile(self, q: float) -> float | None:
        """The sketch's ``q`` quantile, or ``None`` if the sketch does not hold every value."""
        return self.quantiles(q)[0]

    def quantiles(self, *qs: float) -> list[float | None]:
        """:meth:`quantile` of each of ``qs`` (the sketch's buckets sorted once)."""
        if not self.count or self.sketch.count != self.count:
            return [None] * len(qs)
        return self.sketch.quantiles(qs, self.min, self.max)

    def to_dict(self) -> dict:
        """JSON form: ``count``, ``sum``, ``sum_sq``, ``min``, ``max`` (in the metric's unit),
        the exact ``sum_milli`` and ``sum_sq_micro``, ``exact`` and the ``sketch``."""
        return {"count": self.count, "sum": self.sum_milli / SCALE,
                "sum_sq": self.sum_sq_micro / SCALE ** 2, "min": self.min, "max": self.max,
                "sum_milli": self.sum_milli, "sum_sq_micro": self.sum_sq_micro,
                "exact": self.exact, "sketch": self.sketch.to_dict()}

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> MetricStats:
        """Rebuild from :meth:`to_dict`'s form.

        Raises
        ------
        InvalidRecord
            If a field is missing or of the wrong type.
        """
        where = f" in {source}" if source else ""
        try:
            count, s, ss = data["count"], data["sum_milli"], data["sum_sq_micro"]
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                       for v in (count, ss)) or not isinstance(s, int):
                raise TypeError("count, sum_milli and sum_sq_micro must be integers")
            low, high = data.get("min"), data.get("max")
            for v in (low, high):
                if v is not None and not _is_number(v):
                    raise TypeError("min and max must be numbers")
            sketch = QuantileSketch.from_dict(data["sketch"], source)
        except (KeyError, TypeError) as exc:
            raise InvalidRecord(f"invalid statistics{where}: {exc}") from None
        return cls(count, s, ss, low, high, sketch, bool(data.get("exact", True)))


@dataclass
class Accumulator:
    """Everything a summary counts, in mergeable form (one host or many)."""

    hosts: set[str] = field(default_factory=set)
    records: int = 0
    records_by_host: Counter = field(default_factory=Counter)
    failed_tests: int = 0
    rejected_records: int = 0
    duplicates_ignored: int = 0
    slots_with_result: int = 0
    days: int = 0
    anomalies_count: int = 0
    connection_types: set[str] = field(default_factory=set)
    stats: dict[str, MetricStats] = field(default_factory=dict)
    legacy_inputs: int = 0

    @classmethod
    def empty(cls, alpha: float = DEFAULT_ALPHA) -> Accumulator:
        """Nothing counted yet."""
        return cls(stats={m: MetricStats(sketch=QuantileSketch(alpha)) for m in ALL_METRICS})

    def add(self, other: Accumulator) -> None:
        """Merge ``other`` into this one (``days`` are added: see :func:`merge_summaries`)."""
        self.hosts |= other.hosts
        self.records += other.records
        self.records_by_host.update(other.records_by_host)
        for name in ("failed_tests", "rejected_records", "duplicates_ignored",
                     "slots_with_result", "days", "anomalies_count", "legacy_inputs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.connection_types |= other.connection_types
        for metric, stats in other.stats.items():
            if metric in self.stats:
                self.stats[metric].add(stats)
            else:
                self.stats[metric] = MetricStats(sketch=QuantileSketch(stats.sketch.alpha))
                self.stats[metric].add(stats)

    @classmethod
    def from_summary(cls, data: Mapping[str, Any], alpha: float = DEFAULT_ALPHA,
                     source: str | None = None, *, check: bool = True) -> Accumulator:
        """Read a stored summary back into mergeable form.

        A summary without ``stats`` (the original system's) contributes its counts, its
        ``min_download``/``max_download`` and sums rebuilt from its averages; the result is
        then marked inexact and its percentiles left out.

        A summary with the core ``stats`` but none for a latency metric (written before the
        latency figures) contributes no value to it: empty and exact.

        Raises
        ------
        InvalidRecord
            If ``data`` is not a JSON object or breaks :meth:`TierSummary.from_dict`'s rules
            (wrong types, negative counts, ...), or a statistic present is invalid (a latency
            one too: not an object, a missing or mistyped field, another sketch alpha).
            ``check=False`` leaves out the :meth:`TierSummary.from_dict` rules, for a summary
            already judged by them (a rollup's own, or one it read through this very method).
        """
        if not isinstance(data, Mapping):
            raise InvalidRecord(f"summary must be a JSON object, not {type(data).__name__}"
                                f"{' in ' + source if source else ''}")
        summary = TierSummary.from_dict(dict(data), source, check=check)
        acc = cls.empty(alpha)
        host = summary.host_id
        hosts = summary.get("hosts")
        acc.hosts = set(hosts) if isinstance(hosts, list) else ({host} if host else set())
        acc.records = summary.records_aggregated
        by_host = summary.get("records_by_host")
        if isinstance(by_host, dict):
            acc.records_by_host = Counter({str(k): int(v) for k, v in by_host.items()})
        elif host and acc.records:
            acc.records_by_host = Counter({host: acc.records})
        for name in ("failed_tests", "rejected_records", "duplicates_ignored",
                     "slots_with_result", "legacy_inputs"):
            value = summary.get(name)
            setattr(acc, name, int(value) if isinstance(value, int) else 0)
        days = summary.get("days")
        acc.days = int(days) if isinstance(days, int) else int(acc.records > 0)
        acc.anomalies_count = summary.anomalies_count
        acc.connection_types = set(summary.connection_types)
        stats = summary.get("stats")
        if isinstance(stats, dict) and all(isinstance(stats.get(m), dict) for m in METRICS):
            for metric in ALL_METRICS:
                if metric in METRICS or stats.get(metric) is not None:
                    acc.stats[metric] = MetricStats.from_dict(stats[metric], f"{source or 'summary'} stats.{metric}"
                                                              if metric in LATENCY_METRICS else source)
            for value in acc.stats.values():
                if value.sketch.alpha != alpha:
                    raise InvalidRecord(f"summary sketch alpha {value.sketch.alpha} differs from "
                                        f"the configured {alpha}{' in ' + source if source else ''}: "
                                        "re-run the backfill with one sketch_alpha")
        else:  # the original system's summary: counts and averages only
            acc.legacy_inputs += 1
            n = acc.records
            for metric, short in METRICS.items():
                avg = summary.get(f"avg_{short}")
                if n and avg is not None:
                    q = quantise(avg)
                    acc.stats[metric] = MetricStats(n, q * n, q * q * n, summary.get(f"min_{short}"),
                                                    summary.get(f"max_{short}"),
                                                    QuantileSketch(alpha), exact=False)
        return acc
