"""Engines chosen per host: the registry, ``[collector] engine``, ``--engine``, and the ``ookla`` engine.

The ``ookla`` engine runs a stand-in ``speedtest`` executable that each test writes into a temp
folder put first on ``PATH``: a small Python script printing the official CLI's documented JSON
(``--format=json``), or its error log line, or garbage, or exiting non-zero, or sleeping past the
time limit, as ``FAKE_OOKLA_MODE`` says. Every mapped field is checked against the JSON printed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone

import pytest

from speedlab import cli, engines
from speedlab.collect import collect_once
from speedlab.config import Config, load_config
from speedlab.engine import SpeedtestCli, measure, record_from_output
from speedlab.engine_ookla import (
    OoklaCli,
    classify_ookla_message,
    find_ookla,
    latency_fields,
    parse_ookla_output,
    results_from_ookla,
)
from speedlab.errors import ConfigError, EngineFailure
from speedlab.importers import parse_ookla
from speedlab.netinfo import ConnectionInfo
from speedlab.ookla_json import OOKLA_PATHS
from speedlab.records import LATENCY_FIELDS, SpeedTestResult
from speedlab.settings import ENGINE_NAMES, CollectorSettings

T0 = datetime(2026, 12, 1, 15, 33, 12, tzinfo=timezone.utc)
ETHERNET = ConnectionInfo("Ethernet", "eth0")

#: The stand-in ``speedtest``: what it does is chosen by FAKE_OOKLA_MODE; it records its argv.
STAND_IN = r'''
import json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "argv.json"), "w") as f:
    json.dump(sys.argv[1:], f)
with open(os.path.join(here, "pid"), "w") as f:
    f.write(str(os.getpid()))
mode = os.environ.get("FAKE_OOKLA_MODE", "result")
if mode == "result":
    print("==== Speedtest by Ookla: license accepted ====")  # a first run's notice before the JSON
    print(os.environ["FAKE_OOKLA_JSON"])
elif mode == "error":
    stream = sys.stderr if os.environ.get("FAKE_OOKLA_STREAM") == "stderr" else sys.stdout
    print(json.dumps({"type": "log", "timestamp": "2026-12-01T15:33:20Z", "message": os.environ["FAKE_OOKLA_MESSAGE"],
                      "level": "error"}), file=stream)
    sys.exit(2)
elif mode == "garbage":
    print("<html>Service Unavailable</html>")
elif mode == "exit":
    print("Segmentation fault", file=sys.stderr)
    sys.exit(139)
elif mode == "sleep":
    time.sleep(30)
'''


def ookla_result(**changes) -> dict:
    """A result object as the official CLI documents it (``--format=json``)."""
    result = {
        "type": "result", "timestamp": "2026-12-01T15:33:40Z",
        "ping": {"jitter": 0.437, "latency": 16.504, "low": 15.844, "high": 17.886},
        "download": {"bandwidth": 12_345_678, "bytes": 148_148_136, "elapsed": 12010,
                     "latency": {"iqm": 43.484, "low": 17.123, "high": 64.032, "jitter": 2.269}},
        "upload": {"bandwidth": 5_125_601, "bytes": 47_343_420, "elapsed": 9409,
                   "latency": {"iqm": 132.715, "low": 31.482, "high": 233.83, "jitter": 11.604}},
        "packetLoss": 0.46,
        "isp": "Example Broadband",
        "interface": {"internalIp": "192.168.101.116", "name": "enp0s31f6", "macAddr": "B4:45:06:69:92:03",
                      "isVpn": False, "externalIp": "203.0.113.9"},
        "server": {"id": 51155, "host": "speedtest.example.net", "port": 8080, "name": "Example Cable",
                   "location": "North Lima, OH", "country": "United States", "ip": "198.51.100.7"},
        "result": {"id": "5246f9b4-d5dd-4205-8ea2-427bcdda747a",
                   "url": "https://www.speedtest.net/result/c/5246f9b4-d5dd-4205-8ea2-427bcdda747a",
                   "persisted": True},
    }
    result.update(changes)
    return result


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """A folder first on PATH holding the stand-in ``speedtest``; returns it."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "speedtest"
    script.write_text(f"#!{sys.executable}\n{STAND_IN}", encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_OOKLA_JSON", json.dumps(ookla_result()))
    return folder


def printed_argv(folder) -> list[str]:
    return json.loads((folder / "argv.json").read_text())


def measure_ookla(engine=None, max_test_s: float = 20.0) -> SpeedTestResult:
    return measure(engine or OoklaCli(max_test_s=max_test_s), host_id="office-main", started=T0, tz="Asia/Kolkata",
                   max_test_s=max_test_s, detect=lambda host: ETHERNET)


def check_every_mapped_field(record: SpeedTestResult, printed: dict) -> None:
    """Each record field against the JSON the stand-in printed, computed here."""
    assert record.status == "ok" and record.error is None and record.engine == "ookla"
    assert record.schema_version == 2
    assert record.download_mbps == round(printed["download"]["bandwidth"] * 8 / 1e6, 3) == 98.765
    assert record.upload_mbps == round(printed["upload"]["bandwidth"] * 8 / 1e6, 3) == 41.005
    assert record.ping_ms == printed["ping"]["latency"]
    assert record.jitter_ms == printed["ping"]["jitter"]
    assert record.packet_loss_pct == printed["packetLoss"]
    for name, value in (("latency_idle_ms", printed["ping"]["latency"]),
                        ("latency_download_ms", printed["download"]["latency"]["iqm"]),
                        ("latency_upload_ms", printed["upload"]["latency"]["iqm"])):
        assert getattr(record, name) == value, name
    server = printed["server"]
    assert record.server is not None and record.client is not None
    assert (record.server.id, record.server.name, record.server.sponsor, record.server.country, record.server.host) == (
        str(server["id"]), server["location"], server["name"], server["country"], f"{server['host']}:{server['port']}")
    assert (record.client.ip, record.client.isp) == (printed["interface"]["externalIp"], printed["isp"])
    assert (record.bytes_received, record.bytes_sent) == (printed["download"]["bytes"], printed["upload"]["bytes"])
    assert record.engine_output is not None
    assert record.engine_output["share"] == printed["result"]["url"]
    assert record.engine_output["ookla"] == printed  # interface (internalIp, name, isVpn...) kept for audits


# ============================================================================ the registry

def test_the_registry_names_exactly_the_engines_a_config_may_name():
    assert tuple(engines.ENGINES) == ENGINE_NAMES
    made = engines.make_engine(CollectorSettings(secure=True, servers=(11,), timeout_s=5))
    assert isinstance(made, SpeedtestCli) and made.name == "speedtest-cli"
    assert (made.secure, made.servers, made.timeout_s) == (True, (11,), 5)
    ookla = engines.make_engine(CollectorSettings(servers=(4242,), max_test_s=90), "ookla")
    assert isinstance(ookla, OoklaCli) and ookla.name == "ookla" and callable(ookla.cancel)
    assert (ookla.server_id, ookla.max_test_s) == (4242, 90)
    assert ookla.command("speedtest") == ["speedtest", "--format=json", "--accept-license", "--accept-gdpr",
                                          "--server-id=4242"]


def test_an_unknown_engine_is_a_config_error_naming_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"'iperf3'.*speedtest-cli, ookla"):
        engines.make_engine(CollectorSettings(), "iperf3")
    path = tmp_path / "speedlab.toml"
    path.write_text('[collector]\nengine = "speedtest"\n')
    with pytest.raises(ConfigError, match=r"\[collector\] engine = 'speedtest'.*speedtest-cli, ookla"):
        load_config(path, env={})
    path.write_text('[collector]\nengine = "ookla"\nservers = [11, 22]\n')
    with pytest.raises(ConfigError, match="ookla engine tests against one server"):
        load_config(path, env={})
    path.write_text('[collector]\nengine = "ookla"\nservers = [11]\n')
    assert load_config(path, env={}).collector.engine == "ookla"
    assert load_config(None, env={}).collector.engine == "speedtest-cli"


