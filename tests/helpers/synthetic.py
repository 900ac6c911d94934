"""Stores for the dashboard tests: synthetic raw results and contract summaries.

The summaries are computed here with plain Python sums (no speedlab aggregation code), so the
dashboard tests check :mod:`speedlab.query` against an independent computation.
"""

from __future__ import annotations

import bisect
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from speedlab import layout
from speedlab.layout import Buckets
from speedlab.periods import SLOT, UTC, Period, period_of, periods_between
from speedlab.records import SpeedTestResult
from speedlab.sketch import DEFAULT_ALPHA
from tests.helpers.data import IN_SLOT, result

IST = ZoneInfo("Asia/Kolkata")
B = Buckets()
HOSTS = ("backup-location", "home-primary", "office-main")
BASE_MBPS = {"backup-location": 60.0, "home-primary": 150.0, "office-main": 400.0}
CONNECTION = {"backup-location": "Wi-Fi 2.4GHz", "home-primary": "Wi-Fi 5GHz", "office-main": "Ethernet"}
PLANS = {None: (200.0, 100.0), "office-main": (500.0, 500.0)}


@dataclass(frozen=True)
class Sample:
    """A light stand-in for a result (same attribute names), cheap to make by the ten thousand."""

    host_id: str
    slot_start: datetime
    ok: bool
    download_mbps: float | None
    upload_mbps: float | None
    ping_ms: float | None
    connection_type: str

    def to_result(self) -> SpeedTestResult:
        return result(self.host_id, self.slot_start + IN_SLOT, self.download_mbps, self.upload_mbps, self.ping_ms,
                      status="ok" if self.ok else "failed", connection=self.connection_type)


def synthetic(host: str, slot: datetime, day_index: int) -> Sample | None:
    """The made-up result of ``host`` in ``slot``: a daily rhythm per host, some failures, gaps.

    Values are multiples of 0.25 so that sums are exact in floating point.
    """
    n = day_index * 96 + slot.hour * 4 + slot.minute // 15
    if host == "backup-location" and day_index % 11 == 5:
        return None  # this host is off one day in eleven
    if n % 97 == 13:
        return Sample(host, slot, False, None, None, None, CONNECTION[host])
    evening = 0.5 if 18 <= slot.hour <= 22 else 1.0  # evenings are slower
    download = BASE_MBPS[host] * evening + (n % 8) * 0.25 + day_index % 5
    ping = 5.0 + slot.hour % 7 + HOSTS.index(host)
    return Sample(host, slot, True, download, download / 2, ping, CONNECTION[host])


def slots_between(first: datetime, end: datetime) -> list[datetime]:
    """Slot starts (aware local) from ``first`` up to but excluding ``end``."""
    out, moment = [], first.astimezone(UTC)
    while moment < end.astimezone(UTC):
        out.append(moment.astimezone(first.tzinfo))
        moment += SLOT
    return out


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered, mid = sorted(values), len(values) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def summarize(period: Period, host_id: str | None, results: list[Sample],
              n_hosts: int = 1) -> dict:
    """A summary object following the contract, from plain Python sums over ``results``."""
    ok = [r for r in results if r.ok]
    plan = PLANS.get(host_id, PLANS[None])
    data = {"schema_version": 1, "tier": period.tier, "period": period.label}
    s, last = period.start, (period.end - timedelta(microseconds=1))
    data.update({
        "hourly": {"hour": s.strftime("%Y-%m-%dT%H")},
        "daily": {"date": s.strftime("%Y-%m-%d")},
        "weekly": {"week": period.label, "week_start": f"{s:%Y-%m-%d}", "week_end": f"{last:%Y-%m-%d}"},
        "monthly": {"month": s.strftime("%Y-%m")},
        "yearly": {"year": s.strftime("%Y")},
    }[period.tier])
    data.update(period_start=period.start.isoformat(), period_end=period.end.isoformat(),
                timezone="Asia/Kolkata", host_id=host_id,
                hosts=sorted({r.host_id for r in results}))
    stats = {}
    for short, attr in (("download", "download_mbps"), ("upload", "upload_mbps"), ("ping", "ping_ms")):
        values = [getattr(r, attr) for r in ok if getattr(r, attr) is not None]
        data[f"avg_{short}"] = sum(values) / len(values) if values else None
        data[f"min_{short}"] = min(values) if values else None
        data[f"max_{short}"] = max(values) if values else None
        data[f"median_{short}"] = _median(values)
        data[f"p95_{short}"] = _p95(values)
        milli = [round(v * 1000) for v in values]  # exact: the values are multiples of 0.25
        stats[attr] = {"count": len(values), "sum": sum(values), "sum_sq": sum(v * v for v in values),
                       "min": data[f"min_{short}"], "max": data[f"max_{short}"],
                       "sum_milli": sum(milli), "sum_sq_micro": sum(m * m for m in milli), "exact": True,
                       # mergeable (speedlab.live merges these for a period in progress); no
                       # values in the sketch, so merged percentiles stay unknown
                       "sketch": {"alpha": DEFAULT_ALPHA, "zero_count": 0, "index": [], "counts": []}}
    expected = period.expected_slots * n_hosts
    with_result = len({(r.host_id, r.slot_start) for r in results})
    below = None
    if data["avg_download"] is not None:
        below = data["avg_download"] < 0.8 * plan[0] or data["avg_upload"] < 0.8 * plan[1]
    data.update(
        records_aggregated=len(ok), failed_tests=len(results) - len(ok), rejected_records=0,
        duplicates_ignored=0, expected_slots=expected, slots_with_result=with_result,
        coverage_pct=100.0 * with_result / expected,
        days=len({r.slot_start.date() for r in ok}),
        connection_types=sorted({r.connection_type for r in ok}), anomalies_count=0,
        expected_download_mbps=plan[0], expected_upload_mbps=plan[1], below_expected=below,
        stats=stats, generated_at="2026-01-01T00:00:00Z", source_max_modified="2026-01-01T00:00:00Z")
    return data


