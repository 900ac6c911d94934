"""The command line's own behaviour: help, version, config show, error lines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from speedlab import __version__
from speedlab.cli import COMMANDS, build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"speedlab {__version__}"


def test_every_subcommand_takes_store_and_has_help(capsys):
    parser = build_parser()
    for name in COMMANDS:
        with pytest.raises(SystemExit):
            parser.parse_args([name, "--help"])
        text = capsys.readouterr().out
        assert "--store" in text and "--config" in text, name


def test_config_show_prints_resolved_json(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["config", "show", "--store", str(tmp_path / "data")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["store"] == str(tmp_path / "data")
    assert shown["buckets"]["weekly"] == "vd-speed-test-weekly-prod"


def test_errors_are_one_line_and_exit_1(tmp_path, capsys):
    assert main(["config", "show", "--timezone", "Nowhere/Else"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["speedlab config: error: unknown time zone 'Nowhere/Else': "
                   "use an IANA name such as 'Asia/Kolkata' or 'UTC'"]


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "speedlab.cli", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"speedlab {__version__}"


@pytest.mark.slow
def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    from speedlab.joblog import JobLog

    store = tmp_path / "store"
    store.mkdir()
    log = JobLog(store / "_speedlab" / "logs", "collector", "home-primary")
    for i in range(20000):
        log.info(f"line {i} " + "x" * 80)
    process = subprocess.Popen([sys.executable, "-m", "speedlab.cli", "logs", "--store", str(store),
                                "--no-follow", "--since", "2d", "--color", "never"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()  # what `| head -1` does
    code = process.wait(60)
    err = process.stderr.read().decode()
    assert b"line 0" in first
    assert code == 0 and "Traceback" not in err, err


@pytest.mark.parametrize("command", ["dashboard", "up", "demo"])
@pytest.mark.parametrize("port", ["-1", "0", "65536", "http"])
def test_port_out_of_range_is_a_usage_error(command, port, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--port", port])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --port: {port!r} is not a TCP port: use a number from 1 to 65535" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, code, words", [
    (["coverage", "--date", "0001-01-01"], 1, "date '0001-01-01' is outside the dates speedlab handles"),
    (["coverage", "--date", "9999-12-31"], 1, "outside the dates speedlab handles (1970-01-01 to 9998-12-31)"),
    (["query", "--now", "0001-01-01T00:00:00+00:00"], 1, "is outside the dates speedlab handles"),
    (["query", "--now", "9999-12-31T23:59:59+00:00"], 1, "is outside the dates speedlab handles"),
    (["aggregate", "--mode", "yearly", "--period", "9999"], 1, "yearly period '9999' is outside the dates"),
    (["aggregate", "--mode", "daily", "--period", "0001-01-01"], 1, "is outside the dates"),
    (["aggregate", "--mode", "hourly", "--period", "0001010100"], 1, "is outside the dates"),
    (["aggregate", "--backfill", "0001", "0002", "--no-progress"], 1, "'0001' is outside the dates"),
    (["scheduler", "run-due", "--now", "0001-01-01T00:00:00+00:00"], 2, "argument --now: timestamp 0001-01-01"),
    (["scheduler", "run-due", "--now", "9999-12-31T23:59:59+00:00"], 2, "is outside the dates"),
    (["scheduler", "run-due", "--now", "9998-12-31T23:00:00+00:00"], 1, "time 9999-01-01T04:30:00+05:30 is outside"),
    (["logs", "--poll", "-1", "--follow"], 2, "argument --poll: '-1' is not a number of seconds above 0"),
    (["logs", "--poll", "nan", "--follow"], 2, "argument --poll: 'nan'"),
    (["logs", "--since", "9999-12-31T23:59:59Z"], 1, "--since '9999-12-31T23:59:59Z': timestamp"),
    (["aggregate", "--mode", "daily", "--period", ""], 2, "argument --period: an empty value is not allowed"),
    (["aggregate", "--mode", "daily", "--host", ""], 2, "argument --host: an empty value is not allowed"),
    (["query", "--host", ""], 2, "argument --host: an empty value is not allowed"),
    (["latest", "--host", " "], 2, "argument --host: an empty value is not allowed"),
    (["aggregate", "--mode", "daily", "--store", ""], 2, "argument --store: an empty value is not allowed"),
    (["aggregate", "--mode", "fortnightly"], 2, "argument --mode: invalid choice: 'fortnightly'"),
    (["latest", "--store", "s3://?secret_access_key=not-shown"], 1,
     "S3 credentials need both access_key_id and secret_access_key, but only secret_access_key is given"),
])
def test_bad_dates_and_empty_values_are_one_line_not_a_traceback(argv, code, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "store"
    (store / "vd-speed-test").mkdir(parents=True)
    if "--store" not in argv:
        argv = [*argv, "--store", str(store)]
    try:
        assert main(argv) == code
    except SystemExit as exit_:  # argparse usage errors
        assert exit_.code == code
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and "not-shown" not in err, err


def test_logs_since_further_back_than_1970_means_everything(tmp_path, capsys):
    assert main(["logs", "--since", "999999999d", "--no-follow", "--store", str(tmp_path)]) == 0
    assert capsys.readouterr().err.startswith("no log lines since 999999999d")


def test_tables_rebuild_then_check_on_a_store_written_before_tables(local_store, config_for, capsys):
    from datetime import datetime

    from speedlab.layout import tables_bucket
    from speedlab.periods import parse_period
    from speedlab.rollup import rollup
    from tests.helpers.data import IST, B, put, result
    for minute in ("14:01", "14:16", "15:31"):
        put(local_store, result("home-primary", f"2025-12-29 {minute}", 100.0))
    rollup(config_for(local_store), "daily", parse_period("daily", "20251229", IST),
           now=datetime(2026, 1, 5, tzinfo=IST))
    for info in list(local_store.list(tables_bucket(B), "tables/")):   # as an older speedlab left it
        local_store.delete(tables_bucket(B), info.key)
    root = str(local_store.root)
    assert main(["tables", "check", "--store", root]) == 1
    out = capsys.readouterr().out
    assert out.startswith("tables DISAGREE with the original layout") and "(missing)" in out
    assert main(["tables", "rebuild", "--store", root, "--tier", "daily", "--json"]) == 0
    rebuilt = json.loads(capsys.readouterr().out)
    assert rebuilt["partitions_written"] == ["tables/summaries/tier=daily/year=2025/part.parquet"]
    assert main(["tables", "check", "--store", root, "--tier", "daily"]) == 0
    assert capsys.readouterr().out.startswith("tables agree with the original layout: 1 partition(s)")
    assert main(["tables", "rebuild", "--store", root]) == 0
    assert capsys.readouterr().out.startswith("tables: ")
    assert main(["tables", "check", "--store", root, "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert audit["ok"] is True and audit["disagreements"] == [] and audit["rows"] == audit["sources"] > 0
    with pytest.raises(SystemExit) as usage:
        main(["tables", "check", "--store", root, "--tier", "minute"])
    assert usage.value.code == 2 and "invalid choice: 'minute'" in capsys.readouterr().err
