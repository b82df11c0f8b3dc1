"""--pair-symmetric: both orders of a pair averaged, one answer either way, saved and reloaded."""

from __future__ import annotations

import pytest
import torch
from support.training import make_trainer, parse_train

from core.checkpoint import load_checkpoint
from core.encoders import load_pretrained
from core.multitask import HeadConfig, MultitaskBert


@pytest.mark.parametrize("rlayer", [False, True])
def test_pair_symmetric_heads_give_a_pair_one_answer_in_either_order(tiny_encoder, rlayer):
    torch.manual_seed(0)
    m = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(rlayer=rlayer, pair_symmetric=True)).eval()
    plain = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(rlayer=rlayer)).eval()
    plain.load_state_dict(m.state_dict())  # the option adds no weights: the same heads, scored both ways
    u, v = torch.randn(6, m.config.hidden_size), torch.randn(6, m.config.hidden_size)
    with torch.no_grad():
        for task in ("para", "sts"):
            uv, vu = m.output(task, torch.cat([u, v])), m.output(task, torch.cat([v, u]))
            assert torch.allclose(uv, vu, atol=1e-6)
            a, b = plain.output(task, torch.cat([u, v])), plain.output(task, torch.cat([v, u]))
            assert torch.allclose(uv, (a + b) / 2, atol=1e-6)
            if task == "para" or rlayer:  # the report's heads are not symmetric ([u, v, ...]); cosine is
                assert not torch.allclose(a, b, atol=1e-4)


def test_pair_symmetric_trains_saves_and_reloads(tiny_encoder, demo_data, tmp_path):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, variant="rrobin-full+rlayer", epochs=1, pair_symmetric=True)
    t.fit()
    assert t.model.heads.pair_symmetric
    loaded, meta, _ = load_checkpoint(t.run_dir)
    assert meta["heads"]["pair_symmetric"] is True and loaded.heads.pair_symmetric
    u, v = torch.randn(3, loaded.config.hidden_size), torch.randn(3, loaded.config.hidden_size)
    loaded.eval()
    with torch.no_grad():
        assert torch.allclose(loaded.output("para", torch.cat([u, v])), loaded.output("para", torch.cat([v, u])),
                              atol=1e-6)


def test_pair_symmetric_flag_default_and_cross_input(tiny_encoder):
    assert (parse_train("--pair-symmetric").pair_symmetric, parse_train().pair_symmetric) == (True, False)
    assert HeadConfig.from_dict({"tasks": ["para"]}).pair_symmetric is False  # checkpoints from before the option
    with pytest.raises(ValueError, match="--pair-symmetric .* needs --pair-input bi"):
        parse_train("--pair-symmetric", "--pair-input", "cross").validate()
    with pytest.raises(ValueError, match="use it with pair input bi"):
        MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(pair_input="cross", pair_symmetric=True))

