"""``speedlab up``: everything on one machine, in one command, until Ctrl+C.

At start and then at every 15-minute slot (plus the collector's start offset) it runs the
collector (:func:`speedlab.collect.collect_once`), then the rollups that are due
(:func:`speedlab.rollup.run_due`), while the dashboard (and the HTTP API) is served by
Voilà (:func:`speedlab.serve.launch`, the dashboard command's launcher). No cron, no S3:
the data lives in the local store (``./speedlab-data`` unless configured otherwise).

**Restarting loses nothing and duplicates nothing.** Everything is in the store: a slot that
already holds a result is not tested again (the collector's slot guard and conditional
write), and ``run_due`` works out from the store what is missing or stale, so a restart
picks up exactly where the last run stopped, and rollups missed while ``up`` was down are
caught up on the first cycle.

The clock is injectable: :func:`run_up` takes ``clock`` (a function returning the current
aware time) and ``wait`` (how to sleep, interruptibly). For tests and demonstrations,
:func:`fast_clock` makes a 15-minute slot last ``interval_s`` real seconds
(``speedlab up --interval-seconds 5 --start 2026-01-01T10:30+05:30``, hidden options).
"""

from __future__ import annotations

import importlib.util
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .collect import collect_once
from .config import Config
from .errors import ConfigError, ServeError, SpeedlabError, UpError
from .joblog import JobLog
from .masking import mask_secrets
from .os_entries import default_offset_minutes
from .periods import SLOT, UTC, slot_of

__all__ = ["UpError", "UpReport", "fast_clock", "next_run_at", "real_clock", "run_up", "up"]

#: Real seconds per slot when nothing is simulated.
SLOT_SECONDS = SLOT.total_seconds()


# =========================================================================== clocks (pure-ish)

def real_clock() -> datetime:
    """The current time (aware, UTC)."""
    return datetime.now(UTC)


def fast_clock(start: datetime, interval_s: float, monotonic: Callable[[], float] = time.monotonic
               ) -> Callable[[], datetime]:
    """A clock that reads ``start`` when it is first read, and on which one 15-minute slot
    then lasts ``interval_s`` real seconds (``interval_s=900`` runs at the real pace)."""
    if interval_s <= 0:
        raise ConfigError(f"interval {interval_s!r} s must be positive")
    rate = SLOT_SECONDS / interval_s
    origin: list[float] = []
    start_utc = start.astimezone(UTC)

    def clock() -> datetime:
        if not origin:
            origin.append(monotonic())
        return start_utc + timedelta(seconds=(monotonic() - origin[0]) * rate)
    clock.rate = rate  # type: ignore[attr-defined]  # the rate rides on the clock function
    return clock


def next_run_at(now: datetime, offset_minutes: int, tz: str, done_slot: datetime | None = None) -> datetime:
    """When the next cycle runs (pure): ``offset_minutes`` into the current slot if no cycle has
    run in it yet (``now`` if that moment has passed: a late cycle still gets its slot), else
    ``offset_minutes`` into the next slot. ``done_slot`` is the slot the last cycle ran in."""
    slot = slot_of(now, tz)
    if done_slot is None or slot_of(done_slot, tz) != slot:
        candidate = slot + timedelta(minutes=offset_minutes)
        return max(candidate, now.astimezone(slot.tzinfo))
    return (slot.astimezone(UTC) + SLOT).astimezone(slot.tzinfo) + timedelta(minutes=offset_minutes)


# =========================================================================== the loop

@dataclass
class UpReport:
    """What a :func:`run_up` did: one dict per cycle (``time``, ``slot``, ``collect``,
    ``message``, ``rollups``, ``error``)."""

    cycles: list[dict] = field(default_factory=list)
    dashboard_url: str | None = None

    @property
    def stored(self) -> int:
        """Cycles whose measurement was stored."""
        return sum(c["collect"] == "stored" for c in self.cycles)


def _data_location(config: Config) -> str:
    store = config.open_store()
    return str(store.local_root) if store.local_root is not None else mask_secrets(config.store, config.secrets)


