"""The operator tools through the command line: answers, JSON, bad arguments, following logs."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from speedlab.cli import main
from speedlab.joblog import JobLog
from tests.helpers.data import B, everything, put, put_summary, result, store_url
from tests.helpers.servers import local_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def state(tmp_path, monkeypatch):
    """Job logs of CLI runs go to a temporary folder (never the user's state folder)."""
    folder = tmp_path / "state"
    monkeypatch.setenv("SPEEDLAB_STATE_DIR", str(folder))
    return folder


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_each_tool_answers_in_json(store, state, capsys):
    url = store_url(store)
    put(store, result("home-primary", "2025-12-29 14:02:00", download=1), legacy=True)
    extra = put(store, result("home-primary", "2025-12-29 14:09:00", download=2), legacy=True)
    put(store, result("home-primary", "2025-12-29 14:16:00", status="failed"))
    put_summary(store, "monthly", "202512", avg_download=123.4)

    code, out, _ = _run(capsys, "latest", "--store", url, "--period", "minutes", "--json")
    assert code == 0
    assert [(e["label"], e["data"]["status"]) for e in json.loads(out)] == [
        ("2025-12-29T14:15", "failed"), ("2025-12-29T14:00", "ok"), ("2025-12-29T14:00", "ok")]
    code, out, _ = _run(capsys, "latest", "--store", url, "--period", "monthly")
    assert code == 0 and out.splitlines()[2].split()[:3] == ["202512", "all", "123.4"]

    code, out, _ = _run(capsys, "coverage", "--store", url, "--date", "2025-12-29", "--json",
                        "--host", "home-primary")
    report = json.loads(out)
    assert code == 0 and report["hosts"]["home-primary"]["hours"]["14"] == {
        "expected": 4, "ok": 1, "failed": 1, "missing": ["30", "45"], "duplicates": 1, "invalid": 0}

    before = everything(store)
    code, out, _ = _run(capsys, "dedupe", "--store", url, "--json")
    assert code == 0 and json.loads(out)["to_delete"] == [{"bucket": B.raw, "key": extra}]
    assert everything(store) == before
    code, out, _ = _run(capsys, "dedupe", "--store", url)
    assert "1 extras would be deleted; rerun with --delete" in out
    code, out, _ = _run(capsys, "dedupe", "--store", url, "--delete")
    assert code == 0 and "deleted 1 of 1 extras" in out
    assert set(everything(store)) == set(before) - {(B.raw, extra)} | {
        (B.hourly, "stale/hour=2025122914/home-primary.json")}     # the rollup's stale mark

    code, out, _ = _run(capsys, "logs", "--store", url, "--job", "dedupe", "--no-follow", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(line["message"], line["key"]) for line in lines] == [("deleted duplicate", extra)]
    code, out, _ = _run(capsys, "logs", "--store", url, "--no-follow", "--events", "--color", "always")
    assert out.count("[start]") == 3 and "\033[32mINFO" in out


BAD = [
    (["latest", "--period", "weekly2"], "unknown period 'weekly2': use one of latest, minutes, hourly"),
    (["latest", "--host", "bad host"], "invalid host id 'bad host'"),
    (["latest", "--last", "0"], "must be a whole number of at least 1"),
    (["coverage", "--date", "2025-13-40"], "date '2025-13-40' is not a real date"),
    (["coverage", "--date", "29/12/2025"], "date '29/12/2025' is not understood: write it as YYYY-MM-DD"),
    (["coverage", "--date", "2999-01-01"], "date 2999-01-01 is in the future"),
    (["coverage", "--host", "a/b"], "invalid host id 'a/b'"),
    (["dedupe", "--period", "minutes"], "unknown period 'minutes': use one of all, raw, hourly"),
    (["dedupe", "--host", "all"], "invalid host id 'all': it is reserved"),
    (["logs", "--since", "soon"], "--since 'soon' is not understood"),
    (["logs", "--level", "loud"], "unknown level 'loud'"),
    (["logs", "--job", "colector"], "unknown job 'colector': use all or one of"),
    (["logs", "--color", "rainbow"], "--color 'rainbow'"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_give_one_line_and_exit_1(argv, message, local_store, state, capsys):
    code, out, err = _run(capsys, *argv, "--store", str(local_store.root), "--no-follow"
                          if argv[0] == "logs" else "--json")
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"speedlab {argv[0]}: error: ") and message in err


@pytest.mark.parametrize("command", ["latest", "coverage", "dedupe", "logs"])
def test_a_store_that_does_not_exist(command, tmp_path, state, capsys):
    missing = tmp_path / "no-such-store"
    code, out, err = _run(capsys, command, "--store", str(missing), *(["--no-follow"] if command == "logs" else []))
    assert code == 1 and out == "" and len(err.splitlines()) == 1
    assert f"local store folder {missing} does not exist" in err
    assert not missing.exists()                                     # nothing created by a failed run


@pytest.mark.parametrize("command", ["latest", "coverage", "dedupe"])
def test_an_s3_bucket_that_does_not_exist(command, moto_server, state, capsys):
    moto_server.reset()                                             # no buckets at all
    url = f"s3://?endpoint_url={moto_server.endpoint_url}&region=us-east-1"
    code, out, err = _run(capsys, command, "--store", url)
    assert code == 1 and out == "" and len(err.splitlines()) == 1
    assert "bucket 'vd-speed-test' does not exist" in err


def test_usage_mistakes_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as info:
        main(["latest", "--last", "many"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "speedlab latest: error: argument --last: invalid int value: 'many'"]


def _reader(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))


def test_logs_follow_prints_a_line_written_after_it_started(local_store, tmp_path):
    state = tmp_path / "state"
    JobLog(state / "logs", "collector", "home-primary").info("stored result")
    process = subprocess.Popen(
        [sys.executable, "-m", "speedlab.cli", "logs", "--store", str(local_store.root), "--follow",
         "--poll", "0.05", "--since", "5m"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=local_env(SPEEDLAB_STATE_DIR=str(state)), start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True).start()
    try:
        first = lines.get(timeout=20)
        assert "collector" in first and first.endswith("INFO    stored result")
        JobLog(state / "logs", "aggregator", "home-primary").error("rollup failed")
        second = lines.get(timeout=10)
        assert "aggregator" in second and second.endswith("ERROR   rollup failed")
        assert "\033[" not in first + second                        # not a terminal: no colour
        assert process.poll() is None                               # still following
    finally:
        process.terminate()
        process.wait(10)


def test_docs_example_tool_runs(store, state):
    put(store, result("home-primary", "2025-12-29 14:02:00"), legacy=True)
    put(store, result("home-primary", "2025-12-29 14:09:00"), legacy=True)
    put(store, result("office-main", "2025-12-30 08:01:00"))
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / "results_per_day.py"),
                          "--store", store_url(store)], capture_output=True, text=True, timeout=60,
                         env=local_env(SPEEDLAB_STATE_DIR=str(state)), check=True).stdout
    assert out.splitlines() == [
        "home-primary    2025-12-29  legacy     2 objects",
        "office-main     2025-12-30  speedlab   1 objects",
        "1 crowded slots; `speedlab dedupe --delete` would remove 1 extras"]


