"""Rich tables for the terminal: metrics of one checkpoint, and the report's Table 2 for several runs."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from core.runs import best_metrics, load_run

console = Console()
COLUMNS = [("sst/acc", "SST acc"), ("para/acc", "Quora acc"), ("sts/pearson", "STS corr")]
ENCODER_NOTE = ("note: the packaged all-MiniLM-L6-v2 encoder was trained on sentence pairs including Quora "
                "duplicates and NLI, so its Quora and STS figures start high.")


def print_metrics(metrics: dict[str, float], reports: dict[str, dict], meta: dict) -> None:
    t = Table(title=f"dev metrics ({meta.get('variant', '?')}, epoch {meta.get('epoch', '?')})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in metrics.items():
        t.add_row(k, f"{v:.4f}")
    console.print(t)
    for task, r in reports.items():
        if "confusion" in r:
            console.print(per_class_table(task, r))
    if str(meta.get("encoder", "")).lower().startswith(("minilm", "all-minilm")):
        console.print(f"[dim]{ENCODER_NOTE}[/]")


def per_class_table(task: str, r: dict) -> Table:
    t = Table(title=f"{task}: per-class scores and confusion (rows true, columns predicted)")
    t.add_column("class")
    for h in ("precision", "recall", "F1", "support"):
        t.add_column(h, justify="right")
    for i in range(len(r["labels"])):
        t.add_column(str(i), justify="right")
    for i, name in enumerate(r["labels"]):
        t.add_row(f"{i} {name}", f"{r['precision'][i]:.2f}", f"{r['recall'][i]:.2f}", f"{r['f1'][i]:.2f}",
                  str(r["support"][i]), *[str(x) for x in r["confusion"][i]])
    return t


def compare_rows(runs: list[Path]) -> list[dict]:
    """One row per run: name, variant, best dev value per Table 2 column, mean seconds per epoch."""
    rows = []
    for r in runs:
        info = load_run(r)
        rows.append({"name": info.name, "variant": info.variant, **best_metrics(r),
                     "seconds": info.seconds_per_epoch, "config": info.config})
    return rows


def print_compare(runs: list[Path]) -> None:
    rows = compare_rows(runs)
    best = {k: max((row[k] for row in rows if k in row), default=None) for k, _ in COLUMNS}
    t = Table(title="Table 2 layout: best dev value per run (bold = best per column)")
    t.add_column("run")
    t.add_column("variant")
    for _, h in COLUMNS:
        t.add_column(h, justify="right")
    t.add_column("s/epoch", justify="right")
    for row in rows:
        cells = []
        for k, _ in COLUMNS:
            v = row.get(k)
            cells.append("-" if v is None else (f"[bold]{v:.3f}[/]" if v == best[k] else f"{v:.3f}"))
        sec = row["seconds"]
        t.add_row(row["name"], row["variant"], *cells, "-" if sec is None else f"{sec:,.0f}")
    console.print(t)
    console.print(f"[dim]{ENCODER_NOTE}[/]")
