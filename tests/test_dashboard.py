"""speedlab.dashboard without a browser: controls, loading, redraw, URL parameters, serving."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest

from speedlab import cache, layout, query, rowbuild
from speedlab.cli import main
from speedlab.config import Plan, load_config
from speedlab.dashboard import App, charts
from speedlab.demo import demo_story, generate, write_records
from speedlab.page import LEGEND, STYLE, Selection, headline_html, parse_query_string, period_options, table_html
from speedlab.serve import notebook_path, voila_command, voila_env
from speedlab.store import LocalStore
from tests.helpers.synthetic import B, build_store, ist, period
from tests.test_charts import assert_vega_lite

NOW = ist(2026, 1, 5, 10, 20)
FIRST = ist(2025, 11, 24)
SKIP = ("20251227",)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A local store with three hosts from 24 Nov 2025 to NOW, and its configuration."""
    tmp = tmp_path_factory.mktemp("dashboard")
    store = LocalStore(tmp / "store")
    store.root.mkdir()
    data = build_store(store, FIRST, NOW, raw_days=1, hourly_days=3, skip_days=SKIP)
    config = load_config(env={}, store=str(store.root), state_dir=str(tmp / "state"),
                         plan=Plan(200.0, 100.0), sections={"dashboard": {"heatmap_days": 2}})
    return store, config, data


@pytest.fixture(autouse=True)
def fresh_caches():
    cache.clear_caches()
    yield


@pytest.fixture
def open_app(site):
    apps = []

    def make(query_string: str = "", **kwargs) -> App:
        store, config, _ = site
        app = App(store, config, query_string=query_string, now=NOW, **kwargs)
        apps.append(app)
        app.wait()
        return app
    yield make
    for app in apps:
        app.close()


def table_rows(app: App) -> list[list[str]]:
    """The table's cells as text, one list per row."""
    return [re.findall(r'<td data-col="[^"]+">([^<]*)</td>', tr)
            for tr in re.findall(r"<tr class=.*?</tr>", app.table.value)]


