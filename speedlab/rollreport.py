"""What a rollup, backfill or run-due did: :class:`RollupReport` (:mod:`speedlab.roller` fills it)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .periods import TIERS
from .records import TierSummary
from .tables import TablesReport
from .text import rollup_line

__all__ = ["RollupReport"]


@dataclass
class RollupReport:
    """What a rollup, backfill or run-due did.

    Attributes
    ----------
    items : list of dict
        One per period rolled up: ``tier``, ``period``, ``reason``, ``records``,
        ``rejected``, ``hosts``; and ``"inputs_unchanged": True`` for a period a backfill
        found computed from exactly its inputs of now (:mod:`speedlab.inputs`) and kept as stored.
    summaries : dict
        ``(tier, label) -> {host_id or None: TierSummary}`` for the periods rolled up (not for
        those kept as stored).
    inputs_unchanged : int
        How many periods a backfill kept as stored (their inputs unchanged).
    rejected : list of (key, reason)
        Every input skipped as bad data.
    replaced : list of (key, reason)
        Every input summary found unusable (not a JSON object, wrong types, negative
        counts, ...) and therefore rolled up again from its own inputs.
    results_read : int
        Raw results read and validated.
    requests : dict
        Store requests by kind (``get``, ``put``, ``list``, ``list_pages``, ...).
    seconds : float
        Wall time.
    clamped : dict or None
        Backfill only: ``from``, ``to`` and a ``message`` when the range asked for reached
        before the earliest raw result or after now (see :func:`backfill`).
    tables : TablesReport
        What keeping the columnar tables current cost and did (docs/tables.md).
    tables_errors : list of str
        Why a table update failed: the summaries are written all the same (the original
        layout is the source of truth); the partitions are marked and the next job repairs them.
    """

    items: list[dict] = field(default_factory=list)
    summaries: dict[tuple[str, str], dict[str | None, TierSummary]] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    replaced: list[tuple[str, str]] = field(default_factory=list)
    results_read: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    plan: list[dict] = field(default_factory=list)
    markers_cleared: int = 0
    clamped: dict | None = None
    tables: TablesReport = field(default_factory=TablesReport)
    tables_errors: list[str] = field(default_factory=list)
    inputs_unchanged: int = 0

    @property
    def periods(self) -> int:
        """How many periods were rolled up."""
        return len(self.items)

    def to_dict(self) -> dict:
        """Plain data for ``--json`` (without the summaries themselves)."""
        by_tier = Counter(item["tier"] for item in self.items)
        return {"periods": self.periods, "by_tier": {t: by_tier[t] for t in TIERS if by_tier[t]},
                "results_read": self.results_read, "rejected": len(self.rejected),
                "requests": dict(self.requests), "seconds": round(self.seconds, 3),
                "markers_cleared": self.markers_cleared, "inputs_unchanged": self.inputs_unchanged,
                "replaced_summaries": [{"key": k, "reason": why} for k, why in self.replaced],
                **({"clamped": self.clamped} if self.clamped else {}),
                "tables": self.tables_dict(), "items": self.items}

    def tables_dict(self, seconds: bool = False) -> dict:
        """The ``tables`` part: ok, errors, partitions written/current, rows, requests (``seconds``: time)."""
        t = self.tables
        return {"ok": not self.tables_errors, "errors": list(self.tables_errors),
                "partitions_written": len(t.partitions_written), "partitions_current": len(t.partitions_current),
                "rows": t.rows, "sources_read": t.sources_read, "rejected": len(t.rejected),
                "requests": dict(t.requests), **({"seconds": round(t.seconds, 3)} if seconds else {})}

    def to_text(self) -> str:
        """One line: ``3 period(s) rolled up (hourly 2, daily 1); 0 bad object(s) skipped; tables: …``."""
        t = self.tables
        tables = (f"tables: {len(t.partitions_written)} partition(s) written" if not self.tables_errors else
                  f"tables NOT updated ({self.tables_errors[-1]}): the next run repairs them")
        return f"{rollup_line(self.to_dict())}; {tables}"
