"""``speedlab demo``: a labelled sample history, rolled up and shown, with no internet.

Three layers, as everywhere in speedlab:

* pure: :func:`demo_story` (what happens when: the outage, the day the collector was off,
  the line downgrade) and :func:`generate` (seed and dates -> :class:`SpeedTestResult`
  records, made by the collector's own parser :func:`speedlab.engine.record_from_output`
  from speedtest-cli-shaped output, engine ``demo``); :func:`demo_config_text` (the demo
  folder's ``speedlab.toml``);
* I/O: :func:`prepare_folder` (a separate demo store, never someone's real data),
  :func:`write_records` (every record through :func:`speedlab.collect.store_result`, the
  collector's validation and conditional write, on a thread pool), :func:`roll_up` (the real
  rollups through papermill: the aggregation's notebook runner);
* the orchestrator :func:`run_demo`, which ``speedlab demo`` calls, and which then serves
  the dashboard (:func:`speedlab.serve.serve`).

The story (for ``--days 90``; every event scales with the length of the history)
--------------------------------------------------------------------------------
* ``home-primary``: Wi-Fi 5 GHz (sometimes 2.4 GHz) on a 300/100 Mbit/s plan: slower than
  the Ethernet office on the same plan, and much slower in the evening (19:00-23:00).
  An ISP outage of seven hours (about 40 % into the history) is recorded as failed tests
  (``no_connectivity``).
* ``office-main``: Ethernet on the same 300/100 plan; its collector was switched off for one
  whole day (about 25 % into the history): that day has no results at all.
* ``backup-location``: Ethernet on a 100/20 Mbit/s plan; from about 65 % into the history
  the ISP downgraded the line and it delivers about 45 % of the plan.
* Latency (the probes' figures of schema 2): idle round trips of 15 ms (office-main), 22 ms
  (home-primary) and 28 ms (backup-location); while a download or an upload runs they are 2 to 6
  times longer (bufferbloat: worst on home-primary's Wi-Fi and backup-location's upload), up to
  9 times in the evening peak, when the idle round trip grows a quarter too.

Every record says what it is: engine ``demo``, the server's sponsor ``speedlab demo data``,
the client's ISP ``Demo ISP (demo data)``, ``engine_output.demo_data`` true. The folder holds
``DEMO-DATA.txt`` and a ``speedlab.toml`` with the plans and a dashboard title saying "demo
data".
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .collect import store_result
from .config import Config, load_config
from .engine import failed_record, record_from_output
from .errors import DemoError, InvalidRecord, StoreError
from .joblog import JobLog
from .layout import Buckets
from .netinfo import ConnectionInfo
from .periods import SLOT, UTC, Period, get_zone, period_of, periods_between, to_local
from .records import SpeedTestResult, TestError
from .store import LocalStore

__all__ = ["DEFAULT_DAYS", "DEFAULT_SEED", "DEFAULT_STORE", "DEMO_ENGINE", "DEMO_HOSTS", "DemoError",
           "DemoHost", "DemoReport", "DemoStory", "MARKER", "WriteReport", "demo_config_text",
           "demo_story", "generate", "prepare_folder", "roll_up", "run_demo", "write_records",
           "fill_store"]

DEMO_ENGINE = "demo"
DEFAULT_STORE = "./speedlab-demo"
DEFAULT_DAYS = 90
DEFAULT_SEED = 2025
#: The file that marks a folder as a speedlab demo store (and so safe to rebuild).
MARKER = "DEMO-DATA.txt"
#: How long the download and upload phases take in the generated tests [s].
TEST_LENGTH_S = 10.0


# =========================================================================== the story (pure)

@dataclass(frozen=True)
class DemoHost:
    """One demo host: its link and what it typically measures.

    ``download_mbps``/``upload_mbps`` [Mbit/s] and ``ping_ms`` [ms] are daytime medians;
    ``evening_factor`` is what is left of the download at the evening peak (19:00-23:00);
    ``slow_band_share`` is the share of tests made on Wi-Fi 2.4 GHz (at 40 % of the speed).
    ``idle_ms`` [ms] is the daytime idle round trip of the latency probes; ``download_bloat`` and
    ``upload_bloat`` are how many times longer the round trip gets while a download or an upload
    fills the line (bufferbloat); in the evening peak both grow further.
    """

    host_id: str
    connection_type: str
    interface: str
    download_mbps: float
    upload_mbps: float
    ping_ms: float
    evening_factor: float
    offset_minutes: int
    slow_band_share: float = 0.0
    plan_download_mbps: float = 300.0
    plan_upload_mbps: float = 100.0
    idle_ms: float = 20.0
    download_bloat: float = 3.0
    upload_bloat: float = 4.0


DEMO_HOSTS: tuple[DemoHost, ...] = (
    DemoHost("home-primary", "Wi-Fi 5GHz", "wlan0", 235.0, 88.0, 14.0, 0.55, 3, slow_band_share=0.12,
             idle_ms=22.0, download_bloat=5.0, upload_bloat=6.0),
    DemoHost("office-main", "Ethernet", "eth0", 288.0, 96.0, 7.5, 0.85, 6,
             idle_ms=15.0, download_bloat=2.2, upload_bloat=3.0),
    DemoHost("backup-location", "Ethernet", "enp3s0", 96.0, 19.2, 22.0, 0.75, 9,
             plan_download_mbps=100.0, plan_upload_mbps=20.0, idle_ms=28.0, download_bloat=4.0, upload_bloat=6.0),
)


@dataclass(frozen=True)
class DemoStory:
    """When the demo's events happen (aware local datetimes, ``[start, end)``)."""

    start: datetime
    end: datetime
    outage_host: str
    outage: tuple[datetime, datetime]
    switched_off_host: str
    switched_off: tuple[datetime, datetime]
    downgrade_host: str
    downgrade_from: datetime
    downgrade_factor: float = 0.45

    def describe(self) -> list[str]:
        """One line per event, for people."""
        fmt = "%Y-%m-%d %H:%M"
        return [
            f"{self.outage_host}: ISP outage {self.outage[0]:{fmt}} to {self.outage[1]:%H:%M} "
            "(recorded as failed tests)",
            f"{self.switched_off_host}: collector switched off on {self.switched_off[0]:%Y-%m-%d} "
            "(no results that day)",
            f"{self.downgrade_host}: line downgraded from {self.downgrade_from:%Y-%m-%d} "
            f"(about {self.downgrade_factor:.0%} of its plan)",
            "home-primary is on Wi-Fi, office-main on Ethernet (same plan); evenings are slower",
        ]


