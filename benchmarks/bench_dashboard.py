"""Dashboard rows: store requests and time, cold and warm, against the seed's sequential reads.

For each mode, on a local store and on a moto_server this script starts on 127.0.0.1, it
measures:

* baseline: the original dashboard's "before" picture, one summary object per period read
  sequentially (for the 15-minute mode: list each host's day, then GET every raw object one
  after another);
* cold: ``speedlab.query.rows`` with an empty cache (the median of ``--repeat`` reads),
  reading the Parquet tables (built by ``tables_io.rebuild``); its requests are split into
  ``fin`` (the mode's own table: the finished periods) and ``live`` (the period in progress:
  finer tables, the raw month table, the tail's listings and reads);
* warm: the same call again (the 120 s cache answers).

A third store, ``+20ms``, is the local one with 20 ms added to every request: a simulated
far-away S3, where round trips (not the server) dominate, as in the seed's "30 s -> 2 s".

Run: ``python -m benchmarks.bench_dashboard`` (about two minutes; prints a table and ratios);
``--quick`` leaves out the moto store (20 s).
Targets (issue 14): every finished-period view <= 2 requests within a year (+1 per further year);
all modes together >= 20x fewer requests than the baseline; cold at +20 ms under 100 ms per mode.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from speedlab import cache, layout, query, rowbuild, tables_io
from speedlab.config import load_config
from speedlab.errors import ObjectNotFound
from speedlab.periods import periods_between
from speedlab.reader import list_hosts, list_raw
from speedlab.store import LocalStore
from speedlab.store_s3 import S3Store
from tests.helpers.servers import MotoServer, isolate_environment
from tests.helpers.synthetic import B, build_store, ist

NOW = ist(2026, 2, 10, 10, 20)
FIRST = ist(2025, 10, 12)                 # 4 months of three hosts
#: cold reads per mode and store, the median reported (``--repeat``)
REPEAT = 5
CASES = [("minute", 1), ("hourly", 7), ("daily", 90), ("weekly", 12), ("monthly", 4), ("yearly", 5)]


class Latency:
    """A local store that waits ``delay_s`` per request, like a far-away S3 (simulated)."""

    def __init__(self, inner, delay_s: float = 0.02):
        self.inner, self.delay_s = inner, delay_s
        self.url = inner.url + f"#latency={delay_s}"

    def __getattr__(self, name):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def get(self, bucket, key):
        time.sleep(self.delay_s)
        return self.inner.get(bucket, key)

    def get_versioned(self, bucket, key):
        time.sleep(self.delay_s)
        return self.inner.get_versioned(bucket, key)

    def list(self, bucket, prefix="", **span):
        time.sleep(self.delay_s)
        return self.inner.list(bucket, prefix, **span)

    def list_prefixes(self, bucket, prefix=""):
        time.sleep(self.delay_s)
        return self.inner.list_prefixes(bucket, prefix)


class Counting:
    """A store wrapper that counts requests (thread-safe)."""

    def __init__(self, inner):
        self.inner, self.url = inner, inner.url
        self.calls: Counter = Counter()
        self.keys: list[tuple[str, str]] = []   # (bucket, key or prefix)
        self._lock = threading.Lock()

    def __getattr__(self, name):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _count(self, name, bucket, key=""):
        with self._lock:
            self.calls[name] += 1
            self.keys.append((bucket, key))

    def get(self, bucket, key):
        self._count("get", bucket, key)
        return self.inner.get(bucket, key)

    def get_versioned(self, bucket, key):
        self._count("get", bucket, key)
        return self.inner.get_versioned(bucket, key)

    def list(self, bucket, prefix="", **span):
        self._count("list", bucket, prefix)
        return self.inner.list(bucket, prefix, **span)

    def list_prefixes(self, bucket, prefix=""):
        self._count("list", bucket, prefix)
        return self.inner.list_prefixes(bucket, prefix)

    def finished(self, mode: str) -> int:
        """Requests for the mode's finished periods: its own table, or where a partition has no
        table its summary objects (and the listing of their year folders); the rest is the period
        in progress (finer tables, the raw month table, the hosts and the live tail)."""
        if mode == "minute":
            return sum(k.startswith("tables/raw/") for _, k in self.keys)
        tier = f"tables/summaries/tier={mode}/"
        return sum(k.startswith(tier) or (b == B.for_tier(mode) and k.startswith("aggregated/"))
                   for b, k in self.keys)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def baseline(store, config, mode: str, days: int) -> int:
    """The seed's sequential reads; returns how many objects were found."""
    zone = config.timezone
    found = 0
    if mode == "minute":
        slots = rowbuild.slot_window(days, NOW, zone)
        for host in list_hosts(store, config.buckets):
            for day in periods_between("daily", slots[0], slots[-1], zone):
                objects, _ = list_raw(store, config.buckets, host, day)
                for obj in objects:
                    store.get(config.buckets.raw, obj.info.key)
                    found += 1
        return found
    for period in rowbuild.summary_periods(mode, days, NOW, zone):
        try:
            store.get(config.buckets.for_tier(mode), layout.summary_key(period))
            found += 1
        except ObjectNotFound:
            pass
    return found


