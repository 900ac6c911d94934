"""The real dashboard page: Voilà serving notebooks/dashboard.ipynb, driven in headless Chromium.

Served as ``speedlab dashboard`` serves it: a preheated kernel (pool of 1) that drew the default
view before the visit, the visit's URL parameters applied on arrival, a cache shared by the kernels.

The store (three hosts, 20 Oct 2025 to 10 Feb 2026) is written by ``dashboard_data`` with
summaries computed by plain Python; expected numbers come from the raw samples here, so the
page is checked against an independent computation. A screenshot is saved in
``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from speedlab.config import load_config
from speedlab.demo import demo_story, generate, write_records
from speedlab.serve import notebook_path, voila_command, voila_env
from speedlab.store import LocalStore
from tests.helpers.servers import CHROMIUM, CHROMIUM_ARGS, free_port, local_env, need_chromium, wait_for_http
from tests.helpers.synthetic import build_store, ist, period

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

NOW = ist(2026, 2, 10, 10, 20)          # a Tuesday
FIRST = ist(2025, 10, 20)
SKIP = ("20260201",)                    # no host has a result that day
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WAIT_MS = 90_000
MODES = ["minute", "hourly", "daily", "weekly", "monthly", "yearly"]   # the Mode menu's order


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Voilà on 127.0.0.1 over a freshly built store; yields (base URL, dataset)."""
    need_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    store = LocalStore(tmp / "store")
    store.root.mkdir()
    data = build_store(store, FIRST, NOW, raw_days=2, hourly_days=8, skip_days=SKIP)
    toml = tmp / "speedlab.toml"
    toml.write_text(f'store = "{store.root}"\nstate_dir = "{tmp / "state"}"\n'
                    "[plan]\ndownload_mbps = 200\nupload_mbps = 100\n"
                    '[plan.hosts.office-main]\ndownload_mbps = 500\nupload_mbps = 500\n'
                    "[dashboard]\nheatmap_days = 7\n", encoding="utf-8")
    with voila(load_config(toml, env={}), tmp) as base:
        yield base, data


@pytest.fixture(scope="module")
def served_demo(tmp_path_factory):
    """Voilà over ``speedlab demo`` records with latency (the 8 hours before NOW, raw only); yields
    (base URL, records)."""
    need_chromium()
    tmp = tmp_path_factory.mktemp("browser-demo")
    (tmp / "store").mkdir()
    toml = tmp / "speedlab.toml"
    toml.write_text(f'store = "{tmp / "store"}"\nstate_dir = "{tmp / "state"}"\n[dashboard]\nheatmap_days = 1\n',
                    encoding="utf-8")
    config = load_config(toml, env={})
    story = demo_story(NOW - timedelta(days=90), NOW, config.timezone)   # its outage and switched-off day long ago
    records = generate(7, NOW - timedelta(hours=8), NOW, config.timezone, story=story)
    assert write_records(config, records).stored == len(records)
    with voila(config, tmp) as base:
        yield base, records


