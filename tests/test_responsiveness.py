"""speedlab.responsiveness: RPM = 60000 / loaded round trip [ms], and its grade in plain words."""

from __future__ import annotations

import math

import pytest

from speedlab.responsiveness import RPM_GRADES, loaded_latency_ms, row_rpm, rpm, rpm_grade


@pytest.mark.parametrize(("loaded_ms", "expected"), [(100.0, 600.0), (60.0, 1000.0), (300.0, 200.0),
                                                     (60_000.0, 1.0), (0.5, 120_000.0), (37, 60_000 / 37)])
def test_rpm_is_60000_over_the_loaded_round_trip(loaded_ms, expected):
    assert rpm(loaded_ms) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("loaded_ms", [None, 0, 0.0, -12.5, math.nan, True, "100"])
def test_rpm_is_none_without_a_round_trip_never_a_made_up_figure(loaded_ms):
    assert rpm(loaded_ms) is None


@pytest.mark.parametrize(("value", "grade"), [
    (0.0, "Low"), (27.0, "Low"), (199.99, "Low"),
    (200.0, "Medium"), (612.0, "Medium"), (999.999, "Medium"),
    (1000.0, "High"), (1060.0, "High"), (10105.0, "High"),
])
def test_grades_at_and_around_their_boundaries(value, grade):
    assert rpm_grade(value).name == grade


def test_grade_boundaries_match_the_round_trips_they_stand_for():
    # 300 ms loaded is exactly 200 RPM (Medium), 60 ms exactly 1000 RPM (High); a hair slower drops a grade
    assert rpm_grade(rpm(300.0)).name == "Medium" and rpm_grade(rpm(300.001)).name == "Low"
    assert rpm_grade(rpm(60.0)).name == "High" and rpm_grade(rpm(60.001)).name == "Medium"


@pytest.mark.parametrize("value", [None, -1.0, math.nan, False])
def test_no_grade_without_a_figure(value):
    assert rpm_grade(value) is None


def test_every_grade_says_what_it_means_in_plain_words_best_first():
    assert [g.name for g in RPM_GRADES] == ["High", "Medium", "Low"]
    assert [g.min_rpm for g in RPM_GRADES] == sorted((g.min_rpm for g in RPM_GRADES), reverse=True)
    assert RPM_GRADES[-1].min_rpm == 0.0                      # every figure >= 0 has a grade
    for grade in RPM_GRADES:
        assert grade.meaning and "RPM" not in grade.meaning and "ms" not in grade.meaning.split()
    assert "video calls may stutter" in rpm_grade(500.0).meaning


def test_the_loaded_round_trip_is_the_mean_of_what_was_measured():
    assert loaded_latency_ms(80.0, 120.0) == 100.0
    assert loaded_latency_ms(80.0, None) == 80.0 and loaded_latency_ms(None, 120.0) == 120.0
    assert loaded_latency_ms(None, None) is None


def test_row_rpm_reads_the_rows_contract_keys_and_tolerates_rows_without_them():
    row = {"latency_idle_avg": 20.0, "latency_download_avg": 90.0, "latency_upload_avg": 150.0}
    assert row_rpm(row) == (120.0, 500.0)
    assert row_rpm({"latency_download_avg": 90.0, "latency_upload_avg": None}) == (90.0, 60_000 / 90.0)
    assert row_rpm({"download_avg": 100.0}) == (None, None)   # a schema-1 row: nothing measured
