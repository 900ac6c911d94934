"""The Voilà dashboard: :class:`App`, the widget page behind ``notebooks/dashboard.ipynb``.

Shaped like the voila-gallery apps: a loader (:meth:`App.apply`, which reads in a background
thread through :func:`speedlab.query.rows`), methods that build widgets, and one
:meth:`App.redraw` that draws the current state. The notebook's last cell is ``app.container``.

The page appears at once: building the widgets reads nothing and imports neither Altair nor
pandas; the host list, the rows, Altair (slow to import) and the charts arrive from the
background thread while a loading indicator shows. Charts are Altair ``JupyterChart`` widgets
in offline mode (no CDN is needed) placed straight into the layout, never written through an
``Output`` widget (Voilà issue #1428: that can hang a page while it loads).

URL query parameters preselect the controls: ``?mode=weekly&days=56&host=office-main``, plus
``force_refresh=1``. Invalid values fall back to the defaults and say so on the page.

Serving: :func:`serve` runs Voilà on 127.0.0.1 (``speedlab dashboard``), handing the store and
configuration to the kernels through ``SPEEDLAB_*`` environment variables.
"""

from __future__ import annotations

import html
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import ipywidgets as widgets

from .bundled import dashboard_notebook
from .charts import GAP_COLORS, charts, heatmap_chart
from .config import Config, load_config
from .errors import ServeError, SpeedlabError
from .joblog import JobLog
from .query import (
    ALL_HOSTS,
    DEFAULT_DAYS,
    HEATMAP_DAYS,
    MAX_DAYS,
    MODES,
    QueryError,
    check_query,
    get_rows,
    headline,
    heatmap,
    parse_now,
    rows,
)
from .reader import list_hosts
from .store import Store

__all__ = [
    "App", "PERIOD_CHOICES", "Selection", "charts", "enable_offline_charts", "headline_html",
    "heatmap_chart", "launch", "notebook_path", "parse_query_string", "period_options", "resolve_host",
    "rows", "serve", "stop", "table_html", "voila_command", "voila_env", "voila_template_root", "relay_server_output",
    "SERVER_NOISE",
    "wait_until_serving", "VOILA_TEMPLATE",
    "period_label", "skip_iri_grammar",
]

MODE_LABELS = {"minute": "15-min", "hourly": "Hourly", "daily": "Daily", "weekly": "Weekly",
               "monthly": "Monthly", "yearly": "Yearly"}
#: The Period menu of each mode (in days, weeks, months or years).
PERIOD_CHOICES = {"minute": (1, 2, 3, 7), "hourly": (1, 2, 3, 7, 14),
                  "daily": (7, 14, 30, 60, 90, 180, 365), "weekly": (4, 8, 12, 26, 52),
                  "monthly": (2, 3, 6, 12, 24), "yearly": (1, 2, 3, 5, 10)}
UNITS = {"minute": "day", "hourly": "day", "daily": "day", "weekly": "week", "monthly": "month",
         "yearly": "year"}
DEFAULT_MODE = "daily"


# ============================================================================ controls (pure)

@dataclass(frozen=True)
class Selection:
    """What the controls select: a mode, a number of periods, a host, and whether to bypass the cache."""

    mode: str = DEFAULT_MODE
    days: int = DEFAULT_DAYS[DEFAULT_MODE]
    host: str = ALL_HOSTS
    force_refresh: bool = False

    def describe(self) -> str:
        """``Daily · Last 7 days · All hosts``."""
        host = "All hosts" if self.host == ALL_HOSTS else self.host
        return f"{MODE_LABELS[self.mode]} · {period_label(self.mode, self.days)} · {host}"


def period_label(mode: str, days: int) -> str:
    """``Last 7 days``, ``Last 1 week``, ``Last 5 years``."""
    unit = UNITS[mode]
    return f"Last {days} {unit}{'' if days == 1 else 's'}"


def period_options(mode: str, extra: int | None = None) -> list[tuple[str, int]]:
    """The Period menu of ``mode`` as ``(label, days)`` pairs, with ``extra`` added if missing."""
    choices = sorted(set(PERIOD_CHOICES[mode]) | ({extra} if extra else set()))
    return [(period_label(mode, n), n) for n in choices]


