"""The dashboard's controls and HTML, pure: what the URL selects, the Period menus, the table and cards.

:class:`Selection` is what the controls select; :func:`parse_query_string` reads it from the page
URL (never raising: an invalid value falls back to the default with a note); :func:`table_html`,
:func:`headline_html`, :data:`LEGEND` and :data:`STYLE` are the page's HTML. Used by the widget
:class:`speedlab.dashboard.App`; no widgets, store, files or clock here.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .charts import GAP_COLORS
from .errors import QueryError
from .responsiveness import row_rpm, rpm_grade
from .rowbuild import ALL_HOSTS, DEFAULT_DAYS, MAX_DAYS, MODES, check_query

__all__ = [
    "DEFAULT_MODE", "LEGEND", "MODE_LABELS", "NOT_MEASURED", "PERIOD_CHOICES", "QUERY_KEYS", "STYLE", "Selection",
    "TABLE_COLUMNS", "UNITS", "headline_html", "latency_cards", "parse_query_string", "period_label",
    "period_options", "resolve_host", "table_html",
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
#: The URL query parameters that select a view, the only ones :func:`parse_query_string` reads
#: (:mod:`speedlab.snapshot` builds from them the script that drops the default view's snapshot).
QUERY_KEYS = ("mode", "days", "host", "force_refresh")


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
    """Read ``mode``, ``days``, ``host`` and ``force_refresh`` (:data:`QUERY_KEYS`) from a URL query string.

    Never raises: an invalid value is replaced by the default and explained in a note.

    Returns
    -------
    (Selection, notes)
    """
    parsed = parse_qs((query_string or "").lstrip("?"), keep_blank_values=True)
    params = {key: values for key, values in parsed.items() if key in QUERY_KEYS}

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


#: The table's columns: (title, row key); ``latency_loaded_avg`` and ``rpm`` are worked out from the
#: row (:func:`speedlab.responsiveness.row_rpm`).
TABLE_COLUMNS = (("Period", "date_ist_str"), ("Download avg [Mbit/s]", "download_avg"),
                 ("Upload avg [Mbit/s]", "upload_avg"), ("Ping avg [ms]", "ping_avg"),
                 ("Loaded latency [ms]", "latency_loaded_avg"), ("RPM", "rpm"),
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
        loaded, rpm = row_rpm(row)
        derived = {"latency_loaded_avg": loaded, "rpm": None if rpm is None else round(rpm)}
        for _, name in TABLE_COLUMNS:
            value = derived[name] if name in derived else row.get(name)
            text = _fmt(value, 1 if name == "coverage_pct" else 2)
            cells.append(f'<td data-col="{name}">{html.escape(text)}</td>')
        title = html.escape(row.get("error") or "", quote=True)
        body.append(f'<tr class="status-{row["status"]}" data-period="{html.escape(row["period"])}" '
                    f'title="{title}">{"".join(cells)}</tr>')
    if not rows:
        body.append(f'<tr><td colspan="{len(TABLE_COLUMNS)}">No periods.</td></tr>')
    return (f'<div class="speedlab-table-wrap"><table class="speedlab-rows"><thead><tr>{head}</tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table></div>')


NOT_MEASURED = "not measured"


def _measured(value: Any, digits: int, unit: str) -> str:
    return NOT_MEASURED if value is None else _fmt(float(value), digits, unit)


def latency_cards(stats: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """The latency cards ``(key, label, value, detail)``: idle and loaded latency, jitter, packet
    loss and responsiveness (RPM with its grade); ``not measured`` where a figure is missing."""
    loaded, rpm = row_rpm(stats)
    grade = rpm_grade(rpm)
    down, up = stats.get("latency_download_avg"), stats.get("latency_upload_avg")
    detail = " / ".join(f"{name} {value:.1f} ms" for name, value in (("download", down), ("upload", up))
                        if value is not None)
    return [
        ("latency_idle", "Idle latency", _measured(stats.get("latency_idle_avg"), 1, " ms"), ""),
        ("latency_loaded", "Latency under load", _measured(loaded, 1, " ms"), detail),
        ("jitter", "Jitter", _measured(stats.get("jitter_avg"), 1, " ms"), ""),
        ("packet_loss", "Packet loss", _measured(stats.get("packet_loss_avg"), 2, " %"), ""),
        ("rpm", "Responsiveness", NOT_MEASURED if rpm is None or grade is None else f"{grade.name} · {rpm:.0f} RPM",
         "" if grade is None else grade.meaning),
    ]


def headline_html(stats: Mapping[str, Any]) -> str:
    """Headline cards: averages, extremes, tests, failed tests, coverage, periods below plan, and
    latency (:func:`latency_cards`: figures missing from ``stats`` show as ``not measured``)."""
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
    every = [(key, label, value, "") for key, label, value in cards] + latency_cards(stats)
    return '<div class="speedlab-cards">' + "".join(
        f'<div class="speedlab-card" data-stat="{key}"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(value)}</div>'
        + (f'<div class="detail">{html.escape(detail)}</div>' if detail else "") + "</div>"
        for key, label, value, detail in every) + "</div>"


LEGEND = ('<div class="speedlab-legend">Dashed vertical lines mark periods without a measurement: '
          f'<span style="color:{GAP_COLORS["missing"]}">grey</span> no data, '
          f'<span style="color:{GAP_COLORS["failed"]}">red</span> only failed tests, '
          f'<span style="color:{GAP_COLORS["unreadable"]}">orange</span> unreadable data; '
          f'<span style="color:{GAP_COLORS["failed"]}">&#9660;</span> failed tests in a period; '
          "dashed horizontal lines are the plan's speeds; a hollow point on a dashed segment (and an "
          "<i>italic</i> row, status partial) is a period in progress, its figures so far. "
          "Where latency is measured, the lowest panel shows the idle round trip and the round trip "
          "while a download or an upload fills the line; responsiveness is 60000 / that loaded round "
          "trip in round trips per minute (RPM: High from 1000, Medium from 200, Low below). "
          "Hover a point for its numbers.</div>")

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
.speedlab-card .detail { font-size: 11px; color: #666; max-width: 260px; white-space: normal; }
.speedlab-table-wrap { max-height: 420px; overflow: auto; }
.speedlab-rows { border-collapse: collapse; font-size: 12px; }
.speedlab-rows th, .speedlab-rows td { border-bottom: 1px solid #eee; padding: 2px 6px; text-align: right;
  white-space: nowrap; }
.speedlab-rows th { position: sticky; top: 0; background: #fafafa; }
.speedlab-rows tr.status-missing td, .speedlab-rows tr.status-pending td { color: #999; }
.speedlab-rows tr.status-failed td { color: #d62728; }
.speedlab-rows tr.status-unreadable td { color: #ff7f0e; }
.speedlab-rows tr.status-partial td { font-style: italic; }
</style>"""