@contextlib.contextmanager
def voila(config, tmp: Path):
    """``speedlab dashboard``'s Voilà (a preheated kernel, pool of 1) on a free 127.0.0.1 port; yields its URL."""
    port = free_port()
    (tmp / "cache").mkdir()
    log = open(tmp / "voila.log", "w")  # noqa: SIM115 - closed in the finally below, after the server
    process = subprocess.Popen(voila_command(notebook_path(), port, cull_idle_s=120, pool_size=1),
                               env=voila_env(config, now=NOW.isoformat(), base=local_env(), cache_dir=tmp / "cache"),
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/voila/static/favicon.ico", 60, process)
        yield f"http://127.0.0.1:{port}/"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def plain_mean(data, start, end, host):
    values = [s.download_mbps for s in data.results_in(start, end, None if host == "all" else host) if s.ok]
    return sum(values) / len(values) if values else None


class Page:
    """The dashboard page with the few moves a user makes."""

    def __init__(self, page):
        self.page = page
        self.generation = 0

    def wait_ready(self) -> None:
        self.page.wait_for_selector(f'.speedlab-status [data-state="ready"]'
                                    f'[data-generation="{self.generation}"]', timeout=WAIT_MS)

    def wait_arrived(self, describe: str) -> int:
        """Wait until the page shows ``describe`` ready; the load's generation (a preheated
        kernel drew the default view as generation 1, the visit's parameters are the next)."""
        self.page.wait_for_function(
            "d => { const s = document.querySelector('.speedlab-state');"
            " return s && s.dataset.state === 'ready' && s.textContent.replace(/\\u00a0/g, ' ').startsWith(d); }",
            arg=describe, timeout=WAIT_MS)
        self.generation = int(self.page.get_attribute(".speedlab-state", "data-generation"))
        return self.generation

    def choose(self, mode: str, period_index: int, host_index: int) -> None:
        p = self.page
        p.select_option(".speedlab-mode select", index=MODES.index(mode))
        unit = {"weekly": "week", "monthly": "month", "yearly": "year"}.get(mode, "day")
        p.wait_for_function(  # the Period menu follows the mode (a round trip to the kernel)
            "unit => [...document.querySelectorAll('.speedlab-period option')]"
            ".every(o => o.textContent.replace(/\\u00a0/g, ' ').match(' ' + unit))", arg=unit, timeout=WAIT_MS)
        p.select_option(".speedlab-period select", index=period_index)
        p.select_option(".speedlab-host select", index=host_index)
        self.generation += 1
        p.click(".speedlab-apply")
        self.wait_ready()

    def screenshot(self, name: str) -> None:
        self.page.wait_for_timeout(300)              # let the last SVG paint
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)

    def table(self) -> list[list[str]]:
        return self.page.eval_on_selector_all(
            ".speedlab-rows tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")

    def wait_for_label(self, label: str) -> None:
        self.page.wait_for_function(
            "t => [...document.querySelectorAll('.speedlab-chart-widget [aria-label]')]"
            ".some(e => e.getAttribute('aria-label') === t)", arg=label, timeout=WAIT_MS)

    def labels(self, widget: str = "chart") -> list[str]:
        return self.page.eval_on_selector_all(
            f".speedlab-{widget}-widget [aria-label]", "els => els.map(e => e.getAttribute('aria-label'))")


def check(page: Page, data, mode: str, host: str, periods: list[tuple[str, object]]) -> None:
    """The table lists ``periods`` (label text, Period) with plain means: a finished period's over
    all of it, the period in progress (``partial``, issue 14) over its results so far."""
    table = page.table()
    assert [row[0] for row in table] == [text for text, _ in periods], mode
    for row, (text, span) in zip(table, periods, strict=True):
        live = span.end > NOW
        mean = plain_mean(data, span.start, min(span.end, NOW), host)
        if mean is None:
            assert row[1] == "—" and row[-1] in ("missing", "pending"), (mode, text, row)
            assert f"Download {text}: " not in " ".join(page.labels()), (mode, text)
        else:
            assert row[1] == f"{mean:.2f}" and row[-1] == ("partial" if live else "ok"), (mode, text, row)
    shown = [(t, s) for t, s in periods if s.end <= NOW and plain_mean(data, s.start, s.end, host)]
    text, span = shown[-1]
    page.wait_for_label(f"Download {text}: {plain_mean(data, span.start, span.end, host):.2f} Mbit/s")
    page.screenshot(f"{mode}-{host}")
    labels = page.labels()
    for text, span in shown:
        assert f"Download {text}: {plain_mean(data, span.start, span.end, host):.2f} Mbit/s" in labels, (mode, text)


