"""Figures so far for a period that has not ended, merged exactly from what is stored.

A period in progress (this hour, today, this ISO week, this month, this year) has no stored
summary until it ends and is rolled up. Its figures so far are still exact, because the
statistics merge (:mod:`speedlab.aggregate`): the period is split into its children
(:func:`speedlab.periods.children`: months -> days -> hours); a child that is over and has a
stored summary contributes that summary; a child that is still running, or is over but not
rolled up yet, is itself computed so far the same way; an hour without a stored summary is
computed from its raw results. The result is the summary the rollup would write if the
period ended now, except that

* ``expected_slots`` counts the slots begun by ``now`` (:meth:`Period.slots_begun`, the slot
  ``now`` falls in included) for every host that stored anything, so coverage so far is
  measured against slots that have happened, not against the rest of the month;
* ``anomalies_count`` of an hour computed from raw results is 0: anomaly thresholds come from
  each host's trailing window, which the hourly rollup reads when the hour is over.

Pure: the stored summaries and the raw results arrive through two callables, so the same
code serves the JSON layout, the Parquet tables and tests. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from .aggregate import hourly_summaries, summary_from_accumulator
from .errors import InvalidRecord
from .mergeable import Accumulator
from .periods import DEFAULT_TIMEZONE, Period, children
from .records import SpeedTestResult, TierSummary
from .settings import AggregateSettings

__all__ = ["StoredLookup", "ResultsLookup", "live_summary"]

#: What reading a stored summary back may raise besides InvalidRecord on odd values (1e308 sums overflow)
_UNMERGEABLE = (InvalidRecord, TypeError, ValueError, KeyError, AttributeError, ArithmeticError)

#: ``stored(period, host_id)`` -> the stored summary dict of ``period`` for ``host_id``
#: (``None``: all hosts), or ``None`` if there is none (or it cannot be used).
StoredLookup = Callable[[Period, "str | None"], "Mapping[str, Any] | None"]
#: ``results(hour)`` -> the valid raw results ``(key, record)`` whose slot is in ``hour``
#: (every host; duplicates allowed: the hourly rule picks one per slot).
ResultsLookup = Callable[[Period], Sequence[tuple[str, SpeedTestResult]]]


def live_summary(period: Period, host_id: str | None, now: datetime, *, stored: StoredLookup,
                 results: ResultsLookup, plan_for: Callable, fraction: float = 0.8,
                 timezone: str = DEFAULT_TIMEZONE, settings: AggregateSettings | None = None,
                 rolled_up_before: datetime | Callable[[Period], bool] | None = None,
                 unusable: Callable[[Period, Exception], None] | None = None) -> dict | None:
    """The summary of ``period`` for ``host_id`` (``None``: all hosts) as it stands at ``now``.

    Parameters
    ----------
    period : Period
        Any tier. A period that is over is computed the same way (useful when its summary is
        missing); one that has not started gives ``None``.
    host_id : str or None
        One host, or ``None`` for all hosts.
    now : datetime
        Aware; nothing at or after it is expected.
    stored, results : callable
        Where stored summaries and raw results come from (see :data:`StoredLookup`,
        :data:`ResultsLookup`).
    plan_for, fraction, timezone, settings
        As for :func:`speedlab.aggregate.merge_summaries`.
    rolled_up_before : datetime or callable, optional
        A finished child that ended at or before this moment and has no stored summary had no
        data (the rollups have run since); or a predicate ``rolled_up_before(child)`` saying
        so per child (its tier's rollup has had time to run). Without it every such child is
        recomputed from its own children, down to raw results: exact, but a year with empty
        months would read every hour of them.
    unusable : callable, optional
        ``unusable(child, error)`` is told of each stored summary that fails the rollup's
        condition on an input (:meth:`speedlab.mergeable.Accumulator.from_summary`); that child
        is recomputed from its own children instead, as the rollup would replace it.

    Returns
    -------
    dict or None
        The summary dict (the shape of a stored summary), or ``None`` if nothing at all was
        stored for ``host_id`` in the period so far.
    """
    settings = settings or AggregateSettings()
    common: dict[str, Any] = dict(plan_for=plan_for, fraction=fraction, timezone=timezone,
                                  settings=settings)
    summary = _so_far(period, host_id, now, stored, results, common, rolled_up_before, unusable)
    if summary is None:
        return None
    hosts = summary.get("hosts") or []
    expected = len(hosts) * period.slots_begun(now)
    summary["expected_slots"] = expected
    with_result = summary.get("slots_with_result") or 0
    summary["coverage_pct"] = round(100 * with_result / expected, 2) if expected else None
    return summary


def _so_far(period: Period, host_id: str | None, now: datetime, stored: StoredLookup,
            results: ResultsLookup, common: dict[str, Any],
            settled: datetime | Callable[[Period], bool] | None,
            unusable: Callable[[Period, Exception], None] | None = None) -> dict | None:
    """The summary dict of ``period`` so far: a finished period's stored summary as it is, else
    built from :func:`_counted` (the same figures :func:`merge_summaries` would give)."""
    if period.start_utc >= now:
        return None
    if period.end_utc <= now:
        state, found, _ = _stored_child(period, host_id, stored, common, settled, unusable)
        if state != "compute":
            return None if found is None else dict(found)
    if period.tier == "hourly":
        summary = _hour(period, host_id, now, results, common)
        return None if summary is None else summary.to_dict()
    acc = _counted(period, host_id, now, stored, results, common, settled, unusable, top=True)
    if acc is None:
        return None
    return summary_from_accumulator(acc, period, host_id, now=now, plan_for=common["plan_for"],
                                    fraction=common["fraction"], timezone=common["timezone"]).to_dict()


def _stored_child(period: Period, host_id: str | None, stored: StoredLookup, common: dict[str, Any],
                  settled: datetime | Callable[[Period], bool] | None,
                  unusable: Callable[[Period, Exception], None] | None
                  ) -> tuple[str, Mapping[str, Any] | None, Accumulator | None]:
    """What the finished ``period`` contributes: ``("use", summary, its accumulator)`` for a
    stored summary that can be merged, ``("none", None, None)`` for none where its rollup has
    run (no data), else ``("compute", None, None)``: computed from its children (a summary
    that fails the rollup's condition on an input is recomputed, as the rollup replaces it)."""
    found = stored(period, host_id)
    if found is not None:
        try:
            return "use", found, Accumulator.from_summary(found, common["settings"].sketch_alpha)
        except _UNMERGEABLE as exc:
            if unusable is not None:
                unusable(period, exc)
            return "compute", None, None
    if settled is not None and (settled(period) if callable(settled) else period.end_utc <= settled):
        return "none", None, None
    return "compute", None, None


def _hour(period: Period, host_id: str | None, now: datetime, results: ResultsLookup,
          common: dict[str, Any]) -> TierSummary | None:
    """The hour ``period`` of ``host_id`` from its raw results (``None``: no test in it)."""
    summary = hourly_summaries(period, results(period), now=now, **common).get(host_id)
    if summary is None or (not summary.records_aggregated and not summary.fields.get("failed_tests")):
        return None
    return summary


def _counted(period: Period, host_id: str | None, now: datetime, stored: StoredLookup,
             results: ResultsLookup, common: dict[str, Any],
             settled: datetime | Callable[[Period], bool] | None,
             unusable: Callable[[Period, Exception], None] | None, top: bool = False) -> Accumulator | None:
    """``period`` so far in mergeable form: a finished child's stored summary read once
    (:meth:`Accumulator.from_summary`, the rollup's condition on an input: one that fails it is
    recomputed from finer data, as the rollup replaces it), children merged without turning
    each level into a summary and back (exact either way: the statistics merge exactly)."""
    if period.start_utc >= now:
        return None
    alpha = common["settings"].sketch_alpha
    if period.end_utc <= now and not top:
        state, _, acc = _stored_child(period, host_id, stored, common, settled, unusable)
        if state != "compute":
            return acc
    if period.tier == "hourly":
        summary = _hour(period, host_id, now, results, common)
        return None if summary is None else Accumulator.from_summary(summary.to_dict(), alpha)
    kids = [kid for kid in (_counted(child, host_id, now, stored, results, common, settled, unusable)
                            for child in children(period)) if kid is not None]
    if not kids:
        return None
    acc = Accumulator.empty(alpha)
    for kid in kids:
        acc.add(kid)
    if period.tier == "daily":  # as merge_summaries: a day counts once
        acc.days = int(acc.days > 0 or acc.records > 0)
    return acc
