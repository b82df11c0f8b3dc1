"""Helpers of the training-option tests: a parsed `walkless train` config, a tiny Trainer, its recorded steps."""

from __future__ import annotations

import torch

from core.cli import build_parser, train_config
from core.config import TrainConfig
from core.setup import prepare
from core.trainer import Trainer


def parse_train(*args: str) -> TrainConfig:
    """The TrainConfig of ``walkless train ARGS``."""
    return train_config(build_parser().parse_args(["train", *args]))


def make_trainer(tiny_encoder, demo_data, tmp_path, **kw) -> Trainer:
    torch.manual_seed(0)
    c = TrainConfig(variant=kw.pop("variant", "rrobin"), encoder=str(tiny_encoder), data_dir=str(demo_data),
                    runs_dir=str(tmp_path), max_train=24, max_dev=8, batch_size=4, lr=1e-3, seed=0, log_every=1000,
                    **kw)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return Trainer(prepare(c), run_dir)


def record_steps(trainer: Trainer) -> list[dict]:
    """Wrap the optimizer step to record the learning rate and the gradient norm it is given."""
    seen, step = [], trainer.optimizer.step

    def recording(*a, **k):
        g = torch.stack([p.grad.norm() for p in trainer.params if p.grad is not None]).norm().item()
        seen.append({"lr": trainer.optimizer.param_groups[0]["lr"], "grad_norm": g})
        return step(*a, **k)

    trainer.optimizer.step = recording
    return seen


def record_tasks(trainer: Trainer) -> list[str]:
    """Wrap the step loss to record the task of every training step, in order."""
    tasks, forward = [], trainer.step_loss.forward

    def recording(items):
        tasks.extend(task for task, *_ in items)
        return forward(items)

    trainer.step_loss.forward = recording
    return tasks

