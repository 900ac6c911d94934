"""A drawn copy of the dashboard's view, sent inside the page so a visit shows it at once (pure).

A preheated Voilà kernel (:mod:`speedlab.serve`) has loaded and drawn the default view before
anyone visits, but the page's widgets only appear once the browser has loaded Voilà's
JavaScript, opened the kernel's websocket and drawn every widget: seconds after the HTML
arrived. :func:`snapshot_html` turns the same rows, headline and charts into plain HTML with the
charts as SVG (rendered in the kernel by vl-convert, :func:`chart_svg`): it is part of the page's
HTML, so the browser shows it as soon as the page is parsed.

The snapshot is the visitor's own view and stands in for the live one, never beside it:

* a preheated kernel's default view is displayed before the visit (sent with the page at once);
  a visit whose URL selects a view removes it while the page is parsed, and the notebook's last
  cell displays that view's once the URL parameters are applied and the view is loaded
  (:meth:`speedlab.dashboard.App.snapshot`), or nothing;
* wherever that cell is, the snapshot shows first on the page (speedlab's Voilà template puts
  the cell holding it ahead of the others), and the widget page is laid out under it, invisible;
* a small script removes it the moment the live chart has drawn (or the live view reports an
  error), after which the page is the widgets alone;
* it says what it is: the selection, when it was drawn, and that the live view is starting.

Its classes are ``speedlab-snapshot-*``, never the widgets' own (``.speedlab-rows`` etc. name
the live page only).
"""

from __future__ import annotations

import html
import re
from typing import Any

from .page import QUERY_KEYS

__all__ = ["PAINT_MARK", "SNAPSHOT_CLASS", "SNAPSHOT_METADATA", "TABLE_PAINT_MARK", "Snapshot", "chart_svg",
           "snapshot_html"]

SNAPSHOT_CLASS = "speedlab-snapshot"
#: The ``elementtiming`` name of the snapshot's heading under its charts (see :func:`snapshot_html`).
PAINT_MARK = "speedlab-snapshot-charts"
#: The ``elementtiming`` name of the first cell of the snapshot table's last row.
TABLE_PAINT_MARK = "speedlab-snapshot-table"
_FIRST_CELL = '<td data-col="date_ist_str">'
#: The output metadata key that tells speedlab's Voilà template to put the HTML into the page itself.
SNAPSHOT_METADATA = "speedlab_snapshot"

_STYLE = """<style>
.speedlab-snapshot { max-width: 1100px; font-family: system-ui, sans-serif; }
.speedlab-snapshot-banner { color: #555; background: #f3f6fa; padding: 4px 8px; border-radius: 4px;
  margin-bottom: 6px; }
body:has(.speedlab-snapshot) .speedlab-app { visibility: hidden; position: absolute; top: 0; left: 0;
  width: 1100px; }
</style>"""

# Last in the snapshot: removes it when the live view takes over, i.e. its chart has drawn or it
# reports an error; the observer stops once it has removed it.
_SCRIPT = """<script>
(function () {
  var me = document.currentScript && document.currentScript.closest('.speedlab-snapshot');
  if (!me) return;
  var live = function () {
    return document.querySelector('.speedlab-app .speedlab-chart-widget svg') ||
           document.querySelector('.speedlab-app .speedlab-state[data-state="error"]');
  };
  if (live()) { me.remove(); return; }
  var watch = new MutationObserver(function () {
    if (live()) { watch.disconnect(); me.remove(); }
  });
  watch.observe(document.documentElement, {childList: true, subtree: true, attributes: true,
                                           attributeFilter: ['data-state']});
})();
</script>"""


# First in a snapshot drawn before the visit (the default view): a visit whose URL selects a view
# (a parameter of speedlab.page.QUERY_KEYS, the ones parse_query_string reads) removes it before it
# is painted and gets its own below. First in a visit's own snapshot: any earlier one goes (a
# kernel preheated long ago).
_SELECTS_VIEW = "/[?&](" + "|".join(re.escape(key).replace("/", r"\/") for key in QUERY_KEYS) + ")=/"
_BEFORE_VISIT = """<script>
(function () {
  var me = document.currentScript && document.currentScript.parentElement;
  if (me && SELECTS_VIEW.test(location.search)) me.remove();
})();
</script>""".replace("SELECTS_VIEW", _SELECTS_VIEW)
_AFTER_VISIT = """<script>
(function () {
  var me = document.currentScript && document.currentScript.parentElement;
  document.querySelectorAll('.speedlab-snapshot').forEach(function (s) { if (s !== me) s.remove(); });
})();
</script>"""


