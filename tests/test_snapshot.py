"""The dashboard snapshot: the visitor's view as plain HTML inside the page (speedlab.snapshot).

The page-level behaviour (in the page's HTML before Voilà's JavaScript, shown first, removed when
the live chart draws, a ``?mode=`` visit's own view) is checked in a real browser in
tests/test_snapshot_browser.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from datetime import timedelta

import pytest

from speedlab import cache, dashboard, layout, snapshot as snapshot_module
from speedlab.config import Plan, load_config
from speedlab.dashboard import App
from speedlab.errors import StoreUnavailable
from speedlab.page import QUERY_KEYS, STYLE, Selection, headline_html, parse_query_string, table_html
from speedlab.rowbuild import headline
from speedlab.snapshot import SNAPSHOT_CLASS, SNAPSHOT_METADATA, Snapshot, chart_svg, snapshot_html
from speedlab.store import LocalStore
from tests.helpers.synthetic import CONNECTION, B, Sample, build_store, ist, period

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
    # two scripts: first (a visit's own view) it removes any snapshot before it; last, after the
    # content, it removes itself when the live chart draws
    assert text.count("<script>") == 2 and text.index("<script>") < text.index("<h2>") < text.rindex("<script>")
    first, last = text[:text.index("</script>")], text[text.rindex("<script>"):]
    assert "querySelectorAll('.speedlab-snapshot')" in first and "location.search" not in text
    assert ".speedlab-chart-widget svg" in last and "me.remove()" in last
    # drawn before the visit (the default view), its first script removes it for a URL selecting a view
    before = snapshot_html(title="t", description="d", drawn_at="now", headline="", table=table,
                           chart="<svg></svg>", before_visit=True)
    first = before[:before.index("</script>")]
    assert ".test(location.search)) me.remove()" in first   # which URLs: the test below
    assert before.index("</script>") < before.index("<h2>") and "querySelectorAll" not in before
    assert "heatmap" not in text   # none given


def test_the_default_snapshot_goes_for_every_url_key_the_page_reads_and_no_other():
    # the keys parse_query_string honours, found by feeding each candidate alone (not read from QUERY_KEYS)
    default = parse_query_string("")
    candidates = {f.name for f in dataclasses.fields(Selection)} | set(QUERY_KEYS) | {"other", "async", "Mode"}
    honoured = {key for key in candidates
                if any(parse_query_string(f"{key}={value}") != default for value in ("1", "weekly", "x/y"))}
    assert honoured == set(QUERY_KEYS) == {f.name for f in dataclasses.fields(Selection)}
    # the script built from QUERY_KEYS, run here as the browser would (a JavaScript /.../ literal)
    before = snapshot_html(title="t", description="d", drawn_at="now", headline="", table="",
                           chart="<svg></svg>", before_visit=True)
    literal = re.search(r"if \(me && /(.+)/\.test\(location\.search\)\) me\.remove\(\);", before)
    assert literal is not None
    selects = re.compile(literal.group(1).replace(r"\/", "/"))
    for key in honoured:
        for search in (f"?{key}=1", f"?other=2&{key}=", f"?{key}=x&days=3"):
            assert selects.search(search), search
    for search in ("", "?other=1", "?async=1&xmode=2", "?modes=1", "?mode", "?other=mode=1"):
        assert not selects.search(search), search
        assert parse_query_string(search)[0] == default[0], search


def test_snapshot_html_marks_the_heading_under_its_charts_and_its_tables_last_row_for_element_timing():
    rows = [_row("2026-01-04", 180.25), _row("2026-01-05", None, "missing")]
    text = snapshot_html(title="t", description="d", drawn_at="now", headline="", table=table_html(rows),
                         chart="<svg id='c'></svg>", heatmap="<svg id='h'></svg>", heatmap_title="<h3>h</h3>")
    marks = re.findall(r'<(\w+)[^>]*elementtiming="([^"]+)"[^>]*>([^<]*)<', text)
    assert marks == [("h3", snapshot_module.PAINT_MARK, "Periods"),
                     ("td", snapshot_module.TABLE_PAINT_MARK, rows[-1]["date_ist_str"])]
    assert text.index("<svg id='h'>") < text.index(snapshot_module.PAINT_MARK)   # under both charts
    assert "elementtiming" not in table_html(rows)   # the live page's table is left as it was


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


def test_chart_svg_leaves_out_tooltips_and_keeps_the_spec_as_it_was():
    spec = {"data": {"values": [{"x": 1, "y": 2}, {"x": 2, "y": 4}]}, "mark": "point",
            "encoding": {"x": {"field": "x", "type": "quantitative", "title": "Hour of day"},
                         "y": {"field": "y", "type": "quantitative"},
                         "tooltip": [{"field": "y", "type": "quantitative", "title": "Tip"}]}}
    before = json.loads(json.dumps(spec))
    svg = chart_svg({"vconcat": [spec]})
    assert "Hour of day" in svg and spec == before
    assert snapshot_module._without_tooltips({"vconcat": [spec]}) == {"vconcat": [
        {**spec, "encoding": {k: v for k, v in spec["encoding"].items() if k != "tooltip"}}]}


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
    data = build_store(store, ist(2025, 12, 20), NOW, raw_days=1, hourly_days=2)
    config = load_config(env={}, store=str(store.root), state_dir=str(tmp / "state"),
                         plan=Plan(200.0, 100.0))
    return store, config, data


def downloads(text: str) -> list[str]:
    """The download column of a snapshot's table, oldest first."""
    return re.findall(r'<tr class="status-[^"]*" data-period="[^"]*"[^>]*><td data-col="[^"]*"[^>]*>[^<]*</td>'
                      r'<td data-col="download_avg">([^<]*)</td>', text)


