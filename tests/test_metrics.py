"""``/metrics``: figures -> metric families (pure), the exporter's reads, the token, and a real
Prometheus scraping the API and answering PromQL with the newest result."""

from __future__ import annotations

import dataclasses
import math
import shutil
import urllib.error
import urllib.request
from datetime import datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from speedlab import cache
from speedlab.aggregate import MetricStats
from speedlab.api import api_context, handle
from speedlab.config import load_config
from speedlab.metrics import QUANTILES, HostFigures, metric_families
from speedlab.metrics_io import SpeedlabCollector, read_host, render
from speedlab.rollup import run_due
from speedlab.sketch import DEFAULT_ALPHA
from speedlab.store import LocalStore
from tests.helpers.data import IST, put, result
from tests.helpers.prometheus import Prometheus, need_prometheus, scrape_config
from tests.helpers.servers import ApiServer
from tests.helpers.synthetic import ist

NOW = ist(2026, 1, 5, 10, 20)
TOKEN = "metrics-t0ken-for-tests-7q2w"


def nearest_rank(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile, computed here from the sorted values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Parse exposition text: ``(sample name, sorted labels) -> value``."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def expose(figures: list[HostFigures], read_errors: int = 0) -> str:
    class Fixed:
        def collect(self):
            return metric_families(figures, read_errors=read_errors)
    registry = CollectorRegistry()
    registry.register(Fixed())
    return render(registry)[0]


def labels(host: str, connection: str, **extra: str) -> tuple:
    return tuple(sorted({"host": host, "connection_type": connection, **extra}.items()))


# ============================================================================ pure mapping

def test_families_give_base_units_leave_nulls_out_and_read_the_sketch():
    ok = dataclasses.replace(result("home-primary", "2026-01-05 10:17:03", 187.25, 41.5, 12.5), jitter_ms=3.25,
                             latency_idle_ms=14.5, latency_download_ms=212.0, latency_upload_ms=96.25,
                             packet_loss_pct=1.5)
    failed = result("office-main", "2026-01-05 10:02:00", status="failed", connection="Wi-Fi 5GHz")
    downloads = [80.0 + 7.3 * i for i in range(23)]
    pings = [5.0 + (i % 6) * 1.5 for i in range(23)]
    today = {"records_aggregated": 23, "failed_tests": 2,
             "stats": {"download_mbps": MetricStats.of(downloads).to_dict(),
                       "ping_ms": MetricStats.of(pings).to_dict(),
                       "upload_mbps": MetricStats.of([]).to_dict()}}
    text = expose([HostFigures("home-primary", ok, today, (1200, 17)),
                   HostFigures("office-main", failed, None, None),
                   HostFigures("no-data")], read_errors=3)
    got = samples(text)
    home, office = labels("home-primary", "Ethernet"), labels("office-main", "Wi-Fi 5GHz")
    assert got[("speedlab_download_bits_per_second", home)] == 187.25e6
    assert got[("speedlab_upload_bits_per_second", home)] == 41.5e6
    assert got[("speedlab_ping_seconds", home)] == pytest.approx(0.0125, rel=1e-12)
    assert got[("speedlab_jitter_seconds", home)] == pytest.approx(0.00325, rel=1e-12)
    for name, seconds in (("idle", 0.0145), ("download", 0.212), ("upload", 0.09625)):  # latency under load
        assert got[(f"speedlab_latency_{name}_seconds", home)] == pytest.approx(seconds, rel=1e-12)
    assert got[("speedlab_packet_loss_ratio", home)] == pytest.approx(0.015, rel=1e-12)
    assert got[("speedlab_last_test_timestamp_seconds", home)] == datetime(
        2026, 1, 5, 10, 17, 3, tzinfo=IST).timestamp()
    assert got[("speedlab_last_test_success", home)] == 1.0
    assert (got[("speedlab_tests_total", home)], got[("speedlab_failed_tests_total", home)]) == (1200, 17)
    assert (got[("speedlab_today_tests", home)], got[("speedlab_today_failed_tests", home)]) == (25, 2)
    for q in QUANTILES:  # within the sketch's relative error of the true nearest-rank value
        true_down, true_ping = nearest_rank(downloads, q), nearest_rank(pings, q)
        down = got[("speedlab_today_download_bits_per_second", labels("home-primary", "Ethernet", quantile=repr(q)))]
        ping = got[("speedlab_today_ping_seconds", labels("home-primary", "Ethernet", quantile=repr(q)))]
        assert abs(down / 1e6 - true_down) <= DEFAULT_ALPHA * true_down + 1e-9, (q, down, true_down)
        assert abs(ping * 1e3 - true_ping) <= DEFAULT_ALPHA * true_ping + 1e-9, (q, ping, true_ping)
    # a failed newest test: no speeds (not 0), success 0, its time; unknown totals are left out
    assert got[("speedlab_last_test_success", office)] == 0.0
    assert ("speedlab_last_test_timestamp_seconds", office) in got
    assert not [k for k in got if k[1] == office and ("bits_per_second" in k[0] or "tests" in k[0]
                                                      or k[0] in ("speedlab_ping_seconds", "speedlab_jitter_seconds")
                                                      or "latency" in k[0] or "packet_loss" in k[0])]
    # an empty sketch (no upload today) and a host without figures give no samples
    assert not [k for k in got if k[0] == "speedlab_today_upload_bits_per_second"]
    assert not [k for k in got if dict(k[1]).get("host") == "no-data"]
    assert got[("speedlab_exporter_read_errors", ())] == 3
    assert "# TYPE speedlab_tests_total counter" in text and "# TYPE speedlab_download_bits_per_second gauge" in text


def test_a_summary_without_sketches_gives_no_percentiles():
    legacy = {"records_aggregated": 4, "failed_tests": 0, "avg_download": 100.0}  # the original system's
    broken = {"records_aggregated": 4, "stats": {"download_mbps": {"count": "four"}}}
    got = samples(expose([HostFigures("a", None, legacy), HostFigures("b", None, broken)]))
    assert got[("speedlab_today_tests", labels("a", "Unknown"))] == 4
    assert not [k for k in got if k[0].startswith("speedlab_today_") and k[0].endswith(("second", "seconds"))]


# ============================================================================ the exporter's reads

def _store(store):
    """Results of two hosts (today, earlier days, last year), rolled up as the scheduler does."""
    written = []
    for i in range(10):  # home-primary today 08:02 .. 10:17, the last one with jitter
        record = result("home-primary", ist(2026, 1, 5, 8, 2) + timedelta(minutes=15 * i), 100 + 3.7 * i, 40 + i,
                        9 + i % 4)
        if i == 9:
            record = dataclasses.replace(record, jitter_ms=1.75)
        written.append(record)
    written.append(result("home-primary", "2026-01-05 07:50:00", status="failed"))  # a slot of its own
    written.append(result("home-primary", "2026-01-05 09:47:00", status="failed"))  # loses to the ok one of 09:45
    written.append(result("home-primary", "2025-12-31 23:32:00", 90.0))
    written.append(result("home-primary", "2026-01-04 23:02:00", status="failed"))
    written.append(result("office-main", "2026-01-05 10:16:00", 400.0, connection="Wi-Fi 5GHz"))
    for record in written:
        put(store, record, name="second.json" if record.timestamp_local.startswith("2026-01-05T09:47") and
            record.status == "failed" else None)
    future = result("home-primary", "2026-01-05 13:02:00", 999.0)  # after NOW: never the newest
    put(store, future)
    return written


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The store of :func:`_store`, rolled up once; each test gets a copy (see ``filled``)."""
    root = tmp_path_factory.mktemp("metrics") / "store"
    root.mkdir()
    store = LocalStore(root)
    written = _store(store)
    run_due(load_config(env={}, store=store.url, state_dir=str(root.parent / "state")), now=NOW, store=store)
    return root, written


@pytest.fixture
def filled(template, tmp_path, config_for):
    cache.clear_caches()
    root, written = template
    shutil.copytree(root, tmp_path / "copy", copy_function=shutil.copy2)
    store = LocalStore(tmp_path / "copy")
    yield store, config_for(store), written
    cache.clear_caches()


def test_read_host_matches_what_was_written(filled):
    store, config, written = filled
    slots: dict = {}  # one test per slot, an ok one before a failed one (the rollup's rule)
    for r in written:
        if r.host_id == "home-primary" and (r.slot_start not in slots or r.status == "ok"):
            slots[r.slot_start] = r
    mine = list(slots.values())
    figures = read_host(store, config, "home-primary", NOW)
    newest = max((r for r in written if r.host_id == "home-primary"), key=lambda r: r.time_utc)
    assert figures.newest == newest and figures.newest.jitter_ms == 1.75
    assert len(mine) == 13 and sum(r.status == "failed" for r in mine) == 2
    assert figures.totals == (len(mine), sum(r.status == "failed" for r in mine))
    today = [r for r in mine if r.time_utc.astimezone(IST).date() == NOW.date()]
    assert figures.today["records_aggregated"] + figures.today["failed_tests"] == len(today)
    downloads = [r.download_mbps for r in today if r.status == "ok"]
    got = samples(expose([figures]))
    for q in QUANTILES:
        value = got[("speedlab_today_download_bits_per_second", labels("home-primary", "Ethernet", quantile=repr(q)))]
        assert abs(value / 1e6 - nearest_rank(downloads, q)) <= DEFAULT_ALPHA * nearest_rank(downloads, q)


def test_an_unreadable_newest_result_is_counted_not_fatal(filled):
    store, config, written = filled
    key = put(store, written[-1])  # office-main's one result, then made garbage
    store.put(config.buckets.raw, key, b"{not json")
    figures, errors = SpeedlabCollector(config, store, now=NOW).figures()
    by_host = {f.host_id: f for f in figures}
    assert errors == 1 and by_host["office-main"].newest is None
    assert by_host["home-primary"].newest.download_mbps == pytest.approx(100 + 3.7 * 9)


def test_counters_never_go_down_within_a_process(filled):
    store, config, _ = filled
    collector = SpeedlabCollector(config, store, now=NOW)
    first = {f.host_id: f.totals for f in collector.figures()[0]}
    last_year = [(b, i.key) for b in sorted(set(config.buckets.as_dict().values())) for i in store.list(b)
                 if "year=2025" in i.key and "host=home-primary" in i.key]
    assert last_year
    for bucket, key in last_year:  # the 2025 result and its summaries vanish
        store.delete(bucket, key)
    cache.clear_caches()
    assert {f.host_id: f.totals for f in collector.figures()[0]} == first
    fresh = {f.host_id: f.totals for f in SpeedlabCollector(config, store, now=NOW).figures()[0]}
    assert fresh["home-primary"] == (first["home-primary"][0] - 1, first["home-primary"][1])


# ============================================================================ the API: route and token

def test_metrics_route_answers_text_under_the_token(filled):
    store, config, _ = filled
    ctx = api_context(config, env={"SPEEDLAB_API_TOKEN": TOKEN}, now=NOW, store=store)
    status, body, _ = handle(ctx, "GET", "/api/metrics", {}, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and body.content_type.startswith("text/plain")
    with ApiServer(ctx) as server:
        for path in ("/metrics", "/api/metrics"):
            for headers in ({}, {"Authorization": "Bearer wrong-token-of-length"}):
                request = urllib.request.Request(server.url + path, headers=headers)
                with pytest.raises(urllib.error.HTTPError) as refused:
                    urllib.request.urlopen(request, timeout=10)
                assert refused.value.code == 401
                assert refused.value.headers["Content-Type"].startswith("application/json")
            request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.headers["Content-Type"].startswith("text/plain")
                got = samples(response.read().decode())
            assert got[("speedlab_download_bits_per_second", labels("office-main", "Wi-Fi 5GHz"))] == 400e6
        request = urllib.request.Request(server.url + "/metrics?token=" + TOKEN, method="POST", data=b"")
        with pytest.raises(urllib.error.HTTPError) as wrong_method:
            urllib.request.urlopen(request, timeout=10)
        assert wrong_method.value.code == 405


# ============================================================================ a real Prometheus

@pytest.mark.slow
def test_real_prometheus_scrapes_the_newest_result(local_store, config_for, tmp_path):
    need_prometheus()
    cache.clear_caches()
    config = config_for(local_store)
    now = datetime.now(IST)
    # figures that differ from run to run, so no fixed number can pass
    seed = now.microsecond / 1e4
    older = result("prom-host", now - timedelta(minutes=31), 50.0 + seed, 20.0, 15.0)
    newest = dataclasses.replace(result("prom-host", now - timedelta(minutes=2), 123.25 + seed, 31.5, 8.5,
                                        connection="Wi-Fi 6GHz"), jitter_ms=1.25)
    for record in (older, newest):
        put(local_store, record)
    ctx = api_context(config, env={"SPEEDLAB_API_TOKEN": TOKEN}, store=local_store)
    with ApiServer(ctx) as server:
        target = server.url.removeprefix("http://")
        jobs = [{"job_name": "speedlab", "metrics_path": "/metrics", "authorization": {"credentials": TOKEN},
                 "static_configs": [{"targets": [target]}]},
                {"job_name": "refused", "metrics_path": "/metrics", "bearer_token": "not-the-token-at-all",
                 "static_configs": [{"targets": [target]}]}]
        with Prometheus(tmp_path, scrape_config(jobs)) as prometheus:
            found = prometheus.wait_for('speedlab_download_bits_per_second{host="prom-host"}')
            refused = prometheus.wait_for('up{job="refused"}')
            ping = prometheus.query('speedlab_ping_seconds{host="prom-host"}')
            tests = prometheus.query('speedlab_tests_total{host="prom-host"}')
            up = prometheus.query('up{job="speedlab"}')
    assert len(found) == 1 and found[0]["metric"]["connection_type"] == "Wi-Fi 6GHz"
    assert float(found[0]["value"][1]) == pytest.approx(newest.download_mbps * 1e6, rel=1e-12)
    assert float(ping[0]["value"][1]) == pytest.approx(newest.ping_ms / 1e3, rel=1e-12)
    assert float(tests[0]["value"][1]) == 2
    assert float(up[0]["value"][1]) == 1 and float(refused[0]["value"][1]) == 0
