"""oneDNN-prepacked linear weights (``BertModel.pack_for_inference``) give the unpacked outputs, are used only
for inference on the current weights, and leave the state dict and training untouched."""

from __future__ import annotations

import copy

import pytest
import torch

from core.checkpoint import save_checkpoint
from core.data import pad_ids
from core.encoders import load_pretrained, load_tokenizer
from core.fastpath import PackedLinear
from core.model import BertModel
from core.multitask import HeadConfig, MultitaskBert
from core.scoring import Scorer

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")


@pytest.fixture
def packed_calls(monkeypatch) -> list[int]:
    """Counts the matmuls that ran from a pack, so a test sees the packed path was really taken."""
    calls: list[int] = []
    real = PackedLinear.__call__

    def counting(self, x):
        calls.append(1)
        return real(self, x)

    monkeypatch.setattr(PackedLinear, "__call__", counting)
    return calls


def _encoder(tiny_encoder) -> BertModel:
    """The tiny encoder with weights and biases large enough that a wrong matmul or a lost bias shows."""
    torch.manual_seed(0)
    bert = load_pretrained(tiny_encoder)
    with torch.no_grad():
        for name, p in bert.encoder.named_parameters():
            if "LayerNorm" not in name:
                p.normal_(0.0, 0.3)
    return bert.eval()


def _inputs(tiny_encoder) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """A padded batch, one short sentence (fewer tokens than hidden units: the 3-matmul QKV branch when
    unpacked) and a stacked pair, as (input_ids, attention_mask)."""
    tok = load_tokenizer(tiny_encoder)
    texts = {
        "batch": ["A lovely, warm film.", "Dull.", "It has some moments, but the plot never quite holds together."],
        "single": ["A lovely film."],
        "pair": ["How do I cook rice?", "What is the best way to cook rice quickly on a stove?"],
    }
    return {k: pad_ids(tok(v)["input_ids"]) for k, v in texts.items()}


def _outputs(bert: BertModel, inputs) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        return {k: bert(ids, mask)[0] for k, (ids, mask) in inputs.items()}


def test_packed_outputs_equal_unpacked(tiny_encoder, packed_calls):
    bert = _encoder(tiny_encoder)
    inputs = _inputs(tiny_encoder)
    want = _outputs(bert, inputs)
    assert not packed_calls
    assert bert.pack_for_inference() and bert.is_packed
    packed_calls.clear()  # the trial call of pack_for_inference
    got = _outputs(bert, inputs)
    # 4 packed matmuls per layer (QKV, attention output, intermediate, output) per forward
    assert len(packed_calls) == 4 * bert.config.num_hidden_layers * len(inputs)
    for k in inputs:
        assert want[k].abs().max() > 0.1
        assert (got[k] - want[k]).abs().max() <= 1e-5, k
    with torch.no_grad():  # no_grad counts as inference too
        bert(*inputs["pair"])
    assert len(packed_calls) == 4 * bert.config.num_hidden_layers * (len(inputs) + 1)
    bert.unpack()
    assert not bert.is_packed
    _outputs(bert, inputs)
    assert len(packed_calls) == 4 * bert.config.num_hidden_layers * (len(inputs) + 1)


