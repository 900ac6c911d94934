"""The Prometheus exporter: on every scrape, each host's figures read from the store.

:class:`SpeedlabCollector` is a ``prometheus_client`` custom collector on a private
:class:`~prometheus_client.CollectorRegistry` (:func:`metrics_registry`), so nothing is kept
between scrapes but the shared rows cache and the counters' high-water marks. Per host, one
scrape reads

* the newest result: the walk of :func:`speedlab.latest.newest_raw` (a few small listings)
  and one GET, never cached;
* the current day so far: :func:`speedlab.live.live_summary` over the day's stored hours and
  the raw results of the hour not rolled up yet, as the dashboard's live row reads it;
* all-time test counts: :func:`speedlab.query.rows` ``yearly`` from the host's first year
  (stored yearly summaries plus the year in progress, live).

The last two go through the rows cache (:func:`speedlab.cache.cache_for`, 120 s, shared with
the dashboard's kernels), so a scrape every 15 s reads the summaries once in two minutes.

``speedlab_tests_total`` and ``speedlab_failed_tests_total`` are counters, so they must never go
down between scrapes. The figures they come from can (a raw object deleted, a summary rewritten,
a rollup that has not run when its period has settled), so this collector never exports a lower
value than it exported before for that host (a high-water mark per process), and leaves them out
of a scrape where a yearly row is unreadable (undercounting would read as a counter reset).

:func:`metric_families` (:mod:`speedlab.metrics`) turns the figures into metric families; it is
pure and tested on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from .cache import cache_for, cache_key
from .config import Config
from .errors import InvalidRecord, SpeedlabError, StoreUnavailable
from .joblog import JobLog
from .latest import newest_raw
from .layout import raw_host_prefix, summary_prefix
from .live import live_summary
from .metrics import QUANTILES, HostFigures, metric_families
from .periods import UTC, get_zone, period_of
from .query import rows
from .reader import MAX_WORKERS, fetch_many, list_hosts, parse_result
from .records import SpeedTestResult
from .rowbuild import MAX_DAYS
from .rowsource import ViewSource
from .storebase import Store

__all__ = ["SpeedlabCollector", "metrics_registry", "read_host", "render"]


class _Errors:
    """Counts (and logs) the reads of one scrape that failed; thread-safe."""

    def __init__(self, log: JobLog | None) -> None:
        self.count = 0
        self.log = log
        self._lock = threading.Lock()

    def add(self, what: str, host: str, exc: Exception) -> None:
        with self._lock:
            self.count += 1
        if self.log is not None:
            self.log.warning(f"metrics: {what} of {host} not read: {exc}", host=host)


def _newest(store: Store, config: Config, host: str, now: datetime, errors: _Errors) -> SpeedTestResult | None:
    """The host's newest result (``None``: none, or unreadable, which is counted)."""
    found = newest_raw(store, config.buckets, host, 1, now=now, tz=config.timezone)
    if not found:
        return None
    key = found[0][1].key
    body = fetch_many(store, config.buckets.raw, [key])[key]
    if isinstance(body, Exception):
        errors.add("the newest result", host, body)
        return None
    try:
        return parse_result(key, body)
    except InvalidRecord as exc:
        errors.add("the newest result", host, exc)
        return None


def _today(store: Store, config: Config, host: str, now: datetime, log: JobLog | None) -> dict | None:
    """The current day's summary so far for ``host`` (``None``: nothing yet)."""
    day = period_of("daily", now, get_zone(config.timezone))
    source = ViewSource(store, config, host, now, hosts=lambda: [host], log=log)
    source.live_from = day.start
    return live_summary(day, host, now, stored=source.stored, results=source.results_of,
                        plan_for=config.plan_for, fraction=config.below_expected_fraction,
                        timezone=config.timezone, settings=config.aggregate, rolled_up_before=source.settled,
                        unusable=source.unusable)


def _first_year(store: Store, config: Config, host: str) -> int | None:
    """The host's first year with raw results or a yearly summary (two listings)."""
    years = []
    for bucket, prefix in ((config.buckets.raw, raw_host_prefix(host)),
                           (config.buckets.for_tier("yearly"), summary_prefix(host))):
        for folder in store.list_prefixes(bucket, prefix):
            name = folder[len(prefix):].rstrip("/")
            if name.startswith("year=") and name[5:].isdigit():
                years.append(int(name[5:]))
    return min(years) if years else None


def _totals(store: Store, config: Config, host: str, now: datetime, pinned: datetime | None,
            log: JobLog | None) -> dict:
    """``{"tests", "failed", "unreadable"}`` of all time for ``host`` (the yearly rows)."""
    first = _first_year(store, config, host)
    if first is None:
        return {"tests": 0, "failed": 0, "unreadable": 0}
    this_year = period_of("yearly", now, get_zone(config.timezone)).start.year
    years = max(1, min(MAX_DAYS["yearly"], this_year - first + 1))
    found = rows("yearly", years, host, store=store, config=config, now=pinned, log=log)
    return {"tests": sum(int(r["tests"] or 0) + int(r["failed"] or 0) for r in found),
            "failed": sum(int(r["failed"] or 0) for r in found),
            "unreadable": sum(r["status"] == "unreadable" for r in found)}


