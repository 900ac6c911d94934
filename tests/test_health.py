"""speedlab.health: the pure rules, debouncing, and whole incidents with a local webhook receiver."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from speedlab.adapter import exit_code
from speedlab.checks import debounce, host_is_silent, result_below_expected, tier_due_period
from speedlab.cli import main
from speedlab.config import Plan
from speedlab.errors import ConfigError
from speedlab.health import run_health
from speedlab.layout import raw_key, summary_key
from speedlab.periods import parse_period
from speedlab.settings import Debounce, HealthSettings
from tests.helpers.alert_receivers import WebhookReceiver
from tests.helpers.data import IN_SLOT, result

IST = ZoneInfo("Asia/Kolkata")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=IST)


# ----------------------------------------------------------------------------- pure rules

@pytest.mark.parametrize("tier, now, grace, label", [
    ("hourly", "2025-12-29 14:39", 30, "2025122912"),   # 13:10 run (+30) covers 12:00
    ("hourly", "2025-12-29 14:40", 30, "2025122913"),   # 14:10 + 30 min
    ("daily", "2025-12-29 06:29", 30, "20251227"),
    ("daily", "2025-12-29 06:30", 30, "20251228"),
    ("weekly", "2025-12-30 02:29", 30, "2025W51"),      # Tuesday 02:00 + 30 min
    ("weekly", "2025-12-30 02:30", 30, "2025W52"),
    ("monthly", "2026-01-01 02:30", 30, "202512"),
    ("monthly", "2026-01-01 02:29", 30, "202511"),
    ("yearly", "2026-01-01 02:30", 30, "2025"),
    ("yearly", "2026-01-01 02:29", 30, "2024"),
])
def test_tier_due_period_follows_the_schedule(tier, now, grace, label):
    assert tier_due_period(tier, at(now), "Asia/Kolkata", grace, at("2020-01-01 00:00")).label == label


def test_nothing_is_due_before_the_first_result():
    now = at("2025-12-29 14:40")
    assert tier_due_period("hourly", now, "Asia/Kolkata", 30, at("2025-12-29 13:59")).label == "2025122913"
    assert tier_due_period("hourly", now, "Asia/Kolkata", 30, at("2025-12-29 14:00")) is None
    assert tier_due_period("yearly", now, "Asia/Kolkata", 30, at("2025-06-01 00:00")) is None
    assert tier_due_period("daily", now, "Asia/Kolkata", 30, None) is None


def test_host_silence_and_below_expected():
    now = at("2025-12-29 14:20")
    assert not host_is_silent(at("2025-12-29 13:30"), now, 50)
    assert host_is_silent(at("2025-12-29 13:29"), now, 50)
    assert host_is_silent(None, now, 50)
    plan = Plan(200, 100)
    slot = at("2025-12-29 14:00")
    assert result_below_expected(result("h", slot + IN_SLOT, 160, 80), plan, 0.8) is False
    assert result_below_expected(result("h", slot + IN_SLOT, 159.9, 80), plan, 0.8) is True
    assert result_below_expected(result("h", slot + IN_SLOT, 300, 79), plan, 0.8) is True
    assert result_below_expected(result("h", slot + IN_SLOT, 10, 5), Plan(), 0.8) is None
    assert result_below_expected(result("h", slot + IN_SLOT, status="failed"), plan, 0.8) is None
    assert result_below_expected(result("h", slot + IN_SLOT, 10, 5), Plan(upload_mbps=4), 0.8) is False


def test_debounce_n_in_a_row_and_m_of_n():
    rule = Debounce(alert_after=3, window=3, recover_after=1)
    state, events = debounce({}, [True, True, False, True, True], rule)
    assert events == [] and state["open"] is False
    state, events = debounce(state, [True], rule)
    assert events == ["open"]
    state, events = debounce(state, [True, True], rule)
    assert events == []  # once per incident
    state, events = debounce(state, [False], rule)
    assert events == ["recover"] and state["open"] is False

    m_of_n = Debounce(alert_after=3, window=5, recover_after=2)
    state, events = debounce({}, [True, False, True, False, True], m_of_n)
    assert events == ["open"]
    state, events = debounce(state, [False], m_of_n)
    assert events == []  # one good result is not yet a recovery
    state, events = debounce(state, [False], m_of_n)
    assert events == ["recover"]
    # a long gap can hold a whole incident: both messages go out
    assert debounce({}, [True] * 3 + [False] * 2, m_of_n)[1] == ["open", "recover"]


def test_settings_are_checked():
    s = HealthSettings.from_table({"hosts": ["a"], "debounce": {"below_expected": {"alert_after": 3, "window": 5}}})
    assert s.hosts == ("a",) and s.debounce["below_expected"] == Debounce(3, 5, 1)
    rules = HealthSettings.from_table({"debounce": {"tests_failing": {"alert_after": 4}}}).debounce
    tests_failing = rules["tests_failing"]
    assert tests_failing == Debounce(4, 4, 1)
    for table, words in [({"hosts": ["a/b"]}, "invalid host id"),
                         ({"tiers": ["daily", "decadely"]}, "unknown decadely"),
                         ({"silent_after_minutes": 0}, "positive"),
                         ({"debounce": {"below_expected": {"alert_after": 6, "window": 5}}}, "cannot exceed"),
                         ({"debounce": {"ping": {}}}, "unknown check"),
                         ({"debounce": {"run_failed": {"alert_after": 0}}}, "from 1 to 1000"),
                         ({"sms": 1}, "unknown key")]:
        with pytest.raises(ConfigError, match=words):
            HealthSettings.from_table(table)


# ----------------------------------------------------------------------------- a whole story

class Deployment:
    """A store with two hosts, hourly summaries and run records, and a clock."""

    def __init__(self, store, config_for, hook_url, **health):
        self.store = store
        self.config = config_for(store, plan=Plan(200, 100), sections={
            "health": {"tiers": ["hourly", "daily"], **health},
            "alerts": {"webhook_url": hook_url}})
        self.runs = self.config.state_path / "runs"
        for bucket in set(self.config.buckets.as_dict().values()):
            store.create_bucket(bucket)  # as `speedlab infra apply` does

    def results(self, host, first, last, download=250.0, upload=120.0):
        slot = at(first)
        while slot <= at(last):
            record = result(host, slot + IN_SLOT, download, upload)
            self.store.put(self.config.buckets.raw, raw_key(host, slot, "Asia/Kolkata"), record.to_json().encode())
            slot += timedelta(minutes=15)

    def hourly(self, *labels):
        for label in labels:
            period = parse_period("hourly", label, "Asia/Kolkata")
            self.store.put(self.config.buckets.hourly, summary_key(period), json.dumps(
                {"schema_version": 1, "avg_download": None, "avg_upload": None, "avg_ping": None,
                 "records_aggregated": 0}).encode())  # the smallest summary the one rule accepts

    def run_record(self, status, finished):
        """A record as speedlab.notebook_runs writes it: runs/<job>/<job>-<UTC start>-<id>.json."""
        folder = self.runs / "aggregate-hourly"
        folder.mkdir(parents=True, exist_ok=True)
        utc = at(finished).astimezone(timezone.utc)
        (folder / f"aggregate-hourly-{utc:%Y%m%dT%H%M%SZ}-abc123.json").write_text(json.dumps(
            {"job": "aggregate-hourly", "status": status, "finished_at": utc.isoformat(timespec="seconds"),
             "output": str(folder / "run.ipynb"),
             "error": "ZeroDivisionError: division by zero" if status == "failed" else None}))

    def check(self, now, **kwargs):
        return run_health(self.config, now=at(now), **kwargs)


@pytest.mark.slow
def test_one_alert_per_incident_and_one_recovery(store, config_for):
    with WebhookReceiver() as hook:
        d = Deployment(store, config_for, hook.url)
        d.results("home-primary", "2025-12-29 10:00", "2025-12-29 14:15")
        d.results("office-main", "2025-12-29 10:00", "2025-12-29 12:00")   # then silent
        d.hourly("2025122910", "2025122911")                                # 12:00 is due at 13:10
        d.run_record("failed", "2025-12-29 13:11")

        first = d.check("2025-12-29 14:20")
        assert first.open_incidents == ["host_silent:office-main", "run_failed:aggregate-hourly", "tier_stale:hourly"]
        assert exit_code(first) == 1
        statuses = {c["check"]: c["status"] for c in first.checks}
        assert statuses == {"host_silent:home-primary": "ok", "host_silent:office-main": "alerting",
                            "below_expected:home-primary": "ok", "tests_failing:home-primary": "ok",
                            "below_expected:office-main": "ok", "tests_failing:office-main": "ok",
                            "tier_stale:hourly": "alerting", "tier_stale:daily": "ok",
                            "run_failed:aggregate-hourly": "alerting"}
        daily_message = next(c["message"] for c in first.checks if c["check"] == "tier_stale:daily")
        assert daily_message == "no daily summary is due yet"
        assert d.check("2025-12-29 14:25").alerts == []                       # nothing new: no repeat

        # office-main's spool flushes, the aggregator catches up, home-primary slows down
        d.results("office-main", "2025-12-29 12:15", "2025-12-29 15:15")
        d.hourly("2025122912", "2025122913")
        d.run_record("ok", "2025-12-29 15:11")
        d.results("home-primary", "2025-12-29 14:30", "2025-12-29 15:15", download=100.0)  # 4 slow
        third = d.check("2025-12-29 15:20")
        assert sorted((a["kind"], a["check"]) for a in third.alerts) == [
            ("recovery", "host_silent:office-main"), ("recovery", "run_failed:aggregate-hourly"),
            ("recovery", "tier_stale:hourly")]
        assert exit_code(third) == 0
        below = next(c for c in third.checks if c["check"] == "below_expected:home-primary")
        assert below["status"] == "pending" and below["details"]["bad_of_recent"] == [4, 5]

        d.results("home-primary", "2025-12-29 15:30", "2025-12-29 15:30", download=100.0)  # the 5th
        d.results("office-main", "2025-12-29 15:30", "2025-12-29 15:30")
        d.hourly("2025122914")
        fourth = d.check("2025-12-29 15:40")
        assert [(a["kind"], a["check"]) for a in fourth.alerts] == [("incident", "below_expected:home-primary")]
        assert fourth.open_incidents == ["below_expected:home-primary"] and exit_code(fourth) == 1
        assert "5 of the last 5 results on home-primary are below 80% of the plan (160/80 Mbit/s" in \
            fourth.alerts[0]["message"]
        assert d.check("2025-12-29 15:45").alerts == []

        d.results("home-primary", "2025-12-29 15:45", "2025-12-29 15:45")
        d.results("office-main", "2025-12-29 15:45", "2025-12-29 15:45")
        last = d.check("2025-12-29 15:55")
        assert [(a["kind"], a["check"]) for a in last.alerts] == [("recovery", "below_expected:home-primary")]
        assert last.healthy and exit_code(last) == 0

    kinds = [(m["speedlab"]["check"], m["speedlab"]["kind"]) for m in hook.received]
    assert sorted(kinds) == sorted([(c, k) for c in ("host_silent:office-main", "run_failed:aggregate-hourly",
                                                     "tier_stale:hourly", "below_expected:home-primary")
                                    for k in ("incident", "recovery")])
    by_check = {}
    for m in hook.received:
        by_check.setdefault(m["speedlab"]["check"], set()).add(m["speedlab"]["incident_id"])
    assert all(len(ids) == 1 for ids in by_check.values())  # the recovery names its incident
    silent = next(m for m in hook.received if m["speedlab"]["check"] == "host_silent:office-main")
    assert silent["text"].startswith("[speedlab] ALERT: host office-main silent\nhost office-main has not "
                                     "reported since 2025-12-29 12:00 IST (140 min ago; allowed 50 min)")
    log = (d.config.state_path / "logs" / "health.jsonl").read_text().splitlines()
    assert sum('"alert": "incident"' in line for line in log) == 4


def test_objects_from_the_future_hide_neither_a_silent_host_nor_a_stale_tier(local_store, config_for):
    with WebhookReceiver() as hook:
        d = Deployment(local_store, config_for, hook.url)
        d.results("home-primary", "2025-12-29 10:00", "2025-12-29 14:15")
        d.results("office-main", "2025-12-29 10:00", "2025-12-29 12:00")   # then silent
        d.results("office-main", "2030-06-01 10:00", "2030-06-01 10:00")   # a self-consistent result from 2030
        d.hourly("2025122910", "2025122911", "2025122914", "2099010100")    # 12:00 missing; 14:00 and 2099 not over
        report = d.check("2025-12-29 14:20", send_alerts=False)
    checks = {c["check"]: c for c in report.checks}
    assert checks["host_silent:office-main"]["status"] == "alerting"
    assert checks["host_silent:office-main"]["details"]["future_objects"] == 1
    assert "1 result(s) dated after now ignored" in checks["host_silent:office-main"]["message"]
    assert checks["tier_stale:hourly"]["status"] == "alerting"
    assert "the newest is 2025122911" in checks["tier_stale:hourly"]["message"]
    assert checks["tier_stale:hourly"]["details"]["future_objects"] == 2
    assert not report.healthy


def test_an_unreadable_newest_summary_makes_its_tier_unhealthy(local_store, config_for):
    with WebhookReceiver() as hook:
        d = Deployment(local_store, config_for, hook.url, tiers=["hourly"])
        d.results("home-primary", "2025-12-29 10:00", "2025-12-29 14:15")
        d.results("office-main", "2025-12-29 10:00", "2025-12-29 14:15")
        d.hourly("2025122912")
        key = summary_key(parse_period("hourly", "2025122913", "Asia/Kolkata"))
        local_store.put(d.config.buckets.hourly, key, b"[1,2]")
        report = d.check("2025-12-29 14:20", send_alerts=False)
    stale = next(c for c in report.checks if c["check"] == "tier_stale:hourly")
    assert stale["status"] == "alerting" and not report.healthy
    assert stale["message"].startswith("the newest hourly summary 2025122913 is unreadable (summary must be "
                                       "a JSON object, not list")


def test_health_judges_the_result_the_rollup_keeps_in_a_crowded_slot(local_store, config_for):
    """Not the first ok by key order: a partial ok under the seed's name sorts before test.json."""
    from dataclasses import replace

    from tests.helpers.data import legacy_key
    with WebhookReceiver() as hook:
        d = Deployment(local_store, config_for, hook.url, tiers=[])
        d.results("home-primary", "2025-12-29 13:00", "2025-12-29 14:15")  # 250/120: above 80 % of 200/100
        slot = at("2025-12-29 14:15")
        partial = replace(result("home-primary", slot + IN_SLOT, 50.0, 25.0), upload_mbps=None)
        local_store.put("vd-speed-test", legacy_key(partial), partial.to_json().encode())
        report = d.check("2025-12-29 14:25", send_alerts=False)
    below = next(c for c in report.checks if c["check"] == "below_expected:home-primary")
    assert below["details"]["bad_of_recent"][0] == 0 and "latest 250.0/120.0 Mbit/s" in below["message"]