def run_up(config: Config, *, clock: Callable[[], datetime] = real_clock, rate: float = 1.0,
           offset_minutes: int | None = None, serve: bool = True, port: int = 8866, api: bool = True,
           engine: Callable[[], dict] | None = None, stop: threading.Event | None = None,
           max_cycles: int | None = None, echo: Callable[[str], None] = print,
           ready_timeout_s: float = 60.0) -> UpReport:
    """Collect at every slot, roll up what is due, serve the dashboard; until ``stop`` or Ctrl+C.

    Parameters
    ----------
    config : Config
        Store, host, time zone, plans, ``[collector]`` settings.
    clock : callable
        ``clock() -> aware datetime``: the time the collector and the rollups run at.
    rate : float
        Clock seconds per real second (``fast_clock(...).rate``; 1 for the real clock): how
        long to wait between cycles.
    offset_minutes : int, optional
        Minutes into each slot to collect (0-14); default ``[collector] start_offset_minutes``,
        else the per-host value ``speedlab schedule`` uses.
    serve, port, api
        Serve the dashboard (and with ``api`` the HTTP API) on 127.0.0.1:``port``.
    engine : callable, optional
        The speed test engine (default: the one ``[collector] engine`` names, with the
        ``[collector]`` settings).
    stop : threading.Event, optional
        Set it to end the loop (Ctrl+C does too).
    max_cycles : int, optional
        Stop after this many cycles (tests).
    echo : callable
        Where the one-line progress messages go.

    Raises
    ------
    ConfigError
        For a bad ``[collector]`` table (checked before anything starts).
    StoreUnavailable
        If a missing local store folder cannot be created (``up`` creates the folder on its
        first run, but not missing parents: ``--store /mistyped/path`` is refused).
    UpError
        If the dashboard server cannot start.
    """
    settings = config.collector
    if offset_minutes is None:
        offset_minutes = settings.start_offset_minutes
    if offset_minutes is None:
        offset_minutes = default_offset_minutes(config.host_id)
    stop = stop or threading.Event()
    config.open_store(create=True)  # `up` makes its store on first run (./speedlab-data), not its parents
    log = JobLog.for_config(config, "up")
    report = UpReport()
    where = _data_location(config)
    log.start("up started", store=config.store, port=port if serve else None, offset_minutes=offset_minutes)
    process = None
    from .rollup import run_due
    from .serve import launch, stop as stop_server, wait_until_serving
    if api and importlib.util.find_spec("speedlab.api") is None:
        api = False  # an installation without the API module still gets the dashboard
    try:
        if serve:
            process = launch(config, port, api=api)
            report.dashboard_url = f"http://127.0.0.1:{port}/"
            try:
                ready = wait_until_serving(process, port, ready_timeout_s)
            except ServeError as exc:
                raise UpError(str(exc)) from exc
            if not ready:
                log.warning("the dashboard is slow to start", port=port)
                echo(f"warning: the dashboard at {report.dashboard_url} has not answered yet; it may still be starting")
            echo(f"speedlab up: dashboard at {report.dashboard_url}" + (
                f" (API at http://127.0.0.1:{port}/api/)" if api else ""))
        echo(f"speedlab up: data in {where} (host {config.host_id}, time zone {config.timezone}); "
             f"a speed test every 15 minutes at +{offset_minutes} min, rollups when due; Ctrl+C stops")
        while not stop.is_set():
            report.cycles.append(_cycle(config, clock, engine, run_due, log, echo))
            if process is not None and process.poll() is not None:
                log.warning(f"the dashboard server stopped (status {process.returncode}); starting it again")
                echo(f"warning: the dashboard server stopped (status {process.returncode}); restarting it")
                process = launch(config, port, api=api)
            if max_cycles is not None and len(report.cycles) >= max_cycles:
                break
            now = clock()
            due = next_run_at(now, offset_minutes, config.timezone,
                              datetime.fromisoformat(report.cycles[-1]["slot"]))
            _sleep(stop, max(0.0, (due.astimezone(UTC) - now.astimezone(UTC)).total_seconds() / rate))
    except KeyboardInterrupt:
        echo("speedlab up: stopping")
    finally:
        if process is not None:
            stop_server(process)
        log.end("up stopped", cycles=len(report.cycles), stored=report.stored)
        echo(f"speedlab up: stopped ({len(report.cycles)} cycle(s), {report.stored} result(s) stored)")
    return report


def _sleep(stop, seconds: float, step_s: float = 1.0) -> None:
    """Wait ``seconds`` unless ``stop`` is set, in short steps: a Ctrl+C that the kernel hands to
    another thread (polars' worker threads do not block signals) is acted on within a step."""
    left = seconds
    while left > 0 and not stop.is_set():
        step = min(step_s, left)
        stop.wait(step)
        left -= step


def _cycle(config: Config, clock, engine, run_due, log: JobLog, echo) -> dict:
    """One collect + run-due; failures are logged and reported, never raised (the loop goes on)."""
    now = clock()
    slot = slot_of(now, config.timezone)
    cycle = {"time": now.isoformat(), "slot": slot.isoformat(), "collect": None, "message": "",
             "rollups": None, "error": None}
    try:
        outcome = collect_once(config, now=now, engine=engine)
        cycle.update(collect=outcome.status, message=outcome.message)
        echo(f"{slot:%Y-%m-%d %H:%M}: {outcome.status}: {outcome.message}")
    except SpeedlabError as exc:
        cycle.update(collect="error", error=str(exc))
        log.error(f"collector run failed: {exc}", slot=slot.isoformat())
        echo(f"{slot:%Y-%m-%d %H:%M}: collector error: {exc}")
    try:
        rolled = run_due(config, clock())
        cycle["rollups"] = rolled.periods
        if rolled.periods:
            tiers = ", ".join(f"{n} {t}" for t, n in rolled.to_dict()["by_tier"].items())
            echo(f"{slot:%Y-%m-%d %H:%M}: rolled up {tiers}")
    except SpeedlabError as exc:
        cycle["error"] = (cycle["error"] + "; " if cycle["error"] else "") + str(exc)
        log.error(f"run-due failed: {exc}", slot=slot.isoformat())
        echo(f"{slot:%Y-%m-%d %H:%M}: rollup error: {exc}")
    return cycle


def up(config: Config, *, port: int = 8866, serve: bool = True, api: bool = True,
       interval_s: float | None = None, start: datetime | None = None,
       echo: Callable[[str], None] = print) -> UpReport:
    """What ``speedlab up`` runs: :func:`run_up` on the real clock (or, with ``interval_s``/
    ``start``, on a :func:`fast_clock`), stopping cleanly on Ctrl+C or SIGTERM."""
    if interval_s is not None or start is not None:
        clock = fast_clock(start or real_clock(), interval_s or SLOT_SECONDS)
        rate = clock.rate  # type: ignore[attr-defined]  # set by fast_clock
    else:
        clock, rate = real_clock, 1.0
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):  # SIGTERM (a service manager) stops like Ctrl+C
            stop.set()
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        return run_up(config, clock=clock, rate=rate, serve=serve, port=port, api=api, stop=stop, echo=echo)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
