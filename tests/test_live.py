"""speedlab.live: a period in progress gets exact figures so far, checked against plain Python."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone

import pytest

from speedlab.aggregate import hourly_summaries, merge_summaries
from speedlab.live import live_summary
from speedlab.periods import Period, children, period_of
from speedlab.records import SpeedTestResult
from speedlab.settings import AggregateSettings
from tests.helpers.data import IST, result

UTC = timezone.utc
HOSTS = ("home", "office", "backup")
NOW = datetime(2026, 12, 1, 10, 40, tzinfo=IST).astimezone(UTC)


class _NoPlan:
    download_mbps = None
    upload_mbps = None


def plan_for(host):
    return _NoPlan()


def _results(first: datetime, last: datetime) -> list[tuple[str, SpeedTestResult]]:
    """One result per host and slot in [first, last), with a failed test now and then and a
    duplicate now and then (the hourly rule keeps one per slot)."""
    out = []
    moment, i = first, 0
    while moment < last:
        for h, host in enumerate(HOSTS):
            i += 1
            if (i + h) % 11 == 0:
                continue  # a missed slot
            status = "failed" if i % 17 == 0 else "ok"
            rec = result(host, moment.astimezone(IST) + timedelta(seconds=20), download=90.0 + (i * 7) % 23,
                         upload=40.0 + i % 5, ping=8.0 + i % 3, status=status)
            out.append((f"{host}/{moment.isoformat()}/test.json", rec))
            if i % 29 == 0:  # a later duplicate in the same slot
                dup = result(host, moment.astimezone(IST) + timedelta(minutes=3), download=1.0)
                out.append((f"{host}/{moment.isoformat()}/test-2.json", dup))
        moment += timedelta(minutes=15)
    return out


FIRST = datetime(2026, 11, 28, 0, 0, tzinfo=IST)
DATA = _results(FIRST.astimezone(UTC), NOW)


BY_HOUR: dict[str, list] = {}
for _k, _r in DATA:
    BY_HOUR.setdefault(period_of("hourly", _r.slot_start, IST).label, []).append((_k, _r))


def _in(hour: Period):
    return BY_HOUR.get(hour.label, [])


def _kept(period: Period, host: str | None) -> list[SpeedTestResult]:
    """The independent oracle's one result per host and slot: the earliest complete ok one."""
    best: dict[tuple[str, datetime], SpeedTestResult] = {}
    for _, rec in DATA:
        if host is not None and rec.host_id != host:
            continue
        if not period.contains(rec.slot_start) or rec.slot_start >= NOW:
            continue
        slot = (rec.host_id, rec.slot_start)
        old = best.get(slot)
        rank = (rec.status != "ok", rec.timestamp_utc)
        if old is None or rank < (old.status != "ok", old.timestamp_utc):
            best[slot] = rec
    return list(best.values())


class Stored:
    """Summaries as the rollup would have stored them: every hour and day that is over,
    except the ones listed in ``missing`` (not rolled up yet)."""

    def __init__(self, missing: set[str] = frozenset()):
        self.missing = missing
        self.cache: dict = {}
        self.results_asked: list[str] = []

    def stored(self, period: Period, host):
        if period.end_utc > NOW or period.label in self.missing or period.end_utc <= FIRST:
            return None
        key = (period.tier, period.label, host)
        if key not in self.cache:
            if period.tier == "hourly":
                got = hourly_summaries(period, _in(period), plan_for=plan_for).get(host)
            else:
                kids = [k for k in (self.stored(c, host) for c in children(period)) if k is not None]
                got = merge_summaries(period, host, kids, plan_for=plan_for) if kids else None
            self.cache[key] = None if got is None else got.to_dict()
        return self.cache[key]

    def results(self, hour: Period):
        self.results_asked.append(hour.label)
        return _in(hour)


@pytest.mark.parametrize("tier", ["hourly", "daily", "weekly", "monthly", "yearly"])
@pytest.mark.parametrize("host", [None, "office"])
@pytest.mark.slow
def test_a_period_in_progress_has_the_exact_figures_of_its_results_so_far(tier, host):
    period = period_of(tier, NOW, IST)
    source = Stored()
    got = live_summary(period, host, NOW, stored=source.stored, results=source.results, plan_for=plan_for,
                       rolled_up_before=FIRST.astimezone(UTC))
    kept = _kept(period, host)
    ok = [r for r in kept if r.status == "ok"]
    assert got["records_aggregated"] == len(ok)
    assert got["failed_tests"] == len(kept) - len(ok)
    assert got["slots_with_result"] == len(kept)
    assert got["avg_download"] == pytest.approx(statistics.fmean(r.download_mbps for r in ok), abs=1e-3)
    assert got["min_download"] == min(r.download_mbps for r in ok)
    assert got["max_download"] == max(r.download_mbps for r in ok)
    assert got["avg_ping"] == pytest.approx(statistics.fmean(r.ping_ms for r in ok), abs=1e-3)
    hosts = sorted({r.host_id for r in kept})
    assert got["hosts"] == hosts
    begun = period.slots_begun(NOW)
    assert got["expected_slots"] == len(hosts) * begun
    assert got["coverage_pct"] == round(100 * len(kept) / (len(hosts) * begun), 2)
    # only the hour in progress is read from raw results: the rest comes from stored summaries
    assert source.results_asked == [period_of("hourly", NOW, IST).label]


