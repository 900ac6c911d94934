"""How fast ``speedlab demo`` fills its store, and what each choice buys.

Every demo result goes through the collector's writer (``speedlab.collect.store_result``:
validation, the slot guard's listing, the conditional write). Measured in one run, on the
local folder store:

* **baseline**: one process, one writer thread, a durable store (two fsyncs per result) —
  what writing the demo naively through the collector's path costs;
* **threads**: the same, 8 writer threads (the fsyncs overlap; validation does not, it holds
  the GIL);
* **not durable**: 8 threads, ``LocalStore(durable=False)`` (atomic writes, no fsyncs: the demo
  can always be made again);
* **speedlab demo**: :func:`speedlab.demo.fill_store` — generation and writing in one process per
  CPU, per host and week, not durable.

Then the whole default history (90 days, three hosts, ~26k results) with ``fill_store``, and
the rollups through papermill (``roll_up``: one ``scheduled/run_due.ipynb`` run for the
history, one ``scheduled/rollup.ipynb`` run per tier for the periods in progress).

    python -m benchmarks.bench_demo                 # 3-day comparison, then 90 days
    python -m benchmarks.bench_demo --compare-days 2 --days 30
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from speedlab.config import load_config
from speedlab.demo import demo_config_text, fill_store, generate, prepare_folder, roll_up, write_records
from speedlab.store import LocalStore

END = datetime(2026, 3, 15, 4, 50, tzinfo=timezone.utc)   # 10:20 IST


def fresh(base: Path, name: str):
    root = prepare_folder(base / name)
    toml = root / "speedlab.toml"
    toml.write_text(demo_config_text(root), encoding="utf-8")
    return root, load_config(toml, env={})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare-days", type=int, default=3, help="history for the comparison (default 3)")
    parser.add_argument("--days", type=int, default=90, help="the full demo's history (default 90)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    start = END - timedelta(days=args.compare_days)

    clock = time.perf_counter()
    records = generate(1, start, END)
    generate_s = time.perf_counter() - clock
    print(f"comparison: {len(records)} results ({args.compare_days} days x 3 hosts); "
          f"generating them: {generate_s:.2f} s ({len(records) / generate_s:,.0f}/s)")
    rates = {}
    for name, workers, durable in (("baseline (1 thread, durable)", 1, True),
                                   ("8 threads, durable", 8, True),
                                   ("8 threads, not durable", 8, False)):
        root, config = fresh(base, name.replace(" ", "-").replace(",", "").replace("(", "").replace(")", ""))
        clock = time.perf_counter()
        report = write_records(config, records, store=LocalStore(root, durable=durable), workers=workers)
        seconds = time.perf_counter() - clock + generate_s
        assert report.stored == len(records), report
        rates[name] = len(records) / seconds
    root, config = fresh(base, "fill-store")
    report = fill_store(config, root, 1, start, END)
    assert report.stored == len(records), report
    rates["speedlab demo (fill_store)"] = len(records) / report.seconds
    baseline = rates["baseline (1 thread, durable)"]
    for name, rate in rates.items():
        print(f"  {name:<32} {rate:8,.0f} results/s   x{rate / baseline:5.2f}")

    root, config = fresh(base, "full")
    full_start = END - timedelta(days=args.days)
    report = fill_store(config, root, 1, full_start, END)
    print(f"full demo: {report.stored} results ({args.days} days x 3 hosts) generated and written in "
          f"{report.seconds:.1f} s ({report.stored / report.seconds:,.0f}/s); baseline would take "
          f"~{report.stored / baseline:.0f} s")
    clock = time.perf_counter()
    runs = roll_up(config, END)
    seconds = time.perf_counter() - clock
    by_tier = (runs[0].result or {}).get("result", {}).get("by_tier", {})
    print(f"rollups through papermill: {seconds:.1f} s for {len(runs)} notebook runs "
          f"({', '.join(f'{n} {t}' for t, n in by_tier.items())} in the run-due run; "
          f"{', '.join(f'{r.seconds:.1f}' for r in runs)} s each)")
    print(f"(stores under {base}; delete when done)")


if __name__ == "__main__":
    main()
