"""The collector: engine output -> record, failure kinds, the slot guard, races, outages.

Real speedtest-cli runs go through ``tests/fake_speedtest.py`` on 127.0.0.1 (``http_proxy``);
many-run tests use :class:`fake_speedtest.QuickEngine`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
from datetime import datetime, timedelta, timezone
from typing import ClassVar

import pytest

from speedlab import cli, collect, engines
from speedlab.collect import collect_once, flush_spool, store_result
from speedlab.config import Config, load_config
from speedlab.engine import classify_failure, record_from_output, run_engine
from speedlab.errors import ConfigError, EngineFailure, InvalidRecord, SpoolError
from speedlab.layout import legacy_raw_name, raw_key, raw_slot_prefix
from speedlab.netinfo import ConnectionInfo
from speedlab.records import SpeedTestResult
from speedlab.settings import CollectorSettings
from speedlab.store import LocalStore
from speedlab.store_s3 import S3Store
from tests.helpers.fake_speedtest import FakeSpeedtest, QuickEngine
from tests.helpers.servers import free_port, local_env

IST = timezone(timedelta(hours=5, minutes=30))
T0 = datetime(2025, 12, 29, 8, 33, 12, tzinfo=timezone.utc)  # 14:03:12 IST, slot 14:00
SLOT0 = datetime(2025, 12, 29, 14, 0, tzinfo=IST)
KEY0 = "host=home-primary/year=2025/month=202512/day=20251229/hour=2025122914/minute=00/test.json"
ETHERNET = ConnectionInfo("Ethernet", "eth0")


def no_detect(host):
    return ETHERNET


def objects(store, prefix="host=home-primary/"):
    return [info.key for info in store.list("vd-speed-test", prefix)]


def read(store, key):
    return SpeedTestResult.from_json(store.get("vd-speed-test", key))


# ============================================================================ pure parts

def test_record_from_output_maps_every_field():
    output = QuickEngine(download_mbps=187.4, upload_mbps=94.1, ping_ms=11.8)()
    record = record_from_output(output, host_id="home-primary", engine="speedtest-cli", started=T0,
                                tz="Asia/Kolkata", duration_s=21.34, connection=ETHERNET)
    assert record.to_dict() == {
        "schema_version": 2, "host_id": "home-primary", "engine": "speedtest-cli", "status": "ok",
        "error": None, "timestamp_utc": "2025-12-29T08:33:12Z",
        "timestamp_local": "2025-12-29T14:03:12+05:30", "slot": "2025-12-29T14:00:00+05:30",
        "download_mbps": 187.4, "upload_mbps": 94.1, "ping_ms": 11.8, "jitter_ms": None,
        "packet_loss_pct": None, "latency_idle_ms": None, "latency_download_ms": None, "latency_upload_ms": None,
        "server": {"id": "4242", "name": "Quick", "sponsor": "speedlab tests", "country": "India",
                   "host": "127.0.0.1:9", "distance_km": 1.5},
        "client": {"ip": "203.0.113.7", "isp": "Impersonated ISP"},
        "connection_type": "Ethernet", "interface": "eth0", "bytes_sent": 1000, "bytes_received": 2000,
        "duration_s": 21.34, "engine_output": output}


def test_bits_per_second_become_megabits():
    output = {**QuickEngine()(), "download": 49_728_603.98, "upload": 20_004_605.55}
    record = record_from_output(output, host_id="h1", engine="e", started=T0, tz="UTC")
    assert (record.download_mbps, record.upload_mbps) == (49.729, 20.005)
    assert record.slot == "2025-12-29T08:30:00+00:00"


def test_a_direction_without_data_is_a_failed_record_that_keeps_the_numbers():
    output = {**QuickEngine()(), "download": 0.0}
    record = record_from_output(output, host_id="h1", engine="e", started=T0, tz="UTC")
    assert record.status == "failed" and record.error.kind == "transfer_failed"
    assert "download" in record.error.message and record.download_mbps is None
    assert record.engine_output["upload"] == 50e6


def test_an_absurd_result_is_a_failed_record_not_an_exception():
    output = {**QuickEngine()(), "download": 5e12}  # 5 Tbit/s
    record = record_from_output(output, host_id="h1", engine="e", started=T0, tz="UTC")
    assert record.error.kind == "invalid_result" and "impossible" in record.error.message
    assert record.engine_output["download"] == 5e12
    assert record_from_output("nonsense", host_id="h1", engine="e", started=T0, tz="UTC").error.kind == "engine_error"


class ConfigRetrievalError(Exception):
    """Named like speedtest-cli's (classification goes by the chain, not by import)."""


