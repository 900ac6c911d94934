"""What is due: the original system's schedule, catch-up after an outage, and late data.

Pure functions: ``now`` is always an argument, and the store's contents arrive as plain data
(:class:`TierState`); :func:`speedlab.rollup.run_due` does the listing and the rolling up.

The schedule (wall-clock time in the configured zone, default IST)
------------------------------------------------------------------
==========  =============================================  ===============================
tier        due at                                         for
==========  =============================================  ===============================
hourly      :10 past each hour                             the previous hour
daily       06:00                                          the previous day
weekly      Tuesday 02:00                                  the previous ISO week (Mon-Sun)
monthly     the 1st, 02:00                                 the previous month
yearly      1 January, 02:00                               the previous year
==========  =============================================  ===============================

``run-due`` is meant to be called every few minutes (``speedlab scheduler print``); each call
works out from the store what is due, so a missed call (the machine was off, the scheduler
was down) is caught up by the next one and a repeated call does nothing.

What is due
-----------
For every tier, every period from the one holding the earliest raw result to the last one
whose due time has passed (:func:`due_periods`) is due when

* **missing**: it has no all-hosts summary;
* **stale**: an input is newer than the summary (:func:`staleness`). The inputs of an hour
  are its raw objects (within ``late_data_days`` back: late data from a spooled collector);
  those of a day, week, month or year are the all-hosts summaries of its children. An input
  written *after* the summary makes it stale; one written shortly *before* it (within
  ``grace``: it may have arrived while the rollup was running) is checked against the
  provenance the summary recorded (``source_objects``, ``source_max_modified``);
* **marked**: :func:`speedlab.stale.mark_stale` left a marker on the hour;
* **its children are due**: a re-aggregated hour makes its day due again, a day its week
  and month, a month its year (when those are themselves due by the schedule).

The plan is ordered by period end, finest tier first among periods that end together, so a
period is always rolled up after every finer period it is built from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .periods import CHILD_TIER, TIERS, Period, children, period_of, periods_between

__all__ = ["DUE_AFTER_END", "InputState", "Recorded", "TierState", "due_at", "due_periods",
           "is_due", "last_due_period", "plan_due", "staleness", "PlanItem", "RUN_DUE_EVERY_MINUTES",
           "RUN_DUE_JOB"]

#: How long after a period ends (local wall clock) its rollup is due.
DUE_AFTER_END = {
    "hourly": timedelta(minutes=10),           # :10 for the previous hour
    "daily": timedelta(hours=6),               # 06:00 for the previous day
    "weekly": timedelta(days=1, hours=2),      # Tuesday 02:00 for the ISO week that ended Monday 00:00
    "monthly": timedelta(hours=2),             # the 1st at 02:00
    "yearly": timedelta(hours=2),              # 1 January at 02:00
}
#: How often the rendered cron/systemd entries call ``scheduler run-due`` [min].
RUN_DUE_EVERY_MINUTES = 5
#: The scheduler entries' name (crontab tag, systemd unit, Windows task).
RUN_DUE_JOB = "speedlab-run-due"
_RANK = {tier: i for i, tier in enumerate(TIERS)}


def due_at(period: Period) -> datetime:
    """When ``period``'s rollup is due (aware, local; wall-clock arithmetic)."""
    return period.end + DUE_AFTER_END[period.tier]


def is_due(period: Period, now: datetime) -> bool:
    """Whether ``period``'s due time has passed at ``now``."""
    return now >= due_at(period)


def last_due_period(tier: str, now: datetime, tz: str | ZoneInfo) -> Period:
    """The latest ``tier`` period that is due at ``now``."""
    period = period_of(tier, now, tz).previous()
    while not is_due(period, now):
        period = period.previous()
    return period


def due_periods(tier: str, earliest: datetime, now: datetime, tz: str | ZoneInfo) -> list[Period]:
    """Every ``tier`` period from the one holding ``earliest`` to the last one due at ``now``."""
    last = last_due_period(tier, now, tz)
    if last.end <= earliest:
        return []
    return periods_between(tier, earliest, last.start, tz)


# --------------------------------------------------------------------------- store state

@dataclass(frozen=True)
class InputState:
    """The inputs of one period as listed: how many objects and the newest ``modified``."""

    count: int
    newest: datetime | None


@dataclass(frozen=True)
class Recorded:
    """What a summary recorded about its inputs when it was written."""

    source_objects: int | None
    source_max_modified: datetime | None


