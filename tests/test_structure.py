"""The package's import graph: no cycle (lazy imports included), no pure module importing I/O.

Every ``import``/``from`` statement of every module of ``speedlab/`` counts, at module level
and inside functions (a lazy import still makes a cycle and still drags its module in).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "speedlab"

#: Modules that compute only: no store, file, network, process or clock (STYLE.md), one reason each.
PURE = {
    "errors": "exception classes",
    "periods": "time arithmetic; `now` is an argument",
    "layout": "builds and parses keys",
    "records": "frozen dataclasses, their JSON, the slot and below-plan rules",
    "sketch": "mergeable quantile sketch",
    "aggregate": "polars functions: records -> summaries",
    "mergeable": "mergeable statistics of one metric and of a summary (exact sums, sketches), no polars",
    "masking": "hides secrets in text and data",
    "scheduler": "what is due, from plain data and `now`",
    "charts": "Vega-Lite specs (plain dicts) built from plain rows",
    "text": "plain-text tables",
    "checks": "the health rules: silence, below the plan, due periods, debouncing",
    "page": "the dashboard's controls and HTML from a selection and plain rows",
    "snapshot": "the drawn view as plain HTML (charts as SVG by vl-convert, in memory)",
    "laggy": "loaded latency by hour of day per host, from hourly rows (\"When does my connection get laggy?\")",
    "responsiveness": "RPM from the loaded round trip and its plain-language grade",
    "rowbuild": "the dashboard's rows, windows, headline and heatmap cells from plain data",
    "live": "figures so far of a period in progress, from injected lookups",
    "tables": "summaries and results <-> rows of the columnar tables (polars frames, Parquet bytes), diffs",
    "frames": "polars columns built from Python values where polars' constructor is slow (list columns)",
    "monthsource": "a raw month's statistics from its table's columns (polars), and which listed objects are current",
    "settings": "one frozen dataclass per [section] of speedlab.toml, checked",
    "storebase": "the storage contract: ObjectInfo and the Store protocol",
    "metrics": "Prometheus metric families from plain figures (newest result, counts, sketches)",
    "importers": "other trackers' files (bytes) -> records, one parser per format",
    "ookla_json": "where the record's latency fields sit in the Ookla CLI's JSON (a table, a lookup)",
    "inputs": "one digest of what a summary is computed from (hashlib over plain data)",
    "rollreport": "what a rollup did, as plain data and one line of text",
}

#: Modules that touch a store, files, the network, processes or the clock, one reason each.
IO = {
    "store": "the local storage backend, the URL that picks a backend",
    "store_s3": "the S3 storage backend (boto3)",
    "config": "reads config files and the environment, opens stores",
    "reader": "reads and lists the store",
    "tables_io": "keeps, checks and reads the columnar tables in the store",
    "tables_engines": "names the tables' path and polars' storage options for other engines (imports store_s3)",
    "counting": "wraps a store: each call is the wrapped store's request, counted",
    "walk": "lists partition folders of the store",
    "roller": "reads inputs and writes summaries",
    "unchanged": "reads a summary table and lists its summaries: which need not be written or rolled up again",
    "rundue": "lists the store's inventory, rolls up what is due",
    "stale": "writes, lists and deletes stale marks",
    "query": "reads the store for the dashboard and the API",
    "rowsource": "reads one view's table partitions, fallback objects and raw tail",
    "cache": "the rows' cache: a clock, and files shared by a server's kernels",
    "rollup": "reads and writes summaries",
    "collect": "the collector run: slot guard, conditional upload, spool",
    "engine": "runs a speed test (threads, the network, the clock)",
    "probes": "times HTTP latency probes (http.client, a thread, the clock); the statistics are pure helpers",
    "engines": "names the engines and makes one (imports engine, engine_ookla and engine_librespeed)",
    "engine_ookla": "runs the Ookla Speedtest CLI as a child process",
    "engine_librespeed": "talks the LibreSpeed protocol to a server (http.client, threads, the clock)",
    "spool": "keeps results on disk",
    "notebook_runs": "runs papermill, writes executed notebooks",
    "joblog": "writes job logs",
    "dashboard": "widgets, the kernel's loader thread, the chart bundle cache",
    "serve": "runs Voila as a child process",
    "api": "an HTTP server",
    "metrics_io": "reads each host's figures from the store on every Prometheus scrape",
    "up": "starts processes",
    "demo": "writes a demo store, serves it",
    "health": "reads the store",
    "alerts": "sends notifications",
    "infra": "creates buckets",
    "os_entries": "renders and installs cron/systemd/Task Scheduler entries (speedlab schedule)",
    "adapter": "runs rollups and the health check for the command line, the API and the notebooks",
    "cli": "the command line",
    "analysis": "loads the dashboard's rows for the analysis notebooks (the answers are pure functions in it)",
    "bundled": "reads the notebooks and template shipped in the package",
    "coverage": "lists the store's objects per slot",
    "dedupe": "lists and deletes duplicate objects",
    "latest": "reads the newest objects",
    "logview": "reads and follows job log files",
    "netinfo": "asks the operating system about network interfaces",
    "importing": "reads the file to import, writes its results and stale marks to the store",
    "export": "reads views and raw results, writes the export file",
}


def _module_names() -> set[str]:
    return {path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"}


def _imports(path: Path, modules: set[str]) -> set[str]:
    """speedlab modules imported anywhere in ``path`` (relative imports resolved)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
            found.update(parts[1] for parts in names if parts[0] == "speedlab" and len(parts) > 1)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative to the package: speedlab/*.py are all at level 1
                parts = ["speedlab"] + (node.module.split(".") if node.module else [])
            else:
                parts = (node.module or "").split(".")
            if parts[0] != "speedlab":
                continue
            if len(parts) > 1:
                found.add(parts[1])
            else:  # from speedlab import x / from . import x
                found.update(alias.name for alias in node.names)
    return {name for name in found if name in modules and name != path.stem}


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """``{module: the speedlab modules it imports}`` over every module of the package (read once
    per session: the sources do not change while the tests run)."""
    modules = _module_names()
    return {name: _imports(PACKAGE / f"{name}.py", modules) for name in sorted(modules)}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (``[a, b, ..., a]``), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_graph_reader_sees_lazy_and_relative_imports(tmp_path):
    source = ("import os\nfrom .a import x\nfrom . import b\nimport speedlab.c\n"
              "def f():\n    from speedlab.d import y\n    from speedlab import e\n")
    (tmp_path / "m.py").write_text(source)
    assert _imports(tmp_path / "m.py", {"a", "b", "c", "d", "e", "m"}) == {"a", "b", "c", "d", "e"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_module_is_classified_exactly_once():
    assert not set(PURE) & set(IO)
    assert set(PURE) | set(IO) == _module_names()


def test_the_package_has_no_import_cycle_lazy_imports_included():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("module", sorted(PURE))
def test_a_pure_module_imports_no_io_module(module):
    graph = import_graph()
    direct = sorted(graph[module] & set(IO))
    assert not direct, f"pure {module} imports I/O module(s) {direct}"
    reached, todo = set(), list(graph[module])  # nor through another module
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(graph[name])
    assert not reached & set(IO), f"pure {module} reaches I/O module(s) {sorted(reached & set(IO))}"


#: The most lines a module may have: past it, a module is doing more than one job.
MAX_LINES = 600


def test_no_module_is_over_600_lines():
    long = {path.stem: n for path in PACKAGE.glob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split along their seams: {long}"
