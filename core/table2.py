"""The report's Table 2 as one resumable command: its nine rows trained one after another in one runs folder.

``run_table2`` trains each row with the report's per-row settings (batch 64, 16 under SMART; lr 1e-3 for
pretrain, 1e-5 otherwise; head dropout 0.3; single-task rows evaluated on all three dev sets), and after
every row rewrites ``table2.json`` and ``table2.md`` in the runs folder. Run it again after a stop or a
kill: finished rows are skipped, an interrupted row resumes from its last checkpoint (written every
``checkpoint_every`` steps), a row killed before its first checkpoint starts over. A row folder trained
with other settings is an error, never silently mixed in. Two sweeps can share a runs folder (e.g. ``--rows``
split between them, one thread each): a row that another process is training is passed over.

This module imports no torch at import time: the app reads ``table2.json`` through ``read_table2``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import AT_LEAST_1, PROFILES, TrainConfig, opt
from core.report import COLUMNS as METRICS
from core.runs import RunError, RunFolder, RunState, read_json, read_metrics, write_json_atomic

# The report's Table 2 (BERT-base, dev sets, 10 epochs, seconds per epoch on an AWS GPU), in its order.
REPORT_TABLE2: dict[str, dict[str, float]] = {
    "pretrain": {"sst/acc": 0.396, "para/acc": 0.380, "sts/pearson": 0.019, "seconds": 9},
    "finetune": {"sst/acc": 0.525, "para/acc": 0.522, "sts/pearson": 0.240, "seconds": 25},
    "finetune+smart": {"sst/acc": 0.520, "para/acc": 0.501, "sts/pearson": 0.382, "seconds": 161},
    "rrobin": {"sst/acc": 0.524, "para/acc": 0.726, "sts/pearson": 0.583, "seconds": 67},
    "rrobin+smart": {"sst/acc": 0.532, "para/acc": 0.741, "sts/pearson": 0.680, "seconds": 464},
    "rrobin-pre+smart": {"sst/acc": 0.519, "para/acc": 0.851, "sts/pearson": 0.690, "seconds": 3037},
    "rrobin-full": {"sst/acc": 0.498, "para/acc": 0.863, "sts/pearson": 0.762, "seconds": 1420},
    "rrobin-full+smart": {"sst/acc": 0.485, "para/acc": 0.850, "sts/pearson": 0.714, "seconds": 4549},
    "rrobin-full+rlayer": {"sst/acc": 0.501, "para/acc": 0.867, "sts/pearson": 0.802, "seconds": 1550},
}
ROWS = tuple(REPORT_TABLE2)
TABLE2_FILE = "table2.json"  # in the sweep's runs folder, beside table2.md and the row folders
# Settings a row folder must share with the request to be resumed or reused.
MATCH = ("profile", "variant", "task", "batch_size", "lr", "dropout", "encoder_dropout", "max_train", "max_dev", "max_steps",
         "seed", "encoder", "data_dir", "eval_all")


@dataclass
class Table2Config:
    """``walkless table2``'s options (its flags are generated from these fields)."""

    runs_dir: str = opt("runs/table2", "where the row runs and the table go (keep it outside a work tree)")
    profile: str = opt("walkless", "walkless (ours) or report-code (every row as the report's code trains it; "
                                   "docs/report-code.md)", choices=tuple(PROFILES))
    rows: tuple[str, ...] = opt(ROWS, "comma-separated subset of the rows, in any order")
    epochs: int = opt(1, "epochs per row (the report: 10)", check=AT_LEAST_1)
    encoder: str = opt("minilm-l6", "minilm-l6 (packaged) or a Hugging Face BERT folder")
    data_dir: str | None = opt(None, "the CS224N folder (default: the demo data)")
    max_train: int | None = opt(None, "cap on training examples per task", check=AT_LEAST_1)
    max_dev: int | None = opt(None, "cap on dev examples per task", check=AT_LEAST_1)
    max_steps: int | None = opt(None, "cap on iterations per epoch (smoke runs)", check=AT_LEAST_1)
    threads: int | None = opt(None, "CPU threads (default: torch's)", check=AT_LEAST_1)
    seed: int = opt(0, "random seed")
    checkpoint_every: int = opt(200, "steps between checkpoints inside a row (what a kill can lose)", check=AT_LEAST_1)
    command: str = opt("", "the command line, for table2.md", cli=False)


