"""Rolling up against real stores (local folder and S3 on a moto server): keys, provenance,
bad objects, a store that is down, anomaly baselines across runs, request counts, the CLI."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest

from speedlab import layout
from speedlab.adapter import envelope
from speedlab.cli import main
from speedlab.errors import SpeedlabError, StoreUnavailable
from speedlab.periods import parse_period
from speedlab.rollup import aggregate, backfill, rollup, run_due
from speedlab.stale import mark_stale
from speedlab.store import LocalStore
from speedlab.store_s3 import S3Store
from tests.helpers.data import IST, B, put, read_json, result, series
from tests.helpers.stores import TableWritesFail

HOUR = "2025122914"
NOW = datetime(2026, 1, 20, tzinfo=IST)


def hour_data(store):
    keys = [put(store, result("home-primary", "2025-12-29 14:01", 100.0, 50.0, 10.0)),
            put(store, result("home-primary", "2025-12-29 14:16", 110.0, 55.0, 12.0)),
            put(store, result("office-main", "2025-12-29 14:31", 300.0, 200.0, 5.0))]
    bad = "host=office-main/year=2025/month=202512/day=20251229/hour=2025122914/minute=45/test.json"
    store.put(B.raw, bad, b"\xff\xfe not json")
    return keys, bad


def test_one_hour_all_hosts_and_each_host_at_the_seed_keys(store, config_for):
    _keys, bad = hour_data(store)
    config = config_for(store)
    report = rollup(config, "hourly", parse_period("hourly", HOUR, IST), now=NOW)
    base = "aggregated/year=2025/month=202512/day=20251229/hour=2025122914/speed_test_summary.json"
    everyone = read_json(store, B.hourly, base)
    home = read_json(store, B.hourly, "aggregated/host=home-primary/year=2025/month=202512/day=20251229/"
                                      "hour=2025122914/speed_test_summary.json")
    office = read_json(store, B.hourly, "aggregated/host=office-main/year=2025/month=202512/day=20251229/"
                                        "hour=2025122914/speed_test_summary.json")
    assert (everyone["records_aggregated"], everyone["avg_download"], everyone["rejected_records"],
            everyone["source_objects"], everyone["hosts"]) == (3, 170.0, 1, 4, ["home-primary", "office-main"])
    assert (home["host_id"], home["records_aggregated"], home["avg_download"], home["source_objects"]) == (
        "home-primary", 2, 105.0, 2)
    assert (office["records_aggregated"], office["rejected_records"], office["source_objects"]) == (1, 1, 2)
    assert everyone["source_max_modified"] is not None and everyone["generated_at"].endswith("+00:00")
    assert report.rejected[0][0] == bad and "not UTF-8" in report.rejected[0][1]
    assert report.summaries[("hourly", HOUR)][None].to_dict()["avg_download"] == 170.0
    assert report.requests["get"] == 4 and report.requests["put"] == 3


def test_a_day_rolls_up_its_missing_hours_first(store, config_for):
    hour_data(store)
    put(store, result("home-primary", "2025-12-29 23:59", 90.0))
    report = rollup(config_for(store), "daily", parse_period("daily", "2025-12-29", IST), now=NOW)
    rolled = [(i["tier"], i["period"], i["reason"]) for i in report.items]
    # hours before the earliest raw result (14:00) need no summary; 14:00-23:00 are rolled up
    assert len(rolled) == 11 and rolled[-1] == ("daily", "20251229", "requested")
    assert rolled[0] == ("hourly", "2025122914", "needed by daily 20251229")
    day = read_json(store, B.daily, "aggregated/year=2025/month=202512/day=20251229/speed_test_summary.json")
    assert (day["records_aggregated"], day["avg_download"], day["source_objects"], day["days"]) == (4, 150.0, 10, 1)


def test_aggregate_answers_in_the_seeds_shape(store, config_for):
    hour_data(store)
    config = config_for(store)
    out = envelope(aggregate(config, "hourly", HOUR, now=NOW), "hourly")
    assert list(out)[:2] == ["message", "mode"] and (out["message"], out["mode"]) == ("ok", "hourly")
    assert out["result"]["hour"] == "2025-12-29T14" and out["result"]["host_id"] is None
    mine = aggregate(config, "hourly", "2025-12-29T14", host="office-main", now=NOW).to_dict()
    assert mine["host_id"] == "office-main" and mine["avg_download"] == 300.0
    with pytest.raises(SpeedlabError, match=r"stored nothing in hourly period 2025122914.*home-primary, office-main"):
        aggregate(config, "hourly", HOUR, host="backup-location", now=NOW)
    # default period: the previous complete hour (here: the hour before 15:20)
    assert aggregate(config, "hourly", now=datetime(2025, 12, 29, 15, 20, tzinfo=IST)).to_dict()["period"] == HOUR


def test_a_corrupt_child_summary_is_rolled_up_again(local_store, config_for):
    hour_data(local_store)
    config = config_for(local_store)
    rollup(config, "daily", parse_period("daily", "2025-12-29", IST), now=NOW)
    hour_key = layout.summary_key(parse_period("hourly", HOUR, IST))
    local_store.put(B.hourly, hour_key, b"{truncated")
    report = rollup(config, "daily", parse_period("daily", "2025-12-29", IST), now=NOW)
    assert [(i["tier"], i["period"]) for i in report.items] == [("hourly", HOUR), ("daily", "20251229")]
    assert read_json(local_store, B.hourly, hour_key)["records_aggregated"] == 3
    assert read_json(local_store, B.daily, layout.summary_key(parse_period("daily", "20251229", IST)))[
        "records_aggregated"] == 3
    log = (config.state_path / "logs" / "aggregator.jsonl").read_text()
    assert f"unusable summary {hour_key}" in log


def test_a_store_that_is_down_fails_the_run_clearly(tmp_path, config_for):
    missing = LocalStore(tmp_path / "no-such-folder")
    config = config_for(missing)
    with pytest.raises(StoreUnavailable, match="does not exist"):
        rollup(config, "hourly", parse_period("hourly", HOUR, IST), now=NOW)
    lines = [json.loads(x) for x in (config.state_path / "logs" / "aggregator.jsonl").read_text().splitlines()]
    assert lines[-1]["event"] == "end" and lines[-1]["level"] == "error"
    from tests.helpers.servers import free_port
    dead = S3Store(endpoint_url=f"http://127.0.0.1:{free_port()}", region="us-east-1",
                   access_key_id="testing", secret_access_key="testing", max_attempts=1,
                   connect_timeout_s=1)
    with pytest.raises(StoreUnavailable, match="cannot reach"):
        run_due(config, NOW, store=dead)


def test_anomalies_use_the_hosts_trailing_day_even_across_runs(store, config_for):
    start = datetime(2025, 12, 28, 18, 0, tzinfo=IST)
    for record in series("home-primary", start, 24, download=lambda i: 100.0 + i % 3):
        put(store, record)
    put(store, result("home-primary", "2025-12-29 00:01", 95.0))     # within the usual range
    put(store, result("home-primary", "2025-12-29 01:01", 40.0))     # far below ~101: anomaly
    put(store, result("home-primary", "2026-01-02 10:01", 40.0))     # no recent history
    config = config_for(store, sections={"aggregate": {"anomaly_window_hours": 24}})
    rollup(config, "daily", parse_period("daily", "2025-12-28", IST), now=NOW)
    # later runs read the stored hours of 28 December as their baseline
    for label, expected in (("2025122900", 0), ("2025122901", 1), ("2026010210", 0)):
        report = rollup(config, "hourly", parse_period("hourly", label, IST), now=NOW)
        assert report.summaries[("hourly", label)]["home-primary"].anomalies_count == expected, label
    assert report.requests.get("get", 0) == 1  # the lonely hour's result; no baseline to read


@pytest.mark.slow
def test_backfill_reads_every_raw_object_once_and_counts_requests(store, config_for):
    records = series("home-primary", datetime(2025, 12, 30, tzinfo=IST), 30, every=timedelta(minutes=45)) + \
        series("office-main", datetime(2025, 12, 30, 6, tzinfo=IST), 12) + \
        series("office-main", datetime(2026, 1, 3, 6, tzinfo=IST), 4)
    for record in records:
        put(store, record)
    report = backfill(config_for(store), "2026W01", "2026W01", progress=False, now=NOW)
    assert report.results_read == len(records)
    assert report.requests["get"] == len(records)           # raw only: children come from memory
    # the week (29 Dec - 4 Jan) and everything in it from the first result (30 Dec 00:00) on;
    # December and 2025 reach outside it
    assert report.to_dict()["by_tier"] == {"hourly": 6 * 24, "daily": 6, "weekly": 1}
    day = read_json(store, B.daily, "aggregated/year=2025/month=202512/day=20251230/speed_test_summary.json")
    assert (day["records_aggregated"], day["slots_with_result"], day["expected_slots"]) == (42, 42, 192)
    week = read_json(store, B.weekly, "aggregated/year=2026/week=2026W01/speed_test_summary.json")
    assert (week["records_aggregated"], week["days"], week["source_objects"]) == (46, 2, 6)


def test_mark_stale_marker_is_acted_on_and_cleared(store, config_for):
    hour_data(store)
    config = config_for(store)
    now = datetime(2025, 12, 29, 16, 0, tzinfo=IST)
    first = run_due(config, now)
    assert ("hourly", HOUR) in {(i["tier"], i["period"]) for i in first.items}
    key = mark_stale(config, "home-primary", datetime(2025, 12, 29, 14, 15, tzinfo=IST))
    assert key == "stale/hour=2025122914/home-primary.json"
    assert [i.key for i in store.list(B.hourly, "stale/")] == [key]
    second = run_due(config, now)
    assert [(i["tier"], i["period"], i["reason"]) for i in second.items] == [("hourly", HOUR, "marked stale")]
    assert second.markers_cleared == 1 and list(store.list(B.hourly, "stale/")) == []
    assert run_due(config, now).periods == 0


def test_cli_aggregate_and_backfill_print_json(local_store, config_for, capsys):
    hour_data(local_store)
    root = str(local_store.root)
    assert main(["aggregate", "--store", root, "--mode", "hourly", "--period", HOUR, "--now",
                 "2026-01-20T00:00:00+05:30"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["message"], out["mode"], out["result"]["records_aggregated"]) == ("ok", "hourly", 3)
    assert main(["aggregate", "--store", root, "--backfill", "2025-12-29", "2025-12-29", "--no-progress",
                 "--now", "2026-01-20T00:00:00+05:30"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "backfill" and out["result"]["by_tier"] == {"hourly": 10, "daily": 1}  # from 14:00
    assert main(["aggregate", "--store", root]) == 1
    assert "--mode hourly|daily" in capsys.readouterr().err
    assert main(["aggregate", "--store", root, "--mode", "weekly", "--period", "2025W54"]) == 1
    assert "not a real date" in capsys.readouterr().err


def test_rolling_up_a_mistyped_local_store_refuses_and_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "speedlab-dat"  # a typo for an existing store
    for argv in (["aggregate", "--mode", "daily", "--period", "2026-01-06"],
                 ["aggregate", "--backfill", "2026-01-05", "2026-01-06", "--no-progress"]):
        assert main(["--store", str(missing), *argv]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"speedlab aggregate: error: local store folder {missing} does not exist or is "
                       "not a folder: create it, or point --store / SPEEDLAB_STORE elsewhere"]
        assert not missing.exists()


def test_rolling_up_a_store_without_the_raw_bucket_refuses_and_writes_nothing(local_store, config_for):
    config = config_for(local_store, state_dir=None)  # job logs beside the store, as by default
    with pytest.raises(SpeedlabError, match="main bucket 'vd-speed-test' does not exist"):
        rollup(config, "daily", parse_period("daily", "20260106", IST))
    with pytest.raises(SpeedlabError, match="main bucket 'vd-speed-test' does not exist") as info:
        backfill(config, "2026-01-05", "2026-01-06", progress=False)
    assert [p.name for p in local_store.root.iterdir()] == ["_speedlab"]  # the job log, no buckets
    lines = [json.loads(x) for x in (config.state_path / "logs" / "aggregator.jsonl").read_text().splitlines()]
    assert [(x["event"], x["level"], x["message"]) for x in lines] == [
        ("end", "error", f"rollup refused: {info.value}")] * 2


# --------------------------------------------------------------------------- unusable input summaries

BAD_SUMMARIES = {
    "a json list": b"[1,2]", "a json string": b'"hello"', "a json number": b"42", "json null": b"null",
    "a text average": b'{"avg_download":"fast","avg_upload":1,"avg_ping":1,"records_aggregated":3}',
    "a negative count": b'{"avg_download":1,"avg_upload":1,"avg_ping":1,"records_aggregated":-5}',
    "a bad host list": b'{"avg_download":1,"avg_upload":1,"avg_ping":1,"records_aggregated":1,"hosts":[1]}',
    "bad counts by host": b'{"avg_download":1,"avg_upload":1,"avg_ping":1,"records_aggregated":1,'
                          b'"records_by_host":{"home-primary":"x"}}',
    "not a number": b'{"avg_download":NaN,"avg_upload":1,"avg_ping":1,"records_aggregated":1}',
}


def _two_days(store, config_for):
    put(store, result("home-primary", "2025-12-29 14:01", 100.0))
    put(store, result("office-main", "2025-12-30 09:01", 200.0))
    config = config_for(store)
    rollup(config, "weekly", parse_period("weekly", "2026W01", IST), now=NOW)
    return config


@pytest.mark.parametrize("shape", sorted(BAD_SUMMARIES))
@pytest.mark.slow
def test_weekly_rollup_survives_a_daily_summary_that_is_not_a_valid_object(local_store, config_for, shape):
    config = _two_days(local_store, config_for)
    day_key = layout.summary_key(parse_period("daily", "20251229", IST))
    local_store.put(B.daily, day_key, BAD_SUMMARIES[shape])
    report = rollup(config, "weekly", parse_period("weekly", "2026W01", IST), now=NOW)
    assert [k for k, _ in report.replaced] == [day_key]
    assert [(i["tier"], i["period"]) for i in report.items] == [("daily", "20251229"), ("weekly", "2026W01")]
    assert report.summaries[("weekly", "2026W01")][None].records_aggregated == 2
    assert read_json(local_store, B.daily, day_key)["records_aggregated"] == 1  # replaced
    log = (config.state_path / "logs" / "aggregator.jsonl").read_text()
    assert f"unusable summary {day_key}" in log


@pytest.mark.parametrize("body", [b"[1]", b"null", b'{"avg_download":1,"avg_upload":1,"avg_ping":1,'
                                               b'"records_aggregated":1,"failed_tests":-1}'])
def test_daily_rollup_survives_an_hourly_host_summary_that_is_not_a_valid_object(store, config_for, body):
    config = _two_days(store, config_for)
    hour_key = layout.summary_key(parse_period("hourly", HOUR, IST), "home-primary")
    store.put(B.hourly, hour_key, body)
    report = rollup(config, "daily", parse_period("daily", "20251229", IST), now=NOW)
    assert [k for k, _ in report.replaced] == [hour_key]
    assert report.summaries[("daily", "20251229")]["home-primary"].records_aggregated == 1
    assert read_json(store, B.hourly, hour_key)["host_id"] == "home-primary"


@pytest.mark.slow
def test_run_due_survives_a_daily_summary_that_is_a_json_list_and_reports_it(local_store, config_for):
    config = _two_days(local_store, config_for)
    assert run_due(config, NOW).periods > 0
    day_key = layout.summary_key(parse_period("daily", "20251229", IST))
    local_store.put(B.daily, day_key, b"[1,2]")
    report = run_due(config, NOW)
    out = report.to_dict()
    assert out["replaced_summaries"] == [{"key": day_key, "reason": "summary must be a JSON object, "
                                          f"not list in {day_key}"}]
    assert ("weekly", "2026W01") in {(i["tier"], i["period"]) for i in report.items}
    assert read_json(local_store, B.daily, day_key)["records_aggregated"] == 1
    assert run_due(config, NOW).periods == 0


# --------------------------------------------------------------------------- periods from the future

def test_aggregate_refuses_a_period_that_has_not_started_and_writes_nothing(local_store, config_for, capsys):
    put(local_store, result("home-primary", "2025-12-29 14:01", 100.0))
    config = config_for(local_store)
    with pytest.raises(SpeedlabError, match=r"daily period 2099-01-01 has not started yet \(it starts "
                                            r"2099-01-01T00:00:00\+05:30; now is 2026-01-20T00:00:00\+05:30\)"):
        aggregate(config, "daily", "2099-01-01", now=NOW)
    with pytest.raises(SpeedlabError, match="hourly period 2026-01-20T01 has not started yet"):
        aggregate(config, "hourly", "2026012001", now=NOW + timedelta(minutes=59))
    assert list(local_store.list(B.daily, "aggregated/")) == []
    # a period in progress may be rolled up ("so far", as speedlab demo shows today)
    assert aggregate(config, "hourly", "2026012000", now=NOW + timedelta(minutes=1)).mode == "hourly"
    assert main(["aggregate", "--store", str(local_store.root), "--mode", "daily", "--period", "2099-01-01"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has not started yet" in err[0]


# --------------------------------------------------------------------------- backfill bounds

@pytest.mark.slow
def test_backfill_is_clamped_to_the_earliest_raw_result_and_now(local_store, config_for, capsys):
    put(local_store, result("home-primary", "2025-12-29 14:01", 100.0))
    local_store.put(B.raw, "host=home-primary/year=2024/notes.json", b"{}")        # no partitions below
    local_store.put(B.raw, "host=home-primary/year=junk/month=202401/x.json", b"{}")  # not a partition
    config = config_for(local_store)
    started = datetime.now()
    report = backfill(config, "1970-01-01", "2099-11-30", progress=False, now=NOW)
    assert datetime.now() - started < timedelta(seconds=60)  # unclamped: 1.1 million periods, GBs
    # 29 Dec 14:00 to 20 Jan 00:00: every hour, the 21 whole days, 3 weeks, December and 2025
    assert report.to_dict()["by_tier"] == {"hourly": 514, "daily": 22, "weekly": 3, "monthly": 1, "yearly": 1}
    assert report.clamped == {
        "from": "2025-12-29T14:00+05:30", "to": "2026-01-20T00:00+05:30",
        "message": "backfill clamped to the data: from 2025-12-29T14:00+05:30 (the earliest raw result's hour) "
                   "instead of 1970-01-01T00:00+05:30 and up to 2026-01-20T00:00+05:30 (now) instead of up to "
                   "2099-12-01T00:00+05:30"}
    assert [i.key for i in local_store.list(B.daily, "aggregated/year=2024/")] == []  # no empty years
    assert main(["aggregate", "--store", str(local_store.root), "--backfill", "2024-01-01", "2025-12-29",
                 "--no-progress", "--now", "2026-01-20T00:00:00+05:30"]) == 0
    out = json.loads(capsys.readouterr().out)["result"]
    assert out["by_tier"] == {"hourly": 10, "daily": 1} and "from 2025-12-29T14:00+05:30" in out["clamped"]["message"]
    assert [i.key for i in local_store.list(B.daily, "aggregated/year=2024/")] == []


def test_backfill_of_a_store_without_results_rolls_up_nothing_and_says_so(local_store, config_for):
    local_store.create_bucket(B.raw)
    report = backfill(config_for(local_store), "2025-01-01", "2025-12-31", progress=False, now=NOW)
    assert report.periods == 0 and "holds no raw results" in report.clamped["message"]


def test_aggregate_with_an_empty_period_is_an_error_not_the_previous_period(local_store, config_for):
    put(local_store, result("home-primary", "2025-12-29 14:01", 100.0))
    with pytest.raises(SpeedlabError, match="daily period '' is not understood"):
        aggregate(config_for(local_store), "daily", "", now=NOW)


def test_temp_files_left_by_a_killed_rollup_are_cleaned_by_the_next_one(local_store, config_for):
    import os
    import time
    hour_data(local_store)
    config = config_for(local_store)
    day = parse_period("daily", "2025-12-29", IST)
    rollup(config, "daily", day, now=NOW)
    killed = []  # what kill -9 between the temp file and its rename leaves, an hour ago
    for bucket, key in ((B.hourly, layout.summary_key(parse_period("hourly", HOUR, IST))),
                        (B.hourly, layout.summary_key(parse_period("hourly", HOUR, IST), "office-main")),
                        (B.daily, layout.summary_key(day))):
        path = local_store.root / bucket / key
        temp = path.parent / f"{LocalStore._TMP}{len(killed)}"
        temp.write_bytes(path.read_bytes()[:10])
        os.utime(temp, (time.time() - 3600, time.time() - 3600))
        killed.append(temp)
    local_store.put(B.hourly, layout.summary_key(parse_period("hourly", HOUR, IST)), b"[1]")  # redo the day
    rollup(config, "daily", day, now=NOW)
    assert [t for t in killed if t.exists()] == []
    assert not any(p.name.startswith(LocalStore._TMP) for p in local_store.root.rglob("*"))


def test_a_day_rolled_up_so_far_expects_only_the_slots_that_could_have_a_result(local_store, config_for):
    """Issue 12 (10): 216 of 288 at 18:00 was '75 %' for a gap-free day. A day so far is rolled up
    from the hours that are over (00:00-17:59 at 18:05: 72 slots, all filled: 100 %); the hour in
    progress expects the slots begun (18:00: 1 of 1)."""
    config = config_for(local_store)
    start = datetime(2026, 1, 6, tzinfo=IST)
    for record in series("home-primary", start, 73):                      # 00:00 .. 18:00, no gap
        put(local_store, record)
    now = start + timedelta(hours=18, minutes=5)
    day, hour = parse_period("daily", "2026-01-06", IST), parse_period("hourly", "2026010618", IST)
    rollup(config, "daily", day, now=now)
    rollup(config, "hourly", hour, now=now)
    so_far = read_json(local_store, B.daily, layout.summary_key(day, "home-primary"))
    assert (so_far["expected_slots"], so_far["slots_with_result"], so_far["coverage_pct"]) == (72, 72, 100.0)
    everyone = read_json(local_store, B.daily, layout.summary_key(day, None))
    assert (everyone["expected_slots"], everyone["coverage_pct"]) == (72, 100.0)
    this_hour = read_json(local_store, B.hourly, layout.summary_key(hour, "home-primary"))
    assert (this_hour["expected_slots"], this_hour["slots_with_result"]) == (1, 1)
    rollup(config, "daily", day, now=NOW)                                  # once the day is over
    over = read_json(local_store, B.daily, layout.summary_key(day, "home-primary"))
    assert (over["expected_slots"], over["slots_with_result"], over["coverage_pct"]) == (96, 73, 76.04)


@pytest.mark.slow
def test_run_due_skips_and_reports_a_stale_marker_that_names_no_hour(local_store, config_for):
    config = _two_days(local_store, config_for)
    run_due(config, NOW)
    bad = "stale/hour=2025123099/all.json"  # hour 99: every run-due stopped with a LayoutError
    local_store.put(B.hourly, bad, b"[1]")
    mark_stale(config, "home-primary", datetime(2025, 12, 29, 14, 5, tzinfo=IST), store=local_store)
    report = run_due(config, NOW)
    assert report.rejected == [(bad, report.rejected[0][1])]
    assert "stale marker names no hour" in report.rejected[0][1]
    assert ("hourly", HOUR) in {(i["tier"], i["period"]) for i in report.items}  # the good marker acted on
    assert [info.key for info in local_store.list(B.hourly, "stale/")] == [bad]  # kept for a person


# --------------------------------------------------------------------------- the tables kept current


def week_of_results(store, hosts=("home-primary", "office-main")):
    for n, host in enumerate(hosts):
        for record in series(host, datetime(2025, 12, 29, tzinfo=IST) + timedelta(minutes=5 * n), 64,
                             every=timedelta(minutes=45)):  # 29 and 30 December
            put(store, record)


def check_all(store):
    from speedlab.tables_io import check
    return check(store, B)


def test_after_run_due_every_table_checks_clean(store, config_for):
    week_of_results(store)
    report = run_due(config_for(store), datetime(2026, 1, 7, 3, 10, tzinfo=IST))
    tables = report.to_dict()["tables"]
    assert tables["ok"] and tables["errors"] == [] and tables["partitions_written"] >= 6, tables
    assert report.requests["put"] == sum(1 for i in report.items for _ in i["hosts"] + [None])  # tables count theirs
    audit = check_all(store)
    assert audit.ok, audit.to_text()
    tables = {i.key.split("/")[2] for i in store.list(layout.tables_bucket(B), "tables/")}
    assert tables == {"tier=hourly", "tier=daily", "tier=weekly", "tier=monthly", "tier=yearly", "year=2025"}
    assert "tables: " in report.to_text() and "partition(s) written" in report.to_text()


def test_a_table_write_failure_leaves_the_summaries_and_says_so_and_the_next_run_repairs(local_store, config_for):
    week_of_results(local_store)
    config = config_for(local_store)
    now = datetime(2025, 12, 31, 6, 10, tzinfo=IST)
    report = run_due(config, now, store=TableWritesFail(local_store))
    assert report.periods > 0 and report.tables_errors == ["connection reset while writing a table"]
    assert report.to_dict()["tables"]["ok"] is False
    assert "tables NOT updated (connection reset while writing a table)" in report.to_text()
    day = read_json(local_store, B.daily, "aggregated/year=2025/month=202512/day=20251229/speed_test_summary.json")
    assert day["records_aggregated"] == 2 * 32                       # the rollup itself is whole
    log = (config.state_path / "logs" / "scheduler.jsonl").read_text()
    assert "tables not updated: connection reset" in log and "tables NOT updated" in log
    assert [i.key for i in local_store.list(layout.tables_bucket(B), "tables/repair/")]  # marked for the next job
    assert not check_all(local_store).ok
    again = run_due(config, now)                                     # nothing is due: the tables are
    assert again.periods == 0 and again.tables_errors == [] and again.tables.partitions_written
    assert check_all(local_store).ok
    assert list(local_store.list(layout.tables_bucket(B), "tables/repair/")) == []


@pytest.mark.slow
def test_two_run_dues_at_once_leave_tables_that_check_clean(local_store, config_for):
    import threading
    week_of_results(local_store)
    config = config_for(local_store)
    now = datetime(2026, 1, 1, 1, 10, tzinfo=IST)
    barrier, errors, reports = threading.Barrier(2), [], []

    def job():
        try:
            barrier.wait()
            reports.append(run_due(config, now))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and all(r.tables_errors == [] for r in reports)
    audit = check_all(local_store)
    assert audit.ok, audit.to_text()


def test_late_data_and_a_stale_mark_then_run_due_tables_check_clean(store, config_for):
    week_of_results(store)
    config = config_for(store)
    run_due(config, datetime(2025, 12, 31, 0, 10, tzinfo=IST))
    late = put(store, result("office-main", "2025-12-29 14:47", 999.0))
    mark_stale(config, "office-main", datetime(2025, 12, 29, 14, 47, tzinfo=IST), store=store)
    assert not check_all(store).ok                                   # the raw month moved on
    report = run_due(config, datetime(2025, 12, 31, 0, 20, tzinfo=IST))
    assert ("hourly", "2025122914") in {(i["tier"], i["period"]) for i in report.items}
    audit = check_all(store)
    assert audit.ok, audit.to_text()
    from speedlab.tables_io import read_raw_table
    hour = parse_period("hourly", "2025122914", IST)
    assert late in [k for k, _ in read_raw_table(store, B, hour, hour).results]


def _summaries(store) -> dict[tuple[str, str], bytes]:
    """Every summary object, with ``generated_at`` (the clock) blanked, and above hourly the
    ``source_max_modified`` too (the children's write times: every backfill rewrites them)."""
    import re
    out = {}
    for tier in ("hourly", "daily", "weekly", "monthly", "yearly"):
        for info in store.list(B.for_tier(tier), "aggregated/"):
            body = re.sub(rb'"generated_at": ?"[^"]*"', b'"generated_at": ""', store.get(B.for_tier(tier), info.key))
            if tier != "hourly":
                body = re.sub(rb'"source_max_modified": ?"[^"]*"', b'"source_max_modified": ""', body)
            out[(tier, info.key)] = body
    return out


def test_backfill_from_compacted_months_gives_byte_identical_summaries(local_store, config_for):
    week_of_results(local_store)
    corrupt = "host=office-main/year=2025/month=202512/day=20251230/hour=2025123010/minute=30/test.json"
    local_store.put(B.raw, corrupt, b'{"host_id": "office-main", "download_mbps": ')
    put(local_store, result("home-primary", "2025-12-30 10:02", 5.0), legacy=True)  # a duplicate of a slot
    config = config_for(local_store)
    first = backfill(config, "2025-12-29", "2025-12-31", progress=False, now=NOW)  # from JSON; builds the tables
    assert first.tables_errors == [] and check_all(local_store).ok
    late = put(local_store, result("office-main", "2025-12-31 23:47", 321.0))      # after the month was compacted
    objects = len(list(local_store.list(B.raw, "host=")))
    from_tables = backfill(config, "2025-12-29", "2025-12-31", progress=False, now=NOW, recompute=True)
    tables_view = _summaries(local_store)
    for info in list(local_store.list(layout.tables_bucket(B), "tables/raw/")):
        local_store.delete(layout.tables_bucket(B), info.key)
    from_json = backfill(config, "2025-12-29", "2025-12-31", progress=False, now=NOW, recompute=True)
    assert _summaries(local_store) == tables_view                     # byte for byte
    assert from_tables.rejected == from_json.rejected and [k for k, _ in from_json.rejected] == [corrupt]
    assert from_tables.results_read == from_json.results_read
    assert from_tables.items == from_json.items
    # the raw table (1 GET), the hourly and daily summary tables (1 GET each: what each summary holds, so that
    # one that would not change is not written) and, from JSON, only the two objects without a current row:
    # the corrupt one and the late one
    assert from_tables.requests["get"] == 3 + 2 and from_json.requests["get"] == objects + 2
    assert from_tables.results_read == objects - 1 and late.endswith("test.json")  # all but the corrupt one


class _Recording(LocalStore):
    """A local store that logs each summary write, batch sync and table write, in order."""

    def __init__(self, root):
        super().__init__(root)
        self.events: list[tuple[str, str]] = []

    def put(self, bucket, key, data):
        self.events.append(("put", key))
        return super().put(bucket, key, data)

    def put_deferred(self, bucket, key, data):
        self.events.append(("deferred", key))
        return super().put_deferred(bucket, key, data)

    def sync_writes(self):
        self.events.append(("sync", ""))
        super().sync_writes()

    def put_if_version(self, bucket, key, data, version):
        self.events.append(("table", key))
        return super().put_if_version(bucket, key, data, version)


@pytest.mark.slow
def test_a_second_backfill_rewrites_only_summaries_that_change_and_makes_them_durable_before_done(
        local_store, config_for, tmp_path):
    week_of_results(local_store)
    config = config_for(local_store)
    backfill(config, "2025-12-30", "2025-12-30", progress=False, now=NOW)
    def stored(store):  # every summary object's bytes, as stored
        return {i.key: store.get(B.hourly, i.key) for i in store.list(B.hourly, "aggregated/")}
    def content(body):  # what a summary says, without when it was made, nor when its sources were
        return re.sub(rb'"(generated_at|source_max_modified)": ?"[^"]*"', b"", body)
    before = stored(local_store)
    put(local_store, result("office-main", "2025-12-30 10:47", 999.0))  # late: after the month was compacted
    recording = _Recording(local_store.root)
    report = backfill(config, "2025-12-30", "2025-12-30", progress=False, now=NOW, store=recording)
    after = stored(recording)
    # independently: the same raw objects in a fresh store, every summary computed and written
    fresh = LocalStore(tmp_path / "fresh")
    for info in local_store.list(B.raw, "host=office-main/year=2025/month=202512/day=20251230/"):
        fresh.put(B.raw, info.key, local_store.get(B.raw, info.key))
    for info in local_store.list(B.raw, "host=home-primary/year=2025/month=202512/day=20251230/"):
        fresh.put(B.raw, info.key, local_store.get(B.raw, info.key))
    backfill(config_for(fresh), "2025-12-30", "2025-12-30", progress=False, now=NOW)
    assert {k: content(v) for k, v in after.items()} == {k: content(v) for k, v in stored(fresh).items()}
    rewritten = {k for k in after if after[k] != before[k]}
    assert after.keys() == before.keys()
    assert rewritten == {k for k in after if re.sub(rb'"generated_at": ?"[^"]*"', b"", after[k])
                         != re.sub(rb'"generated_at": ?"[^"]*"', b"", before[k])}  # no rewrite of the same figures
    hour = parse_period("hourly", "2025123010", IST)
    assert {layout.summary_key(hour, h) for h in (None, "office-main")} <= rewritten
    assert len(rewritten) < len(after) // 2, sorted(rewritten)          # the rest stays as it was stored
    summary_writes = [key for kind, key in recording.events if kind in ("put", "deferred") and "aggregated/" in key]
    assert {kind for kind, key in recording.events if key in summary_writes} == {"deferred"}
    assert sorted(k for k in summary_writes if "/hour=" in k) == sorted(rewritten)
    last_write = max(i for i, (kind, _) in enumerate(recording.events) if kind == "deferred")
    first_table = min(i for i, (kind, _) in enumerate(recording.events) if kind == "table")
    assert ("sync", "") in recording.events[last_write:first_table]  # durable before its tables and "done"
    assert report.tables_errors == [] and check_all(local_store).ok



def test_a_backfill_collects_garbage_less_often_while_it_runs_and_restores_the_thresholds(tmp_path, config_for):
    import gc

    from speedlab.rollup import BACKFILL_GC_THRESHOLD
    seen, failing = [], []

    class Watching(LocalStore):
        def put_deferred(self, bucket, key, data):  # a backfill's summary writes
            seen.append(gc.get_threshold())
            return super().put_deferred(bucket, key, data)

        def list(self, bucket, prefix="", **kwargs):
            if failing:
                raise StoreUnavailable("the store stopped answering")
            return super().list(bucket, prefix, **kwargs)

    store = Watching(tmp_path / "watched")
    put(store, result("home-primary", "2025-12-29 14:01"))
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        backfill(config_for(store), "2025-12-29", "2025-12-29", progress=False, now=NOW, store=store)
        assert seen and set(seen) == {(BACKFILL_GC_THRESHOLD, 10, 10)}
        assert gc.get_threshold() == (700, 10, 10)
        failing.append(True)   # a run that fails restores them too
        with pytest.raises(StoreUnavailable):
            backfill(config_for(store), "2025-12-29", "2025-12-29", progress=False, now=NOW, store=store)
        assert gc.get_threshold() == (700, 10, 10)
        failing.clear()
        seen.clear()
        gc.set_threshold(0, 10, 10)  # automatic collection off: a backfill does not turn it on
        put(store, result("home-primary", "2025-12-29 15:01"))  # something to write
        backfill(config_for(store), "2025-12-29", "2025-12-29", progress=False, now=NOW, store=store)
        assert set(seen) == {(0, 10, 10)} and gc.get_threshold() == (0, 10, 10)
    finally:
        gc.set_threshold(*before)