def test_without_a_plan_in_config_health_judges_by_the_plan_the_summaries_recorded_like_query(local_store, config_for):
    """`health --store ./speedlab-demo` said "no plan" while `query --store` showed the plan figures."""
    from speedlab.query import rows
    with WebhookReceiver() as hook:
        d = Deployment(local_store, config_for, hook.url, tiers=[])
        d.config = d.config.with_overrides(plan=Plan(), host_plans={})
        d.results("home-primary", "2025-12-29 12:00", "2025-12-29 14:15", download=50.0, upload=25.0)
        report = d.check("2025-12-29 14:25", send_alerts=False)
        below = next(c for c in report.checks if c["check"] == "below_expected:home-primary")
        assert below["status"] == "unknown" and "has no plan" in below["message"]  # nothing recorded either
        hour = parse_period("hourly", "2025122913", "Asia/Kolkata")
        local_store.put(d.config.buckets.hourly, summary_key(hour, "home-primary"), json.dumps(
            {"schema_version": 1, "avg_download": 50.0, "avg_upload": 25.0, "avg_ping": 10.0,
             "records_aggregated": 4, "expected_download_mbps": 200.0, "expected_upload_mbps": 100.0}).encode())
        report = d.check("2025-12-29 14:30", send_alerts=False)
    below = next(c for c in report.checks if c["check"] == "below_expected:home-primary")
    assert below["status"] != "ok" and below["details"]["bad_of_recent"][0] == below["details"]["bad_of_recent"][1] > 0
    assert "(160/80 Mbit/s down/up, as recorded in aggregated/" in below["message"]
    assert below["details"]["plan_source"] == summary_key(hour, "home-primary")
    shown = {r["period"]: r for r in rows("hourly", 1, "home-primary", config=d.config, store=local_store,
                                           now=at("2025-12-29 14:30"))}
    assert (shown["2025122913"]["expected_download_mbps"], shown["2025122913"]["below_expected"]) == (200.0, True)


