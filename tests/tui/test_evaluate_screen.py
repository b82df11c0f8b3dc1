"""The Evaluate screen: SST labels whole at any size, ctrl+r on the chosen epoch's checkpoint."""

from __future__ import annotations

import json

import pytest
from support.runfolders import epoch_record, make_run
from support.tui import BIG, SMALL, screen_text, wait_for
from textual.widgets import DataTable, Select

from walkless_tui.app import WalklessApp
from walkless_tui.screens.evaluate import epoch_checkpoint

SST_LABELS = ["negative", "somewhat negative", "neutral", "somewhat positive", "positive"]


def sst_report(epoch: int) -> dict:
    return {"kind": "report", "task": "sst", "epoch": epoch, "labels": SST_LABELS,
            "confusion": [[5 if i == j else 1 for j in range(5)] for i in range(5)], "precision": [0.5] * 5,
            "recall": [0.5] * 5, "f1": [0.5, 0.4, 0.3, 0.6, 0.7], "support": [9] * 5}


@pytest.mark.parametrize("size", [SMALL, BIG])
async def test_evaluate_keeps_sst_labels_whole_at_any_size(tmp_path, size):
    runs = tmp_path / "runs"
    run = make_run(runs, "ev", variant="finetune", task="sst", records=[
        sst_report(1), epoch_record(1, 0.5), sst_report(2), epoch_record(2, 0.6)])
    (run / "best.json").write_text(json.dumps({"epoch": 2, "path": "checkpoints/best"}))
    app = WalklessApp(runs)
    async with app.run_test(size=size) as pilot:
        app.open_evaluate(run)
        await pilot.pause()
        screen = app.screen
        await wait_for(pilot, lambda: screen.shown > 0 and screen.reports, what="the reports")
        screen.query_one("#eval-epoch", Select).value = 1
        await wait_for(pilot, lambda: "epoch 1 (from" in screen.source, what="epoch 1")
        await wait_for(pilot, lambda: "3 somewhat positive" in screen_text(app), what="the epoch-1 matrix drawn")
        text = screen_text(app)
        assert "epoch 1" in text  # the epoch dropdown on one line, not one letter per line
        for label in ("1 somewhat negative", "3 somewhat positive"):
            assert label in text, label  # the confusion matrix's rows
        scores = screen.query_one("#scores-sst", DataTable)
        classes = [str(scores.get_cell(str(i), "class")) for i in range(5)]
        assert classes == SST_LABELS and scores.columns["class"].get_render_width(scores) >= len("somewhat negative")


def test_ctrl_r_evaluates_the_chosen_epochs_checkpoint(tmp_path):
    run = tmp_path / "run"
    for folder, epoch in (("best", 2), ("step-00000002", 1), ("step-00000004", 2)):
        (run / "checkpoints" / folder).mkdir(parents=True)
        (run / "checkpoints" / folder / "walkless.json").write_text(json.dumps({"epoch": epoch, "epoch_done": True}))
    (run / "best.json").write_text(json.dumps({"epoch": 2, "path": "checkpoints/best"}))
    assert epoch_checkpoint(run, 2) == (run / "checkpoints" / "best", "best checkpoint of epoch 2")
    assert epoch_checkpoint(run, 1) == (run / "checkpoints" / "step-00000002", "checkpoint of epoch 1")
    path, which = epoch_checkpoint(run, 3)
    assert path == run and "no checkpoint of epoch 3 is kept" in which

