"""The one adapter: the same report gives the same envelope through the command line, the HTTP
API and the scheduled notebooks; exit statuses follow each report's ``ok``."""

from __future__ import annotations

import json
import shutil
from datetime import datetime

import pytest

from speedlab.adapter import (
    EXIT_CHECK_FAILED,
    EXIT_FAILED,
    EXIT_OK,
    aggregate_command,
    envelope,
    error_exit_code,
    exit_code,
    render,
    run_due_command,
    warnings,
)
from speedlab.api import api_context, handle
from speedlab.cli import main
from speedlab.collect import CollectOutcome
from speedlab.dedupe import DedupePlan, DedupeReport
from speedlab.health import HealthReport
from speedlab.rollup import aggregate, run_due
from speedlab.spool import FlushReport
from speedlab.store import LocalStore
from tests.helpers.data import IST, put, result

TOKEN = "t0ken-for-adapter-tests-x7"
NOW = datetime(2026, 1, 10, tzinfo=IST)
#: Fields that say when or how fast a run went, not what it found.
WHEN = {"generated_at", "source_max_modified", "seconds", "requests"}


def _fill(store) -> None:
    for moment, down in (("2025-12-29 09:01", 100.0), ("2025-12-29 09:16", 120.0), ("2025-12-29 21:46", 80.0)):
        put(store, result("home-primary", moment, down))
    put(store, result("office-main", "2025-12-29 12:31", 300.0))


def _same(response: dict) -> dict:
    """An envelope without its timings (``result``'s and the plan's keys in a fixed order)."""
    body = response["result"]
    body = {k: v for k, v in body.items() if k not in WHEN}
    return {"message": response["message"], "mode": response["mode"],
            "result": json.loads(json.dumps(body, sort_keys=True, default=str))}


class _Thing:
    def __init__(self, ok: bool) -> None:
        self.ok = ok

    def to_dict(self) -> dict:
        return {"ok": self.ok}

    def to_text(self) -> str:
        return "fine" if self.ok else "not fine"


def test_envelope_is_the_seeds_shape_and_plan_comes_last():
    assert envelope(_Thing(True), "daily") == {"message": "ok", "mode": "daily", "result": {"ok": True}}
    assert list(envelope(None, "run-due")) == ["message", "mode", "result"]
    with_plan = envelope(_Thing(True), "run-due", plan=[{"tier": "hourly"}])
    assert list(with_plan["result"]) == ["ok", "plan"] and with_plan["result"]["plan"] == [{"tier": "hourly"}]


def test_render_is_indented_json_or_the_reports_text():
    thing = _Thing(False)
    assert render(thing, as_json=True) == json.dumps({"ok": False}, indent=2)
    assert render(thing, as_json=False) == "not fine"
    assert render({"a": 1}, as_json=False) == json.dumps({"a": 1}, indent=2)  # plain data: JSON either way
    rolled = envelope({"periods": 3, "by_tier": {"hourly": 2, "daily": 1}, "rejected": 0}, "run-due")
    assert render(rolled, as_json=False) == ("run-due: 3 period(s) rolled up (hourly 2, daily 1); "
                                             "0 bad object(s) skipped")


def test_exit_codes_follow_each_reports_status():
    assert exit_code({"a": 1}) == exit_code([]) == exit_code(_Thing(True)) == EXIT_OK
    assert exit_code(_Thing(False)) == EXIT_FAILED
    healthy, unhealthy = HealthReport("2026-01-10T00:00:00+00:00"), HealthReport("x", open_incidents=["host_silent:a"])
    assert (exit_code(healthy), exit_code(unhealthy)) == (EXIT_OK, EXIT_FAILED)
    plan = DedupePlan()
    assert exit_code(DedupeReport(plan, dry_run=True)) == EXIT_OK
    assert exit_code(DedupeReport(plan, dry_run=False, failures=[("b", "k", "denied")])) == EXIT_FAILED
    assert exit_code(DedupeReport(plan, dry_run=False, stale_error="no")) == EXIT_FAILED
    assert exit_code(FlushReport(uploaded=["a"])) == EXIT_OK
    assert exit_code(FlushReport(refused=["p"], reasons={"p": "denied"})) == EXIT_FAILED
    assert exit_code(FlushReport(rejected=["q"])) == EXIT_FAILED
    assert exit_code(CollectOutcome("stored", None, "k")) == exit_code(CollectOutcome("spooled", None, "k")) == EXIT_OK
    assert exit_code(CollectOutcome("refused", None, "k")) == EXIT_FAILED
    assert (error_exit_code("health"), error_exit_code("aggregate")) == (EXIT_CHECK_FAILED, EXIT_FAILED)


