"""Horizontal bars for scores: class probabilities, a paraphrase probability, a 0..5 similarity."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import RenderResult
from textual.widget import Widget

EIGHTHS = " ▏▎▍▌▋▊▉"


def score_bar(value: float, maximum: float, width: int, style: str) -> Text:
    """``value`` out of ``maximum`` as a bar ``width`` cells wide (eighth-cell resolution)."""
    filled = max(0.0, min(1.0, value / maximum if maximum else 0.0)) * width
    full = int(filled)
    part = EIGHTHS[int((filled - full) * 8)].strip() if full < width else ""
    return Text("█" * full + part, style=style) + Text("·" * (width - full - len(part)), style="dim")


class ScoreBars(Widget):
    """Rows of ``label  bar  value``; one row may be highlighted (the predicted class)."""

    DEFAULT_CSS = "ScoreBars { height: auto; }"

    def __init__(self, empty: str = "", **kwargs):
        super().__init__(**kwargs)
        self.empty = empty
        self.rows: list[tuple[str, float, float]] = []  # (label, value, maximum)
        self.highlight: int | None = None

    def set_rows(self, rows: list[tuple[str, float, float]], highlight: int | None = None) -> None:
        """Show ``(label, value, maximum)`` rows; ``highlight`` = index of the row to emphasize."""
        self.rows, self.highlight = rows, highlight
        self.refresh(layout=True)

    def clear_rows(self, message: str) -> None:
        """No rows: ``message`` in their place."""
        self.rows, self.empty = [], message
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self.rows))

    def render(self) -> RenderResult:
        if not self.rows:
            return Text(self.empty, style="dim")
        label_w = max(len(r[0]) for r in self.rows)
        width = max(8, self.content_size.width - label_w - 10)
        t = Table.grid(padding=(0, 1))
        t.add_column(justify="right", no_wrap=True)
        t.add_column(no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        for i, (label, value, maximum) in enumerate(self.rows):
            top = i == self.highlight
            t.add_row(Text(label, style="bold" if top else ""),
                      score_bar(value, maximum, width, "bold green" if top else "cyan"),
                      Text(f"{value:.3f}", style="bold" if top else ""))
        return t
