"""How much the newest-first folder walk of ``speedlab latest`` saves over listing everything.

Builds one host's raw results at 15-minute cadence (a year on the local store, 60 days on a
moto_server on 127.0.0.1), then times, in the same run:

* baseline: list the whole ``host=…/`` prefix and take the newest key (the seed's way);
* walk: ``speedlab.latest.latest(config, "latest")`` (lists year, month, day folders newest
  first, then one day), which also GETs and validates the newest object.

Prints seconds, store requests and the ratio baseline / walk. Run::

    python -m benchmarks.bench_latest [--days-local 365] [--days-s3 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

from speedlab import layout
from speedlab.config import load_config
from speedlab.latest import latest
from speedlab.layout import Buckets
from speedlab.store import LocalStore
from speedlab.store_s3 import S3Store
from tests.helpers.servers import MotoServer, isolate_environment

HOST = "home-primary"
B = Buckets()


class Counting:
    """Counts the store calls made through it (an S3 listing call may fetch several 1000-key pages)."""

    def __init__(self, inner):
        self.inner, self.requests, self.url = inner, 0, inner.url

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name in ("list", "list_prefixes", "get"):
            def counted(*args, **kwargs):
                self.requests += 1
                return attr(*args, **kwargs)
            return counted
        return attr


def _records(days: int):
    from tests.helpers.data import result
    start = datetime(2025, 1, 1)
    for i in range(days * 96):
        local = start + timedelta(minutes=15 * i, seconds=70)
        record = result(HOST, local.isoformat(sep=" "))
        yield layout.raw_key(HOST, record.slot_start), record.to_json().encode()


def _fill_local(root: Path, days: int) -> None:
    for key, data in _records(days):  # plain writes: the bench measures reading, not fsync
        path = root / B.raw / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _fill_s3(store: S3Store, days: int) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda item: store.put(B.raw, *item), _records(days)))


def _measure(name: str, store, config) -> None:
    counting = Counting(store)
    t0 = time.perf_counter()
    newest = max(info.key for info in counting.list(B.raw, layout.raw_host_prefix(HOST)))
    base_s, base_requests = time.perf_counter() - t0, counting.requests
    counting = Counting(store)
    t0 = time.perf_counter()
    (entry,) = latest(config, "latest", store=counting)
    walk_s, walk_requests = time.perf_counter() - t0, counting.requests
    assert entry.key == newest and entry.error is None, (entry, newest)
    print(f"{name}: baseline (list all) {base_s:.3f} s, {base_requests} calls; "
          f"walk {walk_s:.3f} s, {walk_requests} calls; baseline/walk = {base_s / walk_s:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days-local", type=int, default=365)
    parser.add_argument("--days-s3", type=int, default=60)
    args = parser.parse_args()
    isolate_environment()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        _fill_local(root, args.days_local)
        store = LocalStore(root)
        config = load_config(env={}, store=str(root), state_dir=str(Path(tmp) / "state"))
        print(f"local store, {args.days_local * 96} objects of one host")
        _measure("local", store, config)
    server = MotoServer().start()
    try:
        store = S3Store(endpoint_url=server.endpoint_url, region="us-east-1",
                        access_key_id="testing", secret_access_key="testing")
        store.create_bucket(B.raw)
        _fill_s3(store, args.days_s3)
        config = load_config(env={}, store="s3://", s3={
            "endpoint_url": server.endpoint_url, "region": "us-east-1",
            "access_key_id": "testing", "secret_access_key": "testing"}, state_dir=tempfile.gettempdir())
        print(f"moto_server S3, {args.days_s3 * 96} objects of one host")
        _measure("s3", store, config)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
