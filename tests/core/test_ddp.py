"""Data-parallel training: ``torchrun --nproc_per_node=2`` (gloo, CPU) on tiny data gives the same losses
and weights as one process with the same global batch, and only rank 0 writes the run folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support.proc import REPO, checkout_first

from core.cli import build_parser, train_config
from core.distributed import DistInfo, shard
from core.runs import read_metrics
from core.train import train


def test_shards_cover_each_global_batch_with_weights_that_average_to_its_mean():
    for world in (1, 2, 3):
        for n in (1, 2, 5, 8):
            idx = list(range(10, 10 + n))
            parts = [shard(idx, DistInfo(r, world)) for r in range(world)]
            real = [p for p, w in parts if w > 0]
            assert sorted(i for p in real for i in p) == idx  # every example exactly once
            # mean over ranks of weight * (mean loss of the shard) == mean loss of the batch, for any losses
            loss = {i: float(i * i) for i in idx}
            avg = sum(w * sum(loss[i] for i in p) / len(p) for p, w in parts) / world
            assert avg == pytest.approx(sum(loss.values()) / n)


@pytest.fixture(scope="module")
def encoder(tiny_encoder, tmp_path_factory) -> Path:
    """The tiny encoder with attention dropout off too (dropout masks cannot match across a split)."""
    enc = Path(shutil.copytree(tiny_encoder, tmp_path_factory.mktemp("enc") / "tiny"))
    cfg = json.loads((enc / "config.json").read_text())
    (enc / "config.json").write_text(json.dumps({**cfg, "attention_probs_dropout_prob": 0.0}))
    return enc


def args(encoder: Path, runs: Path, name: str) -> list[str]:
    # STS (pair task): 41 examples in batches of 8 -> 5 full batches (4 + 4 per rank) and one of 1
    # (rank 1 joins with weight 0); two epochs, a checkpoint at each end.
    return ["train", "--variant", "finetune", "--task", "sts", "--encoder", str(encoder), "--runs-dir", str(runs),
            "--name", name, "--epochs", "2", "--batch-size", "8", "--max-train", "41", "--max-dev", "16",
            "--lr", "1e-3", "--dropout", "0", "--encoder-dropout", "0", "--log-every", "1", "--seed", "1"]


def last_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / json.loads((run / "last.json").read_text())["path"] / "model.safetensors"))


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed support")
def test_two_processes_match_one_with_the_same_global_batch(encoder, tmp_path, monkeypatch):
    import core.trainer as T

    batches: list[list[int]] = []  # the global batches, as the single process collates them
    collate = T.collate
    monkeypatch.setattr(T, "collate", lambda data, index, *rest: batches.append(list(index)) or collate(data, index, *rest))
    n = torch.get_num_threads()
    try:
        single = train(train_config(build_parser().parse_args(args(encoder, tmp_path / "one", "one")
                                                              + ["--threads", "1"])))
    finally:
        torch.set_num_threads(n)

    runs, probe = tmp_path / "two", tmp_path / "probe"
    probe.mkdir()
    env = checkout_first({k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK",
                                                                          "MASTER_ADDR", "MASTER_PORT")})
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(REPO / "tests" / "support" / "ddp_probe.py"), str(probe), *args(encoder, runs, "two")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # each rank computed its shard of every global batch (the batch of 1: rank 1 repeats it with weight 0)
    r0, r1 = (json.loads((probe / f"rank-{r}.json").read_text()) for r in (0, 1))
    assert len(batches) == len(r0) == len(r1) == 12 and sorted(map(len, batches))[:2] == [1, 1]
    for b, x, y in zip(batches, r0, r1, strict=True):
        assert x == b[0::2] and y == (b[1::2] or b[:1])
    double = runs / "two"
    assert [p.name for p in runs.iterdir()] == ["two"]  # one run folder, written by rank 0 alone
    status = json.loads((double / "status.json").read_text())
    assert status["state"] == "finished" and status["world_size"] == 2

    a = [(r["step"], r["loss"]) for r in read_metrics(single) if r["kind"] == "step"]
    b = [(r["step"], r["loss"]) for r in read_metrics(double) if r["kind"] == "step"]
    assert [s for s, _ in b] == [s for s, _ in a] == list(range(1, 13))  # no record written twice
    for (s, x), (_, y) in zip(a, b, strict=True):
        assert y == pytest.approx(x, rel=1e-5, abs=1e-6), f"step {s}: two processes {y}, one {x}"
    wa, wb = last_weights(single), last_weights(double)
    assert wa.keys() == wb.keys()
    # Attention key biases get a gradient that is exactly 0 in exact arithmetic (softmax ignores a shift
    # shared by all keys), so theirs is rounding noise, which Adam scales up to lr-sized steps: skip them.
    worst = max((wa[k] - wb[k]).abs().max().item() for k in wa if not k.endswith("attention.self.key.bias"))
    assert worst < 1e-5, worst
    dev = lambda r: [e["dev"]["sts/pearson"] for e in read_metrics(r) if e["kind"] == "epoch"]  # noqa: E731
    assert dev(double) == pytest.approx(dev(single), abs=1e-5) and len(dev(single)) == 2
