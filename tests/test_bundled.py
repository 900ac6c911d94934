"""The notebooks ship inside the package: a wheel is a complete install.

``test_wheel_*`` builds speedlab's wheel from a copy of this tree, installs it (and nothing else
of speedlab) in a new virtual environment, runs ``speedlab demo --no-serve`` from an empty folder
(the rollups run the scheduled notebooks through papermill, from the wheel), serves the dashboard
with ``speedlab dashboard`` from that folder and loads it in headless Chromium. The new venv
borrows this environment's third-party packages (``servers.borrowing_venv``): tests stay offline.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from speedlab.bundled import bundled_notebook, dashboard_notebook, scheduled_notebook, scheduled_notebooks
from speedlab.errors import ConfigError
from speedlab.serve import SERVER_NOISE, relay_server_output, voila_template_root
from tests.helpers.servers import CHROMIUM, CHROMIUM_ARGS, Lines, assert_quiet, free_port, need_chromium, stop_group
from tests.helpers.venvs import borrowing_venv, copy_work_tree

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- the source tree

def test_each_notebook_exists_once_at_the_top_level_and_is_found_through_the_package():
    assert dashboard_notebook().resolve() == (ROOT / "notebooks" / "dashboard.ipynb").resolve()
    assert [p.name for p in scheduled_notebooks()] == ["rollup.ipynb", "run_due.ipynb"]
    assert scheduled_notebook("run_due").resolve() == (ROOT / "scheduled" / "run_due.ipynb").resolve()
    assert not list((ROOT / "speedlab").rglob("*.ipynb"))          # no second copy to drift


def test_a_missing_notebook_is_a_config_error_that_says_what_to_do():
    with pytest.raises(ConfigError, match=r"speedlab.scheduled/nope.ipynb is not installed.*reinstall"):
        bundled_notebook("speedlab.scheduled", "nope")


def test_the_voila_template_asks_no_cdn():
    template = voila_template_root() / "voila" / "templates" / "speedlab"
    assert json.loads((template / "conf.json").read_text())["base_template"] == "lab"
    text = (template / "index.html.j2").read_text()
    assert "{%- extends 'lab/index.html.j2' -%}" in text and "cdn.jsdelivr.net" not in text.split("-#}")[1]


def test_server_output_keeps_errors_and_drops_the_known_noise():
    lines = ["[Voila] WARNING | Notebook dashboard.ipynb is not trusted\n",
             "[Voila] ERROR | the store is down\n",
             "Traceback (most recent call last):\n", '  File "x.py", line 1, in f\n',
             "tornado.websocket.WebSocketClosedError\n",
             "Traceback (most recent call last):\n", '  File "y.py", line 2, in g\n',
             "ValueError: a real problem\n",
             "[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All ...\n",
             # a preheated kernel answering after Voilà closed its sockets (the server stopping)
             "[IPKernelApp] ERROR | Exception in message handler:\n",
             "Traceback (most recent call last):\n", '  File "kernelbase.py", line 508, in dispatch_shell\n',
             "    await result\n", "zmq.error.ZMQError: Socket operation on non-socket\n",
             # the same announcement before a real error is kept with it
             "[IPKernelApp] ERROR | Exception in message handler:\n",
             "Traceback (most recent call last):\n", "KeyError: 'a real one'\n",
             "[IPKernelApp] ERROR | Exception in message handler:\n", "[Voila] ERROR | no traceback\n"]

    class Out(list):
        def write(self, text):
            self.append(text)

        def flush(self):
            pass

    out = Out()
    relay_server_output(iter(lines), out)
    text = "".join(out)
    assert text == ("[Voila] ERROR | the store is down\nTraceback (most recent call last):\n"
                    '  File "y.py", line 2, in g\nValueError: a real problem\n'
                    "[IPKernelApp] ERROR | Exception in message handler:\n"
                    "Traceback (most recent call last):\nKeyError: 'a real one'\n"
                    "[IPKernelApp] ERROR | Exception in message handler:\n[Voila] ERROR | no traceback\n")
    assert not any(noise in text for noise in SERVER_NOISE)


# --------------------------------------------------------------------------- the wheel

@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source, dist = tmp / "source", tmp / "dist"
    copy_work_tree(source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--disable-pip-version-check", "-w", str(dist), str(source)],
                   check=True, timeout=300)
    (found,) = dist.glob("speedlab-*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_holds_every_notebook_and_the_template_and_only_speedlab(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for notebook in ["dashboard", "laggy", "long_term", "plan_delivery", "slower_this_month", "time_of_day"]:
        assert f"speedlab/notebooks/{notebook}.ipynb" in names
    assert {"speedlab/scheduled/rollup.ipynb", "speedlab/scheduled/run_due.ipynb"} <= set(names)
    assert {"speedlab/jupyter/voila/templates/speedlab/index.html.j2",
            "speedlab/jupyter/voila/templates/speedlab/conf.json", "speedlab/py.typed"} <= set(names)
    tops = {name.split("/")[0] for name in names}
    assert tops == {"speedlab", wheel.name.split("-py3")[0] + ".dist-info"}, tops


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(420)
def test_wheel_in_a_new_venv_runs_the_demo_and_serves_the_dashboard_from_an_empty_folder(wheel, tmp_path):
    need_chromium()
    bin_dir, env = borrowing_venv(tmp_path / "venv")
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
                   env=env, check=True, timeout=300)
    work = tmp_path / "empty"
    work.mkdir()
    where = subprocess.run([str(bin_dir / "python"), "-c", "import speedlab; print(speedlab.__file__)"],
                           env=env, cwd=work, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(tmp_path / "venv")), where           # the wheel, not this tree
    demo = subprocess.run([str(bin_dir / "speedlab"), "demo", "--no-serve", "--days", "2"], env=env, cwd=work,
                          capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert_quiet(demo.stdout + demo.stderr)
    assert "rolled up through papermill" in demo.stdout
    runs = list((work / "speedlab-demo" / "_speedlab" / "runs").rglob("*.ipynb"))
    assert runs, "the scheduled notebooks ran from the wheel and were kept"

    port = free_port()
    process = subprocess.Popen([str(bin_dir / "speedlab"), "dashboard", "--config",
                                str(work / "speedlab-demo" / "speedlab.toml"), "--port", str(port)],
                               env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    lines = Lines(process)
    outside: list[str] = []
    try:
        url = lines.wait_for(lambda line: "speedlab dashboard: http://" in line, 120).split()[2]
        assert url == f"http://127.0.0.1:{port}/"
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                    else outside.append(r.url))
            page.goto(url, wait_until="commit")                 # printed once it answers
            page.wait_for_selector('.speedlab-status [data-state="ready"]', timeout=120_000)
            page.wait_for_selector(".speedlab-chart-widget svg", timeout=60_000)
            assert "(demo data)" in page.inner_text("body")
            page.close()                                         # a closed tab: no traceback
            page = browser.new_page()
            page.goto(url, wait_until="commit")
            page.wait_for_selector('.speedlab-status [data-state="ready"]', timeout=120_000)
            browser.close()
    finally:
        stop_group(process, signal.SIGINT)                       # Ctrl+C
    lines.drain()
    output = "\n".join(lines.all)
    assert not outside, f"the page asked servers beyond 127.0.0.1: {outside}"
    assert_quiet(output)
    assert output.rstrip().endswith("speedlab dashboard: stopped"), output[-2000:]
