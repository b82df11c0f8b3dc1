"""Tables of a classification report (core.evaluate): the confusion matrix and per-class scores.

A report is ``{"task", "labels", "confusion", "precision", "recall", "f1", "support"}``; the confusion
matrix has true classes as rows and predicted classes as columns.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable


def _heat(count: int, row_total: int, diagonal: bool) -> Text:
    """A cell shaded by its share of the row (green on the diagonal, red off it)."""
    share = count / row_total if row_total else 0.0
    level = int(share * 4.999)
    if count == 0:
        return Text("0", style="dim", justify="right")
    colour = ("green" if diagonal else "red") if level >= 2 else ("dark_green" if diagonal else "dark_red")
    style = f"bold white on {colour}" if level >= 2 else f"on {colour}" if level == 1 else ""
    return Text(f"{count}", style=style, justify="right")


class ConfusionTable(DataTable):
    """Rows: true class; columns: predicted class; last column: the row's recall."""

    DEFAULT_CSS = "ConfusionTable { height: auto; max-height: 12; }"

    def __init__(self, **kwargs):
        super().__init__(cursor_type="none", zebra_stripes=False, **kwargs)
        self.report: dict | None = None

    def set_report(self, report: dict) -> None:
        self.report = report
        self.clear(columns=True)
        labels, matrix = report["labels"], report["confusion"]
        # explicit widths: an auto width can stay at the header's when the table is laid out while hidden
        width = max(len("true \\ predicted"), *(len(f"{i} {n}") for i, n in enumerate(labels)))
        self.add_column("true \\ predicted", key="true", width=width)
        for i, name in enumerate(labels):
            self.add_column(f"{i} {name}", key=str(i))
        self.add_column("recall", key="recall")
        for i, name in enumerate(labels):
            row = matrix[i]
            total = sum(row)
            cells = [_heat(c, total, i == j) for j, c in enumerate(row)]
            self.add_row(Text(f"{i} {name}", style="bold"), *cells,
                         Text(f"{row[i] / total:.2f}" if total else "-", justify="right"), key=str(i))


class ClassScoresTable(DataTable):
    """The report's Table 3: precision, recall, F1 (and support) per class, plus the macro average."""

    DEFAULT_CSS = "ClassScoresTable { height: auto; max-height: 12; }"

    def __init__(self, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)

    def set_report(self, report: dict) -> None:
        self.clear(columns=True)
        widths = {"class": max(len("macro average"), *(len(str(n)) for n in report["labels"]))}
        for key, title in [("class", "Class"), ("p", "Precision"), ("r", "Recall"), ("f1", "F1 score"),
                           ("n", "Support")]:
            self.add_column(title, key=key, width=widths.get(key))
        p, r, f, s = report["precision"], report["recall"], report["f1"], report["support"]
        best_f1 = max(f) if f else None
        worst_f1 = min(f) if f else None
        for i, name in enumerate(report["labels"]):
            style = "bold green" if f[i] == best_f1 else "bold red" if f[i] == worst_f1 else ""
            self.add_row(name, f"{p[i]:.2f}", f"{r[i]:.2f}", Text(f"{f[i]:.2f}", style=style), str(s[i]),
                         key=str(i))
        n = len(f) or 1
        self.add_row(Text("macro average", style="italic"), f"{sum(p) / n:.2f}", f"{sum(r) / n:.2f}",
                     f"{sum(f) / n:.2f}", str(sum(s)), key="macro")