def _day_at(span: tuple[datetime, datetime], fraction: float, zone) -> datetime:
    """Local midnight of the day ``fraction`` of the way through ``span``."""
    start, end = span
    return period_of("daily", start + (end - start) * fraction, zone).start


def demo_story(start: datetime, end: datetime, tz: str = "Asia/Kolkata") -> DemoStory:
    """Place the demo's events inside ``[start, end)`` (pure).

    The outage starts at 09:00 on the day about 40 % in and lasts seven hours; the collector is
    off for the whole day about 25 % in; the downgrade starts at midnight about 65 % in.
    """
    zone = get_zone(tz)
    start, end = to_local(start, zone), to_local(end, zone)
    span = (start, end)
    outage_day = _day_at(span, 0.40, zone)
    off_day = _day_at(span, 0.25, zone)
    outage_start = max(start, outage_day.replace(hour=9))
    return DemoStory(
        start=start, end=end,
        outage_host="home-primary", outage=(outage_start, outage_start + timedelta(hours=7)),
        switched_off_host="office-main",
        switched_off=(off_day, period_of("daily", off_day, zone).end),
        downgrade_host="backup-location", downgrade_from=_day_at(span, 0.65, zone))


def _evening(hour: float) -> float:
    """0 outside the evening peak, rising to 1 from 20:00 to 22:00 and back to 0 by 23:30."""
    if 20 <= hour < 22:
        return 1.0
    if 18.5 <= hour < 20:
        return (hour - 18.5) / 1.5
    if 22 <= hour < 23.5:
        return (23.5 - hour) / 1.5
    return 0.0


