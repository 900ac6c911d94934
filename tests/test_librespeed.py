"""The ``librespeed`` engine against a LibreSpeed impersonation on 127.0.0.1 (tests/helpers/librespeed_server.py).

The server throttles each direction with a token bucket shared by all connections; the engine's
figures are checked against the rates the test set and against the bytes the server counted.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime, timezone

import pytest

from speedlab import cli, engine_librespeed, engines
from speedlab.collect import collect_once
from speedlab.config import Config, load_config
from speedlab.engine import measure
from speedlab.engine_librespeed import LibreSpeed, backend_urls, parse_get_ip
from speedlab.errors import ConfigError
from speedlab.netinfo import ConnectionInfo
from speedlab.records import SpeedTestResult
from speedlab.settings import CollectorSettings
from tests.helpers.librespeed_server import LibreSpeedServer

T0 = datetime(2026, 12, 1, 15, 33, 12, tzinfo=timezone.utc)
ETHERNET = ConnectionInfo("Ethernet", "eth0")


def measure_librespeed(engine: LibreSpeed, max_test_s: float = 30.0) -> SpeedTestResult:
    return measure(engine, host_id="office-main", started=T0, tz="Asia/Kolkata", max_test_s=max_test_s,
                   detect=lambda host: ETHERNET)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ============================================================================ pure parts and settings

def test_backend_urls_follow_librespeeds_layout():
    urls = backend_urls("http://speed.example:8080/")
    assert urls == {"download": "http://speed.example:8080/backend/garbage.php",
                    "upload": "http://speed.example:8080/backend/empty.php",
                    "ping": "http://speed.example:8080/backend/empty.php",
                    "ip": "http://speed.example:8080/backend/getIP.php"}
    assert backend_urls("https://h/speedtest")["download"] == "https://h/speedtest/backend/garbage.php"
    assert backend_urls("https://h/x/backend/")["ping"] == "https://h/x/backend/empty.php"
    with pytest.raises(ValueError, match="not an http"):
        backend_urls("speed.example:8080")


def test_get_ip_answers_old_and_new():
    assert parse_get_ip('{"processedString": "203.0.113.9 - Example Broadband, IN", "rawIspInfo": ""}') == {
        "ip": "203.0.113.9", "isp": "Example Broadband, IN"}
    assert parse_get_ip("198.51.100.4\n") == {"ip": "198.51.100.4", "isp": None}
    assert parse_get_ip("") == {"ip": None, "isp": None}


def test_librespeed_url_is_checked_at_config_load(tmp_path):
    path = tmp_path / "speedlab.toml"
    path.write_text('[collector]\nengine = "librespeed"\nlibrespeed_url = "http://speed.example:8080/"\n')
    collector = load_config(path, env={}).collector
    assert (collector.engine, collector.librespeed_url) == ("librespeed", "http://speed.example:8080/")
    made = engines.make_engine(collector)
    assert isinstance(made, LibreSpeed) and made.name == "librespeed" and made.url == "http://speed.example:8080/"
    for bad in ('"speed.example:8080"', '"ftp://speed.example/"', "8080", '"http://"'):
        path.write_text(f'[collector]\nengine = "librespeed"\nlibrespeed_url = {bad}\n')
        with pytest.raises(ConfigError, match=r"\[collector\] librespeed_url = .* must be an http\(s\) URL"):
            load_config(path, env={})


# ============================================================================ failures are records

def test_a_missing_url_is_a_failed_record_that_says_so(tmp_path):
    record = measure_librespeed(engines.make_engine(CollectorSettings(engine="librespeed")))
    assert record.status == "failed" and record.engine == "librespeed"
    assert record.error is not None and record.error.kind == "no_server"
    assert "[collector] librespeed_url" in record.error.message
    store = tmp_path / "store"  # and through the collector: stored, not raised
    store.mkdir()
    config = Config(store=str(store), host_id="office-main", sections={"collector": {"engine": "librespeed"}})
    outcome = collect_once(config, now=T0, detect=lambda host: ETHERNET)
    assert outcome.status == "stored" and outcome.record is not None and outcome.record.status == "failed"
    assert outcome.record.error is not None and "librespeed_url" in outcome.record.error.message


def test_a_server_that_is_down_is_a_failed_record_with_the_reason():
    url = f"http://127.0.0.1:{free_port()}/"
    record = measure_librespeed(LibreSpeed(url, timeout_s=2))
    assert record.status == "failed" and record.engine == "librespeed" and record.download_mbps is None
    assert record.error is not None and record.error.kind == "no_connectivity"
    assert f"the LibreSpeed server {url} did not answer" in record.error.message
    assert "refused" in record.error.message.lower()


def test_a_server_that_is_not_librespeed_and_a_failing_download_are_named():
    with LibreSpeedServer() as server:
        server.set_error("empty", 404)
        record = measure_librespeed(LibreSpeed(server.url, timeout_s=2))
        assert record.status == "failed" and record.error is not None and record.error.kind == "no_server"
        assert "is not a LibreSpeed server: HTTP 404" in record.error.message
        assert server.hits["garbage"] == 0
        server.set_error("empty", 0)
        server.set_error("garbage", 500)
        record = measure_librespeed(LibreSpeed(server.url, duration_s=0.3, idle_probes=2))
        assert record.status == "failed" and record.error is not None and record.error.kind == "transfer_failed"
        assert "the download from" in record.error.message and "HTTP 500" in record.error.message


# ============================================================================ accuracy through the real engine

@pytest.mark.slow
def test_shaped_100_down_50_up_is_measured_within_5_percent():
    with LibreSpeedServer(down_mbps=100, up_mbps=50) as server:
        engine = LibreSpeed(server.url, duration_s=2.0, download_warmup_s=0.5, upload_warmup_s=0.7)
        record = measure_librespeed(engine)
        assert record.status == "ok", record.error
        assert record.download_mbps == pytest.approx(100, rel=0.05)
        assert record.upload_mbps == pytest.approx(50, rel=0.05)
        run = record.engine_output["librespeed"]
        assert (run["download"]["streams"], run["upload"]["streams"]) == (6, 3)
        # the bytes the engine counts are the bytes the server moved (send buffers left out)
        assert record.bytes_received == pytest.approx(server.bytes_sent, rel=0.05, abs=1_000_000)
        assert record.bytes_sent == pytest.approx(server.bytes_received, rel=0.05, abs=1_000_000)
        assert server.hits["garbage"] >= 6 and server.hits["empty"] > 3 + 10
    probes = record.engine_output["probes"]
    assert record.ping_ms == record.latency_idle_ms == probes["idle"]["median_ms"]
    assert probes["idle"]["sent"] == 10 and probes["download"]["sent"] >= 10 and probes["upload"]["sent"] >= 10
    assert record.latency_download_ms == probes["download"]["median_ms"] is not None
    assert record.latency_upload_ms == probes["upload"]["median_ms"] is not None
    assert record.jitter_ms == probes["idle"]["jitter_ms"] and record.packet_loss_pct is None
    assert (record.client.ip, record.client.isp) == ("203.0.113.7", "Impersonated ISP, IN")
    assert record.server.host == f"127.0.0.1:{server.port}" and record.schema_version == 2


# ============================================================================ end to end

@pytest.mark.slow
def test_collect_engine_librespeed_end_to_end_with_the_url_in_speedlab_toml(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(engine_librespeed, "DURATION_S", 1.2)
    monkeypatch.setattr(engine_librespeed, "DOWNLOAD_WARMUP_S", 0.4)
    monkeypatch.setattr(engine_librespeed, "UPLOAD_WARMUP_S", 0.5)
    store = tmp_path / "store"
    store.mkdir()
    with LibreSpeedServer(down_mbps=40, up_mbps=20) as server:
        config = tmp_path / "speedlab.toml"
        config.write_text(f'[collector]\nlibrespeed_url = "{server.url}"\n')
        status = cli.main(["collect", "--engine", "librespeed", "--config", str(config), "--store", str(store),
                           "--host-id", "office-main", "--json"])
    outcome = json.loads(capsys.readouterr().out)
    assert status == 0 and outcome["status"] == "stored", outcome
    (path,) = list(store.rglob("test.json"))
    record = SpeedTestResult.from_json(path.read_text())
    assert record.to_dict() == outcome["record"] and record.engine == "librespeed" and record.status == "ok"
    assert record.download_mbps == pytest.approx(40, rel=0.1) and record.upload_mbps == pytest.approx(20, rel=0.1)
    assert record.engine_output["librespeed"]["url"] == server.url
