"""``dedupe``: crowded raw slots (the seed's legacy file names) and stray summary objects."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from speedlab.dedupe import (
    Action,
    Candidate,
    DedupePlan,
    DuplicateGroup,
    apply_plan,
    dedupe,
    dedupe_table,
    find_duplicates,
    plan_slot,
    plan_summary_folder,
)
from speedlab.errors import InvalidHostId, LayoutError
from tests.helpers.data import IST, B, everything, legacy_key, put, put_summary, result


def _seed_store(store) -> dict:
    """A store with every kind of duplicate; returns the keys by role."""
    k = {}
    k["a_first"] = put(store, result("home-primary", "2025-12-29 14:02:00", download=1), legacy=True)
    k["a_later"] = put(store, result("home-primary", "2025-12-29 14:09:00", download=2), legacy=True)
    k["b_failed"] = put(store, result("home-primary", "2025-12-29 14:16:00", status="failed"), legacy=True)
    k["b_ok"] = put(store, result("home-primary", "2025-12-29 14:20:00"))
    k["c_ok"] = put(store, result("home-primary", "2025-12-29 14:31:00"))
    k["c_corrupt"] = legacy_key(result("home-primary", "2025-12-29 14:33:00"))
    store.put(B.raw, k["c_corrupt"], b'{"schema_version": 1, "host_id": "home-prim')
    k["d_alone"] = put(store, result("home-primary", "2025-12-29 14:46:00"))
    k["e_failed_first"] = put(store, result("home-primary", "2025-12-30 09:01:00", status="failed"), legacy=True)
    k["e_failed_later"] = put(store, result("home-primary", "2025-12-30 09:05:00", status="failed"), legacy=True)
    k["f_legacy_earlier"] = put(store, result("office-main", "2025-12-29 10:03:00"), legacy=True)
    k["f_speedlab_later"] = put(store, result("office-main", "2025-12-29 10:10:00"))
    k["h_sum"] = put_summary(store, "hourly", "2025122914")
    k["h_stray"] = put_summary(store, "hourly", "2025122914", name="speed_test_summary_copy.json")
    k["d_sum"] = put_summary(store, "daily", "20251229", host="home-primary")
    k["d_stray"] = put_summary(store, "daily", "20251229", host="home-primary", name="old.json")
    k["w_stray_only"] = put_summary(store, "weekly", "2025W52", name="speed_test_summary_2.json")
    store.put(B.daily, "aggregated/readme.txt", b"hello")
    return k


EXTRAS = ("a_later", "b_failed", "e_failed_later", "f_speedlab_later", "h_stray", "d_stray")


def _actions(plan: DedupePlan) -> dict[str, str]:
    return {a.key: a.action for g in plan.groups for a in g.actions}


def test_dry_run_lists_the_legacy_duplicates_and_changes_nothing(store, config_for):
    k = _seed_store(store)
    before = everything(store)
    report = dedupe(config_for(store))
    assert report.dry_run and report.deleted == []
    assert everything(store) == before
    plan = report.plan
    assert sorted(plan.deletions) == sorted(
        (B.for_tier({"h_stray": "hourly", "d_stray": "daily"}.get(name, "raw")), k[name]) for name in EXTRAS)
    assert _actions(plan) == {
        k["a_first"]: "keep", k["a_later"]: "delete", k["b_ok"]: "keep", k["b_failed"]: "delete",
        k["c_ok"]: "keep", k["c_corrupt"]: "skip", k["e_failed_first"]: "keep",
        k["e_failed_later"]: "delete", k["f_legacy_earlier"]: "keep", k["f_speedlab_later"]: "delete",
        k["h_sum"]: "keep", k["h_stray"]: "delete", k["d_sum"]: "keep", k["d_stray"]: "delete",
        k["w_stray_only"]: "skip"}
    assert k["a_later"].endswith("/hour=2025122914/minute=00/speed_data_ookla_00_1766997540.json")
    groups = {(g.tier, g.host_id, g.label): g for g in plan.groups}
    assert groups[("raw", "home-primary", "2025-12-29T14:15")].to_dict()["actions"][1]["reason"] == (
        "failed test (2025-12-29T08:46:00Z) in a slot that holds an ok result")
    assert groups[("raw", "home-primary", "2025-12-29T14:00")].start == datetime(2025, 12, 29, 14, 0, tzinfo=IST)
    assert groups[("hourly", None, "2025122914")].bucket == B.hourly
    assert plan.problems == [(B.daily, "aggregated/readme.txt", plan.problems[0][2])]
    assert plan.scanned == 11 + 2 + 2 + 1  # raw objects, hourly, daily, weekly summaries
    text = dedupe_table(report)
    assert ("dry run: 16 objects scanned, 8 groups with duplicates, 6 extras would be deleted; "
            "rerun with --delete") in text
    assert "speed_data_ookla_00_1766997540.json" in text


def test_delete_removes_exactly_the_extras_and_marks_stale(store, config_for):
    k = _seed_store(store)
    before = everything(store)
    config = config_for(store)
    report = dedupe(config, delete=True)
    after = everything(store)
    assert {key for _, key in before} - {key for _, key in after} == {k[name] for name in EXTRAS}
    assert all(after[item] == before[item] for item in before if item in after)   # kept: untouched
    assert report.ok and report.failures == [] and len(report.deleted) == 6
    assert sorted((m["host"] or "", m["time"]) for m in report.stale) == [
        ("", "2025-12-29T14:00:00+05:30"),
        ("home-primary", "2025-12-29T00:00:00+05:30"), ("home-primary", "2025-12-29T14:00:00+05:30"),
        ("home-primary", "2025-12-29T14:15:00+05:30"), ("home-primary", "2025-12-30T09:00:00+05:30"),
        ("office-main", "2025-12-29T10:00:00+05:30")]
    markers = sorted(info.key for info in store.list(B.hourly, "stale/"))
    assert markers == ["stale/hour=2025122900/home-primary.json", "stale/hour=2025122910/office-main.json",
                       "stale/hour=2025122914/all.json", "stale/hour=2025122914/home-primary.json",
                       "stale/hour=2025123009/home-primary.json"]
    assert {(b, key) for b, key in after} - set(before) == {(B.hourly, m) for m in markers}
    log = [json.loads(line) for line in (Path(config.state_path) / "logs" / "dedupe.jsonl").read_text().splitlines()]
    assert [line.get("event") for line in (log[0], log[-1])] == ["start", "end"]
    assert sorted(line["key"] for line in log if line["message"] == "deleted duplicate") == sorted(
        k[name] for name in EXTRAS)
    again = dedupe(config, delete=True)                           # idempotent: nothing left to do
    assert again.plan.deletions == [] and again.deleted == [] and again.stale == []


def test_a_failed_stale_mark_is_reported_not_hidden(local_store, config_for, monkeypatch):
    from speedlab import dedupe as dedupe_module
    from speedlab.errors import StoreUnavailable

    def refuse(*args, **kwargs):
        raise StoreUnavailable("hourly bucket unreachable")
    monkeypatch.setattr(dedupe_module, "mark_stale", refuse)
    put(local_store, result("home-primary", "2025-12-29 14:02:00"), legacy=True)
    put(local_store, result("home-primary", "2025-12-29 14:09:00"), legacy=True)
    config = config_for(local_store)
    report = dedupe(config, "raw", delete=True)
    assert len(report.deleted) == 1 and report.stale == [] and not report.ok
    assert report.stale_error == ("could not mark 2025-12-29T14:00 stale (hourly bucket unreachable): "
                                  "run speedlab aggregate for the changed periods by hand")
    log = (Path(config.state_path) / "logs" / "dedupe.jsonl").read_text()
    assert '"level": "error", "run_id"' in log and "could not mark" in log


def test_scope_and_host_filters(store, config_for):
    k = _seed_store(store)
    plan = find_duplicates(store, B, "raw", host="office-main", tz=IST)
    assert [(g.host_id, g.label, g.keep, g.deletions) for g in plan.groups] == [
        ("office-main", "2025-12-29T10:00", k["f_legacy_earlier"], [k["f_speedlab_later"]])]
    plan = find_duplicates(store, B, "daily", tz=IST)
    assert [(g.tier, g.deletions) for g in plan.groups] == [("daily", [k["d_stray"]])]
    assert find_duplicates(store, B, "daily", host="office-main", tz=IST).groups == []
    with pytest.raises(LayoutError, match="unknown period 'minute'"):
        find_duplicates(store, B, "minute")
    with pytest.raises(InvalidHostId):
        find_duplicates(store, B, "raw", host="host=x")


def _candidate(key, local, status="ok", **changes):
    record = replace(result("home-primary", local, status=status), **changes)
    return Candidate(key, status, record.timestamp_utc, None, record=record)


def test_keeper_rule_is_pure_and_deterministic():
    ok_late = _candidate("k/ok_late.json", "2025-12-29 14:10:00")
    ok_early = _candidate("k/ok_early.json", "2025-12-29 14:01:00")
    failed_earliest = _candidate("k/failed.json", "2025-12-29 14:00:05", status="failed")
    bad = Candidate("k/bad.json", "invalid", None, 0, "corrupt JSON")
    actions = plan_slot([ok_late, bad, failed_earliest, ok_early])
    assert [(a.key, a.action) for a in actions] == [
        ("k/ok_early.json", "keep"), ("k/ok_late.json", "delete"), ("k/failed.json", "delete"),
        ("k/bad.json", "skip")]
    assert actions[0].reason == "earliest complete ok result (2025-12-29T08:31:00Z)"
    same_time = [_candidate("b.json", "2025-12-29 14:01:00"), _candidate("a.json", "2025-12-29 14:01:00")]
    assert plan_slot(same_time)[0].key == "a.json"
    assert [a.action for a in plan_slot([bad, Candidate("x", "invalid", detail="?")])] == ["skip", "skip"]
    unreadable = plan_slot([ok_early, Candidate("u", "unreadable", detail="HTTP 500")])
    assert [a.action for a in unreadable] == ["skip", "skip"] and "rerun dedupe" in unreadable[0].reason
    folder = plan_summary_folder(["f/speed_test_summary.json", "f/x.json"], "monthly", "202512")
    assert [(a.key, a.action) for a in folder] == [("f/speed_test_summary.json", "keep"), ("f/x.json", "delete")]


def test_dedupe_keeps_the_complete_result_the_rollup_counts_not_an_earlier_partial_one(store, config_for):
    """tests/test_aggregate.py's slot: failed k1, partial k2, complete k3, later k4; the rollup counts k3."""
    from speedlab.aggregate import hourly_summaries
    from speedlab.periods import parse_period
    rows = {"k1": result("home-primary", "2025-12-29 14:02:00", status="failed"),
            "k2": replace(result("home-primary", "2025-12-29 14:05:00", download=150.0), upload_mbps=None),
            "k3": result("home-primary", "2025-12-29 14:09:00", download=120.0),
            "k4": result("home-primary", "2025-12-29 14:11:00", download=90.0)}
    keys = {name: put(store, record, legacy=True) for name, record in rows.items()}
    (group,) = find_duplicates(store, B, "raw", tz=IST).groups
    assert group.keep == keys["k3"] and sorted(group.deletions) == sorted(keys[k] for k in ("k1", "k2", "k4"))
    reasons = {a.key: a.reason for a in group.actions}
    assert reasons[keys["k3"]] == "earliest complete ok result (2025-12-29T08:39:00Z)"
    assert reasons[keys["k2"]] == "partial ok result (2025-12-29T08:35:00Z) in a slot that holds a complete one"
    counted = hourly_summaries(parse_period("hourly", "2025122914", IST), [(keys[k], r) for k, r in rows.items()],
                               plan_for=lambda host: type("P", (), {"download_mbps": None, "upload_mbps": None})())
    assert counted["home-primary"].avg_download == rows["k3"].download_mbps  # the one dedupe keeps
    only_partial = plan_slot([_candidate("p.json", "2025-12-29 14:05:00", ping_ms=None),
                              _candidate("f.json", "2025-12-29 14:01:00", status="failed")])
    assert [(a.key, a.action) for a in only_partial] == [("p.json", "keep"), ("f.json", "delete")]
    assert only_partial[0].reason.startswith("no complete ok result in the slot; earliest partial ok result")