def _output(host: DemoHost, download_mbps: float, upload_mbps: float, ping_ms: float,
            started: datetime, seed: int, probes: dict | None = None) -> dict:
    """What speedtest-cli's ``results.dict()`` would have said (speeds in bit/s), with ``probes``:
    the latency probes' figures [ms] as the engine adds them (:func:`speedlab.engine.probe_output`)."""
    return {
        "download": download_mbps * 1e6, "upload": upload_mbps * 1e6, "ping": ping_ms,
        "server": {"url": "http://demo.invalid:8080/speedtest/upload.php", "lat": "12.97", "lon": "77.59",
                   "name": "Demo City", "country": "India", "cc": "IN", "sponsor": "speedlab demo data",
                   "id": "1", "host": "demo.invalid:8080", "d": 11.2, "latency": ping_ms},
        "timestamp": started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "bytes_sent": int(upload_mbps * 1e6 / 8 * TEST_LENGTH_S),
        "bytes_received": int(download_mbps * 1e6 / 8 * TEST_LENGTH_S),
        "share": None, "client": {"ip": "192.0.2.10", "isp": "Demo ISP (demo data)"},
        "demo_data": True, "demo_seed": seed,
        **({"probes": probes} if probes is not None else {}),
    }


def _day_records(host: DemoHost, story: DemoStory, seed: int, tz: str, day: Period,
                 start_utc: datetime, end_utc: datetime) -> list[SpeedTestResult]:
    """One host's records for the slots of one local ``day`` whose test starts in the window."""
    rng = random.Random(f"speedlab-demo/{seed}/{host.host_id}/{day.label}")
    # the latency figures draw from their own stream: the speeds stay what they were before them
    latency_rng = random.Random(f"speedlab-demo/{seed}/{host.host_id}/{day.label}/latency")
    zone = day.start.tzinfo
    out: list[SpeedTestResult] = []
    slot = day.start
    while slot < day.end:
        local = slot
        slot = (slot.astimezone(UTC) + SLOT).astimezone(zone)
        started = local.astimezone(UTC) + timedelta(minutes=host.offset_minutes, seconds=rng.randint(0, 50))
        duration_s = round(2 * TEST_LENGTH_S + rng.uniform(2.0, 9.0), 3)
        noise = [rng.gauss(1.0, 0.06) for _ in range(3)]
        slow_band = rng.random() < host.slow_band_share
        spike = rng.random() < 0.01
        random_failure = rng.random() < 0.002
        latency_noise = [latency_rng.gauss(1.0, 0.1) for _ in range(4)]
        if not start_utc <= started < end_utc:
            continue
        if host.host_id == story.switched_off_host and story.switched_off[0] <= local < story.switched_off[1]:
            continue
        link = ConnectionInfo("Wi-Fi 2.4GHz" if slow_band else host.connection_type, host.interface)
        common: dict[str, Any] = dict(host_id=host.host_id, engine=DEMO_ENGINE, started=started, tz=tz,
                                      duration_s=duration_s, connection=link)
        if host.host_id == story.outage_host and story.outage[0] <= local < story.outage[1]:
            out.append(failed_record(TestError("no_connectivity", "demo data: simulated ISP outage, no "
                                               "connection to speedtest.net"), **common,
                                     output={"demo_data": True, "demo_seed": seed}))
            continue
        if random_failure:
            out.append(failed_record(TestError("timeout", "demo data: simulated test timeout"), **common,
                                     output={"demo_data": True, "demo_seed": seed}))
            continue
        evening = _evening(local.hour + local.minute / 60)
        night = 1.04 if 1 <= local.hour < 6 else 1.0
        downgrade = story.downgrade_factor if (host.host_id == story.downgrade_host
                                               and local >= story.downgrade_from) else 1.0
        band = 0.4 if slow_band else 1.0
        down = host.download_mbps * (1 - (1 - host.evening_factor) * evening) * night * band * downgrade
        up = host.upload_mbps * (1 - (1 - host.evening_factor) * evening * 0.5) * band * downgrade
        ping = host.ping_ms * (1 + 0.4 * evening) * (4.0 if spike else 1.0)
        idle = host.idle_ms * (1 + 0.25 * evening) * (1.3 if slow_band else 1.0)
        loaded = 1 + 0.5 * evening   # the evening peak fills the queues further
        probes = {"latency_idle_ms": round(max(1.0, idle * latency_noise[0]), 3),
                  "jitter_ms": round(max(0.1, idle * (0.15 if "Wi-Fi" in link.connection_type else 0.06)
                                         * latency_noise[1]), 3),
                  "latency_download_ms": round(max(1.0, idle * host.download_bloat * loaded * latency_noise[2]), 3),
                  "latency_upload_ms": round(max(1.0, idle * host.upload_bloat * loaded * latency_noise[3]), 3)}
        output = _output(host, round(max(0.5, down * noise[0]), 3), round(max(0.2, up * noise[1]), 3),
                         round(max(1.0, ping * noise[2]), 3), started, seed, probes)
        out.append(record_from_output(output, **common))
    return out


