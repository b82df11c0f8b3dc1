"""The report code's defaults: head dropout 0.3 apart from the encoder's own dropout, and pair heads whose
dropout acts on the feature vector, so training and evaluation agree on what a duplicate is."""

from __future__ import annotations

import json

import pytest
import torch

from core.cli import build_parser, train_config
from core.config import TrainConfig
from core.data import collate
from core.setup import build_model, prepare


def setup_for(tiny_encoder, demo_data, **kw):
    return prepare(TrainConfig(variant="rrobin", encoder=str(tiny_encoder), data_dir=str(demo_data), max_train=64,
                               max_dev=8, **kw))


def test_cli_defaults_head_dropout_03_and_the_encoders_own():
    c = train_config(build_parser().parse_args(["train"]))
    assert c.dropout == 0.3 and c.encoder_dropout is None
    c = train_config(build_parser().parse_args(["train", "--encoder-dropout", "0.2", "--dropout", "0.1"]))
    assert c.dropout == 0.1 and c.encoder_dropout == 0.2


def test_encoder_keeps_its_checkpoint_dropout_unless_asked(tiny_encoder, demo_data):
    own = json.loads((tiny_encoder / "config.json").read_text())
    model = build_model(setup_for(tiny_encoder, demo_data), torch.device("cpu"))
    assert model.dropout.p == 0.3
    assert model.bert.config.hidden_dropout_prob == own["hidden_dropout_prob"] != 0.3
    assert model.bert.config.attention_probs_dropout_prob == own["attention_probs_dropout_prob"]
    model = build_model(setup_for(tiny_encoder, demo_data, encoder_dropout=0.25), torch.device("cpu"))
    assert model.bert.config.hidden_dropout_prob == model.bert.config.attention_probs_dropout_prob == 0.25
    assert model.dropout.p == 0.3


@pytest.fixture()
def pair_model(tiny_encoder, demo_data):
    """A multitask model whose paraphrase head depends strongly on |u - v| (as a trained one does: far apart
    means not duplicate), with the bias set so evaluation calls half the pairs duplicates; the encoder stays in
    eval mode so that only the heads' dropout differs between the two modes."""
    torch.manual_seed(0)
    s = setup_for(tiny_encoder, demo_data, dropout=0.3)
    model = build_model(s, torch.device("cpu")).eval()
    batch = collate(s.train["para"], list(range(64)))
    C = model.config.hidden_size
    with torch.no_grad():
        w = model.para_classifier.weight
        w[:, 2 * C:] = -w[:, 2 * C:].abs() * 20  # the |u - v| block
        model.para_classifier.bias.zero_()
        logits = model(batch)
        model.para_classifier.bias -= logits.median()
    return model, batch


def test_pair_head_train_mode_agrees_with_eval_on_the_duplicate_rate(pair_model):
    model, batch = pair_model
    with torch.no_grad():
        ev = model(batch)
        model.dropout.train()  # the training-time condition of the head, encoder unchanged
        torch.manual_seed(1)
        tr = torch.stack([model(batch) for _ in range(300)])  # (300, B)
    ev_rate, tr_rate = (ev > 0).float().mean().item(), (tr > 0).float().mean().item()
    assert 0.3 < ev_rate < 0.7
    # Dropout on the feature vector feeding one linear layer is unbiased: the mean train logit is the eval logit.
    # Dropping u and v out one by one instead inflates |u - v| and pulls every train logit down.
    assert (tr.mean(0) - ev).abs().mean().item() < 0.1 * ev.std().item()
    assert abs(tr_rate - ev_rate) < 0.05


def test_similarity_cosine_takes_undropped_embeddings(pair_model, tiny_encoder, demo_data):
    model, _ = pair_model
    s = setup_for(tiny_encoder, demo_data)
    batch = collate(s.train["sts"], list(range(16)))
    with torch.no_grad():
        ev = model(batch)
        model.dropout.train()
        assert torch.equal(model(batch), ev)  # the heads' dropout never touches the STS cosine


def test_relational_layer_drops_out_features_not_sentences(tiny_encoder, demo_data):
    s = prepare(TrainConfig(variant="rrobin+rlayer", encoder=str(tiny_encoder), data_dir=str(demo_data),
                            max_train=16, max_dev=8, dropout=0.5))
    torch.manual_seed(0)
    model = build_model(s, torch.device("cpu")).eval()
    batch = collate(s.train["para"], list(range(8)))
    seen = []
    h = model.relational.dense.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    with torch.no_grad():
        model(batch)
        model.dropout.train()
        model(batch)
    h.remove()
    clean, dropped = seen
    zeroed = dropped == 0
    assert zeroed.float().mean() > 0.3  # about half the features are dropped
    # The features of a dropped-out forward are the clean ones, zeroed or scaled by 1 / (1 - p): |u - v| and
    # the product were computed before the dropout, from the same u and v.
    assert torch.allclose(dropped[~zeroed], clean[~zeroed] * 2.0, rtol=1e-5, atol=1e-6)
