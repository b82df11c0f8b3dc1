"""Every variant trains: its training loss goes down on tiny data, and every Table 2 row starts by name
from the CLI and shows up in ``walkless compare``."""

from __future__ import annotations

import io
import json

import pytest
import torch
from rich.console import Console

from core.cli import main
from core.config import SmartConfig, TrainConfig
from core.data import collate
from core.multitask import task_loss
from core.report import COLUMNS, print_compare
from core.setup import prepare, subsample
from core.trainer import Trainer
from core.variants import REPORT_VARIANTS

ALL_VARIANTS = (*REPORT_VARIANTS, "rrobin-full+rlayer+smart", "proportional", "annealed")


# Unequal task sizes, so that every schedule makes a different plan (rrobin-full: 8 / 4 / 2 per iteration).
SIZES = {"sst": 24, "para": 48, "sts": 16}
STEPS = 24  # optimizer steps per variant


@torch.no_grad()
def train_set_losses(trainer: Trainer) -> dict[str, float]:
    """Mean task loss over each task's whole (tiny) training set, dropout off."""
    was = trainer.model.training
    trainer.model.eval()
    out = {}
    for task, data in trainer.setup.train.items():
        batch = collate(data, list(range(len(data))))
        out[task] = task_loss(task, trainer.model(batch), batch.labels).item()
    trainer.model.train(was)
    return out


def relative_loss(before: dict[str, float], after: dict[str, float]) -> float:
    """Mean over tasks of after / before (STS's MSE would otherwise outweigh the others)."""
    return sum(after[t] / before[t] for t in before) / len(before)


def make_trainer(name: str, tiny_encoder, demo_data, tmp_path, **kw) -> Trainer:
    torch.manual_seed(0)
    c = TrainConfig(variant=name, task="sst", encoder=str(tiny_encoder), data_dir=str(demo_data),
                    runs_dir=str(tmp_path), max_train=max(SIZES.values()), max_dev=8, batch_size=8,
                    lr=kw.pop("lr", 3e-2 if name == "pretrain" else 3e-3),  # heads alone learn slowly
                    epochs=kw.pop("epochs", 20), dropout=0.1, seed=0, log_every=1000, pre_epochs=1, **kw)
    s = prepare(c)
    s.train = {t: subsample(d, SIZES[t], 0) for t, d in s.train.items()}
    run_dir = tmp_path / name.replace("+", "_")
    run_dir.mkdir()
    return Trainer(s, run_dir)


def train_steps(trainer: Trainer, steps: int) -> None:
    """Follow the schedule's epoch plans until ``steps`` optimizer steps are done."""
    for epoch in range(1, trainer.config.epochs + 1):
        trainer.epoch = epoch
        trainer.model.train()
        for it in trainer.plan(epoch):
            trainer.iteration(it)
            if trainer.step >= steps:
                return


@pytest.mark.parametrize("name", ALL_VARIANTS)
def test_variant_training_loss_goes_down(name, tiny_encoder, demo_data, tmp_path):
    # annealed: 3 epochs, so the 24 steps cross from α = 1 (proportional) to α = 0.6 and 0.2.
    trainer = make_trainer(name, tiny_encoder, demo_data, tmp_path, epochs=3 if name == "annealed" else 20)
    assert trainer.setup.variant.name == name
    assert (trainer.smart is not None) == ("+smart" in name)
    assert hasattr(trainer.model, "relational") == ("+rlayer" in name)
    before = train_set_losses(trainer)
    train_steps(trainer, STEPS)
    after = train_set_losses(trainer)
    assert STEPS <= trainer.step < STEPS + 3  # stops after the iteration that reaches STEPS
    assert relative_loss(before, after) < 0.93, (name, before, after)
    if trainer.smart is not None:  # the teacher followed the student
        moved = [not torch.equal(t, p) for t, p in zip(trainer.smart.teacher, trainer.smart.params, strict=True)]
        assert any(moved)


def test_summed_step_with_smart_also_learns(tiny_encoder, demo_data, tmp_path):
    trainer = make_trainer("rrobin-full+smart", tiny_encoder, demo_data, tmp_path, per_task_step=False,
                           smart=SmartConfig(dropout_off=False))
    before = train_set_losses(trainer)
    train_steps(trainer, STEPS)
    assert relative_loss(before, train_set_losses(trainer)) < 0.93


def test_fast_smart_learns_and_starts_from_the_cli(tiny_encoder, demo_data, tmp_path):
    trainer = make_trainer("rrobin+smart", tiny_encoder, demo_data, tmp_path, smart=SmartConfig.fast())
    before = train_set_losses(trainer)
    train_steps(trainer, STEPS)
    assert relative_loss(before, train_set_losses(trainer)) < 0.93
    rc = main(["train", "--variant", "finetune+smart", "--smart-fast", "--encoder", str(tiny_encoder),
               "--data-dir", str(demo_data), "--runs-dir", str(tmp_path), "--name", "fast", "--epochs", "1",
               "--batch-size", "4", "--max-train", "8", "--max-dev", "4", "--max-steps", "2"])
    assert rc == 0
    smart = json.loads((tmp_path / "fast" / "config.json").read_text())["smart"]
    assert smart == vars(SmartConfig.fast().resolved())  # config.json records every resolved choice (λ 5)
    assert (smart["same_masks"], smart["dropout_off"]) == (True, False)


def test_all_report_rows_start_from_the_cli_and_compare(tiny_encoder, demo_data, tmp_path, capsys):
    runs = []
    for name in REPORT_VARIANTS:
        run_name = name.replace("+", "_")
        rc = main(["train", "--variant", name, "--encoder", str(tiny_encoder), "--data-dir", str(demo_data),
                   "--runs-dir", str(tmp_path), "--name", run_name, "--epochs", "1", "--batch-size", "4",
                   "--lr", "1e-3", "--max-train", "16", "--max-dev", "8", "--max-steps", "2"])
        assert rc == 0, name
        runs.append(tmp_path / run_name)
        cfg = json.loads((tmp_path / run_name / "config.json").read_text())
        assert cfg["variant"] == name and cfg["encoder"] == str(tiny_encoder)
        assert all(v["train"] == 16 for v in cfg["data_sizes"].values())
        assert cfg["schedule_plan"]["iterations"] >= 1
    capsys.readouterr()

    assert main(["compare", *map(str, runs), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in rows] == list(REPORT_VARIANTS)
    for r in rows:
        assert r["seconds"] is not None and r["seconds"] > 0
        assert r["settings"]["lr"] == 1e-3 and r["settings"]["batch_size"] == 4
        tasks = r["config"]["tasks"]
        assert all((k in r) == (k.split("/")[0] in tasks) for k, _ in COLUMNS), r
    assert "lam" in rows[2]["settings"]["smart"] and "smart" not in rows[1]["settings"]

    assert main(["compare", *map(str, runs), "--markdown"]) == 0
    md = capsys.readouterr().out
    assert md.count("\n| ") >= len(runs) and "**" in md and "| rrobin-full+rlayer |" in md

    buf = io.StringIO()
    print_compare(runs, out=Console(file=buf, width=200))
    text = buf.getvalue()
    for name in REPORT_VARIANTS:
        assert f" {name} " in text
    assert "SST acc" in text and "s/epoch" in text

    assert main(["compare", str(tmp_path / "nope")]) == 1
    assert "not a run folder" in capsys.readouterr().err
