"""Where the record's latency fields sit in the Ookla Speedtest CLI's result object (pure).

One table, :data:`OOKLA_PATHS`, for both readers of ``speedtest --format=json``: the ``ookla``
engine (:func:`speedlab.engine_ookla.latency_fields` and the ``ping`` of
:func:`~speedlab.engine_ookla.results_from_ookla`: lenient, ``None`` for a value that is absent
or not a number) and the importer's ``ookla`` format (:func:`speedlab.importers.parse_ookla`:
strict, a value that is not a finite number skips the line, naming its path). A field added
here reaches both. It lives apart from :mod:`speedlab.engine_ookla` because that module runs the
CLI (I/O) and the importers are pure.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LATENCY_PATHS", "OOKLA_PATHS", "PING_PATH", "ookla_value"]

#: ``ping.latency``: the idle round trip [ms], the record's ``ping_ms`` (speedtest-cli's ``ping``).
PING_PATH = "ping.latency"
#: The record's latency fields and their dotted JSON paths [ms, %]: idle round trip and jitter,
#: the interquartile mean round trip during each transfer, and ``packetLoss`` (absent when the
#: CLI could not measure it).
LATENCY_PATHS = (
    ("latency_idle_ms", PING_PATH),
    ("jitter_ms", "ping.jitter"),
    ("latency_download_ms", "download.latency.iqm"),
    ("latency_upload_ms", "upload.latency.iqm"),
    ("packet_loss_pct", "packetLoss"),
)
#: Every record field read from those paths: ``ping_ms`` and :data:`LATENCY_PATHS`.
OOKLA_PATHS = (("ping_ms", PING_PATH), *LATENCY_PATHS)


def ookla_value(result: dict, path: str) -> Any:
    """The value at the dotted ``path`` of the CLI's ``result`` object (``None`` where a step is absent).

    Raises
    ------
    ValueError
        When a step before the last holds something other than a JSON object.
    """
    value: Any = result
    steps = path.split(".")
    for depth, step in enumerate(steps):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ValueError(f"{'.'.join(steps[:depth]) or 'the result'} must be an object, not {value!r}")
        value = value.get(step)
    return value
