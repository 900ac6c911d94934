"""speedlab's own latency probes: the statistics by hand, the probes against a loopback server,
and the real speedtest-cli path against the impersonation with injected idle jitter and loaded
delay (the figures stored must match what the impersonation injected)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import statistics
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from speedlab import engine as engine_module
from speedlab.collect import collect_once
from speedlab.engine import probe_output, record_from_output
from speedlab.periods import parse_period
from speedlab.probes import (
    LoadedProbes,
    interquartile_mean,
    jitter,
    latency_url,
    median,
    probe_idle,
    summarize,
)
from speedlab.records import SpeedTestResult
from speedlab.rollup import rollup
from speedlab.store import LocalStore
from tests.helpers.data import IST, B, put, series, summary_objects
from tests.helpers.fake_speedtest import FakeSpeedtest, QuickEngine
from tests.helpers.servers import free_port

T0 = datetime(2025, 12, 29, 8, 33, 12, tzinfo=timezone.utc)
KEY0 = "host=home-primary/year=2025/month=202512/day=20251229/hour=2025122914/minute=00/test.json"


# --------------------------------------------------------------------------- pure statistics

def test_statistics_against_hand_computations():
    rtts = [12.0, 15.0, 11.0, 30.0, 13.0, 14.0]
    assert median(rtts) == 13.5  # sorted 11 12 13 14 15 30: (13 + 14) / 2
    assert median([5.0, 1.0, 3.0]) == 3.0 and median([]) is None
    # |15-12| + |11-15| + |30-11| + |13-30| + |14-13| = 3 + 4 + 19 + 17 + 1 = 44, over 5 pairs
    assert jitter(rtts) == pytest.approx(8.8)
    assert jitter([7.0]) is None and jitter([]) is None
    # 6 values: drop 1 lowest (11) and 1 highest (30): mean of 12 13 14 15
    assert interquartile_mean(rtts) == pytest.approx(13.5)
    # 8 values: drop 2 each side: mean of 3 4 5 6
    assert interquartile_mean([8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0]) == pytest.approx(4.5)
    assert interquartile_mean([2.0, 4.0]) == 3.0 and interquartile_mean([]) is None


def test_summarize_counts_lost_probes_and_skips_them_for_jitter():
    stats = summarize([10.0, None, 14.0, 11.0, None])
    assert (stats.sent, stats.lost) == (5, 2)
    assert (stats.median_ms, stats.low_ms, stats.high_ms) == (11.0, 10.0, 14.0)
    assert stats.jitter_ms == pytest.approx((4 + 3) / 2)  # 10 -> 14 -> 11, the lost ones skipped
    nothing = summarize([None, None])
    assert (nothing.sent, nothing.lost) == (2, 2)
    assert (nothing.median_ms, nothing.jitter_ms, nothing.iqm_ms) == (None, None, None)


def test_latency_url_is_latency_txt_beside_the_servers_url():
    assert latency_url("http://h.example:8080/speedtest/upload.php") == "http://h.example:8080/speedtest/latency.txt"
    assert latency_url("https://h.example/upload.php?x=1") == "https://h.example/latency.txt"
    with pytest.raises(ValueError, match="not an http"):
        latency_url("ftp://h.example/upload.php")


def test_record_from_output_stores_the_probe_figures_and_null_without_probes():
    output = {**QuickEngine()(), "probes": probe_output("http://127.0.0.1:9/speedtest/latency.txt",
                                                        [20.0, 30.0, 20.0, None], [80.0, 100.0, 90.0], [])}
    record = record_from_output(output, host_id="home-primary", engine="speedtest-cli", started=T0, tz="Asia/Kolkata")
    assert record.ok and record.schema_version == 2
    assert (record.latency_idle_ms, record.jitter_ms) == (20.0, 10.0)  # median of 20 30 20; |30-20| twice
    assert (record.latency_download_ms, record.latency_upload_ms) == (90.0, None)
    assert record.ping_ms == 12.5  # the engine's own figure stays
    assert record.engine_output["probes"]["idle"]["lost"] == 1
    bare = record_from_output(QuickEngine()(), host_id="home-primary", engine="speedtest-cli", started=T0, tz="UTC")
    assert (bare.latency_idle_ms, bare.jitter_ms, bare.latency_download_ms, bare.latency_upload_ms) == (None,) * 4


# --------------------------------------------------------------------------- probes on loopback

def test_idle_probes_time_the_round_trip_and_lost_ones_never_raise():
    with FakeSpeedtest() as fake:
        fake.set_delay(0.02, "latency")
        url = f"http://{fake.host}/speedtest/latency.txt"
        rtts = probe_idle(url, 5)
        assert len(rtts) == 5 and all(20.0 <= v < 35.0 for v in rtts), rtts
        assert fake.hits["latency"] == 5
        fake.set_error("latency", 500)
        assert probe_idle(url, 4) == [None] * 4  # an error answer is a lost probe
    started = time.monotonic()
    assert probe_idle(f"http://127.0.0.1:{free_port()}/latency.txt", 10) == [None] * 10  # refused
    assert time.monotonic() - started < 1.0  # gave up after 3 losses in a row


@pytest.mark.slow
def test_loaded_probes_run_every_interval_and_abort_the_one_in_flight_on_stop():
    with FakeSpeedtest() as fake:
        url = f"http://{fake.host}/speedtest/latency.txt"
        with LoadedProbes(url, interval_s=0.05) as probes:
            time.sleep(0.5)
        assert 6 <= len(probes.rtts_ms) <= 11 and None not in probes.rtts_ms, probes.rtts_ms
        fake.set_delay(2.0, "latency")
        slow = LoadedProbes(url, interval_s=0.05).start()
        time.sleep(0.2)
        started = time.monotonic()
        stats = slow.stop()
        assert time.monotonic() - started < 0.5 and stats.sent == 0  # aborted, not counted, not waited for
    assert not any(t.name == "speedlab-loaded-probes" and t.is_alive() for t in threading.enumerate())


# --------------------------------------------------------------------------- the real engine

@pytest.fixture
def impersonation(monkeypatch):
    """speedtest.net impersonated at 50/20 Mbit/s, 2 s per direction, reached through http_proxy."""
    with FakeSpeedtest(testlength_s=2, down_mbps=50, up_mbps=20) as fake:
        monkeypatch.setenv("http_proxy", fake.proxy_url)
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        yield fake


@pytest.mark.slow
def test_stored_latency_matches_the_injected_idle_jitter_and_loaded_delay(impersonation, local_store, config_for):
    base_ms, spread_ms, loaded_ms = 100.0, 60.0, 150.0
    impersonation.set_delay(base_ms / 1000, "latency")
    impersonation.set_idle_jitter(spread_ms, seed=15)  # idle answers: + uniform 0..60 ms
    impersonation.set_loaded_delay(loaded_ms)
    outcome = collect_once(config_for(local_store), now=T0, detect=lambda host: engine_module.ConnectionInfo())
    assert outcome.status == "stored" and outcome.key == KEY0
    record = SpeedTestResult.from_json(local_store.get(B.raw, KEY0))
    assert record.ok and record.schema_version == 2 and record.engine == "speedtest-cli"
    # what the impersonation injected on speedlab's 10 idle probes (after speedtest-cli's 3)
    log = impersonation.latency_log
    idle_extra = [extra for _, extra in log[3:13]]
    assert [loaded for loaded, _ in log[:13]] == [False] * 13
    injected_idle = base_ms + statistics.median(idle_extra)
    injected_jitter = statistics.fmean(abs(b - a) for a, b in itertools.pairwise(idle_extra))
    assert 10.0 < injected_jitter < 40.0 and len(idle_extra) == 10
    probes = record.engine_output["probes"]
    figures = json.dumps({"idle_ms": [record.latency_idle_ms, injected_idle],
                          "jitter_ms": [record.jitter_ms, injected_jitter],
                          "download_ms": record.latency_download_ms, "upload_ms": record.latency_upload_ms,
                          "injected_loaded_ms": base_ms + loaded_ms, "ping_ms": record.ping_ms,
                          "mbps": [record.download_mbps, record.upload_mbps],
                          "sent": [probes[p]["sent"] for p in ("idle", "download", "upload")]})
    print(figures)
    assert record.latency_idle_ms == pytest.approx(injected_idle, rel=0.15), figures
    assert record.jitter_ms == pytest.approx(injected_jitter, rel=0.30), figures
    assert record.latency_download_ms == pytest.approx(base_ms + loaded_ms, rel=0.15), figures
    assert record.latency_upload_ms == pytest.approx(base_ms + loaded_ms, rel=0.15), figures
    # throughput as accurate as before the probes
    assert record.download_mbps == pytest.approx(50, rel=0.10), figures
    assert record.upload_mbps == pytest.approx(20, rel=0.10), figures
    assert probes["idle"]["sent"] == 10 and probes["idle"]["lost"] == 0, figures
    assert probes["download"]["sent"] >= 6 and probes["upload"]["sent"] >= 6, figures  # every ~250 ms for ~2 s
    assert probes["url"] == f"http://{impersonation.host}/speedtest/latency.txt"
    # speedtest-cli's ping: its three probes summed / 6, about half a round trip: not one
    assert record.ping_ms < 0.75 * record.latency_idle_ms, figures


@pytest.mark.slow
def test_probes_that_cannot_reach_the_server_are_lost_and_the_test_still_stored(impersonation, local_store,
                                                                                config_for, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}/speedtest/latency.txt"
    monkeypatch.setattr(engine_module, "latency_url", lambda url: dead)
    impersonation.set_throttle(None, None)
    outcome = collect_once(config_for(local_store), now=T0, detect=lambda host: engine_module.ConnectionInfo())
    record = SpeedTestResult.from_json(local_store.get(B.raw, outcome.key))
    assert record.ok and record.download_mbps > 0 and record.upload_mbps > 0
    assert (record.latency_idle_ms, record.jitter_ms, record.latency_download_ms, record.latency_upload_ms) == (
        None, None, None, None)
    probes = record.engine_output["probes"]
    assert probes["idle"]["lost"] == probes["idle"]["sent"] == 10
    assert probes["download"]["lost"] == probes["download"]["sent"] > 0


# --------------------------------------------------------------------------- schema 1 still rolls up

@pytest.mark.slow
def test_schema_1_results_roll_up_to_the_same_figures_as_schema_2(tmp_path, config_for):
    start = datetime(2025, 12, 27, 10, 0, tzinfo=IST)
    records = series("home-primary", start, 8) + series("office-main", start, 5, every=timedelta(minutes=30))
    stores = {}
    for version in (1, 2):
        root = tmp_path / f"v{version}"
        root.mkdir()
        store = stores[version] = LocalStore(root)
        for record in records:
            put(store, dataclasses.replace(record, schema_version=version))
        rollup(config_for(store), "daily", parse_period("daily", "20251227", IST), now=datetime(2026, 1, 5, tzinfo=IST))
    raw = [json.loads(stores[1].get(B.raw, i.key)) for i in stores[1].list(B.raw, "host=")]
    assert len(raw) == len(records) and all(d["schema_version"] == 1 and "latency_idle_ms" not in d for d in raw)
    old, new = (summary_objects(stores[v], "daily") for v in (1, 2))
    assert old and set(old) == set(new)
    for key in old:
        a, b = ({k: v for k, v in d.items() if k not in ("generated_at", "source_max_modified")}
                for d in (old[key], new[key]))
        assert a == b and a["records_aggregated"] > 0, key
