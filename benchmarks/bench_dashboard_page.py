"""Fresh dashboard visits in headless Chromium: a kernel per visit (before) vs preheated kernels
and a shared cache (after), in one run.

Builds a small demo store (``speedlab demo --no-serve``), serves the dashboard with Voilà on
127.0.0.1 twice — ``--pool-size 0`` and no shared cache (each visit starts a kernel, which
imports polars and Altair, then reads), then as ``speedlab dashboard`` serves it (a pool of
preheated kernels that drew the default view, one cache shared by all kernels) — and opens the
page N times each in a new tab, ``--gap`` seconds apart and once the server is idle (the pool
refilled: its kernels use no CPU), timing
from navigation to the first chart drawn (an SVG: the snapshot of the visit's view, which a
preheated kernel sends inside the page, or the live widget's), to numbers in a table, and to the
live (interactive) chart. The first chart is timed twice: **painted**, when the browser first
painted it (its Element Timing: the snapshot's heading under its charts carries an
``elementtiming`` mark, so the time is when everything above it was on screen; a live first chart
has no mark and counts at the driver's time), and **first chart (driver)**, when Playwright saw it
in the page. The second is later by up to ~0.9 s: Playwright's check runs in the page, which is
busy with Voilà's JavaScript (350 KB of styles, then the widget manager) right after the snapshot
was painted. Every other visit asks for ``?mode=weekly&days=12`` (applied after the
visit arrives; its snapshot is of that view when the kernel has loaded it within 1.5 s, else it
waits for the live chart; the lines per kind of visit say how many first charts were snapshots).
On each page it then switches the mode (Mode menu, then the Period menu once it follows, Apply)
and times the change until the new chart is drawn, and within it from Apply to the new chart (the
menus' round trips to the kernel are the rest); then, once the server is idle again (a preheated
server refills its pool when a visit takes a kernel: a new kernel imports everything and draws
the default view, which competes for the CPU with the visit's switches), switches again.
The memory of the server and its kernels (VmRSS
summed over the process tree once start-up is done, before any visit) is printed for each server,
and with ``--memory-pools 1,2`` for more pool sizes. Needs Debian's /usr/bin/chromium and Playwright for Python.

    nice -n 10 python -m benchmarks.bench_dashboard_page [--loads 6] [--pool-size 1] [--memory-pools 2]
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
from speedlab.snapshot import PAINT_MARK, TABLE_PAINT_MARK
from tests.helpers.servers import CHROMIUM, CHROMIUM_ARGS, free_port, local_env, wait_for_http

VISITS = ("", "?mode=weekly&days=12")
SWITCHES = (("monthly", 0), ("hourly", 0))     # (mode, index of its Period menu): Apply after each


def _tree() -> tuple[dict[int, list[int]], dict[int, tuple[int, float]]]:
    """Every process's children, and its VmRSS [kB] and CPU time [s]."""
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        children.setdefault(int(fields["PPid"]), []).append(int(entry))
        info[int(entry)] = (int(fields.get("VmRSS", "0 kB").split()[0]), (int(stat[11]) + int(stat[12])) / tick)
    return children, info


def tree_usage(root_pid: int) -> tuple[float, int, float]:
    """VmRSS of ``root_pid`` and its descendants [MB], how many processes, their CPU time [s]."""
    children, info = _tree()
    todo, seen = [root_pid], []
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo.extend(children.get(pid, []))
    return (sum(info.get(p, (0, 0.0))[0] for p in seen) / 1024, len(seen),
            sum(info.get(p, (0, 0.0))[1] for p in seen))