def generate(seed: int, start: datetime, end: datetime, tz: str = "Asia/Kolkata",
             hosts: Sequence[DemoHost] = DEMO_HOSTS, story: DemoStory | None = None) -> list[SpeedTestResult]:
    """The demo's records for every slot whose test would have started in ``[start, end)`` (pure).

    Parameters
    ----------
    seed : int
        The same seed gives the same record for the same host and slot, whatever the window
        (each host and local day has its own random stream).
    start, end : datetime
        Aware moments; the history covers the 15-minute slots between them.
    tz : str
        The configured time zone (slots, days and the evening peak are local).
    hosts : sequence of DemoHost
        Default :data:`DEMO_HOSTS`.
    story : DemoStory, optional
        When the events happen; default :func:`demo_story` of ``start`` and ``end`` (pass the
        whole history's story to generate it in pieces).

    Returns
    -------
    list of SpeedTestResult
        Sorted by slot, then host; engine ``demo``; ``ok`` and ``failed`` records.
    """
    zone = get_zone(tz)
    story = story or demo_story(start, end, tz)
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    days = periods_between("daily", start_utc, end_utc, zone)
    records = [r for host in hosts for day in days
               for r in _day_records(host, story, seed, tz, day, start_utc, end_utc)]
    records.sort(key=lambda r: (r.slot_start, r.host_id))
    return records


def demo_config_text(store_root: str | Path, tz: str = "Asia/Kolkata",
                     hosts: Sequence[DemoHost] = DEMO_HOSTS) -> str:
    """The demo folder's ``speedlab.toml``: the store, the plans, a dashboard title saying demo data."""
    default = hosts[0]
    lines = [
        "# speedlab demo: GENERATED SAMPLE DATA (engine \"demo\"), not measurements.",
        "# Made by `speedlab demo`; rebuilt (this folder's demo data replaced) on every run.",
        f"store = {json.dumps(str(Path(store_root).resolve()))}",
        f'timezone = "{tz}"',
        f'host_id = "{default.host_id}"',
        "",
        "[plan]",
        f"download_mbps = {default.plan_download_mbps:g}",
        f"upload_mbps = {default.plan_upload_mbps:g}",
        "below_expected_fraction = 0.8",
    ]
    for host in hosts:
        if (host.plan_download_mbps, host.plan_upload_mbps) != (default.plan_download_mbps,
                                                                default.plan_upload_mbps):
            lines += ["", f"[plan.hosts.{host.host_id}]", f"download_mbps = {host.plan_download_mbps:g}",
                      f"upload_mbps = {host.plan_upload_mbps:g}"]
    lines += ["", "[dashboard]", 'title = "Internet Speed Overview (demo data)"', ""]
    return "\n".join(lines)


# =========================================================================== I/O: the demo folder

def prepare_folder(path: str | os.PathLike, buckets: Buckets = Buckets()) -> Path:
    """Make ``path`` an empty demo store, or clear the demo data a previous run left there.

    Only a missing folder, an empty one, or one holding :data:`MARKER` is used; from a
    previous demo folder only what the demo wrote is removed (the bucket folders, ``_speedlab``,
    ``speedlab.toml``, the marker).

    Raises
    ------
    DemoError
        If ``path`` is a file, or a folder with other content (someone's real data).
    """
    root = Path(path).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise DemoError(f"{root} is a file, not a folder: pass another --store for the demo")
    if root.is_dir() and any(root.iterdir()) and not (root / MARKER).is_file():
        raise DemoError(f"{root} already holds files and is not a speedlab demo folder (it has no "
                        f"{MARKER}): pass another --store, or empty that folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for name in sorted({*buckets.as_dict().values(), "_speedlab"}):
            if (root / name).is_dir():
                shutil.rmtree(root / name)
        for name in ("speedlab.toml", MARKER):
            (root / name).unlink(missing_ok=True)
        (root / MARKER).write_text(
            "This folder is a speedlab DEMO store: generated sample data (engine \"demo\"), not real\n"
            "measurements. `speedlab demo` rebuilds it on every run. Delete it whenever you like.\n",
            encoding="utf-8")
    except OSError as exc:
        raise DemoError(f"cannot prepare the demo folder {root}: {exc.strerror or exc}") from None
    return root


@dataclass
class WriteReport:
    """What :func:`write_records` did: ``stored``, ``slot_filled`` (already there),
    ``rejected`` ((slot, reason): failed validation) and ``failed`` ((slot, reason): the store
    refused)."""

    stored: int = 0
    slot_filled: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, other: WriteReport) -> None:
        self.stored += other.stored
        self.slot_filled += other.slot_filled
        self.rejected.extend(other.rejected)
        self.failed.extend(other.failed)

    @property
    def total(self) -> int:
        return self.stored + self.slot_filled + len(self.rejected) + len(self.failed)


