"""``--sst-head lstm``: a BiLSTM over all the encoder's token states (packed, masked mean and max), a sentiment head
like the others: it reads the tokens after [CLS], ignores padding, trains, saves and loads."""

from __future__ import annotations

import pytest
import torch
from test_variants import make_trainer, relative_loss, train_set_losses, train_steps

from core.checkpoint import load_checkpoint, save_checkpoint
from core.cli import build_parser, train_config
from core.data import collate
from core.encoders import load_pretrained
from core.multitask import HeadConfig, MultitaskBert


def identity_encoder(model: MultitaskBert) -> MultitaskBert:
    """The model with an encoder that passes the token states through, so a test sets them by hand."""
    model.bert.encode = lambda emb, mask, top=None: emb
    return model.eval()


def test_the_lstm_head_reads_the_tokens_after_cls_and_not_the_padding(tiny_encoder):
    torch.manual_seed(0)
    lstm = identity_encoder(MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(sst_head="lstm", pooling="cls")))
    linear = identity_encoder(MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(pooling="cls")))
    C = lstm.config.hidden_size
    assert lstm.sst_classifier.in_features == 2 * C and lstm.sst_lstm.bidirectional
    h = torch.randn(2, 6, C)  # token states
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])  # the second sentence: 4 tokens, 2 padding
    later, padding = h.clone(), h.clone()
    later[:, 3] += 1.0  # a real token after [CLS] in both sentences
    padding[1, 4:] = 100.0  # the second sentence's padding
    with torch.no_grad():
        out = lstm.head("sst", h, mask)
        assert out.shape == (2, 5)
        assert (lstm.head("sst", later, mask) - out).abs().amin(-1).gt(1e-4).all()  # both sentences' outputs move
        assert torch.allclose(lstm.head("sst", padding, mask), out, atol=1e-6)  # padding never enters
        assert torch.equal(linear.head("sst", later, mask), linear.head("sst", h, mask))  # [CLS] alone: blind to it


def test_a_sentence_scores_the_same_alone_and_in_a_padded_batch(tiny_encoder, demo_data):
    from core.data import load_task
    from core.encoders import load_tokenizer

    model = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(sst_head="lstm")).eval()
    data = load_task(demo_data, "sst", "dev", load_tokenizer(tiny_encoder))
    short = min(range(len(data)), key=lambda i: data.lengths[i])
    long = max(range(len(data)), key=lambda i: data.lengths[i])
    assert data.lengths[long] > data.lengths[short]
    with torch.no_grad():
        alone = model(collate(data, [short]))
        padded = model(collate(data, [long, short]))[1:]
    assert torch.allclose(alone, padded, atol=1e-5)


def test_the_lstm_head_trains_at_the_head_lr_saves_and_loads(tiny_encoder, demo_data, tmp_path):
    args = build_parser().parse_args(["train", "--sst-head", "lstm", "--variant", "finetune"])
    assert train_config(args).sst_head == "lstm"
    trainer = make_trainer("rrobin", tiny_encoder, demo_data, tmp_path, sst_head="lstm", head_lr=3.0)
    m = trainer.model
    lr_of = {id(p): g["lr"] for g in trainer.optimizer.param_groups for p in g["params"]}
    assert lr_of[id(m.sst_lstm.weight_ih_l0)] == pytest.approx(3e-3 * 3.0)  # a head: the head lr
    before_w = m.sst_lstm.weight_hh_l0.detach().clone()
    before = train_set_losses(trainer)
    train_steps(trainer, 24)
    after = train_set_losses(trainer)
    assert not torch.equal(before_w, m.sst_lstm.weight_hh_l0)  # the BiLSTM learns
    assert after["sst"] < 0.9 * before["sst"] and relative_loss(before, after) < 0.93, (before, after)
    (tmp_path / "run").mkdir()
    ckpt = save_checkpoint(tmp_path / "run", "step-1", m, {"step": 1}, tiny_encoder)
    loaded, meta, _ = load_checkpoint(ckpt)
    assert meta["heads"]["sst_head"] == "lstm"
    batch = collate(trainer.setup.train["sst"], list(range(8)))
    m.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(batch), m(batch), atol=1e-6)