def parse_query_string(query_string: str | None) -> tuple[Selection, list[str]]:
    """Read ``mode``, ``days``, ``host`` and ``force_refresh`` from a URL query string.

    Never raises: an invalid value is replaced by the default and explained in a note.

    Returns
    -------
    (Selection, notes)
    """
    params = parse_qs((query_string or "").lstrip("?"), keep_blank_values=True)

    def get(name: str) -> str | None:
        values = params.get(name)
        return values[-1].strip() if values else None

    notes: list[str] = []
    mode = DEFAULT_MODE
    mode_text = get("mode")
    if mode_text is not None:
        try:
            mode = check_query(mode_text, 1)[0]
        except QueryError:
            notes.append(f"mode={get('mode')!r} is not a mode (use one of {', '.join(MODES)}); "
                         f"showing {MODE_LABELS[DEFAULT_MODE]}.")
    days = DEFAULT_DAYS[mode]
    if get("days") is not None:
        try:
            days = check_query(mode, get("days"))[1]
        except QueryError:
            notes.append(f"days={get('days')!r} does not fit mode {mode} (use 1 to {MAX_DAYS[mode]} "
                         f"{UNITS[mode]}s); showing {period_label(mode, days)}.")
    host = ALL_HOSTS
    if get("host") is not None:
        try:
            host = check_query(mode, days, get("host"))[2]
        except QueryError:
            notes.append(f"host={get('host')!r} is not a valid host id; showing all hosts.")
    force = (get("force_refresh") or "").lower() in ("1", "true", "yes", "on")
    return Selection(mode, days, host, force), notes


def resolve_host(host: str, hosts: Sequence[str]) -> tuple[str, str | None]:
    """``(host, None)`` if ``host`` is ``all`` or known, else ``("all", note)``."""
    if host == ALL_HOSTS or host in hosts:
        return host, None
    known = ", ".join(hosts) if hosts else "none yet"
    return ALL_HOSTS, f"host={host!r} has no data in this store (hosts: {known}); showing all hosts."


# ============================================================================ HTML (pure)