def write_records(config: Config, records: Sequence[SpeedTestResult], *, store=None,
                  workers: int = 8, log: JobLog | None = None) -> WriteReport:
    """Write ``records`` through the collector's writer (:func:`speedlab.collect.store_result`:
    validation, slot guard, conditional write), ``workers`` at a time.

    One bad record or refused write is counted (and logged) and the others go on.
    """
    started = time.perf_counter()
    store = store if store is not None else config.open_store()
    report = WriteReport()

    def one(record: SpeedTestResult):
        try:
            return "stored" if store_result(config, record, store=store).status == "stored" else "slot_filled", None
        except InvalidRecord as exc:
            return "rejected", (f"{record.host_id} {record.slot}", str(exc))
        except StoreError as exc:
            return "failed", (f"{record.host_id} {record.slot}", str(exc))

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for status, detail in pool.map(one, records):
            if status == "stored":
                report.stored += 1
            elif status == "slot_filled":
                report.slot_filled += 1
            else:
                getattr(report, status).append(detail)
                if log is not None:
                    log.warning(f"demo record {status}: {detail[0]}: {detail[1]}")
    report.seconds = time.perf_counter() - started
    return report


def _fill_chunk(args) -> WriteReport:
    """Worker: generate one host's records for one stretch of days and write them."""
    config, root, seed, window, host, story = args
    records = generate(seed, window[0], window[1], config.timezone, hosts=[host], story=story)
    return write_records(config, records, store=LocalStore(root, durable=False), workers=4,
                         log=JobLog.for_config(config, "demo"))


def fill_store(config: Config, root: Path, seed: int, start: datetime, end: datetime, *,
               hosts: Sequence[DemoHost] = DEMO_HOSTS, processes: int | None = None,
               chunk_days: int = 7) -> WriteReport:
    """Generate the history and write it, in parallel processes (one per host and week).

    Writes skip the fsyncs (``LocalStore(durable=False)``): the demo can always be made again,
    and the fsyncs would cost most of the time.
    """
    started = time.perf_counter()
    story = demo_story(start, end, config.timezone)
    windows = []
    edge = start
    while edge < end:
        windows.append((edge, min(end, edge + timedelta(days=chunk_days))))
        edge = windows[-1][1]
    jobs = [(config, str(root), seed, window, host, story) for host in hosts for window in windows]
    report = WriteReport()
    processes = processes or min(len(jobs), os.cpu_count() or 1)
    if processes <= 1 or len(jobs) <= 1:
        for job in jobs:
            report.add(_fill_chunk(job))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context(method)) as pool:
            for part in pool.map(_fill_chunk, jobs):
                report.add(part)
    report.seconds = time.perf_counter() - started
    return report


# =========================================================================== I/O: rollups through papermill

def roll_up(config: Config, now: datetime) -> list:
    """The real rollups, as scheduled runs through papermill (the executed notebooks are kept
    under ``<demo>/_speedlab/runs/``).

    One ``scheduled/run_due.ipynb`` run at ``now`` rolls up the whole history: every hour,
    day, week, month and year whose rollup is due (the scheduler's catch-up, the same run
    ``speedlab scheduler run-due --via-notebook`` makes). The periods still in progress (today,
    this week, month and year) need no run: the dashboard shows their figures so far, computed
    from the finer summaries and the raw results (:mod:`speedlab.live`).

    Raises
    ------
    NotebookRunFailed
        If a run fails (its executed notebook is kept and named in the message).
    """
    from .notebook_runs import run_scheduled

    moment = now.astimezone(UTC).isoformat()
    # papermill warns about every parameter line it cannot infer a type from; the parameters
    # are injected all the same, so those warnings would only bury the demo's own output
    quiet = logging.getLogger("papermill")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        return [run_scheduled(config, "run_due", {"now": moment}, job="demo-run-due")]
    finally:
        quiet.setLevel(level)


