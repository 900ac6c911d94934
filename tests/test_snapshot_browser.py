"""The dashboard snapshot in the real page: Voilà serving notebooks/dashboard.ipynb with a preheated
kernel (as ``speedlab dashboard`` does), read raw and driven in headless Chromium.

The preheated kernel's drawn default view (Daily, last 7 days, all hosts) is in the page's HTML
itself, so it shows with JavaScript switched off; with JavaScript it gives way to the live widgets
once their chart draws; a visit whose URL selects something never shows it. Expected numbers are
plain means of the raw samples the store was built from (tests/helpers/synthetic.py).
"""

from __future__ import annotations

import time
import urllib.request
from datetime import timedelta

import pytest

from speedlab.config import load_config
from speedlab.store import LocalStore
from tests import test_dashboard_browser as dashboard_browser
from tests.helpers.servers import need_chromium
from tests.helpers.synthetic import build_store, ist, period
from tests.test_dashboard_browser import NOW, WAIT_MS, plain_mean, voila

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

TABLE = "tbody tr"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    need_chromium()
    tmp = tmp_path_factory.mktemp("snapshot-browser")
    store = LocalStore(tmp / "store")
    store.root.mkdir()
    data = build_store(store, NOW - timedelta(days=12), NOW, raw_days=1, hourly_days=2)
    toml = tmp / "speedlab.toml"
    toml.write_text(f'store = "{store.root}"\nstate_dir = "{tmp / "state"}"\n[plan]\ndownload_mbps = 200\n'
                    "upload_mbps = 100\n[dashboard]\nheatmap_days = 3\n", encoding="utf-8")
    with voila(load_config(toml, env={}), tmp) as base:
        # Voilà serves a visit from its pool only once the pool's first kernel has started (before
        # that it starts a kernel for the visit, which has drawn nothing in advance): wait until
        # that kernel's dashboard has opened (its job log says so)
        log, deadline = tmp / "state" / "logs" / "dashboard.jsonl", time.monotonic() + WAIT_MS / 1000
        while not (log.is_file() and "dashboard opened" in log.read_text(encoding="utf-8")):
            assert time.monotonic() < deadline, "the preheated kernel never opened the dashboard"
            time.sleep(0.2)
        yield base, data


browser = dashboard_browser.browser   # headless Chromium for this module's server (its ``served``)


def expected_rows(data) -> list[tuple[str, str]]:
    """The default view's (day, download mean) from the raw samples: the last 7 days to NOW."""
    days = [period("daily", ist(NOW.year, NOW.month, NOW.day) - timedelta(days=n)) for n in range(6, -1, -1)]
    return [(f"{d.start:%Y-%m-%d}", f"{plain_mean(data, d.start, min(d.end, NOW), 'all'):.2f}") for d in days]


def cells(page, table: str) -> list[tuple[str, str]]:
    return [tuple(row[:2]) for row in page.eval_on_selector_all(
        f"{table} {TABLE}", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")]


def test_the_drawn_default_view_is_in_the_pages_html_before_voilas_script(served):
    base, data = served
    with urllib.request.urlopen(base, timeout=WAIT_MS / 1000) as answer:
        page = answer.read().decode()
    start = page.index('<div class="speedlab-snapshot">')
    assert start < page.index("voila.js")                  # parsed before Voilà's JavaScript loads
    snapshot = page[start:]
    assert "Daily · Last 7 days · All hosts: drawn at" in snapshot and "<svg" in snapshot
    for day, mean in expected_rows(data):
        assert f'data-period="{day.replace("-", "")}"' in snapshot
        assert f'<td data-col="download_avg">{mean}</td>' in snapshot


def test_without_javascript_the_page_shows_the_snapshot(served, browser):
    base, data = served
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 1600})
    page = context.new_page()
    page.goto(base, wait_until="domcontentloaded", timeout=WAIT_MS)
    assert page.is_visible(".speedlab-snapshot-chart svg")
    assert cells(page, ".speedlab-snapshot-rows") == expected_rows(data)
    assert page.query_selector(".speedlab-app") is None     # no widget without Voilà's JavaScript
    context.close()


def test_the_snapshot_gives_way_to_the_live_page_and_a_selecting_url_skips_it(served, browser):
    base, data = served
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.goto(base, wait_until="domcontentloaded", timeout=WAIT_MS)
    shown = cells(page, ".speedlab-snapshot-rows")
    assert shown == expected_rows(data) or not page.query_selector(".speedlab-snapshot")  # live page already drawn
    page.wait_for_selector(".speedlab-chart-widget svg", timeout=WAIT_MS)
    page.wait_for_selector(".speedlab-snapshot", state="detached", timeout=WAIT_MS)
    assert page.is_visible(".speedlab-app") and page.is_visible(".speedlab-chart-widget svg")
    assert cells(page, ".speedlab-rows") == expected_rows(data)   # the live table agrees with the snapshot
    page.close()

    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.route("**/voila.js", lambda route: route.abort())   # stop the page where the widgets would start
    page.goto(base + "?mode=weekly&days=4", wait_until="domcontentloaded", timeout=WAIT_MS)
    assert not page.is_visible(".speedlab-snapshot svg") and page.query_selector(".speedlab-snapshot") is None
    page.close()

    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.goto(base + "?mode=weekly&days=4", wait_until="domcontentloaded", timeout=WAIT_MS)
    assert page.query_selector(".speedlab-snapshot") is None   # removed while the page was parsed
    page.wait_for_function(
        "() => { const s = document.querySelector('.speedlab-state');"
        " return s && s.dataset.state === 'ready' && s.textContent.startsWith('Weekly'); }", timeout=WAIT_MS)
    assert page.is_visible(".speedlab-app")
    page.close()