class NoMatchedServers(Exception):
    pass


def _http_error(code):
    return urllib.error.HTTPError("http://www.speedtest.net/speedtest-config.php?x=1", code, "no", {}, None)


@pytest.mark.parametrize("exc, kind", [
    (ConfigRetrievalError(_http_error(403)), "http_403"),
    (ConfigRetrievalError(_http_error(503)), "http_503"),
    (ConfigRetrievalError(urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))), "no_connectivity"),
    (urllib.error.URLError(socket.gaierror(-2, "Name or service not known")), "no_connectivity"),
    (ConfigRetrievalError(TimeoutError("timed out")), "timeout"),
    (ConfigRetrievalError("malformed"), "config_refused"),
    (NoMatchedServers(), "no_server"),
    (EngineFailure("no_server", "empty list"), "no_server"),
    (ValueError("something else"), "engine_error"),
])
def test_classify_failure(exc, kind):
    error = classify_failure(exc)
    assert error.kind == kind and error.message


def test_settings_from_the_collector_table(tmp_path):
    config = Config(store=str(tmp_path), host_id="h1", sections={"collector": {
        "secure": True, "servers": [12345, 678], "timeout_s": 5, "max_test_s": 60,
        "spool_max_entries": 10, "start_offset_minutes": 4}})
    assert config.collector == CollectorSettings(True, (12345, 678), 5, 60, 10, 4)
    assert config.collector.with_overrides(secure=False, servers=[9]).servers == (9,)
    assert Config(store=str(tmp_path), host_id="h1").collector == CollectorSettings()


@pytest.mark.parametrize("table, words", [
    ({"secure": "yes"}, "true or false"), ({"servers": ["abc"]}, "server ids"),
    ({"max_test_s": 0}, "max_test_s"), ({"spool_max_entries": 0}, "spool_max_entries"),
    ({"start_offset_minutes": 15}, "0 to 14"), ({"bogus": 1}, "unknown key"),
])
def test_bad_settings_are_config_errors(tmp_path, table, words):
    with pytest.raises(ConfigError, match=words):
        Config(store=str(tmp_path), host_id="h1", sections={"collector": table})


def test_run_engine_overrun_cancels_and_reports_timeout():
    release = threading.Event()

    class Slow:
        cancelled = False

        def __call__(self):
            release.wait(5)
            return {}

        def cancel(self):
            Slow.cancelled = True
            release.set()
    with pytest.raises(EngineFailure) as info:
        run_engine(Slow(), 0.2)
    assert info.value.kind == "timeout" and Slow.cancelled


# ============================================================================ the real engine

