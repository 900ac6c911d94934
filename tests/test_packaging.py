"""pyproject.toml and environment.yml install the same things."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.helpers.venvs import borrowing_venv, copy_work_tree

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


def test_the_test_environment_is_pinned_for_every_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _names(project["dependencies"]) | _names(project["optional-dependencies"]["test"])
    pins = {}
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    # pip freeze leaves out its own build tools (pip, setuptools, wheel)
    missing = wanted - set(pins) - {"wheel"}
    assert not missing, f".ci/constraints.txt pins nothing for {sorted(missing)}: bash .ci/refresh-constraints"
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for v in pins.values()), pins


@pytest.mark.slow
def test_package_discovery_names_only_speedlab_even_beside_demo_stores(tmp_path):
    """An editable install next to ./speedlab-demo and ./speedlab-data maps only speedlab's packages."""
    source = tmp_path / "source"
    copy_work_tree(source)
    for store in ("speedlab-demo", "speedlab-data"):
        for i in range(3):
            (source / store / f"vd-speed-test/host=h{i}/year=2026").mkdir(parents=True)
    bin_dir, env = borrowing_venv(tmp_path / "venv")
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(source)],
                   env=env, cwd=source, check=True, timeout=300)
    site = next((tmp_path / "venv").glob("lib/python*/site-packages"))
    finders = list(site.glob("__editable__*finder.py"))
    text = "".join(f.read_text() for f in finders) + "".join(p.read_text() for p in site.glob("__editable__*.pth"))
    assert "speedlab-demo" not in text and "speedlab-data" not in text and "host=" not in text
    mapping = re.search(r"MAPPING[^=]*=\s*(\{.*?\})", text, re.S)
    assert mapping and set(eval(mapping.group(1))) == {"speedlab", "speedlab.notebooks", "speedlab.scheduled"}
