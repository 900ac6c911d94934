"""A synthetic fleet (default 100 hosts x 365 days): the tables' cost at scale, in one run.

The store is written in the ORIGINAL LAYOUT, as a year of the scheduler would leave it at
``TODAY`` 05:10 IST, without 3.5 million raw objects: daily, weekly, monthly and yearly
summaries (per host and all hosts) for every period that is due, hourly summaries for the
current month only, raw results only for yesterday and today (the hours the rollups and the
live tail need). How the summaries are made (speedlab's own functions, no hand-written JSON):

* yesterday's and today's hours are real: 4 results per host and hour
  (``tests.helpers.data.result``, varied values, 1 % failed) -> ``aggregate.hourly_parts`` ->
  ``aggregate.hour_summaries``; these hosts' hourly accumulators are the **pool**;
* every other hour of host ``k`` on day ``e`` days before yesterday is pool hour ``h`` of host
  ``(k + e (h + 1)) mod H``, given to host ``k`` (``Accumulator.add`` then
  ``summary_from_accumulator``): rows differ from day to day and host to host, as real ones do
  (Parquet's dictionary encoding would shrink identical rows to nothing);
* a day is its 24 hours merged, a week and a month their days, a year its months, all hosts
  the merge of every host's (days counted as ``aggregate.merge_summaries`` does); provenance
  (``source_objects``, ``source_max_modified``) as the roller records it, and on a local store
  the objects' mtimes ordered raw < hourly < daily < ... so ``run-due`` finds nothing stale.

Then, each against a baseline measured in the same run:

1. ``tables_io.rebuild`` (``speedlab tables rebuild``): time, requests, bytes; every table
   object with its rows and size;
2. two hourly runs of the real ``rollup.run_due``: 4 new results per host for the hour, then
   ``run_due`` at :10 (the 06:10 run also rolls up yesterday, which rewrites the daily table of
   the year): the ``tables`` part of its report (time, requests, bytes read and written, each
   table object written and its size) against the rollup's own requests and bytes;
3. ``query.rows`` cold for each mode, all hosts and one host, against the one-object-per-period
   baseline of ``bench_dashboard.py`` (one GET per period; minute: a LIST per host and day, one
   GET per result), with the requests split into ``fin`` (finished periods: the mode's table)
   and ``live`` (the period in progress: finer tables, the raw table, the tail of 2 slots per host).

Run: ``python -m benchmarks.bench_fleet [--hosts 100] [--days 365] [--store local|moto]``.
moto answers ~200-300 requests/s here, so ``--store moto`` wants a smaller fleet (``--hosts 10
--days 60``).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from tests.helpers.servers import MotoServer, isolate_environment

isolate_environment()

import polars as pl  # noqa: E402

from speedlab import cache, layout, query, rowbuild, tables_io  # noqa: E402
from speedlab.aggregate import Accumulator, hour_summaries, hourly_parts, summary_from_accumulator  # noqa: E402
from speedlab.config import load_config  # noqa: E402
from speedlab.errors import ObjectNotFound  # noqa: E402
from speedlab.layout import Buckets  # noqa: E402
from speedlab.periods import Period, get_zone, period_of, periods_between  # noqa: E402
from speedlab.reader import list_raw  # noqa: E402
from speedlab.records import SpeedTestResult  # noqa: E402
from speedlab.rollup import run_due  # noqa: E402
from speedlab.scheduler import due_at  # noqa: E402
from speedlab.store import LocalStore  # noqa: E402
from speedlab.store_s3 import S3Store  # noqa: E402
from tests.helpers.data import IN_SLOT, result  # noqa: E402

IST = get_zone("Asia/Kolkata")
UTC = timezone.utc
B = Buckets()
TODAY = date(2026, 12, 16)          # a Wednesday late in the year: the daily table of 2026 is nearly full
SYNTH_NOW = datetime(2026, 12, 16, 5, 10, tzinfo=IST)   # the store as run-due left it at 05:10
RUN_HOURS = (5, 6)                  # hours rolled up by the measured runs (at 06:10 and 07:10)
VIEW_NOW = datetime(2026, 12, 16, 7, 20, tzinfo=IST)    # rows() are read at 07:20
TAIL_SLOTS = 2                      # results of 07:00 and 07:15 per host: the live tail at 07:20
CASES = [("minute", 1), ("hourly", 7), ("daily", 90), ("weekly", 12), ("monthly", 6), ("yearly", 5)]
TIER_ORDER = ("raw", "hourly", "daily", "weekly", "monthly", "yearly")


# =========================================================================== counting

class Counting:
    """A store wrapper counting requests (a LIST per 1,000 keys returned, as S3 bills them) and
    bytes read and written (thread-safe). :class:`speedlab.counting.CountingStore` counts no bytes."""

    def __init__(self, inner):
        self.inner, self.url = inner, inner.url
        self.calls: Counter = Counter()
        self.bytes_read = self.bytes_written = 0
        self.keys: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _count(self, kind: str, bucket: str, key: str, read: int = 0, written: int = 0, n: int = 1) -> None:
        with self._lock:
            self.calls[kind] += n
            self.bytes_read += read
            self.bytes_written += written
            self.keys.append((bucket, key))

    def get(self, bucket, key):
        try:
            body = self.inner.get(bucket, key)
        except ObjectNotFound:
            self._count("get", bucket, key)
            raise
        self._count("get", bucket, key, read=len(body))
        return body

    def get_versioned(self, bucket, key):
        body, version = self.inner.get_versioned(bucket, key)
        self._count("get", bucket, key, read=len(body))
        return body, version

    def put(self, bucket, key, data):
        self._count("put", bucket, key, written=len(data))
        return self.inner.put(bucket, key, data)

    def put_if_absent(self, bucket, key, data):
        self._count("put", bucket, key, written=len(data))
        return self.inner.put_if_absent(bucket, key, data)

    def put_if_version(self, bucket, key, data, version):
        self._count("put", bucket, key, written=len(data))
        return self.inner.put_if_version(bucket, key, data, version)

    def list(self, bucket, prefix="", **span):
        out = list(self.inner.list(bucket, prefix, **span))
        self._count("list", bucket, prefix, n=max(1, -(-len(out) // 1000)))
        return iter(out)

    def list_prefixes(self, bucket, prefix=""):
        out = self.inner.list_prefixes(bucket, prefix)
        self._count("list", bucket, prefix, n=max(1, -(-len(out) // 1000)))
        return out

    def delete(self, bucket, key):
        self._count("delete", bucket, key)
        return self.inner.delete(bucket, key)

    def bucket_exists(self, bucket):
        self._count("head", bucket, "")
        return self.inner.bucket_exists(bucket)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def finished(self, mode: str) -> int:
        """Requests for the mode's finished periods (its own table, or the per-period objects
        where a year has no table); the rest is the period in progress (as bench_dashboard)."""
        if mode == "minute":
            return sum(k.startswith("tables/raw/") for _, k in self.keys)
        tier = f"tables/summaries/tier={mode}/"
        return sum(k.startswith(tier) or (b == B.for_tier(mode) and k.startswith("aggregated/"))
                   for b, k in self.keys)


# =========================================================================== synthesis

def hour_results(hour: Period, hosts: list[str], rng: random.Random, slots: Iterable[int] = range(4)
                 ) -> list[tuple[str, SpeedTestResult]]:
    """``(key, result)`` of every host in ``hour``'s slots ``slots`` (0-3): varied, 1 % failed."""
    out = []
    for k, host in enumerate(hosts):
        base = 40.0 + (k * 37) % 460
        for s in slots:
            local = hour.start + timedelta(minutes=15 * s) + IN_SLOT
            failed = rng.random() < 0.01
            down = round(base * (0.55 + 0.45 * rng.random()), 2)
            record = result(host, local, down, round(down * rng.uniform(0.3, 0.6), 2),
                            round(rng.uniform(4.0, 40.0), 1), status="failed" if failed else "ok",
                            connection=("Ethernet", "Wi-Fi 5GHz", "Wi-Fi 2.4GHz")[k % 3])
            out.append((layout.raw_key(host, record.slot_start, IST), record))
    return out


