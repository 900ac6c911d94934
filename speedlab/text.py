"""Plain-text rendering shared by several reports: tables (``latest``, ``coverage``, ``dedupe``),
a rollup's one line (``run-due``), scheduler entries (``schedule``, ``scheduler print``).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .layout import printable

__all__ = ["entry_blocks", "format_table", "rollup_line"]


def format_table(headers: Sequence[str], rows: Sequence[Sequence], right: Sequence[int] = ()) -> str:
    """Rows as aligned plain-text columns under ``headers``; columns in ``right`` align right.

    Cells are shown with :func:`~speedlab.layout.printable`: a key holding a newline stays in
    its row.
    """
    cells = [[str(h) for h in headers]] + [["-" if v is None else printable(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(row, widths, strict=False))).rstrip()
    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def rollup_line(result: Mapping) -> str:
    """A rollup report's plain data (``RollupReport.to_dict()``) in one line:
    ``3 period(s) rolled up (hourly 2, daily 1); 0 bad object(s) skipped`` (and how many a
    backfill kept as stored, their inputs unchanged)."""
    tiers = ", ".join(f"{t} {n}" for t, n in (result.get("by_tier") or {}).items())
    kept = f", {result['inputs_unchanged']} kept as stored (inputs unchanged)" if result.get("inputs_unchanged") else ""
    return (f"{result.get('periods', 0)} period(s) rolled up{' (' + tiers + ')' if tiers else ''}{kept}; "
            f"{result.get('rejected', 0)} bad object(s) skipped")


def entry_blocks(entries: Mapping[str, str], names: Mapping[str, str] | None = None) -> str:
    """Scheduler entries (cron line, systemd units, ...) under ``# ---- NAME`` headings, each
    followed by an empty line; ``names`` titles the keys (default: the key itself)."""
    return "".join(f"# ---- {(names or {}).get(key, key)}\n{text.rstrip()}\n\n" for key, text in entries.items())
