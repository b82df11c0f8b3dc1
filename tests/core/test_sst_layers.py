"""--sst-layers K: the sentiment tasks' own copy of the encoder's top K layers."""

from __future__ import annotations

import pytest
import torch
from support.training import make_trainer, parse_train, record_tasks

from core.checkpoint import load_checkpoint
from core.config import TrainConfig
from core.data import collate
from core.encoders import load_pretrained
from core.multitask import HeadConfig, MultitaskBert
from core.setup import prepare


def sentiment_and_pair_outputs(m: MultitaskBert, batch) -> tuple[torch.Tensor, torch.Tensor]:
    emb = m.embed(batch)
    x = torch.cat([emb, emb.flip(0)])  # a pair batch: both sides stacked
    mask = torch.cat([batch.attention_mask, batch.attention_mask.flip(0)])
    return m.head("sst", emb, batch.attention_mask), m.head("para", x, mask)


def test_sst_layers_branch_starts_as_the_shared_top_and_only_sentiment_reads_it(tiny_encoder, demo_data):
    torch.manual_seed(0)
    m = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(rlayer=True, sst_layers=1)).eval()
    plain = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(rlayer=True)).eval()
    assert set(m.state_dict()) - set(plain.state_dict()) == {k for k in m.state_dict() if k.startswith("sst_top.0.")}
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("sst_top.")})
    data = prepare(TrainConfig(encoder=str(tiny_encoder), data_dir=str(demo_data), max_train=6)).train["sst"]
    b = collate(data, list(range(6)))
    with torch.no_grad():
        sst, para = sentiment_and_pair_outputs(m, b)
        same = zip((sst, para), sentiment_and_pair_outputs(plain, b), strict=True)
        assert all(torch.allclose(a, c, atol=1e-6) for a, c in same)  # at init the copy is the shared top
        m.sst_top[0].output.dense.weight.mul_(1.5)  # the branch: SST moves, the pair heads do not
        sst2, para2 = sentiment_and_pair_outputs(m, b)
        assert not torch.allclose(sst, sst2, atol=1e-4) and torch.equal(para, para2)
        m.bert.encoder.layer[-1].output.dense.weight.mul_(1.5)  # the shared top: the pair heads move, SST does not
        sst3, para3 = sentiment_and_pair_outputs(m, b)
        assert torch.equal(sst2, sst3) and not torch.allclose(para2, para3, atol=1e-4)


def test_sst_layers_sst_steps_leave_the_shared_top_and_pair_steps_the_branch(tiny_encoder, demo_data, tmp_path):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, variant="rrobin-full+rlayer+smart", epochs=1, sst_layers=1,
                     head_lr=10.0, layer_decay=0.5)
    m, n = t.model, t.model.config.num_hidden_layers
    lr_of = {id(p): g["lr"] for g in t.optimizer.param_groups for p in g["params"]}
    branch, shared_top, bottom = m.sst_top[0], m.bert.encoder.layer[n - 1], m.bert.encoder.layer[0]
    # the copy sits at its layer's depth (not with the heads at 10x): top layer lr * 0.5, layer 0 lr * 0.5 ** 2
    assert lr_of[id(branch.output.dense.weight)] == lr_of[id(shared_top.output.dense.weight)] == pytest.approx(5e-4)
    assert lr_of[id(bottom.output.dense.weight)] == pytest.approx(2.5e-4)
    assert lr_of[id(m.sst_classifier.weight)] == pytest.approx(1e-2)
    tasks, moved, step = record_tasks(t), [], t.optimizer.step
    weights = [branch.output.dense.weight, shared_top.output.dense.weight, bottom.output.dense.weight]

    def recording(*a, **k):
        before = [w.detach().clone() for w in weights]
        out = step(*a, **k)
        moved.append(tuple(not torch.equal(b, w) for b, w in zip(before, weights, strict=True)))
        return out

    t.optimizer.step = recording
    t.fit()
    assert len(tasks) == len(moved) and {"sst", "para", "sts"} <= set(tasks)
    for task, (branch_moved, top_moved, bottom_moved) in zip(tasks, moved, strict=True):
        assert bottom_moved  # the lower layers stay shared by every task
        assert (branch_moved, top_moved) == ((True, False) if task == "sst" else (False, True)), task
    loaded, meta, _ = load_checkpoint(t.run_dir)
    assert meta["heads"]["sst_layers"] == 1
    assert torch.equal(loaded.sst_top[0].output.dense.weight, branch.output.dense.weight)  # one epoch: best = last
    assert not torch.equal(loaded.sst_top[0].output.dense.weight, loaded.bert.encoder.layer[n - 1].output.dense.weight)


def test_sst_layers_flag_default_and_range(tiny_encoder):
    assert (parse_train("--sst-layers", "2").sst_layers, parse_train().sst_layers) == (2, 0)
    assert HeadConfig.from_dict({"tasks": ["sst"]}).sst_layers == 0  # checkpoints from before the option
    assert MultitaskBert(load_pretrained(tiny_encoder), HeadConfig()).sst_top is None
    assert MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(tasks=("para", "sts"), sst_layers=1)).sst_top is None
    frozen = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(sst_layers=1))
    frozen.freeze_encoder()  # the pretrain baseline: the copy is encoder too, only the heads learn
    assert not any(p.requires_grad for p in frozen.sst_top.parameters()) and frozen.sst_classifier.weight.requires_grad
    with pytest.raises(ValueError, match="sst layers 3: the encoder has 2 layers"):
        MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(sst_layers=3))
    with pytest.raises(ValueError, match="--sst-layers -1: must be at least 0"):
        TrainConfig(sst_layers=-1).validate()