def test_every_mode_host_and_period_in_a_real_browser(served, browser):
    base, data = served
    page = Page(browser.new_page(viewport={"width": 1280, "height": 2000}))
    # URL parameters preselect the controls; the page shows up before the data
    page.page.goto(base + "?mode=weekly&days=8&host=office-main", wait_until="commit")
    page.page.wait_for_selector(".speedlab-status", timeout=WAIT_MS)
    page.wait_arrived("Weekly · Last 8 weeks · office-main:")
    weeks = [period("weekly", ist(2025, 12, 22) + timedelta(weeks=i)) for i in range(8)]
    check(page, data, "weekly", "office-main",
          [(f"{w.start:%Y-%m-%d} to {w.end - timedelta(days=1):%Y-%m-%d}", w)
           for w in weeks])
    assert "Download plan: 500 Mbit/s" in page.labels()

    # Scenario 1: "Is my internet slower this month?" Monthly, last 2 months
    page.choose("monthly", 0, 3)                     # Last 2 months, office-main
    january = period("monthly", ist(2026, 1, 1))
    check(page, data, "monthly", "office-main",
          [("2026-01-01 to 2026-01-31", january),
           ("2026-02-01 to 2026-02-28", period("monthly", ist(2026, 2, 1)))])

    # Scenario 2: "What time of day has best speeds?" Hourly, last 1 day, all hosts
    page.choose("hourly", 0, 0)
    hours = [period("hourly", ist(2026, 2, 9, 11) + timedelta(hours=i)) for i in range(24)]
    check(page, data, "hourly", "all",
          [(f"{h.start:%Y-%m-%d %H:%M} to {h.end:%H:%M}", h) for h in hours])
    heat = page.labels("heatmap")
    cells = [c for c in heat if c.endswith("Mbit/s")]
    # 7 x 24 hours back from now: every hour of every weekday but this (unfinished) hour
    assert len(cells) == 7 * 24 - 1 and not any(c.startswith("Tue 10:00") for c in cells)

    # Scenario 3: "Long-term performance over 5 years", home-primary
    page.choose("yearly", 3, 2)
    check(page, data, "yearly", "home-primary",
          [(f"{y}-01-01 to {y}-12-31", period("yearly", ist(y, 6, 1))) for y in range(2022, 2027)])
    assert [row[-1] for row in page.table()] == ["missing", "missing", "missing", "ok", "partial"]
    assert "2022-01-01 to 2022-12-31: no data" in page.labels()

    # 15-minute results of one host, last day
    page.choose("minute", 0, 1)                      # backup-location
    table = page.table()
    assert len(table) == 96 and table[-1][-1] == "pending"
    slot = ist(2026, 2, 10, 9, 45)
    sample = next(iter(data.results_in(slot, slot + timedelta(minutes=15), "backup-location")))
    row = next(r for r in table if r[0] == "2026-02-10 09:45")
    assert row[1] == f"{sample.download_mbps:.2f}"
    page.wait_for_label(f"Download 2026-02-10 09:45: {sample.download_mbps:.2f} Mbit/s")
    page.screenshot("minute-backup-location")

    # Daily, last 14 days, all hosts: the day nobody measured is a gap, not a zero
    page.choose("daily", 1, 0)
    days = [period("daily", ist(2026, 1, 28) + timedelta(days=i)) for i in range(14)]
    check(page, data, "daily", "all", [(f"{d.start:%Y-%m-%d}", d) for d in days])
    assert "2026-02-01: no data" in page.labels()
    assert next(r for r in page.table() if r[0] == "2026-02-01")[-1] == "missing"

    # Weekly again, another period and host
    page.choose("weekly", 0, 2)                      # Last 4 weeks, home-primary
    weeks = [period("weekly", ist(2026, 1, 19) + timedelta(weeks=i)) for i in range(4)]
    check(page, data, "weekly", "home-primary",
          [(f"{w.start:%Y-%m-%d} to {w.end - timedelta(days=1):%Y-%m-%d}", w)
           for w in weeks])
    headline = page.page.inner_text(".speedlab-headline")
    assert "Periods below plan" in headline and "4 of 4" in headline   # ~140 < 0.8 x 200; this week so far counts

    page.screenshot("browser")
    page.page.close()


