"""speedlab.analysis: the answers to the seed's questions, from hand-made rows with known numbers."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from speedlab import analysis
from speedlab.rowbuild import ROW_FIELDS


def row(start: str, download=None, upload=None, ping=None, tests=None, *, mode="daily", status=None,
        failed=0, plan=(None, None), below=None, complete=True, connection="Ethernet", host="all"):
    """A dashboard row (the keys of rowbuild.ROW_FIELDS) starting at local ``start``."""
    r = dict.fromkeys(ROW_FIELDS)
    begin = datetime.fromisoformat(start)
    has = download is not None or upload is not None
    tests = (1 if has else 0) if tests is None else tests
    r.update(date_ist=begin.strftime("%Y-%m-%d %H:%M") if mode in ("hourly", "minute") else begin.strftime("%Y-%m-%d"),
             x_local=begin.isoformat(timespec="seconds"), mode=mode, host=host, complete=complete,
             status=status or ("ok" if has else ("failed" if failed else "missing")),
             download_avg=download, upload_avg=upload, ping_avg=ping, tests=tests, failed=failed,
             download_count=tests if download is not None else 0, upload_count=tests if upload is not None else 0,
             ping_count=tests if ping is not None else 0, rejected=0, duplicates=0,
             expected_download_mbps=plan[0], expected_upload_mbps=plan[1], below_expected=below,
             connection_type=connection if has else None)
    return r


# --------------------------------------------------------------------------- slower this month?

def test_compare_months_weights_days_by_their_tests():
    daily = [row("2026-02-10", 100.0, 50.0, 10.0, tests=96), row("2026-02-11", 200.0, 50.0, 20.0, tests=32),
             row("2026-02-12"),  # a day without data is not a zero
             row("2026-03-01", 120.0, 40.0, 12.0, tests=90), row("2026-03-02", 60.0, 40.0, 12.0, tests=30,
                                                                  complete=False)]
    out = analysis.compare_months(daily, "home-primary")
    assert out["this_month"] == "2026-03" and out["last_month"] == "2026-02"
    assert out["download_last"] == pytest.approx((100 * 96 + 200 * 32) / 128)     # 125.0
    assert out["download_this"] == pytest.approx((120 * 90 + 60 * 30) / 120)      # 105.0
    assert out["download_change_pct"] == pytest.approx((105 - 125) / 125 * 100)   # -16.0
    assert out["ping_last"] == pytest.approx((10 * 96 + 20 * 32) / 128)
    assert (out["tests_this"], out["tests_last"], out["days_this"], out["days_last"]) == (120, 128, 2, 2)
    assert out["verdict"] == "slower"
    assert out["text"].startswith("Yes: slower this month for home-primary. Average download in 2026-03 so far "
                                  "is 105.0 Mbit/s (120 tests on 2 days) against 125.0 Mbit/s in 2026-02 "
                                  "(128 tests on 2 days): -16.0 %.")
    # the details keep their units' case (Mbit/s, not mbit/s)
    assert out["text"].endswith(" Upload 40.0 vs 50.0 Mbit/s (-20.0 %); ping 12.0 vs 12.5 ms (-4.0 %).")


@pytest.mark.parametrize("this, verdict, start", [(103.0, "about the same", "No: about the same"),
                                                  (96.0, "about the same", "No: about the same"),
                                                  (94.0, "slower", "Yes: slower"),
                                                  (110.0, "faster", "No: faster")])
def test_compare_months_verdict_thresholds(this, verdict, start):
    out = analysis.compare_months([row("2025-12-31", 100.0, tests=4), row("2026-01-01", this, tests=4)])
    assert out["last_month"] == "2025-12" and out["verdict"] == verdict and out["text"].startswith(start)


def test_compare_months_without_data_says_so():
    out = analysis.compare_months([row("2026-02-27"), row("2026-03-01", 100.0)], "office-main")
    assert out["verdict"] == "not enough data" and out["download_change_pct"] is None
    assert out["text"] == "Not enough data to compare for office-main: no successful tests in 2026-02."
    failed_only = analysis.compare_months([row("2026-02-27", 90.0), row("2026-03-01", failed=4)])
    assert failed_only["verdict"] == "not enough data" and "in 2026-03" in failed_only["text"]
    with pytest.raises(ValueError):
        analysis.compare_months([])


# --------------------------------------------------------------------------- time of day

def _hours(day: str, values: dict[int, float], tests: int = 4) -> list[dict]:
    base = datetime.fromisoformat(day)
    return [row((base + timedelta(hours=h)).isoformat(), v, 10.0, 5.0 + h / 10, tests=tests, mode="hourly")
            for h, v in values.items()]


def test_time_of_day_finds_best_and_worst_hours():
    hourly = (_hours("2026-01-05", {3: 200.0, 12: 150.0, 21: 80.0})          # Monday
              + _hours("2026-01-06", {3: 220.0, 12: 150.0, 21: 100.0}, tests=2)
              + [row("2026-01-06T22:00", mode="hourly", failed=4)])          # failed: not a zero
    out = analysis.time_of_day(hourly, "home-primary")
    profile = {p["hour"]: p for p in out["profile"]}
    assert sorted(profile) == [3, 12, 21]
    assert profile[3]["download_avg"] == pytest.approx((200 * 4 + 220 * 2) / 6)
    assert profile[21]["download_avg"] == pytest.approx((80 * 4 + 100 * 2) / 6)
    assert (profile[21]["tests"], profile[21]["periods"]) == (6, 2)
    assert (out["best_hour"], out["worst_hour"], out["best_ping_hour"]) == (3, 21, 3)
    assert out["spread_pct"] == pytest.approx(100 * (1 - (520 / 6) / (1240 / 6)))
    assert out["evening_avg"] == pytest.approx(520 / 6)
    assert out["rest_avg"] == pytest.approx((200 * 4 + 220 * 2 + 150 * 6) / 12)
    assert out["days_with_data"] == 2
    assert out["text"].startswith("Best time for home-primary: around 03:00, averaging 206.7 Mbit/s download; "
                                  "worst around 21:00 at 86.7 Mbit/s (58 % slower), over 2 days with data.")
    assert "Evenings (19:00-23:00) average 86.7 Mbit/s, 51 % below the rest of the day." in out["text"]
    assert {(c["weekday"], c["hour"]) for c in out["cells"]} == {(d, h) for d in ("Mon", "Tue") for h in (3, 12, 21)}


def test_time_of_day_survives_hours_that_all_average_zero_download():
    out = analysis.time_of_day(_hours("2026-01-05", {3: 0.0, 12: 0.0, 21: 0.0}), "home-primary")
    assert out["spread_pct"] == 0.0 and out["evening_avg"] == 0.0 and out["rest_avg"] == 0.0
    assert "worst around 03:00 at 0.0 Mbit/s (0 % slower)" in out["text"]
    assert "Evenings (19:00-23:00) are not slower than the rest of the day (0.0 vs 0.0 Mbit/s)." in out["text"]
    out = analysis.time_of_day(_hours("2026-01-05", {3: 0.0, 21: 40.0}), "home-primary")
    assert out["spread_pct"] == pytest.approx(100.0)
    assert "Evenings (19:00-23:00) are not slower than the rest of the day (40.0 vs 0.0 Mbit/s)." in out["text"]


def test_time_of_day_without_data():
    out = analysis.time_of_day([row("2026-01-05T10:00", mode="hourly", failed=1)])
    assert out["best_hour"] is None and out["profile"] == []
    assert out["text"] == "No successful tests for all hosts together in this window: no time of day to compare."


# --------------------------------------------------------------------------- long term

def test_linear_trend_is_least_squares():
    assert analysis.linear_trend([(0, 1.0), (1, 3.0), (2, 5.0)]) == pytest.approx(2.0)
    assert analysis.linear_trend([(0, 0.0), (1, 1.0), (2, 0.0), (3, 1.0)]) == pytest.approx(0.2)
    assert analysis.linear_trend([(1, 5.0), (1, 6.0)]) is None


def test_long_term_uses_yearly_summaries_and_months_for_the_year_in_progress():
    yearly = [row("2024-01-01", 100.0, tests=1000, mode="yearly"), row("2025-01-01", mode="yearly"),
              row("2026-01-01", status="pending", mode="yearly", complete=False)]
    monthly = [row(f"2024-{m:02d}-01", 100.0, tests=80, mode="monthly") for m in range(1, 13)]
    monthly += [row("2026-01-01", 130.0, tests=50, mode="monthly"), row("2026-02-01", 140.0, tests=150, mode="monthly")]
    out = analysis.long_term(yearly, monthly, "office-main")
    assert [(y["year"], y["source"]) for y in out["years"]] == [("2024", "yearly summary"),
                                                                ("2026", "monthly summaries")]
    assert out["years"][1]["download_avg"] == pytest.approx((130 * 50 + 140 * 150) / 200)   # 137.5
    assert out["change_pct"] == pytest.approx(37.5)
    assert out["months_with_data"] == 14
    assert out["verdict"] == "improving" and out["trend_mbps_per_year"] > 0
    assert out["text"].startswith("Average download for office-main by year: 2024: 100.0 Mbit/s (1000 tests); "
                                  "2026: 137.5 Mbit/s (200 tests, so far). From 2024 to 2026 the average "
                                  "changed by +37.5 %.")


def test_long_term_is_honest_about_short_histories():
    out = analysis.long_term([row("2026-01-01", 90.0, tests=10, mode="yearly")],
                             [row("2026-01-01", 90.0, tests=10, mode="monthly")])
    assert out["verdict"] == "not enough data" and out["trend_mbps_per_year"] is None
    assert "too short to call a long-term trend" in out["text"]
    steady = analysis.long_term([row("2025-01-01", 100.0, tests=9, mode="yearly")],
                                [row(f"2025-{m:02d}-01", 100.0 + (m % 2), tests=3, mode="monthly") for m in (1, 2, 3)])
    assert steady["verdict"] == "steady"
    assert analysis.long_term([row("2025-01-01", mode="yearly")])["verdict"] == "not enough data"


# --------------------------------------------------------------------------- plan delivery

def _tests(values, plan=(100.0, 20.0), connection="Ethernet"):
    start = datetime(2026, 1, 5, 10, 0)
    return [row((start + timedelta(minutes=15 * i)).isoformat(), d, u, 10.0, mode="minute", plan=plan,
                connection=connection) for i, (d, u) in enumerate(values)]


def test_plan_delivery_counts_tests_and_hours_below_the_plan():
    minute = _tests([(95.0, 19.0), (79.0, 19.0), (85.0, 15.0), (50.0, 10.0), (81.0, 16.5)])
    minute.append(row("2026-01-05T11:15", mode="minute", failed=1, plan=(100.0, 20.0)))
    hourly = [row("2026-01-05T10:00", 78.0, 15.9, 10.0, tests=4, mode="hourly", plan=(100.0, 20.0), below=True),
              row("2026-01-05T11:00", 81.0, 16.5, 10.0, tests=1, mode="hourly", plan=(100.0, 20.0), below=False)]
    out = analysis.plan_delivery({"backup-location": {"minute": minute, "hourly": hourly}}, 0.8, 28)
    entry = out["hosts"]["backup-location"]
    assert (entry["tests"], entry["failed"], entry["tests_below"]) == (5, 1, 3)
    assert entry["tests_below_pct"] == pytest.approx(60.0)
    assert entry["download_below_pct"] == pytest.approx(40.0)      # 79 and 50 are under 80
    assert entry["upload_below_pct"] == pytest.approx(40.0)        # 15 and 10 are under 16
    assert (entry["hours"], entry["hours_below"], entry["hours_below_pct"]) == (2, 1, 50.0)
    assert entry["download_avg"] == pytest.approx(78.0) and entry["delivered_pct"] == pytest.approx(78.0)
    assert entry["verdict"] == "not delivering"
    assert entry["text"] == ("backup-location: no. 60.0 % of 5 tests and 50.0 % of 2 hours were below the plan "
                             "(100/20 Mbit/s); average download 78.0 Mbit/s, 78 % of the plan. 1 tests failed "
                             "(not counted as below the plan).")
    assert out["text"].splitlines()[0] == ("Is the ISP delivering the plan over the last 28 days? "
                                           "(below = under 80% of the plan's speed)")


def test_plan_delivery_verdicts_no_plan_and_wifi():
    good = _tests([(99.0, 19.0)] * 19 + [(10.0, 19.0)])
    hours = [row(f"2026-01-05T{h:02d}:00", 95.0, 19.0, 9.0, tests=4, mode="hourly", plan=(100.0, 20.0),
                 below=(h == 0)) for h in range(10)]
    wifi = _tests([(70.0, 19.0)] * 4, connection="Wi-Fi 5GHz")
    out = analysis.plan_delivery({
        "office-main": {"minute": good, "hourly": hours},
        "home-primary": {"minute": wifi, "hourly": []},
        "no-plan-host": {"minute": _tests([(50.0, 5.0)], plan=(None, None)), "hourly": []},
        "silent-host": {"minute": [row("2026-01-05T10:00", mode="minute", failed=2, plan=(100.0, 20.0))],
                        "hourly": []},
    })
    hosts = out["hosts"]
    assert hosts["office-main"]["tests_below_pct"] == pytest.approx(5.0)
    assert hosts["office-main"]["hours_below_pct"] == pytest.approx(10.0)
    assert hosts["office-main"]["verdict"] == "delivering"
    assert hosts["home-primary"]["verdict"] == "not delivering"   # no hourly rows: the tests decide
    assert hosts["home-primary"]["connection_types"] == ["Wi-Fi 5GHz"]
    assert hosts["home-primary"]["text"].endswith("These tests ran over Wi-Fi, which may be the bottleneck "
                                                  "rather than the ISP.")
    assert hosts["no-plan-host"]["verdict"] == "no plan" and hosts["no-plan-host"]["tests_below"] == 0
    assert hosts["silent-host"]["verdict"] == "no data" and hosts["silent-host"]["failed"] == 2
    assert analysis.plan_delivery({})["text"].endswith("- no hosts with results in the store")


@pytest.mark.slow
def test_charts_build_from_answers():
    pytest.importorskip("altair")
    daily = [row("2026-02-10", 100.0, 50.0, 10.0), row("2026-03-01", 90.0, 50.0, 10.0)]
    comparison = analysis.compare_months(daily)
    spec = analysis.month_comparison_chart(daily, comparison).to_dict()
    assert spec["title"] == "Daily download: 2026-02 vs 2026-03 (all hosts together)"
    answer = analysis.plan_delivery({"h": {"minute": _tests([(50.0, 10.0)]), "hourly": []}})
    assert analysis.plan_delivery_chart(answer).to_dict()["data"]["values"][0]["pct"] == 100.0
    tod = analysis.time_of_day(_hours("2026-01-05", {1: 10.0, 2: 20.0}))
    assert len(analysis.time_of_day_chart(tod).to_dict()["vconcat"]) == 2


# --------------------------------------------------------------------------- when does it get laggy?

def _lag(start: str, idle=None, download=None, upload=None, counts=(4, 4, 4), host="office-main") -> dict:
    """An hourly row with latency averages [ms] and the counts behind them (idle, download, upload)."""
    r = row(start, 100.0, 50.0, 10.0, tests=max(counts), mode="hourly", host=host)
    for name, avg, count in zip(("idle", "download", "upload"), (idle, download, upload), counts, strict=True):
        r.update({f"latency_{name}_avg": avg, f"latency_{name}_count": count if avg is not None else 0})
    return r


def test_latency_by_hour_weights_rows_by_their_counts():
    from speedlab import laggy
    hourly = [_lag("2026-01-05T20:00", 20.0, 300.0, 500.0, counts=(4, 4, 2)),
              _lag("2026-01-06T20:00", 30.0, 100.0, None, counts=(1, 1, 0)),   # upload not measured
              _lag("2026-01-06T20:15", None, None, None),                      # schema-1 hour: counts nothing
              _lag("2026-01-05T03:00", 10.0, 40.0, 60.0, counts=(2, 2, 2)),
              _lag("2026-01-05T04:00")]                                        # no latency at all: left out
    profile = {p["hour"]: p for p in laggy.latency_by_hour(hourly)}
    assert sorted(profile) == [3, 20]
    evening = profile[20]
    assert evening["idle_ms"] == pytest.approx((20 * 4 + 30 * 1) / 5)                 # 22.0, not (20 + 30) / 2
    assert evening["download_ms"] == pytest.approx((300 * 4 + 100 * 1) / 5)          # 260.0
    assert evening["upload_ms"] == pytest.approx(500.0)
    assert evening["loaded_ms"] == pytest.approx((300 * 4 + 100 + 500 * 2) / 7)       # download and upload pooled
    assert (evening["idle_count"], evening["download_count"], evening["upload_count"], evening["loaded_count"]) == \
        (5, 5, 2, 7)
    assert profile[3]["loaded_ms"] == pytest.approx(50.0)


def test_laggy_hours_names_the_worst_hours_against_idle_and_says_not_measured():
    from speedlab import laggy
    office = [_lag(f"2026-01-05T{h:02d}:00", 10.0, 20.0 + 10 * h, 20.0 + 10 * h) for h in range(24)]
    old_host = [row("2026-01-05T20:00", 90.0, 20.0, 9.0, tests=4, mode="hourly", host="old-host")]
    out = laggy.laggy_hours({"office-main": office, "old-host": old_host}, days=7)
    host = out["hosts"]["office-main"]
    assert host["worst_hours"] == [23, 22, 21] and host["best_hour"] == 0
    assert host["loaded_ms"] == pytest.approx(20 + 10 * 11.5) and host["idle_ms"] == pytest.approx(10.0)
    assert host["text"] == ("office-main gets laggiest around 23:00, 22:00 and 21:00: 250.0 ms under load at 23:00, "
                            "25.0x its idle 10.0 ms (+240.0 ms); least laggy around 00:00 (20.0 ms). Over the last 7 "
                            "days: 135.0 ms under load against 10.0 ms idle (13.5x), from 96 round trips during "
                            "downloads and 96 during uploads.")
    old = out["hosts"]["old-host"]
    assert old["worst_hours"] == [] and old["loaded_ms"] is None
    assert old["text"].startswith("old-host: latency under load not measured in the last 7 days: its results")
    assert out["text"].splitlines() == [f"- {host['text']}", f"- {old['text']}"]
    assert laggy.laggy_hours({})["text"] == "No hosts with results in this window."
    zoned = laggy.laggy_hours({"office-main": office}, days=7, timezone="Europe/Berlin")["text"]
    assert zoned == f"- {host['text']}\n\nHours are local time in Europe/Berlin."


@pytest.mark.slow
def test_laggy_chart_draws_loaded_and_idle_per_host():
    pytest.importorskip("altair")
    from speedlab import laggy
    answer = laggy.laggy_hours({"a": [_lag("2026-01-05T20:00", 10.0, 50.0, 70.0)],
                                "b": [_lag("2026-01-05T21:00", None, 40.0, None)]}, days=1)
    values = laggy.laggy_chart(answer).to_dict()["data"]["values"]
    assert sorted((v["host"], v["hour"], v["which"], v["ms"]) for v in values) == [
        ("a", 20, "idle", 10.0), ("a", 20, "loaded", 60.0), ("b", 21, "loaded", 40.0)]
