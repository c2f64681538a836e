"""Replace a DataTable's columns and rows at once, each column as wide as its widest cell from the first
frame on.

Why not DataTable's auto-width columns: it measures them when the table is next idle, and a frame drawn
before that caches each cell cut to its column label's width; in Textual 8.2 that cache is not keyed by the
width, so the cells stayed cut (a bench table with its first column gone, at random, until it changed
again). Fixed widths, measured here as DataTable renders a cell, leave nothing to measure later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

Cell = str | Text


def cell_width(cell: Cell) -> int:
    """Terminal columns `cell` takes on one line: a str cell is markup, as DataTable reads it."""
    text = Text.from_markup(cell) if isinstance(cell, str) else cell
    return max(map(cell_len, text.plain.splitlines()), default=0)


def refill(table: DataTable[Any], columns: Sequence[tuple[str, Cell]],
           rows: Sequence[tuple[str | None, Sequence[Cell]]]) -> None:
    """Make `table` show `columns` ((key, label) each) and `rows` ((key or None, cells) each, a cell per
    column), dropping what it showed. The cursor goes back to the top left: callers move it."""
    table.clear(columns=True)
    for index, (key, label) in enumerate(columns):
        width = max([cell_width(label), *(cell_width(cells[index]) for _, cells in rows)])
        table.add_column(label, key=key, width=width)
    for row_key, cells in rows:
        table.add_row(*cells, key=row_key)
