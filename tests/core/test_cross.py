"""The cross-encoded pair input (``--pair-input cross``): one sequence ``[CLS] a [SEP] b [SEP]`` per pair with
segment ids, equal to transformers on the same input, trained, saved, evaluated and scored the same way."""

from __future__ import annotations

import pytest
import torch
from transformers import BertModel as HFBert

from core.checkpoint import load_checkpoint
from core.cli import main
from core.config import TrainConfig
from core.data import collate, cross_sequence
from core.encoders import load_tokenizer, resolve_encoder
from core.evaluate import predict
from core.scoring import Scorer
from core.setup import build_model, prepare


def test_cross_sequence_and_segments_match_the_tokenizers_pair_encoding():
    tok = load_tokenizer(resolve_encoder("minilm-l6"))
    a, b = "How do I cook rice?", "What is the best way to cook rice?"
    ids, types = cross_sequence(tok(a)["input_ids"], tok(b)["input_ids"])
    ref = tok(a, b)
    assert ids == ref["input_ids"] and types == ref["token_type_ids"]
    cut, cut_types = cross_sequence(tok(a)["input_ids"], tok(b)["input_ids"], max_length=8)
    assert len(cut) == 8 and cut[-1] == tok.sep_token_id and cut_types[-1] == 1


def test_cross_batches_equal_transformers_with_token_types(tiny_encoder, demo_data):
    s = prepare(TrainConfig(variant="rrobin", encoder=str(tiny_encoder), data_dir=str(demo_data), max_train=16,
                            max_dev=8, pair_input="cross"))
    model = build_model(s, torch.device("cpu")).eval()
    batch = collate(s.train["para"], list(range(8)), cross=True)
    assert batch.input_ids.shape[0] == 8 and batch.token_type_ids is not None
    assert batch.token_type_ids.sum() > 0 and batch.attention_mask.min() == 0  # second segments, and padding
    ref = HFBert.from_pretrained(str(tiny_encoder), attn_implementation="eager").eval()
    with torch.no_grad():
        ours = model.bert.encode(model.embed(batch), batch.attention_mask)
        theirs = ref(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                     token_type_ids=batch.token_type_ids).last_hidden_state
    real = batch.attention_mask.bool()
    assert (ours - theirs)[real].abs().max().item() < 1e-5
    assert model(batch).shape == (8,)


def test_rlayer_needs_bi_encoded_pairs(tiny_encoder, demo_data):
    s = prepare(TrainConfig(variant="rrobin+rlayer", encoder=str(tiny_encoder), data_dir=str(demo_data),
                            max_train=16, max_dev=8, pair_input="cross"))
    with pytest.raises(ValueError, match="rlayer needs"):
        build_model(s, torch.device("cpu"))


def test_cross_run_trains_saves_evaluates_and_scores_alike(tiny_encoder, tmp_path):
    runs = tmp_path / "runs"
    assert main(["train", "--variant", "rrobin", "--pair-input", "cross", "--encoder", str(tiny_encoder),
                 "--runs-dir", str(runs), "--name", "x", "--epochs", "2", "--batch-size", "8", "--max-train", "48",
                 "--max-dev", "16", "--lr", "1e-3", "--threads", "1", "--log-every", "1", "--dropout", "0.1"]) == 0
    from core.runs import read_metrics

    steps = [r for r in read_metrics(runs / "x") if r["kind"] == "step" and r["task"] == "para"]
    first, last = steps[: len(steps) // 3], steps[-len(steps) // 3:]
    assert sum(r["loss"] for r in last) < sum(r["loss"] for r in first)
    model, meta, tok = load_checkpoint(runs / "x")
    assert model.heads.pair_input == "cross"
    scorer = Scorer.load(runs / "x")
    from core.data import read_examples, tokenize
    from core.demo import ensure_demo_data

    ex = read_examples(ensure_demo_data() / "quora-dev.csv", "para")[:3]
    data = tokenize(ex, "para", tok)
    logits = []
    with torch.no_grad():
        for i in range(3):
            logits.append(model(collate(data, [i], cross=True)).item())
    preds = predict(model, data).tolist()
    for e, z, p in zip(ex, logits, preds, strict=True):
        got = scorer.pair(*e.texts)
        assert got["paraphrase"] == pytest.approx(torch.sigmoid(torch.tensor(z)).item(), abs=1e-5)
        assert p == float(z > 0)
