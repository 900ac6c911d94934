"""Every notebook in scheduled/ is executed by papermill against a store built here; a failing
run is reported as failed and its executed notebook kept."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

from speedlab import layout
from speedlab.adapter import aggregate_command
from speedlab.bundled import scheduled_notebook, scheduled_notebooks
from speedlab.notebook_runs import NotebookRunFailed, notebook_parameters, run_notebook
from speedlab.periods import parse_period
from tests.helpers.data import IST, B, put, read_json, result

NOTEBOOKS = scheduled_notebooks()
PARAMETERS = {  # what each notebook is run with, beyond the store/zone/config/state ones
    "rollup": {"mode": "daily", "period": "2025-12-29", "host": "", "now": "2026-01-10T00:00:00+05:30"},
    "run_due": {"now": "2025-12-30T07:00:00+05:30"},
}


@pytest.fixture
def small_store(local_store, config_for):
    for moment, down in (("2025-12-29 09:01", 100.0), ("2025-12-29 09:16", 120.0),
                         ("2025-12-29 21:46", 80.0)):
        put(local_store, result("home-primary", moment, down))
    put(local_store, result("office-main", "2025-12-29 12:31", 300.0))
    return local_store, config_for(local_store)


def test_notebooks_are_committed_thin_and_without_outputs():
    assert {p.stem for p in NOTEBOOKS} == set(PARAMETERS)
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), path.name
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), path.name
        assert len(code) <= 4 and all("speedlab" in c.source for c in code[1:]), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
@pytest.mark.slow
def test_every_scheduled_notebook_runs_against_a_built_store(path, small_store):
    store, config = small_store
    run = run_notebook(config, path, {**notebook_parameters(config), **PARAMETERS[path.stem]},
                       job=f"test-{path.stem}")
    assert run.status == "ok", run.error
    executed = nbformat.read(run.output, as_version=4)
    assert executed.metadata["papermill"]["exception"] is None
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")
    record = json.loads(Path(run.record).read_text())
    assert (record["status"], record["job"], record["output"]) == ("ok", f"test-{path.stem}", run.output)
    assert run.result["message"] == "ok"
    day = read_json(store, B.daily, layout.summary_key(parse_period("daily", "20251229", IST)))
    assert (day["records_aggregated"], day["avg_download"]) == (4, 150.0)
    if path.stem == "rollup":
        assert run.result["mode"] == "daily" and run.result["result"]["avg_download"] == 150.0
    else:
        assert run.result["result"]["by_tier"] == {"hourly": 21, "daily": 1}  # 29 Dec 09:00 to 30 Dec 05:00


@pytest.mark.slow
def test_a_failing_run_is_reported_failed_and_its_notebook_kept(small_store):
    _store, config = small_store
    run = run_notebook(config, scheduled_notebook("rollup"),
                       {**notebook_parameters(config), "mode": "weekly", "period": "2025W54"},
                       job="aggregate-weekly")
    assert run.status == "failed" and "LayoutError" in run.error and "not a real date" in run.error
    executed = nbformat.read(run.output, as_version=4)
    assert executed.metadata["papermill"]["exception"] is True
    record = json.loads(Path(run.record).read_text())
    assert record["status"] == "failed" and record["output"] == run.output
    assert Path(run.output).parent == config.state_path / "runs" / "aggregate-weekly"
    log = [json.loads(x) for x in (config.state_path / "logs" / "aggregator.jsonl").read_text().splitlines()]
    assert log[-1]["level"] == "error" and run.output in log[-1]["message"]
    # through `speedlab aggregate --via-notebook`: the failure is raised, naming the kept notebook
    with pytest.raises(NotebookRunFailed, match=r"rollup.ipynb failed \(LayoutError.*kept at .*\.ipynb"):
        aggregate_command(config, "weekly", "2025W54", via_notebook=True)


@pytest.mark.slow
def test_via_notebook_answers_like_the_direct_call(small_store, config_for):
    store, config = small_store
    config = config.with_overrides(sections={"aggregate": {"runs_in_store": True}})
    now = datetime(2026, 1, 10, tzinfo=IST)
    via = aggregate_command(config, "hourly", "2025122909", via_notebook=True, now=now)
    direct = aggregate_command(config, "hourly", "2025122909", now=now)
    assert via["run"]["status"] == "ok" and Path(via["run"]["notebook"]).is_file()
    drop = {"generated_at", "source_max_modified"}
    assert list(via["result"]) == list(direct["result"])
    assert {k: v for k, v in via["result"].items() if k not in drop} == \
        {k: v for k, v in direct["result"].items() if k not in drop}
    kept = [i.key for i in store.list(B.hourly, "runs/aggregate-hourly/")]
    assert len(kept) == 2 and {k.rsplit(".", 1)[1] for k in kept} == {"ipynb", "json"}


PROBE = '''from speedlab.config import load_config
from speedlab.notebook_runs import show_result

config = load_config(config_path or None, store=store or None, state_dir=state_dir or None)
show_result({"store": config.store, "listed": len(list(config.open_store().list("vd-speed-test"))),
             "has_secret": config.s3.get("secret_access_key") == "url-secret-never-kept"})
print(config.s3)  # a careless cell: what it prints is masked in the kept notebook'''


def test_store_url_credentials_reach_the_kernel_through_its_environment_and_are_kept_nowhere(
        s3_store, moto_server, tmp_path, monkeypatch):
    import os

    from speedlab.config import load_config
    monkeypatch.delenv("SPEEDLAB_S3_SECRET_ACCESS_KEY", raising=False)
    secrets = ("AKIAINURL1234", "url-secret-never-kept")
    url = (f"s3://?endpoint_url={moto_server.endpoint_url}&region=us-east-1&access_key_id={secrets[0]}"
           f"&secret_access_key={secrets[1]}")
    config = load_config(env={}, store=url, host_id="home-primary", state_dir=str(tmp_path / "state"),
                         sections={"aggregate": {"runs_in_store": True}})
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                 "display_name": "Python 3"}})
    notebook.cells = [nbformat.v4.new_code_cell('store = ""\nconfig_path = ""\nstate_dir = ""\ntimezone = ""',
                                                metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell(PROBE)]
    path = tmp_path / "probe.ipynb"
    nbformat.write(notebook, path)
    parameters = notebook_parameters(config)
    assert not any(s in json.dumps(parameters) for s in secrets)
    run = run_notebook(config, path, parameters, job="probe")
    assert run.ok, run.error
    assert run.result["has_secret"] is True and run.result["listed"] == 0  # the kernel had them
    kept = [Path(run.output).read_text(), Path(run.record).read_text(),
            (tmp_path / "state" / "logs" / "aggregator.jsonl").read_text()]
    kept += [s3_store.get(B.hourly, key).decode() for key in run.store_keys]
    assert len(kept) == 5 and "'secret_access_key': '****'" in kept[0]
    for text in kept:
        assert not any(s in text for s in secrets)
    assert "SPEEDLAB_S3_SECRET_ACCESS_KEY" not in os.environ  # handed to the kernel only
