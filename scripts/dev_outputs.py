"""Dev outputs of runs' best checkpoints: each run's dev values, the values of their average (an ensemble of the
runs: class probabilities, duplicate probabilities and STS scores averaged), and each run's Quora accuracy as the
threshold on its paraphrase logit moves (0 is the one the tool uses).

    python scripts/dev_outputs.py RUN_DIR... --data-dir DIR [--tasks sst,para,sts] [--json FILE]

Markdown on stdout. The thresholds are read off the dev set itself, so the best of them is an upper bound on
what recalibrating the paraphrase head could give, not a result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.checkpoint import load_checkpoint  # noqa: E402
from core.data import TASKS, TaskData, load_task  # noqa: E402
from core.evaluate import outputs, task_report  # noqa: E402
from core.multitask import predictions, probabilities  # noqa: E402

THRESHOLDS = [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]


def averaged_output(task: str, out: torch.Tensor) -> torch.Tensor:
    """A raw output -> what the ensemble averages: class probabilities (N, C), P(duplicate) (N,), or the score (N,)."""
    if TASKS[task].kind == "regress":
        return predictions(task, out)  # the clamped score
    p = probabilities(task, out)
    return p[:, 1] if TASKS[task].kind == "binary" else p


def score(task: str, data: TaskData, avg: torch.Tensor) -> float:
    """The task's dev metric (accuracy, or Pearson's r for STS) of averaged outputs, by ``core.evaluate.task_report``."""
    kind = TASKS[task].kind
    if kind == "regress":
        preds = avg
    else:
        preds = avg > 0.5 if kind == "binary" else avg.argmax(-1)
    return task_report(task, np.asarray(data.labels, dtype=np.float64), preds.double().numpy())[0][TASKS[task].metric]


def collect(runs: list[Path], data_dir: Path, tasks: list[str]) -> tuple[dict, dict]:
    """Run folders -> ({task: dev data}, {run: {task: raw output}}), every run on the same examples."""
    data: dict[str, TaskData] = {}
    raw: dict[str, dict[str, torch.Tensor]] = {}
    for run in runs:
        model, _, tokenizer = load_checkpoint(run)
        for task in tasks:
            data.setdefault(task, load_task(data_dir, task, "dev", tokenizer))
        raw[str(run)] = {task: outputs(model, data[task]) for task in tasks}
    return data, raw


def report(data: dict, raw: dict) -> tuple[str, dict]:
    """The markdown tables and the values behind them."""
    tasks = list(data)
    keys = [TASKS[t].metric for t in tasks]
    values = {run: {k: score(t, data[t], averaged_output(t, o[t])) for t, k in zip(tasks, keys, strict=True)}
              for run, o in raw.items()}
    mean = {t: torch.stack([averaged_output(t, o[t]) for o in raw.values()]).mean(0) for t in tasks}
    values["ensemble"] = {k: score(t, data[t], mean[t]) for t, k in zip(tasks, keys, strict=True)}
    md = ["| model | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(tasks)]
    md += [f"| {name} | " + " | ".join(f"{v[k]:.4f}" for k in keys) + " |" for name, v in values.items()]
    sweep = {}
    if "para" in tasks:
        labels = np.asarray(data["para"].labels, dtype=np.float64)
        for run, o in raw.items():
            logit = o["para"].numpy()
            sweep[run] = {t: [float(((logit > t) == labels).mean()), float((logit > t).mean())] for t in THRESHOLDS}
        md += ["", "Quora dev accuracy (and the share called duplicates) by threshold on the logit:", "",
               "| model | " + " | ".join(f"{t:+.1f}" for t in THRESHOLDS) + " |", "|---|" + "---:|" * len(THRESHOLDS)]
        md += [f"| {run} | " + " | ".join(f"{a:.4f} ({r:.3f})" for a, r in s.values()) + " |" for run, s in sweep.items()]
    return "\n".join(md) + "\n", {"values": values, "para_thresholds": sweep}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders (or checkpoint folders)")
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--tasks", default="sst,para,sts", help="comma-separated; default sst,para,sts")
    p.add_argument("--json", type=Path, help="also write the values here")
    a = p.parse_args()
    tasks = a.tasks.split(",")
    if unknown := [t for t in tasks if t not in TASKS]:
        p.error(f"--tasks: unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    md, values = report(*collect(a.runs, a.data_dir, tasks))
    if a.json:
        a.json.write_text(json.dumps(values, indent=1) + "\n")
    print(md, end="")


if __name__ == "__main__":
    main()
