"""Prometheus metric families from plain figures: each host's newest result, its test counts
and the current day's percentiles so far (pure).

:mod:`speedlab.metrics_io` reads the figures from the store on every scrape and hands them to
:func:`metric_families`; ``GET /metrics`` (:mod:`speedlab.api`) renders them in Prometheus' text
exposition format. ``docs/metrics.md`` is the user's guide.

Names and units follow Prometheus' conventions: base units (bits per second, seconds), a
``_total`` suffix on counters only. Every per-host sample carries the labels ``host`` and
``connection_type`` (the host's newest result's connection type, so all series of a host share
one label set). A figure that is ``null`` (a failed test has no speeds, a result without
jitter) is left out, never exported as 0.

==========================================  =======  ===============================================
name                                        type     what
==========================================  =======  ===============================================
``speedlab_download_bits_per_second``       gauge    newest result's download [bit/s]
``speedlab_upload_bits_per_second``         gauge    newest result's upload [bit/s]
``speedlab_ping_seconds``                   gauge    newest result's ping [s]
``speedlab_jitter_seconds``                 gauge    newest result's jitter [s]
``speedlab_latency_idle_seconds``           gauge    newest result's idle round trip [s]
``speedlab_latency_download_seconds``       gauge    newest result's round trip during the download [s]
``speedlab_latency_upload_seconds``         gauge    newest result's round trip during the upload [s]
``speedlab_packet_loss_ratio``              gauge    newest result's packet loss (0-1)
``speedlab_last_test_timestamp_seconds``    gauge    when the newest test ran [s since the epoch]
``speedlab_last_test_success``              gauge    1 if the newest test succeeded, else 0
``speedlab_tests_total``                    counter  every test kept (ok + failed), all time
``speedlab_failed_tests_total``             counter  failed tests, all time
``speedlab_today_tests``                    gauge    tests kept today so far (ok + failed)
``speedlab_today_failed_tests``             gauge    failed tests today so far
``speedlab_today_download_bits_per_second`` gauge    today's download percentiles (label ``quantile``)
``speedlab_today_upload_bits_per_second``   gauge    today's upload percentiles
``speedlab_today_ping_seconds``             gauge    today's ping percentiles
``speedlab_exporter_read_errors``           gauge    reads that failed during this scrape
==========================================  =======  ===============================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from .aggregate import MetricStats
from .errors import InvalidRecord
from .records import SpeedTestResult

__all__ = ["LABELS", "PREFIX", "QUANTILES", "HostFigures", "metric_families"]

PREFIX = "speedlab"
#: The labels of every per-host sample.
LABELS = ("host", "connection_type")
#: The percentiles of the current day exported for each metric.
QUANTILES = (0.1, 0.5, 0.9, 0.95, 0.99)
#: Bits per second in one Mbit/s; seconds in one millisecond.
BITS_PER_MBIT = 1e6
SECONDS_PER_MS = 1e-3

#: (record field / summary statistic, metric name, help, factor to base units)
_NEWEST = (
    ("download_mbps", "download_bits_per_second", "Download speed of the newest test [bit/s].", BITS_PER_MBIT),
    ("upload_mbps", "upload_bits_per_second", "Upload speed of the newest test [bit/s].", BITS_PER_MBIT),
    ("ping_ms", "ping_seconds", "Ping (idle latency) of the newest test [s].", SECONDS_PER_MS),
    ("jitter_ms", "jitter_seconds", "Jitter of the newest test [s].", SECONDS_PER_MS),
    ("latency_idle_ms", "latency_idle_seconds", "Idle round trip of the newest test (median probe) [s].",
     SECONDS_PER_MS),
    ("latency_download_ms", "latency_download_seconds",
     "Round trip during the newest test's download (latency under load) [s].", SECONDS_PER_MS),
    ("latency_upload_ms", "latency_upload_seconds",
     "Round trip during the newest test's upload (latency under load) [s].", SECONDS_PER_MS),
    ("packet_loss_pct", "packet_loss_ratio", "Packet loss of the newest test (0-1).", 0.01),
)
_TODAY = (
    ("download_mbps", "today_download_bits_per_second", "download [bit/s]", BITS_PER_MBIT),
    ("upload_mbps", "today_upload_bits_per_second", "upload [bit/s]", BITS_PER_MBIT),
    ("ping_ms", "today_ping_seconds", "ping [s]", SECONDS_PER_MS),
)


@dataclass(frozen=True)
class HostFigures:
    """What one scrape knows about one host.

    Attributes
    ----------
    host_id : str
    newest : SpeedTestResult or None
        The host's newest result (``None``: none, or it could not be read).
    today : mapping or None
        The current day's summary so far (:func:`speedlab.live.live_summary`'s shape, with
        ``stats``), ``None`` if the day has nothing yet or could not be read.
    totals : tuple of int or None
        ``(tests, failed)`` of all time (tests counts ok and failed ones); ``None`` when not
        known in this scrape (the counters are then left out, never lowered).
    """

    host_id: str
    newest: SpeedTestResult | None = None
    today: Mapping[str, Any] | None = None
    totals: tuple[int, int] | None = None

    @property
    def connection_type(self) -> str:
        """The ``connection_type`` label: the newest result's, else ``Unknown``."""
        return self.newest.connection_type if self.newest is not None else "Unknown"

    @property
    def labels(self) -> list[str]:
        """The values of :data:`LABELS`."""
        return [self.host_id, self.connection_type]