def test_invalid_url_values_show_a_note_in_the_page(served, browser):
    base, _ = served
    page = browser.new_page()
    page.goto(base + "?mode=fortnightly&days=abc", wait_until="commit")
    note = page.wait_for_selector(".speedlab-note div", timeout=WAIT_MS)
    text = note.text_content().replace("\u00a0", " ")
    assert "mode='fortnightly' is not a mode" in text
    assert page.locator(".speedlab-mode select").input_value() == "Daily"
    page.close()


def test_a_visit_gets_a_preheated_page_with_its_url_parameters_applied_after_arrival(served, browser):
    base, data = served
    page = Page(browser.new_page(viewport={"width": 1280, "height": 2000}))
    page.page.goto(base + "?mode=weekly&days=12&host=office-main", wait_until="commit")
    # the preheated kernel drew the default view (generation 1) before anyone came; the URL is the next load
    assert page.wait_arrived("Weekly · Last 12 weeks · office-main:") == 2
    p = page.page
    def chosen(name: str) -> str:
        return p.eval_on_selector(f".speedlab-{name} select",
                                  "s => s.options[s.selectedIndex].textContent").replace("\u00a0", " ")
    assert (chosen("mode"), chosen("period"), chosen("host")) == ("Weekly", "Last 12 weeks", "office-main")
    weeks = [period("weekly", ist(2025, 11, 24) + timedelta(weeks=i)) for i in range(12)]
    check(page, data, "weekly", "office-main",
          [(f"{w.start:%Y-%m-%d} to {w.end - timedelta(days=1):%Y-%m-%d}", w)
           for w in weeks])
    page.page.close()


def test_two_visits_in_a_row_both_draw(served, browser):
    base, _ = served
    first, second = (Page(browser.new_page()) for _ in range(2))
    first.page.goto(base, wait_until="commit")
    second.page.goto(base + "?mode=monthly&days=2", wait_until="commit")   # the pool is empty now
    first.wait_arrived("Daily · Last 7 days · All hosts:")
    second.wait_arrived("Monthly · Last 2 months · All hosts:")
    for page, rows in ((first, 7), (second, 2)):
        page.page.wait_for_selector(".speedlab-chart-widget svg", timeout=WAIT_MS)
        assert len(page.table()) == rows
        page.page.close()


def test_demo_latency_shows_the_latency_panel_and_the_rpm_grade(served_demo, browser):
    base, records = served_demo
    page = Page(browser.new_page(viewport={"width": 1280, "height": 2200}))
    page.page.goto(base + "?mode=minute&days=1&host=home-primary", wait_until="commit")
    page.wait_arrived("15-min · Last 1 day · home-primary:")
    ok = [r for r in records if r.host_id == "home-primary" and r.ok and r.slot_start + timedelta(minutes=15) <= NOW]
    last = max(ok, key=lambda r: r.slot_start)
    slot = f"{last.slot_start.astimezone(NOW.tzinfo):%Y-%m-%d %H:%M}"
    page.wait_for_label(f"Latency during upload {slot}: {last.latency_upload_ms:.2f} ms")
    labels = page.labels()
    for r in ok:   # every finished slot's idle and loaded round trips are points of the latency panel
        when = f"{r.slot_start.astimezone(NOW.tzinfo):%Y-%m-%d %H:%M}"
        assert f"Idle latency {when}: {r.latency_idle_ms:.2f} ms" in labels, when
        assert f"Latency during download {when}: {r.latency_download_ms:.2f} ms" in labels, when
    measured = [r for r in records if r.host_id == "home-primary" and r.ok]   # the slot in progress counts too
    down = sum(r.latency_download_ms for r in measured) / len(measured)
    up = sum(r.latency_upload_ms for r in measured) / len(measured)
    rpm = 60_000 / ((down + up) / 2)
    grade = "High" if rpm >= 1000 else "Medium" if rpm >= 200 else "Low"
    card = page.page.inner_text('.speedlab-headline [data-stat="rpm"]').replace("\u00a0", " ")
    assert f"{grade} · {rpm:.0f} RPM" in card and "while someone downloads" in card
    assert "not measured" in page.page.inner_text('.speedlab-headline [data-stat="packet_loss"]')
    page.screenshot("latency-home-primary")
    page.page.close()