def relabelled(parts: Iterable[Accumulator], host: str | None, daily: bool = False) -> Accumulator:
    """The merge of ``parts`` given to ``host`` (``None``: all hosts keep theirs); ``days`` as
    :func:`speedlab.aggregate.merge_summaries` counts them for a day."""
    acc = Accumulator.empty()
    for part in parts:
        acc.add(part)
    if host is not None:
        acc.hosts = {host}
        acc.records_by_host = Counter({host: acc.records}) if acc.records else Counter()
    if daily:
        acc.days = int(acc.days > 0 or acc.records > 0)
    return acc


class Writer:
    """Encodes summaries as the roller does and writes objects in parallel, tier by tier."""

    def __init__(self, store, config, stamp: datetime):
        self.store, self.config = store, config
        self.stamp = stamp.isoformat()
        self.pending: dict[str, list[tuple[str, str, bytes]]] = defaultdict(list)
        self.counts: Counter = Counter()
        self.bytes: Counter = Counter()

    def summary(self, acc: Accumulator, period: Period, host: str | None, sources: int) -> None:
        data = summary_from_accumulator(acc, period, host, plan_for=self.config.plan_for,
                                        fraction=self.config.below_expected_fraction,
                                        timezone=self.config.timezone, now=SYNTH_NOW)
        data = data.with_fields(source_objects=sources, source_max_modified=self.stamp, generated_at=self.stamp)
        self.add(period.tier, B.for_tier(period.tier), layout.summary_key(period, host), data.to_json().encode())

    def add(self, tier: str, bucket: str, key: str, body: bytes) -> None:
        self.pending[tier].append((bucket, key, body))
        self.counts[tier] += 1
        self.bytes[tier] += len(body)

    def flush(self, tier: str, mtime: float | None) -> None:
        """Write ``tier``'s objects (16 threads); on a local store set their mtime to ``mtime``."""
        items = self.pending.pop(tier, [])
        root = getattr(self.store, "root", None)

        def put(item):
            bucket, key, body = item
            self.store.put(bucket, key, body)
            if root is not None and mtime is not None:
                os.utime(root / bucket / key, (mtime, mtime))
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, items))


