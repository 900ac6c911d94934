"""Plain-text rendering shared by the operator tools (``latest``, ``coverage``, ``dedupe``).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from .layout import printable

__all__ = ["format_table"]


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