@pytest.mark.slow
def test_real_speedtest_cli_measures_the_throttle(tmp_path):
    """speedtest-cli's own code against the impersonation at 50/20 Mbit/s, through the CLI."""
    store_dir = tmp_path / "store"
    store_dir.mkdir()  # a store is made on purpose (mkdir, `speedlab up`), never by `collect`
    with FakeSpeedtest(testlength_s=2, down_mbps=50, up_mbps=20) as fake:
        done = subprocess.run(
            [sys.executable, "-m", "speedlab.cli", "collect", "--store", str(store_dir),
             "--host-id", "home-primary", "--server", "4242", "--json"],
            env=local_env(http_proxy=fake.proxy_url), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "stored"
    record = read(LocalStore(store_dir), outcome["key"])
    assert record.ok and record.engine == "speedtest-cli"
    assert record.download_mbps == pytest.approx(50, rel=0.10)
    assert record.upload_mbps == pytest.approx(20, rel=0.10)
    assert record.server.id == "4242" and record.server.host == fake.host
    assert record.client.isp == "Impersonated ISP"
    assert record.engine_output["download"] == pytest.approx(record.download_mbps * 1e6, abs=1e3)
    assert record.bytes_received > 0 and record.bytes_sent > 0
    assert outcome["key"] == raw_key("home-primary", datetime.fromisoformat(record.slot))
    assert fake.hits["config"] == 1
    # speedtest-cli's 3 server probes, speedlab's 10 idle ones, then ~10 a second during each transfer
    assert [loaded for loaded, _ in fake.latency_log[:13]] == [False] * 13
    assert sum(loaded for loaded, _ in fake.latency_log) >= 10
    assert record.latency_idle_ms is not None and record.jitter_ms is not None
    assert record.latency_download_ms is not None and record.latency_upload_ms is not None
    assert record.engine_output["probes"]["idle"]["sent"] == 10


@pytest.fixture
def proxied(monkeypatch):
    """An impersonation reached through http_proxy, set only for this test."""
    with FakeSpeedtest(testlength_s=1, server_ids=(4242, 4343)) as fake:
        monkeypatch.setenv("http_proxy", fake.proxy_url)
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        yield fake


def test_impersonation_stopped_gives_a_stored_failed_record(proxied, local_store, config_for):
    proxied.stop()
    outcome = collect_once(config_for(local_store), now=T0, detect=no_detect)
    assert outcome.status == "stored" and outcome.key == KEY0
    record = read(local_store, KEY0)
    assert record.status == "failed" and record.error.kind == "no_connectivity"
    assert "Connection refused" in record.error.message
    assert record.download_mbps is None and record.engine == "speedtest-cli"


@pytest.mark.parametrize("setup, kind", [
    (lambda fake: fake.set_error("config", 403), "http_403"),
    (lambda fake: fake.set_error("servers", 500), "no_server"),
    (lambda fake: fake.set_error("latency", 500), "no_server"),
])
def test_refusals_are_stored_with_their_kind(proxied, local_store, config_for, setup, kind):
    setup(proxied)
    outcome = collect_once(config_for(local_store), now=T0, detect=no_detect)
    assert outcome.status == "stored" and read(local_store, KEY0).error.kind == kind


def test_unknown_server_id_is_no_server(proxied, local_store, config_for):
    outcome = collect_once(config_for(local_store), now=T0, servers=[999], detect=no_detect)
    assert outcome.record.error.kind == "no_server"


def test_a_hung_server_is_a_timeout_record(proxied, local_store, config_for):
    proxied.set_delay(3, "config")
    config = config_for(local_store, sections={"collector": {"timeout_s": 0.5}})
    outcome = collect_once(config, now=T0, detect=no_detect)
    assert outcome.record.error.kind == "timeout"


@pytest.mark.slow
def test_configured_server_is_the_one_tested(proxied, local_store, config_for):
    config = config_for(local_store, sections={"collector": {"servers": [4343]}})
    seen = []
    outcome = collect_once(config, now=T0, detect=lambda host: seen.append(host) or ETHERNET)
    assert outcome.status == "stored" and outcome.record.ok
    assert outcome.record.server.id == "4343" and outcome.record.server.name == "Loopback 2"
    assert seen == [proxied.host]  # the link is looked up towards the server that was tested
    assert outcome.record.connection_type == "Ethernet" and outcome.record.interface == "eth0"


# ============================================================================ exactly once

def test_slot_guard_recognises_the_original_collectors_files(local_store, config_for):
    legacy = raw_slot_prefix("home-primary", SLOT0) + legacy_raw_name("ookla", 0, 1767000192)
    local_store.put("vd-speed-test", legacy, b'{"download": 1}')
    engine = QuickEngine()
    outcome = collect_once(config_for(local_store), now=T0, engine=engine, detect=no_detect)
    assert outcome.status == "slot_filled" and outcome.existing == [legacy] and outcome.record is None
    assert engine.calls == 0 and objects(local_store) == [legacy]
    later = collect_once(config_for(local_store), now=T0 + timedelta(minutes=15), engine=engine, detect=no_detect)
    assert later.status == "stored" and engine.calls == 1


def test_second_run_in_a_slot_does_not_test(store, config_for):
    engine = QuickEngine()
    first = collect_once(config_for(store), now=T0, engine=engine, detect=no_detect)
    second = collect_once(config_for(store), now=T0 + timedelta(minutes=10), engine=engine, detect=no_detect)
    assert (first.status, second.status, engine.calls) == ("stored", "slot_filled", 1)
    assert objects(store) == [KEY0] and read(store, KEY0) == first.record


@pytest.mark.slow
def test_sixteen_concurrent_runs_leave_one_result(store, config_for):
    """All 16 pass the slot guard (the engine waits for all of them), so the write decides."""
    barrier = threading.Barrier(16, timeout=30)
    engines = [QuickEngine(download_mbps=100 + i, before=barrier.wait) for i in range(16)]
    config = config_for(store)
    outcomes = [None] * 16

    def run(i):
        outcomes[i] = collect_once(config, now=T0 + timedelta(seconds=i), engine=engines[i], detect=no_detect)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = sorted(o.status for o in outcomes)
    assert statuses == ["slot_filled"] * 15 + ["stored"]
    assert all(o.record is not None for o in outcomes)  # every run had measured: the put refused them
    assert objects(store) == [KEY0]
    winner = next(o for o in outcomes if o.status == "stored")
    assert read(store, KEY0) == winner.record


def test_store_result_uses_the_same_checks(store, config_for):
    config = config_for(store)
    record = record_from_output(QuickEngine()(), host_id="home-primary", engine="demo", started=T0,
                                tz="Asia/Kolkata")
    assert store_result(config, record).status == "stored"
    assert store_result(config, record, store=store).status == "slot_filled"
    other = record_from_output(QuickEngine()(), host_id="office-main", engine="demo", started=T0, tz="Asia/Kolkata")
    store.put("vd-speed-test", raw_slot_prefix("office-main", SLOT0) + legacy_raw_name("ookla", 0, 1), b"{}")
    assert store_result(config, other).status == "slot_filled"
    broken = record_from_output(QuickEngine()(), host_id="home-primary", engine="demo", started=T0 + timedelta(hours=1),
                                tz="Asia/Kolkata")
    object.__setattr__(broken, "download_mbps", -5.0)
    with pytest.raises(InvalidRecord, match="impossible"):
        store_result(config, broken)
    assert objects(store) == [KEY0]


# ============================================================================ outages

def _down_local(tmp_path):
    """A local store whose root cannot exist: a parent is a regular file."""
    (tmp_path / "blocker").write_text("a file where the store's parent folder should be")
    return LocalStore(tmp_path / "blocker" / "store")


def test_local_store_down_then_back_loses_nothing(tmp_path, config_for):
    down = _down_local(tmp_path)
    config = config_for(down)
    slots = [T0 + timedelta(minutes=15 * i) for i in range(3)]
    outcomes = [collect_once(config, now=t, engine=QuickEngine(download_mbps=100 + i), detect=no_detect)
                for i, t in enumerate(slots)]
    assert [o.status for o in outcomes] == ["spooled"] * 3
    spool_dir = config.state_path / "spool"
    assert len(list(spool_dir.glob("*.json"))) == 3
    # while still down, a second run in a spooled slot does not test again
    engine = QuickEngine()
    again = collect_once(config, now=slots[2] + timedelta(minutes=5), engine=engine, detect=no_detect)
    assert again.status == "slot_filled" and engine.calls == 0
    # a corrupt entry joins the spool (a crash mid-write on a disk without fsync guarantees)
    (spool_dir / "20251229T0800Z+home-primary+deadbeef.json").write_text('{"schema_version": 1, "host_')

    (tmp_path / "blocker").unlink()  # the store comes back (the disk is mounted again)
    (tmp_path / "blocker" / "store").mkdir(parents=True)
    back = collect_once(config, now=T0 + timedelta(minutes=45), engine=QuickEngine(download_mbps=200),
                        detect=no_detect)
    assert back.status == "stored" and back.flushed == 3 and back.rejected == 1
    store = LocalStore(tmp_path / "blocker" / "store")
    keys = objects(store)
    assert keys == [raw_key("home-primary", t) for t in slots + [T0 + timedelta(minutes=45)]]
    assert [read(store, k).download_mbps for k in keys] == [100, 101, 102, 200]
    assert [read(store, k) for k in keys[:3]] == [o.record for o in outcomes]
    assert list(spool_dir.glob("*.json")) == []
    assert [p.name for p in (spool_dir / "rejected").glob("*.json")] == ["20251229T0800Z+home-primary+deadbeef.json"]
    warnings = [line for line in _log_lines(config) if line["level"] == "warning"]
    assert any("corrupt spool entry set aside" in line["message"] for line in warnings)


def _log_lines(config):
    path = config.state_path / "logs" / "collector.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_s3_down_then_back_loses_nothing(s3_store, config_for, monkeypatch):
    closed = S3Store(endpoint_url=f"http://127.0.0.1:{free_port()}", region="us-east-1",
                     access_key_id="testing", secret_access_key="testing", max_attempts=1)
    monkeypatch.setattr(Config, "open_store", lambda self: closed)
    config = config_for(s3_store)
    slots = [T0 + timedelta(minutes=15 * i) for i in range(3)]
    statuses = [collect_once(config, now=t, engine=QuickEngine(download_mbps=100 + i), detect=no_detect).status
                for i, t in enumerate(slots)]
    assert statuses == ["spooled"] * 3
    monkeypatch.setattr(Config, "open_store", lambda self: s3_store)
    report = flush_spool(config)  # speedlab collect --flush: no test
    assert (len(report.uploaded), report.remaining, report.error) == (3, 0, None)
    assert [read(s3_store, k).download_mbps for k in objects(s3_store)] == [100, 101, 102]
    assert objects(s3_store) == [raw_key("home-primary", t) for t in slots]


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **kwargs):
        yield self.data


