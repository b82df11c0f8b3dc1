"""Filling a DataTable whose columns are as wide as their cells from the start."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable


def fill_sized(table: DataTable, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str | Text]],
               row_keys: Sequence[str] | None = None) -> None:
    """Replace ``table``'s columns (``(key, header)`` pairs) and rows (one cell per column; ``row_keys`` names
    them), each column as wide as its widest cell or its header.

    The widths are set here because a DataTable fits auto-width columns to their rows only on its next idle, which
    a busy machine or a refill every few seconds can put off: the columns then stay as wide as their headers, and
    "12.5" seconds shows as "1"."""
    table.clear(columns=True)
    for i, (key, header) in enumerate(columns):
        table.add_column(header, key=key, width=max([cell_len(header)] + [cell_len(str(row[i])) for row in rows]))
    for j, row in enumerate(rows):
        table.add_row(*row, key=None if row_keys is None else row_keys[j])
