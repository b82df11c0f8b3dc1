"""The learning rate and the gradient: warmup and linear decay, layer-wise decay, the heads' multiplier, clipping (at 1 under SMART, as the report's code)."""

from __future__ import annotations

import pytest
import torch
from support.training import make_trainer, record_steps

from core.config import TrainConfig
from core.setup import lr_factor


def test_lr_factor_warmup_then_linear_decay_to_zero():
    f = [lr_factor(s, 100, 0.1, "linear") for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and f[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    assert f[99] == pytest.approx(1 / 90)
    assert [lr_factor(s, 100, 0.0, "constant") for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="constant or linear"):
        lr_factor(50, 100, 0.0, "cosine")


def test_linear_schedule_follows_the_plan_to_its_last_step(tiny_encoder, demo_data, tmp_path):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, epochs=2, lr_schedule="linear", warmup=0.2)
    seen = record_steps(t)
    t.fit()
    assert t.step == t.total_steps == len(seen) == 2 * 6 * 3  # 2 epochs x floor(24/4) iterations x 3 tasks
    lrs = [s["lr"] for s in seen]
    n_warm = int(0.2 * len(lrs))
    assert lrs[0] == pytest.approx(1e-3 / n_warm) and lrs[n_warm] == pytest.approx(1e-3)
    assert lrs[-1] == pytest.approx(1e-3 / (len(lrs) - n_warm))


@pytest.mark.parametrize("clip", [0.05, 0.0])
def test_gradient_clipping(tiny_encoder, demo_data, tmp_path, clip):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, epochs=1, clip_grad=clip, dropout=0.1)
    seen = record_steps(t)
    t.fit()
    norms = [s["grad_norm"] for s in seen]
    if clip:
        assert max(norms) <= clip * 1.001
    else:
        assert max(norms) > 0.05  # unclipped gradients are larger than the clip above


def test_smart_clips_at_one_by_default_as_the_reports_code():
    assert TrainConfig().grad_clip_norm(smart=True) == 1.0
    assert TrainConfig().grad_clip_norm(smart=False) is None
    assert TrainConfig(clip_grad=0).grad_clip_norm(smart=True) is None
    assert TrainConfig(clip_grad=2.5).grad_clip_norm(smart=False) == 2.5


def test_layer_decay_gives_each_depth_its_learning_rate(tiny_encoder, demo_data, tmp_path):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, epochs=1, layer_decay=0.5, lr_schedule="linear")
    n = t.model.config.num_hidden_layers
    lr_of = {id(p): g["lr"] for g in t.optimizer.param_groups for p in g["params"]}
    assert lr_of[id(t.model.sst_classifier.weight)] == pytest.approx(1e-3)
    assert lr_of[id(t.model.bert.encoder.layer[n - 1].output.dense.weight)] == pytest.approx(1e-3 * 0.5)
    assert lr_of[id(t.model.bert.embeddings.word_embeddings.weight)] == pytest.approx(1e-3 * 0.5 ** (n + 1))
    seen = record_steps(t)
    t.fit()
    assert t.optimizer.param_groups[-1]["lr"] < 1e-3 / 10  # the schedule scales every group from its own base
    assert len(seen) == t.total_steps


@pytest.mark.parametrize("layer_decay", [1.0, 0.5])
def test_head_lr_multiplies_the_heads_learning_rate_only(tiny_encoder, demo_data, tmp_path, layer_decay):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, epochs=1, head_lr=10.0, layer_decay=layer_decay,
                     variant="rrobin+rlayer")
    n = t.model.config.num_hidden_layers
    lr_of = {id(p): g["lr"] for g in t.optimizer.param_groups for p in g["params"]}
    for head in (t.model.sst_classifier, t.model.relational.dense, t.model.para_out, t.model.sts_out):
        assert lr_of[id(head.weight)] == pytest.approx(1e-3 * 10)
    assert lr_of[id(t.model.bert.encoder.layer[n - 1].output.dense.weight)] == pytest.approx(1e-3 * layer_decay)
    assert lr_of[id(t.model.bert.embeddings.word_embeddings.weight)] == pytest.approx(1e-3 * layer_decay ** (n + 1))
    heads_before = t.model.sst_classifier.weight.detach().clone()
    t.fit()
    assert not torch.equal(heads_before, t.model.sst_classifier.weight)