class RefusingLocalStore(LocalStore):
    """A local store that denies writes under ``refused_prefix`` the way S3 does (CredentialsRefused)."""

    refused_prefix = "host=office-main/"

    def put_if_absent(self, bucket, key, data):
        if key.startswith(self.refused_prefix):
            from speedlab.errors import CredentialsRefused
            raise CredentialsRefused(f"{self.url} refused access to {key} (AccessDenied)")
        return super().put_if_absent(bucket, key, data)


def refusing(store, host="office-main"):
    """``store`` refusing every write under ``host=HOST/``: S3 answers a real 403 AccessDenied."""
    if isinstance(store, LocalStore):
        return RefusingLocalStore(store.root)
    from botocore.awsrequest import AWSResponse

    def deny(request, **kwargs):
        if urllib.parse.unquote(request.url.split("?")[0]).split("/vd-speed-test/", 1)[-1].startswith(f"host={host}/"):
            body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                    b'<Message>Access Denied</Message></Error>')
            return AWSResponse(request.url, 403, {"Content-Type": "application/xml"}, _Body(body))
        return None
    store.client.meta.events.register("before-send.s3.PutObject", deny)
    return store


def test_a_spool_entry_the_store_refuses_does_not_keep_later_results_out(store, config_for, monkeypatch):
    """The refused entry (another host's id) is set aside; the rest and the new result are stored."""
    config = config_for(store)
    refuser = refusing(store)
    monkeypatch.setattr(Config, "open_store", lambda self: refuser)
    spool = collect.open_spool(config)
    foreign = record_from_output(QuickEngine()(), host_id="office-main", engine="e", started=T0 - timedelta(hours=1),
                                 tz="Asia/Kolkata")
    own = record_from_output(QuickEngine(download_mbps=50)(), host_id="home-primary", engine="e",
                             started=T0 - timedelta(minutes=30), tz="Asia/Kolkata")
    foreign_path, _ = spool.add(foreign)
    spool.add(own)
    outcome = collect_once(config, now=T0, engine=QuickEngine(download_mbps=200), detect=no_detect)
    assert (outcome.status, outcome.flushed, outcome.refused, outcome.rejected) == ("stored", 1, 1, 0)
    assert objects(store) == [raw_key("home-primary", own.slot_start), KEY0]
    assert objects(store, "host=office-main/") == []
    assert len(spool) == 0 and [p.name for p in spool.rejected_folder.glob("*.json")] == [foreign_path.name]
    assert "AccessDenied" in json.loads(spool.reasons_log.read_text())["reason"]
    assert any("the store refused a spool entry" in line["message"] for line in _log_lines(config))
    later = collect_once(config, now=T0 + timedelta(minutes=15), engine=QuickEngine(), detect=no_detect)
    assert (later.status, later.refused) == ("stored", 0)


