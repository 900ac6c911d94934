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

Served with preheated kernels (:mod:`speedlab.serve`), a kernel starts before anyone visits:
:meth:`App.for_visit` then loads and draws the default view at once, and the notebook applies
the visitor's parameters when the visit arrives (:meth:`App.apply_query_string` with
``voila.utils.get_query_string()``). Without preheating (a kernel per visit, papermill, nbval)
the same notebook reads ``$QUERY_STRING`` at the start and the arrival changes nothing.

Once the visit's parameters are applied, a preheated kernel also displays :meth:`App.snapshot`:
the visitor's view as plain HTML (charts as SVG), which speedlab's Voilà template puts into the
page itself, ahead of the widgets, so a visit shows it while Voilà's JavaScript loads; it removes
itself when the live chart draws (:mod:`speedlab.snapshot`).

The controls and HTML are pure, in :mod:`speedlab.page`; serving (Voilà on 127.0.0.1,
``speedlab dashboard``) is :mod:`speedlab.serve`.
"""

from __future__ import annotations

import html
import os
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from .cache import CACHE_TTL_S, shared_result
from .charts import charts, heatmap_chart
from .config import Config, load_config
from .errors import SpeedlabError
from .joblog import JobLog
from .page import (
    LEGEND,
    MODE_LABELS,
    STYLE,
    Selection,
    headline_html,
    parse_query_string,
    period_options,
    resolve_host,
    table_html,
)
from .periods import get_zone
from .query import get_rows, heatmap, rows
from .reader import list_hosts
from .rowbuild import ALL_HOSTS, DEFAULT_DAYS, MODES, headline, parse_now
from .settings import DashboardSettings
from .snapshot import Snapshot, chart_svg, snapshot_html
from .storebase import Store

__all__ = ["App", "charts", "enable_offline_charts", "heatmap_chart", "rows", "skip_iri_grammar"]


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
    ``$SPEEDLAB_DASHBOARD_KERNEL`` is set (:func:`speedlab.serve.voila_env` sets it; ``=0`` turns it off).
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
        self.settings = config.dashboard if config is not None else DashboardSettings()
        self.heatmap_days = self.settings.heatmap_days
        try:
            self.log = JobLog.for_config(config, "dashboard") if config is not None else JobLog(None, "dashboard")
        except SpeedlabError:  # a missing local store folder: shown on the page, nothing created in it
            self.log = JobLog(None, "dashboard")
        self.selection, self.notes = parse_query_string(query_string)
        self.query_string = (query_string or "").lstrip("?")
        self._loaded_at: float | None = None   # time.monotonic() of the last rows drawn
        self._loaded_wall: datetime | None = None  # and the wall clock then (for the snapshot)
        self.preheated = False  # set by for_visit in a preheated kernel: snapshot() draws
        self._snapshots: dict[str, tuple[Any, str]] = {}  # the last chart and heatmap SVG, by what they show
        self._visited = False   # apply_query_string has run: the visit has arrived
        self._shown: tuple | None = None  # what the snapshot displayed before the visit showed
        self.hosts: list[str] = []
        self.state: dict[str, Any] = {"rows": None, "stats": None, "cells": None, "status": "starting",
                                      "error": startup_error, "info": "", "generation": 0}
        self._generation = 0
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="speedlab-dashboard")
        self._charts: dict[str, Any] = {}
        self._drawn: dict[str, tuple] = {}   # what each chart shows (see _draw)
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

    @classmethod
    def for_visit(cls, *, store: str | None = None, now: str | datetime | None = None,
                  environ: Mapping[str, str] | None = None) -> App:
        """The app a Voilà kernel shows (``notebooks/dashboard.ipynb``).

        In a preheated kernel (``$VOILA_PREHEAT`` is ``True``) no visitor has come yet: the
        default view is loaded and drawn now, on this thread (the cell waits for it), so the
        page a visitor takes is already drawn, and so is its snapshot (:meth:`snapshot`); the
        visitor's URL parameters come later through :meth:`apply_query_string`. Otherwise this is
        :meth:`from_config` (parameters from ``$QUERY_STRING``, the data loading in the background
        while the page shows).
        """
        environ = os.environ if environ is None else environ
        if environ.get("VOILA_PREHEAT", "False") == "False":
            return cls.from_config(store=store, now=now, environ=environ)
        app = cls.from_config(store=store, now=now, environ=environ, query_string="", autoload=False)
        app.preheated = True
        if app.state["error"] is None:
            app._startup()   # on the kernel's thread: every redraw draws at once
            app.snapshot()   # rendered now, so a default visit's costs it nothing
        return app

    # ------------------------------------------------------------------ widgets
    def _build_widgets(self) -> None:
        sel = self.selection
        self.style = widgets.HTML(STYLE)
        title = self.settings.title or "Internet Speed Overview"
        self.title = widgets.HTML(f"<h2>{html.escape(title)}</h2>")
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
        with self.period.hold_sync():  # one message: a pick made between two would be overwritten
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
            with self.period.hold_sync():
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
        with self._lock:
            if self._generation != 0:
                return  # a visit's parameters or an Apply came first: their load draws
            self._generation += 1
            generation = self._generation
        self.selection = replace(self.selection, host=host)
        self._load(replace(self.selection, host=host), generation)

    def apply_query_string(self, query_string: str | None) -> None:
        """Apply a visit's URL parameters (``mode``, ``days``, ``host``, ``force_refresh``).

        Called when the visit arrives, after the default view was drawn (a preheated kernel):
        the controls are set, the notes about invalid values shown, and the selection loaded in
        the background (:meth:`wait` waits for it). Does nothing for the query string the app was
        made with, unless the rows shown are older than the cache's time-to-live (a kernel
        preheated long ago) or the store could not be opened.
        """
        query_string = (query_string or "").lstrip("?")
        self._visited = True
        if self.store is None:
            return
        stale = self._loaded_at is not None and time.monotonic() - self._loaded_at >= CACHE_TTL_S
        if query_string == self.query_string and not stale and self.state["error"] is None:
            return
        self.query_string = query_string
        selection, self.notes = parse_query_string(query_string)
        for note in self.notes:
            self.log.warning(note)
        self.select(selection.mode, selection.days)   # the host once the host list is known
        with self._lock:
            self._generation += 1
            generation = self._generation
        self.selection = selection
        self.state.update(status="loading", generation=generation, error=None)
        self.redraw()
        self._executor.submit(self._arrive, selection, generation)

    def _arrive(self, selection: Selection, generation: int) -> None:
        if not self._current(generation):
            return
        if not self.hosts:  # the start-up listing failed or found nothing: try again
            try:
                self.hosts = list_hosts(self.store, self.config.buckets)  # type: ignore[arg-type,union-attr]  # store checked
            except SpeedlabError as exc:
                self._fail(f"cannot list hosts: {exc}", generation)
                return
        host, note = resolve_host(selection.host, self.hosts)
        if note:
            self.notes.append(note)
            self.log.warning(note)
        options = self._host_options(self.hosts)
        self._on_kernel_thread(lambda: self._set_host_menu(options, host))
        self.selection = replace(selection, host=host)
        self._load(self.selection, generation)

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
        self._loaded_at, self._loaded_wall = time.monotonic(), datetime.now(UTC)
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
        self._draw("chart", self.chart_box, (state["rows"], sel.mode, sel.describe()),
                   lambda: charts(state["rows"], sel.mode, f"{sel.describe()}"))
        self.heatmap_title.value = self._heatmap_heading(sel.host)
        if state["cells"] is not None and status == "ready":
            self._draw("heatmap", self.heatmap_box, (state["cells"],), lambda: heatmap_chart(state["cells"]))

    def snapshot(self, wait_s: float = 0.0) -> Snapshot | None:
        """The view selected now as plain HTML inside the page (:mod:`speedlab.snapshot`), or ``None``.

        Only in a preheated kernel (:meth:`for_visit`). Before the visit (the notebook's cell
        after ``for_visit``) it is the default view, sent with the page at once; a visit whose URL
        selects a view removes it while the page is parsed. The notebook's last cell calls it again
        once the visit's URL parameters are applied: ``None`` if the view is the one displayed
        before the visit, else that view, so the visit shows its own view as soon as the page's
        HTML arrives. It waits up to ``wait_s`` [s] for that view's load (:meth:`wait`) and is
        ``None`` if the load has not ended by then or failed: the live page draws the view as
        without a snapshot. A view is rendered once (charts by vl-convert) and reused. Elsewhere
        (a kernel per visit, papermill, nbval): ``None``.
        """
        if not self.preheated:
            return None
        try:
            if wait_s > 0:
                self.wait(wait_s)
            state, sel = self.state, self.selection
            if not (state["status"] == "ready" and not state["error"] and state["rows"]):
                return None
            if self._visited and self._shown == (state["generation"], sel):
                return None   # the visit shows the view displayed before it arrived: on the page already
            if not self._visited:
                self._shown = (state["generation"], sel)
            return Snapshot(self._snapshot_html(state, sel))
        except Exception as exc:  # TimeoutError (not loaded in time), rendering: the live page still draws
            self.log.info(f"no snapshot: {exc!r}", wait_s=wait_s)
            return None

    def _snapshot_html(self, state: dict[str, Any], sel: Selection) -> str:
        cache = self._snapshots   # SVGs rendered once (or by another kernel): the heatmap per host, the chart per load
        if state["cells"] and cache.get("heatmap", (None,))[0] != state["cells"]:
            cache["heatmap"] = (state["cells"], shared_result("svg", heatmap_chart(state["cells"]), chart_svg))
        if cache.get("chart", (None,))[0] != (state["generation"], sel):
            spec = charts(state["rows"], sel.mode, sel.describe())
            cache["chart"] = ((state["generation"], sel), shared_result("svg", spec, chart_svg))
        zone = get_zone(self.config.timezone if self.config is not None else "UTC")
        drawn = (self._loaded_wall or datetime.now(UTC)).astimezone(zone)
        return snapshot_html(
            title=self.settings.title or "Internet Speed Overview", description=sel.describe(),
            drawn_at=f"{drawn:%d %b %Y %H:%M} {drawn.tzname()}", headline=headline_html(state["stats"]),
            table=table_html(state["rows"]), chart=cache["chart"][1], style=STYLE, before_visit=not self._visited,
            heatmap=cache["heatmap"][1] if state["cells"] else "",
            heatmap_title=self._heatmap_heading(sel.host) if state["cells"] else "")

    def _heatmap_heading(self, host: str) -> str:
        host = "all hosts" if host == ALL_HOSTS else host
        return f"<h3>Download by hour of day and weekday — last {self.heatmap_days} days, {html.escape(host)}</h3>"

    def _draw(self, name: str, box: widgets.Box, inputs: tuple, build) -> None:
        """Draw chart ``name``, the Vega-Lite spec ``build()`` returns (:mod:`speedlab.charts`), unless it
        already shows ``inputs`` (equal rows, mode and title; equal heatmap cells): one load redraws twice
        (rows drawn, then heatmap ready) while a mode change leaves the heatmap as it was. The spec goes
        straight into the ``JupyterChart``'s ``spec`` trait, which the page draws; its ``chart`` (an
        Altair chart, which the widget would convert and validate again: 0.4-2 s) stays ``None``."""
        if name in self._charts and self._drawn.get(name) == inputs:
            return
        self._drawn[name] = inputs
        spec = build()
        widget = self._charts.get(name)
        if widget is None:
            import altair as alt

            enable_offline_charts()
            widget = alt.JupyterChart(None, embed_options={"renderer": "svg", "actions": False})  # type: ignore[arg-type]  # its chart trait allows None
            widget.add_class(f"speedlab-{name}-widget")
            widget.spec = spec
            self._charts[name] = widget
            box.children = (widget,)
        else:
            widget.spec = spec
