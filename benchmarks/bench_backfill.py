"""Backfill throughput: one year of three hosts at 15-minute cadence (105,120 results).

Measures ``speedlab.rollup.backfill`` (hours read a day at a time with a bounded pool of
parallel GETs; every coarser tier merged from the tier below, children kept in memory) in
results per second and store requests, against two baselines measured in the same run:

* **naive**: every summary of every tier computed straight from the raw results
  (``reader.read_results`` per period, so each result is read once per tier);
* **sequential**: speedlab's backfill with one worker (``[aggregate] max_workers = 1``).

Then the columnar tables (docs/tables.md): the first backfill reads every object (the JSON
path) and leaves every raw month compacted. A second backfill of the same span lists each
month's raw objects and finds every period's summaries computed from exactly the inputs it has
now (speedlab.inputs: the listing's keys and versions, the window's and children's summaries
by SHA-256, per the summary tables), so it keeps them as stored and computes nothing. A third,
with ``recompute=True``, reads each month from its table (1 GET, plus a LIST per host to
prove the rows current), computes every summary again and writes none that its stored object
already holds (1 GET per summary table partition and a LIST per host say what each holds).
A fourth follows one raw result rewritten in mid-year: it rolls up that day, the next (the
anomaly window reaches into it) and the week, month and year above them. Each is timed
against the first in the same run (targets: JSON < 45 s, tables < 10 s for the year). Every
run writes summaries without a per-object fsync and syncs the store's file system once per
month, before its tables. Each backfill line also gives the process's CPU time (all
threads), which a machine shared with other jobs disturbs less than the wall time. Last,
what keeping the tables current costs one hourly run (a new result per host, that hour
rolled up: the hourly and raw month partitions of December updated).

Stores: the local folder store, and S3 on a ``moto_server`` this script starts on
127.0.0.1 (a free port). moto manages ~100-300 requests per second here, so the S3 runs
use a shorter span (``--s3-days``, default 14); ratios are per result.

    python -m benchmarks.bench_backfill                 # local year + 14 days on moto
    python -m benchmarks.bench_backfill --local-days 60 --s3-days 7 --naive-days 14 --s3-naive-days 0
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.helpers.servers import MotoServer, isolate_environment

isolate_environment()

from speedlab import layout  # noqa: E402
from speedlab.aggregate import hour_summaries, hourly_parts  # noqa: E402
from speedlab.config import load_config  # noqa: E402
from speedlab.counting import CountingStore  # noqa: E402
from speedlab.layout import Buckets  # noqa: E402
from speedlab.periods import TIERS, get_zone, period_of, periods_between  # noqa: E402
from speedlab.reader import read_results  # noqa: E402
from speedlab.records import SpeedTestResult  # noqa: E402
from speedlab.rollup import backfill, rollup  # noqa: E402
from speedlab.store import LocalStore  # noqa: E402
from speedlab.store_s3 import S3Store  # noqa: E402

IST = get_zone("Asia/Kolkata")
HOSTS = ("home-primary", "office-main", "backup-location")
START = datetime(2025, 1, 1, tzinfo=IST)
NOW = datetime(2026, 6, 1, tzinfo=IST)
B = Buckets()


def records(days: int):
    """(key, JSON bytes) for every host and slot of ``days`` days from 1 January 2025."""
    for host_index, host in enumerate(HOSTS):
        for slot in range(days * 96):
            local = START + timedelta(minutes=15 * slot + 2 + host_index)
            utc = local.astimezone(timezone.utc)
            down = 150.0 + 40.0 * ((slot * 7 + host_index * 13) % 11) / 11
            record = SpeedTestResult(
                host_id=host, engine="bench", status="ok" if slot % 97 else "failed",
                error=None if slot % 97 else {"kind": "timeout", "message": "no answer"},
                timestamp_utc=utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                timestamp_local=local.isoformat(),
                slot=(local - timedelta(minutes=2 + host_index)).isoformat(),
                download_mbps=down if slot % 97 else None,
                upload_mbps=down / 2 if slot % 97 else None, ping_ms=8.0 + slot % 5,
                connection_type="Ethernet")
            yield layout.raw_key(host, local, IST), record.to_json().encode()


def fill_local(root: Path, days: int) -> int:
    n = 0
    for key, body in records(days):
        path = root / B.raw / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        n += 1
    return n


def fill_s3(store: S3Store, days: int) -> int:
    items = list(records(days))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kb: store.put(B.raw, kb[0], kb[1]), items))
    return len(items)


def run_backfill(config, store, days: int, workers: int | None = None, recompute: bool = False) -> dict:
    """One backfill of ``days`` days from 1 January 2025: time, requests, and what keeping the
    tables current cost inside it (``tables``)."""
    if workers is not None:
        config = config.with_overrides(sections={"aggregate": {"max_workers": workers}})
    first = START.date().isoformat()
    last = (START + timedelta(days=days - 1)).date().isoformat()
    counting = CountingStore(store)
    started, cpu = time.perf_counter(), time.process_time()
    report = backfill(config, first, last, progress=False, now=NOW, store=counting, recompute=recompute)
    seconds = time.perf_counter() - started
    # results: those the span holds (a backfill keeping periods as stored reads none of them)
    return {"results": days * 96 * len(HOSTS), "read": report.results_read, "seconds": seconds,
            "cpu_seconds": time.process_time() - cpu,
            "requests": counting.requests,
            "by_kind": dict(counting.counts), "periods": report.periods, "tables": report.tables,
            "errors": report.tables_errors, "unchanged": report.inputs_unchanged}


def rewrite_one_result(store, days: int) -> str:
    """Rewrite one result in the middle of the span (its download speed halved); returns its key."""
    day = (START + timedelta(days=days // 2)).strftime("%Y%m%d")
    for key, body in records(days):
        data = json.loads(body)
        if f"day={day}/hour={day}10/" in key and data["download_mbps"] is not None:
            store.put(B.raw, key, json.dumps(dict(data, download_mbps=data["download_mbps"] / 2)).encode())
            return key
    raise AssertionError(f"no result on {day}")


def hourly_run(config, store, days: int) -> None:
    """One result per host in the last hour of the span, that hour rolled up: the table cost."""
    hour_start = START + timedelta(days=days) - timedelta(hours=1)
    for n, host in enumerate(HOSTS):
        local = hour_start + timedelta(minutes=9 + n)
        record = SpeedTestResult(host_id=host, engine="bench", status="ok", error=None,
                                 timestamp_local=local.isoformat(),
                                 timestamp_utc=local.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                 slot=(local - timedelta(minutes=9 + n)).isoformat(), download_mbps=120.0,
                                 upload_mbps=60.0, ping_ms=9.0, connection_type="Ethernet")
        store.put(B.raw, layout.raw_key(host, local, IST).replace("test.json", "late.json"),
                  record.to_json().encode())
    started = time.perf_counter()
    report = rollup(config, "hourly", period_of("hourly", hour_start, IST), now=NOW, store=store)
    seconds = time.perf_counter() - started
    t = report.tables
    print(f"  one hourly run ({len(HOSTS)} new results): {seconds:.2f} s in all, of which tables "
          f"{t.seconds:.2f} s, {sum(t.requests.values())} requests {dict(sorted(t.requests.items()))}, "
          f"{t.bytes_read:,} bytes read, {t.bytes_written:,} written; rollup itself "
          f"{sum(n for k, n in report.requests.items() if k not in ('list', 'list_prefixes'))} requests")


def run_naive(config, store, days: int) -> dict:
    """Every period of every tier inside the span, each straight from the raw results."""
    counting = CountingStore(store)
    end = START + timedelta(days=days)
    started = time.perf_counter()
    read = 0
    for tier in TIERS:
        for period in periods_between(tier, START, end - timedelta(microseconds=1), IST):
            if period.start < START or period.end > end:
                continue
            raw = read_results(counting, config.buckets, period, HOSTS)
            read += len(raw.results)
            parts, _ = hourly_parts({period.label: raw.results})
            for host, summary in hour_summaries(period, parts.get(period.label, {}),
                                                plan_for=config.plan_for).items():
                counting.put(config.buckets.for_tier(tier), layout.summary_key(period, host),
                             summary.to_json().encode())
    seconds = time.perf_counter() - started
    return {"results": days * 96 * len(HOSTS), "reads": read, "seconds": seconds,
            "requests": counting.requests, "by_kind": dict(counting.counts)}


def line(name: str, m: dict, base: dict | None = None) -> str:
    rate = m["results"] / m["seconds"]
    per = m["requests"] / m["results"]
    text = (f"  {name:<34} {m['results']:>7} results {m['seconds']:8.1f} s {rate:9.0f} results/s "
            f"{m['requests']:>8} requests ({per:.2f}/result)")
    if "cpu_seconds" in m:  # this process's CPU, all threads: less at the mercy of a shared machine
        text += f" CPU {m['cpu_seconds']:.1f} s"
    if base:
        text += (f"  x{rate / (base['results'] / base['seconds']):.1f} faster, "
                 f"x{(base['requests'] / base['results']) / per:.1f} fewer requests per result")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--local-days", type=int, default=365)
    parser.add_argument("--naive-days", type=int, default=31, help="span of the naive baseline (local)")
    parser.add_argument("--s3-days", type=int, default=14)
    parser.add_argument("--s3-naive-days", type=int, default=7, help="span of the naive baseline on moto (0: skip)")
    parser.add_argument("--skip-s3", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="speedlab-bench-") as tmp:
        root = Path(tmp) / "store"
        root.mkdir()
        t = time.perf_counter()
        n = fill_local(root, args.local_days)
        print(f"local store: {n} raw results written in {time.perf_counter() - t:.1f} s")
        store = LocalStore(root)
        config = load_config(env={}, store=str(root), state_dir=str(Path(tmp) / "state"))
        full = run_backfill(config, store, args.local_days)
        print(line(f"speedlab backfill from JSON, {args.local_days} days", full))
        print(f"    requests by kind: {full['by_kind']}; periods written: {full['periods']}")
        t = full["tables"]
        print(f"    of which keeping the tables current: {t.seconds:.1f} s, {sum(t.requests.values())} requests "
              f"{dict(sorted(t.requests.items()))}, {len(t.partitions_written)} partition writes, "
              f"{t.bytes_written:,} bytes; errors: {full['errors'] or 'none'}")
        again = run_backfill(config, store, args.local_days)
        print(line(f"speedlab backfill again, {args.local_days} d", again, full))
        print(f"    requests by kind: {again['by_kind']}; {again['unchanged']} of {again['periods']} periods "
              f"kept as stored (inputs unchanged); x{full['seconds'] / again['seconds']:.1f} the JSON path's speed")
        computed = run_backfill(config, store, args.local_days, recompute=True)
        print(line(f"speedlab backfill --recompute, {args.local_days} d", computed, full))
        print(f"    requests by kind: {computed['by_kind']}; tables {computed['tables'].seconds:.1f} s; "
              f"x{full['seconds'] / computed['seconds']:.1f} the JSON path's speed")
        changed = rewrite_one_result(store, args.local_days)
        one = run_backfill(config, store, args.local_days)
        print(line(f"speedlab backfill after one change, {args.local_days} d", one, full))
        print(f"    {changed}: {one['periods'] - one['unchanged']} of {one['periods']} periods rolled up; "
              f"requests by kind: {one['by_kind']}")
        hourly_run(config, store, args.local_days)
        if not args.naive_days:
            return
        # baselines on a fresh copy of the shorter span
        root2 = Path(tmp) / "store2"
        root2.mkdir()
        fill_local(root2, args.naive_days)
        store2 = LocalStore(root2)
        config2 = load_config(env={}, store=str(root2), state_dir=str(Path(tmp) / "state2"))
        naive = run_naive(config2, store2, args.naive_days)
        print(line(f"baseline: naive, {args.naive_days} days", naive))
        ours = run_backfill(config2, store2, args.naive_days)
        print(line(f"speedlab backfill, {args.naive_days} days", ours, naive))
        seq = run_backfill(config2, store2, args.naive_days, workers=1)
        print(line(f"baseline: 1 worker, {args.naive_days} days", seq))
        print(line(f"speedlab vs 1 worker, {args.naive_days} d", ours, seq))

    if args.skip_s3:
        return
    server = MotoServer().start()
    try:
        store = S3Store(endpoint_url=server.endpoint_url, region="us-east-1", access_key_id="testing",
                        secret_access_key="testing", max_pool_connections=32)
        for bucket in set(B.as_dict().values()):
            store.create_bucket(bucket)
        t = time.perf_counter()
        n = fill_s3(store, args.s3_days)
        print(f"moto S3: {n} raw results written in {time.perf_counter() - t:.1f} s "
              f"({n / (time.perf_counter() - t):.0f} PUT/s with 16 threads)")
        with tempfile.TemporaryDirectory(prefix="speedlab-bench-") as tmp:
            config = load_config(env={}, store="s3://", state_dir=tmp,
                                 s3={"endpoint_url": server.endpoint_url, "region": "us-east-1",
                                     "access_key_id": "testing", "secret_access_key": "testing"})
            seq = run_backfill(config, store, args.s3_days, workers=1)
            print(line(f"baseline: 1 worker, moto, {args.s3_days} days", seq))
            ours = run_backfill(config, store, args.s3_days)
            print(line(f"speedlab backfill, moto, {args.s3_days} d", ours, seq))
            print(f"    requests by kind: {ours['by_kind']}")
            if args.s3_naive_days:
                naive = run_naive(config, store, args.s3_naive_days)
                print(line(f"baseline: naive, moto, {args.s3_naive_days} days", naive))
                print(line("speedlab vs naive, moto", ours, naive))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