def test_the_store_refusing_this_hosts_own_result_sets_it_aside_as_refused(store, config_for, monkeypatch, capsys):
    config = config_for(store, host_id="office-main")
    refuser = refusing(store)
    monkeypatch.setattr(Config, "open_store", lambda self: refuser)
    outcome = collect_once(config, now=T0, engine=QuickEngine(download_mbps=77), detect=no_detect)
    spool = collect.open_spool(config)
    assert outcome.status == "refused" and "AccessDenied" in outcome.message
    assert len(spool) == 0  # not retried: it would be refused again
    kept = list(spool.rejected_folder.glob("*.json"))
    assert len(kept) == 1 and SpeedTestResult.from_json(kept[0].read_bytes()) == outcome.record
    assert objects(store, "host=office-main/") == []


def test_cli_flush_exits_non_zero_when_the_store_refused_an_entry(tmp_path, monkeypatch, capsys):
    root = tmp_path / "s"
    root.mkdir()
    monkeypatch.setattr(Config, "open_store", lambda self: RefusingLocalStore(root))
    config = load_config(env={}, store=str(root), host_id="home-primary")
    spool = collect.open_spool(config)
    spool.add(record_from_output(QuickEngine()(), host_id="office-main", engine="e", started=T0, tz="Asia/Kolkata"))
    spool.add(record_from_output(QuickEngine()(), host_id="home-primary", engine="e", started=T0, tz="Asia/Kolkata"))
    status = cli.main(["collect", "--flush", "--store", str(root), "--host-id", "home-primary"])
    out, err = capsys.readouterr()
    assert status == 1
    assert "1 uploaded" in out and "1 refused by the store" in out and "0 waiting" in out
    assert err.count("\n") == 1 and "spool entry refused by the store, set aside" in err and "AccessDenied" in err
    assert cli.main(["collect", "--flush", "--store", str(root), "--host-id", "home-primary"]) == 0  # nothing left