def plain_means(samples, spans, host: str | None = None) -> list[str]:
    """Plain means of the raw samples' downloads over each (start, end), as the table prints them."""
    out = []
    for start, end in spans:
        values = [s.download_mbps for s in samples if s.ok and start <= s.slot_start < end
                  and host in (None, s.host_id)]
        out.append(f"{sum(values) / len(values):.2f}" if values else "—")
    return out


def last(tier: str, count: int) -> list[tuple]:
    """The view's periods (start, end clipped to NOW), oldest first, ending with NOW's."""
    step = {"daily": timedelta(days=1), "weekly": timedelta(weeks=1)}[tier]
    spans = [period(tier, NOW - step * n) for n in range(count - 1, -1, -1)]
    return [(p.start, min(p.end, NOW)) for p in spans]


@pytest.mark.slow
def test_a_preheated_app_snapshots_the_view_it_drew_and_no_other_app_does(site, tmp_path, monkeypatch):
    store, config, data = site
    cache.clear_caches()
    rendered = []
    monkeypatch.setattr(dashboard, "chart_svg", lambda chart: rendered.append(chart) or chart_svg(chart))
    environ = {**config.child_env(), "SPEEDLAB_DASHBOARD_NOW": NOW.isoformat()}
    app = App.for_visit(environ={**environ, "VOILA_PREHEAT": "True"})
    try:
        assert len(rendered) == 2          # the default view's chart and heatmap, before any visit
        shown = app.snapshot()             # the notebook's cell before the visit: sent with the page
        assert isinstance(shown, Snapshot) and len(rendered) == 2
        text = shown.html
        # a visit whose URL selects a view removes it while the page is parsed
        assert text.index(".test(location.search)) me.remove()") < text.index("<h2>")
        app.apply_query_string("")         # a default visit: its view is on the page already
        assert app.snapshot(wait_s=1.5) is None and len(rendered) == 2
        rows = app.state["rows"]
        # the same rows and headline as the live widgets, under the snapshot's class names
        unmarked = re.sub(r' elementtiming="[^"]*"', "", text)   # the Element Timing marks aside
        assert table_html(rows).replace("speedlab-", "speedlab-snapshot-") in unmarked
        assert headline_html(headline(rows)).replace("speedlab-", "speedlab-snapshot-") in text
        assert "Daily · Last 7 days · All hosts: drawn at" in text and app.title.value in text
        assert text.count("<svg") == 2     # the chart and the heatmap
        assert "Download by hour of day and weekday — last 28 days, all hosts" in text
        default = downloads(text)
        assert default == plain_means(data.results, last("daily", 7))

        # a visit whose URL selects a view gets that view's snapshot, once it is loaded
        app.apply_query_string("mode=weekly&days=12&host=office-main")
        text = app.snapshot(wait_s=30).html
        assert "Weekly · Last 12 weeks · office-main: drawn at" in text
        assert "location.search" not in text   # the visit's own: it removes any earlier one
        assert text.index("querySelectorAll('.speedlab-snapshot')") < text.index("<h2>")
        assert "last 28 days, office-main</h3>" in text and len(rendered) == 4   # its chart and heatmap
        assert downloads(text) == plain_means(data.results, last("weekly", 12), "office-main")
        assert "—" in downloads(text)[:8] and "—" not in downloads(text)[-3:]      # weeks before the data

        # not loaded within the wait (or failed): no snapshot; the live page draws as without one
        gate, get_rows = threading.Event(), dashboard.get_rows
        with monkeypatch.context() as patch:
            patch.setattr(dashboard, "get_rows", lambda *a, **k: gate.wait(30) and get_rows(*a, **k))
            app.apply_query_string("mode=weekly&days=12")
            started = time.monotonic()
            assert app.snapshot(wait_s=0.3) is None and 0.3 <= time.monotonic() - started < 2
            gate.set()
            text = app.snapshot(wait_s=30).html                                  # once it is
            assert "Weekly · Last 12 weeks · All hosts: drawn at" in text
            assert downloads(text) == plain_means(data.results, last("weekly", 12))
            patch.setattr(dashboard, "get_rows", lambda *a, **k: (_ for _ in ()).throw(StoreUnavailable("down")))
            app.apply_query_string("mode=monthly&days=2")
            assert app.snapshot(wait_s=30) is None and "down" in app.state["error"]

        # ?force_refresh=1: the snapshot is of rows read after the visit (the cache holds the old ones)
        late = Sample("office-main", ist(2026, 1, 5, 10, 15), True, 1000.0, 500.0, 9.0, CONNECTION["office-main"])
        store.put(B.raw, layout.raw_key(late.host_id, late.slot_start), late.to_result().to_json().encode())
        app.apply_query_string("force_refresh=1")
        fresh = downloads(app.snapshot(wait_s=30).html)
        assert fresh == plain_means([*data.results, late], last("daily", 7)) and fresh[-1] != default[-1]
        assert fresh[:-1] == default[:-1] and len(rendered) == 7    # the heatmap of all hosts reused
    finally:
        app.close()
    plain = App.for_visit(environ=environ)           # a kernel per visit: nothing drawn before the visit
    try:
        plain.wait()
        assert plain.state["status"] == "ready" and plain.snapshot(wait_s=1.5) is None
    finally:
        plain.close()
    broken = App.for_visit(environ={**environ, "VOILA_PREHEAT": "True", "SPEEDLAB_STORE": str(tmp_path / "nope")})
    try:
        assert broken.state["error"] and broken.snapshot(wait_s=1.5) is None
    finally:
        broken.close()