def test_cli_refuses_an_unknown_engine_in_one_line_and_tests_nothing(tmp_path, capsys):
    (tmp_path / "s").mkdir()
    assert cli.main(["collect", "--engine", "nope", "--store", str(tmp_path / "s"), "--host-id", "h1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("speedlab collect: error: [collector] engine = 'nope'") and err.count("\n") == 1
    assert "speedtest-cli, ookla" in err and not list((tmp_path / "s").rglob("*.json"))


def test_collect_help_names_every_engine():
    text = cli.build_parser()._subparsers._group_actions[0].choices["collect"].format_help()  # type: ignore[union-attr]
    assert "--engine NAME" in text and all(name in text for name in ENGINE_NAMES)


# ============================================================================ ookla: pure parts

def test_the_documented_json_maps_to_speedtest_cli_shape_and_latency_fields():
    printed = ookla_result()
    output = results_from_ookla(printed)
    assert output["download"] == 12_345_678 * 8 and output["upload"] == 5_125_601 * 8  # bytes/s -> bit/s
    assert output["ping"] == 16.504
    assert latency_fields(printed) == {"latency_idle_ms": 16.504, "jitter_ms": 0.437,
                                       "latency_download_ms": 43.484, "latency_upload_ms": 132.715,
                                       "packet_loss_pct": 0.46}
    without = {k: v for k, v in printed.items() if k != "packetLoss"}
    assert latency_fields(without)["packet_loss_pct"] is None  # not measured: null, not 0
    assert latency_fields({**printed, "download": {"bandwidth": 1}})["latency_download_ms"] is None
    # the engine and the importer map the same JSON to the same fields (one table), each with its strictness
    names = [name for name, _ in OOKLA_PATHS]
    assert set(names) >= {"ping_ms", "jitter_ms", "packet_loss_pct", *LATENCY_FIELDS}
    engine = record_from_output(output, host_id="office-main", engine="ookla", started=T0, tz="UTC")
    (_, imported), = parse_ookla(json.dumps(printed).encode(), "office-main", "UTC").records
    assert {n: getattr(imported, n) for n in names} == {n: getattr(engine, n) for n in names} == {
        "ping_ms": 16.504, "latency_idle_ms": 16.504, "jitter_ms": 0.437, "latency_download_ms": 43.484,
        "latency_upload_ms": 132.715, "packet_loss_pct": 0.46}
    odd = {**printed, "ping": {"latency": "fast", "jitter": 0.437}}
    assert latency_fields(odd)["latency_idle_ms"] is None
    assert "ping.latency must be a number" in parse_ookla(json.dumps(odd).encode(), "h", "UTC").skipped[0].reason
    with pytest.raises(EngineFailure) as caught:
        results_from_ookla({**printed, "upload": {"bytes": 5}})
    assert caught.value.kind == "invalid_result" and "upload.bandwidth" in caught.value.message


def test_output_parsing_keeps_the_result_and_names_each_failure():
    line = json.dumps(ookla_result())
    assert parse_ookla_output(f"license text\n{line}\n", "", 0) == ookla_result()
    error = '{"type":"log","timestamp":"2026-12-01T15:33:20Z","message":"Limit reached: Too many requests ' \
            'received. Please try again later.","level":"error"}'
    for stdout, stderr in ((error, ""), ("", error)):
        with pytest.raises(EngineFailure) as caught:
            parse_ookla_output(stdout, stderr, 2)
        assert caught.value.kind == "http_429" and "Too many requests" in caught.value.message
        assert caught.value.output is not None and caught.value.output["returncode"] == 2
    with pytest.raises(EngineFailure, match="status 1: boom") as caught:
        parse_ookla_output("", "boom", 1)
    assert caught.value.kind == "engine_error"
    with pytest.raises(EngineFailure, match="printed no result: not json") as caught:
        parse_ookla_output("not json", "", 0)
    assert caught.value.kind == "engine_error"
    with pytest.raises(EngineFailure, match="not the Ookla Speedtest CLI") as caught:
        parse_ookla_output("", "speedtest: error: unrecognized arguments: --format=json", 2)
    assert caught.value.kind == "engine_missing"


@pytest.mark.parametrize(("message", "kind"), [
    ("Cannot open socket: Timeout occurred in connect.", "timeout"),
    ("Configuration - Couldn't resolve host name (HostNotFoundException)", "no_connectivity"),
    ("Cannot read from socket: Connection refused", "no_connectivity"),
    ("ServerSelector - Failed to find a working test server. (NoServers)", "no_server"),
    ("No servers defined (NoServersException)", "no_server"),
    ("Limit reached: Too many requests received.", "http_429"),
    ("You must accept the license agreement", "config_refused"),
    ("Something else entirely", "engine_error"),
])
def test_error_messages_become_failure_kinds(message, kind):
    assert classify_ookla_message(message) == kind


def test_find_ookla_skips_speedtest_clis_script_of_the_same_name(tmp_path):
    cli_dir, ookla_dir = tmp_path / "venv-bin", tmp_path / "usr-bin"
    cli_dir.mkdir()
    ookla_dir.mkdir()
    script = cli_dir / "speedtest"
    script.write_text("#!/usr/bin/python3\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
                      "from speedtest import main\nif __name__ == '__main__':\n    sys.exit(main())\n")
    script.chmod(0o755)
    assert find_ookla(str(cli_dir)) == (None, [str(script)])
    binary = ookla_dir / "speedtest"
    binary.write_bytes(b"\x7fELF\x02\x01\x01")
    binary.chmod(0o755)
    assert find_ookla(os.pathsep.join([str(cli_dir), str(ookla_dir)])) == (str(binary), [str(script)])


# ============================================================================ ookla: the real child process

def test_ookla_run_maps_every_field_of_what_the_cli_printed(stand_in):
    record = measure_ookla(OoklaCli(server_id=51155))
    check_every_mapped_field(record, ookla_result())
    assert printed_argv(stand_in) == ["--format=json", "--accept-license", "--accept-gdpr", "--server-id=51155"]
    assert SpeedTestResult.from_json(record.to_json()) == record


def test_a_result_without_packet_loss_stores_null_not_zero(stand_in, monkeypatch):
    printed = {k: v for k, v in ookla_result().items() if k != "packetLoss"}
    monkeypatch.setenv("FAKE_OOKLA_JSON", json.dumps(printed))
    record = measure_ookla()
    assert record.status == "ok" and record.packet_loss_pct is None
    assert record.latency_upload_ms == printed["upload"]["latency"]["iqm"]


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_an_error_line_is_a_failed_record_with_its_message(stand_in, monkeypatch, stream):
    message = "Configuration - Couldn't resolve host name (HostNotFoundException)"
    monkeypatch.setenv("FAKE_OOKLA_MODE", "error")
    monkeypatch.setenv("FAKE_OOKLA_STREAM", stream)
    monkeypatch.setenv("FAKE_OOKLA_MESSAGE", message)
    record = measure_ookla()
    assert record.status == "failed" and record.engine == "ookla" and record.download_mbps is None
    assert record.error is not None and record.error.kind == "no_connectivity" and message in record.error.message
    assert record.engine_output is not None and record.engine_output["returncode"] == 2
    assert message in record.engine_output[stream]


@pytest.mark.parametrize(("mode", "kind", "says"), [("garbage", "engine_error", "printed no result: <html>"),
                                                    ("exit", "engine_error", "status 139: Segmentation fault")])
def test_garbage_or_a_crash_is_a_failed_record_with_the_reason(stand_in, monkeypatch, mode, kind, says):
    monkeypatch.setenv("FAKE_OOKLA_MODE", mode)
    record = measure_ookla()
    assert record.status == "failed" and record.error is not None
    assert record.error.kind == kind and says in record.error.message


def test_a_missing_speedtest_is_a_failed_record_that_says_so(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    record = measure_ookla()
    assert record.status == "failed" and record.engine == "ookla" and record.error is not None
    assert record.error.kind == "engine_missing"
    assert "not on PATH" in record.error.message and "speedtest.net/apps/cli" in record.error.message


@pytest.mark.slow
def test_a_run_past_the_limit_is_a_timeout_record_and_the_cli_is_killed(stand_in, monkeypatch):
    monkeypatch.setenv("FAKE_OOKLA_MODE", "sleep")
    clock = time.monotonic()
    record = measure_ookla(max_test_s=1.0)
    assert time.monotonic() - clock < 5
    assert record.status == "failed" and record.error is not None and record.error.kind == "timeout"
    pid = int((stand_in / "pid").read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the stand-in (pid {pid}) still runs after the timeout")


# ============================================================================ end to end: collect --engine

def stored(store_dir) -> SpeedTestResult:
    (path,) = list(store_dir.rglob("test.json"))
    return SpeedTestResult.from_json(path.read_text())


def test_collect_engine_ookla_end_to_end_into_a_local_store(stand_in, tmp_path, capsys):
    store = tmp_path / "store"
    store.mkdir()
    status = cli.main(["collect", "--engine", "ookla", "--store", str(store), "--host-id", "office-main", "--json"])
    outcome = json.loads(capsys.readouterr().out)
    assert status == 0 and outcome["status"] == "stored", outcome
    record = stored(store)
    check_every_mapped_field(record, ookla_result())
    assert outcome["record"] == record.to_dict()
    assert printed_argv(stand_in) == ["--format=json", "--accept-license", "--accept-gdpr"]


def test_collector_engine_from_speedlab_toml(stand_in, tmp_path, capsys):
    store = tmp_path / "store"
    store.mkdir()
    config = tmp_path / "speedlab.toml"
    config.write_text('[collector]\nengine = "ookla"\nservers = [51155]\n')
    assert cli.main(["collect", "--config", str(config), "--store", str(store), "--host-id", "office-main"]) == 0
    assert capsys.readouterr().out.startswith("stored: stored 98.765/41.005 Mbit/s at host=office-main/")
    assert printed_argv(stand_in)[-1] == "--server-id=51155"
    check_every_mapped_field(stored(store), ookla_result())


def test_a_missing_binary_is_stored_as_a_failed_ookla_record(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    store = tmp_path / "store"
    store.mkdir()
    config = Config(store=str(store), host_id="office-main", sections={"collector": {"engine": "ookla"}})
    outcome = collect_once(config, now=T0, detect=lambda host: ETHERNET)
    assert outcome.status == "stored" and outcome.record is not None
    record = stored(store)
    assert record == outcome.record and record.engine == "ookla" and record.status == "failed"
    assert record.error is not None and record.error.kind == "engine_missing"


@pytest.mark.slow
def test_speedlab_up_runs_the_configured_engine(stand_in, tmp_path):
    from speedlab.up import run_up
    from tests.test_up import ManualTime, ist
    config = Config(store=str(tmp_path / "data"), host_id="office-main", sections={"collector": {"engine": "ookla"}})
    clock = ManualTime(ist(2026, 1, 1, 10, 20))
    report = run_up(config, clock=clock, stop=clock, serve=False, max_cycles=1, echo=lambda s: None)
    assert report.cycles[0]["collect"] == "stored", report.cycles
    check_every_mapped_field(stored(tmp_path / "data"), ookla_result())
