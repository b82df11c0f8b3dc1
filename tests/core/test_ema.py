"""--ema: the moving average of the weights is what is evaluated, kept and saved; resume continues it."""

from __future__ import annotations

import json

import pytest
import torch
from support.training import make_trainer

from core.config import TrainConfig
from core.runs import read_metrics


def test_ema_is_what_is_evaluated_and_saved_and_resume_continues_it(tiny_encoder, tmp_path):
    from safetensors.torch import load_file

    from core.train import resume, train

    def cfg(runs, epochs):
        return TrainConfig(variant="rrobin", encoder=str(tiny_encoder), runs_dir=str(runs), name="e", epochs=epochs,
                           max_train=24, max_dev=8, batch_size=4, lr=3e-3, seed=0, log_every=1, ema=0.9, threads=1)

    ref = train(cfg(tmp_path / "ref", 2))
    part = train(cfg(tmp_path / "part", 1))
    resume(part, epochs=2)
    steps = lambda r: [(x["step"], x["loss"]) for x in read_metrics(r) if x["kind"] == "step"]  # noqa: E731
    assert [s for s, _ in steps(part)] == [s for s, _ in steps(ref)]
    for (s, a), (_, b) in zip(steps(part), steps(ref), strict=True):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6), f"step {s}"
    last = lambda r: load_file(str(r / json.loads((r / "last.json").read_text())["path"] / "model.safetensors"))  # noqa: E731
    a, b = last(part), last(ref)
    assert all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in a)


def test_ema_weights_are_the_average_not_the_trained_ones(tiny_encoder, demo_data, tmp_path):
    from safetensors.torch import load_file

    t = make_trainer(tiny_encoder, demo_data, tmp_path, epochs=1, ema=0.9)
    manual = [p.detach().clone() for p in t.params]
    step = t.optimizer.step

    def stepping(*a, **k):
        out = step(*a, **k)
        with torch.no_grad():
            for m, p in zip(manual, t.params, strict=True):
                m.mul_(0.9).add_(p.detach(), alpha=0.1)
        return out

    t.optimizer.step = stepping
    t.fit()
    saved = load_file(str(t.run_dir / json.loads((t.run_dir / "last.json").read_text())["path"] / "model.safetensors"))
    for name, m in zip(t.param_names, manual, strict=True):
        assert torch.allclose(saved[name], m, atol=1e-6)  # the checkpoint holds the average...
    # ...not the trained weights, which the model holds again after saving
    assert any(not torch.allclose(saved[n], p.detach(), atol=1e-4)
               for n, p in zip(t.param_names, t.params, strict=True))

