"""pyproject.toml and environment.yml install the same things."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _names(requirements):
    return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].strip().lower() for r in requirements}


def test_environment_yml_lists_every_pyproject_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _names(project["dependencies"]) | _names(project["optional-dependencies"]["test"])
    env_lines = (ROOT / "environment.yml").read_text().splitlines()
    listed = {re.split(r"[<>= #]", line.strip()[2:], maxsplit=1)[0].lower()
              for line in env_lines if line.strip().startswith("- ")}
    missing = wanted - listed
    assert not missing, f"environment.yml lacks {sorted(missing)}"


def test_product_dependencies_are_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = _names(project["dependencies"]) | _names(project["optional-dependencies"]["test"])
    for required in ("boto3", "pandas", "polars", "altair", "ipywidgets", "papermill",
                     "speedtest-cli", "nbval", "voila"):
        assert required in names
