"""minBERT against transformers.BertModel, SDPA against plain softmax attention, and padding invariance."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig as HFConfig
from transformers import BertModel as HFBert

from core.encoders import load_pretrained, load_tokenizer, resolve_encoder
from core.model import BertConfig, BertModel

SENTENCES = ["It 's a lovely film with lovely performances by Buy and Accorsi .",
             "No one goes unindicted here .", "How do I learn python quickly?", "ok"]


def hf_reference(folder) -> HFBert:
    return HFBert.from_pretrained(str(folder), attn_implementation="eager").eval()


def batch(folder, texts=SENTENCES):
    enc = load_tokenizer(folder)(texts, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def compare(ours: BertModel, ref: HFBert, ids: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        h, pooled = ours(ids, mask)
        r = ref(input_ids=ids, attention_mask=mask)
    real = mask.bool()
    return (h - r.last_hidden_state)[real].abs().max().item(), (pooled - r.pooler_output).abs().max().item()


def test_small_random_config_matches_transformers(tmp_path):
    hf_cfg = HFConfig(vocab_size=30522, hidden_size=48, num_hidden_layers=3, num_attention_heads=4,
                      intermediate_size=96)
    torch.manual_seed(0)
    ref = HFBert(hf_cfg).eval()
    ref.save_pretrained(tmp_path)  # a real Hugging Face folder: config.json + model.safetensors
    load_tokenizer(resolve_encoder("minilm-l6")).save_pretrained(tmp_path)
    ours = load_pretrained(tmp_path).eval()
    ids, mask = batch(tmp_path)
    assert mask.min() == 0, "the batch should contain padding"
    d_hidden, d_pooled = compare(ours, ref, ids, mask)
    assert d_hidden < 1e-5 and d_pooled < 1e-5


def test_packaged_minilm_matches_transformers():
    folder = resolve_encoder("minilm-l6")
    ours = load_pretrained(folder).eval()
    assert ours.config.hidden_size == 384 and ours.config.num_hidden_layers == 6
    d_hidden, d_pooled = compare(ours, hf_reference(folder), *batch(folder))
    assert d_hidden < 1e-5 and d_pooled < 1e-5


def test_sdpa_equals_plain_softmax_attention():
    folder = resolve_encoder("minilm-l6")
    sdpa = load_pretrained(folder).eval()
    eager = load_pretrained(folder, attn_implementation="eager").eval()
    ids, mask = batch(folder)
    with torch.no_grad():
        a, _ = sdpa(ids, mask)
        b, _ = eager(ids, mask)
    assert (a - b)[mask.bool()].abs().max() < 1e-5


def test_explicit_attention_gradients_equal_sdpa():
    """The explicit attention (training with attention dropout takes it on CPU) back-propagates as SDPA
    does: padding keys get no weight and no gradient, scaling and masking sit inside the matmul."""
    folder = resolve_encoder("minilm-l6")
    ids, mask = batch(folder)
    grads = []
    for impl in ("sdpa", "eager"):
        model = load_pretrained(folder, attn_implementation=impl)
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        h, _ = model(ids, mask)
        w = torch.linspace(-1, 1, h.size(-1))
        (h * w * mask[..., None]).sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 50
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-4, rtol=1e-4), n


def test_padded_batch_equals_each_sentence_alone():
    folder = resolve_encoder("minilm-l6")
    model = load_pretrained(folder).eval()
    ids, mask = batch(folder)
    with torch.no_grad():
        together, _ = model(ids, mask)
        for i in range(len(SENTENCES)):
            n = int(mask[i].sum())
            alone, _ = model(ids[i:i + 1, :n], mask[i:i + 1, :n])
            assert (together[i, :n] - alone[0]).abs().max() < 1e-5


def test_dropout_is_active_only_in_training():
    model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                 hidden_dropout_prob=0.5))
    ids = torch.randint(1, 1000, (2, 7))
    model.train()
    assert not torch.equal(model(ids)[0], model(ids)[0])
    model.eval()
    assert torch.equal(model(ids)[0], model(ids)[0])


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "relu"])
def test_activations_match_transformers(act, tmp_path):
    hf_cfg = HFConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, hidden_act=act)
    torch.manual_seed(1)
    ref = HFBert(hf_cfg).eval()
    ref.save_pretrained(tmp_path)
    ids = torch.randint(1, 30000, (2, 9))
    mask = torch.ones_like(ids)
    d_hidden, _ = compare(load_pretrained(tmp_path).eval(), ref, ids, mask)
    assert d_hidden < 1e-5
