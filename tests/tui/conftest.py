"""Fixtures of the app's tests: real tiny runs, trained once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.tui import LONG

from core.config import TrainConfig
from core.train import train


@pytest.fixture(scope="session")
def runs(tiny_encoder, demo_data, tmp_path_factory) -> Path:
    """A runs folder with a 2-epoch multitask run under a long generated-style name, and a single-task run."""
    runs = tmp_path_factory.mktemp("tui-runs")
    common = dict(encoder=str(tiny_encoder), data_dir=str(demo_data), runs_dir=str(runs), batch_size=16, lr=1e-3,
                  log_every=1, max_train=32, max_dev=16)
    train(TrainConfig(variant="rrobin", name=LONG, epochs=2, **common))
    train(TrainConfig(variant="finetune", task="sst", name="ft", epochs=1, **common))
    return runs


@pytest.fixture
def runs_copy(runs, tmp_path) -> Path:
    return Path(shutil.copytree(runs, tmp_path / "runs"))