def test_spool_bound_drops_are_counted_and_logged(tmp_path, config_for):
    config = config_for(_down_local(tmp_path), sections={"collector": {"spool_max_entries": 2}})
    outcomes = [collect_once(config, now=T0 + timedelta(minutes=15 * i), engine=QuickEngine(), detect=no_detect)
                for i in range(3)]
    assert [o.dropped for o in outcomes] == [0, 0, 1]
    assert any("spool full (2 entries): dropped" in line["message"] for line in _log_lines(config))
    dropped = json.loads((config.state_path / "spool" / "dropped.jsonl").read_text())
    assert dropped["slot"] == "2025-12-29T14:00:00+05:30" and dropped["download_mbps"] == 100.0


def test_flush_when_the_slot_was_filled_meanwhile(local_store, config_for, tmp_path):
    config = config_for(local_store)
    spool = collect.open_spool(config)
    spooled = record_from_output(QuickEngine(download_mbps=1)(), host_id="home-primary", engine="e",
                                 started=T0, tz="Asia/Kolkata")
    spool.add(spooled)
    winner = record_from_output(QuickEngine(download_mbps=2)(), host_id="home-primary", engine="e",
                                started=T0 + timedelta(seconds=5), tz="Asia/Kolkata")
    store_result(config, winner)
    report = flush_spool(config)
    assert len(report.already_filled) == 1 and len(spool) == 0
    assert read(local_store, KEY0).download_mbps == 2


# ============================================================================ the command line

class FakeCli(QuickEngine):
    """Stands in for SpeedtestCli in CLI tests; remembers how it was built."""

    made: ClassVar[list] = []

    def __init__(self, secure=False, servers=(), timeout_s=10.0):
        super().__init__()
        FakeCli.made.append((secure, tuple(servers), timeout_s))


def test_cli_collect_passes_flags_and_prints_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(engines.ENGINES, "speedtest-cli", lambda s: FakeCli(s.secure, s.servers, s.timeout_s))
    monkeypatch.setattr(collect, "detect_connection", no_detect)
    FakeCli.made.clear()
    (tmp_path / "s").mkdir()
    status = cli.main(["collect", "--store", str(tmp_path / "s"), "--host-id", "office-main",
                       "--secure", "--server", "11", "--server", "22", "--json"])
    assert status == 0 and FakeCli.made == [(True, (11, 22), 10.0)]
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["status"] == "stored" and outcome["key"].startswith("host=office-main/")
    assert outcome["record"]["download_mbps"] == 100.0
    status = cli.main(["collect", "--store", str(tmp_path / "s"), "--host-id", "office-main"])
    assert status == 0 and capsys.readouterr().out.startswith("slot_filled: slot already filled")