# =========================================================================== the orchestrator

@dataclass
class DemoReport:
    """What :func:`run_demo` did."""

    root: Path
    config_path: Path
    start: datetime
    end: datetime
    story: DemoStory
    written: WriteReport
    runs: list = field(default_factory=list)
    rollup_seconds: float = 0.0
    served: int | None = None

    @property
    def ok(self) -> bool:
        """False when a generated result was rejected or could not be written."""
        return not (self.written.rejected or self.written.failed)


def run_demo(store: str | os.PathLike = DEFAULT_STORE, *, days: int = DEFAULT_DAYS, seed: int = DEFAULT_SEED,
             now: datetime | None = None, tz: str = "Asia/Kolkata", serve: bool = True, port: int = 8866,
             echo: Callable[[str], None] = print) -> DemoReport:
    """``speedlab demo``: fill a separate demo store, roll it up through papermill, serve it.

    Parameters
    ----------
    store : path
        The demo folder (default ``./speedlab-demo``): created, or rebuilt if it is a previous
        demo folder; any other non-empty folder is refused.
    days : int
        How many days of history, ending at ``now`` (1 to 1000).
    seed : int
        Same seed, same data.
    now : datetime, optional
        Where the history ends (aware); default the clock. A given ``now`` also pins the
        dashboard's clock.
    tz : str
        The time zone of the demo (slots, days, the evening peak).
    serve, port
        Serve the dashboard on 127.0.0.1:``port`` until Ctrl+C.
    echo : callable
        Where progress lines go.

    Raises
    ------
    DemoError
        For a bad ``days`` or an unusable folder.
    NotebookRunFailed
        If a rollup run fails.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 1000:
        raise DemoError(f"--days {days!r} must be a whole number from 1 to 1000")
    pinned = now is not None
    end = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    start = end - timedelta(days=days)
    root = prepare_folder(store)
    config_path = root / "speedlab.toml"
    config_path.write_text(demo_config_text(root, tz), encoding="utf-8")
    config = load_config(config_path, env={})
    log = JobLog.for_config(config, "demo")
    log.start("demo started", store=str(root), days=days, seed=seed, end=end.isoformat())
    story = demo_story(start, end, tz)
    echo(f"speedlab demo: generating {days} days of DEMO DATA (engine 'demo', seed {seed}) for "
         f"{', '.join(h.host_id for h in DEMO_HOSTS)} in {root}")
    for line in story.describe():
        echo(f"  - {line}")
    written = fill_store(config, root, seed, start, end)
    echo(f"speedlab demo: {written.stored} results written through the collector's writer in "
         f"{written.seconds:.1f} s" + (f"; {len(written.rejected)} rejected, {len(written.failed)} failed"
                                       if written.rejected or written.failed else ""))
    clock = time.perf_counter()
    runs = roll_up(config, end)
    rollup_seconds = time.perf_counter() - clock
    by_tier = (runs[0].result or {}).get("result", {}).get("by_tier", {}) if runs else {}
    echo(f"speedlab demo: rolled up through papermill in {rollup_seconds:.1f} s ("
         + ", ".join(f"{n} {t}" for t, n in by_tier.items()) + " due; the periods in progress are shown "
         f"so far); executed notebooks in {config.state_path / 'runs'}")
    report = DemoReport(root, config_path, start, end, story, written, runs, rollup_seconds)
    log.end("demo ready", stored=written.stored, rejected=len(written.rejected), failed=len(written.failed),
            rollup_seconds=round(rollup_seconds, 3))
    if serve:
        from .serve import serve as serve_dashboard
        report.served = serve_dashboard(
            config, port, now=end.isoformat() if pinned else None,
            announce=lambda url: echo(f"speedlab demo: dashboard (demo data) at {url} ; the same with "
                                      f"`speedlab dashboard --config {config_path}`; Ctrl+C stops"))
        echo("speedlab demo: the dashboard stopped")
        if report.served and report.served > 0:  # negative: stopped by a signal (Ctrl+C)
            raise DemoError(f"the dashboard server exited with status {report.served} (see its messages "
                            f"above; is port {port} taken? pass --port); the demo data is in {root}")
    else:
        echo(f"speedlab demo: demo data ready in {root}; serve it with `speedlab dashboard --config {config_path}`")
    return report
