"""What a summary was computed from, as one digest: how a backfill knows a period need not be
rolled up again.

A summary is a deterministic function of its inputs. An hour's: the raw objects listed in the
hour (every host's, by key, version, size and modified time), the per-host hourly summaries of
the anomaly window before it (by the SHA-256 of their bytes), the settings that shape figures
and the code that computes them. A backfill rolls up a local day's hours together, so their
digest is one (:func:`hours_inputs`): the raw objects of those hours and the per-host
summaries of every other hour of their windows (the hours' own summaries are outputs, made
from the rest). A longer period's: its children's summaries (all hosts' and each host's, by
SHA-256) and the modified times of the all-hosts ones (its provenance names the newest):
:func:`period_inputs`. Each is one SHA-256 (hex), or ``None`` when one input is not known
exactly (an object listed without a version, a window summary this run did not settle), so
that the periods are rolled up.

A backfill records the digest beside each summary it settles, in the summary table's
``inputs`` column (docs/tables.md): for an all-hosts summary the digest, ``:`` and how many
per-host summaries were computed with it. The row holds the digest only while its
``source_version`` is the object's version, so the claim "this object is what those inputs
give" cannot outlive the object. A backfill finding every summary of a period current with the
digest it computes now takes the stored summaries as they are (:meth:`speedlab.roller.Roller`);
``backfill(recompute=True)`` (``--recompute``) rolls every period up whatever the digests say.

Bump :data:`REVISION` whenever a change to the code changes a summary's bytes for the same
inputs: every digest changes with it, so the next backfill rolls everything up once.

Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from . import __version__

__all__ = ["ABSENT", "REVISION", "all_hosts_inputs", "base_inputs", "hours_inputs", "period_inputs",
           "split_all_hosts_inputs"]

#: The aggregation code's revision (see the module docstring).
REVISION = 1
#: A summary known not to exist (distinct from one whose bytes are not known: ``None``).
ABSENT = "-"
#: Settings that change how a rollup runs but not one figure it writes.
_OPERATIONAL = frozenset({"max_workers", "runs_in_store", "late_data_days", "staleness_grace_minutes"})


def _digest(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":"), default=str).encode()).hexdigest()


def base_inputs(config: Any, settings: Any, hosts: Sequence[str]) -> str:
    """The inputs every summary of a run shares: :data:`REVISION`, speedlab's version, the time
    zone, the plans and below-expected fraction, the figure-shaping ``[aggregate]`` settings and
    the hosts (their order aside).

    Parameters
    ----------
    config : speedlab.config.Config
        ``timezone``, ``plan``, ``host_plans`` and ``below_expected_fraction`` are read.
    settings : speedlab.settings.AggregateSettings
        Every field but the operational ones (workers, where runs go, how far back run-due
        looks, the staleness grace).
    hosts : sequence of str
        The hosts with raw data.
    """
    shaping = {k: v for k, v in dataclasses.asdict(settings).items() if k not in _OPERATIONAL}
    return _digest([REVISION, __version__, config.timezone, repr(config.plan),
                    repr(sorted((config.host_plans or {}).items())), config.below_expected_fraction,
                    sorted(shaping.items()), sorted(hosts)])


def hours_inputs(base: str, labels: Sequence[str], listed: Iterable[Any],
                 window: Mapping[str, Sequence[str | None]]) -> str | None:
    """The digest of the inputs of hours rolled up together, or ``None`` when one is not known
    exactly.

    Parameters
    ----------
    base : str
        :func:`base_inputs`.
    labels : sequence of str
        The hours' labels.
    listed : iterable of speedlab.storebase.ObjectInfo
        Every object listed in those hours, of every host (those outside the layout included).
    window : mapping
        host -> the SHA-256 of each per-host hourly summary of the other hours of their anomaly
        windows, in order (:data:`ABSENT`: no summary; ``None``: not known).
    """
    objects = []
    for info in listed:
        if info.version is None:
            return None
        objects.append(f"{info.key}\t{info.version}\t{info.size}\t{info.modified.isoformat()}")
    shas = sorted((host, list(window[host])) for host in window)
    if any(sha is None for _, row in shas for sha in row):
        return None
    return _digest([base, "hourly", sorted(labels), "\n".join(sorted(objects)), shas])


def period_inputs(base: str, tier: str, label: str,
                  children: Sequence[tuple[str, datetime | None, Mapping[str | None, str] | None]]) -> str | None:
    """The digest of a daily, weekly, monthly or yearly period's inputs, or ``None``.

    Parameters
    ----------
    children : sequence of (label, modified, shas)
        Each child period: its label; the modified time of its all-hosts summary (``None``: no
        summary); the SHA-256 of each summary it has, by host (``None`` for all hosts), or
        ``None`` when they are not known (the period is then rolled up).
    """
    rows: list[list[Any]] = []
    for child, modified, shas in children:
        if modified is None:
            rows.append([child, ABSENT])
            continue
        if shas is None or shas.get(None) is None:
            return None
        rows.append([child, modified.isoformat(), shas[None],
                     sorted((host, sha) for host, sha in shas.items() if host is not None)])
    return _digest([base, tier, label, rows])


def all_hosts_inputs(digest: str, per_host: int) -> str:
    """The ``inputs`` value of an all-hosts summary: the digest and the number of per-host
    summaries computed with it (``"<sha256>:3"``)."""
    return f"{digest}:{per_host}"


def split_all_hosts_inputs(value: str | None) -> tuple[str, int] | None:
    """:func:`all_hosts_inputs` read back; ``None`` for a missing or malformed value."""
    if not value:
        return None
    digest, sep, count = value.rpartition(":")
    if not sep or len(digest) != 64 or not count.isdigit():
        return None
    return digest, int(count)