def _fmt(value: Any, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


TABLE_COLUMNS = (("Period", "date_ist_str"), ("Download avg [Mbit/s]", "download_avg"),
                 ("Upload avg [Mbit/s]", "upload_avg"), ("Ping avg [ms]", "ping_avg"),
                 ("Download min [Mbit/s]", "download_min"), ("Download max [Mbit/s]", "download_max"),
                 ("Tests", "tests"), ("Failed", "failed"), ("Coverage [%]", "coverage_pct"),
                 ("Days", "days"), ("Connection", "connection_type"),
                 ("Below plan", "below_expected"), ("Status", "status"))


def table_html(rows: Sequence[dict]) -> str:
    """The rows as an HTML table, oldest first; missing values show as ``—``, never 0."""
    head = "".join(f"<th>{html.escape(title)}</th>" for title, _ in TABLE_COLUMNS)
    body = []
    for row in rows:
        cells = []
        for _, name in TABLE_COLUMNS:
            value = row.get(name)
            text = _fmt(value, 1 if name == "coverage_pct" else 2)
            cells.append(f'<td data-col="{name}">{html.escape(text)}</td>')
        title = html.escape(row.get("error") or "", quote=True)
        body.append(f'<tr class="status-{row["status"]}" data-period="{html.escape(row["period"])}" '
                    f'title="{title}">{"".join(cells)}</tr>')
    if not rows:
        body.append(f'<tr><td colspan="{len(TABLE_COLUMNS)}">No periods.</td></tr>')
    return (f'<div class="speedlab-table-wrap"><table class="speedlab-rows"><thead><tr>{head}</tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table></div>')


def headline_html(stats: Mapping[str, Any]) -> str:
    """Headline cards: averages, extremes, tests, failed tests, coverage, periods below plan."""
    cards = [
        ("download_avg", "Download avg", _fmt(stats["download_avg"], 2, " Mbit/s")),
        ("upload_avg", "Upload avg", _fmt(stats["upload_avg"], 2, " Mbit/s")),
        ("ping_avg", "Ping avg", _fmt(stats["ping_avg"], 2, " ms")),
        ("download_range", "Download min / max",
         f'{_fmt(stats["download_min"])} / {_fmt(stats["download_max"], 2, " Mbit/s")}'),
        ("upload_range", "Upload min / max",
         f'{_fmt(stats["upload_min"])} / {_fmt(stats["upload_max"], 2, " Mbit/s")}'),
        ("tests", "Tests", _fmt(stats["tests"])),
        ("failed", "Failed tests", _fmt(stats["failed"])),
        ("coverage_pct", "Coverage", _fmt(stats["coverage_pct"], 1, " %")),
        ("below_expected", "Periods below plan",
         f'{stats["periods_below_expected"]} of {stats["periods_judged"]}'
         if stats["periods_judged"] else "no plan"),
        ("missing", "Periods without data",
         f'{stats["periods_missing"] + stats["periods_failed"] + stats["periods_unreadable"]}'
         f' of {stats["periods"]}'),
    ]
    return '<div class="speedlab-cards">' + "".join(
        f'<div class="speedlab-card" data-stat="{key}"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(value)}</div></div>' for key, label, value in cards) + "</div>"


LEGEND = ('<div class="speedlab-legend">Dashed vertical lines mark periods without a measurement: '
          f'<span style="color:{GAP_COLORS["missing"]}">grey</span> no data, '
          f'<span style="color:{GAP_COLORS["failed"]}">red</span> only failed tests, '
          f'<span style="color:{GAP_COLORS["unreadable"]}">orange</span> unreadable data; '
          f'<span style="color:{GAP_COLORS["failed"]}">&#9660;</span> failed tests in a period; '
          "dashed horizontal lines are the plan's speeds. Hover a point for its numbers.</div>")

STYLE = """<style>
.speedlab-app { max-width: 1100px; font-family: system-ui, sans-serif; }
.speedlab-app h2 { margin: 4px 0 8px 0; }
.speedlab-note { color: #8a5300; background: #fff4e0; padding: 4px 8px; border-radius: 4px; }
.speedlab-status { color: #555; min-height: 1.6em; }
.speedlab-legend { color: #666; font-size: 12px; }
.speedlab-status .error { color: #b00020; }
.speedlab-spinner { display: inline-block; width: 12px; height: 12px; border: 2px solid #bbb;
  border-top-color: #1f77b4; border-radius: 50%; animation: speedlab-spin 0.8s linear infinite;
  vertical-align: middle; margin-right: 6px; }
@keyframes speedlab-spin { to { transform: rotate(360deg); } }
.speedlab-busy .speedlab-chart, .speedlab-busy .speedlab-table, .speedlab-busy .speedlab-headline { opacity: 0.5; }
.speedlab-cards { display: flex; flex-wrap: wrap; gap: 8px; }
.speedlab-card { border: 1px solid #ddd; border-radius: 6px; padding: 6px 10px; min-width: 120px; }
.speedlab-card .label { font-size: 11px; color: #666; }
.speedlab-card .value { font-size: 16px; font-weight: 600; }
.speedlab-table-wrap { max-height: 420px; overflow: auto; }
.speedlab-rows { border-collapse: collapse; font-size: 12px; }
.speedlab-rows th, .speedlab-rows td { border-bottom: 1px solid #eee; padding: 2px 6px; text-align: right;
  white-space: nowrap; }
.speedlab-rows th { position: sticky; top: 0; background: #fafafa; }
.speedlab-rows tr.status-missing td, .speedlab-rows tr.status-pending td { color: #999; }
.speedlab-rows tr.status-failed td { color: #d62728; }
.speedlab-rows tr.status-unreadable td { color: #ff7f0e; }
</style>"""


# ============================================================================ charts

_OFFLINE_LOCK = threading.Lock()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "speedlab"


def _kernel_io_loop():
    """The running IPython kernel's event loop, or ``None`` outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipywidgets brings IPython
        return None
    kernel = getattr(get_ipython(), "kernel", None)
    return getattr(kernel, "io_loop", None)


def skip_iri_grammar() -> None:
    """Spare a dashboard kernel ~2 s of start-up: keep jsonschema from building an IRI grammar.

    Altair imports jsonschema, whose optional ``iri`` format checker imports
    ``rfc3987_syntax`` (installed beside Jupyter), which builds a lark grammar at import time:
    about 2 of Altair's 4 s import here (``benchmarks/bench_dashboard_page.py``). Charts never
    validate IRIs, so the dashboard kernel marks that optional module as absent before the
    first import; jsonschema then simply leaves the ``iri`` format unchecked. Does nothing once
    jsonschema is imported. Called by :meth:`App.from_config` when
    ``$SPEEDLAB_DASHBOARD_KERNEL`` is set (``voila_env`` sets it; ``=0`` turns it off).
    """
    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # import -> ImportError


def enable_offline_charts(cache_dir: str | os.PathLike | None = None) -> None:
    """Make Altair's ``JupyterChart`` load Vega from the kernel, not a CDN.

    Same as ``alt.JupyterChart.enable_offline()``, whose JavaScript bundle takes seconds to
    build; the bundle is kept in ``cache_dir`` (default ``~/.cache/speedlab``) per Altair
    and vl-convert version, so later kernels start their charts at once.
    """
    import altair as alt

    with _OFFLINE_LOCK:
        if getattr(alt.JupyterChart, "_is_offline", False):
            return
        path = None
        try:
            from importlib.metadata import version

            import vl_convert

            vlc_version = vl_convert.__version__  # type: ignore[attr-defined]  # set at runtime, not in its stub
            path = Path(cache_dir or _cache_dir()) / (
                f"jupyterchart-offline-altair{version('altair')}-vlc{vlc_version}.js")
            if path.is_file():
                alt.JupyterChart._esm = path.read_text(encoding="utf-8")
                alt.JupyterChart._is_offline = True
                return
        except Exception:  # any trouble with the cache: build the bundle the documented way
            pass
        alt.JupyterChart.enable_offline()
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(alt.JupyterChart._esm)
                os.replace(tmp, path)
            except OSError:
                pass


# ============================================================================ the app

class App:
    """The dashboard: controls, charts, headline statistics, the table and a heatmap.

    Parameters
    ----------
    store : Store
        Where the results and summaries are.
    config : Config
        Time zone, buckets, plans; ``[dashboard] heatmap_days`` (default 28).
    query_string : str
        The page URL's query string (Voilà passes it as ``QUERY_STRING``).
    now : datetime, optional
        Pin the clock (a past moment, a demo); default the live clock.
    autoload : bool
        Start loading the host list and the data at once (in a background thread).
    startup_error : str, optional
        Show this instead of loading (the store or configuration could not be opened).

    Attributes
    ----------
    container : ipywidgets.VBox
        The whole page.
    state : dict
        What :meth:`redraw` draws: ``rows``, ``stats``, ``cells``, ``status``, ``error``.
    """

    def __init__(self, store: Store | None, config: Config | None, *, query_string: str = "",
                 now: datetime | None = None, autoload: bool = True,
                 startup_error: str | None = None) -> None:
        self.store, self.config, self.now = store, config, now
        settings = config.section("dashboard") if config is not None else {}
        self.heatmap_days = int(settings.get("heatmap_days", HEATMAP_DAYS))
        try:
            self.log = JobLog.for_config(config, "dashboard") if config is not None else JobLog(None, "dashboard")
        except SpeedlabError:  # a missing local store folder: shown on the page, nothing created in it
            self.log = JobLog(None, "dashboard")
        self.selection, self.notes = parse_query_string(query_string)
        self.hosts: list[str] = []
        self.state: dict[str, Any] = {"rows": None, "stats": None, "cells": None, "status": "starting",
                                      "error": startup_error, "info": "", "generation": 0}
        self._generation = 0
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="speedlab-dashboard")
        self._charts: dict[str, Any] = {}
        self._redraw_lock = threading.RLock()
        self._main_thread = threading.current_thread()
        self._loop = _kernel_io_loop()
        self._build_widgets()
        self.log.start("dashboard opened", selection=self.selection.describe(), notes=self.notes)
        for note in self.notes:
            self.log.warning(note)
        self.redraw()
        if autoload and startup_error is None:
            self._executor.submit(self._startup)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_store(cls, store: Store, config: Config | None = None, **kwargs: Any) -> App:
        """An app over ``store`` (``config``: default the loaded configuration)."""
        return cls(store, config if config is not None else load_config(), **kwargs)

    @classmethod
    def from_config(cls, config: Config | None = None, *, store: str | None = None,
                    query_string: str | None = None, now: str | datetime | None = None,
                    environ: Mapping[str, str] | None = None, **kwargs: Any) -> App:
        """An app over the configured store; never raises for a bad configuration.

        ``store`` (a URL) overrides the configured one. ``query_string`` defaults to
        ``$QUERY_STRING`` (set by Voilà) and ``now`` to ``$SPEEDLAB_DASHBOARD_NOW``. A
        configuration error is shown on the page instead of data.
        """
        environ = os.environ if environ is None else environ
        if environ.get("SPEEDLAB_DASHBOARD_KERNEL", "0") != "0":
            skip_iri_grammar()
        query_string = environ.get("QUERY_STRING", "") if query_string is None else query_string
        try:
            config = config if config is not None else load_config(env=environ)
            if store:
                config = config.with_overrides(store=str(store))
            moment = parse_now(now if now is not None else environ.get("SPEEDLAB_DASHBOARD_NOW"))
            return cls(config.open_store(), config, query_string=query_string, now=moment, **kwargs)
        except SpeedlabError as exc:
            return cls(None, config if isinstance(config, Config) else None, query_string=query_string,
                       startup_error=str(exc), **kwargs)

    # ------------------------------------------------------------------ widgets
    def _build_widgets(self) -> None:
        sel = self.selection
        self.style = widgets.HTML(STYLE)
        title = (self.config.section("dashboard") if self.config is not None else {}).get("title")
        self.title = widgets.HTML(f"<h2>{html.escape(str(title or 'Internet Speed Overview'))}</h2>")
        self.mode = widgets.Dropdown(options=[(MODE_LABELS[m], m) for m in MODES], value=sel.mode,
                                     description="Mode", layout=widgets.Layout(width="180px"))
        self.period = widgets.Dropdown(options=period_options(sel.mode, sel.days), value=sel.days,
                                       description="Period", layout=widgets.Layout(width="220px"))
        self.host = widgets.Dropdown(options=self._host_options([sel.host] if sel.host != ALL_HOSTS else []),
                                     value=sel.host, description="Host", layout=widgets.Layout(width="260px"))
        self.apply_button = widgets.Button(description="Apply", button_style="primary", icon="check")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh",
                                             tooltip="Read the store again, bypassing the 2-minute cache")
        self.note = widgets.HTML()
        self.status = widgets.HTML()
        self.headline = widgets.HTML()
        self.chart_box = widgets.Box(layout=widgets.Layout(min_height="420px"))
        self.legend = widgets.HTML(LEGEND)
        self.heatmap_title = widgets.HTML()
        self.heatmap_box = widgets.Box(layout=widgets.Layout(min_height="200px"))
        self.table = widgets.HTML()
        for widget, name in ((self.mode, "mode"), (self.period, "period"), (self.host, "host"),
                             (self.apply_button, "apply"), (self.refresh_button, "refresh"),
                             (self.note, "note"), (self.status, "status"), (self.headline, "headline"),
                             (self.chart_box, "chart"), (self.heatmap_box, "heatmap"),
                             (self.table, "table")):
            widget.add_class(f"speedlab-{name}")
        self.mode.observe(self._on_mode, names="value")
        self.apply_button.on_click(lambda _: self.apply())
        self.refresh_button.on_click(lambda _: self.refresh())
        controls = widgets.HBox([self.mode, self.period, self.host, self.apply_button, self.refresh_button],
                                layout=widgets.Layout(flex_flow="row wrap"))
        self.container = widgets.VBox(
            [self.style, self.title, controls, self.note, self.status, self.headline, self.chart_box,
             self.legend, self.heatmap_title, self.heatmap_box, widgets.HTML("<h3>Periods</h3>"), self.table])
        self.container.add_class("speedlab-app")

    @staticmethod
    def _host_options(hosts: Sequence[str]) -> list[tuple[str, str]]:
        return [("All hosts", ALL_HOSTS)] + [(h, h) for h in hosts]

    def _on_mode(self, change: dict) -> None:
        mode = change["new"]
        self.period.options = period_options(mode)
        self.period.value = DEFAULT_DAYS[mode]

    def selected(self) -> Selection:
        """The selection the controls show now."""
        return Selection(self.mode.value, int(self.period.value), self.host.value or ALL_HOSTS)

    def select(self, mode: str | None = None, days: int | None = None, host: str | None = None) -> None:
        """Set the controls (as a user would), without loading."""
        if mode is not None:
            self.mode.value = mode
        if days is not None:
            if days not in [v for _, v in self.period.options]:
                self.period.options = period_options(self.mode.value, days)
            self.period.value = days
        if host is not None:
            self.host.value = host

    # ------------------------------------------------------------------ loading
    def _startup(self) -> None:
        if self.store is None or self.config is None:  # it used to stay "starting" for good
            self._fail("nothing to show: the dashboard was given no store or configuration", self._generation)
            return
        try:
            self.hosts = list_hosts(self.store, self.config.buckets)
        except SpeedlabError as exc:
            self._fail(f"cannot list hosts: {exc}", self._generation)
            return
        host, note = resolve_host(self.selection.host, self.hosts)
        if note:
            self.notes.append(note)
            self.log.warning(note)
        options = self._host_options(self.hosts)
        self._on_kernel_thread(lambda: self._set_host_menu(options, host))
        self.selection = replace(self.selection, host=host)
        with self._lock:
            self._generation += 1
            generation = self._generation
        self._load(replace(self.selection, host=host), generation)

    def apply(self, force_refresh: bool = False) -> Future:
        """Load what the controls select (in the background) and redraw; return the future."""
        selection = replace(self.selected(), force_refresh=force_refresh)
        with self._lock:
            self._generation += 1
            generation = self._generation
        self.selection = selection
        self.state.update(status="loading", generation=generation)
        self.redraw()
        return self._executor.submit(self._load, selection, generation)

    def refresh(self) -> Future:
        """Like Apply, but read the store again (the cache is bypassed and renewed)."""
        return self.apply(force_refresh=True)

    def wait(self, timeout_s: float = 60.0) -> None:
        """Block until every load asked for so far has been drawn (for tests and scripts)."""
        self._executor.submit(lambda: None).result(timeout_s)

    def close(self) -> None:
        """Stop the loader thread and close the widgets."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.log.end("dashboard closed")
        self.container.close()

    def _current(self, generation: int) -> bool:
        return generation == self._generation

    def _fail(self, message: str, generation: int) -> None:
        self.log.error(message)
        if self._current(generation):
            self.state.update(status="error", error=message)
            self.redraw()

    def _load(self, selection: Selection, generation: int) -> None:
        if not self._current(generation):
            return  # a newer Apply came in while this one waited
        self.state.update(status="loading", generation=generation, error=None)
        self.redraw()
        try:
            answer = get_rows(selection.mode, selection.days, selection.host, store=self.store, config=self.config,
                              now=self.now, log=self.log, force_refresh=selection.force_refresh)
        except SpeedlabError as exc:
            self._fail(f"could not load {selection.describe()}: {exc}", generation)
            return
        except Exception as exc:  # never a traceback in the page: show it, log it
            self._fail(f"unexpected error loading {selection.describe()}: {exc!r}", generation)
            return
        self.log.info("rows loaded", mode=selection.mode, days=selection.days, host=selection.host,
                      rows=len(answer.rows), from_cache=answer.from_cache,
                      elapsed_s=round(answer.elapsed_s, 4))
        if not self._current(generation):
            return
        source = "from the cache" if answer.from_cache else "from the store"
        self.state.update(rows=answer.rows, stats=headline(answer.rows), status="drawing",
                          info=f"{len(answer.rows)} periods {source} in {answer.elapsed_s:.2f} s")
        self.redraw()
        self.log.log("debug", "rows drawn", generation=generation)
        try:
            cells = heatmap(self.heatmap_days, selection.host, store=self.store, config=self.config, now=self.now,
                            log=self.log, force_refresh=selection.force_refresh)
        except Exception as exc:
            self.log.warning(f"heatmap not loaded: {exc}")
            cells = None
        self.log.log("debug", "heatmap loaded", generation=generation)
        if self._current(generation):
            self.state.update(cells=cells, status="ready")
            self.redraw()

    # ------------------------------------------------------------------ drawing
    def redraw(self) -> None:
        """Draw ``state`` into the widgets: status, headline, charts, heatmap, table.

        In a kernel, a call from the loader thread is handed to the kernel's own event loop
        (``add_callback`` is thread-safe and keeps order), so every widget message leaves from
        the kernel's main thread: widget updates sent from a second thread while Voilà's page
        was connecting were lost in about 1 of 6 page loads (status stuck at "heatmap
        loading…"). Outside a kernel (tests, scripts) it draws at once.
        """
        self._on_kernel_thread(self._redraw_locked)

    def _on_kernel_thread(self, fn) -> None:
        """Run ``fn`` now on the kernel's thread, or hand it to the kernel's loop (in order)."""
        if self._loop is not None and threading.current_thread() is not self._main_thread:
            self._loop.add_callback(fn)
        else:
            fn()

    def _set_host_menu(self, options, host: str) -> None:
        self.host.options = options
        self.host.value = host

    def _redraw_locked(self) -> None:
        with self._redraw_lock:  # the loader thread and a click may both redraw
            self._redraw()

    def _redraw(self) -> None:
        state, sel = self.state, self.selection
        notes = "".join(f"<div>{html.escape(n)}</div>" for n in self.notes)
        self.note.value = notes
        self.note.layout.display = "" if notes else "none"
        status = state["status"]
        if state["error"]:
            text = f'<span class="error">{html.escape(state["error"])}</span>'
            status = "error"
        elif status in ("starting", "loading"):
            text = f'<span class="speedlab-spinner"></span>Loading {html.escape(sel.describe())}…'
        elif status == "drawing":
            text = f'<span class="speedlab-spinner"></span>{html.escape(sel.describe())}: ' \
                   f'{html.escape(state["info"])}; heatmap loading…'
        else:
            text = f'{html.escape(sel.describe())}: {html.escape(state["info"])}'
        self.status.value = (f'<div class="speedlab-state" data-state="{status}" '
                             f'data-generation="{state["generation"]}">{text}</div>')
        busy = status in ("starting", "loading")
        (self.container.add_class if busy else self.container.remove_class)("speedlab-busy")
        if state["rows"] is None or status == "loading":
            return
        self.headline.value = headline_html(state["stats"])
        self.table.value = table_html(state["rows"])
        host = "all hosts" if sel.host == ALL_HOSTS else sel.host
        self._draw("chart", self.chart_box,
                   lambda: charts(state["rows"], sel.mode, f"{sel.describe()}"))
        self.heatmap_title.value = (f"<h3>Download by hour of day and weekday — last "
                                    f"{self.heatmap_days} days, {html.escape(host)}</h3>")
        if state["cells"] is not None and status == "ready":
            self._draw("heatmap", self.heatmap_box, lambda: heatmap_chart(state["cells"]))

    def _draw(self, name: str, box: widgets.Box, build) -> None:
        chart = build()
        widget = self._charts.get(name)
        if widget is None:
            import altair as alt

            enable_offline_charts()
            widget = alt.JupyterChart(chart, embed_options={"renderer": "svg", "actions": False})
            widget.add_class(f"speedlab-{name}-widget")
            self._charts[name] = widget
            box.children = (widget,)
        else:
            widget.chart = chart


# ============================================================================ serving

#: The Voilà template the dashboard is served with (see :func:`voila_template_root`).
VOILA_TEMPLATE = "speedlab"


def notebook_path() -> Path:
    """The dashboard notebook (``notebooks/dashboard.ipynb``, shipped inside the package)."""
    return dashboard_notebook()


def voila_command(notebook: str | os.PathLike, port: int, *, ip: str = "127.0.0.1",
                  cull_idle_s: int = 600, module: str = "voila") -> list[str]:
    """The Voilà command line: local address only, no browser, idle kernels culled.

    ``module="speedlab.api"`` runs Voilà with speedlab's HTTP API beside the dashboard.
    """
    return [sys.executable, "-m", module, os.fspath(notebook), "--no-browser", f"--port={int(port)}",
            f"--Voila.ip={ip}", "--Voila.port_retries=0", f"--template={VOILA_TEMPLATE}",
            "--MappingKernelManager.cull_interval=60",
            f"--MappingKernelManager.cull_idle_timeout={int(cull_idle_s)}"]


def voila_env(config: Config, now: str | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for Voilà and its kernels: the configuration as ``SPEEDLAB_*`` variables."""
    env = dict(os.environ if base is None else base)
    env.setdefault("SPEEDLAB_DASHBOARD_KERNEL", "1")  # see skip_iri_grammar
    env.update(SPEEDLAB_STORE=config.store, SPEEDLAB_TIMEZONE=config.timezone,
               SPEEDLAB_HOST_ID=config.host_id, SPEEDLAB_STATE_DIR=str(config.state_path))
    if config.source:
        env["SPEEDLAB_CONFIG"] = str(Path(config.source).resolve())
    for key in ("endpoint_url", "region", "profile"):
        if config.s3.get(key):
            env[f"SPEEDLAB_S3_{key.upper()}"] = str(config.s3[key])
    for key, name in (("access_key_id", "AWS_ACCESS_KEY_ID"), ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                      ("session_token", "AWS_SESSION_TOKEN")):
        if config.s3.get(key):
            env[name] = str(config.s3[key])
    if config.plan.download_mbps:
        env["SPEEDLAB_PLAN_DOWNLOAD_MBPS"] = str(config.plan.download_mbps)
    if config.plan.upload_mbps:
        env["SPEEDLAB_PLAN_UPLOAD_MBPS"] = str(config.plan.upload_mbps)
    env["SPEEDLAB_BELOW_EXPECTED_FRACTION"] = str(config.below_expected_fraction)
    if now:
        parse_now(now)
        env["SPEEDLAB_DASHBOARD_NOW"] = now
    env.pop("QUERY_STRING", None)
    # speedlab's Voilà template (Voilà's lab template with no CDN stylesheet) ships in the package
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(voila_template_root()), env.get("JUPYTER_PATH")]))
    return env


def voila_template_root() -> Path:
    """The Jupyter data folder inside the package that holds Voilà's ``speedlab`` template
    (``voila/templates/speedlab``): Voilà's ``lab`` template without its CDN stylesheets."""
    return Path(__file__).resolve().parent / "jupyter"


def wait_until_serving(process: subprocess.Popen, port: int, timeout_s: float = 60.0) -> bool:
    """Poll the server on ``port`` until it answers; ``False`` if it has not after ``timeout_s``.

    The probe is Voilà's favicon (a ``GET /`` would start a kernel).

    Raises
    ------
    ServeError
        If the server exits before it answers (its port is taken, Voilà failed).
    """
    url = f"http://127.0.0.1:{int(port)}/voila/static/favicon.ico"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServeError(f"the dashboard server exited with status {process.returncode} before it "
                             f"answered on port {port}: is the port taken? Pass another --port")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.2)
    return False


def serve(config: Config, port: int = 8866, *, now: str | None = None,
          notebook: str | os.PathLike | None = None, cull_idle_s: int = 600, api: bool = False,
          announce: Callable[[str], None] | None = None, ready_timeout_s: float = 60.0) -> int:
    """Serve the dashboard with Voilà on 127.0.0.1 until interrupted; return Voilà's exit status.

    With ``api`` the same server also answers speedlab's HTTP JSON API (:mod:`speedlab.api`).
    ``announce`` is called with the dashboard's URL once the server answers on it (not before:
    a URL printed earlier would be refused for a second or two).

    Raises
    ------
    ServeError
        If Voilà exits before it answers.
    """
    log = JobLog.for_config(config, "dashboard")
    log.start("voila serving", port=port, store=config.store)
    process = launch(config, port, now=now, notebook=notebook, cull_idle_s=cull_idle_s, api=api)
    try:
        ready = wait_until_serving(process, port, ready_timeout_s)
    except BaseException:
        stop(process)
        raise
    if announce is not None:
        url = f"http://127.0.0.1:{port}/"
        announce(url if ready else f"{url} (not answering yet after {ready_timeout_s:.0f} s; it may still be starting)")
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):  # SIGTERM (a service manager, a test) stops Voilà too
            raise KeyboardInterrupt
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        while True:  # short waits: Ctrl+C is handled even when another thread (polars) caught it
            try:
                code = process.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:
        code = stop(process)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    log.end("voila stopped", exit_code=code)
    return code


