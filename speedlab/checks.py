"""The health checks' pure rules: silence, a result below the plan, a tier's due period, debouncing.

:mod:`speedlab.health` reads the store and the run records, turns what it saw into
:class:`CheckOutcome` observations with these rules, debounces them into incidents
(:func:`debounce`) and alerts. Nothing here reads a store or a file or calls the clock:
``now`` is an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from .records import SpeedTestResult, below_plan
from .scheduler import last_due_period
from .settings import Debounce

__all__ = ["CheckOutcome", "THRESHOLD_FIGURES", "debounce", "host_is_silent", "result_below_expected",
           "result_figure", "result_over_maximum", "threshold_message", "tier_due_period"]

#: What each threshold check (:data:`speedlab.settings.THRESHOLD_KEYS`) judges: (label, unit).
THRESHOLD_FIGURES = {"loaded_latency_high": ("loaded latency", " ms"), "jitter_high": ("jitter", " ms"),
                     "packet_loss_high": ("packet loss", "%")}


class _PlanLike(Protocol):
    """A plan's speeds (:class:`speedlab.config.Plan`): ``None`` where the plan has no figure [Mbit/s]."""

    @property
    def download_mbps(self) -> float | None: ...

    @property
    def upload_mbps(self) -> float | None: ...


def host_is_silent(last_slot: datetime | None, now: datetime, silent_after_minutes: float) -> bool:
    """Whether a host whose newest result is in the slot starting ``last_slot`` is overdue."""
    return last_slot is None or now - last_slot > timedelta(minutes=silent_after_minutes)


def result_below_expected(result: SpeedTestResult, plan: _PlanLike, fraction: float) -> bool | None:
    """Whether one ``ok`` result is below ``plan`` x ``fraction`` (``None``: not judged).

    Not judged: a failed test (``tests_failing`` covers it) or a host without a plan.
    """
    if not result.ok:
        return None
    return below_plan(result.download_mbps, result.upload_mbps, plan.download_mbps, plan.upload_mbps, fraction)


def result_figure(result: SpeedTestResult, kind: str) -> float | None:
    """The figure of one result a threshold check judges (``None``: not measured).

    ``loaded_latency_high``: the larger of ``latency_download_ms`` and ``latency_upload_ms``
    (the one measured, if only one is) [ms]; ``jitter_high``: ``jitter_ms`` [ms];
    ``packet_loss_high``: ``packet_loss_pct`` [%].
    """
    if kind == "loaded_latency_high":
        loaded = [v for v in (result.latency_download_ms, result.latency_upload_ms) if v is not None]
        return max(loaded) if loaded else None
    return {"jitter_high": result.jitter_ms, "packet_loss_high": result.packet_loss_pct}[kind]


def result_over_maximum(result: SpeedTestResult, kind: str, maximum: float) -> bool | None:
    """Whether one ``ok`` result's :func:`result_figure` is above ``maximum`` (``None``: not judged).

    Not judged: a failed test (``tests_failing`` covers it) or a result without the figure (a
    schema-1 record, or an engine that does not measure it): neither good nor bad.
    """
    figure = result_figure(result, kind) if result.ok else None
    return None if figure is None else figure > maximum


def threshold_message(host: str, kind: str, maximum: float, recent: Sequence[tuple[float, bool]],
                      unjudged: int = 0) -> str:
    """One line about a threshold check of ``host``'s last results ``recent`` ((figure, bad), oldest first).

    ``office: loaded latency 412 ms > 250 ms in 3 of the last 4 tests`` (the figure is the
    newest one above the limit), ``... 180 ms <= 250 ms in all of the last 4 tests``, or
    "not measured" when no recent result carries the figure (``unjudged`` results had none).
    """
    label, unit = THRESHOLD_FIGURES[kind]
    limit = f"{maximum:g}{unit}"
    if not recent:
        return (f"{host}: {label} not measured in the last {unjudged} results (not judged: schema-1 results "
                "or an engine that does not measure it; see docs/collector.md, Latency)")
    above = [figure for figure, bad in recent if bad]
    if above:
        return (f"{host}: {label} {round(above[-1], 1):g}{unit} > {limit} in {len(above)} of the last "
                f"{len(recent)} tests")
    last = "the last test" if len(recent) == 1 else f"all of the last {len(recent)} tests"
    return f"{host}: {label} {round(recent[-1][0], 1):g}{unit} <= {limit} in {last}"


def tier_due_period(tier: str, now: datetime, tz: str, grace_minutes: float,
                    earliest: datetime | None):
    """The newest ``tier`` period whose summary must exist at ``now`` (``None``: none yet).

    That is the last period due ``grace_minutes`` ago by the schedule, unless it ended before
    the first raw result (``earliest``) of the deployment.
    """
    period = last_due_period(tier, now - timedelta(minutes=grace_minutes), tz)
    if earliest is None or period.end <= earliest:
        return None
    return period


def debounce(state: dict, observations: Sequence[bool], rule: Debounce) -> tuple[dict, list[str]]:
    """Feed observations (``True`` = bad) to one check's state; return it and the events.

    ``state`` holds ``history`` (the last ``window`` observations, oldest first) and ``open``.
    Events are ``"open"`` (the incident starts: alert) and ``"recover"`` (it cleared). Pure.
    """
    history = list(state.get("history", []))
    is_open = bool(state.get("open", False))
    events = []
    for bad in observations:
        history = (history + [bool(bad)])[-max(rule.window, rule.recover_after):]
        recent = history[-rule.window:]
        if not is_open and sum(recent) >= rule.alert_after:
            is_open = True
            events.append("open")
        elif is_open and len(history) >= rule.recover_after and not any(history[-rule.recover_after:]):
            is_open = False
            events.append("recover")
    return {**state, "history": history, "open": is_open}, events


@dataclass
class CheckOutcome:
    """What one check saw this run.

    Attributes
    ----------
    check : str
        ``KIND:SUBJECT``.
    kind, subject : str
    bad : bool or None
        The condition now (``None``: could not be judged, e.g. no plan).
    message : str
        One line about the current condition.
    observations : list of (str, bool)
        New observations ``(id, bad)``, oldest first (result ids are slot times in UTC).
    details : dict
    """

    check: str
    kind: str
    subject: str
    bad: bool | None
    message: str
    observations: list[tuple[str, bool]] = field(default_factory=list)
    details: dict = field(default_factory=dict)
