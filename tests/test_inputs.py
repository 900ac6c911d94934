"""speedlab.inputs and the backfill that keeps periods whose inputs are unchanged: each digest
moves with every input it names and with nothing else; a second backfill computes nothing and
leaves every byte; one changed raw result rolls up exactly its day, the day its anomaly window
reaches and the periods above, after which a full recompute finds nothing to change; a deleted
summary, a settings change, a rebuilt table and bad objects all lead to rolling up again."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from speedlab import inputs as inp, layout
from speedlab.cli import main
from speedlab.config import Plan
from speedlab.periods import parse_period
from speedlab.rollup import backfill
from speedlab.settings import AggregateSettings
from speedlab.storebase import ObjectInfo
from speedlab.tables import INPUTS, SOURCE_KEY, SOURCE_VERSION, SUMMARY_TABLE, with_inputs
from speedlab.tables_io import check, rebuild
from tests.helpers.data import IST, B, put, result, series

NOW = datetime(2026, 1, 20, tzinfo=IST)
T0 = datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)
SHA = "a" * 64


# ---------------------------------------------------------------- the digests (pure)

def _info(key="k1", version="v1", size=10, modified=T0) -> ObjectInfo:
    return ObjectInfo(key, size, modified, version)


def test_hours_inputs_move_with_each_listed_field_and_window_summary_and_nothing_else():
    window = {"home": [SHA, inp.ABSENT], "office": [SHA, SHA]}
    base = inp.hours_inputs("base", ["2026010110"], [_info(), _info("k2")], window)
    assert base == inp.hours_inputs("base", ["2026010110"], [_info("k2"), _info()], dict(reversed(window.items())))
    variants = [
        inp.hours_inputs("other", ["2026010110"], [_info(), _info("k2")], window),
        inp.hours_inputs("base", ["2026010111"], [_info(), _info("k2")], window),
        inp.hours_inputs("base", ["2026010110"], [_info(), _info("k3")], window),
        inp.hours_inputs("base", ["2026010110"], [_info(version="v2"), _info("k2")], window),
        inp.hours_inputs("base", ["2026010110"], [_info(size=11), _info("k2")], window),
        inp.hours_inputs("base", ["2026010110"], [_info(modified=T0 + timedelta(seconds=1)), _info("k2")], window),
        inp.hours_inputs("base", ["2026010110"], [_info()], window),
        inp.hours_inputs("base", ["2026010110"], [_info(), _info("k2")], {**window, "home": [SHA, SHA]}),
        inp.hours_inputs("base", ["2026010110"], [_info(), _info("k2")], {**window, "home": [inp.ABSENT, SHA]}),
    ]
    assert None not in variants and len({base, *variants}) == len(variants) + 1
    assert inp.hours_inputs("base", ["2026010110"], [_info(version=None)], window) is None  # not known exactly
    assert inp.hours_inputs("base", ["2026010110"], [_info()], {"home": [SHA, None]}) is None


def test_period_inputs_move_with_children_and_are_unknown_for_an_unsettled_child():
    shas = {None: SHA, "home": "b" * 64}
    base = inp.period_inputs("base", "daily", "20260101", [("2026010100", T0, shas), ("2026010101", None, None)])
    assert base is not None and len(base) == 64
    variants = [
        inp.period_inputs("base", "daily", "20260102", [("2026010100", T0, shas), ("2026010101", None, None)]),
        inp.period_inputs("base", "daily", "20260101", [("2026010100", T0 + timedelta(seconds=1), shas),
                                                        ("2026010101", None, None)]),
        inp.period_inputs("base", "daily", "20260101", [("2026010100", T0, {**shas, "home": SHA}),
                                                        ("2026010101", None, None)]),
        inp.period_inputs("base", "daily", "20260101", [("2026010100", T0, {None: SHA}), ("2026010101", None, None)]),
        inp.period_inputs("base", "daily", "20260101", [("2026010100", T0, shas), ("2026010101", T0, shas)]),
    ]
    assert None not in variants and len({base, *variants}) == len(variants) + 1
    assert inp.period_inputs("base", "daily", "20260101", [("2026010100", T0, None)]) is None
    assert inp.period_inputs("base", "daily", "20260101", [("2026010100", T0, {"home": SHA})]) is None


@dataclasses.dataclass
class _Config:
    timezone: str = "Asia/Kolkata"
    plan: Plan = dataclasses.field(default_factory=Plan)
    host_plans: dict = dataclasses.field(default_factory=dict)
    below_expected_fraction: float = 0.8


def test_base_inputs_name_what_shapes_figures_and_not_how_a_run_goes(monkeypatch):
    settings = AggregateSettings()
    base = inp.base_inputs(_Config(), settings, ["b", "a"])
    assert base == inp.base_inputs(_Config(), settings, ["a", "b"])
    assert base == inp.base_inputs(_Config(), dataclasses.replace(settings, max_workers=1), ["a", "b"])
    variants = [
        inp.base_inputs(_Config(timezone="UTC"), settings, ["a", "b"]),
        inp.base_inputs(_Config(plan=Plan(100.0)), settings, ["a", "b"]),
        inp.base_inputs(_Config(host_plans={"a": Plan(50.0)}), settings, ["a", "b"]),
        inp.base_inputs(_Config(below_expected_fraction=0.5), settings, ["a", "b"]),
        inp.base_inputs(_Config(), dataclasses.replace(settings, sketch_alpha=0.02), ["a", "b"]),
        inp.base_inputs(_Config(), dataclasses.replace(settings, anomaly_window_hours=12), ["a", "b"]),
        inp.base_inputs(_Config(), settings, ["a", "b", "c"]),
    ]
    monkeypatch.setattr(inp, "REVISION", inp.REVISION + 1)
    variants.append(inp.base_inputs(_Config(), settings, ["a", "b"]))
    monkeypatch.setattr(inp, "__version__", "9.9.9")
    variants.append(inp.base_inputs(_Config(), settings, ["a", "b"]))
    assert len({base, *variants}) == len(variants) + 1


def test_all_hosts_inputs_read_back():
    assert inp.split_all_hosts_inputs(inp.all_hosts_inputs(SHA, 3)) == (SHA, 3)
    for bad in (None, "", SHA, f"{SHA}:x", "short:3", f"{SHA}:-1"):
        assert inp.split_all_hosts_inputs(bad) is None


def test_a_row_takes_inputs_only_at_the_version_named():
    rows = [SUMMARY_TABLE.encode_row({"tier": "daily"}, source_key=k, source_version="v1", host="all", label="x")
            for k in ("a", "b", "c")]
    frame = SUMMARY_TABLE.frame(rows)
    new = {"d": SUMMARY_TABLE.encode_row({"tier": "daily"}, source_key="d", source_version="v5", host="all",
                                         label="x")}
    wanted = {"a": ("v1", "F1"), "b": ("v2", "F2"), "c": ("v1", "F3"), "d": ("v5", "F4")}
    out, changed = with_inputs(frame, new, {"c"}, wanted)
    assert changed == 1 and new["d"][INPUTS] == "F4"                 # b: another version; c: rewritten
    assert dict(out.select(SOURCE_KEY, INPUTS).iter_rows()) == {"a": "F1", "b": None, "c": None}
    again, changed = with_inputs(out, {}, {"c"}, wanted)
    assert changed == 0 and again.equals(out)                        # already so: no write
    assert out[SOURCE_VERSION].to_list() == ["v1"] * 3 and out.schema == frame.schema
    assert isinstance(out, pl.DataFrame)


# ---------------------------------------------------------------- the backfill

FIRST, LAST = "2025-12-29", "2025-12-31"


def three_days(store) -> None:
    for n, host in enumerate(("home-primary", "office-main")):
        for record in series(host, datetime(2025, 12, 29, tzinfo=IST) + timedelta(minutes=5 * n), 96,
                             every=timedelta(minutes=45)):
            put(store, record)


def summary_bytes(store) -> dict[str, bytes]:
    return {info.key: store.get(B.for_tier(tier), info.key)
            for tier in ("hourly", "daily", "weekly", "monthly", "yearly")
            for info in store.list(B.for_tier(tier), "aggregated/")}


def rolled_up(report) -> list[tuple[str, str]]:
    return [(i["tier"], i["period"]) for i in report.items if not i.get("inputs_unchanged")]


def test_a_second_backfill_computes_nothing_and_changes_no_byte(store, config_for):
    three_days(store)
    config = config_for(store)
    first = backfill(config, FIRST, LAST, progress=False, now=NOW)
    assert first.inputs_unchanged == 0 and first.periods == 72 + 3 and first.tables_errors == []
    before = summary_bytes(store)
    again = backfill(config, FIRST, LAST, progress=False, now=NOW)
    assert again.inputs_unchanged == again.periods == first.periods and rolled_up(again) == []
    assert again.results_read == 0 and "put" not in again.requests and again.summaries == {}
    assert [(i["period"], i["records"], i["hosts"]) for i in again.items] == \
        [(i["period"], i["records"], i["hosts"]) for i in first.items]
    assert summary_bytes(store) == before and check(store, B).ok
    assert again.to_text().startswith("75 period(s) rolled up (hourly 72, daily 3), 75 kept as stored "
                                      "(inputs unchanged)")


def test_recompute_computes_every_period_changes_nothing_and_records_the_digests(local_store, config_for):
    three_days(local_store)
    config = config_for(local_store)
    first = backfill(config, FIRST, LAST, progress=False, now=NOW)
    before = summary_bytes(local_store)
    computed = backfill(config, FIRST, LAST, progress=False, now=NOW, recompute=True)  # every period computed
    assert computed.inputs_unchanged == 0 and computed.results_read == first.results_read
    assert summary_bytes(local_store) == before and check(local_store, B).ok
    rebuild(local_store, B)                              # forgets every row's inputs; a recompute records them
    backfill(config, FIRST, LAST, progress=False, now=NOW, recompute=True)
    assert backfill(config, FIRST, LAST, progress=False, now=NOW).inputs_unchanged == first.periods


def test_one_changed_result_rolls_up_its_day_the_next_and_the_periods_above(local_store, config_for):
    three_days(local_store)
    config = config_for(local_store)
    backfill(config, FIRST, LAST, progress=False, now=NOW)
    key = put(local_store, result("home-primary", "2025-12-29 10:31", 5.0))   # was 100-ish
    assert key.endswith("hour=2025122910/minute=30/test.json")
    report = backfill(config, FIRST, LAST, progress=False, now=NOW)
    done = rolled_up(report)
    day1 = [("hourly", f"20251229{h:02}") for h in range(24)]
    day2 = [("hourly", f"20251230{h:02}") for h in range(24)]
    assert set(day1) <= set(done) <= set(day1 + day2 + [("daily", "20251229"), ("daily", "20251230")])
    assert ("daily", "20251229") in done and ("daily", "20251231") not in done
    assert not any(tier == "hourly" and label.startswith("20251231") for tier, label in done)
    changed = json.loads(local_store.get(B.hourly, layout.summary_key(parse_period("hourly", "2025122910", IST),
                                                                        "home-primary")))
    assert changed["min_download"] == 5.0
    # the oracle: rolling every period up again from its inputs changes nothing more
    before = summary_bytes(local_store)
    computed = backfill(config, FIRST, LAST, progress=False, now=NOW, recompute=True)
    assert computed.inputs_unchanged == 0 and summary_bytes(local_store) == before
    assert backfill(config, FIRST, LAST, progress=False, now=NOW).inputs_unchanged == computed.periods


def test_a_deleted_summary_is_rolled_up_again(local_store, config_for):
    three_days(local_store)
    config = config_for(local_store)
    backfill(config, FIRST, LAST, progress=False, now=NOW)
    hour = parse_period("hourly", "2025123005", IST)
    gone = layout.summary_key(hour, "office-main")
    held = json.loads(local_store.get(B.hourly, gone))
    local_store.delete(B.hourly, gone)
    report = backfill(config, FIRST, LAST, progress=False, now=NOW)
    assert ("hourly", "2025123005") in rolled_up(report) and ("hourly", "2025122905") not in rolled_up(report)
    back = json.loads(local_store.get(B.hourly, gone))
    assert {k: v for k, v in back.items() if k != "generated_at"} == \
        {k: v for k, v in held.items() if k != "generated_at"}


def test_settings_that_shape_figures_roll_everything_up_and_others_do_not(local_store, config_for):
    three_days(local_store)
    config = config_for(local_store)
    backfill(config, FIRST, LAST, progress=False, now=NOW)
    busy = config.with_overrides(sections={"aggregate": {"max_workers": 2}})
    assert rolled_up(backfill(busy, FIRST, LAST, progress=False, now=NOW)) == []
    planned = config.with_overrides(plan=Plan(download_mbps=200.0))
    report = backfill(planned, FIRST, LAST, progress=False, now=NOW)
    assert report.inputs_unchanged == 0 and report.requests.get("put", 0) > 0
    daily = json.loads(local_store.get(B.daily, layout.summary_key(parse_period("daily", "20251230", IST), None)))
    assert daily["expected_download_mbps"] == 200.0


def test_hours_with_bad_objects_are_rolled_up_and_reported_every_time(local_store, config_for):
    three_days(local_store)
    bad = "host=office-main/year=2025/month=202512/day=20251230/hour=2025123012/minute=15/test.json"
    local_store.put(B.raw, bad, b'{"host_id": "office-main", "download_mbps": ')
    config = config_for(local_store)
    backfill(config, FIRST, LAST, progress=False, now=NOW)
    again = backfill(config, FIRST, LAST, progress=False, now=NOW)
    assert [k for k, _ in again.rejected] == [bad]
    assert {label for tier, label in rolled_up(again) if tier == "hourly"} == {f"20251230{h:02}" for h in range(24)}
    assert ("daily", "20251229") not in rolled_up(again)


def test_a_rebuilt_table_forgets_inputs_and_the_next_backfill_records_them(local_store, config_for):
    three_days(local_store)
    config = config_for(local_store)
    backfill(config, FIRST, LAST, progress=False, now=NOW)
    before = summary_bytes(local_store)
    rebuild(local_store, B)                                      # rows from the objects: no inputs
    relearn = backfill(config, FIRST, LAST, progress=False, now=NOW)
    assert relearn.inputs_unchanged == 0 and summary_bytes(local_store) == before   # computed, nothing written
    assert relearn.tables.partitions_written and check(local_store, B).ok
    assert rolled_up(backfill(config, FIRST, LAST, progress=False, now=NOW)) == []


def test_cli_backfill_recompute(local_store, config_for, capsys):
    three_days(local_store)
    root = str(local_store.root)
    argv = ["aggregate", "--store", root, "--backfill", FIRST, LAST, "--no-progress", "--now", NOW.isoformat()]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["result"]["inputs_unchanged"] == 0
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["result"]["inputs_unchanged"] == 75
    assert main([*argv, "--recompute"]) == 0
    assert json.loads(capsys.readouterr().out)["result"]["inputs_unchanged"] == 0
    with pytest.raises(SystemExit):
        main(["aggregate", "--help"])
    assert "--recompute" in capsys.readouterr().out
