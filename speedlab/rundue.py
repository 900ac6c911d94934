"""What ``scheduler run-due`` finds due, and rolling it up: the store's inventory (which
summaries exist, how many raw objects each recent hour holds, the provenance summaries
recorded, the stale marks) handed to :func:`speedlab.scheduler.plan_due`, then the roller.

:func:`speedlab.rollup.run_due` is the public function; :func:`roll_due` is its body.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from .errors import StoreUnavailable
from .joblog import JobLog
from .layout import summary_key
from .periods import TIERS, Period, parse_period
from .reader import count_raw_hours, list_global_summaries, read_summary_objects
from .roller import Roller, mergeable
from .scheduler import InputState, Recorded, TierState, plan_due
from .stale import clear_markers, stale_hours
from .storebase import Store

__all__ = ["recorded", "roll_due"]


def recorded(store: Store, buckets, tier: str, periods: Sequence[Period], alpha: float,
              unusable: list[tuple[str, str]]) -> dict[str, Recorded]:
    """The provenance recorded in these periods' all-hosts summaries; an unusable summary
    records nothing (so it is stale and rolled up again) and is added to ``unusable``."""
    keys = {summary_key(p, None): p.label for p in periods}
    read = read_summary_objects(store, buckets.for_tier(tier), list(keys), mergeable(alpha))
    out = {}
    for key, label in keys.items():
        failed = read.failed.get(key)
        if isinstance(failed, StoreUnavailable):
            raise failed
        if key in read.rejected:
            unusable.append((key, read.rejected[key]))
        data = read.found.get(key)
        try:
            newest = (data or {}).get("source_max_modified")
            newest = datetime.fromisoformat(newest) if isinstance(newest, str) else None
            out[label] = Recorded((data or {}).get("source_objects"),  # naive: unusable, so stale
                                  newest if newest is not None and newest.tzinfo else None)
        except ValueError:
            out[label] = Recorded(None, None)
    return out


#: Plans made and run by one ``run-due`` at most (see :func:`roll_due`)
MAX_PASSES = 3


def roll_due(roller: Roller, log: JobLog) -> None:
    """Find what is due at ``roller.now`` (missing, stale or marked; see
    :mod:`speedlab.scheduler`), roll it up finest first, and clear the stale marks acted on.
    ``roller.report.plan`` lists what was found due and why.

    A rollup that finds a child summary it cannot use rolls that child up again beside the
    plan (a day whose per-host summary was garbage, while its month is rolled up); the child's
    other parents (its week) were judged before it changed, so the store is planned again, up
    to :data:`MAX_PASSES` times, until nothing rolled up is outside the plans: a second
    ``run-due`` right after finds nothing to do."""
    planned: set[tuple[str, str]] = set()
    roller.report.plan = []
    for _ in range(MAX_PASSES):
        new = _one_pass(roller, log)
        planned |= new
        if not new or roller.done <= planned:  # (a month's rollup may make children not due yet)
            return
        log.info("summaries rolled up beside the plan (repairs): their parents are judged again",
                 repaired=len(roller.done - planned))


def _one_pass(roller: Roller, log: JobLog) -> set[tuple[str, str]]:
    """List the store, plan what is due and not rolled up by this run yet, run it; return the
    periods planned."""
    now_utc = roller.now
    store_ = roller.store
    zone, buckets, settings = roller.zone, roller.buckets, roller.settings
    hosts = roller.hosts()
    earliest = roller.earliest()
    states = {tier: TierState(summaries=list_global_summaries(store_, buckets.for_tier(tier), tier))
              for tier in TIERS}
    lookback = now_utc - timedelta(days=settings.late_data_days)
    states["hourly"].inputs = {label: InputState(count, newest) for label, (count, newest)
                               in count_raw_hours(store_, buckets, hosts, lookback, now_utc, zone).items()}
    markers, bad_markers = stale_hours(store_, buckets, zone)
    for key, why in bad_markers:
        if (key, why) in roller.report.rejected:
            continue  # told in an earlier pass
        log.warning(f"skipped bad object {key}: {why}", key=key, reason=why)
        roller.report.rejected.append((key, why))
    states["hourly"].marked = set(markers)
    grace = timedelta(minutes=settings.staleness_grace_minutes)
    now_local = now_utc.astimezone(zone)
    unusable: list[tuple[str, str]] = []
    plan, checks = plan_due(states, earliest, now_local, zone, grace)
    if checks:
        for tier, periods in checks.items():
            states[tier].recorded.update(recorded(store_, buckets, tier, periods,
                                                   settings.sketch_alpha, unusable))
        for key, why in unusable:
            log.warning(f"unusable summary {key}: {why}; rolling it up again", key=key,
                        reason=why)
        roller.report.replaced.extend(u for u in unusable if u not in roller.report.replaced)
        plan, checks = plan_due(states, earliest, now_local, zone, grace)
    plan = [item for item in plan if (item.period.tier, item.period.label) not in roller.done]
    roller.report.plan += [item.to_dict() for item in plan]
    log.info(f"{len(plan)} periods due", due=len(plan), checked=sum(map(len, checks.values())))
    roller.run(plan)
    cleared = [k for label, keys in markers.items() for k in keys
               if ("hourly", label) in roller.done
               or (earliest is not None and parse_period("hourly", label, zone).end <= earliest)]
    clear_markers(store_, buckets, cleared)
    roller.report.markers_cleared += len(cleared)
    return {(item.period.tier, item.period.label) for item in plan}
