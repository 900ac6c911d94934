"""The dashboard's Altair charts, built from plain rows (no store, no widgets, no I/O).

Used by the Voila dashboard (:mod:`speedlab.dashboard`) and the notebook analyses
(:mod:`speedlab.analysis`). Altair is imported when a chart is built.
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


def charts(rows: Sequence[Mapping[str, Any]], mode: str, title: str = ""):
    """Download/upload over time (plan speeds as rules) above ping and latency, one shared time axis.

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
    import altair as alt

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
    gaps = _gap_marks(rows)
    failures = [{"start": r["x_local"], "period": r["date_ist_str"], "failed": r["failed"],
                 "description": f'{r["date_ist_str"]}: {r["failed"]} failed test(s)'}
                for r in rows if r["failed"] and _drawn(r)]
    plan = {}
    for r in rows:
        for series in ("download", "upload"):
            if r[f"expected_{series}_mbps"] is not None:
                plan[series.capitalize()] = r[f"expected_{series}_mbps"]
    x = alt.X("start:T", title=None, axis=alt.Axis(format=X_FORMAT[mode], labelAngle=0))
    tooltip = [alt.Tooltip("period:N", title="Period"), alt.Tooltip("series:N", title="Series"),
               alt.Tooltip("value:Q", title="Value", format=".2f"), alt.Tooltip("tests:Q", title="Tests"),
               alt.Tooltip("failed:Q", title="Failed")]
    color = alt.Color("series:N", title=None, scale=alt.Scale(domain=list(SERIES_COLORS),
                                                               range=list(SERIES_COLORS.values())))
    latency_color = alt.Color("series:N", title=None, scale=alt.Scale(domain=list(LATENCY_COLORS),
                                                                       range=list(LATENCY_COLORS.values())))
    latency_tooltip = [*tooltip, alt.Tooltip("jitter:Q", title="Jitter [ms]", format=".2f"),
                       alt.Tooltip("rpm:Q", title="Responsiveness [RPM]", format=".0f")]

    def panel(series: Sequence[str], y_title: str, with_plan: bool, height: int | None = None):
        mine = [p for p in points if p["series"] in series]
        done = [p for p in mine if p["state"] != SO_FAR]
        live = [p for p in mine if p["state"] == SO_FAR]
        base = alt.Chart(alt.Data(values=done)).encode(x=x)
        latency = set(series) <= set(LATENCY_SERIES)
        series_color = latency_color if latency else color if len(series) > 1 else alt.value("#9467bd")
        tooltip_here = latency_tooltip if latency else tooltip
        layers = [
            base.mark_line(strokeWidth=1.5).encode(
                y=alt.Y("value:Q", title=y_title), color=series_color,
                detail="segment:N", description=alt.value(f"{y_title} line")),
            base.mark_circle(size=28 if len(rows) > 200 else 50, opacity=1).encode(
                y="value:Q", color=series_color, tooltip=tooltip_here, description="description:N"),
        ]
        if live:  # the period in progress: a dashed segment from the last finished point, a hollow point
            joins = []
            for point in live:
                before = [d for d in done if (d["series"], d["segment"]) == (point["series"], point["segment"])]
                if before:
                    join = f'{point["series"]}-{point["segment"]}'
                    joins += [dict(max(before, key=lambda d: d["start"]), join=join), dict(point, join=join)]
            so_far = alt.Chart(alt.Data(values=joins))
            state = alt.Shape("state:N", title=None, scale=alt.Scale(domain=[SO_FAR], range=["circle"]))
            layers += [
                so_far.mark_line(strokeWidth=1.5, strokeDash=[4, 3]).encode(
                    x=x, y="value:Q", color=series_color, detail="join:N",
                    description=alt.value(f"{y_title} so far")),
                alt.Chart(alt.Data(values=live)).mark_point(
                    filled=False, strokeWidth=2, size=70, opacity=1).encode(
                    x=x, y="value:Q", color=series_color, shape=state, tooltip=tooltip_here,
                    description="description:N"),
            ]
        for status, stroke in GAP_COLORS.items():  # fixed colours: the legend is the series'
            marks = [g for g in gaps if g["status"] == status]
            if marks:
                layers.append(alt.Chart(alt.Data(values=marks)).mark_rule(
                    strokeDash=[4, 3], opacity=0.8, color=stroke).encode(
                    x=x, tooltip=[alt.Tooltip("period:N", title="Period"),
                                  alt.Tooltip("status:N", title="Status")],
                    description="description:N"))
        if failures:
            layers.append(alt.Chart(alt.Data(values=failures)).mark_point(
                shape="triangle-down", filled=True, size=40, color=GAP_COLORS["failed"]).encode(
                x=x, y=alt.value(4), tooltip=[alt.Tooltip("period:N", title="Period"),
                                              alt.Tooltip("failed:Q", title="Failed tests")],
                description="description:N"))
        if with_plan and plan:
            rules = [{"series": k, "mbps": v, "description": f"{k} plan: {v:g} Mbit/s"} for k, v in plan.items()]
            layers.append(alt.Chart(alt.Data(values=rules)).mark_rule(strokeDash=[8, 4], strokeWidth=1.5).encode(
                y="mbps:Q", color=color, description="description:N",
                tooltip=[alt.Tooltip("series:N", title="Plan"), alt.Tooltip("mbps:Q", title="Mbit/s")]))
        return alt.layer(*layers).properties(width=CHART_WIDTH, height=height or (220 if with_plan else 140))

    panels = [panel(("Download", "Upload"), "Speed [Mbit/s]", True), panel(("Ping",), "Ping [ms]", False)]
    if has_latency(rows):
        panels.append(panel(tuple(LATENCY_SERIES), "Latency [ms]", False, 180))
        return alt.vconcat(*panels).resolve_scale(color="independent", x="shared").properties(title=title or "")
    return alt.vconcat(*panels).resolve_scale(color="independent").properties(title=title or "")


def heatmap_chart(cells: Sequence[dict], title: str = ""):
    """Average download speed by hour of day (x) and weekday (y); blank cells have no data."""
    import altair as alt

    values = [{**c, "description": f'{c["weekday"]} {c["hour"]:02d}:00: {c["download_avg"]:.2f} Mbit/s'}
              for c in cells if c["download_avg"] is not None]
    return alt.Chart(alt.Data(values=values)).mark_rect().encode(
        x=alt.X("hour:O", title="Hour of day", scale=alt.Scale(domain=list(range(24)))),
        y=alt.Y("weekday:O", title=None, scale=alt.Scale(domain=list(WEEKDAYS))),
        color=alt.Color("download_avg:Q", title="Download [Mbit/s]", scale=alt.Scale(scheme="viridis")),
        tooltip=[alt.Tooltip("weekday:N", title="Weekday"), alt.Tooltip("hour:O", title="Hour"),
                 alt.Tooltip("download_avg:Q", title="Download [Mbit/s]", format=".2f"),
                 alt.Tooltip("upload_avg:Q", title="Upload [Mbit/s]", format=".2f"),
                 alt.Tooltip("ping_avg:Q", title="Ping [ms]", format=".2f"),
                 alt.Tooltip("tests:Q", title="Tests")],
        description="description:N",
    ).properties(width=CHART_WIDTH, height=190, title=title or "")
