"""Single-task runs evaluated on every dev set, the best checkpoint kept by their own task."""

from __future__ import annotations

import json

from core.cli import main
from core.runs import read_metrics


def test_single_task_eval_all_reports_every_dev_set_and_keeps_the_best_by_its_task(tiny_encoder, tmp_path):
    runs = tmp_path / "runs"
    assert main(["train", "--variant", "finetune", "--task", "sst", "--eval-all", "--encoder", str(tiny_encoder),
                 "--runs-dir", str(runs), "--name", "ft", "--epochs", "2", "--batch-size", "8", "--max-train", "16",
                 "--max-dev", "8", "--lr", "1e-3", "--threads", "1"]) == 0
    epochs = [r for r in read_metrics(runs / "ft") if r["kind"] == "epoch"]
    assert all({"sst/acc", "para/acc", "sts/pearson"} <= set(r["dev"]) for r in epochs)
    best = json.loads((runs / "ft" / "best.json").read_text())
    assert best["score"] == max(r["dev"]["sst/acc"] for r in epochs)  # SST alone picks the best checkpoint
    steps = {r["task"] for r in read_metrics(runs / "ft") if r["kind"] == "step"}
    assert steps == {"sst"}  # the other heads are only evaluated, never trained

