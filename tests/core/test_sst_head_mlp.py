"""--sst-head mlp: dropout, dense + tanh, dropout, linear, trained at the head lr and scored from the checkpoint."""

from __future__ import annotations

import pytest
import torch
from support.training import make_trainer, parse_train

from core.checkpoint import load_checkpoint
from core.encoders import load_pretrained
from core.multitask import HeadConfig, MultitaskBert


def test_sst_head_mlp_trains_at_the_head_lr_and_is_what_the_checkpoint_scores(tiny_encoder, demo_data, tmp_path):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, variant="rrobin-full", epochs=1, head_lr=10.0,
                     sst_head="mlp")
    m = t.model
    lr_of = {id(p): g["lr"] for g in t.optimizer.param_groups for p in g["params"]}
    assert lr_of[id(m.sst_dense.weight)] == pytest.approx(1e-3 * 10)
    before = m.sst_dense.weight.detach().clone()
    t.fit()
    assert not torch.equal(before, m.sst_dense.weight)  # the dense layer learns
    m.eval()
    x = torch.randn(5, m.config.hidden_size)
    with torch.no_grad():
        want = m.sst_classifier(torch.tanh(m.sst_dense(x)))
        assert torch.allclose(m.output("sst", x), want)
        assert not torch.allclose(m.sst_classifier(x), want)  # not the linear head
        loaded, meta, _ = load_checkpoint(t.run_dir)
        assert meta["heads"]["sst_head"] == "mlp"
        assert torch.allclose(loaded.output("sst", x), want, atol=1e-6)


def test_sst_head_flag_default_and_bad_value(tiny_encoder):
    assert (parse_train("--sst-head", "mlp").sst_head, parse_train().resolved().sst_head) == ("mlp", "linear")
    linear = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig())
    assert not hasattr(linear, "sst_dense")  # the report's head: dropout + linear only
    assert HeadConfig.from_dict({"tasks": ["sst"]}).sst_head == "linear"  # checkpoints from before the option
    with pytest.raises(ValueError, match="sst head 'deep': choose linear, leaky, mlp or lstm"):
        MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(sst_head="deep"))