def check_rows(rows: tuple[str, ...]) -> tuple[str, ...]:
    bad = [r for r in rows if r not in REPORT_TABLE2]
    if bad:
        raise ValueError(f"--rows: unknown row {bad[0]!r} (the report's rows: {', '.join(ROWS)})")
    return rows


def row_dir_name(row: str) -> str:
    return row.replace("+", "_")


def row_config(row: str, t: Table2Config) -> TrainConfig:
    """The report's settings for one row (section 4.2): batch 64, 16 under SMART, lr by variant, SST for
    the single-task rows, which are evaluated on all three dev sets."""
    smart = "+smart" in row
    c = TrainConfig(profile=t.profile, variant=row, task="sst", encoder=t.encoder, data_dir=t.data_dir, runs_dir=t.runs_dir,
                    name=row_dir_name(row), epochs=t.epochs, batch_size=16 if smart else 64, seed=t.seed,
                    eval_all=True, max_train=t.max_train, max_dev=t.max_dev, max_steps=t.max_steps,
                    threads=t.threads, checkpoint_every=t.checkpoint_every, keep_last=1)
    return c.validate()


def _differences(saved: dict, wanted: TrainConfig) -> list[str]:
    want = wanted.to_dict()
    out = []
    for k in MATCH:
        a, b = saved.get(k), want.get(k)
        if k == "lr" and b is None:
            continue  # the default lr; config.json holds the resolved value
        if k == "profile":
            a = a or "walkless"  # a row folder from before profiles: ours
        if k == "data_dir":
            if b is None:
                continue
            a, b = str(Path(a).resolve()) if a is not None else None, str(Path(b).resolve())
        if a != b:
            out.append(f"{k}={a!r} (asked {b!r})")
    return out


def train_row(row: str, t: Table2Config) -> str:
    """Train, resume or skip one row; returns what happened: trained, resumed, skipped (finished before), busy
    (another process is training it), stopped."""
    from core.train import resume, train

    cfg = row_config(row, t)
    folder = RunFolder(Path(t.runs_dir) / str(cfg.name))
    run_dir, saved = folder.path, read_json(folder.config_file)
    if isinstance(saved, dict):
        diff = _differences(saved, cfg)
        if diff:
            raise RunError(f"table2 row {row}: {run_dir} was trained with other settings ({'; '.join(diff)}); "
                           f"use another --runs-dir or remove that folder")
        state = folder.info().state
        if state == RunState.RUNNING:  # another `walkless table2` (or `train --resume`) has it: leave it to that one
            return "busy"
        if state == RunState.FINISHED and int(saved.get("epochs", 0)) >= t.epochs:
            return "skipped"
        if folder.checkpoints():
            epochs = max(t.epochs, int(saved.get("epochs", 0)))
            return _state_after(resume(run_dir, epochs=epochs, threads=t.threads), "resumed")
    shutil.rmtree(run_dir, ignore_errors=True)  # killed before its config or first checkpoint: nothing to keep
    return _state_after(train(cfg), "trained")


def _state_after(run_dir: Path, what: str) -> str:
    return "stopped" if RunFolder(run_dir).info().state == RunState.STOPPED else what


def run_table2(t: Table2Config, on_row: Any = None) -> dict:
    """Train the rows in order, writing the table after each; stops early (table written) when a row is
    stopped (Ctrl-C, SIGTERM). ``on_row(row, what)`` is told what happened to each row."""
    for row in check_rows(t.rows):
        row_config(row, t)  # every row's settings checked before the first trains
    Path(t.runs_dir).mkdir(parents=True, exist_ok=True)
    table = write_table2(t)
    for row in t.rows:
        write_table2(t, training=row)  # readers (the app) see the row as "training" until it ends
        what = train_row(row, t)
        table = write_table2(t)
        if on_row is not None:
            on_row(row, what)
        if what == "stopped":
            break
    return table