@pytest.mark.slow
def test_a_finished_child_not_rolled_up_yet_is_computed_from_its_own_children():
    yesterday = period_of("daily", NOW - timedelta(days=1), IST)
    week = period_of("weekly", NOW, IST)
    assert week.contains(yesterday.start_utc)  # the week began on Monday 30 November
    full = Stored()
    late = Stored(missing={yesterday.label})
    a = live_summary(week, None, NOW, stored=full.stored, results=full.results, plan_for=plan_for)
    b = live_summary(week, None, NOW, stored=late.stored, results=late.results, plan_for=plan_for)
    assert a == b
    assert late.results_asked == full.results_asked  # the day was rebuilt from its stored hours


def test_an_hour_not_rolled_up_yet_is_read_from_raw_results():
    last_hour = period_of("hourly", NOW - timedelta(hours=1), IST)
    source = Stored(missing={last_hour.label})
    got = live_summary(period_of("daily", NOW, IST), "home", NOW, stored=source.stored,
                       results=source.results, plan_for=plan_for)
    assert source.results_asked == [last_hour.label, period_of("hourly", NOW, IST).label]
    assert got["records_aggregated"] == len([r for r in _kept(period_of("daily", NOW, IST), "home")
                                             if r.status == "ok"])


def test_nothing_stored_gives_none_and_a_period_not_begun_gives_none():
    source = Stored()
    assert live_summary(period_of("daily", NOW, IST), "nowhere", NOW, stored=source.stored,
                        results=source.results, plan_for=plan_for) is None
    tomorrow = period_of("daily", NOW + timedelta(days=1), IST)
    assert live_summary(tomorrow, None, NOW, stored=source.stored, results=source.results,
                        plan_for=plan_for) is None


def test_a_finished_period_gives_its_stored_summary_unchanged():
    day = period_of("daily", NOW - timedelta(days=2), IST)
    source = Stored()
    got = live_summary(day, None, NOW, stored=source.stored, results=source.results, plan_for=plan_for)
    assert got == source.stored(day, None)
    assert source.results_asked == []


def test_settings_reach_the_merge():
    day = period_of("daily", NOW, IST)
    source = Stored()
    got = live_summary(day, None, NOW, stored=source.stored, results=source.results, plan_for=plan_for,
                       settings=AggregateSettings())
    assert got["tier"] == "daily" and got["exact"] is True


def test_without_a_settled_moment_an_empty_finished_child_is_recomputed_down_to_its_hours():
    day = period_of("daily", FIRST - timedelta(days=1), IST)  # no data, no stored summary
    source = Stored()
    assert live_summary(day, None, NOW, stored=source.stored, results=source.results,
                        plan_for=plan_for) is None
    assert len(source.results_asked) == 24
    source.results_asked.clear()
    assert live_summary(day, None, NOW, stored=source.stored, results=source.results, plan_for=plan_for,
                        rolled_up_before=FIRST.astimezone(UTC)) is None
    assert source.results_asked == []


def test_a_partial_period_carries_the_latency_figures_so_far_into_its_row():
    """Schema-2 results with latency figures (and schema-1 ones without) in today so far: the
    live summary's latency statistics and the partial row's latency keys equal plain Python."""
    import dataclasses

    from speedlab.rowbuild import ROW_FIELDS, summary_row

    today = period_of("daily", NOW, IST)
    items = []
    for i, (key, rec) in enumerate(r for r in DATA if r[1].slot_start >= today.start and r[1].host_id == "home"):
        if i % 4 == 0:
            rec = dataclasses.replace(rec, schema_version=1)
        elif rec.ok:
            rec = dataclasses.replace(rec, latency_idle_ms=9.0 + i % 7, latency_download_ms=40.0 + (i * 13) % 90,
                                      latency_upload_ms=60.0 + (i * 7) % 200, jitter_ms=0.5 + i % 3)
        items.append((key, rec))
    by_hour: dict[str, list] = {}
    for key, rec in items:
        by_hour.setdefault(period_of("hourly", rec.slot_start, IST).label, []).append((key, rec))
    summary = live_summary(today, "home", NOW, stored=lambda period, host: None,
                           results=lambda hour: by_hour.get(hour.label, []), plan_for=plan_for)
    assert summary is not None
    kept, seen = [], set()  # one result per slot: the earliest ok one, else the slot's failed test
    for _key, rec in sorted(items, key=lambda kr: (kr[1].slot_start, not kr[1].ok, kr[1].time_utc, kr[0])):
        if rec.slot_start not in seen and rec.ok:
            kept.append(rec)
        seen.add(rec.slot_start)
    loaded = [r.latency_download_ms for r in kept if r.latency_download_ms is not None]
    assert 5 < len(loaded) < len(kept)
    assert summary["stats"]["latency_download_ms"]["count"] == len(loaded)
    assert summary["avg_latency_download"] == pytest.approx(statistics.fmean(loaded), abs=5e-4)
    assert (summary["min_latency_download"], summary["max_latency_download"]) == (min(loaded), max(loaded))
    row = summary_row("daily", today, summary, host="home", now=NOW, live=True)
    assert row["status"] == "partial" and list(row) == list(ROW_FIELDS)
    assert row["latency_download_count"] == len(loaded)
    assert row["latency_download_avg"] == summary["avg_latency_download"]
    assert row["jitter_avg"] == pytest.approx(statistics.fmean(r.jitter_ms for r in kept if r.jitter_ms is not None),
                                              abs=5e-4)
