"""speedlab up: collect every slot, roll up what is due, serve the dashboard; restarts lose and
duplicate nothing.

The in-process tests drive :func:`speedlab.up.run_up` on a manual clock (waiting advances it);
the subprocess test runs ``speedlab up`` against the speedtest.net impersonation on 127.0.0.1
with a 15-minute slot shortened to a few seconds, stops it with Ctrl+C (SIGINT), restarts it
over an overlapping stretch of time, and checks the store.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from speedlab.config import load_config
from speedlab.layout import parse_raw_key, summary_key
from speedlab.periods import UTC, parse_period
from speedlab.rollup import run_due
from speedlab.store import LocalStore
from speedlab.up import fast_clock, next_run_at, run_up
from tests.helpers.fake_speedtest import FakeSpeedtest, QuickEngine
from tests.helpers.servers import Lines, free_port, local_env, stop_group, wait_for_http

IST = ZoneInfo("Asia/Kolkata")


def ist(*args) -> datetime:
    return datetime(*args, tzinfo=IST)


def test_next_run_at_is_the_next_slot_plus_offset():
    tz = "Asia/Kolkata"
    done = ist(2026, 1, 1, 10, 15)
    assert next_run_at(ist(2026, 1, 1, 10, 20), 2, tz, done) == ist(2026, 1, 1, 10, 32)
    assert next_run_at(ist(2026, 1, 1, 10, 29, 59), 2, tz, done) == ist(2026, 1, 1, 10, 32)
    assert next_run_at(ist(2026, 1, 1, 23, 50), 4, tz, ist(2026, 1, 1, 23, 45)) == ist(2026, 1, 2, 0, 4)
    utc = next_run_at(datetime(2026, 1, 1, 4, 50, tzinfo=UTC), 0, tz, done)   # 10:20 IST
    assert utc == ist(2026, 1, 1, 10, 30)
    # a slot no cycle has run in yet: at its offset, or at once if that has passed (a late cycle)
    assert next_run_at(ist(2026, 1, 1, 10, 31), 2, tz, done) == ist(2026, 1, 1, 10, 32)
    assert next_run_at(ist(2026, 1, 1, 10, 33), 2, tz, done) == ist(2026, 1, 1, 10, 33)
    assert next_run_at(ist(2026, 1, 1, 10, 33), 2, tz, None) == ist(2026, 1, 1, 10, 33)


def test_fast_clock_starts_when_first_read_and_runs_a_slot_per_interval():
    ticks = iter([100.0, 100.0, 102.5, 110.0])
    clock = fast_clock(ist(2026, 1, 1, 10, 20), 5.0, monotonic=lambda: next(ticks))
    assert clock.rate == 180.0
    assert clock() == ist(2026, 1, 1, 10, 20)                       # origin taken at the first read
    assert clock() == ist(2026, 1, 1, 10, 27, 30)                   # 2.5 s real = 7.5 min
    assert clock() == ist(2026, 1, 1, 10, 50)


class ManualTime:
    """A clock that moves only when the loop waits (the ``stop`` event's ``wait``)."""

    def __init__(self, start: datetime) -> None:
        self.now = start.astimezone(UTC)
        self.waits: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def is_set(self) -> bool:
        return False

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += timedelta(seconds=seconds)
        return False


def raw_slots(store: LocalStore, host: str) -> list[tuple[str, str]]:
    """(slot local time, file name) of every raw object of ``host``."""
    out = []
    for info in store.list("vd-speed-test", f"host={host}/"):
        key = parse_raw_key(info.key)
        out.append((key.slot_local.strftime("%H:%M"), key.name))
    return out


def test_run_up_restarted_over_the_same_slots_tests_each_slot_once(tmp_path):
    store = LocalStore(tmp_path / "data")
    store.root.mkdir()
    config = load_config(env={}, store=str(store.root), host_id="home-primary",
                         sections={"collector": {"start_offset_minutes": 2}})
    engine = QuickEngine(download_mbps=120.0, upload_mbps=40.0)
    lines: list[str] = []

    first = ManualTime(ist(2026, 1, 1, 10, 20))
    report = run_up(config, clock=first, stop=first, serve=False, engine=engine, max_cycles=4,
                    echo=lines.append)
    assert [c["collect"] for c in report.cycles] == ["stored"] * 4
    assert [datetime.fromisoformat(c["time"]).astimezone(IST).strftime("%H:%M") for c in report.cycles] == [
        "10:20", "10:32", "10:47", "11:02"]
    assert sum(first.waits) == 12 * 60 + 15 * 60 + 15 * 60 and max(first.waits) <= 1.0   # short steps
    assert [c["slot"][11:16] for c in report.cycles] == ["10:15", "10:30", "10:45", "11:00"]

    # "restart" half an hour earlier than where the first run stopped: those slots are filled
    second = ManualTime(ist(2026, 1, 1, 10, 50))
    report2 = run_up(config, clock=second, stop=second, serve=False, engine=engine, max_cycles=4,
                     echo=lines.append)
    assert [c["collect"] for c in report2.cycles] == ["slot_filled", "slot_filled", "stored", "stored"]
    assert engine.calls == 6                                          # filled slots are not tested again
    assert raw_slots(store, "home-primary") == [(t, "test.json") for t in
                                                ("10:15", "10:30", "10:45", "11:00", "11:15", "11:30")]
    # the hour 10:00-11:00 was due at 11:10 and was rolled up by the loop, with its 3 results
    hour = parse_period("hourly", "2026010110", "Asia/Kolkata")
    summary = json.loads(store.get("vd-speed-test-hourly-prod", summary_key(hour)))
    assert summary["records_aggregated"] == 3
    assert sum(c["rollups"] or 0 for c in report.cycles + report2.cycles) >= 1
    assert run_due(config, second()).periods == 0                    # nothing left due: up to date
    assert any(line.startswith("2026-01-01 10:45: slot_filled") for line in lines)


def test_run_up_creates_its_store_folder_on_first_run_but_not_a_mistyped_parent(tmp_path):
    from speedlab.errors import StoreUnavailable
    config = load_config(env={}, store=str(tmp_path / "speedlab-data"), host_id="home-primary")
    clock = ManualTime(ist(2026, 1, 1, 10, 20))
    report = run_up(config, clock=clock, stop=clock, serve=False, engine=QuickEngine(), max_cycles=1,
                    echo=lambda s: None)
    assert report.cycles[0]["collect"] == "stored" and (tmp_path / "speedlab-data" / "vd-speed-test").is_dir()
    typo = load_config(env={}, store=str(tmp_path / "no-such-parent" / "data"), host_id="home-primary")
    with pytest.raises(StoreUnavailable, match=r"its parent .*no-such-parent does not exist"):
        run_up(typo, clock=clock, stop=clock, serve=False, engine=QuickEngine(), max_cycles=1,
               echo=lambda s: None)
    assert not (tmp_path / "no-such-parent").exists()


def test_up_announces_an_s3_store_without_its_credentials():
    from speedlab.up import _data_location
    config = load_config(env={}, store="s3://?endpoint_url=http://127.0.0.1:9&access_key_id=AKIAUPKEY"
                                       "&secret_access_key=up-secret-value")
    shown = _data_location(config)
    assert shown == "s3://?endpoint_url=http://127.0.0.1:9&access_key_id=****&secret_access_key=****"


def test_run_up_goes_on_after_a_failing_cycle(tmp_path):
    store = LocalStore(tmp_path / "data")
    store.root.mkdir()
    config = load_config(env={}, store=str(store.root), host_id="office-main",
                         sections={"collector": {"start_offset_minutes": 0}})
    clock = ManualTime(ist(2026, 1, 1, 10, 0))
    broken = QuickEngine(fail=ConnectionRefusedError("no route"))
    report = run_up(config, clock=clock, stop=clock, serve=False, engine=broken, max_cycles=2, echo=lambda s: None)
    assert [c["collect"] for c in report.cycles] == ["stored", "stored"]   # failed tests are data
    body = store.get("vd-speed-test", "host=office-main/year=2026/month=202601/day=20260101/hour=2026010110/"
                                      "minute=00/test.json")
    assert b'"status":"failed"' in body and b'"no_connectivity"' in body


# --------------------------------------------------------------------------- the command

def _start_up(tmp_path, fake: FakeSpeedtest, port: int, start: str,
              interval_s: float) -> tuple[subprocess.Popen, Lines]:
    env = local_env(http_proxy=fake.proxy_url, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "speedlab.cli", "up", "--config", str(tmp_path / "speedlab.toml"),
         "--port", str(port), "--interval-seconds", str(interval_s), "--start", start],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
        start_new_session=True)
    return process, Lines(process)