def measure(name: str, store, config) -> list[tuple]:
    out = []
    for mode, days in CASES:
        counting = Counting(store)
        started = time.perf_counter()
        baseline(counting, config, mode, days)
        base_s, base_n = time.perf_counter() - started, counting.total
        colds = []
        for _ in range(REPEAT):  # cold time: the median of REPEAT cold reads (the counts are exact)
            cache.clear_caches()
            counting = Counting(store)
            started = time.perf_counter()
            got = query.rows(mode, days, store=counting, config=config, now=NOW)
            colds.append(time.perf_counter() - started)
        cold_s, cold_n, fin_n = sorted(colds)[len(colds) // 2], counting.total, counting.finished(mode)
        started = time.perf_counter()
        query.rows(mode, days, store=counting, config=config, now=NOW)
        warm_s, warm_n = time.perf_counter() - started, counting.total - cold_n
        if mode != "minute":   # the period in progress is live (the slot under way has no result yet)
            assert got[-1]["status"] == "partial", (mode, got[-1]["status"])
        out.append((name, mode, days, len(got), base_n, cold_n, fin_n, warm_n, base_s, cold_s, warm_s))
    return out


def measure_moto(tmp: Path) -> list[tuple]:
    """The same measurements on a moto_server started on 127.0.0.1 for the run."""
    moto = MotoServer().start()
    try:
        s3 = S3Store(endpoint_url=moto.endpoint_url, region="us-east-1", access_key_id="testing",
                     secret_access_key="testing")
        for bucket in set(B.as_dict().values()):
            s3.create_bucket(bucket)
        started = time.perf_counter()
        build_store(s3, FIRST, NOW, raw_days=1, hourly_days=8)
        tables_io.rebuild(s3, B)
        print(f"moto store and tables built in {time.perf_counter() - started:.1f} s", flush=True)
        config = load_config(env={}, store="s3://", state_dir=str(tmp / "state"),
                             s3={"endpoint_url": moto.endpoint_url, "region": "us-east-1",
                                 "access_key_id": "testing", "secret_access_key": "testing"})
        return measure("moto", s3, config)
    finally:
        moto.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="local and +20 ms only (no moto server)")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="cold reads per mode, median reported")
    args = parser.parse_args(argv)
    globals()["REPEAT"] = max(1, args.repeat)
    isolate_environment()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        local = LocalStore(Path(tmp) / "store")
        local.root.mkdir()
        started = time.perf_counter()
        build_store(local, FIRST, NOW, raw_days=1, hourly_days=8)
        tables_io.rebuild(local, B)
        print(f"local store and tables built in {time.perf_counter() - started:.1f} s", flush=True)
        config = load_config(env={}, store=str(local.root), state_dir=str(Path(tmp) / "state"))
        results += measure("local", local, config)
        results += measure("+20ms", Latency(local, 0.02), config)

        if not args.quick:
            results += measure_moto(Path(tmp))

    print()
    print(f"{'store':6} {'mode':8} {'N':>3} {'rows':>5} | {'requests: base':>14} {'cold':>5} {'fin':>4} "
          f"{'live':>4} {'warm':>5} | {'time [ms]: base':>15} {'cold':>8} {'warm':>7} | {'base/cold':>9} "
          f"{'base/warm':>9} | {'req base/cold':>13}")
    for name, mode, days, n_rows, base_n, cold_n, fin_n, warm_n, base_s, cold_s, warm_s in results:
        print(f"{name:6} {mode:8} {days:>3} {n_rows:>5} | {base_n:>14} {cold_n:>5} {fin_n:>4} "
              f"{cold_n - fin_n:>4} {warm_n:>5} | {base_s * 1e3:>15.1f} {cold_s * 1e3:>8.1f} {warm_s * 1e3:>7.2f} | "
              f"{base_s / cold_s:>8.1f}x {base_s / warm_s:>8.0f}x | {base_n / max(1, cold_n):>12.1f}x")
    print()
    for store_name in dict.fromkeys(r[0] for r in results):
        mine = [r for r in results if r[0] == store_name]
        base, cold, fin = sum(r[4] for r in mine), sum(r[5] for r in mine), sum(r[6] for r in mine)
        print(f"{store_name:6} all modes: baseline {base} requests, cold {cold} ({base / cold:.1f}x fewer), "
              f"finished periods {fin} ({base / fin:.1f}x fewer); slowest cold {max(r[9] for r in mine) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