def test_train_drops_packs_and_gradients_flow(tiny_encoder, packed_calls):
    bert = _encoder(tiny_encoder)
    ids, mask = _inputs(tiny_encoder)["batch"]
    assert bert.pack_for_inference()
    packed_calls.clear()
    h, _ = bert(ids, mask)  # eval mode, gradients on: the pack must not be used (it has no autograd)
    h.square().sum().backward()
    assert not packed_calls
    g = bert.encoder.layer[0].attention.self.query.weight.grad
    assert g is not None and g.abs().max() > 0
    bert.zero_grad()
    bert.train()
    assert not bert.is_packed
    h, _ = bert(ids, mask)
    h.square().sum().backward()
    assert not packed_calls
    grads = [p.grad for p in bert.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    bert.eval()  # eval() alone does not bring packs back
    assert not bert.is_packed


def test_changed_weights_bypass_stale_packs(tiny_encoder, packed_calls):
    bert = _encoder(tiny_encoder)
    inputs = {"pair": _inputs(tiny_encoder)["pair"]}
    assert bert.pack_for_inference()
    packed_calls.clear()
    with torch.no_grad():  # an optimizer step writes in place
        bert.encoder.layer[1].intermediate.dense.weight.mul_(1.5)
        bert.encoder.layer[0].attention.self.value.bias.add_(0.5)
    got = _outputs(bert, inputs)
    layers = bert.config.num_hidden_layers
    assert len(packed_calls) == 4 * layers - 2  # every pack but the two stale ones
    ref = _encoder(tiny_encoder)
    ref.load_state_dict(bert.state_dict())
    want = _outputs(ref, inputs)
    assert (got["pair"] - want["pair"]).abs().max() <= 1e-5
    # a state dict loaded into a packed model, and a replaced parameter, bypass the packs as well
    assert bert.pack_for_inference()
    bert.load_state_dict(_encoder(tiny_encoder).state_dict())
    bert.encoder.layer[0].output.dense.weight = torch.nn.Parameter(torch.zeros(32, 128))
    packed_calls.clear()
    _outputs(bert, inputs)
    assert not packed_calls


def test_state_dict_and_copies_are_unchanged_by_packing(tiny_encoder):
    bert = _encoder(tiny_encoder)
    before = {k: v.clone() for k, v in bert.state_dict().items()}
    names = [n for n, _ in bert.named_parameters()]
    rng = torch.get_rng_state()
    assert bert.pack_for_inference()
    assert torch.equal(torch.get_rng_state(), rng)  # packing draws no random numbers
    after = bert.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert [n for n, _ in bert.named_parameters()] == names and not list(bert.named_buffers())
    clone = copy.deepcopy(bert)  # an opaque oneDNN tensor cannot be copied: copies come out unpacked
    assert bert.is_packed and not clone.is_packed


def test_scorer_packs_and_gives_the_unpacked_probabilities(tiny_encoder, tmp_path, packed_calls):
    torch.manual_seed(0)
    model = MultitaskBert(_encoder(tiny_encoder), HeadConfig(tasks=("sst", "para", "sts")))
    ckpt = save_checkpoint(tmp_path, "c", model, {"variant": "test"}, tiny_encoder)
    scorer = Scorer.load(ckpt)
    assert scorer.model.bert.is_packed
    text, a, b = "A lovely, warm film.", "How do I cook rice?", "What is the best way to cook rice quickly?"
    packed = scorer.sentiment(text), scorer.pair(a, b)
    assert packed_calls
    scorer.model.bert.unpack()
    plain = scorer.sentiment(text), scorer.pair(a, b)
    assert max(abs(p - q) for p, q in zip(packed[0]["probs"], plain[0]["probs"], strict=True)) <= 1e-5
    for key in ("paraphrase", "similarity"):
        assert abs(packed[1][key] - plain[1][key]) <= 1e-5
    assert len(set(plain[0]["probs"])) > 1 and 0.0 < plain[1]["paraphrase"] < 1.0


def test_evaluate_packs_for_the_call_and_restores_the_model(tiny_encoder, packed_calls, monkeypatch):
    from core.data import Example, tokenize
    from core.evaluate import evaluate, predict

    torch.manual_seed(0)
    model = MultitaskBert(_encoder(tiny_encoder), HeadConfig(tasks=("sst", "sts")))
    tok = load_tokenizer(tiny_encoder)
    words = "a lovely warm film with dull moments that never quite holds together".split()
    sst = [Example(f"s{i}", (" ".join(words[i % 5: i % 5 + 3 + i % 7]),), float(i % 5), i) for i in range(40)]
    sts = [Example(f"p{i}", (" ".join(words[: 2 + i % 9]), " ".join(words[i % 4:])), float(i % 6), i)
           for i in range(30)]
    dev = {"sst": tokenize(sst, "sst", tok), "sts": tokenize(sts, "sts", tok)}
    model.train()
    packed_metrics, _ = evaluate(model, dev, batch_size=16)
    packed_scores = predict(model, dev["sts"], batch_size=16)
    assert packed_calls, "evaluation did not use the packed weights"
    assert model.training and not model.bert.is_packed  # mode and packing restored
    monkeypatch.setattr(BertModel, "pack_for_inference", lambda self: False)
    n = len(packed_calls)
    plain_metrics, _ = evaluate(model, dev, batch_size=16)
    plain_scores = predict(model, dev["sts"], batch_size=16)
    assert len(packed_calls) == n
    assert plain_scores.std() > 0 and torch.allclose(packed_scores, plain_scores, atol=1e-5)
    assert packed_metrics.keys() == plain_metrics.keys()
    for k, v in plain_metrics.items():
        assert abs(packed_metrics[k] - v) <= 1e-5, k
