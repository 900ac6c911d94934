"""speedlab demo: the generator's story (pure), the demo folder, and the whole command.

``speedlab demo --no-serve`` runs in a fresh temporary folder with a four-day history ending
on 1 January 2026 (so the history crosses a week, a month and a year: every tier is written).
The demo served and drawn in Chromium is tests/test_bundled.py's (from the wheel) and
tests/test_readme.py's (the README's command on a clean clone).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from speedlab.config import load_config
from speedlab.demo import (
    DEMO_ENGINE,
    DEMO_HOSTS,
    MARKER,
    DemoError,
    demo_config_text,
    demo_story,
    generate,
    prepare_folder,
)
from speedlab.layout import parse_raw_key, summary_key
from speedlab.periods import parse_period
from speedlab.records import SpeedTestResult
from speedlab.store import LocalStore
from tests.helpers.servers import local_env

IST = ZoneInfo("Asia/Kolkata")
END = datetime(2026, 3, 15, 10, 20, tzinfo=IST)
START = END - timedelta(days=21)


@pytest.fixture(scope="module")
def history():
    return generate(11, START, END)


def local(record: SpeedTestResult) -> datetime:
    return record.slot_start.astimezone(IST)


def mean(values):
    values = list(values)
    return sum(values) / len(values)


# --------------------------------------------------------------------------- the generator (pure)

@pytest.mark.slow
def test_generate_is_a_function_of_seed_and_dates(history):
    again = generate(11, START, END)
    assert [r.to_json() for r in again] == [r.to_json() for r in history]
    other = generate(12, START, END)
    assert [r.download_mbps for r in other[:50]] != [r.download_mbps for r in history[:50]]
    # made in pieces (with the whole history's story) it is the same history
    story = demo_story(START, END)
    middle = START + timedelta(days=9, hours=5)
    pieces = generate(11, START, middle, story=story) + generate(11, middle, END, story=story)
    assert sorted(r.to_json() for r in pieces) == sorted(r.to_json() for r in history)


@pytest.mark.slow
def test_every_record_is_valid_labelled_demo_data_one_per_slot(history):
    for record in history:
        again = SpeedTestResult.from_json(record.to_json(), "demo")   # the schema's own validation
        assert again.engine == DEMO_ENGINE == "demo"
        assert again.engine_output["demo_data"] is True
        if again.ok:
            assert again.server.sponsor == "speedlab demo data"
            assert again.client.isp == "Demo ISP (demo data)"
    per_slot = Counter((r.host_id, r.slot) for r in history)
    assert max(per_slot.values()) == 1
    assert [r.slot_start for r in history] == sorted(r.slot_start for r in history)
    for record in history:                                            # tests start inside their slot
        assert timedelta(0) <= record.time_utc - record.slot_start < timedelta(minutes=15)
        assert START <= record.time_utc < END


def test_the_story_is_in_the_data(history):
    story = demo_story(START, END)
    by_host = {h.host_id: [r for r in history if r.host_id == h.host_id] for h in DEMO_HOSTS}
    slots = 21 * 96
    # the collector switched off for a day: office-main has exactly that day's 96 slots missing
    off = story.switched_off
    assert off[1] - off[0] == timedelta(days=1)
    assert not [r for r in by_host["office-main"] if off[0] <= local(r) < off[1]]
    assert abs(len(by_host["office-main"]) - (slots - 96)) <= 1
    assert abs(len(by_host["home-primary"]) - slots) <= 1
    # the ISP outage: seven hours of failed no_connectivity tests on home-primary
    outage = [r for r in by_host["home-primary"] if story.outage[0] <= local(r) < story.outage[1]]
    assert len(outage) == 28 and all(r.status == "failed" and r.error.kind == "no_connectivity" for r in outage)
    # Wi-Fi (home-primary) slower than Ethernet (office-main) on the same plan
    def day_mean(host):
        return mean(r.download_mbps for r in by_host[host] if r.ok and 10 <= local(r).hour < 17)
    assert day_mean("home-primary") < 0.85 * day_mean("office-main")
    assert {r.connection_type for r in by_host["home-primary"]} == {"Wi-Fi 5GHz", "Wi-Fi 2.4GHz"}
    assert {r.connection_type for r in by_host["office-main"]} == {"Ethernet"}
    # evening slowdown
    home = [r for r in by_host["home-primary"] if r.ok and r.connection_type == "Wi-Fi 5GHz"]
    evening = mean(r.download_mbps for r in home if 20 <= local(r).hour < 22)
    daytime = mean(r.download_mbps for r in home if 10 <= local(r).hour < 17)
    assert evening < 0.65 * daytime
    # the downgrade: backup-location delivers about 45 % of what it did before
    backup = [r for r in by_host["backup-location"] if r.ok]
    before = mean(r.download_mbps for r in backup if local(r) < story.downgrade_from)
    after = mean(r.download_mbps for r in backup if local(r) >= story.downgrade_from)
    assert 0.40 < after / before < 0.50
    assert story.describe()[0].startswith("home-primary: ISP outage ")


def test_demo_config_has_the_plans_and_says_demo_data(tmp_path):
    toml = tmp_path / "speedlab.toml"
    toml.write_text(demo_config_text(tmp_path / "my demo"), encoding="utf-8")
    config = load_config(toml, env={})
    assert config.store == str((tmp_path / "my demo").resolve())
    assert (config.plan_for("home-primary").download_mbps, config.plan_for("office-main").upload_mbps) == (300, 100)
    backup = config.plan_for("backup-location")
    assert (backup.download_mbps, backup.upload_mbps) == (100, 20)
    assert "demo data" in config.dashboard.title


def test_prepare_folder_never_touches_other_data(tmp_path):
    real = tmp_path / "speedlab-data"
    (real / "vd-speed-test").mkdir(parents=True)
    (real / "vd-speed-test" / "keep.json").write_text("{}")
    with pytest.raises(DemoError, match="not a speedlab demo folder"):
        prepare_folder(real)
    assert (real / "vd-speed-test" / "keep.json").read_text() == "{}"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DemoError, match="is a file"):
        prepare_folder(tmp_path / "file")
    # a previous demo folder is rebuilt: its demo data goes, the user's own notes stay
    demo = prepare_folder(tmp_path / "demo")
    assert (demo / MARKER).is_file()
    (demo / "vd-speed-test" / "host=x").mkdir(parents=True)
    (demo / "notes.txt").write_text("mine")
    prepare_folder(demo)
    assert not (demo / "vd-speed-test").exists() and (demo / "notes.txt").read_text() == "mine"


# --------------------------------------------------------------------------- the command

DEMO_NOW = "2026-01-01T10:00:00+05:30"
EXPECTED = {  # tier -> labels written (the complete periods, by run_due)
    "hourly": ["2025122810", "2026010108"], "daily": ["20251228", "20251231"],
    "weekly": ["2025W52"], "monthly": ["202512"], "yearly": ["2025"]}
IN_PROGRESS = {"daily": "20260101", "weekly": "2026W01", "monthly": "202601", "yearly": "2026"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fresh")
    result = subprocess.run([sys.executable, "-m", "speedlab.cli", "demo", "--no-serve", "--days", "4",
                             "--now", DEMO_NOW, "--seed", "5"], cwd=folder, env=local_env(),
                            capture_output=True, text=True, timeout=240)
    return folder, result


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_speedlab_demo_fills_and_rolls_up_every_tier(demo_run):
    folder, result = demo_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DEMO DATA" in result.stdout and "demo data ready in" in result.stdout
    root = folder / "speedlab-demo"                                  # the default, a separate store
    assert (root / MARKER).is_file() and not (folder / "speedlab-data").exists()
    config = load_config(root / "speedlab.toml", env={})
    store = LocalStore(root)
    end = datetime.fromisoformat(DEMO_NOW)
    records = generate(5, end - timedelta(days=4), end)
    raw = [parse_raw_key(info.key) for info in store.list(config.buckets.raw, "host=")]
    assert len(raw) == len(records)
    assert sorted((k.host_id, k.slot_local) for k in raw) == sorted(
        (r.host_id, r.slot_start.astimezone(IST).replace(tzinfo=None)) for r in records)
    for tier, labels in EXPECTED.items():
        for label in labels:
            period = parse_period(tier, label, IST)
            for host in (None, "home-primary", "backup-location"):
                data = json.loads(store.get(config.buckets.for_tier(tier), summary_key(period, host)))
                assert data["tier"] == tier and data["period"] == label
    year = json.loads(store.get(config.buckets.yearly, summary_key(parse_period("yearly", "2025", IST))))
    in_2025 = [r for r in records if r.slot_start.astimezone(IST).year == 2025]
    assert year["records_aggregated"] == sum(r.ok for r in in_2025)
    assert year["failed_tests"] == sum(not r.ok for r in in_2025)
    assert year["hosts"] == ["backup-location", "home-primary", "office-main"]
    for tier, label in IN_PROGRESS.items():  # no summary yet: the dashboard shows them so far
        assert not list(store.list(config.buckets.for_tier(tier), summary_key(parse_period(tier, label, IST))))
    runs = sorted(p.name for p in (root / "_speedlab" / "runs").iterdir())
    assert runs == ["demo-run-due"]                                  # the rollups ran through papermill
    assert list((root / "_speedlab" / "runs" / "demo-run-due").glob("*.ipynb"))