def descriptions(app: App, name: str = "chart") -> list[str]:
    """Every mark description (the page's aria-labels) in a chart's spec."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("description"), str) and "values" not in node:
                found.append(node["description"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(app._charts[name].spec)
    return found


def state_of(app: App) -> str:
    return re.search(r'data-state="(\w+)"', app.status.value).group(1)


def mean_download(data, tier: str, label_moment: datetime, host: str | None) -> float:
    p = period(tier, label_moment)
    values = [s.download_mbps for s in data.results_in(p.start, p.end, host) if s.ok]
    return sum(values) / len(values)


# ---------------------------------------------------------------------------- URL parameters

@pytest.mark.slow
def test_url_parameters_preselect_the_controls(open_app, site):
    store, config, _ = site
    app = open_app("?mode=weekly&days=56&host=office-main")
    assert (app.mode.value, app.period.value, app.host.value) == ("weekly", 56, "office-main")
    assert ("Last 56 weeks", 56) in app.period.options
    assert app.notes == [] and app.note.layout.display == "none"
    assert state_of(app) == "ready"
    assert app.state["rows"] == query.rows("weekly", 56, "office-main", store=store, config=config, now=NOW)
    assert len(table_rows(app)) == 56
    assert [label for label, _ in app.host.options] == ["All hosts", "backup-location", "home-primary",
                                                         "office-main"]


@pytest.mark.slow
def test_invalid_url_values_fall_back_to_defaults_with_a_visible_note(open_app):
    app = open_app("mode=fortnightly&days=-3&host=no/such")
    assert (app.mode.value, app.period.value, app.host.value) == ("daily", 7, "all")
    assert len(app.notes) == 3 and app.note.layout.display == ""
    assert "mode=&#x27;fortnightly&#x27; is not a mode" in app.note.value
    assert "days=&#x27;-3&#x27; does not fit mode daily (use 1 to 3660 days); showing Last 7 days." in app.note.value
    assert "host=&#x27;no/such&#x27; is not a valid host id; showing all hosts." in app.note.value
    assert state_of(app) == "ready" and len(table_rows(app)) == 7
    ghost = open_app("mode=monthly&days=2&host=ghost")
    assert (ghost.mode.value, ghost.period.value, ghost.host.value) == ("monthly", 2, "all")
    assert "host=&#x27;ghost&#x27; has no data in this store" in ghost.note.value


def test_rows_is_importable_from_the_dashboard_module():
    from speedlab import dashboard

    assert dashboard.rows is query.rows


def test_parse_query_string_cases():
    assert parse_query_string("") == (Selection(), [])
    assert parse_query_string("?mode=15-min&days=3&force_refresh=1&async=1") == \
        (Selection("minute", 3, "all", True), [])
    selection, notes = parse_query_string("mode=yearly&days=51")
    assert selection == Selection("yearly", 5) and notes == [
        "days='51' does not fit mode yearly (use 1 to 50 years); showing Last 5 years."]
    assert period_options("yearly") == [("Last 1 year", 1), ("Last 2 years", 2), ("Last 3 years", 3),
                                        ("Last 5 years", 5), ("Last 10 years", 10)]
    assert period_options("weekly", 6)[1] == ("Last 6 weeks", 6)


# ---------------------------------------------------------------------------- controls and redraw

@pytest.mark.slow
def test_the_period_menu_follows_the_mode(open_app):
    app = open_app()
    assert (app.mode.value, app.period.value) == ("daily", 7)      # the seed's default view
    app.mode.value = "monthly"
    assert [v for _, v in app.period.options] == [2, 3, 6, 12, 24] and app.period.value == 6
    app.mode.value = "minute"
    assert app.period.options[0] == ("Last 1 day", 1) and app.period.value == 1
    app.mode.value = "yearly"
    assert app.period.value == 5


@pytest.mark.slow
def test_apply_redraws_table_chart_and_headline_for_the_new_selection(open_app, site):
    _, _, data = site
    app = open_app()
    app.select(mode="monthly", days=2, host="office-main")
    app.apply()
    app.wait()
    office = mean_download(data, "monthly", ist(2025, 12, 1), "office-main")
    assert table_rows(app)[0][:2] == ["2025-12-01 to 2025-12-31", f"{office:.2f}"]
    assert table_rows(app)[1][0] == "2026-01-01 to 2026-01-31" and table_rows(app)[1][-1] == "partial"
    assert f"Download 2025-12-01 to 2025-12-31: {office:.2f} Mbit/s" in descriptions(app)
    assert "Monthly · Last 2 months · office-main" in app.status.value
    assert "last 2 days, office-main" in app.heatmap_title.value
    app.select(host="home-primary")
    app.apply()
    app.wait()
    home = mean_download(data, "monthly", ist(2025, 12, 1), "home-primary")
    assert home != pytest.approx(office)
    assert table_rows(app)[0][1] == f"{home:.2f}"
    assert f"Download 2025-12-01 to 2025-12-31: {home:.2f} Mbit/s" in descriptions(app)
    assert f"Download 2025-12-01 to 2025-12-31: {office:.2f} Mbit/s" not in descriptions(app)
    cells = descriptions(app, "heatmap")
    assert cells and all(re.fullmatch(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d:00: [\d.]+ Mbit/s", c) for c in cells)


def test_a_chart_is_built_once_per_change_of_what_it_shows(open_app, monkeypatch):
    import speedlab.dashboard as dashboard

    built = []
    for name in ("charts", "heatmap_chart"):
        real = getattr(dashboard, name)
        monkeypatch.setattr(dashboard, name,
                            lambda *a, _real=real, _name=name, **k: built.append(_name) or _real(*a, **k))
    app = open_app()
    assert built == ["charts", "heatmap_chart"]        # the first load: each chart once (two redraws)
    app.select(mode="weekly", days=4)
    app.apply()
    app.wait()
    assert built[2:] == ["charts"]                      # another mode, the same host: the heatmap stays
    assert "Weekly · Last 4 weeks" in app.status.value
    app.refresh()
    app.wait()
    assert built[3:] == []                              # the same rows read again: nothing to redraw
    app.select(host="office-main")
    app.apply()
    app.wait()
    assert built[3:] == ["charts", "heatmap_chart"]     # another host: both
    assert "last 2 days, office-main" in app.heatmap_title.value


@pytest.mark.parametrize("mode,days,count", [("minute", 1, 96), ("hourly", 2, 48), ("daily", 14, 14),
                                             ("weekly", 4, 4), ("monthly", 3, 3), ("yearly", 5, 5)])
@pytest.mark.slow
def test_every_mode_loads_and_draws(open_app, mode, days, count):
    app = open_app(f"mode={mode}&days={days}")
    assert state_of(app) == "ready", app.status.value
    assert len(table_rows(app)) == count
    assert any(d.startswith("Download ") for d in descriptions(app))
    assert 'data-stat="coverage_pct"' in app.headline.value
    widget = app._charts["chart"]   # the spec as charts() built it, set without Altair's conversion
    assert widget.chart is None and widget.spec == charts(app.state["rows"], mode, app.selection.describe())


@pytest.mark.slow
def test_missing_periods_are_gaps_and_markers_never_zero(open_app):
    app = open_app("mode=daily&days=14")
    row = next(r for r in table_rows(app) if r[0] == "2025-12-27")
    assert row[1:4] == ["—", "—", "—"] and row[-1] == "missing"
    assert 'class="status-missing" data-period="20251227"' in app.table.value
    texts = descriptions(app)
    assert "2025-12-27: no data" in texts
    assert not any(t.startswith("Download 2025-12-27:") for t in texts)
    spec = json.dumps(app._charts["chart"].spec)
    assert '"detail"' in spec          # lines are split into segments at every gap


@pytest.mark.slow
def test_refresh_bypasses_the_cache(open_app, site, tmp_path):
    store, _config, data = site
    app = open_app("mode=daily&days=3&host=home-primary")
    before = table_rows(app)[0][1]
    day = period("daily", ist(2026, 1, 3))
    original = data.summaries[("daily", "20260103", "home-primary")]
    try:
        store.put(B.daily, layout.summary_key(day, "home-primary"),
                  json.dumps(dict(original, avg_download=1.5)).encode())
        app.apply()
        app.wait()
        assert table_rows(app)[0][1] == before and "from the cache" in app.status.value
        app.refresh()
        app.wait()
        assert table_rows(app)[0][1] == "1.50" and "from the store" in app.status.value
        store.put(B.daily, layout.summary_key(day, "home-primary"),
                  json.dumps(dict(original, avg_download=2.5)).encode())
        forced = open_app("mode=daily&days=3&host=home-primary&force_refresh=1")  # the URL's refresh
        assert table_rows(forced)[0][1] == "2.50" and "from the store" in forced.status.value
    finally:
        store.put(B.daily, layout.summary_key(day, "home-primary"), json.dumps(original).encode())


@pytest.mark.slow
def test_headline_shows_averages_counts_coverage_and_periods_below_plan(open_app, site):
    _, _config, data = site
    app = open_app("mode=weekly&days=2&host=all")
    stats = app.state["stats"]
    p = period("weekly", ist(2025, 12, 29))
    samples = data.results_in(p.start, NOW)   # last week and this week so far (partial, live)
    ok = [s for s in samples if s.ok]
    assert stats["tests"] == len(ok) and stats["failed"] == len(samples) - len(ok)
    assert stats["download_avg"] == pytest.approx(sum(s.download_mbps for s in ok) / len(ok), rel=1e-12)
    assert f'{stats["download_avg"]:.2f} Mbit/s' in app.headline.value
    assert (stats["periods_below_expected"], stats["periods_judged"], stats["periods_partial"]) == (0, 2, 1)
    assert ">0 of 2<" in app.headline.value
    # these synthetic results are schema 1: no latency panel, and the latency cards say so
    assert len(app._charts["chart"].spec["vconcat"]) == 2
    assert ('data-stat="rpm"><div class="label">Responsiveness</div><div class="value">not measured'
            in app.headline.value)


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory):
    """A store of ``speedlab demo`` records (schema 2, with latency) for the 8 hours before NOW, raw only."""
    tmp = tmp_path_factory.mktemp("demo-latency")
    (tmp / "store").mkdir()
    config = load_config(env={}, store=str(tmp / "store"), state_dir=str(tmp / "state"),
                         sections={"dashboard": {"heatmap_days": 1}})
    story = demo_story(NOW - timedelta(days=90), NOW, config.timezone)   # its outage and switched-off day long ago
    records = generate(3, NOW - timedelta(hours=8), NOW, config.timezone, story=story)
    assert write_records(config, records).stored == len(records)
    return config, records


@pytest.mark.slow
def test_demo_latency_draws_the_panel_and_the_rpm_grade_for_the_selected_host(demo_site):
    config, records = demo_site
    app = App(config.open_store(), config, query_string="mode=minute&days=1&host=office-main", now=NOW)
    try:
        app.wait()
        for host in ("office-main", "home-primary"):
            if host != app.selection.host:
                app.select(host=host)
                app.apply().result(60)
                app.wait()
            assert len(app._charts["chart"].spec["vconcat"]) == 3          # speed, ping, latency
            ok = [r for r in records if r.host_id == host and r.ok]
            labels = descriptions(app)
            for r in ok:   # one result per 15-minute row: its own figures
                slot = f"{r.slot_start.astimezone(NOW.tzinfo):%Y-%m-%d %H:%M}"
                for series, value in (("Idle latency", r.latency_idle_ms),
                                      ("Latency during download", r.latency_download_ms),
                                      ("Latency during upload", r.latency_upload_ms)):
                    assert any(d.startswith(f"{series} {slot}: {value:.2f} ms") for d in labels), (host, slot)
            down = sum(r.latency_download_ms for r in ok) / len(ok)
            up = sum(r.latency_upload_ms for r in ok) / len(ok)
            rpm = 60_000 / ((down + up) / 2)
            grade = "High" if rpm >= 1000 else "Medium" if rpm >= 200 else "Low"
            assert f'<div class="value">{grade} · {rpm:.0f} RPM</div>' in app.headline.value, host
            idle = sum(r.latency_idle_ms for r in ok) / len(ok)
            assert f'<div class="value">{idle:.1f} ms</div>' in app.headline.value
    finally:
        app.close()


# ---------------------------------------------------------------------------- failures on the page

def test_a_bad_configuration_is_shown_not_raised(tmp_path):
    app = App.from_config(environ={"SPEEDLAB_STORE": "s3://?bogus=1"}, query_string="")
    assert state_of(app) == "error" and "unknown S3 store option(s) bogus" in app.status.value
    app.close()
    app = App.from_config(environ={"SPEEDLAB_STORE": str(tmp_path)}, now="yesterday")
    assert "now=&#x27;yesterday&#x27; is not an ISO 8601 time" in app.status.value
    app.close()
    app = App.from_config(environ={"SPEEDLAB_STORE": str(tmp_path / "mistyped" / "store")})
    assert state_of(app) == "error" and "mistyped/store does not exist" in app.status.value
    app.close()
    assert not (tmp_path / "mistyped").exists()  # the kernel creates no store (nor its _speedlab)


def test_an_unreachable_store_is_shown_not_raised(tmp_path):
    config = load_config(env={}, store=str(tmp_path / "gone"), state_dir=str(tmp_path / "state"))
    app = App(LocalStore(tmp_path / "gone"), config, now=NOW)  # opened, then gone (an unmounted disk)
    app.wait()
    assert state_of(app) == "error"
    assert "cannot list hosts: local store folder" in app.status.value
    app.close()


def test_an_app_given_no_store_says_so_instead_of_starting_for_good():
    app = App(None, None, now=NOW)
    app.wait()
    assert state_of(app) == "error"
    assert "no store or configuration" in app.status.value
    app.close()


# ---------------------------------------------------------------------------- pure HTML and charts

def test_table_and_headline_html_show_missing_values_as_dashes():
    row = dict.fromkeys(rowbuild.ROW_FIELDS)
    row.update(period="20260101", date_ist_str="2026-01-01", status="missing", tests=0, failed=0,
               coverage_pct=0.0, error=None)
    html = table_rows_of(table_html([row]))
    assert html == [["2026-01-01", "—", "—", "—", "—", "—", "—", "—", "0", "0", "0.0", "—", "—", "—", "missing"]]
    stats = rowbuild.headline([dict(row, rejected=0, download_count=0, upload_count=0, ping_count=0)])
    text = headline_html(stats)
    assert "Download avg</div><div class=\"value\">—" in text and "no plan" in text
    assert "Responsiveness</div><div class=\"value\">not measured" in text


def test_a_period_in_progress_is_an_italic_partial_row_and_the_legend_says_so():
    row = dict.fromkeys(rowbuild.ROW_FIELDS)
    row.update(period="202612", date_ist_str="2026-12", status="partial", tests=4, failed=0,
               download_avg=95.0, coverage_pct=100.0, error=None)
    markup = table_html([row])
    assert '<tr class="status-partial" data-period="202612"' in markup
    assert table_rows_of(markup)[0][-1] == "partial"
    assert "tr.status-partial td { font-style: italic; }" in STYLE
    assert "period in progress" in LEGEND


def table_rows_of(markup: str) -> list[list[str]]:
    return [re.findall(r'<td data-col="[^"]+">([^<]*)</td>', tr) for tr in re.findall(r"<tr class=.*?</tr>", markup)]


@pytest.mark.slow
def test_chart_marks_failed_tests_and_draws_the_plan(site):
    store, config, _ = site
    got = query.rows("minute", 1, "office-main", store=store, config=config, now=NOW)
    spec = charts(got, "minute")
    assert_vega_lite(spec)
    text = json.dumps(spec)
    failed = next(r for r in got if r["status"] == "failed")
    assert f'{failed["date_ist_str"]}: only failed tests' in text
    assert "Download plan: 200 Mbit/s" in text and "Upload plan: 100 Mbit/s" in text
    assert f'"Download {failed["date_ist_str"]}:' not in text


@pytest.mark.slow
def test_chart_draws_the_period_in_progress_hollow_and_dashed_with_a_so_far_legend(site):
    store, config, _ = site
    got = query.rows("daily", 3, store=store, config=config, now=NOW)
    today = got[-1]
    assert (today["status"], today["complete"]) == ("partial", False)
    spec = charts(got, "daily")
    assert_vega_lite(spec)
    text = json.dumps(spec)
    download = next(layer for layer in spec["vconcat"][0]["layer"]
                    if layer["mark"].get("filled") is False)   # the hollow point
    values = spec["datasets"][download["data"]["name"]]
    assert [(v["series"], v["period"], v["state"]) for v in values] == [
        ("Download", today["date_ist_str"], "so far"), ("Upload", today["date_ist_str"], "so far")]
    assert download["encoding"]["shape"]["scale"]["domain"] == ["so far"]   # the legend entry
    dashed = [layer for layer in spec["vconcat"][0]["layer"] if layer["mark"].get("strokeDash") == [4, 3]
              and layer["mark"]["type"] == "line"]
    assert len(dashed) == 1                                    # yesterday -> today so far
    assert f'Download {today["date_ist_str"]}: {today["download_avg"]:.2f} Mbit/s so far' in text
    finished = next(layer for layer in spec["vconcat"][0]["layer"] if layer["mark"]["type"] == "circle")
    done = spec["datasets"][finished["data"]["name"]]
    assert {v["state"] for v in done} == {"complete"} and len(done) == 4


# ---------------------------------------------------------------------------- notebook and serving

@pytest.mark.slow
def test_notebook_is_thin_and_runs_with_papermill(site, tmp_path):
    import nbformat
    import papermill

    store, _, _ = site
    notebook = nbformat.read(notebook_path(), as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells)
    assert notebook.cells[-2].source.strip() == "app.container"
    assert notebook.cells[-3].source.splitlines()[-1] == "app.snapshot()"   # the default view's, before the visit
    assert notebook.cells[-1].source.splitlines()[-2:] == ["app.apply_query_string(get_query_string())",
                                                           "app.snapshot(wait_s=1.5)"]
    assert "parameters" in notebook.cells[0].metadata.get("tags", [])
    out = tmp_path / "ran.ipynb"
    papermill.execute_notebook(str(notebook_path()), str(out), kernel_name="python3", progress_bar=False,
                               parameters={"store": str(store.root), "now": NOW.isoformat()})
    ran = nbformat.read(out, as_version=4)
    shown = ran.cells[-2].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in shown
    assert ran.cells[-1].outputs == []    # no preheat: get_query_string returned at once, no snapshot


@pytest.mark.slow
def test_voila_command_and_environment(site, tmp_path):
    command = voila_command("/x/dashboard.ipynb", 8899, cull_idle_s=300)
    assert command[1:4] == ["-m", "voila", "/x/dashboard.ipynb"]
    assert {"--no-browser", "--port=8899", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0",
            "--MappingKernelManager.cull_idle_timeout=300"} <= set(command)
    config = load_config(env={}, store="s3://", state_dir=str(tmp_path),
                         s3={"endpoint_url": "http://127.0.0.1:9", "access_key_id": "k", "secret_access_key": "s"})
    env = voila_env(config, now=NOW.isoformat(), base={"QUERY_STRING": "mode=daily", "PATH": "/bin"})
    assert env == {**env, **config.child_env()}  # the one serialiser (speedlab.config.Config.child_env)
    assert env["SPEEDLAB_STORE"] == "s3://?endpoint_url=http%3A%2F%2F127.0.0.1%3A9"
    assert env["SPEEDLAB_S3_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert (env["SPEEDLAB_S3_ACCESS_KEY_ID"], env["SPEEDLAB_S3_SECRET_ACCESS_KEY"]) == ("k", "s")
    assert env["SPEEDLAB_DASHBOARD_NOW"] == NOW.isoformat() and "QUERY_STRING" not in env
    child = load_config(env=env)
    assert child.open_store().url == config.open_store().url and child.s3 == config.s3


def test_cli_dashboard_serves_the_configured_store(monkeypatch, tmp_path, capsys):
    called = {}

    def fake_serve(config, port, now=None, cull_idle_s=600, announce=None, **other):
        called.update(store=config.store, port=port, now=now, cull=cull_idle_s)
        assert "http://" not in capsys.readouterr().out      # nothing announced before it answers
        announce(f"http://127.0.0.1:{port}/")                 # serve() calls this once it answers
        return 0
    monkeypatch.setattr("speedlab.serve.serve", fake_serve)
    monkeypatch.chdir(tmp_path)
    assert main(["dashboard", "--store", str(tmp_path), "--port", "8899", "--cull-idle", "120"]) == 0
    assert called == {"store": str(tmp_path), "port": 8899, "now": None, "cull": 120}
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("speedlab dashboard: http://127.0.0.1:8899/ (store ")
    assert out[-1] == "speedlab dashboard: stopped"


@pytest.mark.slow
def test_dashboard_kernel_skips_the_iri_grammar_and_altair_still_works():
    import os
    import subprocess
    import sys

    code = ("import os, sys\n"
            "from speedlab.dashboard import App\n"
            "App.from_config(store=os.environ['STORE'], autoload=False)\n"
            "import altair as alt\n"
            "spec = alt.Chart(alt.Data(values=[{'a': 1}])).mark_point().encode(x='a:Q').to_dict()\n"
            "print(sys.modules.get('rfc3987_syntax', 'missing'), spec['mark']['type'])\n")
    for flag, expected in (("1", "None point"), ("0", "<module")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "SPEEDLAB_DASHBOARD_KERNEL": flag, "STORE": "/nonexistent"})
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().startswith(expected), (flag, out.stdout)


def test_voila_env_marks_the_dashboard_kernel(tmp_path):
    from speedlab.config import load_config
    from speedlab.serve import voila_env

    config = load_config(env={}, store=str(tmp_path))
    assert voila_env(config, base={})["SPEEDLAB_DASHBOARD_KERNEL"] == "1"
    assert voila_env(config, base={"SPEEDLAB_DASHBOARD_KERNEL": "0"})["SPEEDLAB_DASHBOARD_KERNEL"] == "0"


def test_in_a_kernel_the_loader_threads_redraws_run_on_the_kernels_loop(open_app):
    import threading

    class Loop:  # stands in for the kernel's tornado IOLoop
        def __init__(self):
            self.callbacks = []

        def add_callback(self, fn):
            self.callbacks.append(fn)

    app = open_app()
    app._loop = Loop()
    app.state.update(status="loading", generation=99)
    worker = threading.Thread(target=app.redraw)
    worker.start()
    worker.join()
    assert len(app._loop.callbacks) == 1                       # handed over, not drawn there
    assert 'data-generation="99"' not in app.status.value
    app._loop.callbacks.pop()()                                  # the kernel's thread draws it
    assert 'data-state="loading" data-generation="99"' in app.status.value
    app.redraw()                                                 # the main thread draws at once
    assert app._loop.callbacks == []


# ---------------------------------------------------------------------------- preheated kernels, the visit's URL

def test_voila_command_preheats_a_pool_of_kernels(tmp_path):
    from speedlab.cache import CACHE_DIR_ENV
    from speedlab.errors import ConfigError

    assert voila_command("/x/d.ipynb", 8899)[-2:] == ["--preheat_kernel=True", "--pool_size=1"]
    assert voila_command("/x/d.ipynb", 8899, pool_size=2)[-1] == "--pool_size=2"
    assert not [a for a in voila_command("/x/d.ipynb", 8899, pool_size=0) if "preheat" in a or "pool" in a]
    config = load_config(env={}, store=str(tmp_path), sections={"dashboard": {"pool_size": 3}})
    assert config.dashboard.pool_size == 3 and load_config(env={}, store=str(tmp_path)).dashboard.pool_size == 1
    for bad in (-1, 9, 1.5, True, "2"):
        with pytest.raises(ConfigError, match=r"\[dashboard\] pool_size = .* from 0 to 8"):
            load_config(env={}, store=str(tmp_path), sections={"dashboard": {"pool_size": bad}})
    env = voila_env(config, base={CACHE_DIR_ENV: "/elsewhere"}, cache_dir=tmp_path / "c")
    assert env[CACHE_DIR_ENV] == str(tmp_path / "c") and env == {**env, **config.child_env()}
    assert CACHE_DIR_ENV not in voila_env(config, base={CACHE_DIR_ENV: "/elsewhere"})


def test_launch_gives_the_kernels_a_private_shared_cache_that_stop_removes(monkeypatch, tmp_path):
    import os
    import stat

    from speedlab import serve
    from speedlab.cache import CACHE_DIR_ENV

    started = []

    class FakeVoila:
        def __init__(self, command, env, **kwargs):
            self.command, self.env, self.stdout, self.returncode = command, env, iter(()), None
            started.append(self)

        def poll(self):
            return self.returncode

        def terminate(self):
            self.returncode = -15

        def wait(self, timeout=None):
            return self.returncode
    monkeypatch.setattr(serve.subprocess, "Popen", FakeVoila)
    config = load_config(env={}, store=str(tmp_path), sections={"dashboard": {"pool_size": 2}})
    process = serve.launch(config, 8899)
    folder = process.env[CACHE_DIR_ENV]
    assert "--pool_size=2" in process.command and os.path.isdir(folder)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700          # this user's kernels only
    assert serve.stop(process) == -15 and not os.path.exists(folder)
    assert "--preheat_kernel=True" not in serve.launch(config, 8899, pool_size=0).command
    dead = started[-1]
    dead.returncode = 1                                              # exited without stop()
    serve.launch(config, 8899)
    assert not os.path.exists(dead.env[CACHE_DIR_ENV])             # swept by the next launch
    serve.stop(started[-1])


@pytest.mark.slow
def test_apply_query_string_applies_each_parameter_after_the_default_view(open_app, site):
    store, config, _ = site
    app = open_app()
    assert (app.selection.mode, app.selection.days, state_of(app)) == ("daily", 7, "ready")
    generation = app.state["generation"]
    app.apply_query_string("")                                       # what the app was made with: nothing
    app.apply_query_string(None)
    assert app.state["generation"] == generation
    app.apply_query_string("?mode=weekly&days=12&host=office-main")
    app.wait()
    assert (app.mode.value, app.period.value, app.host.value) == ("weekly", 12, "office-main")
    assert app.state["generation"] == generation + 1 and state_of(app) == "ready"
    assert app.state["rows"] == query.rows("weekly", 12, "office-main", store=store, config=config, now=NOW)
    assert app.notes == [] and len(table_rows(app)) == 12
    assert "Weekly · Last 12 weeks · office-main" in app.status.value
    app.apply_query_string("mode=weekly&days=12&host=office-main&force_refresh=1")
    app.wait()
    assert "from the store" in app.state["info"] and app.selection.force_refresh
    app._loaded_at -= cache.CACHE_TTL_S                             # a kernel preheated long ago
    app.apply_query_string("mode=weekly&days=12&host=office-main&force_refresh=1")
    app.wait()
    assert app.state["generation"] == generation + 3


@pytest.mark.slow
def test_apply_query_string_falls_back_on_invalid_values_with_the_visible_note(open_app):
    app = open_app()
    app.apply_query_string("mode=fortnightly&days=-3&host=no/such")
    app.wait()
    assert (app.mode.value, app.period.value, app.host.value) == ("daily", 7, "all")
    assert len(app.notes) == 3 and app.note.layout.display == ""
    assert "mode=&#x27;fortnightly&#x27; is not a mode" in app.note.value
    assert "host=&#x27;no/such&#x27; is not a valid host id; showing all hosts." in app.note.value
    app.apply_query_string("mode=monthly&days=2&host=ghost")
    app.wait()
    assert (app.mode.value, app.period.value, app.host.value) == ("monthly", 2, "all")
    assert "host=&#x27;ghost&#x27; has no data in this store" in app.note.value and len(app.notes) == 1
    assert state_of(app) == "ready" and len(table_rows(app)) == 2


@pytest.mark.slow
def test_a_preheated_kernel_draws_the_default_view_before_the_visit(site):
    _, config, _ = site
    environ = {**config.child_env(), "SPEEDLAB_DASHBOARD_NOW": NOW.isoformat(), "QUERY_STRING": "mode=weekly"}
    app = App.for_visit(environ={**environ, "VOILA_PREHEAT": "True"})
    try:   # drawn on return, not in the background; $QUERY_STRING is not the visitor's yet
        assert state_of(app) == "ready" and app.selection.mode == "daily" and set(app._charts) == {"chart", "heatmap"}
        assert app.host.options[-1] == ("office-main", "office-main")
        app.apply_query_string("mode=hourly&days=2")
        app.wait()
        assert app.selection.describe() == "Hourly · Last 2 days · All hosts" and len(table_rows(app)) == 48
    finally:
        app.close()
    plain = App.for_visit(environ=environ)                          # a kernel per visit: $QUERY_STRING
    try:
        plain.wait()
        assert plain.selection.mode == "weekly" and state_of(plain) == "ready"
        plain.apply_query_string("mode=weekly")                     # the same: nothing more to load
        assert plain.state["generation"] == 1
    finally:
        plain.close()
