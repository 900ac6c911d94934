"""Dashboard rows: store requests and time, cold and warm, against the seed's sequential reads.

For each mode, on a local store and on a moto_server this script starts on 127.0.0.1, it
measures:

* baseline: the original dashboard's "before" picture, one summary object per period read
  sequentially (for the 15-minute mode: list each host's day, then GET every raw object one
  after another);
* cold: ``speedlab.query.rows`` with an empty cache (parallel reads on a bounded pool);
* warm: the same call again (the 120 s cache answers).

A third store, ``+20ms``, is the local one with 20 ms added to every request: a simulated
far-away S3, where round trips (not the server) dominate, as in the seed's "30 s -> 2 s".

Run: ``python -m benchmarks.bench_dashboard`` (about a minute; prints a table and ratios).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from speedlab import cache, layout, query, rowbuild
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
CASES = [("minute", 1), ("hourly", 7), ("daily", 90), ("weekly", 12), ("monthly", 4), ("yearly", 5)]


class Latency:
    """A local store that waits ``delay_s`` per request, like a far-away S3 (simulated)."""

    def __init__(self, inner, delay_s: float = 0.02):
        self.inner, self.delay_s = inner, delay_s
        self.url = inner.url + f"#latency={delay_s}"

    def get(self, bucket, key):
        time.sleep(self.delay_s)
        return self.inner.get(bucket, key)

    def list(self, bucket, prefix=""):
        time.sleep(self.delay_s)
        return self.inner.list(bucket, prefix)

    def list_prefixes(self, bucket, prefix=""):
        time.sleep(self.delay_s)
        return self.inner.list_prefixes(bucket, prefix)


class Counting:
    """A store wrapper that counts requests (thread-safe)."""

    def __init__(self, inner):
        self.inner, self.url = inner, inner.url
        self.calls: Counter = Counter()
        self._lock = threading.Lock()

    def _count(self, name):
        with self._lock:
            self.calls[name] += 1

    def get(self, bucket, key):
        self._count("get")
        return self.inner.get(bucket, key)

    def list(self, bucket, prefix=""):
        self._count("list")
        return self.inner.list(bucket, prefix)

    def list_prefixes(self, bucket, prefix=""):
        self._count("list")
        return self.inner.list_prefixes(bucket, prefix)

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
        cache.clear_caches()
        counting = Counting(store)
        started = time.perf_counter()
        got = query.rows(mode, days, store=counting, config=config, now=NOW)
        cold_s, cold_n = time.perf_counter() - started, counting.total
        started = time.perf_counter()
        query.rows(mode, days, store=counting, config=config, now=NOW)
        warm_s, warm_n = time.perf_counter() - started, counting.total - cold_n
        out.append((name, mode, days, len(got), base_n, cold_n, warm_n, base_s, cold_s, warm_s))
    return out


def main() -> None:
    isolate_environment()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        local = LocalStore(Path(tmp) / "store")
        local.root.mkdir()
        started = time.perf_counter()
        build_store(local, FIRST, NOW, raw_days=1, hourly_days=8)
        print(f"local store built in {time.perf_counter() - started:.1f} s", flush=True)
        config = load_config(env={}, store=str(local.root), state_dir=str(Path(tmp) / "state"))
        results += measure("local", local, config)
        results += measure("+20ms", Latency(local, 0.02), config)

        moto = MotoServer().start()
        try:
            s3 = S3Store(endpoint_url=moto.endpoint_url, region="us-east-1", access_key_id="testing",
                         secret_access_key="testing")
            for bucket in set(B.as_dict().values()):
                s3.create_bucket(bucket)
            started = time.perf_counter()
            build_store(s3, FIRST, NOW, raw_days=1, hourly_days=8)
            print(f"moto store built in {time.perf_counter() - started:.1f} s", flush=True)
            config = load_config(env={}, store="s3://", state_dir=str(Path(tmp) / "state"),
                                 s3={"endpoint_url": moto.endpoint_url, "region": "us-east-1",
                                     "access_key_id": "testing", "secret_access_key": "testing"})
            results += measure("moto", s3, config)
        finally:
            moto.stop()

    print()
    print(f"{'store':6} {'mode':8} {'N':>3} {'rows':>5} | {'requests: base':>14} {'cold':>5} {'warm':>5} | "
          f"{'time [ms]: base':>15} {'cold':>8} {'warm':>7} | {'base/cold':>9} {'base/warm':>9}")
    for name, mode, days, n_rows, base_n, cold_n, warm_n, base_s, cold_s, warm_s in results:
        print(f"{name:6} {mode:8} {days:>3} {n_rows:>5} | {base_n:>14} {cold_n:>5} {warm_n:>5} | "
              f"{base_s * 1e3:>15.1f} {cold_s * 1e3:>8.1f} {warm_s * 1e3:>7.2f} | "
              f"{base_s / cold_s:>8.1f}x {base_s / warm_s:>8.0f}x")


if __name__ == "__main__":
    main()
