"""Rich tables for the terminal: metrics of one checkpoint, and the report's Table 2 for several runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from core.config import TrainConfig
from core.runs import RunFolder, best_metrics

console = Console()
COLUMNS = [("sst/acc", "SST acc"), ("para/acc", "Quora acc"), ("sts/pearson", "STS r")]
# The tables' columns: Table 2's, then the overall score (the CS224N leaderboard's) when all three are there.
TABLE_COLUMNS = [*COLUMNS, ("overall", "overall")]
ENCODER_NOTE = ("note: the packaged all-MiniLM-L6-v2 encoder was trained on sentence pairs including Quora "
                "duplicates and NLI, so its Quora and STS figures start high.")


def overall(metrics: dict) -> float | None:
    """(SST acc + Quora acc + (STS r + 1) / 2) / 3, or None without all three."""
    sst, para, sts = (metrics.get(k) for k, _ in COLUMNS)
    return None if sst is None or para is None or sts is None else (sst + para + (sts + 1) / 2) / 3


def _is_minilm(encoder: object) -> bool:
    """Whether an encoder name is the packaged MiniLM (its figures get ``ENCODER_NOTE``)."""
    return str(encoder or "").lower().startswith(("minilm", "all-minilm"))


def print_metrics(metrics: dict[str, float], reports: dict[str, dict], meta: dict) -> None:
    """Print one checkpoint's dev metrics, the per-class tables of its classification tasks (``reports``,
    from ``core.evaluate``) and, for MiniLM, ``ENCODER_NOTE``; ``meta`` is its walkless.json."""
    t = Table(title=f"dev metrics ({meta.get('variant', '?')}, epoch {meta.get('epoch', '?')}, "
                    f"step {meta.get('step', '?')})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in metrics.items():
        t.add_row(k, f"{v:.4f}")
    console.print(t)
    for task, r in reports.items():
        if "confusion" in r:
            console.print(per_class_table(task, r))
    if _is_minilm(meta.get("encoder")):
        console.print(f"[dim]{ENCODER_NOTE}[/]")


def per_class_table(task: str, r: dict) -> Table:
    """One task's report (``core.evaluate.task_report``) as precision, recall, F1, support and confusion."""
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


# Settings shown in the compare output: those shared by all runs in one footer line, the others per row.
SETTINGS = ("profile", "encoder", "lr", "batch_size", "epochs", "max_steps", "dropout", "encoder_dropout", "seed", "per_task_step",
            "lr_schedule", "warmup", "layer_decay", "head_lr", "ema", "weight_decay", "label_smoothing", "sst_passes",
            "sst_lr", "sst_head", "sst_layers", "grad_surgery", "pair_symmetric", "cfimdb", "max_length", "pair_input", "clip_grad",
            "bucket")
DEFAULTS = TrainConfig().resolved().to_dict()  # a run made before an option existed ran with its default (ours)


def checkpoint_metrics(run_dir: str | Path) -> dict[str, float]:
    """The dev metrics of the run's best checkpoint (``best.json``): one model's numbers, all columns alike."""
    dev = (RunFolder(run_dir).pointer("best") or {}).get("dev")
    return {k: v for k, v in (dev or {}).items() if isinstance(v, (int, float))}


def run_settings(c: dict, variant: str) -> dict:
    """A run's config -> the settings the compare output shows (``SETTINGS``, SMART's hyperparameters when the
    variant uses SMART, the training-set sizes); runs made before an option existed get its default."""
    settings = {k: c.get(k, DEFAULTS.get(k)) for k in SETTINGS if k in c or k in DEFAULTS}
    if "+smart" in variant and isinstance(c.get("smart"), dict):
        settings["smart"] = c["smart"]
    sizes = c.get("data_sizes") or {}
    settings["train_sizes"] = {t: v.get("train") for t, v in sizes.items() if isinstance(v, dict)}
    return settings


def compare_rows(runs: list[Path], at: str = "column") -> list[dict]:
    """One row per run: name, variant, dev values per Table 2 column (``at="column"``: the best of each column
    over the epochs, maybe from different epochs; ``"checkpoint"``: the best checkpoint's, one model), mean
    seconds per epoch, the run's settings (``SETTINGS``, SMART hyperparameters when used, training-set sizes)
    and its config."""
    rows = []
    for r in runs:
        folder = RunFolder(r)
        if not folder.config_file.is_file():
            raise ValueError(f"{r}: not a run folder (no config.json)")
        info = folder.info()
        c = info.config
        settings = run_settings(c, info.variant)
        metrics = checkpoint_metrics(r) if at == "checkpoint" else best_metrics(r)
        rows.append({"name": info.name, "path": str(info.path), "variant": info.variant, "state": info.state,
                     "epochs_done": info.epoch, **metrics, "overall": overall(metrics),
                     "seconds": info.seconds_per_epoch,
                     "settings": settings, "config": c})
    return rows


def best_per_column(rows: list[dict]) -> dict[str, float | None]:
    """The highest value of each table column over ``rows`` (None where no row has one)."""
    return {k: max((row[k] for row in rows if row.get(k) is not None), default=None) for k, _ in TABLE_COLUMNS}


def _value_cells(row: dict, best: dict[str, float | None], bold: str) -> list[str]:
    """The row's table values to 3 decimals, ``-`` where missing, a column's best put into ``bold``."""
    cells = []
    for k, _ in TABLE_COLUMNS:
        v = row.get(k)
        cells.append("-" if v is None else (bold.format(f"{v:.3f}") if v == best[k] else f"{v:.3f}"))
    return cells


def _fmt_seconds(sec: float | None) -> str:
    if sec is None:
        return "-"
    return f"{sec:,.0f}" if sec >= 100 else f"{sec:.1f}"


