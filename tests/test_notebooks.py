"""Every notebook in notebooks/ runs under papermill, and as saved under nbval, against a store
this test builds.

The store is the demo's history (three hosts, 35 days to 3 January 2026, written through the
collector's writer and rolled up by ``run_due``). The analysis notebooks' conclusions are
checked against plain means and shares computed here from the generated records themselves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from speedlab.config import load_config
from speedlab.demo import DEMO_HOSTS, demo_config_text, fill_store, generate, prepare_folder
from speedlab.periods import slot_of
from speedlab.rollup import run_due

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
IST = ZoneInfo("Asia/Kolkata")
NOW = datetime(2026, 1, 3, 10, 0, tzinfo=IST)
START = NOW - timedelta(days=35)
SEED = 7


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    root = prepare_folder(tmp_path_factory.mktemp("notebooks") / "demo")
    toml = root / "speedlab.toml"
    toml.write_text(demo_config_text(root), encoding="utf-8")
    config = load_config(toml, env={})
    records = generate(SEED, START, NOW, config.timezone)
    written = fill_store(config, root, SEED, START, NOW)
    assert (written.stored, written.rejected, written.failed) == (len(records), [], [])
    run_due(config, NOW)
    return config, toml, records


def execute(name: str, tmp_path: Path, **parameters) -> dict:
    import papermill

    out = tmp_path / f"{name}.out.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=parameters,
                               progress_bar=False, cwd=str(tmp_path), kernel_name="python3")
    return json.loads(out.read_text(encoding="utf-8"))


def answer(name: str, tmp_path: Path, demo_store, **parameters) -> tuple[str, dict]:
    """Run an analysis notebook on the demo store; its one Markdown answer and the notebook."""
    config, toml, _ = demo_store
    book = execute(name, tmp_path, store=str(config.store), config_path=str(toml), now=NOW.isoformat(),
                   **parameters)
    (text,) = outputs(book, "text/markdown")
    assert outputs(book, "image/svg+xml")                                 # the chart was drawn
    return text, book


def outputs(notebook: dict, mime: str) -> list[str]:
    found = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if mime in data:
                value = data[mime]
                found.append("".join(value) if isinstance(value, list) else value)
    return found


def mean(values):
    values = list(values)
    return sum(values) / len(values)


def test_every_notebook_is_covered():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(
        ["dashboard", "laggy", "long_term", "plan_delivery", "slower_this_month", "time_of_day"])


def test_slower_this_month(demo_store, tmp_path):
    records = demo_store[2]
    text, _ = answer("slower_this_month", tmp_path, demo_store, host="backup-location")
    ok = [r for r in records if r.host_id == "backup-location" and r.ok]
    # this month so far: the daily summaries of 1 and 2 January and today live up to NOW (partial)
    jan = mean(r.download_mbps for r in ok if r.slot_start < NOW and r.slot_start.astimezone(IST).month == 1)
    dec = mean(r.download_mbps for r in ok if r.slot_start.astimezone(IST).month == 12)
    assert text.startswith("Yes: slower this month for backup-location.")   # the line was downgraded
    assert f"is {jan:.1f} Mbit/s" in text and f"against {dec:.1f} Mbit/s in 2025-12" in text


def test_time_of_day(demo_store, tmp_path):
    text, _ = answer("time_of_day", tmp_path, demo_store, host="home-primary", days=28)
    match = re.search(r"worst around (\d\d):00", text)
    assert match and 19 <= int(match.group(1)) <= 22                     # the evening slowdown
    assert re.search(r"Evenings \(19:00-23:00\) average [\d.]+ Mbit/s, \d+ % below", text)


def test_long_term(demo_store, tmp_path):
    records = demo_store[2]
    text, _ = answer("long_term", tmp_path, demo_store, host="all", years=5)
    ok_2025 = [r for r in records if r.ok and r.slot_start.astimezone(IST).year == 2025]
    assert f"2025: {mean(r.download_mbps for r in ok_2025):.1f} Mbit/s ({len(ok_2025)} tests)" in text
    assert "too short to call a long-term trend" in text                  # 2 months with data


def test_plan_delivery(demo_store, tmp_path):
    records = demo_store[2]
    text, _ = answer("plan_delivery", tmp_path, demo_store, host="all", days=28)
    last_slot = slot_of(NOW, IST)
    window = [r for r in records if last_slot - timedelta(days=28) < r.slot_start <= last_slot]
    for host in DEMO_HOSTS:
        tests = [r for r in window if r.host_id == host.host_id and r.ok]
        below = [r for r in tests if r.download_mbps < 0.8 * host.plan_download_mbps
                 or r.upload_mbps < 0.8 * host.plan_upload_mbps]
        line = next(row for row in text.splitlines() if row.startswith(f"- {host.host_id}: "))
        assert f"{100 * len(below) / len(tests):.1f} % of {len(tests)} tests" in line, line
    assert "- office-main: yes." in text
    assert "- backup-location: no." in text
    assert "Wi-Fi" in next(row for row in text.splitlines() if row.startswith("- home-primary"))


def test_laggy(demo_store, tmp_path):
    """Each host's hours of day by loaded latency, checked against means of the records themselves."""
    records = demo_store[2]
    text, _ = answer("laggy", tmp_path, demo_store, host="all", days=7)
    first_hour = NOW - timedelta(days=7) + timedelta(hours=1)    # the 7 x 24 hourly periods up to NOW's hour
    window = [r for r in records if first_hour <= r.slot_start < NOW]
    lines = {line.split()[1]: line for line in text.splitlines() if line.startswith("- ")}
    assert sorted(lines) == sorted(h.host_id for h in DEMO_HOSTS)
    assert text.endswith("Hours are local time in Asia/Kolkata.")
    for host in DEMO_HOSTS:
        mine = [r for r in window if r.host_id == host.host_id]
        by_hour: dict[int, list[float]] = {}
        for r in mine:
            by_hour.setdefault(r.slot_start.astimezone(IST).hour, []).extend(
                v for v in (r.latency_download_ms, r.latency_upload_ms) if v is not None)
        loaded = {hour: mean(values) for hour, values in by_hour.items() if values}
        assert len(loaded) == 24                                             # the demo probes every test
        worst = sorted(loaded, key=lambda hour: -loaded[hour])[:3]
        idle_at_worst = mean(r.latency_idle_ms for r in mine
                             if r.slot_start.astimezone(IST).hour == worst[0] and r.latency_idle_ms is not None)
        everything = [v for values in by_hour.values() for v in values]
        idle = mean(r.latency_idle_ms for r in mine if r.latency_idle_ms is not None)
        line = lines[host.host_id]
        named = re.search(r"laggiest around (\d\d):00, (\d\d):00 and (\d\d):00: ([\d.]+) ms under load at "
                          r"\d\d:00, [\d.]+x its idle ([\d.]+) ms", line)
        assert named, line
        assert [int(h) for h in named.groups()[:3]] == worst, (line, sorted(loaded.items()))
        assert float(named.group(4)) == pytest.approx(loaded[worst[0]], abs=0.051)
        assert float(named.group(5)) == pytest.approx(idle_at_worst, abs=0.051)
        overall = re.search(r"Over the last 7 days: ([\d.]+) ms under load against ([\d.]+) ms idle", line)
        assert float(overall.group(1)) == pytest.approx(mean(everything), abs=0.051)
        assert float(overall.group(2)) == pytest.approx(idle, abs=0.051)
        assert 19 <= worst[0] <= 22                                          # the demo's evening peak
    assert "not measured" not in text


