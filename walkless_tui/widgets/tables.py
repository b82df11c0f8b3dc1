"""DataTable columns as wide as their cells at once, not on the table's next idle."""

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
        table.add_column(header, key=key, width=max([cell_len(header)] + [cell_width(row[i]) for row in rows]))
    for j, row in enumerate(rows):
        table.add_row(*row, key=None if row_keys is None else row_keys[j])


def fit_widths(table: DataTable, rows: Sequence[Sequence[object]]) -> None:
    """Set each auto-width column of ``table`` as wide as its header and its cells in ``rows`` (all the table holds,
    one cell per column in column order), for a table whose rows are added or updated in place.

    The table would come to the same widths on its next idle (a wider "-0.066" widens its column, a shorter note
    narrows it); until then the cells would be cut to the old width."""
    changed = False
    for i, column in enumerate(table.ordered_columns):
        width = max([column.label.cell_len] + [cell_width(row[i]) for row in rows])
        if column.auto_width and column.content_width != width:
            column.content_width, changed = width, True
    if changed:
        table.refresh(layout=True)


def cell_width(cell: object) -> int:
    """Cells a one-line DataTable cell takes: a Text's own length, anything else as its str."""
    return cell.cell_len if isinstance(cell, Text) else cell_len(str(cell))