class Snapshot:
    """A snapshot as a notebook output: ``text/html`` marked with :data:`SNAPSHOT_METADATA`.

    Voilà's lab template sends every output as JSON for its JavaScript to render, seconds after
    the page arrived; speedlab's template (``speedlab/jupyter/voila/templates/speedlab``) writes an
    output with this mark as HTML into the page instead, so it shows while the page loads.
    """

    def __init__(self, html_text: str) -> None:
        self.html = html_text

    def _repr_html_(self) -> tuple[str, dict]:
        return self.html, {SNAPSHOT_METADATA: True}


def _without_tooltips(spec: Any) -> Any:
    """``spec`` without its ``tooltip`` encodings (a copy; ``spec`` is left as it is)."""
    if isinstance(spec, dict):
        return {k: _without_tooltips(v) for k, v in spec.items() if k != "tooltip"}
    if isinstance(spec, list):
        return [_without_tooltips(v) for v in spec]
    return spec


def chart_svg(chart: dict[str, Any] | Any) -> str:
    """A chart as standalone SVG text, rendered by vl-convert (no browser, no CDN).

    ``chart`` is a Vega-Lite spec (a ``dict``, as :mod:`speedlab.charts` builds them), given to
    vl-convert as it is, or an Altair chart (its ``to_dict()``). The ``<?xml ...?>`` prolog is
    dropped so the SVG can sit inside HTML, and the spec's tooltips too (an SVG in the page shows
    none, and vl-convert draws the dashboard's charts about 10 % faster without them).
    """
    import vl_convert

    svg = vl_convert.vegalite_to_svg(_without_tooltips(chart if isinstance(chart, dict) else chart.to_dict()))
    return re.sub(r"^\s*<\?xml[^>]*>\s*", "", svg)


def _rename(fragment: str) -> str:
    """The live page's classes (``speedlab-rows``...) as the snapshot's own (``speedlab-snapshot-rows``...),
    in ``class`` attributes and in CSS selectors."""
    fragment = re.sub(r'class="([^"]*)"', lambda m: 'class="' + re.sub(
        r"\bspeedlab-", "speedlab-snapshot-", m.group(1)) + '"', fragment)
    return re.sub(r"\.speedlab-", ".speedlab-snapshot-", fragment)


def snapshot_html(*, title: str, description: str, drawn_at: str, headline: str, table: str,
                  chart: str, heatmap: str = "", heatmap_title: str = "", style: str = "",
                  before_visit: bool = False) -> str:
    """The snapshot of one view as HTML (see the module docstring).

    Parameters
    ----------
    title : str
        The page's title (plain text).
    description : str
        The selection shown, e.g. ``Daily · Last 7 days · All hosts`` (plain text).
    drawn_at : str
        When its rows were read, in the dashboard's time zone (plain text).
    headline, table : str
        The live page's headline cards and table (:func:`speedlab.page.headline_html`,
        :func:`speedlab.page.table_html`).
    chart, heatmap : str
        SVG of the charts (:func:`chart_svg`); ``heatmap`` may be empty.
    heatmap_title : str
        HTML heading of the heatmap.
    style : str
        The live page's ``<style>`` (:data:`speedlab.page.STYLE`), whose rules the snapshot
        reuses under its own class names.
    before_visit : bool
        Drawn before the visit arrived (a preheated kernel's default view, sent with the page at
        once): a visit whose URL selects a view removes it while the page is parsed. Otherwise
        it is the visit's own view and removes any snapshot before it.

    Returns
    -------
    str
        One ``<div class="speedlab-snapshot">`` with its style and script.
    """
    banner = (f'<div class="speedlab-snapshot-banner">{html.escape(description)}: drawn at '
              f'{html.escape(drawn_at)}. The live page is starting…</div>')
    parts = [_BEFORE_VISIT if before_visit else _AFTER_VISIT, _rename(style), _STYLE,
             f"<h2>{html.escape(title)}</h2>", banner, _rename(headline),
             f'<div class="speedlab-snapshot-chart">{chart}</div>']
    if heatmap:
        parts += [heatmap_title, f'<div class="speedlab-snapshot-heatmap">{heatmap}</div>']
    # Element Timing marks: the browser reports when the heading under the charts (so everything
    # above it: the charts) and the table's last row were first painted (bench_dashboard_page.py)
    table = _rename(table)
    last = table.rfind(_FIRST_CELL)
    if last >= 0:
        table = f'{table[:last]}<td data-col="date_ist_str" elementtiming="{TABLE_PAINT_MARK}">' \
                f'{table[last + len(_FIRST_CELL):]}'
    parts += [f'<h3 elementtiming="{PAINT_MARK}">Periods</h3>', table, _SCRIPT]
    return f'<div class="{SNAPSHOT_CLASS}">' + "".join(parts) + "</div>"