def test_a_key_holding_a_newline_cannot_forge_lines_in_tables_or_logs(local_store, state, capsys):
    url = store_url(local_store)
    key = put(local_store, result("home-primary", "2025-12-29 14:02:00"))
    folder = key.rsplit("/", 1)[0] + "/"
    forged = "x\n2025-12-29 14:15  home-primary  ok  999.0\x1b[31m.json"
    local_store.put(B.raw, folder + forged, result("home-primary", "2025-12-29 14:05:00").to_json().encode())
    local_store.put(B.raw, folder + "bad\nname.json", b"[1, 2]")
    for argv, rows in ((("latest", "--period", "minutes"), 3 + 2), (("dedupe",), 2 + 3 + 1),
                       (("coverage", "--date", "2025-12-29"), 1 + 2 + 24 + 1)):
        code, out, _ = _run(capsys, *argv, "--store", url)
        assert code == 0 and "\x1b" not in out, argv
        assert len(out.splitlines()) == rows, (argv, out)
        assert "x\\n2025-12-29 14:15" in out or argv[0] == "coverage", argv
        assert "bad\\nname.json" in out, argv
    JobLog(state / "logs", "dedupe", host_id="home-primary").warning(
        "not a layout key: bad\n2026-01-01 00:00:00 dedupe     -              ERROR   forged", key="k\r\nX")
    code, out, _ = _run(capsys, "logs", "--since", "1h", "--store", url)
    assert code == 0 and len(out.splitlines()) == 1
    assert "bad\\n2026-01-01" in out and "key=k\\r\\nX" in out


def test_logs_says_so_when_there_is_nothing_to_show(local_store, state, capsys):
    code, out, err = _run(capsys, "logs", "--store", str(local_store.root), "--no-follow", "--job", "collector")
    assert code == 0 and out == ""
    assert err == f"no log lines from collector since 1h in {state / 'logs'}\n"