def synthesise(store, config, n_hosts: int, n_days: int) -> tuple[list[str], Counter, Counter]:
    """Write the fleet's original layout (see the module docstring); returns the hosts and the
    objects and bytes written per tier."""
    rng = random.Random(14)
    hosts = [f"host-{k:03d}" for k in range(n_hosts)]
    yesterday = period_of("daily", datetime.combine(TODAY - timedelta(days=1), datetime.min.time(), IST), IST)
    first = period_of("daily", datetime.combine(TODAY - timedelta(days=n_days), datetime.min.time(), IST), IST)
    local = hasattr(store, "root")
    wall = time.time()
    raw_mtime = wall - 8 * 3600   # then each tier an hour later: run-due's 15 min grace never applies
    stamp = datetime.fromtimestamp(raw_mtime, UTC)

    # real hours: yesterday and today up to SYNTH_NOW
    real_hours = periods_between("hourly", yesterday.start, SYNTH_NOW - timedelta(hours=1, minutes=10), IST)
    by_label = {h.label: hour_results(h, hosts, rng) for h in real_hours}
    writer = Writer(store, config, stamp)
    for results in by_label.values():
        for key, record in results:
            writer.add("raw", B.raw, key, record.to_json().encode())
    writer.flush("raw", raw_mtime if local else None)
    if not local:  # a store that keeps its own times: provenance newer than every raw object
        stamp = datetime.now(UTC)
        writer.stamp = stamp.isoformat()
    parts, _ = hourly_parts(by_label)
    pool: dict[int, list[Accumulator]] = {}   # hour of yesterday -> each host's accumulator
    hour_accs: dict[str, dict[int, Accumulator]] = defaultdict(dict)   # hour label -> host index -> acc
    for hour in real_hours:
        summaries = hour_summaries(hour, parts.get(hour.label, {}), plan_for=config.plan_for,
                                   fraction=config.below_expected_fraction, timezone=config.timezone)
        for host, summary in summaries.items():
            sources = 4 * (n_hosts if host is None else 1)
            writer.add("hourly", B.hourly, layout.summary_key(hour, host), summary.with_fields(
                source_objects=sources, source_max_modified=writer.stamp,
                generated_at=writer.stamp).to_json().encode())
        if hour.start.date() == yesterday.start.date():
            accs = {h: Accumulator.from_summary(s.to_dict()) for h, s in summaries.items() if h is not None}
            pool[hour.start.hour] = [accs[h] for h in hosts]

    def due(period: Period) -> bool:
        return due_at(period) <= SYNTH_NOW

    month_start = period_of("monthly", yesterday.start, IST).start
    weekly: dict[tuple[str, str | None], Accumulator] = {}
    monthly: dict[tuple[str, str | None], Accumulator] = {}
    periods: dict[str, Period] = {}
    day = first
    while day.start < yesterday.end:
        e = (yesterday.start.date() - day.start.date()).days
        day_accs = []
        for k, host in enumerate(hosts):
            srcs = [pool[h][(k + e * (h + 1)) % n_hosts] for h in range(24)]
            if day.start >= month_start and e > 0:   # the current month keeps its hourly summaries
                for h, hour in enumerate(periods_between("hourly", day.start, day.end - timedelta(hours=1), IST)):
                    hour_accs[hour.label][k] = relabelled([srcs[h]], host)
            day_accs.append(relabelled(srcs, host, daily=True))
        everyone = relabelled(day_accs, None, daily=True)
        if due(day):
            for host, acc in zip(hosts, day_accs, strict=True):
                writer.summary(acc, day, host, 24)
            writer.summary(everyone, day, None, 24)
        for tier, into in (("weekly", weekly), ("monthly", monthly)):
            period = period_of(tier, day.start, IST)
            periods[period.label] = period
            for host, acc in [*zip(hosts, day_accs, strict=True), (None, everyone)]:
                into.setdefault((period.label, host), Accumulator.empty()).add(acc)
        day = period_of("daily", day.end, IST)
    for label, accs in sorted(hour_accs.items()):
        hour = period_of("hourly", datetime.strptime(label, "%Y%m%d%H").replace(tzinfo=IST), IST)
        for k, host in enumerate(hosts):
            writer.summary(accs[k], hour, host, 4)
        everyone = relabelled([accs[k] for k in range(n_hosts)], None)
        everyone.days = int(everyone.records > 0)
        writer.summary(everyone, hour, None, 4 * n_hosts)
    yearly: dict[tuple[str, str | None], Accumulator] = {}
    for tier, accs in (("weekly", weekly), ("monthly", monthly)):
        for (label, host), acc in accs.items():
            period = periods[label]
            if due(period):
                n_days = sum(1 for d in periods_between("daily", period.start, period.end - timedelta(hours=1), IST)
                             if first.start <= d.start)
                writer.summary(acc, period, host, n_days)
                if tier == "monthly":
                    year = period_of("yearly", period.start, IST)
                    periods[year.label] = year
                    yearly.setdefault((year.label, host), Accumulator.empty()).add(acc)
    for (label, host), acc in yearly.items():
        if due(periods[label]):
            months = sum(1 for (m, h) in monthly if h == host and periods[m].start.year == periods[label].start.year)
            writer.summary(acc, periods[label], host, months)
    for n, tier in enumerate(TIER_ORDER[1:], 1):
        writer.flush(tier, raw_mtime + 3600 * n if local else None)
    return hosts, writer.counts, writer.bytes


