"""Time to a drawn dashboard page in headless Chromium, with and without ``skip_iri_grammar``.

Builds a small demo store (``speedlab demo --no-serve``), serves the dashboard with Voilà on
127.0.0.1 twice — once as ``speedlab dashboard`` does (``SPEEDLAB_DASHBOARD_KERNEL=1``), once
with the kernel shortcut off (``=0``, the baseline) — and loads the page N times each, timing
from navigation to the first chart's SVG and to the "ready" status. Prints medians and the
ratio. Needs Debian's /usr/bin/chromium and Playwright for Python.

    python -m benchmarks.bench_dashboard_page [--loads 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from speedlab.config import load_config
from speedlab.serve import notebook_path, voila_command, voila_env
from tests.helpers.servers import free_port, local_env, wait_for_http

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


def time_loads(url: str, loads: int) -> list[tuple[float, float]]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(loads):
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            start = time.perf_counter()
            page.goto(url, wait_until="commit")
            page.wait_for_selector(".speedlab-chart-widget svg", timeout=120_000)
            chart_s = time.perf_counter() - start
            page.wait_for_selector('.speedlab-status [data-state="ready"]', state="attached", timeout=120_000)
            out.append((chart_s, time.perf_counter() - start))
            page.close()
            time.sleep(1.0)
        browser.close()
    return out


def serve_and_time(config, kernel_flag: str, loads: int, folder: Path) -> list[tuple[float, float]]:
    port = free_port()
    env = voila_env(config, base=local_env(SPEEDLAB_DASHBOARD_KERNEL=kernel_flag))
    with open(folder / f"voila-{kernel_flag}.log", "w") as log:
        process = subprocess.Popen(voila_command(notebook_path(), port), env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=folder)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/voila/static/favicon.ico", 60, process)
            time_loads(f"http://127.0.0.1:{port}/", 1)  # warm the OS file cache and Vega bundle cache
            return time_loads(f"http://127.0.0.1:{port}/", loads)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = folder / "demo"
        subprocess.run([sys.executable, "-m", "speedlab.cli", "demo", "--no-serve", "--days",
                        str(args.days), "--store", str(store)], check=True, env=local_env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        config = load_config(store / "speedlab.toml", env={})
        results = {}
        for flag, name in (("0", "baseline (IRI grammar built)"), ("1", "speedlab (skip_iri_grammar)")):
            results[name] = serve_and_time(config, flag, args.loads, folder)
    print(f"dashboard page, {args.loads} loads each, {args.days}-day demo store, median seconds")
    print(f"{'variant':32} {'first chart':>12} {'ready':>8}")
    medians = {}
    for name, times in results.items():
        chart = statistics.median(t[0] for t in times)
        ready = statistics.median(t[1] for t in times)
        medians[name] = (chart, ready)
        print(f"{name:32} {chart:12.2f} {ready:8.2f}")
    (base_chart, base_ready), (new_chart, new_ready) = medians.values()
    print(f"ratio speedlab/baseline: first chart {new_chart / base_chart:.2f}, ready {new_ready / base_ready:.2f}")


if __name__ == "__main__":
    main()
