"""speedlab.query: the dashboard's rows, checked against plain-Python sums over the raw samples."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from speedlab import layout, rowbuild, tables_io
from speedlab.cache import DataCache, cache_for, cache_key, clear_caches
from speedlab.cli import main
from speedlab.config import Plan, load_config
from speedlab.counting import CountingStore
from speedlab.errors import QueryError
from speedlab.joblog import JobLog
from speedlab.query import get_rows, heatmap, rows
from speedlab.rowbuild import check_query, headline, slot_window, summary_periods
from speedlab.rowsource import ViewSource
from speedlab.store import LocalStore
from speedlab.store_s3 import S3Store
from speedlab.tables import TableSchema
from tests.helpers.data import IN_SLOT, result
from tests.helpers.stores import SpyStore
from tests.helpers.synthetic import HOSTS, B, build_store, ist, period

NOW = ist(2026, 1, 5, 10, 20)       # a Monday, 10:20 IST
FIRST = ist(2025, 12, 20)
SKIP = ("20251227",)                # no host has a result that day
SEED_KEYS = ["date_ist", "date_ist_str", "download_avg", "upload_avg", "ping_avg", "days",
             "connection_type", "below_expected"]
PLANS = dict(plan=Plan(200.0, 100.0), host_plans={"office-main": Plan(500.0, 500.0)})


@pytest.fixture(autouse=True)
def fresh_caches():
    clear_caches()
    yield
    clear_caches()


def _config(store, tmp, **extra):
    s3 = {}
    if isinstance(store, S3Store):
        s3 = {"endpoint_url": store.endpoint_url, "region": "us-east-1",
              "access_key_id": "testing", "secret_access_key": "testing"}
    url = "s3://" if s3 else store.url
    return load_config(env={}, store=url, s3=s3, state_dir=str(tmp / "state"), host_id="home-primary",
                       **extra)


@pytest.fixture(scope="module", params=["local", "local-tables", pytest.param("s3", marks=pytest.mark.slow)])
def built(request, tmp_path_factory):
    """One store per backend, written once: 3 hosts, 20 Dec 2025 to NOW; read-only tests only.
    ``local-tables`` also has the Parquet tables (rows() reads those); the others have none
    (rows() reads the original objects: the fallback)."""
    tmp = tmp_path_factory.mktemp(f"query-{request.param}")
    if request.param.startswith("local"):
        store = LocalStore(tmp / "store")
        store.root.mkdir()
    else:
        moto = request.getfixturevalue("moto_server")
        moto.reset()
        store = S3Store(endpoint_url=moto.endpoint_url, region="us-east-1",
                        access_key_id="testing", secret_access_key="testing")
        for bucket in set(B.as_dict().values()):
            store.create_bucket(bucket)
    data = build_store(store, FIRST, NOW, raw_days=1, hourly_days=2, skip_days=SKIP)
    if request.param == "local-tables":
        assert not tables_io.rebuild(store, B).rejected
    return store, _config(store, tmp, **PLANS), data


def _plain(data, start, end, host):
    """Averages and counts over the samples of ``host`` (or all) in [start, end): plain Python."""
    chosen = data.results_in(start, end, None if host == "all" else host)
    ok = [r for r in chosen if r.ok]
    out = {"tests": len(ok), "failed": len(chosen) - len(ok)}
    for name, attr in (("download", "download_mbps"), ("upload", "upload_mbps"), ("ping", "ping_ms")):
        values = [getattr(r, attr) for r in ok]
        out[f"{name}_avg"] = sum(values) / len(values) if values else None
        out[f"{name}_min"] = min(values) if values else None
        out[f"{name}_max"] = max(values) if values else None
    out["hosts_reporting"] = len({(r.host_id, r.slot_start) for r in chosen})
    return out


# ---------------------------------------------------------------------------- the seed's shape

@pytest.mark.slow
def test_weekly_rows_have_the_seed_dashboard_api_shape(built):
    store, config, _ = built
    got = rows("weekly", 2, store=store, config=config, now=NOW)
    assert [list(r)[:8] for r in got] == [SEED_KEYS, SEED_KEYS]
    done, current = got
    assert done["date_ist"] == "2025-12-29"
    assert done["date_ist_str"] == "2025-12-29 to 2026-01-04"
    assert isinstance(done["download_avg"], float) and isinstance(done["upload_avg"], float)
    assert isinstance(done["ping_avg"], float)
    assert done["days"] == 7
    assert done["connection_type"] == "Ethernet, Wi-Fi 2.4GHz, Wi-Fi 5GHz"
    assert done["below_expected"] is False
    assert (done["period"], done["status"], done["complete"]) == ("2026W01", "ok", True)
    # the current week has no summary yet: its figures so far (Monday until 10:20), marked partial
    assert (current["period"], current["status"], current["complete"]) == ("2026W02", "partial", False)
    assert current["source"] == "live" and current["days"] == 1
    assert all(isinstance(current[k], float) for k in SEED_KEYS[2:5])
    assert json.loads(json.dumps(got)) == got


# ---------------------------------------------------------------------------- every mode

WINDOWS = {
    ("minute", 1): [f"{(ist(2026, 1, 4, 10, 30) + timedelta(minutes=15 * i)):%Y%m%d%H%M}" for i in range(96)],
    ("hourly", 1): [f"{(ist(2026, 1, 4, 11) + timedelta(hours=i)):%Y%m%d%H}" for i in range(24)],
    ("daily", 14): [f"{(ist(2025, 12, 23) + timedelta(days=i)):%Y%m%d}" for i in range(14)],
    ("weekly", 3): ["2025W52", "2026W01", "2026W02"],
    ("monthly", 2): ["202512", "202601"],
    ("yearly", 3): ["2024", "2025", "2026"],
}


@pytest.mark.parametrize("host", ["all", "office-main", "backup-location"])
@pytest.mark.parametrize("mode,days", list(WINDOWS))
@pytest.mark.slow
def test_every_mode_matches_plain_sums_over_the_samples(built, mode, days, host):
    store, config, data = built
    got = rows(mode, days, host, store=store, config=config, now=NOW)
    assert [r["period"] for r in got] == WINDOWS[(mode, days)]
    n_hosts = len(HOSTS) if host == "all" else 1
    for row in got:
        start, end = datetime.fromisoformat(row["period_start"]), datetime.fromisoformat(row["period_end"])
        want = _plain(data, start, end, host)
        where = f"{mode} {row['period']} {host}"
        if not row["complete"]:  # the period in progress: its figures so far, live
            want = _plain(data, start, NOW, host)
            if mode == "minute" or not (want["tests"] or want["failed"]):
                assert row["status"] == "pending" and row["download_avg"] is None, where
                continue
            assert (row["status"], row["source"]) == ("partial", "live"), where
            present = len({r.host_id for r in data.results_in(start, NOW, None if host == "all" else host)})
            begun = period(mode, start).slots_begun(NOW)
            assert row["expected_slots"] == present * begun, where
            assert row["coverage_pct"] == pytest.approx(100.0 * want["hosts_reporting"] / (present * begun),
                                                        abs=0.005), where
        else:
            assert row["status"] == ("ok" if want["tests"] else "failed" if want["failed"] else "missing"), where
        assert (row["tests"], row["failed"]) == (want["tests"], want["failed"]), where
        for key in ("download_avg", "upload_avg", "ping_avg", "download_min", "download_max",
                    "upload_min", "upload_max", "ping_min", "ping_max"):
            if want[key] is None:      # pytest 9.2 refuses approx(None, rel=...): compare plainly
                assert row[key] is None, (where, key)
            else:
                assert row[key] == pytest.approx(want[key], rel=1e-12), (where, key)
        if row["complete"]:
            expected_slots = n_hosts * (1 if mode == "minute" else period(mode, start).expected_slots)
            assert row["coverage_pct"] == pytest.approx(100.0 * want["hosts_reporting"] / expected_slots), where
    statuses = Counter(r["status"] for r in got)
    if (mode, host) == ("daily", "all"):
        assert got[4]["period"] == "20251227" and got[4]["status"] == "missing"
        assert got[-1]["status"] == "partial" and got[-1]["complete"] is False   # today so far
    if (mode, host) == ("daily", "backup-location"):   # off on 25 Dec, and nobody had 27 Dec
        assert [r["period"] for r in got if r["status"] == "missing"] == ["20251225", "20251227"]
    if (mode, host) == ("minute", "office-main"):      # failed tests are visible as such
        assert (statuses["failed"], statuses["ok"], statuses["pending"]) == (1, 94, 1)
    if (mode, host) == ("minute", "backup-location"):  # off all of 5 Jan so far
        assert statuses["missing"] == 41 and got[-2]["status"] == "missing"
    if (mode, host) == ("yearly", "all"):
        assert [r["status"] for r in got] == ["missing", "ok", "partial"]


def test_below_expected_and_plan_speeds_come_with_the_rows(built):
    store, config, _ = built
    office = rows("daily", 2, "office-main", store=store, config=config, now=NOW)[0]
    home = rows("daily", 2, "home-primary", store=store, config=config, now=NOW)[0]
    every = rows("daily", 2, store=store, config=config, now=NOW)[0]
    assert (office["expected_download_mbps"], office["expected_upload_mbps"]) == (500.0, 500.0)
    assert office["below_expected"] is True        # ~360 Mbit/s against 0.8 x 500
    assert (home["expected_download_mbps"], home["below_expected"]) == (200.0, True)   # ~140 < 160
    assert (every["expected_download_mbps"], every["below_expected"]) == (200.0, False)  # ~185


@pytest.mark.parametrize("built", ["local"], indirect=True)   # rows() itself runs on S3 above
def test_cli_query_prints_the_same_rows(built, capsys, tmp_path, monkeypatch):
    store, _config, _ = built
    monkeypatch.chdir(tmp_path)
    assert main(["query", "--store", str(store.root), "--mode", "weekly", "--days", "3",
                 "--host", "office-main", "--now", NOW.isoformat()]) == 0
    printed = json.loads(capsys.readouterr().out)
    same = rows("weekly", 3, "office-main", store=store, config=load_config(env={}, store=str(store.root)),
                now=NOW, force_refresh=True)
    assert printed == same and len(printed) == 3
    assert main(["query", "--store", str(store.root), "--mode", "weekly", "--days", "0"]) == 1
    assert "days=0 is out of range for mode weekly: use 1 to 520 weeks" in capsys.readouterr().err


# ---------------------------------------------------------------------------- odd objects

def test_minute_rows_count_failed_unreadable_and_duplicate_objects(local_store, tmp_path):
    config = _config(local_store, tmp_path)
    slot = ist(2026, 1, 5, 10, 0)
    good = result("home-primary", slot + IN_SLOT, 100.0, 50.0)
    local_store.put(B.raw, layout.raw_key("home-primary", slot), good.to_json().encode())
    legacy = layout.raw_slot_prefix("home-primary", slot) + layout.legacy_raw_name("ookla", 0, 1767587000)
    local_store.put(B.raw, legacy, result("home-primary", slot + IN_SLOT, 900.0, 450.0).to_json().encode())
    failed = result("office-main", slot + IN_SLOT, status="failed")
    local_store.put(B.raw, layout.raw_key("office-main", slot), failed.to_json().encode())
    bad_slot = slot - timedelta(minutes=15)
    local_store.put(B.raw, layout.raw_key("office-main", bad_slot), b'{"schema_version": 1, "host')
    log = JobLog(tmp_path / "logs", "dashboard")
    got = rows("minute", 1, store=local_store, config=config, now=NOW, log=log)
    by_period = {r["period"]: r for r in got}
    at = by_period["202601051000"]
    # the legacy object sorts first, so it is kept; test.json is counted as a duplicate
    assert (at["status"], at["tests"], at["failed"], at["duplicates"]) == ("ok", 1, 1, 1)
    assert at["download_avg"] == 900.0 and at["hosts"] == ["home-primary", "office-main"]
    assert at["coverage_pct"] == 100.0
    before = by_period["202601050945"]
    assert (before["status"], before["rejected"], before["download_avg"]) == ("unreadable", 1, None)
    assert "corrupt JSON" in before["error"]
    assert by_period["202601050930"]["status"] == "missing"
    assert got[-1]["status"] == "pending" and got[-1]["period"] == "202601051015"
    assert any("rejected raw result" in line["message"] for line in log.lines)
    only_office = rows("minute", 1, "office-main", store=local_store, config=config, now=NOW)
    assert {r["period"]: r["status"] for r in only_office}["202601051000"] == "failed"


def test_minute_rows_keep_the_result_the_rollup_keeps(local_store, tmp_path):
    """Several objects in one slot: the earliest complete result counts, as in the hourly
    summary, whatever the keys' order (a legacy name sorts before test.json)."""
    config = _config(local_store, tmp_path)
    slot = ist(2026, 1, 5, 10, 0)
    def put(host, name, result, seconds):
        moment = slot + timedelta(seconds=seconds)
        result = replace(result, timestamp_local=moment.isoformat(),
                         timestamp_utc=moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        local_store.put(B.raw, layout.raw_slot_prefix(host, slot) + name, result.to_json().encode())
    legacy = layout.legacy_raw_name("ookla", 0, 1767587400)
    # home-primary: an ok test.json at +30 s and a failed catch-up run under the seed's name at +600 s
    put("home-primary", "test.json", result("home-primary", slot + IN_SLOT, 180.0, 90.0), 30)
    put("home-primary", legacy, result("home-primary", slot + IN_SLOT, status="failed"), 600)
    # office-main: two complete results; the earlier one (test.json) counts
    put("office-main", "test.json", result("office-main", slot + IN_SLOT, 400.0, 200.0), 45)
    put("office-main", legacy, result("office-main", slot + IN_SLOT, 20.0, 10.0), 600)
    at = {r["period"]: r for r in rows("minute", 1, store=local_store, config=config, now=NOW)}["202601051000"]
    assert (at["status"], at["tests"], at["failed"], at["duplicates"]) == ("ok", 2, 0, 2)
    assert (at["download_avg"], at["download_min"], at["download_max"]) == (290.0, 180.0, 400.0)
    only_home = rows("minute", 1, "home-primary", store=local_store, config=config, now=NOW, force_refresh=True)
    home = {r["period"]: r for r in only_home}["202601051000"]
    assert (home["status"], home["download_avg"], home["failed"]) == ("ok", 180.0, 0)


def test_original_summaries_with_only_the_seed_fields_are_read(local_store, tmp_path):
    config = _config(local_store, tmp_path, plan=Plan(200.0, 100.0))
    day = period("daily", ist(2026, 1, 4))
    seed = {"avg_download": 150.5, "avg_upload": 90.25, "avg_ping": 12.0, "min_download": 40.0,
            "max_download": 210.0, "records_aggregated": 90, "connection_types": ["Ethernet", "Wi-Fi 5GHz"],
            "anomalies_count": 2}
    local_store.put(B.daily, layout.summary_key(day), json.dumps(seed).encode())
    row = rows("daily", 2, store=local_store, config=config, now=NOW)[0]
    assert (row["download_avg"], row["upload_avg"], row["ping_avg"]) == (150.5, 90.25, 12.0)
    assert (row["download_min"], row["download_max"], row["upload_min"]) == (40.0, 210.0, None)
    assert (row["tests"], row["failed"], row["days"], row["anomalies"]) == (90, 0, 1, 2)
    assert row["connection_type"] == "Ethernet, Wi-Fi 5GHz"
    assert row["coverage_pct"] is None
    # no below_expected in the summary: judged against the configured plan (0.8 x 200 = 160)
    assert (row["expected_download_mbps"], row["below_expected"]) == (200.0, True)


def test_corrupt_and_invalid_summaries_are_unreadable_rows_and_logged(local_store, tmp_path):
    config = _config(local_store, tmp_path)
    days = [period("daily", ist(2026, 1, d)) for d in (3, 4)]
    local_store.put(B.daily, layout.summary_key(days[0]), b"{not json")
    local_store.put(B.daily, layout.summary_key(days[1]), json.dumps({"avg_download": "fast"}).encode())
    log = JobLog(tmp_path / "logs", "dashboard")
    got = rows("daily", 3, store=local_store, config=config, now=NOW, log=log)
    assert [r["status"] for r in got] == ["unreadable", "unreadable", "pending"]
    assert "corrupt JSON" in got[0]["error"] and "missing field" in got[1]["error"]
    assert got[0]["download_avg"] is None
    assert [line["level"] for line in log.lines] == ["warning", "warning"]


# ---------------------------------------------------------------------------- cache and pool

def test_cache_key_force_refresh_and_per_host_isolation(local_store, tmp_path):
    counting = CountingStore(local_store)
    config = _config(local_store, tmp_path)
    data = build_store(local_store, ist(2026, 1, 1), NOW, hosts=("home-primary", "office-main"),
                       raw_days=0, hourly_days=0, tiers=("daily",))
    first = get_rows("daily", 3, "office-main", store=counting, config=config, now=NOW)
    cold = counting.counts["get"]   # no tables here: the per-object reads, and today's live ones
    assert not first.from_cache and cold > 0
    again = get_rows("daily", 3, "office-main", store=counting, config=config, now=NOW)
    assert again.from_cache and again.rows == first.rows and counting.counts["get"] == cold
    assert counting.counts["list_prefixes"] == 0      # one host: no host listing
    assert get_rows("daily", 3, store=counting, config=config, now=NOW).from_cache is False
    cache = cache_for(counting, config, NOW)
    assert cache.keys() == ["daily_all_daily_3", "daily_office-main_daily_3", "hosts"]
    assert counting.counts["list_prefixes"] == 1      # today's raw results of every host: listed once
    all_hosts = counting.counts["get"] - cold
    # new data is not seen until the cache expires or a refresh bypasses it
    day = period("daily", ist(2026, 1, 4))
    changed = dict(data.summaries[("daily", "20260104", "office-main")], avg_download=1.5)
    local_store.put(B.daily, layout.summary_key(day, "office-main"), json.dumps(changed).encode())
    assert rows("daily", 3, "office-main", store=counting, config=config, now=NOW)[1]["download_avg"] != 1.5
    refreshed = get_rows("daily", 3, "office-main", store=counting, config=config, now=NOW, force_refresh=True)
    assert not refreshed.from_cache and refreshed.rows[1]["download_avg"] == 1.5
    assert counting.counts["get"] == cold + all_hosts + cold
    # the refreshed rows are cached; mutating what a caller got does not touch the cache
    refreshed.rows[1]["download_avg"] = -1
    assert rows("daily", 3, "office-main", store=counting, config=config, now=NOW)[1]["download_avg"] == 1.5
    assert cache.invalidate("office-main") == 1
    assert cache.keys() == ["daily_all_daily_3", "hosts"]


def test_cache_entries_expire_after_the_ttl():
    clock = [1000.0]
    cache = DataCache(ttl_s=120, clock=lambda: clock[0])
    loads = []
    value, hit = cache.get_or_load("daily_all_daily_7", lambda: loads.append(1) or ["rows"])
    assert (value, hit) == (["rows"], False)
    clock[0] += 119.9
    assert cache.get_or_load("daily_all_daily_7", lambda: loads.append(1) or ["new"]) == (["rows"], True)
    clock[0] += 0.1
    assert cache.get_or_load("daily_all_daily_7", lambda: loads.append(1) or ["new"]) == (["new"], False)
    assert len(loads) == 2 and (cache.hits, cache.misses) == (1, 2)
    assert cache_key("daily", "home-primary", "daily", 30) == "daily_home-primary_daily_30"


def test_store_reads_run_in_parallel_on_a_bounded_pool(local_store, tmp_path):
    build_store(local_store, ist(2026, 1, 3), NOW, hosts=("home-primary",), raw_days=0, hourly_days=3,
                tiers=("hourly",))
    spy = SpyStore(local_store, delay_s=0.02)
    counting = CountingStore(spy)
    config = _config(local_store, tmp_path)
    got = rows("hourly", 2, "home-primary", store=counting, config=config, now=NOW, max_workers=4)
    # no tables: one probe per partition (hourly and raw of January), then the 47 finished hours' objects
    assert len(got) == 48 and counting.counts["get"] == 2 + 47
    assert 2 <= spy.max_in_flight <= 4  # in parallel, bounded (a wall-clock check failed on a busy machine)


def test_concurrent_callers_of_one_key_share_one_load(local_store, tmp_path):
    build_store(local_store, ist(2026, 1, 1), NOW, hosts=("home-primary",), raw_days=0, hourly_days=0,
                tiers=("daily",))
    counting = CountingStore(SpyStore(local_store, delay_s=0.02))
    config = _config(local_store, tmp_path)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(
        get_rows("daily", 5, "home-primary", store=counting, config=config, now=NOW))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    one_load = counting.counts["get"]
    clear_caches()
    rows("daily", 5, "home-primary", store=counting, config=config, now=NOW)
    assert counting.counts["get"] == 2 * one_load
    assert sorted(a.from_cache for a in answers) == [False, True, True, True]


# ---------------------------------------------------------------------------- pure parts

@pytest.mark.parametrize("args,message", [
    (("fortnightly", 3), "unknown mode 'fortnightly': use one of minute, hourly, daily, weekly, monthly, yearly"),
    (("daily", 0), "days=0 is out of range for mode daily: use 1 to 3660 days"),
    (("minute", 32), "days=32 is out of range for mode minute: use 1 to 31 days"),
    (("yearly", "five"), "days='five' is not a whole number: give how many periods to show, e.g. 5"),
    (("daily", 2.5), "days=2.5 is not a whole number"),
    (("daily", 7, "../etc"), "invalid host id '../etc'"),
])
def test_bad_queries_say_what_to_do(args, message):
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        check_query(*args)


def test_check_query_normalises():
    assert check_query("15-min", "7", None) == ("minute", 7, "all")
    assert check_query("Weekly", 56.0, "office-main") == ("weekly", 56, "office-main")


def test_windows_follow_local_days_iso_weeks_and_months():
    assert [p.label for p in summary_periods("weekly", 2, ist(2026, 1, 1, 12), "Asia/Kolkata")] == \
        ["2025W52", "2026W01"]
    assert [p.label for p in summary_periods("monthly", 3, ist(2026, 1, 15), "Asia/Kolkata")] == \
        ["202511", "202512", "202601"]
    assert [p.label for p in summary_periods("yearly", 5, ist(2026, 6, 1), "Asia/Kolkata")] == \
        ["2022", "2023", "2024", "2025", "2026"]
    # 18:45 UTC on 31 Dec is 00:15 IST on 1 Jan
    late = datetime(2025, 12, 31, 18, 45, tzinfo=timezone.utc)
    assert [p.label for p in summary_periods("daily", 1, late, "Asia/Kolkata")] == ["20260101"]
    hours = summary_periods("hourly", 2, late, "Asia/Kolkata")
    assert len(hours) == 48 and hours[-1].label == "2026010100" and hours[0].label == "2025123001"
    slots = slot_window(1, late, "Asia/Kolkata")
    assert len(slots) == 96 and slots[-1] == ist(2026, 1, 1, 0, 15) and slots[0] == ist(2025, 12, 31, 0, 30)


def _row(**values):
    row = dict.fromkeys(rowbuild.ROW_FIELDS)
    row.update(tests=0, failed=0, rejected=0, status="ok", download_count=0, upload_count=0, ping_count=0)
    row.update(values)
    return row


def test_headline_weights_averages_by_test_counts_and_counts_gaps():
    got = headline([
        _row(download_avg=100.0, download_count=1, download_min=90.0, download_max=110.0, tests=1,
             expected_slots=4, slots_with_result=1, below_expected=True),
        _row(download_avg=200.0, download_count=3, download_min=150.0, download_max=260.0, tests=3,
             failed=1, expected_slots=4, slots_with_result=4, below_expected=False),
        _row(status="missing", expected_slots=4, slots_with_result=0, coverage_pct=0.0),
        _row(status="pending"),
    ])
    assert got["download_avg"] == 175.0 and got["upload_avg"] is None
    assert (got["download_min"], got["download_max"]) == (90.0, 260.0)
    assert (got["tests"], got["failed"]) == (4, 1)
    assert got["coverage_pct"] == pytest.approx(100.0 * 5 / 12)
    assert (got["periods"], got["periods_with_data"], got["periods_missing"], got["periods_pending"]) == (4, 2, 1, 1)
    assert (got["periods_below_expected"], got["periods_judged"]) == (1, 2)


@pytest.mark.parametrize("built", ["local"], indirect=True)   # the grouping is backend-independent
def test_heatmap_equals_plain_grouping_by_weekday_and_hour(built):
    store, config, data = built
    cells = heatmap(2, "office-main", store=store, config=config, now=NOW)
    start, end = ist(2026, 1, 3, 11), ist(2026, 1, 5, 10)    # complete hours of the 48-hour window
    groups: dict = {}
    for sample in data.results_in(start, end, "office-main"):
        if sample.ok:
            groups.setdefault((sample.slot_start.weekday(), sample.slot_start.hour), []).append(sample.download_mbps)
    assert [(c["weekday_index"], c["hour"]) for c in cells] == sorted(groups)
    for cell in cells:
        values = groups[(cell["weekday_index"], cell["hour"])]
        assert cell["download_avg"] == pytest.approx(sum(values) / len(values), rel=1e-12)
        assert cell["tests"] == len(values)
    assert cells[0]["weekday"] == "Mon" and cells[-1]["weekday"] == "Sun"


@pytest.mark.slow
def test_rows_read_what_the_real_rollup_writes(local_store, tmp_path):
    """The aggregation developer's summaries (speedlab.rollup) against plain sums over the raw."""
    from speedlab import rollup

    data = build_store(local_store, ist(2026, 1, 3), NOW, raw_days=3, hourly_days=0, tiers=())
    config = _config(local_store, tmp_path, **PLANS)
    rollup.backfill(config, "2026-01-03", "2026-01-04", progress=False, now=NOW, store=local_store)
    seen = Counter()
    for mode, days in (("hourly", 2), ("daily", 3), ("weekly", 2)):
        for host in ("all", "office-main"):
            for row in rows(mode, days, host, store=local_store, config=config, now=NOW):
                start, end = datetime.fromisoformat(row["period_start"]), datetime.fromisoformat(row["period_end"])
                if not (ist(2026, 1, 3) <= start and end <= ist(2026, 1, 5)):
                    continue                      # outside what was rolled up
                want = _plain(data, start, end, host)
                assert row["status"] == "ok" and (row["tests"], row["failed"]) == (want["tests"], want["failed"])
                for key in ("download_avg", "upload_avg", "ping_avg", "download_min", "download_max"):
                    assert row[key] == pytest.approx(want[key], rel=1e-9), (mode, row["period"], key)
                assert row["coverage_pct"] == pytest.approx(100.0)
                seen[mode] += 1
    assert seen == {"hourly": 2 * 24 + 2 * 13, "daily": 4}


# ---------------------------------------------------------------------------- tables, live periods

class KeyLog:
    """Forwards to ``inner`` and records every request's (kind, key): which objects a view read."""

    def __init__(self, inner):
        self.inner, self.url, self.requests = inner, inner.url, []
        self._lock = threading.Lock()

    def __getattr__(self, name):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _log(self, kind, key):
        with self._lock:
            self.requests.append((kind, key))

    def get(self, bucket, key):
        self._log("get", key)
        return self.inner.get(bucket, key)

    def get_versioned(self, bucket, key):
        self._log("get", key)
        return self.inner.get_versioned(bucket, key)

    def list(self, bucket, prefix="", **span):
        self._log("list", prefix)
        return self.inner.list(bucket, prefix, **span)

    def list_prefixes(self, bucket, prefix=""):
        self._log("list", prefix)
        return self.inner.list_prefixes(bucket, prefix)


def _pair(tmp, first, now, **build):
    """The same data twice: a store without tables (the fallback) and one with them."""
    stores = []
    for name in ("plain", "tables"):
        store = LocalStore(tmp / name)
        store.root.mkdir()
        data = build_store(store, first, now, **build)
        stores.append(store)
    assert not tables_io.rebuild(stores[1], B).rejected
    return stores, data


def _check_against_samples(got, data, host, now, where):
    """Every row against plain sums over the samples; a period in progress up to ``now``."""
    for row in got:
        start, end = datetime.fromisoformat(row["period_start"]), datetime.fromisoformat(row["period_end"])
        want = _plain(data, start, min(end, now), host)
        at = f"{where} {row['mode']} {row['period']} {host}"
        if row["complete"]:
            assert row["status"] == ("ok" if want["tests"] else "failed" if want["failed"] else "missing"), at
        elif want["tests"] or want["failed"]:
            assert (row["status"], row["source"]) == ("partial", "live"), at
            present = len({r.host_id for r in data.results_in(start, now, None if host == "all" else host)})
            assert row["expected_slots"] == present * period(row["mode"], start).slots_begun(now), at
        else:
            assert row["status"] == "pending", at
        assert (row["tests"], row["failed"]) == (want["tests"], want["failed"]), at
        for key in ("download_avg", "upload_avg", "ping_avg", "download_min", "download_max", "ping_max"):
            if want[key] is None:
                assert row[key] is None, (at, key)
            else:
                assert row[key] == pytest.approx(want[key], rel=1e-12), (at, key)


@pytest.mark.slow
def test_rows_from_tables_equal_rows_from_the_objects_and_plain_sums(tmp_path):
    (plain, tabled), data = _pair(tmp_path, FIRST, NOW, raw_days=1, hourly_days=2, skip_days=SKIP)
    config = _config(plain, tmp_path, **PLANS)
    for mode, days in WINDOWS:
        for host in ("all", "office-main", "backup-location"):
            clear_caches()
            without = rows(mode, days, host, store=plain, config=config, now=NOW)
            clear_caches()
            with_tables = rows(mode, days, host, store=tabled, config=config, now=NOW)
            assert with_tables == without, (mode, host)
            if mode != "minute":
                _check_against_samples(with_tables, data, host, NOW, "tables")


def _table_gets(log, mode):
    return [k for kind, k in log.requests if kind == "get" and k.startswith(f"tables/summaries/tier={mode}/")]


@pytest.mark.parametrize("built", ["local-tables"], indirect=True)
def test_finished_periods_cost_at_most_two_requests_a_view_within_a_year(built):
    store, config, _ = built
    # windows over the stored periods (a partition without any summary has no table: it is read
    # per object, as a store without tables is)
    for mode, days in [("hourly", 2), ("daily", 14), ("weekly", 3), ("monthly", 2), ("yearly", 2)]:
        for host in ("all", "office-main"):
            clear_caches()
            log = KeyLog(store)
            counting = CountingStore(log)
            got = rows(mode, days, host, store=counting, config=config, now=NOW)
            finished = _table_gets(log, mode)
            where = (mode, host)
            assert 1 <= len(finished) <= 2 and len(set(finished)) == len(finished), where
            # no summary object is read one by one: the tables answer every finished period
            assert not [k for kind, k in log.requests if kind == "get" and k.startswith("aggregated/")], where
            # the period in progress: one GET per finer table (hourly, and daily/monthly above),
            # the raw month table, and the live tail (listings; no result object: all are compacted)
            finer = {"hourly": 0, "daily": 1, "weekly": 2, "monthly": 2, "yearly": 3}[mode]
            assert counting.counts["get"] == len(finished) + finer + 1, (where, log.requests)
            listed = [k for kind, k in log.requests if kind == "list"]
            # each tier's sources listed beside its GETs, one key range (a summary changed since the
            # table is read from its object)
            sources = [k for k in listed if k.startswith("aggregated/")]
            assert len(sources) == 1 + finer, (where, listed)   # (one per tier: buckets differ)
            hosts = len(HOSTS) if host == "all" else 1
            raw = [k for k in listed if not k.startswith("aggregated/")]
            assert len(raw) == hosts + (host == "all"), (where, listed)   # hosts' hour prefixes (+ hosts)
            assert got[-1]["status"] == "partial"
    clear_caches()
    log = KeyLog(store)
    rows("minute", 1, "office-main", store=CountingStore(log), config=config, now=NOW)
    gets = [k for kind, k in log.requests if kind == "get"]
    assert gets == ["tables/raw/year=2026/month=01/part.parquet"]       # the raw month table, nothing else
    # a window of two years: one table per year, plus nothing for the finished periods
    clear_caches()
    log = KeyLog(store)
    rows("daily", 400, store=log, config=config, now=NOW)
    assert len(_table_gets(log, "daily")) == 3          # 2024 (no table: its days read per object), 2025, 2026


@pytest.mark.parametrize("built", ["local-tables"], indirect=True)
def test_years_without_any_summary_cost_one_listing_not_a_get_each(built):
    store, config, _ = built
    log = KeyLog(store)
    got = rows("yearly", 5, store=log, config=config, now=NOW)      # 2022 .. 2026; data from December 2025
    assert [(r["period"], r["status"]) for r in got] == [("2022", "missing"), ("2023", "missing"),
                                                         ("2024", "missing"), ("2025", "ok"), ("2026", "partial")]
    # 2022-2024 have no table: the window's one listing (a key range across the years, made
    # beside the table GETs) shows no summary, so no summary object is asked for; one listing
    # per tier (yearly; monthly, daily and hourly for 2026 so far)
    assert [k for kind, k in log.requests if kind == "list" and k.startswith("aggregated/")] == \
        ["aggregated/year="] * 4
    assert not [k for kind, k in log.requests if kind == "get" and k.startswith("aggregated/")]
    clear_caches()
    plain = rows("yearly", 5, store=store, config=config, now=NOW)
    assert plain == got


@pytest.mark.parametrize("built", ["local-tables"], indirect=True)
def test_a_view_decodes_only_the_table_rows_it_shows(built, monkeypatch):
    store, config, data = built
    decoded: Counter = Counter()
    decode_row = TableSchema.decode_row

    def counting(self, row, wanted=None):
        decoded[self.name] += 1
        return decode_row(self, row, wanted)
    monkeypatch.setattr(TableSchema, "decode_row", counting)
    got = rows("hourly", 1, "office-main", store=store, config=config, now=NOW)
    assert len(got) == 24 and got[-1]["status"] == "partial"
    # the 23 finished hours (one row each, not the month's) and the results of the hour in progress
    # (not the ~290 results of the raw month table)
    in_progress = data.results_in(ist(2026, 1, 5, 10), NOW, "office-main")
    assert decoded == {"summary": 23, "raw result": len(in_progress)}, decoded


@pytest.mark.parametrize("built", ["local-tables"], indirect=True)
def test_a_table_read_for_a_rows_fields_decodes_only_those_and_a_whole_summary_comes_from_its_object(built):
    store, config, _ = built
    counting = CountingStore(store)
    source = ViewSource(counting, config, None, NOW, hosts=lambda: list(HOSTS))
    days = [period("daily", ist(2026, 1, d)) for d in (2, 3)]
    source.load_summaries("daily", days, rowbuild.ROW_SUMMARY_FIELDS)
    stored = {d.label: json.loads(store.get(B.for_tier("daily"), layout.summary_key(d))) for d in days}
    part = source.summary("daily", days[0].label, rowbuild.ROW_SUMMARY_FIELDS)
    assert part["records_aggregated"] == stored[days[0].label]["records_aggregated"] > 0
    assert "period_start" not in part and all(set(s) == {"count"} for s in part["stats"].values())
    gets = counting.counts["get"]
    # a whole summary (a period in progress merging it) from a frame read for a row's fields: its object
    assert source.stored(days[1], None) == stored[days[1].label]
    assert counting.counts["get"] == gets + 1


def _calendar_case(tmp_path, now, first, checks, built_at=None):
    """Rows of ``checks`` at ``now`` with and without tables, each against plain sums; the store
    holds what was collected by ``built_at`` (default ``now``)."""
    (plain, tabled), data = _pair(tmp_path, first, built_at or now, raw_days=2, hourly_days=3)
    config = _config(plain, tmp_path, **PLANS)
    out = {}
    for name, store in (("objects", plain), ("tables", tabled)):
        for mode, days in checks:
            for host in ("all", "home-primary"):
                clear_caches()
                got = rows(mode, days, host, store=store, config=config, now=now)
                _check_against_samples(got, data, host, now, name)
                out[(name, mode, host)] = got
    for mode, _days in checks:
        for host in ("all", "home-primary"):
            assert out[("objects", mode, host)] == out[("tables", mode, host)], (mode, host)
    return out


@pytest.mark.slow
def test_ist_midnight_today_is_the_current_hour_so_far(tmp_path):
    now = ist(2026, 12, 30, 0, 5)          # 18:35 UTC the day before
    # the 00:00 results (uploaded at 00:02:07) are in; the store is built as at 00:15, when they are
    got = _calendar_case(tmp_path, now, ist(2026, 12, 26), [("daily", 2), ("hourly", 1), ("weekly", 1)],
                         built_at=ist(2026, 12, 30, 0, 15))
    today = got[("tables", "daily", "all")][-1]
    assert (today["period"], today["status"], today["complete"]) == ("20261230", "partial", False)
    assert today["tests"] + today["failed"] == 3            # the 00:00 slot of each host, nothing else
    assert today["expected_slots"] == 3 and today["coverage_pct"] == 100.0    # one slot begun per host
    assert got[("tables", "daily", "all")][-2]["status"] == "ok"
    hour = got[("tables", "hourly", "all")][-1]
    assert (hour["period"], hour["status"], hour["tests"] + hour["failed"]) == ("2026123000", "partial", 3)


@pytest.mark.slow
def test_iso_week_53_and_new_year_are_partial_across_the_year_boundary(tmp_path):
    now = ist(2027, 1, 1, 0, 30)
    got = _calendar_case(tmp_path, now, ist(2026, 12, 21),
                         [("weekly", 2), ("yearly", 2), ("monthly", 2), ("daily", 2)])
    week = got[("tables", "weekly", "all")]
    assert [(r["period"], r["status"]) for r in week] == [("2026W52", "ok"), ("2026W53", "partial")]
    assert week[-1]["date_ist_str"] == "2026-12-28 to 2027-01-03" and week[-1]["days"] == 5
    years = got[("tables", "yearly", "all")]
    assert [(r["period"], r["status"], r["complete"]) for r in years] == [("2026", "ok", True),
                                                                          ("2027", "partial", False)]
    assert years[-1]["tests"] + years[-1]["failed"] == 6        # 00:00 and 00:15 of three hosts
    months = got[("tables", "monthly", "home-primary")]
    assert [(r["period"], r["status"]) for r in months] == [("202612", "ok"), ("202701", "partial")]


def test_a_source_changed_behind_the_tables_back_is_read_from_its_object(tmp_path):
    """The original layout is the truth: objects corrupted, rewritten or deleted after the tables
    were written (by hand, another tool, a job whose table upkeep failed) show exactly as the
    same store without tables shows them; the unchanged ones still come from the tables."""
    (plain, tabled), _ = _pair(tmp_path, FIRST, NOW, raw_days=1, hourly_days=2, skip_days=SKIP)
    config = _config(plain, tmp_path, **PLANS)
    days = [period("daily", ist(2025, 12, d)) for d in (28, 29, 30)]
    summaries = [layout.summary_key(p, None) for p in days] + [layout.summary_key(days[0], "office-main")]
    raw = sorted(i.key for i in plain.list(B.raw, "host=office-main/year=2026/month=202601/day=20260105/"))
    assert len(raw) >= 3
    for store in (plain, tabled):
        store.put(B.daily, summaries[0], b'{"schema_version": 1, "tier": "daily", "stats": nul')  # corrupt
        store.put(B.daily, summaries[1], store.get(B.daily, summaries[1]))   # rewritten: a new version
        store.delete(B.daily, summaries[2])
        store.put(B.daily, summaries[3], b"[]")                               # one host's, corrupt
        store.put(B.raw, raw[0], b"{not json")
        store.delete(B.raw, raw[1])
        store.put(B.raw, raw[2], store.get(B.raw, raw[2]))
    for mode, days_shown, host in [("daily", 14, "all"), ("daily", 14, "office-main"), ("minute", 1, "office-main"),
                                   ("minute", 1, "all"), ("monthly", 2, "all")]:
        clear_caches()
        want = rows(mode, days_shown, host, store=plain, config=config, now=NOW)
        clear_caches()
        log = KeyLog(tabled)
        got = rows(mode, days_shown, host, store=log, config=config, now=NOW)
        assert got == want, (mode, host)
        gets = [k for kind, k in log.requests if kind == "get" and not k.startswith("tables/")]
        if mode == "daily":
            by_period = {r["period"]: r for r in got}
            assert by_period["20251228"]["status"] == "unreadable" and by_period["20251228"]["error"]
            assert by_period["20251229"]["status"] == "ok"
            assert (by_period["20251230"]["status"] == "ok") == (host != "all")   # deleted: all hosts' only
            # only the changed objects are read one by one (the deleted one is not there to read)
            assert sorted(gets) == sorted([summaries[0], summaries[1]] if host == "all" else [summaries[3]])
        elif mode == "minute":
            assert sum(r["rejected"] for r in got) == 1
            assert set(gets) >= {raw[0], raw[2]} and raw[1] not in gets


def test_a_stored_child_that_cannot_be_merged_is_recomputed_from_finer_data_for_the_period_so_far(tmp_path):
    """A valid-looking daily summary whose figures cannot be merged (an average of 1e308, the
    original system's shape: no sketches) under the month in progress: the month so far is
    computed from that day's hours instead, exactly, as the rollup would replace it."""
    (_, tabled), _ = _pair(tmp_path, FIRST, NOW, raw_days=1, hourly_days=2, skip_days=SKIP)
    config = _config(tabled, tmp_path, **PLANS)
    clear_caches()
    before = rows("monthly", 2, "all", store=tabled, config=config, now=NOW)
    key = layout.summary_key(period("daily", ist(2026, 1, 4)), None)   # its hours are stored
    data = json.loads(tabled.get(B.daily, key))
    data.pop("stats")
    tabled.put(B.daily, key, json.dumps({**data, "exact": False, "avg_download": 1e308}).encode())
    clear_caches()
    after = rows("monthly", 2, "all", store=tabled, config=config, now=NOW)
    assert after[-1]["status"] == "partial" and after == before
