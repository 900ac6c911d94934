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
    assert err == ["speedlab config: error: unknown time zone 'Nowhere/Else': use an IANA name such as 'Asia/Kolkata' or 'UTC'"]


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "speedlab.cli", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"speedlab {__version__}"


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
