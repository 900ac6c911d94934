"""The schedule (pure), and run-due against real stores: catch-up after an outage, a second
run that does nothing, late data re-aggregating its hour, day, week, month and year."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from speedlab import layout
from speedlab.aggregate import merge_summaries
from speedlab.cli import main
from speedlab.config import Plan
from speedlab.os_entries import run_due_entries
from speedlab.periods import TIERS, parse_period
from speedlab.rollup import run_due
from speedlab.scheduler import (
    InputState,
    Recorded,
    TierState,
    due_at,
    due_periods,
    is_due,
    last_due_period,
    plan_due,
    staleness,
)
from speedlab.store import LocalStore
from speedlab.unchanged import same_as_held
from tests.helpers.data import IST, B, put, read_json, result

UTC = timezone.utc
GRACE = timedelta(minutes=15)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=IST)


# =========================================================================== the schedule

@pytest.mark.parametrize("tier, label, due", [
    ("hourly", "2025122914", "2025-12-29 15:10"),
    ("daily", "20251229", "2025-12-30 06:00"),
    ("weekly", "2026W01", "2026-01-06 02:00"),     # Mon 29 Dec - Sun 4 Jan -> Tuesday 02:00
    ("monthly", "202512", "2026-01-01 02:00"),
    ("yearly", "2025", "2026-01-01 02:00"),
])
def test_due_times_are_the_seeds_in_ist(tier, label, due):
    period = parse_period(tier, label, IST)
    assert due_at(period) == local(due)
    assert due_at(period).weekday() == 1 if tier == "weekly" else True
    assert not is_due(period, local(due) - timedelta(seconds=1))
    assert is_due(period, local(due))


def test_last_due_period_waits_for_the_due_time():
    assert last_due_period("hourly", local("2025-12-29 15:09"), IST).label == "2025122913"
    assert last_due_period("hourly", local("2025-12-29 15:10"), IST).label == "2025122914"
    assert last_due_period("daily", local("2025-12-30 05:59"), IST).label == "20251228"
    assert last_due_period("daily", local("2025-12-30 06:00"), IST).label == "20251229"
    assert last_due_period("weekly", local("2026-01-06 01:59"), IST).label == "2025W52"
    assert last_due_period("weekly", local("2026-01-06 02:00"), IST).label == "2026W01"
    assert last_due_period("monthly", local("2026-01-01 02:00"), IST).label == "202512"
    assert last_due_period("yearly", local("2026-01-01 01:59"), IST).label == "2024"
    # IST 02:00 on 1 January is 20:30 UTC on 31 December
    assert last_due_period("yearly", datetime(2025, 12, 31, 20, 30, tzinfo=UTC), IST).label == "2025"


def test_due_periods_run_from_the_earliest_data():
    got = due_periods("daily", local("2025-12-29 14:00"), local("2026-01-01 07:00"), IST)
    assert [p.label for p in got] == ["20251229", "20251230", "20251231"]
    assert due_periods("weekly", local("2025-12-29 14:00"), local("2026-01-01 07:00"), IST) == []


def test_staleness_rules():
    t = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    def inputs(newest, n=3):
        return InputState(n, newest)

    assert staleness(None, inputs(t), None, GRACE) == "missing"
    assert staleness(t, None, None, GRACE) == "fresh"
    assert staleness(t, inputs(t + timedelta(seconds=1)), None, GRACE) == "stale"
    assert staleness(t, inputs(t - timedelta(minutes=16)), None, GRACE) == "fresh"
    assert staleness(t, inputs(t - timedelta(minutes=1)), None, GRACE) == "check"
    ok = Recorded(3, t - timedelta(minutes=1))
    assert staleness(t, inputs(t - timedelta(minutes=1)), ok, GRACE) == "fresh"
    assert staleness(t, inputs(t - timedelta(minutes=1), 4), ok, GRACE) == "stale"   # one more object
    assert staleness(t, inputs(t - timedelta(seconds=30)), ok, GRACE) == "stale"     # a newer one
    assert staleness(t, inputs(t - timedelta(minutes=1)), Recorded(None, None), GRACE) == "stale"


def test_plan_cascades_from_a_stale_hour_and_asks_for_checks():
    now = local("2026-01-07 08:00")
    earliest = local("2025-12-29 00:00")
    written = datetime(2026, 1, 7, 1, 0, tzinfo=UTC)
    states = {tier: TierState() for tier in TIERS}
    for rank, tier in enumerate(TIERS):  # each tier written well after the one below
        for period in due_periods(tier, earliest, now, IST):
            states[tier].summaries[period.label] = written + rank * timedelta(minutes=20)
    late_hour = "2025123110"
    states["hourly"].inputs[late_hour] = InputState(2, written + timedelta(minutes=5))
    states["hourly"].inputs["2025123111"] = InputState(1, written - timedelta(minutes=3))
    plan, checks = plan_due(states, earliest, now, IST, GRACE)
    assert [(p.period.tier, p.period.label, p.reason) for p in plan] == [
        ("hourly", late_hour, "late data"), ("daily", "20251231", "children re-aggregated"),
        ("monthly", "202512", "children re-aggregated"), ("yearly", "2025", "children re-aggregated"),
        ("weekly", "2026W01", "children re-aggregated")]
    assert {tier: [p.label for p in ps] for tier, ps in checks.items()} == {"hourly": ["2025123111"]}
    states["hourly"].recorded["2025123111"] = Recorded(1, written - timedelta(minutes=3))
    plan2, checks2 = plan_due(states, earliest, now, IST, GRACE)
    assert checks2 == {} and [p.period.label for p in plan2] == [p.period.label for p in plan]
    states["hourly"].marked.add("2026010103")
    plan3, _ = plan_due(states, earliest, now, IST, GRACE)
    assert ("2026010103", "marked stale") in [(p.period.label, p.reason) for p in plan3]
    assert plan_due(states, None, now, IST, GRACE) == ([], {})


def test_scheduler_print_renders_run_due_every_five_minutes(local_store, config_for, capsys):
    out = run_due_entries(config_for(local_store))
    assert out["argv"][-6:-4] == ["scheduler", "run-due"] and out["every_minutes"] == 5
    assert out["entries"]["cron"].startswith("1,6,11,16,21,26,31,36,41,46,51,56 * * * * ")
    assert "OnCalendar=*-*-* *:01/5:00" in out["entries"]["systemd_timer"]
    assert "scheduler run-due" in out["entries"]["systemd_service"]
    assert main(["scheduler", "print", "--store", str(local_store.root), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["entries"]) == {"cron", "systemd_service", "systemd_timer", "windows_task_xml", "schtasks"}
    assert "scheduler run-due --store" in printed["entries"]["cron"]


# =========================================================================== run-due on real stores

HOSTS = ("home-primary", "office-main")
FIRST_DAY = local("2025-12-29 00:00")       # Monday of 2026W01


def seed(store, days: int):
    """One result per host every 2 hours for ``days`` days from 29 December."""
    count = 0
    for host in HOSTS:
        for h in range(0, days * 24, 2):
            moment = FIRST_DAY + timedelta(hours=h, minutes=5 if host == HOSTS[0] else 35)
            put(store, result(host, moment, 100.0 + h % 7, 50.0, 10.0))
            count += 1
    return count


def expected(now):
    """Every period from the first data to the last due at ``now``."""
    return {(tier, p.label) for tier in TIERS for p in due_periods(tier, FIRST_DAY, now, IST)}


def rolled(report):
    return [(item["tier"], item["period"]) for item in report.items]


@pytest.mark.slow
def test_outage_catch_up_once_then_nothing_then_late_data(store, config_for):
    # on moto (slow here) a shorter outage: back on 1 January, before the week is due
    full = isinstance(store, LocalStore)
    days, back = (9, local("2026-01-07 08:00")) if full else (3, local("2026-01-01 08:00"))
    total = seed(store, days)
    config = config_for(store)
    # the scheduler ran on the first evening, then was down
    evening = local("2025-12-29 20:00")
    first = run_due(config, evening)
    assert set(rolled(first)) == expected(evening) and len(first.items) == 19  # hours 00-18
    caught = run_due(config, back)
    missed = expected(back) - expected(evening)
    assert sorted(rolled(caught)) == sorted(missed)                  # every missed period...
    assert len(rolled(caught)) == len(set(rolled(caught)))           # ...exactly once
    coarse = {("monthly", "202512"), ("yearly", "2025")} | ({("weekly", "2026W01")} if full else set())
    assert coarse <= set(rolled(caught))
    assert (("weekly", "2026W01") in expected(back)) == full
    assert ("hourly", "2026010706" if full else "2026010106") in missed
    assert {item["reason"] for item in caught.items} == {"missing"}
    year = read_json(store, B.yearly, layout.summary_key(parse_period("yearly", "2025", IST)))
    assert year["records_aggregated"] == 2 * 3 * 12               # 29-31 December
    if full:
        week = read_json(store, B.weekly, layout.summary_key(parse_period("weekly", "2026W01", IST)))
        assert (week["records_aggregated"], week["days"]) == (2 * 7 * 12, 7)

    again = run_due(config, back)
    assert again.items == [] and again.plan == [] and "put" not in again.requests

    # a spooled collector delivers a result for 31 December 10:xx late
    put(store, result("office-main", "2025-12-31 10:50", 10.0, 5.0, 50.0))
    late = run_due(config, back)
    assert [(i["tier"], i["period"], i["reason"]) for i in late.items] == [
        ("hourly", "2025123110", "late data"), ("daily", "20251231", "children re-aggregated"),
        ("monthly", "202512", "children re-aggregated"), ("yearly", "2025", "children re-aggregated"),
        *([("weekly", "2026W01", "children re-aggregated")] if full else [])]
    year = read_json(store, B.yearly, layout.summary_key(parse_period("yearly", "2025", IST)))
    assert year["records_aggregated"] == 2 * 3 * 12 + 1 and year["min_download"] == 10.0
    if full:
        week = read_json(store, B.weekly, layout.summary_key(parse_period("weekly", "2026W01", IST)))
        assert week["records_aggregated"] == 2 * 7 * 12 + 1
    assert run_due(config, back).items == []
    # every raw result was counted exactly once across the two catch-up runs
    assert sum(i["records"] for r in (first, caught) for i in r.items if i["tier"] == "hourly") == total


def test_run_due_with_no_data_does_nothing(store, config_for):
    report = run_due(config_for(store), local("2026-01-07 08:00"))
    assert report.items == [] and report.plan == []


def test_cli_run_due_prints_a_line_or_json(local_store, config_for, capsys):
    put(local_store, result("home-primary", "2025-12-29 14:01", 100.0))
    root = str(local_store.root)
    assert main(["scheduler", "run-due", "--store", root, "--now", "2025-12-29T16:00:00+05:30"]) == 0
    assert capsys.readouterr().out.strip() == "run-due: 1 period(s) rolled up (hourly 1); 0 bad object(s) skipped"
    assert main(["scheduler", "run-due", "--store", root, "--now", "2025-12-29T16:00:00+05:30", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["message"], out["mode"], out["result"]["periods"], out["result"]["plan"]) == ("ok", "run-due", 0, [])
    with pytest.raises(SystemExit) as usage:
        main(["scheduler", "run-due", "--store", root, "--now", "yesterday"])
    assert usage.value.code == 2 and "not an ISO 8601 time" in capsys.readouterr().err


def test_a_summary_rolled_up_again_with_the_same_figures_is_not_rewritten(local_store, config_for):
    """run-due repairs a garbage per-host day beside its month (late data elsewhere in December
    made the month due again): that day's all-hosts summary, rolled up again with the same
    figures, keeps its object (and modified time), so nothing above it looks stale."""
    store = local_store
    seed(store, 3)
    config = config_for(store)
    back = local("2026-01-01 08:00")
    run_due(config, back)
    day = parse_period("daily", "20251229", IST)
    garbage = layout.summary_key(day, HOSTS[0])
    good = store.get(B.daily, garbage)
    store.put(B.daily, garbage, b"{}")
    everyone = layout.summary_key(day, None)
    before = store.get_versioned(B.daily, everyone)
    put(store, result("office-main", "2025-12-31 10:50", 10.0, 5.0, 50.0))
    late = run_due(config, back)
    assert ("monthly", "202512") in rolled(late) and ("daily", "20251229") in rolled(late)
    assert [key for key, _ in late.replaced] == [garbage]
    assert json.loads(store.get(B.daily, garbage)) | {"generated_at": None} == \
        json.loads(good) | {"generated_at": None}                   # the per-host day repaired
    assert store.get_versioned(B.daily, everyone) == before         # the all-hosts day left alone
    assert run_due(config, back).items == []


def test_a_summary_is_the_held_one_only_with_every_figure_type_and_provenance_equal():
    day = parse_period("daily", "20251229", IST)
    summary = merge_summaries(day, None, [], plan_for=lambda host: Plan(200.0, 50.0)).with_fields(
        generated_at="2026-01-01T02:00:00+00:00", source_objects=24)
    held = json.loads(summary.to_json()) | {"generated_at": "2025-12-30T00:30:00+00:00"}
    same = same_as_held(summary, held)
    assert same is not None and same.to_dict() == held                  # only generated_at differs
    assert same_as_held(summary, held | {"source_objects": 23}) is None  # provenance differs
    assert same_as_held(summary, held | {"expected_slots": float(held["expected_slots"])}) is None  # 96 vs 96.0
    assert same_as_held(summary, {k: v for k, v in held.items() if k != "generated_at"}) is None
    assert same_as_held(summary, None) is None