def test_apply_never_deletes_when_the_kept_object_has_gone(local_store):
    keep = put(local_store, result("home-primary", "2025-12-29 14:02:00"), legacy=True)
    extra = put(local_store, result("home-primary", "2025-12-29 14:09:00"), legacy=True)
    plan = find_duplicates(local_store, B, "raw", tz=IST)
    assert plan.groups[0].keep == keep
    local_store.delete(B.raw, keep)                               # someone else cleaned up
    changed, deleted, failures = apply_plan(local_store, plan)
    assert changed == [] and deleted == []
    assert failures[0][1] == extra and "nothing deleted here" in failures[0][2]
    assert local_store.get(B.raw, extra)
    hand_made = DedupePlan([DuplicateGroup("raw", B.raw, "home-primary", "x", datetime(2025, 1, 1, tzinfo=IST),
                                           [Action(extra, "keep", ""), Action(extra, "delete", "")])])
    with pytest.raises(AssertionError, match="kept object"):
        apply_plan(local_store, hand_made)
    assert local_store.get(B.raw, extra)


def test_objects_under_a_host_folder_that_names_no_host_are_reported_as_problems(store, config_for):
    good = put(store, result("home-primary", "2025-12-29 14:01:00"))
    odd = {"host=../x/year=2025/month=202512/day=20251229/hour=2025122914/minute=00/test.json",
           "host=a b/year=2025/month=202512/day=20251229/hour=2025122914/minute=00/test.json"}
    for key in odd:
        store.put(B.raw, key, b"[1,2]")
    report = dedupe(config_for(store))
    problems = {key: reason for _, key, reason in report.plan.problems}
    assert set(problems) == odd  # each once, never read by a rollup, never deleted
    assert all("invalid host id" in reason for reason in problems.values())
    assert report.plan.deletions == [] and store.get(B.raw, good)
    assert dedupe(config_for(store), host="home-primary").plan.problems == []  # one host: its keys only
