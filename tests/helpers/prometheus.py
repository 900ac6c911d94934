"""A real Prometheus (Debian's ``prometheus`` package) started by a test on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.servers import free_port, local_env, stop_group

PROMETHEUS = "/usr/bin/prometheus"


def need_prometheus() -> None:
    """Skip unless ``/usr/bin/prometheus`` exists; under CI (``$CI`` set) its absence fails."""
    if os.access(PROMETHEUS, os.X_OK):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{PROMETHEUS} is missing: .ci/run installs Debian's prometheus package")
    pytest.skip(f"{PROMETHEUS} is missing (apt-get install prometheus); required under CI")


def scrape_config(jobs: list[dict], interval_s: int = 1) -> str:
    """A prometheus.yml with ``jobs`` (dicts of one scrape config each), as JSON (which is YAML)."""
    return json.dumps({"global": {"scrape_interval": f"{interval_s}s", "scrape_timeout": f"{interval_s}s"},
                       "scrape_configs": jobs}, indent=1)


class Prometheus:
    """``prometheus --config.file=… --storage.tsdb.path=… --web.listen-address=127.0.0.1:PORT``."""

    def __init__(self, folder: Path, config_text: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = folder / "prometheus.yml"
        self.config.write_text(config_text)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Prometheus:
        self.log = open(self.folder / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={self.folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, env=local_env(), start_new_session=True)
        deadline = time.monotonic() + 20
        while not self._ready():  # /-/ready answers 503 until the storage is open
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"Prometheus did not get ready on {self.url}:\n{self.output()}")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:  # refused, or an HTTPError (503) while starting
            return False

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            stop_group(self.process, timeout_s=10)
        self.log.close()
        shutil.rmtree(self.folder / "data", ignore_errors=True)

    def output(self) -> str:
        """What Prometheus logged (for failure messages)."""
        return (self.folder / "prometheus.log").read_text(errors="replace")[-3000:]

    def query(self, promql: str) -> list[dict]:
        """An instant query through the HTTP API: the ``result`` vector."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            answer = json.loads(response.read())
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def wait_for(self, promql: str, timeout_s: float = 8.0) -> list[dict]:
        """Poll ``promql`` until it returns at least one sample; fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.query(promql)
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"Prometheus returned nothing for {promql} within {timeout_s} s; "
                             f"targets: {self.targets()}\n{self.output()}")

    def targets(self) -> list[dict]:
        """The scrape targets with their health and last error."""
        with urllib.request.urlopen(self.url + "/api/v1/targets", timeout=5) as response:
            active = json.loads(response.read())["data"]["activeTargets"]
        return [{k: t.get(k) for k in ("scrapePool", "health", "lastError")} for t in active]
