"""The speed paths give the same results as the plain ones: packed (unpadded) encoder, dropout, padding,
pair scoring from one encoder pass, bucketed evaluation."""

from __future__ import annotations

import torch

from core.checkpoint import save_checkpoint
from core.data import Batch, collate, load_task, pad_ids
from core.encoders import load_pretrained, load_tokenizer
from core.evaluate import predict
from core.fastpath import Dropout
from core.model import BertConfig, BertModel
from core.multitask import HeadConfig, MultitaskBert, task_loss
from core.scoring import Scorer


def _ragged_batch(vocab: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    ids, mask = pad_ids([torch.randint(1, vocab, (n,)).tolist() for n in (9, 3, 6, 1)])
    return ids, mask


def test_pad_builds_ids_and_mask():
    ids, mask = pad_ids([[5, 6, 7], [8], [9, 10]])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]


def test_packed_encoder_equals_padded_forward_and_gradients():
    cfg = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    packed = BertModel(BertConfig(**cfg, unpad=True))
    padded = BertModel(BertConfig(**cfg, unpad=False))
    padded.load_state_dict(packed.state_dict())
    ids, mask = _ragged_batch()
    real = mask.bool()
    outs = []
    for m in (packed, padded):
        h, _ = m(ids, mask)
        (h[real] ** 2).sum().backward()  # a loss on real tokens only
        outs.append((h, {n: p.grad for n, p in m.named_parameters() if p.grad is not None}))
    (h1, g1), (h2, g2) = outs
    assert (h1 - h2)[real].abs().max() < 1e-5
    assert (h1[~real] == 0).all()  # packed: padding positions carry zeros
    assert g1.keys() == g2.keys() and len(g1) > 10
    for n in g1:
        assert torch.allclose(g1[n], g2[n], atol=1e-5, rtol=1e-4), n


def test_dropout_keeps_the_expected_fraction_and_scale():
    torch.manual_seed(0)
    d = Dropout(0.3)
    scale = 65536 / (65536 - round(0.3 * 65536))  # p rounded to a multiple of 1/65536 (0.3 -> 0.29999)
    x = torch.ones(200_000)
    y = d(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005
    # each of the four 16-bit lanes of a 64-bit draw keeps its share: no lane is biased
    lanes = kept.view(-1, 4).float().mean(0)
    assert (lanes - 0.7).abs().max() < 0.01, lanes
    assert torch.equal(y[kept], torch.full_like(y[kept], scale))
    x.requires_grad_()
    d(x).sum().backward()
    g = x.grad.unique()
    assert len(g) == 2 and g[0] == 0 and g[1].item() == torch.tensor(scale).item()
    # any shape, also one whose size is not a multiple of four; masks differ from call to call
    z = torch.ones(3, 7, 5)
    a, b = d(z), d(z)
    assert a.shape == z.shape and not torch.equal(a, b)
    d.eval()
    assert torch.equal(d(x), x)


def test_scorer_pair_uses_one_pass_and_matches_the_model(tiny_encoder, tmp_path):
    torch.manual_seed(0)
    model = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(tasks=("sst", "para", "sts")))
    ckpt = save_checkpoint(tmp_path, "c", model, {"variant": "test"}, tiny_encoder)
    scorer = Scorer.load(ckpt)
    a, b = "How do I cook rice?", "What is the best way to cook rice quickly?"
    calls = []
    scorer.model.bert.encoder.register_forward_hook(lambda *args: calls.append(1))
    got = scorer.pair(a, b)
    assert len(calls) == 1
    tok = load_tokenizer(tiny_encoder)
    ids, mask = pad_ids(tok([a, b])["input_ids"])
    with torch.no_grad():
        for task, key in (("para", "paraphrase"), ("sts", "similarity")):
            out = scorer.model(Batch(task, ids, mask, None, [0], int(mask.sum())))
            want = torch.sigmoid(out)[0] if task == "para" else out[0].clamp(0, 5)
            assert abs(got[key] - float(want)) < 1e-5


def test_predict_is_in_input_order_whatever_the_batching(tiny_encoder, demo_data):
    torch.manual_seed(0)
    model = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(tasks=("sst", "para", "sts"))).eval()
    tok = load_tokenizer(tiny_encoder)
    for task in ("sst", "sts"):
        data = load_task(demo_data, task, "dev", tok)
        batched = predict(model, data, batch_size=16)
        with torch.no_grad():
            one_by_one = torch.cat([model(collate(data, [i])).float() for i in range(len(data))])
        if task == "sst":
            one_by_one = one_by_one.view(len(data), -1).argmax(-1).float()
            assert (batched == one_by_one).float().mean() > 0.97  # ties aside
        else:
            assert torch.allclose(batched, one_by_one.clamp(0, 5), atol=1e-5)


def test_training_step_runs_on_packed_tokens(tiny_encoder, demo_data):
    """A training step with dropout on the packed path gives finite gradients on every encoder weight."""
    torch.manual_seed(0)
    model = MultitaskBert(load_pretrained(tiny_encoder, hidden_dropout_prob=0.3), HeadConfig(tasks=("sts",)))
    data = load_task(demo_data, "sts", "train", load_tokenizer(tiny_encoder))
    batch = collate(data, list(range(8)))
    assert batch.attention_mask.min() == 0
    task_loss("sts", model(batch), batch.labels).backward()
    grads = [p.grad for n, p in model.bert.named_parameters() if not n.startswith("pooler.")]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