def test_failed_tests_open_their_own_incident(local_store, config_for):
    with WebhookReceiver() as hook:
        d = Deployment(local_store, config_for, hook.url, tiers=[])
        d.results("home-primary", "2025-12-29 13:00", "2025-12-29 13:30")
        for minute in ("13:45", "14:00", "14:15"):
            slot = at(f"2025-12-29 {minute}")
            local_store.put("vd-speed-test", raw_key("home-primary", slot, "Asia/Kolkata"),
                            result("home-primary", slot + IN_SLOT, status="failed").to_json().encode())
        report = d.check("2025-12-29 14:20")
    assert [(a["kind"], a["check"]) for a in report.alerts] == [("incident", "tests_failing:home-primary")]
    assert "latest: no_connectivity: network unreachable" in report.alerts[0]["message"]
    # failed tests are not judged against the plan
    assert next(c for c in report.checks if c["check"] == "below_expected:home-primary")["status"] == "ok"


def test_undelivered_alerts_are_retried_once_the_receiver_answers(local_store, config_for):
    with WebhookReceiver(status=503) as hook:
        d = Deployment(local_store, config_for, hook.url, hosts=["backup-location"], tiers=[])
        failed = d.check("2025-12-29 14:20")
        assert failed.open_incidents == ["host_silent:backup-location"]
        assert len(failed.delivery_errors) == 1 and "answered HTTP 503" in failed.delivery_errors[0]
        hook.status = 200
        retried = d.check("2025-12-29 14:25")
        assert retried.alerts == [] and retried.delivery_errors == []
        assert d.check("2025-12-29 14:30").delivery_errors == []
    assert [m["speedlab"]["kind"] for m in hook.received] == ["incident", "incident"]  # 503, then delivered
    log = (d.config.state_path / "logs" / "health.jsonl").read_text()
    assert log.count('"alert": "incident"') == 1  # the log channel took it the first time only