def read_host(store: Store, config: Config, host: str, now: datetime | None = None, *,
              log: JobLog | None = None, errors: _Errors | None = None) -> HostFigures:
    """One host's figures for a scrape (the newest result, today so far, all-time counts).

    Parameters
    ----------
    store, config
        Where to read; the buckets, zone and plans.
    host : str
        The host id.
    now : datetime, optional
        A pinned clock (aware); default the live clock. Results dated after it are not the newest.
    log : JobLog, optional
        Where reads that failed are reported.

    Raises
    ------
    StoreUnavailable
        When the store cannot be reached (other read failures only leave figures out).
    """
    errors = errors or _Errors(log)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    cache = cache_for(store, config, now)
    day = period_of("daily", moment, get_zone(config.timezone))
    newest = _newest(store, config, host, moment, errors)
    today, totals = None, None
    try:
        held, _ = cache.get_or_load(cache_key(f"metrics-today-{day.label}", host, "daily", 1),
                                    lambda: {"summary": _today(store, config, host, moment, log)}, host=host)
        today = held["summary"]
    except StoreUnavailable:
        raise
    except SpeedlabError as exc:
        errors.add("today's summary", host, exc)
    try:
        counted, _ = cache.get_or_load(cache_key("metrics-totals", host, "yearly", 0),
                                       lambda: _totals(store, config, host, moment, now, log), host=host)
        if counted["unreadable"]:
            errors.add("the all-time counts", host, InvalidRecord(f"{counted['unreadable']} unreadable yearly row(s)"))
        else:
            totals = (counted["tests"], counted["failed"])
    except StoreUnavailable:
        raise
    except SpeedlabError as exc:
        errors.add("the all-time counts", host, exc)
    return HostFigures(host, newest, today, totals)


class SpeedlabCollector(Collector):
    """A ``prometheus_client`` collector reading the store on every scrape (module docstring).

    Parameters
    ----------
    config : Config
    store : Store, optional
        Default ``config.open_store()``.
    now : datetime, optional
        A pinned clock (``speedlab dashboard --now``); default the live clock.
    log : JobLog, optional
        Where failed reads are reported.
    quantiles : sequence of float
        The current day's percentiles to export.
    max_workers : int
        Hosts read at once.
    """

    def __init__(self, config: Config, store: Store | None = None, *, now: datetime | None = None,
                 log: JobLog | None = None, quantiles=QUANTILES, max_workers: int = MAX_WORKERS) -> None:
        self.config, self.store = config, store if store is not None else config.open_store()
        self.now, self.log, self.quantiles, self.max_workers = now, log, tuple(quantiles), max_workers
        self._high: dict[str, tuple[int, int]] = {}  # host -> the highest (tests, failed) exported
        self._lock = threading.Lock()

    def figures(self) -> tuple[list[HostFigures], int]:
        """Every host's figures and how many reads failed (counters never below their last value)."""
        errors = _Errors(self.log)
        hosts = list_hosts(self.store, self.config.buckets)
        if not hosts:
            return [], 0
        with ThreadPoolExecutor(max(1, min(self.max_workers, len(hosts)))) as pool:
            found = list(pool.map(lambda h: read_host(self.store, self.config, h, self.now, log=self.log,
                                                      errors=errors), hosts))
        out = []
        with self._lock:
            for figures in found:
                if figures.totals is not None:
                    before = self._high.get(figures.host_id, (0, 0))
                    high = (max(before[0], figures.totals[0]), max(before[1], figures.totals[1]))
                    self._high[figures.host_id] = high
                    figures = HostFigures(figures.host_id, figures.newest, figures.today, high)
                out.append(figures)
        return out, errors.count

    def collect(self) -> Iterator[Metric]:
        """The metric families of this moment (called by the registry on every scrape)."""
        figures, errors = self.figures()
        yield from metric_families(figures, quantiles=self.quantiles, read_errors=errors)


def metrics_registry(config: Config, store: Store | None = None, *, now: datetime | None = None,
                     log: JobLog | None = None) -> CollectorRegistry:
    """A private registry holding one :class:`SpeedlabCollector` (no process or GC metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SpeedlabCollector(config, store, now=now, log=log))
    return registry


def render(registry: CollectorRegistry) -> tuple[str, str]:
    """``(text, content type)``: the registry's metrics in Prometheus' text exposition format."""
    return generate_latest(registry).decode("utf-8"), CONTENT_TYPE_LATEST
