"""The dashboard's charts as Vega-Lite specs, built from plain rows (no store, no widgets, no I/O).

Used by the Voila dashboard (:mod:`speedlab.dashboard`), its snapshot (:mod:`speedlab.snapshot`)
and the notebook analyses (:mod:`speedlab.analysis`). A spec is a plain ``dict`` in Vega-Lite's
JSON form, valid for Vega-Lite 5 and 6 (it carries no ``$schema``: the renderer's version reads
it): built without Altair, whose encoding wrappers, deep copies and schema validation cost 0.4 to
2 s per chart. ``altair.Chart.from_dict(spec)`` turns one into an Altair chart where a notebook
wants one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .periods import WEEKDAYS
from .responsiveness import row_rpm

__all__ = ["CHART_WIDTH", "GAP_COLORS", "LATENCY_COLORS", "LATENCY_SERIES", "SERIES_COLORS", "SO_FAR", "X_FORMAT",
           "charts", "heatmap_chart", "has_latency"]

X_FORMAT = {"minute": "%d %b %H:%M", "hourly": "%d %b %H:%M", "daily": "%d %b", "weekly": "%d %b %Y",
            "monthly": "%b %Y", "yearly": "%Y"}
GAP_COLORS = {"missing": "#9e9e9e", "failed": "#d62728", "unreadable": "#ff7f0e"}
SERIES_COLORS = {"Download": "#1f77b4", "Upload": "#2ca02c"}
#: The latency panel's series and the row key each is drawn from [ms].
LATENCY_SERIES = {"Idle latency": "latency_idle_avg", "Latency during download": "latency_download_avg",
                  "Latency during upload": "latency_upload_avg"}
LATENCY_COLORS = {"Idle latency": "#7f7f7f", "Latency during download": "#1f77b4",
                  "Latency during upload": "#2ca02c"}
CHART_WIDTH = 760
#: The legend entry of a period in progress (a hollow point, joined by a dashed segment).
SO_FAR = "so far"
_PING_COLOR = "#9467bd"


def _drawn(row: Mapping[str, Any]) -> bool:
    """Whether a row has figures to draw: a finished period with data, or one in progress so far."""
    return row["status"] in ("ok", "partial")


def has_latency(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any drawn row has an idle or loaded latency (rows of schema-1 data have none)."""
    return any(r.get(key) is not None for r in rows if _drawn(r) for key in LATENCY_SERIES.values())