def _stop(process: subprocess.Popen, lines: Lines) -> None:
    stop_group(process, signal.SIGINT)        # Ctrl+C reaches the whole process group
    lines.drain()


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.timeout(240)
def test_speedlab_up_stopped_and_restarted(tmp_path):
    data = tmp_path / "data"
    (tmp_path / "speedlab.toml").write_text(
        f'store = "{data}"\nhost_id = "home-primary"\n[collector]\nstart_offset_minutes = 1\n'
        "max_test_s = 60\n", encoding="utf-8")
    port = free_port()
    stored = lambda line: ": stored " in line  # noqa: E731
    with FakeSpeedtest(testlength_s=1, down_mbps=40, up_mbps=10) as fake:
        process, lines = _start_up(tmp_path, fake, port, "2026-01-01T10:20:00+05:30", 8.0)
        try:
            url = lines.wait_for(lambda out: "dashboard at http://127.0.0.1:" in out, 90)
            assert f"http://127.0.0.1:{port}/" in url
            lines.wait_for(lambda out: out.startswith("speedlab up: data in ") and str(data) in out, 10)
            wait_for_http(f"http://127.0.0.1:{port}/voila/static/favicon.ico", 30)
            for _ in range(3):                                     # slots 10:15, 10:30, 10:45
                lines.wait_for(stored, 60)
        finally:
            _stop(process, lines)
        assert process.returncode == 0, "\n".join(lines.all)
        assert "speedlab up: stopping" in lines.all
        with pytest.raises(OSError):                                # the dashboard stopped with it
            urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/static/favicon.ico", timeout=2)

        # restart over an overlapping stretch: 10:45 is filled already, 11:00 and 11:15 are new
        process, lines2 = _start_up(tmp_path, fake, port, "2026-01-01T10:55:00+05:30", 8.0)
        try:
            first = lines2.wait_for(lambda out: out.startswith("2026-01-01 10:45:"), 90)
            assert ": slot_filled: " in first
            lines2.wait_for(stored, 60)                            # 11:00
            lines2.wait_for(stored, 60)                            # 11:15; hour 10 is due at 11:10
            rolled = lambda out: "rolled up" in out and "hourly" in out  # noqa: E731
            if not any(rolled(line) for line in lines2.all):       # printed before 11:15's result on a busy machine
                lines2.wait_for(rolled, 30)
        finally:
            _stop(process, lines2)
        assert process.returncode == 0, "\n".join(lines2.all)

    # one result per slot: none lost (no gap from 10:15 on), none twice (one object per slot)
    store = LocalStore(data)
    slots = raw_slots(store, "home-primary")
    times = [ist(2026, 1, 1, 10, 15) + timedelta(minutes=15 * i) for i in range(len(slots))]
    assert slots == [(f"{t:%H:%M}", "test.json") for t in times]
    assert len(slots) >= 5
    reported = [line for line in lines.all + lines2.all if ": stored " in line]
    assert len(reported) == len(slots)
    config = load_config(tmp_path / "speedlab.toml", env={})
    hour = parse_period("hourly", "2026010110", "Asia/Kolkata")
    summary = json.loads(store.get(config.buckets.hourly, summary_key(hour)))
    assert (summary["records_aggregated"], summary["failed_tests"]) == (3, 0)
    # up to date: a run-due right after the cycle that rolled hour 10 up finds nothing to do
    assert run_due(config, ist(2026, 1, 1, 11, 17)).periods == 0