@dataclass
class TierState:
    """What the store holds for one tier.

    Attributes
    ----------
    summaries : dict label -> datetime
        The all-hosts summaries that exist, with their ``modified`` time.
    inputs : dict label -> InputState
        Hourly tier only: raw objects per hour, for the hours within the late-data window
        (hours outside it are absent and judged on presence alone).
    recorded : dict label -> Recorded
        Provenance read from summaries that needed a check (second pass).
    marked : set of labels
        Hours marked stale.
    """

    summaries: dict[str, datetime] = field(default_factory=dict)
    inputs: dict[str, InputState] = field(default_factory=dict)
    recorded: dict[str, Recorded] = field(default_factory=dict)
    marked: set[str] = field(default_factory=set)


def staleness(summary_modified: datetime | None, inputs: InputState | None,
              recorded: Recorded | None, grace: timedelta) -> str:
    """Judge one summary against its inputs.

    Returns
    -------
    str
        ``missing`` (no summary), ``stale`` (an input is newer, or differs from what the
        summary recorded), ``check`` (an input was written within ``grace`` before the
        summary: read its provenance and ask again with ``recorded``), or ``fresh``.
    """
    if summary_modified is None:
        return "missing"
    if inputs is None or inputs.newest is None:
        return "fresh"
    if inputs.newest > summary_modified:
        return "stale"
    if inputs.newest < summary_modified - grace:
        return "fresh"
    if recorded is None:
        return "check"
    if recorded.source_max_modified is None or inputs.newest > recorded.source_max_modified \
            or recorded.source_objects != inputs.count:
        return "stale"
    return "fresh"


def _child_inputs(parent: Period, child_summaries: Mapping[str, datetime]) -> InputState:
    times = [child_summaries[c.label] for c in children(parent) if c.label in child_summaries]
    return InputState(len(times), max(times) if times else None)


@dataclass(frozen=True)
class PlanItem:
    """One period to roll up and why (``missing``, ``late data``, ``marked stale``,
    ``children re-aggregated``)."""

    period: Period
    reason: str

    def to_dict(self) -> dict:
        """Plain data for ``--json``."""
        return {"tier": self.period.tier, "period": self.period.label, "reason": self.reason}


def plan_due(states: Mapping[str, TierState], earliest: datetime | None, now: datetime,
             tz: str | ZoneInfo, grace: timedelta) -> tuple[list[PlanItem], dict[str, list[Period]]]:
    """Work out what ``run-due`` must roll up.

    Parameters
    ----------
    states : mapping tier -> TierState
    earliest : datetime or None
        The earliest raw result's slot (``None``: no data, nothing is due).
    now : datetime
    grace : timedelta
        See :func:`staleness`.

    Returns
    -------
    (plan, checks)
        ``plan``: the periods to roll up, ordered by end then tier (finest first);
        ``checks``: per tier, the periods whose summary provenance must be read before the
        plan is final. Read them into ``TierState.recorded`` and call again; once ``checks``
        is empty the plan is final.
    """
    if earliest is None:
        return [], {}
    plan: list[PlanItem] = []
    checks: dict[str, list[Period]] = {}
    due_labels: dict[str, set[str]] = {}
    for tier in TIERS:
        state = states.get(tier, TierState())
        due_labels[tier] = set()
        child_tier = CHILD_TIER.get(tier)
        child_state = states.get(child_tier, TierState()) if child_tier else None
        for period in due_periods(tier, earliest, now, tz):
            label = period.label
            if child_state is None:  # hourly: its inputs are raw results
                inputs = state.inputs.get(label)
            else:
                inputs = _child_inputs(period, child_state.summaries)
            verdict = staleness(state.summaries.get(label), inputs, state.recorded.get(label), grace)
            reason = {"missing": "missing", "stale": "late data" if tier == "hourly" else "inputs changed"}.get(verdict)
            if reason is None and label in state.marked:
                reason = "marked stale"
            if reason is None and child_tier and any(
                    c.label in due_labels[child_tier] for c in children(period)):
                reason = "children re-aggregated"
            if reason is None and verdict == "check":
                checks.setdefault(tier, []).append(period)
                continue
            if reason:
                due_labels[tier].add(label)
                plan.append(PlanItem(period, reason))
    plan.sort(key=lambda item: (item.period.end_utc, _RANK[item.period.tier], item.period.start_utc))
    return plan, checks
