"""When does my connection get laggy? Latency under load by hour of day, per host.

The answer behind ``notebooks/laggy.ipynb`` (thin, like the other analysis notebooks):
:func:`speedlab.analysis.load_laggy` reads each host's hourly rows, :func:`laggy_hours`
computes the answer and :func:`laggy_chart` draws it. Pure: rows in, plain dicts out.

The figures come from the hourly rows' latency keys (:data:`speedlab.rowbuild.ROW_FIELDS`):
``latency_download_avg``/``latency_upload_avg`` (the probes' median round trip while a
download / an upload runs, averaged over the hour's tests) and ``latency_idle_avg``, each with
its count. An hour of day's figure is the mean over every test behind it, each row weighted by
its count (exact means, never means of means). *Loaded* latency pools the download and the
upload figures the same way. Hours are local hours in the configured time zone (the rows'
``x_local``). Rows without latency figures (schema-1 results, an engine without probes) count
for nothing: a host with none is "not measured", never "not laggy".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

__all__ = ["WORST_HOURS", "laggy_chart", "laggy_hours", "latency_by_hour"]

#: How many of the laggiest hours the answer names.
WORST_HOURS = 3
#: The latency figures of a row: name in the answer -> (row key of the average, row key of its count).
_FIGURES = {"idle": ("latency_idle_avg", "latency_idle_count"),
            "download": ("latency_download_avg", "latency_download_count"),
            "upload": ("latency_upload_avg", "latency_upload_count")}


def _sums(rows_: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """``{figure: [sum of avg x count, count]}`` over ``rows_`` (rows without the figure add nothing)."""
    sums = {name: [0.0, 0] for name in _FIGURES}
    for row in rows_:
        for name, (avg_key, count_key) in _FIGURES.items():
            avg, count = row.get(avg_key), row.get(count_key) or 0
            if avg is not None and count > 0:
                sums[name][0] += avg * count
                sums[name][1] += count
    return sums


def _means(sums: Mapping[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("idle", "download", "upload"):
        total, count = sums[name]
        out[f"{name}_ms"] = total / count if count else None
        out[f"{name}_count"] = int(count)
    loaded_total = sums["download"][0] + sums["upload"][0]
    loaded_count = sums["download"][1] + sums["upload"][1]
    out["loaded_ms"] = loaded_total / loaded_count if loaded_count else None
    out["loaded_count"] = int(loaded_count)
    return out


def latency_by_hour(hourly: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Mean latencies per local hour of day (0-23) over hourly rows (pure).

    Returns dicts with ``hour``, ``idle_ms``, ``download_ms``, ``upload_ms``, ``loaded_ms``
    [ms] (``None``: not measured in that hour) and the counts behind them (``idle_count``, ...),
    sorted by hour; hours with no latency figure at all are left out.
    """
    groups: dict[int, list] = defaultdict(list)
    for row in hourly:
        groups[datetime.fromisoformat(row["x_local"]).hour].append(row)
    profile = [{"hour": hour, **_means(_sums(members))} for hour, members in sorted(groups.items())]
    return [p for p in profile if p["loaded_count"] or p["idle_count"]]


def _host_answer(host: str, hourly: Sequence[Mapping[str, Any]], days: int, worst: int) -> dict:
    profile = latency_by_hour(hourly)
    overall = _means(_sums(hourly))
    loaded = sorted((p for p in profile if p["loaded_ms"] is not None), key=lambda p: -p["loaded_ms"])
    out: dict[str, Any] = {"host": host, "profile": profile, **overall,
                           "worst_hours": [p["hour"] for p in loaded[:worst]],
                           "best_hour": loaded[-1]["hour"] if loaded else None}
    if not loaded:
        idle = (f" (idle round trip {overall['idle_ms']:.1f} ms)" if overall["idle_ms"] is not None else "")
        out["text"] = (f"{host}: latency under load not measured in the last {days} days{idle}: its "
                       "results are from before record schema 2 or from an engine without latency probes.")
        return out
    top = loaded[0]
    hours = [f"{p['hour']:02d}:00" for p in loaded[:worst]]
    named = hours[0] if len(hours) == 1 else ", ".join(hours[:-1]) + f" and {hours[-1]}"
    text = f"{host} gets laggiest around {named}: {top['loaded_ms']:.1f} ms under load at {hours[0]}"
    idle_ms = top["idle_ms"] if top["idle_ms"] is not None else overall["idle_ms"]
    if idle_ms:
        text += (f", {top['loaded_ms'] / idle_ms:.1f}x its idle {idle_ms:.1f} ms"
                 f" (+{top['loaded_ms'] - idle_ms:.1f} ms)")
    text += (f"; least laggy around {loaded[-1]['hour']:02d}:00 ({loaded[-1]['loaded_ms']:.1f} ms)."
             f" Over the last {days} days: {overall['loaded_ms']:.1f} ms under load")
    if overall["idle_ms"]:
        text += f" against {overall['idle_ms']:.1f} ms idle ({overall['loaded_ms'] / overall['idle_ms']:.1f}x)"
    out["text"] = text + (f", from {overall['download_count']} round trips during downloads and "
                          f"{overall['upload_count']} during uploads.")
    return out


def laggy_hours(per_host: Mapping[str, Sequence[Mapping[str, Any]]], days: int = 28,
                worst: int = WORST_HOURS, timezone: str | None = None) -> dict:
    """When each host's connection gets laggy: its hours of day by loaded latency (pure).

    Parameters
    ----------
    per_host : mapping of str to rows
        Each host's hourly rows (:func:`speedlab.analysis.load_laggy`'s ``hosts``).
    days : int
        The window the rows cover [days] (for the text).
    worst : int
        How many of the laggiest hours to name.
    timezone : str, optional
        The zone of the rows' local hours (the configuration's), named in the text.

    Returns
    -------
    dict
        ``hosts``: per host ``profile`` (:func:`latency_by_hour`), the window's ``idle_ms``,
        ``download_ms``, ``upload_ms``, ``loaded_ms`` and counts, ``worst_hours`` (laggiest
        first), ``best_hour`` and ``text``; ``text``: one line per host.
    """
    answers = {host: _host_answer(host, hourly, days, worst) for host, hourly in per_host.items()}
    text = "\n".join(f"- {a['text']}" for a in answers.values()) or "No hosts with results in this window."
    if answers and timezone:
        text += f"\n\nHours are local time in {timezone}."
    return {"days": days, "timezone": timezone, "hosts": answers, "text": text}


def laggy_chart(answer: Mapping[str, Any]):
    """Mean round trip by hour of day, under load (solid) and idle (dashed), one colour per host."""
    import altair as alt

    values = [{"host": host, "hour": p["hour"], "which": which, "ms": p[f"{which}_ms"]}
              for host, a in answer["hosts"].items() for p in a["profile"]
              for which in ("loaded", "idle") if p[f"{which}_ms"] is not None]
    return alt.Chart(alt.Data(values=values)).mark_line(point=True).encode(
        x=alt.X("hour:O", title="Hour of day", scale=alt.Scale(domain=list(range(24)))),
        y=alt.Y("ms:Q", title="Mean round trip [ms]"),
        color=alt.Color("host:N", title="Host"),
        strokeDash=alt.StrokeDash("which:N", title=None, scale=alt.Scale(domain=["loaded", "idle"])),
        tooltip=["host:N", "hour:O", "which:N", alt.Tooltip("ms:Q", format=".1f")],
    ).properties(width=640, height=280, title=f"Latency by hour of day, last {answer['days']} days")