def test_dashboard_notebook(demo_store, tmp_path):
    config, _toml, _records = demo_store
    book = execute("dashboard", tmp_path, store=str(config.store), now=NOW.isoformat())
    assert book["metadata"]["papermill"]["exception"] is None if "exception" in book["metadata"]["papermill"] else True
    assert outputs(book, "application/vnd.jupyter.widget-view+json")       # app.container


def _nbval(notebooks: list[Path], toml: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """``pytest --nbval-lax`` over copies of ``notebooks`` as saved (their own default parameters),
    with the configuration in ``$SPEEDLAB_CONFIG``, in a child pytest."""
    for book in notebooks:
        shutil.copy(book, tmp_path / book.name)
    env = {**os.environ, "SPEEDLAB_CONFIG": str(toml)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           "--rootdir", str(tmp_path), *(book.name for book in notebooks)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.long
def test_nbval_runs_every_notebook_as_saved_against_the_configured_store(demo_store, tmp_path):
    """nbval runs each notebook top to bottom in a fresh kernel with the parameters it is saved
    with (papermill above injects others), so a notebook that only works when parameters are
    injected fails here."""
    _config, toml, _ = demo_store
    books = sorted(NOTEBOOKS.glob("*.ipynb"))
    done = _nbval(books, toml, tmp_path)
    cells = sum(1 for book in books for cell in json.loads(book.read_text())["cells"]
                if cell["cell_type"] == "code")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(rf"\b{cells} passed\b", done.stdout), done.stdout[-1000:]


def test_nbval_fails_a_notebook_whose_store_is_missing(tmp_path):
    toml = tmp_path / "missing.toml"
    toml.write_text(f'store = "{tmp_path / "no-such-store"}"\n', encoding="utf-8")
    run = tmp_path / "run"
    run.mkdir()
    done = _nbval([NOTEBOOKS / "slower_this_month.ipynb"], toml, run)
    assert done.returncode == 1, done.stdout[-2000:]
    assert "no-such-store" in done.stdout and "failed" in done.stdout