def test_warnings_go_apart_from_the_text():
    refused = FlushReport(refused=["p"], reasons={"p": "denied"}, remaining=2)
    assert render(refused, False) == ("spool: 0 uploaded, 0 already filled, 0 rejected, 1 refused by the store, "
                                      "2 waiting")
    assert warnings(refused) == ["spool entry refused by the store, set aside: p: denied"]
    fine = CollectOutcome("stored", None, "k", flushed=2, message="stored at k")
    assert (render(fine, False), warnings(fine)) == ("stored: stored at k\nspool: 2 spooled result(s) uploaded", [])
    dropped = CollectOutcome("spooled", None, "k", dropped=1, message="store down")
    assert (render(dropped, False), warnings(dropped)) == ("spooled: store down", ["spool: 1 dropped: spool full"])
    assert warnings(_Thing(True)) == []


def test_one_period_gives_the_same_envelope_through_the_cli_and_the_api(local_store, config_for, capsys):
    _fill(local_store)
    config = config_for(local_store, sections={"api": {"token": TOKEN}})
    direct = envelope(aggregate(config, "hourly", "2025122909", now=NOW), "hourly")
    assert main(["aggregate", "--store", local_store.url, "--mode", "hourly", "--period", "2025122909",
                 "--now", NOW.isoformat()]) == 0
    by_cli = json.loads(capsys.readouterr().out)
    status, by_api, _ = handle(api_context(config, env={}, now=NOW), "POST", "/api/aggregate",
                               {"mode": "hourly", "period": "2025122909"}, {"Authorization": f"token {TOKEN}"})
    assert status == 200
    assert list(by_cli) == list(by_api) == list(direct) == ["message", "mode", "result"]
    assert list(by_cli["result"]) == list(by_api["result"]) == list(direct["result"])
    assert _same(by_cli) == _same(by_api) == _same(direct)
    assert by_cli["result"]["records_aggregated"] == 2


@pytest.mark.slow
def test_run_due_gives_the_same_envelope_through_the_cli_and_its_notebook(local_store, config_for, tmp_path,
                                                                          capsys):
    _fill(local_store)
    copies = [LocalStore(shutil.copytree(local_store.root, tmp_path / f"copy{i}")) for i in range(2)]
    now = datetime(2025, 12, 30, 7, tzinfo=IST)
    report = run_due(config_for(local_store), now)
    direct = envelope(report, "run-due", plan=report.plan)
    assert main(["scheduler", "run-due", "--json", "--store", copies[0].url, "--now", now.isoformat()]) == 0
    by_cli = json.loads(capsys.readouterr().out)
    via = run_due_command(config_for(copies[1]), now, via_notebook=True)
    assert via.pop("run")["status"] == "ok"
    assert direct["result"]["plan"] and list(by_cli["result"])[-1] == "plan"
    assert _same(by_cli) == _same(via) == _same(direct)
    assert direct["result"]["by_tier"] == {"hourly": 21, "daily": 1}


@pytest.mark.slow
def test_aggregate_via_its_notebook_answers_like_the_api(local_store, config_for):
    _fill(local_store)
    config = config_for(local_store, sections={"api": {"token": TOKEN}})
    via = aggregate_command(config, "daily", "2025-12-29", via_notebook=True, now=NOW)
    assert via.pop("run")["status"] == "ok"
    status, by_api, _ = handle(api_context(config, env={}, now=NOW), "POST", "/api/aggregate",
                               {"mode": "daily", "period": "2025-12-29"}, {"Authorization": f"token {TOKEN}"})
    assert status == 200 and list(via["result"]) == list(by_api["result"])
    assert _same(via) == _same(by_api)
