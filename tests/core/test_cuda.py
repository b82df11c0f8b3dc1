"""The CUDA paths, where a GPU is (``benchmarks/gpu.sh`` runs this file there); skipped on CPU-only machines.

- minBERT on the GPU equals transformers' BertModel on the GPU (fp32, TF32 off);
- the CPU fast paths stand aside on CUDA (16-bit dropout lanes, token packing, oneDNN weight packing);
- SMART replays CUDA dropout masks: the Bregman term is exactly 0 at θ̃ = θ with dropout on, and the
  same-masks adversarial term vanishes with ε;
- bf16 autocast: outputs close to fp32, and training lowers the loss;
- a run trained on the GPU, checkpointed and scored on the CPU, and resumed on the GPU.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertModel as HFBert

from core.config import SmartConfig, TrainConfig
from core.data import collate
from core.encoders import load_pretrained, load_tokenizer, resolve_encoder
from core.fastpath import Dropout, Tokens
from core.scoring import Scorer
from core.setup import build_model, prepare
from core.smart import Smart
from core.train import resume, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")
SENTENCES = ["It 's a lovely film with lovely performances by Buy and Accorsi .",
             "No one goes unindicted here .", "How do I learn python quickly?", "ok"]


@pytest.fixture(autouse=True)
def exact_fp32():
    """TF32 matmuls round to 10 bits: off, so fp32 comparisons mean fp32."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.fixture(scope="module")
def setup(tiny_encoder, demo_data):
    return prepare(TrainConfig(variant="rrobin", encoder=str(tiny_encoder), data_dir=str(demo_data),
                               max_train=24, max_dev=8, dropout=0.3, encoder_dropout=0.3, device="cuda"))


def gpu_model(setup):
    torch.manual_seed(0)
    return build_model(setup, CUDA).train()


def main_forward(model, batch, smart):
    """The trainer's main forward with its two random-state captures (``core.trainer.batch_loss``)."""
    smart.capture_rng()
    emb = model.embed(batch)
    smart.capture_rng("encoder")
    return emb, model.head(batch.task, emb, batch.attention_mask)


@pytest.mark.parametrize("which", ["tiny", "minilm-l6"])
def test_minbert_on_cuda_matches_transformers_on_cuda(which, tiny_encoder):
    folder = tiny_encoder if which == "tiny" else resolve_encoder("minilm-l6")
    ours = load_pretrained(folder).eval().to(CUDA)
    ref = HFBert.from_pretrained(str(folder), attn_implementation="eager", dtype=torch.float32).eval().to(CUDA)
    enc = load_tokenizer(folder)(SENTENCES, padding=True, return_tensors="pt").to(CUDA)
    with torch.no_grad():
        h, pooled = ours(enc["input_ids"], enc["attention_mask"])
        r = ref(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    real = enc["attention_mask"].bool()
    assert (h - r.last_hidden_state)[real].abs().max().item() < 1e-4
    assert (pooled - r.pooler_output).abs().max().item() < 1e-4


def test_cpu_fast_paths_stand_aside_on_cuda(tiny_encoder):
    model = load_pretrained(tiny_encoder).to(CUDA).eval()
    assert model.pack_for_inference() is False and not model.is_packed  # oneDNN packs are CPU-only
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], device=CUDA)
    assert Tokens(mask, unpad=True).index is None  # no host sync to pack tokens on the GPU
    torch.manual_seed(0)
    x = torch.ones(4096, 256, device=CUDA)
    y = Dropout(0.1).train()(x)  # F.dropout on CUDA: exact p, scale 1 / (1 - p)
    assert y.device.type == "cuda"
    assert abs((y == 0).float().mean().item() - 0.1) < 0.005
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.9))


@pytest.mark.parametrize("task", ["sst", "para", "sts"])
def test_bregman_is_exactly_zero_at_the_teacher_with_cuda_dropout(setup, task):
    model = gpu_model(setup)
    batch = collate(setup.train[task], list(range(8))).to(CUDA)
    smart = Smart(model, SmartConfig(lam=0.0))
    emb, out = main_forward(model, batch, smart)
    assert smart.regularizer(task, batch, emb, out).item() == 0.0  # the CUDA masks were replayed
    emb = model.embed(batch)  # no capture: fresh masks, so the term is dropout noise, > 0
    out = model.head(task, emb, batch.attention_mask)
    assert smart.regularizer(task, batch, emb, out).item() > 0.0


@pytest.mark.parametrize("task", ["sst", "para"])
def test_same_masks_adversarial_term_vanishes_with_eps_on_cuda(setup, task):
    model = gpu_model(setup)
    batch = collate(setup.train[task], list(range(8))).to(CUDA)
    terms = []
    for eps in (1e-2, 1e-4):
        torch.manual_seed(1)
        smart = Smart(model, SmartConfig(lam=1.0, mu=0.0, eps=eps, sigma=eps, eta=1.0, steps=1,
                                         dropout_off=False, same_masks=True))
        emb, out = main_forward(model, batch, smart)
        terms.append(smart.regularizer(task, batch, emb, out).item())
    assert terms[0] > 0 and terms[1] < terms[0] * 1e-2  # quadratic in ε: the masks matched


def test_bf16_autocast_is_close_to_fp32_and_trains(setup):
    model = gpu_model(setup).eval()
    batch = collate(setup.train["sst"], list(range(16))).to(CUDA)
    with torch.no_grad():
        ref = model.head("sst", model.embed(batch), batch.attention_mask)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = model.head("sst", model.embed(batch), batch.attention_mask).float()
    assert (low - ref).abs().max().item() < 0.05 * ref.abs().max().item() + 1e-3
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    losses = []
    for _ in range(30):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model.head("sst", model.embed(batch), batch.attention_mask)
            loss = torch.nn.functional.cross_entropy(out.float(), batch.labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_gpu_run_checkpoints_scores_on_cpu_and_resumes(tiny_encoder, demo_data, tmp_path):
    cfg = TrainConfig(variant="rrobin", encoder=str(tiny_encoder), data_dir=str(demo_data), runs_dir=str(tmp_path),
                      name="gpu", epochs=1, max_train=32, max_dev=16, batch_size=8, device="cuda", autocast="bf16",
                      smart=SmartConfig(), checkpoint_every=2)
    run = train(cfg)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished"
    scorer = Scorer.load(run, device="cpu")  # a GPU checkpoint loads on the CPU
    assert abs(sum(scorer.sentiment("a fine film")["probs"]) - 1) < 1e-5
    resume(run, epochs=2)  # and trains on from it on the GPU
    assert json.loads((run / "status.json").read_text())["epoch"] == 2
