"""Answers to the seed's questions, computed from the dashboard's rows.

The notebooks in ``notebooks/`` (``slower_this_month``, ``time_of_day``, ``long_term``,
``plan_delivery``, ``laggy``) are thin: a ``parameters`` cell, one ``load_*`` call (I/O, through
:func:`speedlab.query.rows`), one pure function that computes the answer, a chart and the
answer's ``text``. Everything they compute lives here, where tests reach it.

Pure functions take rows (:data:`speedlab.query.ROW_FIELDS`) and return plain dicts whose
``text`` is a plain-language conclusion with the numbers in it:

* :func:`compare_months` — "Is my internet slower this month?"
* :func:`time_of_day` — "What time of day has the best speeds?"
* :func:`long_term` — "Long-term performance over years"
* :func:`plan_delivery` — "Is my ISP delivering my plan?" (share of tests and of hours below
  the plan)
* :func:`load_laggy` loads the rows for "When does my connection get laggy?", answered by
  :mod:`speedlab.laggy` (its own module: this one is near the size limit)

Averages are always weighted by the number of tests behind each row
(:func:`speedlab.query.headline`), never averages of averages. Periods without data are
left out and said so; nothing missing is counted as a zero speed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .config import Config, load_config
from .query import rows
from .reader import list_hosts
from .rowbuild import ALL_HOSTS, headline, heatmap_cells, parse_now
from .storebase import Store

__all__ = [
    "SAME_WITHIN_PCT", "compare_months", "hour_profile", "linear_trend", "load_hosts", "load_laggy",
    "load_long_term", "load_month_comparison", "load_plan_delivery", "load_time_of_day",
    "long_term", "month_comparison_chart", "plan_delivery", "plan_delivery_chart",
    "time_of_day", "time_of_day_chart", "long_term_chart", "use_static_charts",
]

#: Changes smaller than this [%] are "about the same".
SAME_WITHIN_PCT = 5.0
#: Shares of hours below the plan up to these [%] mean "delivering" / "mostly delivering".
DELIVERING_PCT = 10.0
MOSTLY_DELIVERING_PCT = 30.0


def use_static_charts() -> None:
    """Draw Altair charts as static SVG (made in the kernel by vl-convert): they need no CDN
    and no widget, show in any Jupyter, and stay in the executed notebook papermill saves."""
    import altair as alt

    alt.renderers.enable("svg")


def _pct_change(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old == 0:
        return None
    return 100.0 * (new - old) / old


def _who(host: str) -> str:
    return "all hosts together" if host == ALL_HOSTS else host


def _mbps(value: float | None) -> str:
    return "no data" if value is None else f"{value:.1f} Mbit/s"


# =========================================================================== I/O: loading rows

def _context(store: Store | str | None, config: Config | None, now: str | datetime | None):
    config = config if config is not None else load_config()
    if isinstance(store, str):
        config = config.with_overrides(store=store)
        store = None
    return (store if store is not None else config.open_store()), config, parse_now(now)


def load_hosts(store: Store | str | None = None, config: Config | None = None) -> list[str]:
    """Every host with results in the store, sorted."""
    store_, config_, _ = _context(store, config, None)
    return list_hosts(store_, config_.buckets)


def _hosts_for(host: str, store: Store, config: Config) -> list[str]:
    return list_hosts(store, config.buckets) if host == ALL_HOSTS else [host]


def load_month_comparison(host: str = ALL_HOSTS, *, store: Store | str | None = None,
                          config: Config | None = None, now: str | datetime | None = None) -> dict:
    """Daily rows of the last 62 days (this month and all of last month) for
    :func:`compare_months`, for ``host`` (``all``: the all-hosts summaries)."""
    store_, config_, moment = _context(store, config, now)
    return {"host": host, "daily": rows("daily", 62, host, store=store_, config=config_, now=moment)}


def load_time_of_day(host: str = ALL_HOSTS, days: int = 28, *, store: Store | str | None = None,
                     config: Config | None = None, now: str | datetime | None = None) -> dict:
    """Hourly rows of the last ``days`` days for :func:`time_of_day`."""
    store_, config_, moment = _context(store, config, now)
    return {"host": host, "days": days,
            "hourly": rows("hourly", days, host, store=store_, config=config_, now=moment)}


def load_laggy(host: str = ALL_HOSTS, days: int = 28, *, store: Store | str | None = None,
               config: Config | None = None, now: str | datetime | None = None) -> dict:
    """Hourly rows of the last ``days`` days (at most 92) of ``host`` (``all``: of every host,
    each on its own), for :func:`speedlab.laggy.laggy_hours`."""
    store_, config_, moment = _context(store, config, now)
    return {"days": days, "timezone": config_.timezone,
            "hosts": {h: rows("hourly", days, h, store=store_, config=config_, now=moment)
                      for h in _hosts_for(host, store_, config_)}}


def load_long_term(host: str = ALL_HOSTS, years: int = 5, *, store: Store | str | None = None,
                   config: Config | None = None, now: str | datetime | None = None) -> dict:
    """Yearly rows (``years`` years) and monthly rows (the same span) for :func:`long_term`."""
    store_, config_, moment = _context(store, config, now)
    kwargs = dict(store=store_, config=config_, now=moment)
    return {"host": host, "yearly": rows("yearly", years, host, **kwargs),
            "monthly": rows("monthly", 12 * years, host, **kwargs)}


def load_plan_delivery(host: str = ALL_HOSTS, days: int = 28, *, store: Store | str | None = None,
                       config: Config | None = None, now: str | datetime | None = None) -> dict:
    """Per host (every host for ``all``): its 15-minute rows (one per test) and hourly rows of
    the last ``days`` days (at most 31), and the plan fraction, for :func:`plan_delivery`."""
    store_, config_, moment = _context(store, config, now)
    kwargs = dict(store=store_, config=config_, now=moment)
    hosts = _hosts_for(host, store_, config_)
    return {"days": days, "fraction": config_.below_expected_fraction,
            "hosts": {h: {"minute": rows("minute", days, h, **kwargs),
                          "hourly": rows("hourly", days, h, **kwargs)} for h in hosts}}


# =========================================================================== "slower this month?"

def _previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def compare_months(daily: Sequence[Mapping[str, Any]], host: str = ALL_HOSTS,
                   same_within_pct: float = SAME_WITHIN_PCT) -> dict:
    """Compare this month (so far) with last month (pure).

    The months' averages are computed from the daily rows, weighted by their tests: for a
    complete month that is exactly the monthly summary's average, and it also works for the
    month in progress, whose monthly summary is written only after it ends: today is a
    ``partial`` row with its figures so far, so "this month" is this month up to now.

    Parameters
    ----------
    daily : sequence of dict
        Daily rows, oldest first, the last one today (``load_month_comparison``).
    host : str
        Whose rows these are (for the text).
    same_within_pct : float
        Changes smaller than this [%] count as "about the same".

    Returns
    -------
    dict
        ``this_month``/``last_month`` (``2026-03``), ``download_this``/``download_last``,
        ``upload_*``, ``ping_*`` [Mbit/s, ms], ``download_change_pct`` (and upload, ping),
        ``tests_this``/``tests_last``, ``days_this``/``days_last`` (days with data),
        ``verdict`` (``slower``, ``faster``, ``about the same`` or ``not enough data``) and
        ``text``.
    """
    if not daily:
        raise ValueError("compare_months needs the daily rows of this month and last month")
    this_month = daily[-1]["date_ist"][:7]
    last_month = _previous_month(this_month)
    out: dict[str, Any] = {"host": host, "this_month": this_month, "last_month": last_month}
    for name, month in (("this", this_month), ("last", last_month)):
        days = [r for r in daily if r["date_ist"][:7] == month]
        stats = headline(days)
        for metric in ("download", "upload", "ping"):
            out[f"{metric}_{name}"] = stats[f"{metric}_avg"]
        out[f"tests_{name}"] = stats["tests"]
        out[f"days_{name}"] = stats["periods_with_data"]
    for metric in ("download", "upload", "ping"):
        out[f"{metric}_change_pct"] = _pct_change(out[f"{metric}_this"], out[f"{metric}_last"])
    change = out["download_change_pct"]
    who = _who(host)
    if change is None:
        out["verdict"] = "not enough data"
        missing = [m for m, v in ((last_month, out["download_last"]), (this_month, out["download_this"]))
                   if v is None]
        out["text"] = (f"Not enough data to compare for {who}: no successful tests in "
                       f"{' and '.join(missing) or 'one of the months'}.")
        return out
    if change <= -same_within_pct:
        out["verdict"] = "slower"
    elif change >= same_within_pct:
        out["verdict"] = "faster"
    else:
        out["verdict"] = "about the same"
    verb = {"slower": "Yes: slower", "faster": "No: faster", "about the same": "No: about the same speed"}
    text = (f"{verb[out['verdict']]} this month for {who}. Average download in {this_month} so far is "
            f"{_mbps(out['download_this'])} ({out['tests_this']} tests on {out['days_this']} days) against "
            f"{_mbps(out['download_last'])} in {last_month} ({out['tests_last']} tests on "
            f"{out['days_last']} days): {change:+.1f} %.")
    details = []
    if out["upload_change_pct"] is not None:
        details.append(f"upload {out['upload_this']:.1f} vs {out['upload_last']:.1f} Mbit/s "
                       f"({out['upload_change_pct']:+.1f} %)")
    if out["ping_change_pct"] is not None:
        details.append(f"ping {out['ping_this']:.1f} vs {out['ping_last']:.1f} ms ({out['ping_change_pct']:+.1f} %)")
    if details:
        joined = "; ".join(details)
        text += " " + joined[0].upper() + joined[1:] + "."  # not str.capitalize: it lowercases "Mbit/s"
    out["text"] = text
    return out


def month_comparison_chart(daily: Sequence[Mapping[str, Any]], comparison: Mapping[str, Any]):
    """Daily average download of both months, one colour per month, each month's average as a rule."""
    import altair as alt

    months = (comparison["last_month"], comparison["this_month"])
    points = [{"day": int(r["date_ist"][8:10]), "month": r["date_ist"][:7], "download_avg": r["download_avg"],
               "date": r["date_ist"]} for r in daily
              if r["status"] in ("ok", "partial") and r["download_avg"] is not None and r["date_ist"][:7] in months]
    rules = [{"month": m, "download_avg": comparison[f"download_{k}"]}
             for m, k in zip(months, ("last", "this"), strict=True) if comparison[f"download_{k}"] is not None]
    color = alt.Color("month:N", title="Month", scale=alt.Scale(domain=list(months)))
    lines = alt.Chart(alt.Data(values=points)).mark_line(point=True).encode(
        x=alt.X("day:Q", title="Day of month", scale=alt.Scale(domain=[1, 31])),
        y=alt.Y("download_avg:Q", title="Average download [Mbit/s]"), color=color,
        tooltip=["date:N", alt.Tooltip("download_avg:Q", format=".1f", title="Download [Mbit/s]")])
    averages = alt.Chart(alt.Data(values=rules)).mark_rule(strokeDash=[6, 3]).encode(
        y="download_avg:Q", color=color)
    title = f"Daily download: {months[0]} vs {months[1]} ({_who(comparison['host'])})"
    return (lines + averages).properties(width=640, height=260, title=title)


