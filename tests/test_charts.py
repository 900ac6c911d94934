"""speedlab.charts' latency panel: drawn from the rows' latency keys, and only when a row has one."""

from __future__ import annotations

import json

import pytest

from speedlab import rowbuild
from speedlab.charts import LATENCY_SERIES, charts, has_latency

LATENCY_KEYS = ("latency_idle_avg", "latency_download_avg", "latency_upload_avg", "jitter_avg")


def day_row(day: int, status: str = "ok", *, complete: bool = True, idle=None, download=None, upload=None,
            jitter=None) -> dict:
    """A daily row as rowbuild makes it (every contract key), with the latency figures given [ms]."""
    row = dict.fromkeys(rowbuild.ROW_FIELDS)
    row.update(period=f"202601{day:02d}", date_ist_str=f"2026-01-{day:02d}", x_local=f"2026-01-{day:02d}T00:00:00",
               status=status, complete=complete, tests=0 if status == "missing" else 4, failed=0, rejected=0,
               latency_idle_avg=idle, latency_download_avg=download, latency_upload_avg=upload, jitter_avg=jitter)
    if status != "missing":
        row.update(download_avg=180.0 + day, upload_avg=90.0 + day, ping_avg=9.0 + day / 10)
    return row


def layer_values(spec: dict, layer: dict) -> list[dict]:
    data = layer.get("data") or {}
    return spec["datasets"][data["name"]] if "name" in data else data.get("values", [])


def panel_points(spec: dict, panel: int) -> list[dict]:
    """Every drawn point (finished: circles; so far: hollow points) of one panel."""
    points = []
    for layer in spec["vconcat"][panel]["layer"]:
        mark = layer["mark"]
        if mark["type"] == "circle" or (mark["type"] == "point" and mark.get("filled") is False):
            points += layer_values(spec, layer)
    return points


def rows_with_latency() -> list[dict]:
    return [day_row(1, idle=21.004, download=84.5, upload=120.25, jitter=2.345),
            day_row(2, idle=18.0),                                    # idle probes only: no loaded figure
            day_row(3, "missing"),
            day_row(4, idle=25.0, download=60.0, upload=None, jitter=1.0),
            day_row(5, "partial", complete=False, idle=30.0, download=250.0, upload=350.0, jitter=4.0)]


@pytest.mark.slow
def test_the_latency_panel_draws_the_rows_figures_under_the_others_on_one_time_axis():
    rows = rows_with_latency()
    assert has_latency(rows)
    spec = charts(rows, "daily").to_dict()
    assert len(spec["vconcat"]) == 3 and spec["resolve"]["scale"]["x"] == "shared"
    latency = spec["vconcat"][2]
    circle = next(layer for layer in latency["layer"] if layer["mark"]["type"] == "circle")
    line = next(layer for layer in latency["layer"] if layer["mark"]["type"] == "line")
    assert line["encoding"]["y"]["title"] == "Latency [ms]"
    expected = set()
    for row in rows:
        if row["status"] not in ("ok", "partial"):
            continue
        loaded = [v for v in (row["latency_download_avg"], row["latency_upload_avg"]) if v is not None]
        rpm = round(60_000 / (sum(loaded) / len(loaded))) if loaded else None
        for series, key in LATENCY_SERIES.items():
            if row[key] is not None:
                expected.add((series, row["date_ist_str"], round(row[key], 2), row["jitter_avg"]
                              and round(row["jitter_avg"], 2), rpm,
                              "so far" if row["status"] == "partial" else "complete"))
    got = {(p["series"], p["period"], p["value"], p["jitter"], p["rpm"], p["state"]) for p in panel_points(spec, 2)}
    assert got == expected
    assert ("Latency during upload", "2026-01-01", 120.25, 2.35, 586, "complete") in got   # 60000 / 102.375
    assert ("Latency during download", "2026-01-04", 60.0, 1.0, 1000, "complete") in got  # upload not measured
    # the upper panels hold no latency point; the latency panel no speed or ping point
    assert {p["series"] for p in panel_points(spec, 0) + panel_points(spec, 1)} == {"Download", "Upload", "Ping"}
    tooltip = {t["field"]: t["title"] for t in circle["encoding"]["tooltip"]}
    assert tooltip["jitter"] == "Jitter [ms]" and tooltip["rpm"] == "Responsiveness [RPM]"
    text = json.dumps(spec)
    assert "Idle latency 2026-01-01: 21.00 ms" in text
    assert "Latency during download 2026-01-05: 250.00 ms so far" in text   # the period in progress, hollow
    assert "2026-01-03: no data" in json.dumps(latency)                       # the gap is marked here too
    hollow = next(layer for layer in latency["layer"] if layer["mark"].get("filled") is False)
    assert {p["series"] for p in layer_values(spec, hollow)} == set(LATENCY_SERIES)
    dashed = next(layer for layer in latency["layer"]
                  if layer["mark"]["type"] == "line" and layer["mark"].get("strokeDash") == [4, 3])
    assert {(p["series"], p["period"]) for p in layer_values(spec, dashed)} >= {
        ("Idle latency", "2026-01-04"), ("Idle latency", "2026-01-05")}     # joined to the last finished day


@pytest.mark.slow
def test_without_latency_figures_the_chart_keeps_its_two_panels_as_before():
    with_none = rows_with_latency()
    for row in with_none:
        row.update(dict.fromkeys(LATENCY_KEYS))
    schema1 = [{k: v for k, v in row.items() if k not in LATENCY_KEYS} for row in with_none]  # rows without the keys
    assert not has_latency(with_none) and not has_latency(schema1)
    spec = charts(with_none, "daily").to_dict()
    assert spec == charts(schema1, "daily").to_dict()
    assert len(spec["vconcat"]) == 2 and spec["resolve"] == {"scale": {"color": "independent"}}
    assert "atency" not in json.dumps(spec) and "rpm" not in json.dumps(spec)
    for point in panel_points(spec, 0) + panel_points(spec, 1):
        assert set(point) == {"start", "period", "series", "value", "tests", "failed", "segment", "state",
                              "description"}


def test_latency_of_a_row_that_is_not_drawn_does_not_make_a_panel():
    failed = day_row(1, "failed", idle=20.0)
    assert not has_latency([failed, day_row(2)])
    assert has_latency([failed, day_row(2, idle=20.0)])
