"""The dashboard snapshot: the drawn default view as plain HTML inside the page (speedlab.snapshot).

The page-level behaviour (shown before Voilà's JavaScript runs, removed when the live chart draws,
skipped for a visit whose URL selects something) is checked in a real browser in
tests/test_dashboard_browser.py.
"""

from __future__ import annotations

import re

import pytest

from speedlab import cache
from speedlab.config import Plan, load_config
from speedlab.dashboard import App
from speedlab.page import STYLE, headline_html, table_html
from speedlab.rowbuild import headline
from speedlab.snapshot import SNAPSHOT_CLASS, SNAPSHOT_METADATA, Snapshot, chart_svg, snapshot_html
from speedlab.store import LocalStore
from tests.helpers.synthetic import build_store, ist

NOW = ist(2026, 1, 5, 10, 20)


def _row(period: str, download: float | None, status: str = "ok") -> dict:
    return {"date_ist_str": period, "period": period, "download_avg": download, "upload_avg": 50.0,
            "ping_avg": 12.5, "status": status, "error": None}


def test_snapshot_html_uses_its_own_class_names_and_escapes_text():
    rows = [_row("2026-01-04", 180.25), _row("2026-01-05", None, "missing")]
    table = table_html(rows)
    text = snapshot_html(title="Home <& office>", description="Daily · Last 7 days · <all>",
                         drawn_at="05 Jan 2026 10:20 IST",
                         headline='<div class="speedlab-cards"><div class="speedlab-card">x</div></div>',
                         table=table, chart="<svg id='c'></svg>", style=STYLE)
    assert text.startswith(f'<div class="{SNAPSHOT_CLASS}">') and text.endswith("</div>")
    # the live page's names are never used: a selector for the live table cannot find the snapshot's
    assert not re.search(r'class="[^"]*\bspeedlab-(rows|cards|card|table-wrap)\b', text)
    assert 'class="speedlab-snapshot-rows"' in text and 'class="speedlab-snapshot-cards"' in text
    assert ".speedlab-snapshot-rows th" in text and ".speedlab-rows th" not in text   # the style, renamed
    assert "180.25" in text and "<svg id='c'></svg>" in text
    assert "Home &lt;&amp; office&gt;" in text and "&lt;all&gt;" in text and "<all>" not in text
    assert "05 Jan 2026 10:20 IST" in text
    # a script ahead of the content hides the snapshot for a visit that selects something; the
    # last one removes it when the live chart draws
    assert text.index("<script>") < text.index("<style>") < text.index("<h2>")
    first = text[:text.index("<style>")]
    for name in ("mode", "days", "host", "force_refresh"):
        assert f'"{name}"' in first
    assert "me.style.display = 'none'" in first
    last = text[text.rindex("<script>"):]
    assert ".speedlab-chart-widget svg" in last and "me.remove()" in last
    assert "heatmap" not in text   # none given


def test_snapshot_html_includes_the_heatmap_when_given():
    text = snapshot_html(title="t", description="d", drawn_at="now", headline="", table="", chart="<svg></svg>",
                         heatmap="<svg id='h'></svg>", heatmap_title="<h3>Download by hour</h3>")
    assert text.index("<svg></svg>") < text.index("<h3>Download by hour</h3>") < text.index("<svg id='h'></svg>")


def test_chart_svg_renders_an_altair_chart_without_a_browser():
    import altair as alt

    chart = alt.Chart(alt.Data(values=[{"x": 1, "y": 2}, {"x": 2, "y": 4}])).mark_line().encode(
        x=alt.X("x:Q", title="Hour of day"), y="y:Q")
    svg = chart_svg(chart)
    assert svg.startswith("<svg") and "<?xml" not in svg
    assert "Hour of day" in svg


def test_a_snapshot_output_carries_the_mark_the_voila_template_looks_for():
    from IPython.core.formatters import DisplayFormatter

    data, metadata = DisplayFormatter().format(Snapshot("<div>x</div>"))
    assert data["text/html"] == "<div>x</div>"
    # IPython files _repr_html_'s metadata under the MIME type; the template reads exactly this
    assert metadata == {"text/html": {SNAPSHOT_METADATA: True}}
    template = (__import__("speedlab.serve", fromlist=["x"]).voila_template_root()
                / "voila" / "templates" / "speedlab" / "index.html.j2").read_text(encoding="utf-8")
    assert f'get("text/html") or {{}}).get("{SNAPSHOT_METADATA}")' in template


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("snapshot")
    store = LocalStore(tmp / "store")
    store.root.mkdir()
    build_store(store, ist(2025, 12, 20), NOW, raw_days=1, hourly_days=2)
    config = load_config(env={}, store=str(store.root), state_dir=str(tmp / "state"),
                         plan=Plan(200.0, 100.0))
    return store, config


@pytest.mark.slow
def test_a_preheated_app_snapshots_the_view_it_drew_and_no_other_app_does(site, tmp_path):
    _, config = site
    cache.clear_caches()
    environ = {**config.child_env(), "SPEEDLAB_DASHBOARD_NOW": NOW.isoformat()}
    app = App.for_visit(environ={**environ, "VOILA_PREHEAT": "True"})
    try:
        shown = app.snapshot()
        assert isinstance(shown, Snapshot)
        text = shown.html
        rows = app.state["rows"]
        # the same rows and headline as the live widgets, under the snapshot's class names
        assert table_html(rows).replace("speedlab-", "speedlab-snapshot-") in text
        assert headline_html(headline(rows)).replace("speedlab-", "speedlab-snapshot-") in text
        assert "Daily · Last 7 days · All hosts: drawn at" in text and app.title.value in text
        assert text.count("<svg") == 2     # the chart and the heatmap
        assert "Download by hour of day and weekday" in text
        app.apply_query_string("mode=weekly")
        app.wait()
        assert "Weekly · Last 12 weeks" in app.snapshot().html   # what the app shows now
    finally:
        app.close()
    plain = App.for_visit(environ=environ)           # a kernel per visit: nothing drawn before the visit
    try:
        plain.wait()
        assert plain.state["status"] == "ready" and plain.snapshot() is None
    finally:
        plain.close()
    broken = App.for_visit(environ={**environ, "VOILA_PREHEAT": "True", "SPEEDLAB_STORE": str(tmp_path / "nope")})
    try:
        assert broken.state["error"] and broken.snapshot() is None
    finally:
        broken.close()