# =========================================================================== "best time of day?"

def hour_profile(rows_: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Averages per local hour of day (0-23) over hourly (or 15-minute) rows (pure).

    Each hour's averages are weighted by the tests behind the rows; hours without data are
    left out. Returns dicts with ``hour``, ``download_avg``, ``upload_avg``, ``ping_avg``,
    ``tests`` and ``periods``, sorted by hour.
    """
    groups: dict[int, list] = defaultdict(list)
    for row in rows_:
        if row["status"] == "ok":
            groups[datetime.fromisoformat(row["x_local"]).hour].append(row)
    out = []
    for hour, members in sorted(groups.items()):
        stats = headline(members)
        out.append({"hour": hour, "download_avg": stats["download_avg"], "upload_avg": stats["upload_avg"],
                    "ping_avg": stats["ping_avg"], "tests": stats["tests"], "periods": len(members)})
    return out


def time_of_day(hourly: Sequence[Mapping[str, Any]], host: str = ALL_HOSTS) -> dict:
    """Which hours of the day are fastest and slowest (pure).

    Returns
    -------
    dict
        ``profile`` (:func:`hour_profile`), ``cells`` (hour x weekday,
        :func:`speedlab.query.heatmap_cells`), ``best_hour``/``worst_hour`` (by average
        download) with their averages, ``spread_pct`` (how much slower the worst hour is than
        the best), ``best_ping_hour``, ``days_with_data``, ``evening_avg``/``rest_avg``
        (19:00-23:00 against the other hours) and ``text``.
    """
    profile = hour_profile(hourly)
    days = len({r["date_ist"][:10] for r in hourly if r["status"] == "ok"})
    out: dict[str, Any] = {"host": host, "profile": profile, "cells": heatmap_cells(hourly),
                           "days_with_data": days}
    with_download = [p for p in profile if p["download_avg"] is not None]
    if not with_download:
        out.update(best_hour=None, worst_hour=None, spread_pct=None, best_ping_hour=None,
                   evening_avg=None, rest_avg=None,
                   text=f"No successful tests for {_who(host)} in this window: no time of day to compare.")
        return out
    best = max(with_download, key=lambda p: p["download_avg"])
    worst = min(with_download, key=lambda p: p["download_avg"])
    with_ping = [p for p in profile if p["ping_avg"] is not None]
    best_ping = min(with_ping, key=lambda p: p["ping_avg"]) if with_ping else None
    evening_rows = [r for r in hourly if r["status"] == "ok" and 19 <= datetime.fromisoformat(r["x_local"]).hour < 23]
    rest_rows = [r for r in hourly if r["status"] == "ok" and not 19 <= datetime.fromisoformat(r["x_local"]).hour < 23]
    evening, rest = headline(evening_rows)["download_avg"], headline(rest_rows)["download_avg"]
    change = _pct_change(worst["download_avg"], best["download_avg"])
    spread = -change if change is not None else 0.0  # None: the best hour averages 0 Mbit/s, as all do
    out.update(best_hour=best["hour"], best_download=best["download_avg"], worst_hour=worst["hour"],
               worst_download=worst["download_avg"], spread_pct=spread,
               best_ping_hour=best_ping["hour"] if best_ping else None,
               evening_avg=evening, rest_avg=rest)
    text = (f"Best time for {_who(host)}: around {best['hour']:02d}:00, averaging "
            f"{best['download_avg']:.1f} Mbit/s download; worst around {worst['hour']:02d}:00 at "
            f"{worst['download_avg']:.1f} Mbit/s ({spread:.0f} % slower), over {days} days with data.")
    if evening is not None and rest is not None:
        diff = _pct_change(evening, rest)  # None when the rest of the day averages 0 Mbit/s
        if diff is not None and diff <= -SAME_WITHIN_PCT:
            text += f" Evenings (19:00-23:00) average {evening:.1f} Mbit/s, {-diff:.0f} % below the rest of the day."
        else:
            text += (f" Evenings (19:00-23:00) are not slower than the rest of the day"
                     f" ({evening:.1f} vs {rest:.1f} Mbit/s).")
    if best_ping is not None:
        text += f" Ping is lowest around {best_ping['hour']:02d}:00 ({best_ping['ping_avg']:.1f} ms)."
    out["text"] = text
    return out


def time_of_day_chart(answer: Mapping[str, Any]):
    """Average download by hour of day (bars, best and worst hour highlighted) above the
    hour x weekday heatmap of :func:`speedlab.charts.heatmap_chart`."""
    import altair as alt

    from .charts import heatmap_chart

    values = [{**p, "which": ("best" if p["hour"] == answer["best_hour"] else
                              "worst" if p["hour"] == answer["worst_hour"] else "other")}
              for p in answer["profile"] if p["download_avg"] is not None]
    bars = alt.Chart(alt.Data(values=values)).mark_bar().encode(
        x=alt.X("hour:O", title="Hour of day", scale=alt.Scale(domain=list(range(24)))),
        y=alt.Y("download_avg:Q", title="Average download [Mbit/s]"),
        color=alt.Color("which:N", title=None, scale=alt.Scale(domain=["best", "worst", "other"],
                                                               range=["#2ca02c", "#d62728", "#1f77b4"])),
        tooltip=["hour:O", alt.Tooltip("download_avg:Q", format=".1f"), alt.Tooltip("ping_avg:Q", format=".1f"),
                 "tests:Q"],
    ).properties(width=640, height=220, title=f"Download by hour of day ({_who(answer['host'])})")
    return alt.vconcat(bars, alt.Chart.from_dict(heatmap_chart(answer["cells"], "Download by weekday and hour")))


# =========================================================================== "long-term performance"

def linear_trend(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of ``(x, y)`` points (``None`` for fewer than two distinct x)."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return sxy / sxx


def long_term(yearly: Sequence[Mapping[str, Any]], monthly: Sequence[Mapping[str, Any]] = (),
              host: str = ALL_HOSTS) -> dict:
    """Year-over-year averages and the trend of monthly averages (pure).

    Returns
    -------
    dict
        ``years`` (per year with data: ``year``, ``download_avg``, ``upload_avg``,
        ``ping_avg``, ``tests``, ``complete``, ``source``: ``yearly summary``, ``so far`` for the
        year in progress (its live row), or ``monthly summaries`` for a year without either),
        ``months_with_data``, ``first_year``/``last_year``, ``change_pct`` (download, first to last year with data),
        ``trend_mbps_per_year`` (slope of the monthly download averages; ``None`` with fewer
        than three months), ``verdict`` (``improving``, ``declining``, ``steady`` or ``not
        enough data``) and ``text``.
    """
    years = []
    for r in yearly:
        year = r["date_ist"][:4]
        if r["status"] == "ok":
            values, source = r, "yearly summary"
        elif r["status"] == "partial" and r["tests"]:  # the year in progress, so far (live)
            values, source = r, "so far"
        else:  # a year without its yearly summary (yet): its months' rows tell
            values = headline([m for m in monthly if m["date_ist"][:4] == year])
            source = "monthly summaries"
            if not values["tests"]:
                continue
        years.append({"year": year, "download_avg": values["download_avg"], "upload_avg": values["upload_avg"],
                      "ping_avg": values["ping_avg"], "tests": values["tests"],
                      "complete": bool(r.get("complete")), "source": source})
    months = [r for r in monthly if r["status"] == "ok" and r["download_avg"] is not None]
    points = []
    for r in months:
        start = datetime.fromisoformat(r["x_local"])
        points.append((start.year + (start.month - 1) / 12, r["download_avg"]))
    slope = linear_trend(points) if len(points) >= 3 else None
    out: dict[str, Any] = {"host": host, "years": years, "months_with_data": len(months),
                           "trend_mbps_per_year": slope,
                           "first_year": years[0]["year"] if years else None,
                           "last_year": years[-1]["year"] if years else None}
    who = _who(host)
    if not years:
        out.update(change_pct=None, verdict="not enough data",
                   text=f"No successful tests for {who} in these years: nothing to compare.")
        return out
    first, last = years[0], years[-1]
    change = _pct_change(last["download_avg"], first["download_avg"]) if len(years) > 1 else None
    out["change_pct"] = change
    typical = sum(p[1] for p in points) / len(points) if points else last["download_avg"]
    if slope is None:
        verdict = "not enough data"
    elif typical and abs(slope) / typical * 100 < SAME_WITHIN_PCT:
        verdict = "steady"
    else:
        verdict = "improving" if slope > 0 else "declining"
    out["verdict"] = verdict
    parts = [f"{y['year']}: {y['download_avg']:.1f} Mbit/s ({y['tests']} tests{'' if y['complete'] else ', so far'})"
             for y in years]
    text = f"Average download for {who} by year: " + "; ".join(parts) + "."
    if change is not None:
        text += f" From {first['year']} to {last['year']} the average changed by {change:+.1f} %."
    if slope is None:
        text += (f" Only {len(months)} month(s) with data: too short to call a long-term trend; "
                 "keep speedlab running and look again.")
    else:
        text += (f" Over {len(months)} months with data the monthly averages trend "
                 f"{slope:+.1f} Mbit/s per year: {verdict}.")
    out["text"] = text
    return out


def long_term_chart(monthly: Sequence[Mapping[str, Any]], answer: Mapping[str, Any]):
    """Monthly average download and upload over the years (gaps where a month has no data), as an
    Altair chart of :func:`speedlab.charts.charts`' spec."""
    import altair as alt

    from .charts import charts

    return alt.Chart.from_dict(charts(list(monthly), "monthly", title=f"Monthly averages ({_who(answer['host'])})"))


# =========================================================================== "delivering my plan?"

def _share(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def plan_delivery(per_host: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]], fraction: float = 0.8,
                  days: int | None = None) -> dict:
    """Per host: the share of tests and of hours below ``fraction`` of the plan (pure).

    Parameters
    ----------
    per_host : mapping
        ``host -> {"minute": rows, "hourly": rows}`` for one host each (15-minute rows hold
        one test each).
    fraction : float
        A test or hour is below the plan when its download or upload is under ``fraction``
        times the plan's (``[plan] below_expected_fraction``).

    Returns
    -------
    dict
        ``hosts``: per host ``plan_download_mbps``/``plan_upload_mbps`` (``None`` without a
        plan), ``tests`` (successful), ``failed``, ``tests_below``, ``tests_below_pct``,
        ``download_below_pct``, ``upload_below_pct``, ``hours`` (with data), ``hours_below``,
        ``hours_below_pct``, ``download_avg``, ``delivered_pct`` (average download as a share
        of the plan), ``connection_types``, ``verdict`` (``delivering``, ``mostly
        delivering``, ``not delivering``, ``no plan`` or ``no data``) and ``text``; ``text``
        for all hosts together.
    """
    hosts: dict[str, dict] = {}
    for host, data in per_host.items():
        tests = [r for r in data.get("minute", ()) if r["status"] == "ok"]
        failed = sum(r["failed"] for r in data.get("minute", ()))
        hours = [r for r in data.get("hourly", ()) if r["status"] == "ok"]
        plans = [r for r in list(data.get("minute", ())) + list(data.get("hourly", ()))
                 if r["expected_download_mbps"] is not None or r["expected_upload_mbps"] is not None]
        plan_down = plans[-1]["expected_download_mbps"] if plans else None
        plan_up = plans[-1]["expected_upload_mbps"] if plans else None

        def under(row, metric, plan):
            value = row[f"{metric}_avg"]
            return plan is not None and value is not None and value < fraction * plan

        down_below = sum(under(r, "download", plan_down) for r in tests)
        up_below = sum(under(r, "upload", plan_up) for r in tests)
        either = sum(under(r, "download", plan_down) or under(r, "upload", plan_up) for r in tests)
        hours_below = sum(r["below_expected"] is True for r in hours)
        types = sorted({t.strip() for r in tests for t in (r["connection_type"] or "").split(",") if t.strip()})
        stats = headline(tests)
        entry = {"host": host, "plan_download_mbps": plan_down, "plan_upload_mbps": plan_up,
                 "tests": len(tests), "failed": failed, "tests_below": either,
                 "tests_below_pct": _share(either, len(tests)),
                 "download_below_pct": _share(down_below, len(tests)),
                 "upload_below_pct": _share(up_below, len(tests)),
                 "hours": len(hours), "hours_below": hours_below, "hours_below_pct": _share(hours_below, len(hours)),
                 "download_avg": stats["download_avg"], "upload_avg": stats["upload_avg"],
                 "delivered_pct": (100.0 * stats["download_avg"] / plan_down
                                   if plan_down and stats["download_avg"] is not None else None),
                 "connection_types": types}
        entry["verdict"], entry["text"] = _delivery_text(entry, fraction)
        hosts[host] = entry
    window = f" over the last {days} days" if days else ""
    lines = [f"Is the ISP delivering the plan{window}? (below = under {fraction:.0%} of the plan's speed)"]
    lines += [f"- {entry['text']}" for entry in hosts.values()]
    if not hosts:
        lines.append("- no hosts with results in the store")
    return {"fraction": fraction, "days": days, "hosts": hosts, "text": "\n".join(lines)}


