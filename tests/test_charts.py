"""speedlab.charts: Vega-Lite specs as plain dicts, valid against the schema Altair ships; the latency
panel drawn from the rows' latency keys, and only when a row has one."""

from __future__ import annotations

import functools
import json

import pytest

from speedlab import rowbuild
from speedlab.charts import GAP_COLORS, LATENCY_SERIES, SO_FAR, X_FORMAT, charts, has_latency, heatmap_chart

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


def test_the_latency_panel_draws_the_rows_figures_under_the_others_on_one_time_axis():
    rows = rows_with_latency()
    assert has_latency(rows)
    spec = charts(rows, "daily")
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
    gaps = [v for layer in latency["layer"] if layer["mark"]["type"] == "rule" for v in layer_values(spec, layer)]
    assert [g["description"] for g in gaps] == ["2026-01-03: no data"]        # the gap is marked here too
    hollow = next(layer for layer in latency["layer"] if layer["mark"].get("filled") is False)
    assert {p["series"] for p in layer_values(spec, hollow)} == set(LATENCY_SERIES)
    dashed = next(layer for layer in latency["layer"]
                  if layer["mark"]["type"] == "line" and layer["mark"].get("strokeDash") == [4, 3])
    assert {(p["series"], p["period"]) for p in layer_values(spec, dashed)} >= {
        ("Idle latency", "2026-01-04"), ("Idle latency", "2026-01-05")}     # joined to the last finished day


def test_without_latency_figures_the_chart_keeps_its_two_panels_as_before():
    with_none = rows_with_latency()
    for row in with_none:
        row.update(dict.fromkeys(LATENCY_KEYS))
    schema1 = [{k: v for k, v in row.items() if k not in LATENCY_KEYS} for row in with_none]  # rows without the keys
    assert not has_latency(with_none) and not has_latency(schema1)
    spec = charts(with_none, "daily")
    assert spec == charts(schema1, "daily")
    assert len(spec["vconcat"]) == 2 and spec["resolve"] == {"scale": {"color": "independent"}}
    assert "atency" not in json.dumps(spec) and "rpm" not in json.dumps(spec)
    for point in panel_points(spec, 0) + panel_points(spec, 1):
        assert set(point) == {"start", "period", "series", "value", "tests", "failed", "segment", "state",
                              "description"}


def test_latency_of_a_row_that_is_not_drawn_does_not_make_a_panel():
    failed = day_row(1, "failed", idle=20.0)
    assert not has_latency([failed, day_row(2)])
    assert has_latency([failed, day_row(2, idle=20.0)])


@functools.cache
def vega_lite_validator():
    """A JSON-schema validator of the Vega-Lite schema the installed Altair ships (its top-level spec)."""
    import altair as alt
    import jsonschema

    schema = alt.Root._rootschema
    return jsonschema.validators.validator_for(schema)(schema)


def assert_vega_lite(spec: dict) -> None:
    """``spec`` is a valid Vega-Lite spec, plain JSON (no NaN), every named dataset there and used."""
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
              for e in vega_lite_validator().iter_errors(spec)]
    assert not errors, errors[:5]
    json.dumps(spec, allow_nan=False)
    named = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("data"), dict) and "name" in node["data"]:
                named.add(node["data"]["name"])
            for key, value in node.items():
                if key != "datasets":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(spec)
    assert named == set(spec.get("datasets", {}))


def rows_of_every_kind() -> list[dict]:
    """Rows with latency, a gap of each kind, failed tests in a drawn row, a plan and a period so far."""
    rows = rows_with_latency()
    rows[0].update(failed=2, expected_download_mbps=200.0, expected_upload_mbps=100.0)
    rows.insert(3, day_row(6, "failed"))
    rows.insert(4, day_row(7, "unreadable"))
    return rows


@pytest.mark.slow
def test_every_spec_validates_against_the_vega_lite_schema_altair_ships():
    rows = rows_of_every_kind()
    without_latency = [dict(row, **dict.fromkeys(LATENCY_KEYS)) for row in rows]
    for mode in X_FORMAT:
        spec = charts(rows, mode, f"All {mode}")
        assert_vega_lite(spec)
        assert spec["title"] == f"All {mode}" and len(spec["vconcat"]) == 3
        marks = {(layer["mark"]["type"], layer["mark"].get("color"), layer["mark"].get("filled"))
                 for panel in spec["vconcat"] for layer in panel["layer"]}
        assert {("rule", color, None) for color in GAP_COLORS.values()} <= marks      # every kind of gap
        assert {("point", None, False), ("point", GAP_COLORS["failed"], True)} <= marks  # so far; failed tests
        axes = {json.dumps(layer["encoding"]["x"]) for panel in spec["vconcat"] for layer in panel["layer"]
                if "x" in layer["encoding"]}
        assert [json.loads(a)["axis"]["format"] for a in axes] == [X_FORMAT[mode]]
    plain = charts(without_latency, "weekly")
    assert_vega_lite(plain)
    assert len(plain["vconcat"]) == 2 and plain["title"] == ""
    assert_vega_lite(charts([], "daily"))
    cells = [{"weekday": day, "hour": hour, "download_avg": None if hour == 3 else 100.0 + hour,
              "upload_avg": 50.0, "ping_avg": 9.5, "tests": 4} for day in ("Mon", "Sun") for hour in range(24)]
    heat = heatmap_chart(cells, "Heat")
    assert_vega_lite(heat)
    assert len(heat["data"]["values"]) == 46 and heat["title"] == "Heat"
    assert_vega_lite(heatmap_chart([]))
    broken = json.loads(json.dumps(charts(rows, "daily")))      # the validator catches a wrong spec
    broken["vconcat"][0]["layer"][0]["mark"]["strokeDsah"] = [4, 3]
    assert list(vega_lite_validator().iter_errors(broken))
    assert SO_FAR in json.dumps(charts(rows, "daily")["vconcat"][0])
