"""Health check and HTTP API: what one run / one request costs, against baselines.

Health (3 hosts, 7 days of raw results every 15 minutes, all summaries), on a local store and
on a moto_server this script starts on 127.0.0.1:

* baseline: find each host's newest result by listing everything under ``host=H/`` (what a
  naive "when did it last report?" does; grows with history);
* health: one full ``speedlab.health.run_health`` (all five checks, debouncing, state file),
  which walks the newest folders first. Requests are counted per kind.

API: ``GET /api/dashboard?mode=daily&days=7`` over HTTP against calling
``speedlab.query.rows`` directly (warm cache: the difference is the HTTP + thread hop), and
``GET /api/latest`` against ``speedlab.latest.latest``.

Run: ``python -m benchmarks.bench_health_api`` (about half a minute; prints ratios).
"""

from __future__ import annotations

import functools
import statistics
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

from speedlab import query
from speedlab.api import api_context
from speedlab.config import load_config
from speedlab.counting import CountingStore
from speedlab.health import run_health
from speedlab.latest import latest
from speedlab.store import LocalStore
from speedlab.store_s3 import S3Store
from tests.helpers.servers import ApiServer, MotoServer, isolate_environment
from tests.helpers.synthetic import HOSTS, B, build_store, ist

isolate_environment()
NOW = ist(2026, 1, 5, 10, 20)
TOKEN = "benchmark-token-0123456789"  # [api] tokens are at least 16 characters


def timed(fn, repeat: int = 5) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def bench_health(name: str, store, tmp: Path) -> None:
    build_store(store, ist(2025, 12, 26), NOW, raw_days=7, hourly_days=3)
    config = load_config(env={}, store=store.url if isinstance(store, LocalStore) else "s3://",
                         s3={} if isinstance(store, LocalStore) else {
                             "endpoint_url": store.endpoint_url, "region": "us-east-1",
                             "access_key_id": "testing", "secret_access_key": "testing"},
                         state_dir=str(tmp / f"state-{name}"), sections={"alerts": {"log": False}})
    counting = CountingStore(store)

    def baseline():
        for host in HOSTS:
            max(store.list(B.raw, f"host={host}/"), key=lambda info: info.key)

    def health():
        run_health(config, now=NOW + timedelta(minutes=5), store=counting, channels=[])

    base_s, health_s = timed(baseline, 3), timed(health, 3)
    counting.counts.clear()
    health()
    print(f"health  {name:5s}  baseline (list all of each host) {base_s * 1000:8.1f} ms | "
          f"health run {health_s * 1000:8.1f} ms | ratio {health_s / base_s:5.2f} | requests per run "
          f"{dict(counting.counts)}")


def bench_api(tmp: Path) -> None:
    store = LocalStore(tmp / "api-store")
    store.root.mkdir()
    build_store(store, ist(2025, 12, 26), NOW, raw_days=1, hourly_days=1)
    config = load_config(env={}, store=str(store.root), state_dir=str(tmp / "api-state"),
                         sections={"api": {"token": TOKEN}})
    with ApiServer(api_context(config, env={}, now=NOW)) as server:
        def get(path):
            request = urllib.request.Request(server.url + path, headers={"Authorization": f"token {TOKEN}"})
            with urllib.request.urlopen(request) as response:
                response.read()
        for label, direct, path in [
                ("dashboard daily 7 (warm cache)",
                 lambda: query.rows("daily", 7, store=store, config=config, now=NOW),
                 "/api/dashboard?mode=daily&days=7"),
                ("latest (each host's newest)", lambda: latest(config, store=store), "/api/latest")]:
            direct()
            get(path)
            direct_s, http_s = timed(direct, 20), timed(functools.partial(get, path), 20)
            print(f"api     {label:32s} direct {direct_s * 1000:7.2f} ms | over HTTP {http_s * 1000:7.2f} ms | "
                  f"ratio {http_s / direct_s:5.2f} (+{(http_s - direct_s) * 1000:.2f} ms)")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        local = LocalStore(tmp / "store")
        local.root.mkdir()
        bench_health("local", local, tmp)
        moto = MotoServer().start()
        try:
            s3 = S3Store(endpoint_url=moto.endpoint_url, region="us-east-1",
                         access_key_id="testing", secret_access_key="testing")
            for bucket in set(B.as_dict().values()):
                s3.create_bucket(bucket)
            bench_health("s3", s3, tmp)
        finally:
            moto.stop()
        bench_api(tmp)


if __name__ == "__main__":
    main()