def _delivery_text(entry: Mapping[str, Any], fraction: float) -> tuple[str, str]:
    host = entry["host"]
    if entry["plan_download_mbps"] is None and entry["plan_upload_mbps"] is None:
        return "no plan", (f"{host}: no plan configured ([plan] or [plan.hosts.{host}] in speedlab.toml), "
                           "so there is nothing to compare with.")
    if not entry["tests"]:
        return "no data", f"{host}: no successful tests in this window ({entry['failed']} failed)."
    share = entry["hours_below_pct"] if entry["hours_below_pct"] is not None else entry["tests_below_pct"]
    if share <= DELIVERING_PCT:
        verdict, answer = "delivering", "yes"
    elif share <= MOSTLY_DELIVERING_PCT:
        verdict, answer = "mostly delivering", "mostly"
    else:
        verdict, answer = "not delivering", "no"
    plan = f"{entry['plan_download_mbps'] or 0:g}/{entry['plan_upload_mbps'] or 0:g} Mbit/s"
    text = (f"{host}: {answer}. {entry['tests_below_pct']:.1f} % of {entry['tests']} tests and "
            f"{(entry['hours_below_pct'] or 0):.1f} % of {entry['hours']} hours were below the plan ({plan})")
    if entry["delivered_pct"] is not None:
        text += f"; average download {entry['download_avg']:.1f} Mbit/s, {entry['delivered_pct']:.0f} % of the plan"
    text += "."
    if entry["failed"]:
        text += f" {entry['failed']} tests failed (not counted as below the plan)."
    if any(t.startswith("Wi-Fi") for t in entry["connection_types"]) and verdict != "delivering":
        text += " These tests ran over Wi-Fi, which may be the bottleneck rather than the ISP."
    return verdict, text


def plan_delivery_chart(answer: Mapping[str, Any]):
    """Per host: the share of tests and of hours below the plan (bars)."""
    import altair as alt

    values = []
    for entry in answer["hosts"].values():
        for what, key in (("tests", "tests_below_pct"), ("hours", "hours_below_pct")):
            if entry[key] is not None:
                values.append({"host": entry["host"], "what": f"share of {what} below plan",
                               "pct": entry[key], "verdict": entry["verdict"]})
    return alt.Chart(alt.Data(values=values)).mark_bar().encode(
        x=alt.X("pct:Q", title="Below the plan [%]", scale=alt.Scale(domain=[0, 100])),
        y=alt.Y("host:N", title=None), yOffset="what:N",
        color=alt.Color("what:N", title=None),
        tooltip=["host:N", "what:N", alt.Tooltip("pct:Q", format=".1f"), "verdict:N"],
    ).properties(width=560, title=f"Below {answer['fraction']:.0%} of the plan")
