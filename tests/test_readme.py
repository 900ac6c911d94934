"""The README's quick start: exactly two commands, and they work on a clean clone.

The demo command runs in a new virtual environment that borrows this environment's packages
(``servers.borrowing_venv``: offline, nothing downloaded; speedlab itself is installed from the
clone) on a fresh ``git clone`` of this repository (what is committed, nothing else). Two
arguments are appended to it, ``--port`` (a free port, not 8866) and ``--days 7`` (a shorter
history, to keep the test short); it runs until it prints the dashboard's URL, the URL answers
at once, and Ctrl+C stops it. The test command is checked to be the
one ``.ci/run`` runs (running the whole suite inside the suite would recurse).
"""

from __future__ import annotations

import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.servers import Lines, assert_quiet, free_port, stop_group
from tests.helpers.venvs import borrowing_venv

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def ci_test_command() -> str:
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return lines[lines.index("# The README's test command:") + 1].strip()


def test_quick_start_is_two_commands_and_the_second_is_what_ci_runs():
    demo, tests = quick_start_commands()
    assert "\n" not in demo and "\n" not in tests
    assert demo.startswith("python3 -m pip install") and demo.endswith("speedlab demo")
    assert tests == ci_test_command() == ('python3 -m pip install -q -c .ci/constraints.txt -e ".[test]" '
                                          '&& python3 -m pytest')


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.timeout(300)
def test_demo_command_on_a_clean_clone_in_a_new_venv(tmp_path):
    demo, _ = quick_start_commands()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    bin_dir, env = borrowing_venv(tmp_path / "venv")   # offline: this environment's packages, no index
    port = free_port()
    process = subprocess.Popen(["bash", "-c", f"{demo} --port {port} --days 7"], cwd=clone, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    lines = Lines(process)
    try:
        url = lines.wait_for(lambda line: "dashboard (demo data) at http://" in line, 200)
        assert f"http://127.0.0.1:{port}/" in url
        # printed once the server answers: no "connection refused" for whoever clicks it at once
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/static/favicon.ico", timeout=5) as icon:
            assert icon.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=120) as page:
            assert page.status == 200 and b"voila" in page.read().lower()
    finally:
        stop_group(process, signal.SIGINT)               # Ctrl+C: the demo stops its dashboard
    lines.drain()
    output = "\n".join(lines.all)
    assert_quiet(output)
    assert output.rstrip().endswith("speedlab demo: the dashboard stopped"), output[-2000:]
    # speedlab ran from the clone, not from this checkout
    where = subprocess.run([str(bin_dir / "python"), "-c", "import speedlab; print(speedlab.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout.strip()
    assert where.startswith(str(clone)), where
    assert "DEMO DATA" in output and (clone / "speedlab-demo" / "DEMO-DATA.txt").is_file()
    with pytest.raises(OSError):                          # the dashboard stopped with the demo
        urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/static/favicon.ico", timeout=2)