def _fmt_setting(k: str, v) -> str:
    if k == "train_sizes" and isinstance(v, dict):
        return "train " + "/".join(f"{t} {n}" for t, n in v.items())
    if k == "smart" and isinstance(v, dict):
        return "smart " + " ".join(f"{n}={v[n]}" for n in ("lam", "eps", "sigma", "eta", "beta", "mu", "steps",
                                                           "dropout_off") if n in v)
    return f"{k} {v}"


def split_settings(rows: list[dict]) -> tuple[str, list[str]]:
    """(the settings every run shares, one text per row with the settings that differ)."""
    keys = list(dict.fromkeys(k for row in rows for k in row["settings"]))
    shared = [k for k in keys if all(row["settings"].get(k) == rows[0]["settings"].get(k) for row in rows)]
    common = ", ".join(_fmt_setting(k, rows[0]["settings"][k]) for k in shared
                       if rows[0]["settings"].get(k) is not None)
    differ = [", ".join(_fmt_setting(k, row["settings"][k]) for k in keys
                        if k not in shared and row["settings"].get(k) is not None) for row in rows]
    return common, differ


AT_TITLES = {"column": "each column's best dev value over the epochs",
             "checkpoint": "the dev values of each run's best checkpoint"}
WIDE = 120  # narrower consoles (80 columns, a pipe) get the differing settings under the table, not as a column


def compare_table(rows: list[dict], at: str = "column", width: int | None = None) -> Table:
    """The comparison as a rich table; on a console narrower than ``WIDE`` the settings that differ are listed
    in its caption instead of a column, so the variant and the numbers keep their width."""
    best = best_per_column(rows)
    common, differ = split_settings(rows)
    narrow = width is not None and width < WIDE
    column = any(differ) and not narrow
    caption = [f"shared settings: {common}"] if common else []
    if any(differ) and not column:
        caption += [f"{row['name']}: {d}" for row, d in zip(rows, differ, strict=True) if d]
    layout: dict[str, Any] = {"box": box.SIMPLE_HEAD, "pad_edge": False, "collapse_padding": True} if narrow else {}
    t = Table(title=f"Table 2 layout: {AT_TITLES[at]} (bold = best per column)",
              caption="\n".join(caption) or None, caption_justify="left", **layout)
    t.add_column("run", overflow="fold", min_width=4)
    # the variant is what a reader needs whole: never cut or wrapped
    t.add_column("variant", no_wrap=True, min_width=max((len(str(r["variant"])) for r in rows), default=7))
    for _, h in TABLE_COLUMNS:
        t.add_column(h, justify="right", no_wrap=True)
    t.add_column("s/epoch", justify="right", no_wrap=True)
    if column:
        t.add_column("settings")
    for row, d in zip(rows, differ, strict=True):
        t.add_row(row["name"], row["variant"], *_value_cells(row, best, "[bold]{}[/]"), _fmt_seconds(row["seconds"]),
                  *([d] if column else []))
    return t


def compare_markdown(rows: list[dict], at: str = "column") -> str:
    """The same table as GitHub markdown (best per column in bold), with a line saying what the values are."""
    best = best_per_column(rows)
    common, differ = split_settings(rows)
    head = ["run", "variant", *[h for _, h in TABLE_COLUMNS], "s/epoch"] + (["settings"] if any(differ) else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(TABLE_COLUMNS) + 1)
                                                           + (["---"] if any(differ) else [])) + "|"]
    for row, d in zip(rows, differ, strict=True):
        cells = [row["name"], row["variant"], *_value_cells(row, best, "**{}**"), _fmt_seconds(row["seconds"])]
        lines.append("| " + " | ".join(cells + ([d] if any(differ) else [])) + " |")
    lines.append(f"\nValues: {AT_TITLES[at]}.")
    if common:
        lines.append(f"Shared settings: {common}.")
    return "\n".join(lines)


def print_compare(runs: list[Path], fmt: str = "table", out: Console | None = None, at: str = "column") -> None:
    """Print the comparison of ``runs`` as a rich ``table``, ``markdown`` or ``json`` (the last two plain,
    on stdout, for files and scripts; the JSON is ``compare_rows``: metrics under their names, ``seconds`` per
    epoch, settings, config)."""
    rows = compare_rows(runs, at)
    if fmt in ("json", "markdown"):
        print(json.dumps(rows, indent=2, default=str) if fmt == "json" else compare_markdown(rows, at))
        return
    out = out or console
    out.print(compare_table(rows, at, width=out.width))
    if any(_is_minilm(r["settings"].get("encoder")) for r in rows):
        out.print(f"[dim]{ENCODER_NOTE}[/]")


def ensemble_table(result) -> Table:
    """``walkless ensemble``'s table (a ``core.ensemble.EnsembleResult``): each member's dev metrics, the
    ensemble's, and per member what it adds (the ensemble's metric minus the ensemble's without it)."""
    keys = [k for k, _ in TABLE_COLUMNS if k in result.dev]
    t = Table(title="ensemble on the dev sets (adds: the ensemble minus the ensemble without that member)")
    t.add_column("model")
    for k in keys:
        t.add_column(dict(TABLE_COLUMNS)[k], justify="right")
    adds = {d["member"]: d["adds"] for d in result.leave_one_out}
    for m in result.members:
        dev = m.get("dev", {})
        t.add_row(m["name"], *[f"{dev[k]:.4f}" if k in dev else "–" for k in keys])
        if m["name"] in adds:
            t.add_row("  adds", *[f"{adds[m['name']][k]:+.4f}" if k in adds[m["name"]] else "–" for k in keys],
                      style="dim")
    t.add_row("ensemble", *[f"{result.dev[k]:.4f}" for k in keys], style="bold")
    return t