def wait_until_idle(root_pid: int, processes: int, timeout_s: float = 180.0) -> tuple[float, int]:
    """Wait until the server has ``processes`` processes (itself and its kernels) and they use
    under 5 % of a core for 2 s (the preheated kernels have drawn the default view and wait);
    return the memory then [MB] and the process count."""
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    last = tree_usage(root_pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = tree_usage(root_pid)
        if now[1] >= processes and now[2] - last[2] < 0.025:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 2.0:
                return now[0], now[1]
        else:
            quiet_since = None
        last = now
    return last[0], last[1]


def visit(browser, url: str, idle=None) -> tuple[float, float, list[tuple[float, float]], float, bool,
                                                 list[tuple[float, float]], float, float]:
    """One fresh visit: seconds to the first chart drawn (the snapshot's or the live one) as the
    driver sees it, to the table's numbers, per mode switch (the whole switch, and from Apply), and
    to the live (interactive) chart; whether the first chart was the snapshot's; then, after
    ``idle()`` (the server idle again: a pool has refilled), the same switches once more; last, when
    the first chart was painted: the browser's Element Timing of the heading under the snapshot's
    charts (ms since navigation), or for a live first chart the driver's time; and the same for the
    table's last row (its first cell carries a mark in the snapshot)."""
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.add_init_script(_PAINT_WATCH)
    start = time.perf_counter()
    page.goto(url, wait_until="commit")
    first = page.wait_for_selector(".speedlab-snapshot svg, .speedlab-chart-widget svg", timeout=120_000)
    chart_s = time.perf_counter() - start
    snapshot = bool(first.evaluate("e => !!e.closest('.speedlab-snapshot')"))
    painted_s = chart_s
    if snapshot:  # the browser's own paint times of the snapshot's charts and table (Element Timing)
        painted = page.wait_for_function("marks => marks.every(m => m in window.__speedlabPainted) && "
                                         "window.__speedlabPainted", arg=[PAINT_MARK, TABLE_PAINT_MARK],
                                         timeout=10_000).json_value()
        painted_s, table_painted_s = painted[PAINT_MARK] / 1000, painted[TABLE_PAINT_MARK] / 1000
    page.wait_for_function("() => [...document.querySelectorAll('.speedlab-rows td[data-col=download_avg], "
                           ".speedlab-snapshot-rows td[data-col=download_avg]')]"
                           ".some(td => td.textContent.trim() !== '—')", timeout=120_000)
    table_s = time.perf_counter() - start
    if not snapshot:
        table_painted_s = table_s
    page.wait_for_selector(".speedlab-chart-widget svg", timeout=120_000)
    live_s = time.perf_counter() - start
    page.wait_for_selector('.speedlab-status [data-state="ready"]', state="attached", timeout=120_000)
    switches = _switch(page)
    if idle is not None:
        idle()
    later = _switch(page) if idle is not None else []
    page.close()
    return chart_s, table_s, switches, live_s, snapshot, later, painted_s, table_painted_s


#: Installed before the page's own scripts: the time [ms since navigation] at which the browser first
#: painted the heading under the snapshot's charts (its Element Timing mark, snapshot.PAINT_MARK).
_PAINT_WATCH = """
window.__speedlabPainted = {};
new PerformanceObserver(list => {
  for (const entry of list.getEntries())
    if (!(entry.identifier in window.__speedlabPainted)) window.__speedlabPainted[entry.identifier] = entry.renderTime;
}).observe({type: 'element', buffered: true});
"""


def _switch(page) -> list[tuple[float, float]]:
    """Switch the mode as a visitor does (:data:`SWITCHES`); the whole switch and Apply to the new chart [s]."""
    switches = []
    for mode, period_index in SWITCHES:
        before = page.get_attribute(".speedlab-state", "data-generation")
        started = time.perf_counter()
        page.select_option(".speedlab-mode select", index=_mode_index(mode))
        page.wait_for_function(  # the Period menu follows the mode (a round trip to the kernel)
            "unit => [...document.querySelectorAll('.speedlab-period option')]"
            ".every(o => o.textContent.replace(/\\u00a0/g, ' ').includes(' ' + unit))",
            arg={"monthly": "month", "hourly": "day"}[mode], timeout=60_000)
        page.select_option(".speedlab-period select", index=period_index)
        applied = time.perf_counter()
        page.click(".speedlab-apply")
        page.wait_for_function(  # the new rows' last period is a mark in the chart
            "g => { const s = document.querySelector('.speedlab-state');"
            " if (!s || s.dataset.generation === g || !['drawing', 'ready'].includes(s.dataset.state)) return false;"
            " const rows = [...document.querySelectorAll('.speedlab-rows tbody tr')].filter("
            "   tr => tr.querySelector('td[data-col=download_avg]').textContent.trim() !== '—');"
            " if (!rows.length) return false;"
            " const label = 'Download ' + rows[rows.length - 1].cells[0].textContent + ':';"
            " return [...document.querySelectorAll('.speedlab-chart-widget [aria-label]')]"
            "   .some(e => e.getAttribute('aria-label').startsWith(label)); }", arg=before, timeout=60_000)
        drawn = time.perf_counter()
        switches.append((drawn - started, drawn - applied))   # the whole switch; Apply to the new chart
    return switches


def _mode_index(mode: str) -> int:
    from speedlab.rowbuild import MODES

    return MODES.index(mode)


def serve_and_time(config, name: str, pool_size: int, shared_cache: bool, loads: int, gap_s: float,
                   folder: Path) -> dict:
    from playwright.sync_api import sync_playwright

    port = free_port()
    cache_dir = tempfile.mkdtemp(dir=folder) if shared_cache else None
    env = voila_env(config, base=local_env(), cache_dir=cache_dir)
    log_path = folder / f"voila-{name}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(voila_command(notebook_path(), port, pool_size=pool_size), env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=folder)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/voila/static/favicon.ico", 60, process)
            memory = wait_until_idle(process.pid, 1 + pool_size)
            base = f"http://127.0.0.1:{port}/"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                visit(browser, base)  # warm the OS file cache and the browser's
                times = []
                for n in range(loads):
                    time.sleep(gap_s)
                    wait_until_idle(process.pid, 1 + pool_size)   # the pool refilled (kernels of past visits idle)
                    times.append(visit(browser, base + VISITS[n % len(VISITS)],
                                       lambda: wait_until_idle(process.pid, 1 + pool_size)))
                browser.close()
            return {"times": times, "memory": memory}
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)