# --- the table --------------------------------------------------------------------------------------
def row_result(row: str, t: Table2Config, training: bool = False) -> dict[str, Any]:
    """One row of the table from its run folder: the best checkpoint's dev metrics (chosen by the trained
    tasks' mean), mean seconds per training epoch, wall seconds, and the report's numbers. Its state is
    "training" while this sweep trains it (``training``) or a process is writing its folder."""
    folder = RunFolder(Path(t.runs_dir) / row_dir_name(row))
    state = "training" if training else "not run"
    out: dict[str, Any] = {"row": row, "run": row_dir_name(row), "report": REPORT_TABLE2[row], "state": state}
    if not folder.config_file.is_file():
        return out
    info = folder.info()
    cfg = info.config
    best = read_json(folder.pointer_file("best")) or {}
    dev = best.get("dev") or {}
    epochs = [r for r in read_metrics(folder.path) if r.get("kind") == "epoch"]
    wall = round(info.updated - info.started, 1) if info.started and info.updated else None
    out.update(state="training" if training or info.state.active else str(info.state), epochs_done=len(epochs),
               epochs=cfg.get("epochs"), best_epoch=best.get("epoch"),
               batch_size=cfg.get("batch_size"), lr=cfg.get("lr"), train_sizes={k: v.get("train") for k, v in
                                                                                 (cfg.get("data_sizes") or {}).items()},
               seconds_per_epoch=None if info.seconds_per_epoch is None else round(info.seconds_per_epoch, 1),
               wall_seconds=wall, **{k: dev.get(k) for k, _ in METRICS})
    return out


def write_table2(t: Table2Config, training: str | None = None) -> dict:
    """Rewrite ``table2.json`` and ``table2.md`` in the runs folder from the row folders (row ``training`` marked
    as being trained); returns the JSON."""
    root = Path(t.runs_dir)
    old = read_json(root / TABLE2_FILE) or {}
    commands = list(old.get("commands", []))
    if t.command and t.command not in commands:
        commands.append(t.command)
    rows = [row_result(r, t, r == training) for r in ROWS
            if r in t.rows or RunFolder(root / row_dir_name(r)).config_file.is_file()]
    from core.bench import machine

    table = {"commands": commands, "machine": machine(), "updated": time.time(),
             "settings": {"profile": t.profile, "epochs": t.epochs, "encoder": t.encoder, "data_dir": t.data_dir, "max_train": t.max_train,
                          "max_dev": t.max_dev, "max_steps": t.max_steps, "seed": t.seed},
             "wall_seconds": round(sum(r.get("wall_seconds") or 0 for r in rows), 1), "rows": rows}
    write_json_atomic(root / TABLE2_FILE, table)
    tmp = root / ".table2.md.tmp"
    tmp.write_text(table2_markdown(table))
    tmp.replace(root / "table2.md")
    return table


def read_table2(path: str | Path) -> dict:
    """``table2.json`` (or the folder holding it) -> its contents; a clear error when it is not one."""
    p = Path(path)
    p = p / TABLE2_FILE if p.is_dir() else p
    data = read_json(p)
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise RunError(f"{p}: not a table2.json written by `walkless table2`")
    return data


def _num(v: Any, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)


def table2_markdown(table: dict) -> str:
    """Our numbers beside the report's, one line per row, with the command, machine and settings."""
    m, s = table["machine"], table["settings"]
    lines = ["| row | SST acc (report) | Quora acc (report) | STS r (report) | s/epoch (report, GPU) | epochs | state |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in table["rows"]:
        rep = r["report"]
        cells = [f"{_num(r.get(k))} ({rep[k]:.3f})" for k, _ in METRICS]
        secs = f"{_num(r.get('seconds_per_epoch'), ',.0f')} ({rep['seconds']:,.0f})"
        lines.append(f"| {r['row']} | " + " | ".join(cells) + f" | {secs} | {r.get('epochs_done', 0)} | {r['state']} |")
    scale = f"max_train {s['max_train']}" if s.get("max_train") else "full training sets"
    hours = table["wall_seconds"] / 3600
    lines += ["", f"Dev metrics of each row's best checkpoint (single-task rows: chosen by SST); profile "
                  f"{s.get('profile', 'walkless')}; {s['epochs']} epoch(s) per row, {scale}; encoder {s['encoder']}; "
                  f"total training wall time {hours:.2f} h.",
              f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['threads']} threads)"
              + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU") + ".",
              "The report's numbers: BERT-base, 10 epochs, its seconds on a GPU.",
              "Note: the packaged all-MiniLM-L6-v2 encoder was trained on sentence pairs including Quora duplicates "
              "and NLI, so its Quora and STS figures start high.", "",
              "Commands:", *[f"    {c}" for c in table["commands"]]]
    return "\n".join(lines) + "\n"