def _gauge(name: str, documentation: str, labels: Sequence[str] = LABELS) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, labels=list(labels))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _quantiles(today: Mapping[str, Any], field: str, quantiles: Iterable[float]) -> list[tuple[float, float]]:
    """``(q, value)`` for the percentiles the day's sketch of ``field`` can give (none for a
    summary without statistics or a sketch missing values, e.g. the original system's)."""
    stats = today.get("stats")
    data = stats.get(field) if isinstance(stats, Mapping) else None
    if not isinstance(data, Mapping):
        return []
    try:
        metric = MetricStats.from_dict(data)
    except InvalidRecord:
        return []
    return [(q, value) for q in quantiles if (value := metric.quantile(q)) is not None]


def metric_families(hosts: Iterable[HostFigures], *, quantiles: Sequence[float] = QUANTILES,
                    read_errors: int = 0) -> list[Metric]:
    """The metric families of one scrape (see the module docstring for names and units).

    Parameters
    ----------
    hosts : iterable of HostFigures
        One per host; hosts without any figure give no samples.
    quantiles : sequence of float
        The percentiles of the current day to export (``0 <= q <= 1``).
    read_errors : int
        How many reads failed while gathering ``hosts`` (exported as
        ``speedlab_exporter_read_errors``).

    Returns
    -------
    list of Metric
        Families in a fixed order; a family without samples is still listed (Prometheus shows
        its HELP and TYPE).
    """
    newest = {field: (_gauge(name, text), factor) for field, name, text, factor in _NEWEST}
    stamp = _gauge("last_test_timestamp_seconds", "When the newest test ran [s since the Unix epoch].")
    success = _gauge("last_test_success", "1 if the newest test succeeded, 0 if it failed.")
    tests = CounterMetricFamily(f"{PREFIX}_tests", "Tests kept (one per host and 15-minute slot, ok and "
                                "failed), all time: stored summaries plus the periods in progress.",
                                labels=list(LABELS))
    failed = CounterMetricFamily(f"{PREFIX}_failed_tests", "Failed tests kept, all time.", labels=list(LABELS))
    today_tests = _gauge("today_tests", "Tests kept today so far (ok and failed; resets at local midnight).")
    today_failed = _gauge("today_failed_tests", "Failed tests today so far (resets at local midnight).")
    today = {field: (_gauge(name, f"Today's {text} percentiles so far (quantile sketch, 1 % relative error).",
                            [*LABELS, "quantile"]), factor) for field, name, text, factor in _TODAY}
    for host in hosts:
        labels = host.labels
        record = host.newest
        if record is not None:
            for field, (family, factor) in newest.items():
                value = _number(getattr(record, field))
                if value is not None:
                    family.add_metric(labels, value * factor)
            stamp.add_metric(labels, record.time_utc.timestamp())
            success.add_metric(labels, 1.0 if record.status == "ok" else 0.0)
        if host.totals is not None:
            tests.add_metric(labels, float(host.totals[0]))
            failed.add_metric(labels, float(host.totals[1]))
        if host.today is not None:
            kept = int(host.today.get("records_aggregated") or 0)
            failures = int(host.today.get("failed_tests") or 0)
            today_tests.add_metric(labels, float(kept + failures))
            today_failed.add_metric(labels, float(failures))
            for field, (family, factor) in today.items():
                for q, value in _quantiles(host.today, field, quantiles):
                    family.add_metric([*labels, repr(q)], value * factor)
    errors = GaugeMetricFamily(f"{PREFIX}_exporter_read_errors", "Store reads that failed during this scrape "
                               "(the hosts concerned lack those samples; see the api job log).",
                               value=float(read_errors))
    return [*(family for family, _ in newest.values()), stamp, success, tests, failed, today_tests,
            today_failed, *(family for family, _ in today.values()), errors]