def pool_memory(config, pool_size: int, folder: Path) -> tuple[float, int]:
    """VmRSS of a server with ``pool_size`` preheated kernels, before any visit [MB]."""
    port = free_port()
    log_path = folder / f"voila-memory-{pool_size}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(voila_command(notebook_path(), port, pool_size=pool_size), stdout=log,
                                   env=voila_env(config, base=local_env(), cache_dir=tempfile.mkdtemp(dir=folder)),
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=folder)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/voila/static/favicon.ico", 60, process)
            return wait_until_idle(process.pid, 1 + pool_size)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=6)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--pool-size", type=int, default=1)
    parser.add_argument("--gap", type=float, default=2.0,
                        help="seconds between visits, and until the server is idle again (the pool refilled)")
    parser.add_argument("--memory-pools", default="", help="more pool sizes to measure memory for, e.g. 2,3")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = folder / "demo"
        subprocess.run([sys.executable, "-m", "speedlab.cli", "demo", "--no-serve", "--days",
                        str(args.days), "--store", str(store)], check=True, env=local_env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        config = load_config(store / "speedlab.toml", env={})
        results = {
            "before (kernel per visit)": serve_and_time(config, "before", 0, False, args.loads, args.gap, folder),
            f"after (pool {args.pool_size}, shared cache)": serve_and_time(
                config, "after", args.pool_size, True, args.loads, args.gap, folder),
        }
        extra = {n: pool_memory(config, n, folder) for n in map(int, filter(None, args.memory_pools.split(",")))}
    print(f"dashboard page: {args.loads} fresh visits each ({' / '.join(v or '(default)' for v in VISITS)}), "
          f"{args.days}-day demo store, medians [s]")
    print(f"{'variant':34} {'chart painted':>13} {'first chart':>12} {'table painted':>13} {'table':>8} "
          f"{'live chart':>11} {'switch mode':>12} {'memory [MB]':>12}")
    medians = {}
    for name, result in results.items():
        times = result["times"]
        chart, table, live, painted, table_painted = (statistics.median(t[i] for t in times) for i in (0, 1, 3, 6, 7))
        switch = statistics.median(s for t in times for s, _ in t[2])
        apply_s = [a for t in times for _, a in t[2]]
        medians[name] = (chart, table, switch, live, painted)
        memory, processes = result["memory"]
        print(f"{name:34} {painted:13.2f} {chart:12.2f} {table_painted:13.2f} {table:8.2f} {live:11.2f} "
              f"{switch:12.2f} {memory:8.0f} ({processes} processes)")
        print(f"{'':34} switch mode {', '.join(f'{s:.2f}' for t in times for s, _ in t[2])}; of which Apply to "
              f"the new chart {', '.join(f'{a:.2f}' for a in apply_s)} (median {statistics.median(apply_s):.2f})")
        idle = [s for t in times for s, _ in t[5]]
        print(f"{'':34} switch mode once the server is idle again (a pool refilled): "
              f"{', '.join(f'{s:.2f}' for s in idle)} (median {statistics.median(idle):.2f}; Apply to the new chart "
              f"median {statistics.median(a for t in times for _, a in t[5]):.2f})")
        for n, label in enumerate(VISITS):
            mine = times[n::len(VISITS)]
            print(f"{'':34} {label or '(default)':22} chart painted {', '.join(f'{t[6]:.2f}' for t in mine)} "
                  f"(median {statistics.median(t[6] for t in mine):.2f}); first chart (driver) "
                  f"{', '.join(f'{t[0]:.2f}' for t in mine)} (median {statistics.median(t[0] for t in mine):.2f}, "
                  f"{sum(t[4] for t in mine)} of {len(mine)} snapshots); live chart "
                  f"{', '.join(f'{t[3]:.2f}' for t in mine)}")
    (b_chart, b_table, b_switch, b_live, b_paint), (a_chart, a_table, a_switch, a_live, a_paint) = medians.values()
    print(f"ratio after/before: chart painted {a_paint / b_paint:.2f}, first chart {a_chart / b_chart:.2f}, "
          f"table {a_table / b_table:.2f}, live chart {a_live / b_live:.2f}, switch {a_switch / b_switch:.2f}")
    for pool_size, (memory, processes) in extra.items():
        print(f"memory with pool {pool_size}: {memory:.0f} MB ({processes} processes: server and kernels)")


if __name__ == "__main__":
    main()