# =========================================================================== measurements

def table_inventory(store) -> list[tuple[str, int, int]]:
    """Every table object: (key, rows, size [bytes])."""
    bucket = layout.tables_bucket(B)
    out = []
    for info in store.list(bucket, "tables/"):
        if info.key.endswith(".parquet"):
            rows = pl.read_parquet(io.BytesIO(store.get(bucket, info.key)), columns=["source_key"]).height
            out.append((info.key, rows, info.size))
    return out


def sizes(store, keys: Iterable[str]) -> dict[str, int]:
    bucket = layout.tables_bucket(B)
    return {key: next((i.size for i in store.list(bucket, key) if i.key == key), 0) for key in keys}


def hourly_run(store, config, hosts: list[str], hour_of_day: int, rng: random.Random) -> None:
    """4 new results per host in ``hour_of_day``, then ``run_due`` at :10 of the next hour."""
    hour = period_of("hourly", datetime.combine(TODAY, datetime.min.time(), IST) + timedelta(hours=hour_of_day), IST)
    items = hour_results(hour, hosts, rng)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kr: store.put(B.raw, kr[0], kr[1].to_json().encode()), items))
    counting = Counting(store)
    started = time.perf_counter()
    report = run_due(config, now=hour.end + timedelta(minutes=10), store=counting)
    seconds = time.perf_counter() - started
    t = report.tables
    t_requests = sum(t.requests.values())
    own_requests = counting.total - t_requests
    own_read, own_written = counting.bytes_read - t.bytes_read, counting.bytes_written - t.bytes_written
    plan = Counter(item["tier"] for item in report.plan)
    print(f"\nrun-due at {hour.end + timedelta(minutes=10):%H:%M} ({len(items)} new results; rolled up "
          f"{dict(plan)}): {seconds:.2f} s, {counting.total} requests, {counting.bytes_read:,} bytes read, "
          f"{counting.bytes_written:,} written" + (f"; TABLE ERRORS {report.tables_errors}"
                                                   if report.tables_errors else ""))
    print(f"  the rollup itself (baseline): {seconds - t.seconds:6.2f} s {own_requests:>6} requests "
          f"{own_read:>12,} B read {own_written:>11,} B written")
    print(f"  keeping the tables current:   {t.seconds:6.2f} s {t_requests:>6} requests "
          f"{t.bytes_read:>12,} B read {t.bytes_written:>11,} B written  {dict(sorted(t.requests.items()))}")
    print(f"  tables / rollup: x{t.seconds / max(1e-9, seconds - t.seconds):.2f} time, "
          f"x{t_requests / max(1, own_requests):.2f} requests, x{t.bytes_read / max(1, own_read):.2f} bytes read, "
          f"x{t.bytes_written / max(1, own_written):.2f} bytes written; {t.sources_read} sources read, "
          f"{t.rows} rows verified")
    for key, size in sizes(store, t.partitions_written).items():
        print(f"    wrote {key}: {size:,} B")
    for key in t.partitions_current:
        print(f"    current {key}")


