"""The dashboard snapshot in the real page: Voilà serving notebooks/dashboard.ipynb with a preheated
kernel (as ``speedlab dashboard`` does), read raw and driven in headless Chromium.

The preheated kernel's snapshot of the visitor's view (the default Daily, last 7 days, all hosts;
or the view the URL selects, ``?mode=weekly&days=12&host=office-main``) is in the page's HTML
itself, ahead of Voilà's JavaScript and shown first, so it shows with JavaScript switched off;
with JavaScript it gives way to the live widgets once their chart draws. Expected numbers are
plain means of the raw samples the store was built from (tests/helpers/synthetic.py).
"""

from __future__ import annotations

import re
import time
import urllib.request
from datetime import timedelta

import pytest

from speedlab.config import load_config
from speedlab.store import LocalStore
from tests import test_dashboard_browser as dashboard_browser
from tests.helpers.servers import need_chromium
from tests.helpers.synthetic import build_store, period
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


def expected_rows(data, mode: str = "daily", host: str = "all") -> list[tuple[str, str]]:
    """A view's (period, download mean) from the raw samples: the default view (the last 7 days to
    NOW) or the last 12 weeks; the period in progress over its samples so far."""
    if mode == "daily":
        spans = [period("daily", NOW - timedelta(days=n)) for n in range(6, -1, -1)]
        label = "{:%Y-%m-%d}"
    else:
        spans = [period("weekly", NOW - timedelta(weeks=n)) for n in range(11, -1, -1)]
        label = "{:%Y-%m-%d} to {:%Y-%m-%d}"
    out = []
    for span in spans:
        mean = plain_mean(data, span.start, min(span.end, NOW), host)
        out.append((label.format(span.start, span.end - timedelta(days=1)), "—" if mean is None else f"{mean:.2f}"))
    return out


def raw_rows(html: str) -> list[tuple[str, str]]:
    """(period, download) of every row of the first table in ``html``."""
    return re.findall(r'<tr class="status-[^"]*" data-period="[^"]*"[^>]*><td data-col="date_ist_str"[^>]*>([^<]*)</td>'
                      r'<td data-col="download_avg">([^<]*)</td>', html)


def cells(page, table: str) -> list[tuple[str, str]]:
    return [tuple(row[:2]) for row in page.eval_on_selector_all(
        f"{table} {TABLE}", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")]


def test_a_visit_selecting_a_view_gets_that_views_snapshot_in_the_pages_html(served):
    base, data = served
    with urllib.request.urlopen(base + "?mode=weekly&days=12&host=office-main", timeout=WAIT_MS / 1000) as answer:
        page = answer.read().decode()
    starts = [m.start() for m in re.finditer('<div class="speedlab-snapshot">', page)]
    # the default view's, drawn before the visit (its first script removes it for this URL), then
    # the visit's own view's: both parsed before Voilà's JavaScript loads
    assert len(starts) == 2 and starts[1] < page.index("voila.js"), starts
    # and no script the parser must fetch and run comes before them (Voila's 340 KB of styles is deferred)
    blocking = [tag for tag in re.findall(r"<script\b[^>]*\bsrc=[^>]*>", page[:starts[0]])
                if not re.search(r'\b(defer|async)\b|type="module"', tag)]
    assert blocking == [], blocking
    default, snapshot = page[starts[0]:starts[1]], page[starts[1]:]
    assert "Daily · Last 7 days · All hosts: drawn at" in default
    assert "location.search" in default[:default.index("<h2>")]
    assert "Weekly · Last 12 weeks · office-main: drawn at" in snapshot and snapshot.count("<svg") == 2
    expected = expected_rows(data, "weekly", "office-main")
    assert raw_rows(snapshot) == expected and expected[-1][1] != "—" and expected[0][1] == "—"


def test_without_javascript_the_page_shows_the_snapshot(served, browser):
    base, data = served
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 1600})
    page = context.new_page()
    page.goto(base, wait_until="domcontentloaded", timeout=WAIT_MS)
    assert page.is_visible(".speedlab-snapshot-chart svg")
    assert "Daily · Last 7 days · All hosts: drawn at" in page.text_content(".speedlab-snapshot-banner")
    assert cells(page, ".speedlab-snapshot-rows") == expected_rows(data)
    assert page.query_selector(".speedlab-app") is None     # no widget without Voilà's JavaScript
    context.close()


# the snapshot's cell (the notebook's last for a visit selecting a view: the default view's, before
# the widgets' cell, removed itself) and the widgets' cell, and where each is drawn
PLACES = """() => {
  const cell = e => e.closest('[cell-index]');
  const shot = cell(document.querySelector('.speedlab-snapshot'));
  const app = cell([...document.querySelectorAll('script[type="application/vnd.voila.cell-output+json"]')]
                   .find(s => s.textContent.includes('widget-view'))
                  || document.querySelector('.speedlab-app'));
  return {shot: +shot.getAttribute('cell-index'), app: +app.getAttribute('cell-index'),
          cells: document.querySelectorAll('[cell-index]').length,
          shotBottom: shot.getBoundingClientRect().bottom, appTop: app.getBoundingClientRect().top,
          shotTop: document.querySelector('.speedlab-snapshot').getBoundingClientRect().top};
}"""


def test_the_snapshot_shows_first_and_gives_way_to_the_live_page(served, browser):
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

    # a selecting visit, stopped where the widgets would start: its own view's snapshot, shown
    # first although the notebook displays it last (after the visit arrived), below the widgets' cell
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.route("**/voila.js", lambda route: route.abort())
    page.goto(base + "?mode=weekly&days=12", wait_until="domcontentloaded", timeout=WAIT_MS)
    assert page.is_visible(".speedlab-snapshot-chart svg") and page.is_visible(".speedlab-snapshot-heatmap svg")
    assert "Weekly · Last 12 weeks · All hosts: drawn at" in page.text_content(".speedlab-snapshot-banner")
    assert cells(page, ".speedlab-snapshot-rows") == expected_rows(data, "weekly")
    places = page.evaluate(PLACES)
    assert places["shot"] == places["cells"] and places["app"] < places["shot"], places
    assert places["shotBottom"] <= places["appTop"] and places["shotTop"] < 200, places
    page.close()

    # the same with Voilà's JavaScript: the live page takes over and agrees with the snapshot
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.goto(base + "?mode=weekly&days=12&host=office-main", wait_until="domcontentloaded", timeout=WAIT_MS)
    expected = expected_rows(data, "weekly", "office-main")
    assert cells(page, ".speedlab-snapshot-rows") == expected or not page.query_selector(".speedlab-snapshot")
    page.wait_for_function(
        "() => { const s = document.querySelector('.speedlab-state');"
        " return s && s.dataset.state === 'ready' && s.textContent.startsWith('Weekly'); }", timeout=WAIT_MS)
    page.wait_for_selector(".speedlab-chart-widget svg", timeout=WAIT_MS)
    page.wait_for_selector(".speedlab-snapshot", state="detached", timeout=WAIT_MS)
    assert page.is_visible(".speedlab-app") and cells(page, ".speedlab-rows") == expected
    page.close()