def _gap_marks(rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    notes = {"missing": "no data", "failed": "only failed tests", "unreadable": "unreadable data"}
    return [{"start": r["x_local"], "period": r["date_ist_str"], "status": r["status"],
             "description": f'{r["date_ist_str"]}: {notes[r["status"]]}'}
            for r in rows if r["status"] in notes]


def _field(name: str, kind: str, title: str | None = None, **more: Any) -> dict:
    """An encoding of field ``name`` of Vega-Lite type ``kind`` (``title`` ``None``: shown as no title)."""
    return {"field": name, "type": kind, "title": title, **more}


def _tip(name: str, kind: str, title: str, number_format: str | None = None) -> dict:
    tip = {"field": name, "type": kind, "title": title}
    if number_format is not None:
        tip["format"] = number_format
    return tip


def _colors(colors: Mapping[str, str]) -> dict:
    return _field("series", "nominal", None, scale={"domain": list(colors), "range": list(colors.values())})


def _points(rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Every drawn figure of the rows as one point (series, value, its row's counts and state)."""
    points, segment = [], 0
    for r in rows:
        if not _drawn(r):
            segment += 1
            continue
        so_far = not r["complete"]
        rpm = row_rpm(r)[1]
        jitter = r.get("jitter_avg")
        for series, name in (("Download", "download_avg"), ("Upload", "upload_avg"), ("Ping", "ping_avg"),
                             *LATENCY_SERIES.items()):
            if r.get(name) is None:
                continue
            unit = "Mbit/s" if series in SERIES_COLORS else "ms"
            point = {"start": r["x_local"], "period": r["date_ist_str"], "series": series,
                     "value": round(r[name], 2), "tests": r["tests"], "failed": r["failed"],
                     "segment": segment, "state": SO_FAR if so_far else "complete",
                     "description": f"{series} {r['date_ist_str']}: {r[name]:.2f} {unit}"
                                    + (f" {SO_FAR}" if so_far else "")}
            if series in LATENCY_SERIES:
                point.update(jitter=None if jitter is None else round(jitter, 2),
                             rpm=None if rpm is None else round(rpm))
            points.append(point)
    return points


def charts(rows: Sequence[Mapping[str, Any]], mode: str, title: str = "") -> dict:
    """Download/upload over time (plan speeds as rules) above ping and latency, one shared time axis.

    Parameters
    ----------
    rows : sequence of mapping
        The rows of :func:`speedlab.query.rows` (any mode), oldest first.
    mode : str
        Their mode (``minute`` ... ``yearly``): the time axis' label format.
    title : str
        The chart's title.

    Returns
    -------
    dict
        A Vega-Lite ``vconcat`` spec: each panel a ``layer``; its points in the spec's
        ``datasets`` (a layer's ``data`` names one), so the line and the points of a panel, and the
        gap marks of every panel, are sent once.

    Notes
    -----
    The latency panel (idle latency, latency during the download and during the upload [ms], from
    the rows' ``latency_idle_avg``, ``latency_download_avg``, ``latency_upload_avg``) is drawn only
    when a row has one of them: data without latency figures keeps the two panels as they were.
    Its tooltip adds the period's jitter [ms] and responsiveness [RPM]
    (:func:`speedlab.responsiveness.row_rpm`).

    Lines break at every period without data; such periods are marked by a vertical rule
    (grey: no data, red: only failed tests, orange: unreadable), never drawn as zero. A period
    in progress (``complete`` false: a ``partial`` row, or the 15-minute slot under way) is a
    hollow point joined to the line by a dashed segment, with a legend entry "so far". Every
    point carries a description (its ``aria-label`` in the page) such as
    ``Download 2025-10-27 to 2025-11-02: 185.23 Mbit/s`` (``... so far`` for a period in progress).
    """
    points = _points(rows)
    datasets: dict[str, list[dict]] = {}
    gaps = _gap_marks(rows)
    for status in GAP_COLORS:
        marks = [g for g in gaps if g["status"] == status]
        if marks:
            datasets[f"gaps-{status}"] = marks
    failures = [{"start": r["x_local"], "period": r["date_ist_str"], "failed": r["failed"],
                 "description": f'{r["date_ist_str"]}: {r["failed"]} failed test(s)'}
                for r in rows if r["failed"] and _drawn(r)]
    if failures:
        datasets["failures"] = failures
    plan = {}
    for r in rows:
        for series in ("download", "upload"):
            if r[f"expected_{series}_mbps"] is not None:
                plan[series.capitalize()] = r[f"expected_{series}_mbps"]
    x = _field("start", "temporal", None, axis={"format": X_FORMAT[mode], "labelAngle": 0})
    y = {"field": "value", "type": "quantitative"}
    tooltip = [_tip("period", "nominal", "Period"), _tip("series", "nominal", "Series"),
               _tip("value", "quantitative", "Value", ".2f"), _tip("tests", "quantitative", "Tests"),
               _tip("failed", "quantitative", "Failed")]
    latency_tooltip = [*tooltip, _tip("jitter", "quantitative", "Jitter [ms]", ".2f"),
                       _tip("rpm", "quantitative", "Responsiveness [RPM]", ".0f")]
    describe = {"field": "description", "type": "nominal"}

    def panel(name: str, series: Sequence[str], y_title: str, with_plan: bool, height: int | None = None) -> dict:
        mine = [p for p in points if p["series"] in series]
        done = [p for p in mine if p["state"] != SO_FAR]
        live = [p for p in mine if p["state"] == SO_FAR]
        datasets[name] = done
        latency = set(series) <= set(LATENCY_SERIES)
        color = (_colors(LATENCY_COLORS) if latency else _colors(SERIES_COLORS) if len(series) > 1
                 else {"value": _PING_COLOR})
        tooltip_here = latency_tooltip if latency else tooltip
        layers = [
            {"data": {"name": name}, "mark": {"type": "line", "strokeWidth": 1.5},
             "encoding": {"x": x, "y": {**y, "title": y_title}, "color": color,
                          "detail": {"field": "segment", "type": "nominal"},
                          "description": {"value": f"{y_title} line"}}},
            {"data": {"name": name}, "mark": {"type": "circle", "size": 28 if len(rows) > 200 else 50, "opacity": 1},
             "encoding": {"x": x, "y": y, "color": color, "tooltip": tooltip_here, "description": describe}},
        ]
        if live:  # the period in progress: a dashed segment from the last finished point, a hollow point
            joins = []
            for point in live:
                before = [d for d in done if (d["series"], d["segment"]) == (point["series"], point["segment"])]
                if before:
                    join = f'{point["series"]}-{point["segment"]}'
                    joins += [dict(max(before, key=lambda d: d["start"]), join=join), dict(point, join=join)]
            if joins:
                datasets[f"{name}-joins"] = joins
                layers.append({"data": {"name": f"{name}-joins"},
                               "mark": {"type": "line", "strokeWidth": 1.5, "strokeDash": [4, 3]},
                               "encoding": {"x": x, "y": y, "color": color,
                                            "detail": {"field": "join", "type": "nominal"},
                                            "description": {"value": f"{y_title} so far"}}})
            datasets[f"{name}-{SO_FAR.replace(' ', '-')}"] = live
            layers.append({"data": {"name": f"{name}-{SO_FAR.replace(' ', '-')}"},
                           "mark": {"type": "point", "filled": False, "strokeWidth": 2, "size": 70, "opacity": 1},
                           "encoding": {"x": x, "y": y, "color": color,
                                        "shape": _field("state", "nominal", None,
                                                        scale={"domain": [SO_FAR], "range": ["circle"]}),
                                        "tooltip": tooltip_here, "description": describe}})
        for status, stroke in GAP_COLORS.items():  # fixed colours: the legend is the series'
            if f"gaps-{status}" in datasets:
                layers.append({"data": {"name": f"gaps-{status}"},
                               "mark": {"type": "rule", "strokeDash": [4, 3], "opacity": 0.8, "color": stroke},
                               "encoding": {"x": x, "tooltip": [_tip("period", "nominal", "Period"),
                                                                _tip("status", "nominal", "Status")],
                                            "description": describe}})
        if failures:
            layers.append({"data": {"name": "failures"},
                           "mark": {"type": "point", "shape": "triangle-down", "filled": True, "size": 40,
                                    "color": GAP_COLORS["failed"]},
                           "encoding": {"x": x, "y": {"value": 4},
                                        "tooltip": [_tip("period", "nominal", "Period"),
                                                    _tip("failed", "quantitative", "Failed tests")],
                                        "description": describe}})
        if with_plan and plan:
            datasets["plan"] = [{"series": k, "mbps": v, "description": f"{k} plan: {v:g} Mbit/s"}
                                for k, v in plan.items()]
            layers.append({"data": {"name": "plan"}, "mark": {"type": "rule", "strokeDash": [8, 4], "strokeWidth": 1.5},
                           "encoding": {"y": {"field": "mbps", "type": "quantitative"}, "color": _colors(SERIES_COLORS),
                                        "description": describe,
                                        "tooltip": [_tip("series", "nominal", "Plan"),
                                                    _tip("mbps", "quantitative", "Mbit/s")]}})
        return {"layer": layers, "width": CHART_WIDTH, "height": height or (220 if with_plan else 140)}

    panels = [panel("speed", ("Download", "Upload"), "Speed [Mbit/s]", True),
              panel("ping", ("Ping",), "Ping [ms]", False)]
    resolve = {"scale": {"color": "independent"}}
    if has_latency(rows):
        panels.append(panel("latency", tuple(LATENCY_SERIES), "Latency [ms]", False, 180))
        resolve["scale"]["x"] = "shared"
    return {"title": title or "", "vconcat": panels, "resolve": resolve, "datasets": datasets}


def heatmap_chart(cells: Sequence[Mapping[str, Any]], title: str = "") -> dict:
    """Average download speed by hour of day (x) and weekday (y); blank cells have no data.

    Parameters
    ----------
    cells : sequence of mapping
        :func:`speedlab.query.heatmap`'s cells: ``weekday``, ``hour``, ``download_avg``,
        ``upload_avg`` [Mbit/s], ``ping_avg`` [ms], ``tests``.
    title : str
        The chart's title.

    Returns
    -------
    dict
        A Vega-Lite spec of one ``rect`` mark.
    """
    values = [{**c, "description": f'{c["weekday"]} {c["hour"]:02d}:00: {c["download_avg"]:.2f} Mbit/s'}
              for c in cells if c["download_avg"] is not None]
    return {
        "title": title or "", "data": {"values": values}, "mark": {"type": "rect"},
        "encoding": {
            "x": _field("hour", "ordinal", "Hour of day", scale={"domain": list(range(24))}),
            "y": _field("weekday", "ordinal", None, scale={"domain": list(WEEKDAYS)}),
            "color": _field("download_avg", "quantitative", "Download [Mbit/s]", scale={"scheme": "viridis"}),
            "tooltip": [_tip("weekday", "nominal", "Weekday"), _tip("hour", "ordinal", "Hour"),
                        _tip("download_avg", "quantitative", "Download [Mbit/s]", ".2f"),
                        _tip("upload_avg", "quantitative", "Upload [Mbit/s]", ".2f"),
                        _tip("ping_avg", "quantitative", "Ping [ms]", ".2f"),
                        _tip("tests", "quantitative", "Tests")],
            "description": {"field": "description", "type": "nominal"},
        },
        "width": CHART_WIDTH, "height": 190,
    }