def baseline(store, config, mode: str, days: int, host: str, hosts: list[str]) -> int:
    """bench_dashboard's one-object-per-period reads (minute: a LIST per host and day, then each
    raw object one after another); returns the objects found."""
    zone, found = config.timezone, 0
    if mode == "minute":
        slots = rowbuild.slot_window(days, VIEW_NOW, zone)
        for h in (hosts if host == "all" else [host]):
            for day in periods_between("daily", slots[0], slots[-1], zone):
                objects, _ = list_raw(store, config.buckets, h, day)
                for obj in objects:
                    store.get(config.buckets.raw, obj.info.key)
                    found += 1
        return found
    for period in rowbuild.summary_periods(mode, days, VIEW_NOW, zone):
        try:
            store.get(config.buckets.for_tier(mode), layout.summary_key(period, None if host == "all" else host))
            found += 1
        except ObjectNotFound:
            pass
    return found


def measure_rows(store, config, hosts: list[str]) -> list[tuple]:
    out = []
    for host in ("all", hosts[len(hosts) // 2]):
        for mode, days in CASES:
            counting = Counting(store)
            started = time.perf_counter()
            baseline(counting, config, mode, days, host, hosts)
            base_s, base_n = time.perf_counter() - started, counting.total
            cache.clear_caches()
            counting = Counting(store)
            started = time.perf_counter()
            got = query.rows(mode, days, host, store=counting, config=config, now=VIEW_NOW)
            cold_s = time.perf_counter() - started
            out.append((host, mode, days, len(got), got[-1]["status"], base_n, counting.total,
                        counting.finished(mode), counting.bytes_read, base_s, cold_s))
    return out


def run(store, config, n_hosts: int, n_days: int) -> None:
    started = time.perf_counter()
    hosts, counts, nbytes = synthesise(store, config, n_hosts, n_days)
    print(f"synthesised {sum(counts.values()):,} objects ({sum(nbytes.values()) / 1e6:.0f} MB) in "
          f"{time.perf_counter() - started:.1f} s: " + ", ".join(f"{t} {counts[t]:,}" for t in TIER_ORDER))

    counting = Counting(store)
    started = time.perf_counter()
    report = tables_io.rebuild(counting, B)
    seconds = time.perf_counter() - started
    print(f"\ntables rebuild: {seconds:.1f} s, {counting.total:,} requests {dict(sorted(counting.calls.items()))}, "
          f"{counting.bytes_read / 1e6:.1f} MB read, {counting.bytes_written / 1e6:.2f} MB written, "
          f"{len(report.partitions_written)} partitions, {report.rows:,} rows; "
          f"{sum(counts.values()) / seconds:,.0f} source objects/s")
    print(f"  {'table object':<58} {'rows':>7} {'size [B]':>11} {'B/row':>6}")
    for key, rows, size in table_inventory(store):
        print(f"  {key:<58} {rows:>7,} {size:>11,} {size / max(1, rows):>6.0f}")

    rng = random.Random(15)
    for hour_of_day in RUN_HOURS:
        hourly_run(store, config, hosts, hour_of_day, rng)

    tail = period_of("hourly", VIEW_NOW, IST)
    items = hour_results(tail, hosts, rng, range(TAIL_SLOTS))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kr: store.put(B.raw, kr[0], kr[1].to_json().encode()), items))
    results = measure_rows(store, config, hosts)
    print(f"\nrows() cold at {VIEW_NOW:%Y-%m-%d %H:%M} (live tail: {len(items)} results) against one object per period")
    print(f"{'host':8} {'mode':8} {'N':>3} {'rows':>4} {'last':>8} | {'requests: base':>14} {'cold':>5} {'fin':>4} "
          f"{'live':>4} {'x fewer':>7} | {'cold MB read':>12} | {'time [ms]: base':>15} {'cold':>7} {'x':>6}")
    for host, mode, days, n_rows, last, base_n, cold_n, fin_n, cold_b, base_s, cold_s in results:
        print(f"{host:8} {mode:8} {days:>3} {n_rows:>4} {last:>8} | {base_n:>14} {cold_n:>5} {fin_n:>4} "
              f"{cold_n - fin_n:>4} {base_n / max(1, cold_n):>6.1f}x | {cold_b / 1e6:>12.2f} | "
              f"{base_s * 1e3:>15.0f} {cold_s * 1e3:>7.0f} {base_s / cold_s:>5.1f}x")
    for host in dict.fromkeys(r[0] for r in results):
        mine = [r for r in results if r[0] == host]
        base, cold, fin = sum(r[5] for r in mine), sum(r[6] for r in mine), sum(r[7] for r in mine)
        print(f"{host:8} all modes: baseline {base} requests, cold {cold} ({base / cold:.1f}x fewer), finished "
              f"periods {fin}; baseline {sum(r[9] for r in mine):.2f} s, cold {sum(r[10] for r in mine):.2f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--days", type=int, default=365, help="days of summaries up to yesterday (>= 2)")
    parser.add_argument("--store", choices=("local", "moto"), default="local")
    args = parser.parse_args(argv)
    if args.days < 2 or args.hosts < 1:
        parser.error("--days must be at least 2 and --hosts at least 1")
    print(f"fleet: {args.hosts} hosts x {args.days} days on {args.store}; today {TODAY}, store as at "
          f"{SYNTH_NOW:%H:%M}, rollups of hours {RUN_HOURS}, views at {VIEW_NOW:%H:%M}", flush=True)
    with tempfile.TemporaryDirectory(prefix="speedlab-fleet-") as tmp:
        if args.store == "local":
            store = LocalStore(Path(tmp) / "store")
            store.root.mkdir()
            config = load_config(env={}, store=str(store.root), state_dir=str(Path(tmp) / "state"))
            run(store, config, args.hosts, args.days)
            return
        moto = MotoServer().start()
        try:
            store = S3Store(endpoint_url=moto.endpoint_url, region="us-east-1", access_key_id="testing",
                            secret_access_key="testing", max_pool_connections=32)
            for bucket in set(B.as_dict().values()):
                store.create_bucket(bucket)
            config = load_config(env={}, store="s3://", state_dir=str(Path(tmp) / "state"),
                                 s3={"endpoint_url": moto.endpoint_url, "region": "us-east-1",
                                     "access_key_id": "testing", "secret_access_key": "testing"})
            run(store, config, args.hosts, args.days)
        finally:
            moto.stop()


if __name__ == "__main__":
    main()
