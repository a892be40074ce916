"""Plain-text tables for the terminal."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

__all__ = ["print_table"]


def print_table(
    rows: Sequence[Sequence[str]], *, headers: Sequence[str], out: TextIO | None = None
) -> None:
    """Print ``rows`` under ``headers`` in aligned columns (the last column is not padded)."""
    out = out or sys.stdout
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    for row in (headers, *rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        out.write("  ".join([*cells, row[-1]]).rstrip() + "\n")