def launch(config: Config, port: int = 8866, *, now: str | None = None,
           notebook: str | os.PathLike | None = None, cull_idle_s: int = 600,
           api: bool = False) -> subprocess.Popen:
    """Start Voilà (with ``api``, also the HTTP API) on 127.0.0.1 in its own session and return
    the process without waiting (``speedlab up`` runs it beside the collector); :func:`stop` ends it."""
    command = voila_command(notebook or notebook_path(), port, cull_idle_s=cull_idle_s,
                            module="speedlab.api" if api else "voila")
    command.append("--Voila.log_level=WARN")     # its start-up chatter; speedlab prints the URL
    process = subprocess.Popen(command, env=voila_env(config, now), start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               errors="replace", bufsize=1)
    threading.Thread(target=relay_server_output, args=(process.stdout, sys.stderr),
                     name="voila-output", daemon=True).start()
    return process


#: Lines Voilà and its kernels print in normal operation that tell a user nothing: the notebook
#: is served as the dashboard whether or not it is signed; kernels talk to Voilà over loopback
#: TCP; a kernel interrupted while Voilà stops; tornado's ping settings; a tab that closed.
SERVER_NOISE = ("is not trusted", "Kernel is running over TCP without encryption",
                "KeyboardInterrupt caught in kernel", "websocket_ping_timeout",
                "WebSocketClosedError", "StreamClosedError", "Task exception was never retrieved")


def relay_server_output(lines, out) -> None:
    """Copy the server's output ``lines`` to ``out``, leaving out :data:`SERVER_NOISE`.

    A traceback is held until its last line: it is left out when that line is one of the noise
    exceptions (a closed tab's ``WebSocketClosedError``), and copied whole otherwise, so real
    errors still reach the user.
    """
    held: list[str] = []
    for line in lines:
        if held:
            held.append(line)
            if line[:1] in (" ", "\t") or line.startswith("Traceback"):
                continue
            block, held = held, []
            if not any(noise in block[-1] for noise in SERVER_NOISE):
                out.write("".join(block))
                out.flush()
            continue
        if line.startswith("Traceback (most recent call last)"):
            held = [line]
        elif not any(noise in line for noise in SERVER_NOISE):
            out.write(line)
            out.flush()
    if held:
        out.write("".join(held))
        out.flush()


def stop(process: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """Stop a :func:`launch`-ed server (SIGTERM, then SIGKILL after ``timeout_s``); its exit status."""
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