@dataclass
class Dataset:
    """What :func:`build_store` wrote, to compute expectations from."""

    first: datetime
    now: datetime
    results: list[Sample] = field(default_factory=list)
    summaries: dict[tuple[str, str, str | None], dict] = field(default_factory=dict)
    raw_keys: list[str] = field(default_factory=list)
    _starts: list[datetime] = field(default_factory=list)

    def add(self, result: Sample, slot: datetime) -> None:
        self.results.append(result)  # in slot order
        self._starts.append(slot.astimezone(UTC))

    def results_in(self, start: datetime, end: datetime, host: str | None = None) -> list[Sample]:
        lo = bisect.bisect_left(self._starts, start.astimezone(UTC))
        hi = bisect.bisect_left(self._starts, end.astimezone(UTC))
        return [r for r in self.results[lo:hi] if host in (None, r.host_id)]


def build_store(store, first: datetime, now: datetime, *, hosts=HOSTS, raw_days: int = 2,
                hourly_days: int = 3, tiers=("hourly", "daily", "weekly", "monthly", "yearly"),
                skip_days: tuple[str, ...] = ()) -> Dataset:
    """Write synthetic data from ``first`` up to the last complete period before ``now``.

    Raw results are written for the last ``raw_days`` days only and hourly summaries for the
    last ``hourly_days`` days (the dashboard reads nothing older at those grains); daily and
    coarser summaries cover everything. ``skip_days`` (``YYYYMMDD``) are days without any
    result. Summaries are written for complete periods only, as the aggregator does.
    """
    data = Dataset(first=first, now=now)
    first_day = first.date()
    for slot in slots_between(first, slot_floor(now)):
        if slot.strftime("%Y%m%d") in skip_days:
            continue
        for host in hosts:
            result = synthetic(host, slot, (slot.date() - first_day).days)
            if result is not None:
                data.add(result, slot)
    writes: list[tuple[str, str, bytes]] = []
    raw_from = now - timedelta(days=raw_days)
    for result in data.results_in(raw_from, now):
        key = layout.raw_key(result.host_id, result.slot_start)
        writes.append((B.raw, key, result.to_result().to_json().encode()))
        data.raw_keys.append(key)
    for tier in tiers:
        since = now - timedelta(days=hourly_days) if tier == "hourly" else first
        for period in periods_between(tier, since, now, IST):
            if period.end > now:
                continue  # not finished: the aggregator has not written it yet
            inside = data.results_in(period.start, period.end)
            for host_id in (None, *hosts):
                chosen = [r for r in inside if host_id in (None, r.host_id)]
                if not chosen:
                    continue  # no result at all: no summary (the period shows as missing)
                summary = summarize(period, host_id, chosen, len(hosts) if host_id is None else 1)
                writes.append((B.for_tier(tier), layout.summary_key(period, host_id),
                               json.dumps(summary).encode()))
                data.summaries[(tier, period.label, host_id)] = summary
    with ThreadPoolExecutor(16) as pool:  # a test store: written in parallel to save time
        list(pool.map(lambda w: store.put(*w), writes))
    return data


def slot_floor(moment: datetime) -> datetime:
    """The start of the slot holding ``moment`` (local)."""
    local = moment.astimezone(IST)
    return local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)


def ist(*args: int) -> datetime:
    """An aware IST datetime."""
    return datetime(*args, tzinfo=IST)


def period(tier: str, moment: datetime) -> Period:
    return period_of(tier, moment, IST)