def test_no_alerts_sends_nothing_and_changes_no_state(local_store, config_for):
    with WebhookReceiver() as hook:
        d = Deployment(local_store, config_for, hook.url, hosts=["backup-location"], tiers=[])
        dry = d.check("2025-12-29 14:20", send_alerts=False)
        assert [a["check"] for a in dry.alerts] == ["host_silent:backup-location"] and not dry.sent
        assert not (d.config.state_path / "health" / "state.json").exists()
        real = d.check("2025-12-29 14:21")
        assert [a["check"] for a in real.alerts] == ["host_silent:backup-location"]
    assert len(hook.received) == 1


def test_cli_exit_codes(tmp_path, capsys):
    store = tmp_path / "data"
    (store / "vd-speed-test").mkdir(parents=True)
    cfg = tmp_path / "speedlab.toml"
    cfg.write_text(f'store = "{store}"\n[health]\ntiers = []\n')
    assert main(["health", "--config", str(cfg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["healthy"] is True
    cfg.write_text(f'store = "{store}"\n[health]\ntiers = []\nhosts = ["office-main"]\n')
    assert main(["health", "--config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("UNHEALTHY") and "FAIL host_silent:office-main: host office-main has not reported" in out
    cfg.write_text(f'store = "{tmp_path / "missing"}"\n')
    assert main(["health", "--config", str(cfg)]) == 2
    assert "does not exist" in capsys.readouterr().err
    cfg.write_text(f'store = "{store}"\n[health]\nsilent_after_minutes = -1\n')
    assert main(["health", "--config", str(cfg)]) == 2
    assert "must be a positive number" in capsys.readouterr().err


@pytest.mark.slow
def test_a_failed_papermill_run_is_an_incident_until_a_run_succeeds(local_store, config_for, tmp_path):
    """Real run records: speedlab.notebook_runs executing a notebook that fails, then one that works."""
    import nbformat

    from speedlab.notebook_runs import run_notebook

    notebooks = {}
    for name, source in (("bad", "1 / 0"), ("good", "x = 1")):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
        notebooks[name] = tmp_path / f"{name}.ipynb"
        nbformat.write(nb, notebooks[name])
    with WebhookReceiver() as hook:
        d = Deployment(local_store, config_for, hook.url, tiers=[])
        assert run_notebook(d.config, notebooks["bad"], {}, job="aggregate-daily").status == "failed"
        failed = d.check("2025-12-29 14:20")
        assert failed.open_incidents == ["run_failed:aggregate-daily"]
        assert "failed: ZeroDivisionError: division by zero; open " in failed.alerts[0]["message"]
        assert run_notebook(d.config, notebooks["good"], {}, job="aggregate-daily").ok
        assert [a["kind"] for a in d.check("2025-12-29 14:25").alerts] == ["recovery"]
    assert [m["speedlab"]["kind"] for m in hook.received] == ["incident", "recovery"]


def test_read_run_records_takes_each_jobs_newest(tmp_path):
    import os

    from speedlab.health import read_run_records

    folder = tmp_path / "runs" / "aggregate-hourly"
    folder.mkdir(parents=True)
    def write(name, status, finished, mtime):
        path = folder / name
        path.write_text(json.dumps({"job": "aggregate-hourly", "status": status, "finished_at": finished}))
        os.utime(path, ns=(mtime, mtime))
    write("aggregate-hourly-20251229T080000Z-aaaaaa.json", "ok", "2025-12-29T08:00:03+00:00", 1)
    write("aggregate-hourly-20251229T090000Z-zzzzzz.json", "failed", "2025-12-29T09:00:02+00:00", 2)
    write("aggregate-hourly-20251229T090000Z-000000.json", "ok", "2025-12-29T09:00:02+00:00", 3)  # same second, later
    (folder / "aggregate-hourly-20251229T100000Z-junk00.json").write_text("{not json")
    (tmp_path / "runs" / "notes.json").write_text('["not a record"]')
    newest = read_run_records(tmp_path / "runs")
    assert list(newest) == ["aggregate-hourly"]
    assert newest["aggregate-hourly"]["status"] == "ok" and newest["aggregate-hourly"]["_path"].endswith("-000000.json")
    assert read_run_records(tmp_path / "missing") == {}


# ----------------------------------------------------------------------------- loaded latency, jitter, packet loss

def probed(slot_text, loaded=(None, None), jitter=None, loss=None, status="ok", schema=2):
    """A result with latency figures: ``loaded`` = (latency_download_ms, latency_upload_ms) [ms]."""
    from dataclasses import replace
    record = result("office-main", at(slot_text) + IN_SLOT, 250.0, 120.0, status=status)  # above 0.8 x the plan
    if schema == 1:
        return replace(record, schema_version=1, jitter_ms=jitter, packet_loss_pct=loss)
    return replace(record, latency_download_ms=loaded[0], latency_upload_ms=loaded[1], jitter_ms=jitter,
                   packet_loss_pct=loss)


def test_threshold_rules_judge_only_results_that_carry_the_figure():
    from speedlab.checks import result_figure, result_over_maximum, threshold_message
    assert result_figure(probed("2025-12-29 14:00", (412.0, 180.0)), "loaded_latency_high") == 412.0
    assert result_figure(probed("2025-12-29 14:00", (90.0, 300.5)), "loaded_latency_high") == 300.5  # the larger
    assert result_figure(probed("2025-12-29 14:00", (None, 75.0)), "loaded_latency_high") == 75.0     # the one there
    assert result_over_maximum(probed("2025-12-29 14:00", (250.0, 100.0)), "loaded_latency_high", 250) is False
    assert result_over_maximum(probed("2025-12-29 14:00", (250.1, 100.0)), "loaded_latency_high", 250) is True
    assert result_over_maximum(probed("2025-12-29 14:00", jitter=31.0), "jitter_high", 30) is True
    assert result_over_maximum(probed("2025-12-29 14:00", loss=0.5), "packet_loss_high", 1) is False
    for record, kind in [(probed("2025-12-29 14:00"), "loaded_latency_high"),          # engine without probes
                         (probed("2025-12-29 14:00", schema=1), "loaded_latency_high"),  # schema 1
                         (probed("2025-12-29 14:00", jitter=5.0), "packet_loss_high"),    # loss not measured
                         (probed("2025-12-29 14:00", status="failed"), "jitter_high")]:
        assert result_over_maximum(record, kind, 1) is None
    assert threshold_message("office", "loaded_latency_high", 250, [(412.0, True), (100.0, False), (300.04, True),
                                                                    (412.0, True)]) == \
        "office: loaded latency 412 ms > 250 ms in 3 of the last 4 tests"
    assert threshold_message("office", "packet_loss_high", 1, [(0.5, False)]) == \
        "office: packet loss 0.5% <= 1% in the last test"
    assert threshold_message("office", "jitter_high", 30, [], unjudged=7).startswith(
        "office: jitter not measured in the last 7 results (not judged")


def test_threshold_settings_are_checked_and_off_by_default():
    plain = HealthSettings.from_table({})
    assert [plain.maximum(k, "office-main") for k in ("loaded_latency_high", "jitter_high", "packet_loss_high")] \
        == [None, None, None]
    s = HealthSettings.from_table({"max_loaded_latency_ms": 250, "max_jitter_ms": 30.5, "max_packet_loss_pct": 100,
                                   "max_loaded_latency_ms_by_host": {"backup-location": 600},
                                   "debounce": {"jitter_high": {"alert_after": 2, "window": 4}}})
    assert (s.maximum("loaded_latency_high", "office-main"), s.maximum("loaded_latency_high", "backup-location"),
            s.maximum("jitter_high", "backup-location"), s.maximum("packet_loss_high", "x")) == (250, 600, 30.5, 100)
    assert s.debounce["jitter_high"] == Debounce(2, 4, 1) and s.debounce["packet_loss_high"] == Debounce(3, 3, 1)
    for table, words in [({"max_loaded_latency_ms": 0}, "max_loaded_latency_ms = 0 must be a positive number"),
                         ({"max_jitter_ms": "30"}, "positive number"),
                         ({"max_jitter_ms": float("nan")}, "positive number"),
                         ({"max_packet_loss_pct": 101}, "positive number up to 100"),
                         ({"max_jitter_ms_by_host": {"office-main": -1}}, r"\[health.max_jitter_ms_by_host\] office"),
                         ({"max_jitter_ms_by_host": 5}, "must be a table"),
                         ({"max_packet_loss_pct_by_host": {"a/b": 1}}, "invalid host id"),
                         ({"max_latency_ms": 250}, "unknown key"),
                         ({"debounce": {"loaded_latency_high": {"alert_after": 4, "window": 3}}}, "cannot exceed")]:
        with pytest.raises(ConfigError, match=words):
            HealthSettings.from_table(table)


def test_loaded_latency_alerts_debounced_per_host_and_unmeasured_results_are_not_judged(local_store, config_for):
    """3 of the last 4 above 250 ms opens one incident; schema-1 and unprobed results neither open nor clear it."""
    with WebhookReceiver() as hook:
        d = Deployment(local_store, config_for, hook.url, tiers=[], max_loaded_latency_ms=250,
                       max_loaded_latency_ms_by_host={"home-primary": 500}, max_jitter_ms=30,
                       debounce={"loaded_latency_high": {"alert_after": 3, "window": 4}})
        d.results("home-primary", "2025-12-29 13:00", "2025-12-29 14:15")   # no probes: never judged

        def put(record):
            local_store.put(d.config.buckets.raw, raw_key(record.host_id, record.slot_start, "Asia/Kolkata"),
                            record.to_json().encode())

        put(probed("2025-12-29 13:00", schema=1))
        put(probed("2025-12-29 13:15", (300.0, 120.0), jitter=3.0))
        put(probed("2025-12-29 13:30", (90.0, 180.0), jitter=2.0))
        put(probed("2025-12-29 13:45", jitter=4.0))                        # unprobed engine: not judged
        put(probed("2025-12-29 14:00", (110.0, 412.0), jitter=2.5))
        first = d.check("2025-12-29 14:10")
        checks = {c["check"]: c for c in first.checks}
        assert "packet_loss_high:office-main" not in checks and "packet_loss_high:home-primary" not in checks  # off
        latency = checks["loaded_latency_high:office-main"]
        assert latency["status"] == "pending" and latency["details"]["bad_of_recent"] == [2, 3]
        assert latency["message"] == "office-main: loaded latency 412 ms > 250 ms in 2 of the last 3 tests"
        assert checks["jitter_high:office-main"]["status"] == "ok"
        home = checks["loaded_latency_high:home-primary"]
        assert home["status"] == "unknown" and home["details"]["maximum"] == 500.0
        assert "home-primary: loaded latency not measured in the last 6 results" in home["message"]
        assert first.alerts == [] and first.healthy

        put(probed("2025-12-29 14:15", (260.0, None), jitter=1.0))
        second = d.check("2025-12-29 14:25")
        assert [(a["kind"], a["check"]) for a in second.alerts] == [("incident", "loaded_latency_high:office-main")]
        assert second.alerts[0]["title"] == "loaded latency high on office-main"
        assert second.alerts[0]["message"] == "office-main: loaded latency 260 ms > 250 ms in 3 of the last 4 tests"
        assert second.open_incidents == ["loaded_latency_high:office-main"] and exit_code(second) == 1

        put(probed("2025-12-29 14:30", schema=1))                         # not judged: the incident stays open
        assert d.check("2025-12-29 14:40").open_incidents == ["loaded_latency_high:office-main"]
        put(probed("2025-12-29 14:45", (80.0, 240.0), jitter=1.0))
        last = d.check("2025-12-29 14:55")
        assert [(a["kind"], a["check"], a["title"]) for a in last.alerts] == [
            ("recovery", "loaded_latency_high:office-main", "loaded latency normal again on office-main")]
        assert last.healthy
    assert [(m["speedlab"]["check"], m["speedlab"]["kind"]) for m in hook.received] == [
        ("loaded_latency_high:office-main", "incident"), ("loaded_latency_high:office-main", "recovery")]
    assert hook.received[0]["text"].endswith("office-main: loaded latency 260 ms > 250 ms in 3 of the last 4 tests")