def test_cli_flush(tmp_path, capsys):
    (tmp_path / "s").mkdir()
    status = cli.main(["collect", "--flush", "--store", str(tmp_path / "s"), "--json"])
    assert status == 0
    assert json.loads(capsys.readouterr().out) == {"uploaded": 0, "already_filled": 0, "rejected": [],
                                                   "refused": [], "remaining": 0, "error": None}


def test_cli_bad_collector_table_is_one_line(tmp_path, capsys):
    config = tmp_path / "speedlab.toml"
    config.write_text('[collector]\nservers = ["x"]\n')
    assert cli.main(["collect", "--config", str(config), "--store", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("speedlab collect: error: [collector] servers") and err.count("\n") == 1


def test_store_and_spool_both_unwritable_is_an_error_with_the_record_logged(tmp_path, config_for):
    (tmp_path / "state-file").write_text("not a folder")
    config = config_for(_down_local(tmp_path), state_dir=str(tmp_path / "state-file" / "state"))
    logged = []

    class Log:
        def __getattr__(self, level):
            return lambda message, **fields: logged.append((level, message, fields))
    with pytest.raises(SpoolError, match="cannot write the spool entry"):
        collect_once(config, now=T0, engine=QuickEngine(download_mbps=123), log=Log(), detect=no_detect)
    level, message, fields = logged[-1]
    assert level == "end" and "result NOT saved" in message and fields["record"]["download_mbps"] == 123


def test_a_spooled_result_dated_after_now_is_set_aside_not_stored(local_store, config_for):
    """A host whose clock once ran years ahead must not store a result that hides it going silent."""
    config = config_for(local_store)
    spool = collect.open_spool(config)
    future = record_from_output(QuickEngine()(), host_id="home-primary", engine="e",
                                started=datetime(2030, 6, 1, 4, 31, tzinfo=timezone.utc), tz="Asia/Kolkata")
    future_path, _ = spool.add(future)
    outcome = collect_once(config, now=T0, engine=QuickEngine(), detect=no_detect)
    assert (outcome.status, outcome.flushed, outcome.rejected) == ("stored", 0, 1)
    assert objects(local_store) == [KEY0]
    assert [p.name for p in spool.rejected_folder.glob("*.json")] == [future_path.name]
    assert "is after now (2025-12-29T08:33:12Z)" in json.loads(spool.reasons_log.read_text())["reason"]
    with pytest.raises(InvalidRecord, match="a result from the future"):
        future.validate(now=T0)
    future.validate()  # without a clock, the record itself is consistent


def test_collect_with_a_missing_local_store_folder_errors_or_spools_and_creates_nothing(tmp_path, capsys,
                                                                                        monkeypatch):
    """A mistyped --store is one line and exit 1 for `collect` and `collect --flush`, and nothing is
    created; with a state_dir outside the store (an unmounted disk), the result is spooled there."""
    monkeypatch.setitem(engines.ENGINES, "speedtest-cli", lambda s: FakeCli(s.secure, s.servers, s.timeout_s))
    monkeypatch.setattr(collect, "detect_connection", no_detect)
    missing = tmp_path / "mistyped" / "store"
    for argv in (["collect"], ["collect", "--flush"]):
        assert cli.main([*argv, "--store", str(missing), "--host-id", "office-main"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"local store folder {missing} does not exist" in err[0]
    assert not (tmp_path / "mistyped").exists()
    config = load_config(env={}, store=str(missing), host_id="office-main", state_dir=str(tmp_path / "state"))
    outcome = collect_once(config, now=T0, engine=QuickEngine(), detect=no_detect)
    assert outcome.status == "spooled" and "does not exist" in outcome.message
    assert len(list((tmp_path / "state" / "spool").glob("*.json"))) == 1
    assert not (tmp_path / "mistyped").exists()
