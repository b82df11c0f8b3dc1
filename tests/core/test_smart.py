"""SMART: the adversarial term's limit in ε with and without dropout, the paraphrase l_s, the ascent,
the Bregman teacher (term, update formula, saved state) and mode bookkeeping."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from core.config import SmartConfig, TrainConfig
from core.data import collate
from core.setup import build_model, prepare
from core.smart import Smart, smoothness_loss

TASKS3 = ("sst", "para", "sts")


@pytest.fixture(scope="module")
def setup(tiny_encoder, demo_data):
    return prepare(TrainConfig(variant="rrobin", encoder=str(tiny_encoder), data_dir=str(demo_data),
                               max_train=24, max_dev=8, dropout=0.3, encoder_dropout=0.3))


@pytest.fixture()
def model(setup):
    torch.manual_seed(0)
    return build_model(setup, torch.device("cpu")).train()


def batch_of(setup, task, n=8):
    return collate(setup.train[task], list(range(n)))


def main_forward(model, batch, smart=None):
    """The trainer's main forward (``core.trainer.batch_loss``), with its two random-state captures."""
    if smart is not None:
        smart.capture_rng()
    emb = model.embed(batch)
    if smart is not None:
        smart.capture_rng("encoder")
    return emb, model.head(batch.task, emb, batch.attention_mask)


def adversarial_only(model, batch, eps, dropout_off, steps=1, same_masks=False):
    torch.manual_seed(1)
    # η >> ε: the projected step is ε·sign(g) at every ε, so the term scales cleanly as ε².
    smart = Smart(model, SmartConfig(lam=1.0, mu=0.0, eps=eps, sigma=eps, eta=1.0, steps=steps,
                                     dropout_off=dropout_off, same_masks=same_masks))
    emb, out = main_forward(model, batch, smart)
    return smart.regularizer(batch.task, batch, emb, out).item()


# --- l_s ------------------------------------------------------------------------------------------
def test_symmetric_kl_matches_the_definition():
    torch.manual_seed(0)
    a, b = torch.randn(6, 5) * 3, torch.randn(6, 5) * 3
    lp, lq = a.log_softmax(-1), b.log_softmax(-1)
    ref = (F.kl_div(lq, lp, log_target=True, reduction="batchmean")
           + F.kl_div(lp, lq, log_target=True, reduction="batchmean"))
    assert smoothness_loss("sst", a, b).item() == pytest.approx(ref.item(), rel=1e-5)
    sq = ((a[:, 0] - b[:, 0]) ** 2).mean().item()
    assert smoothness_loss("sts", a[:, 0], b[:, 0]).item() == pytest.approx(sq)


def test_paraphrase_term_is_the_sigmoid_two_class_kl_and_positive():
    a = torch.tensor([0.3, -2.0, 4.0, 0.0])
    b = torch.tensor([0.5, -2.0, 1.0, -0.1])  # the second logit is unchanged
    p = torch.stack([1 - torch.sigmoid(a), torch.sigmoid(a)], -1)
    q = torch.stack([1 - torch.sigmoid(b), torch.sigmoid(b)], -1)
    per_row = ((p - q) * (p.log() - q.log())).sum(-1)
    assert smoothness_loss("para", a, b).item() == pytest.approx(per_row.mean().item(), rel=1e-5)
    for i in (0, 2, 3):  # every changed logit gives a positive term
        assert smoothness_loss("para", a[i:i + 1], b[i:i + 1]).item() > 0
    assert smoothness_loss("para", a[1:2], b[1:2]).item() == 0.0
    # The published mistake: a softmax over the single logit is identically 1, so its KL is always 0.
    assert smoothness_loss("sst", a[:, None], b[:, None]).item() == 0.0


def test_paraphrase_regularizer_positive_for_a_perturbation(setup, model):
    assert adversarial_only(model, batch_of(setup, "para"), eps=1e-2, dropout_off=True) > 1e-8


# --- adversarial term -----------------------------------------------------------------------------
@pytest.mark.parametrize("task", TASKS3)
def test_adversarial_term_vanishes_with_eps_only_when_dropout_is_off(setup, model, task):
    batch = batch_of(setup, task)
    off = [adversarial_only(model, batch, eps, True) for eps in (1e-2, 1e-4, 1e-6)]
    # l_s is quadratic around its minimum: each factor 100 in ε is about 1e4 in the term.
    assert off[0] > 0 and off[1] < off[0] * 1e-2 and off[2] < off[1] * 1e-2
    assert off[2] < 1e-9
    on = [adversarial_only(model, batch, eps, False) for eps in (1e-4, 1e-6)]
    # With dropout, f(x̃) and f(x) use different masks: a term of the size of the dropout noise remains.
    # (STS adds no head dropout: the cosine takes the undropped embeddings, so the remainder is the encoder's
    # dropout alone: smaller, but it does not shrink with ε.)
    assert min(on) > 1e-6 and on[1] > 0.1 * on[0]
    assert min(on) > 1e4 * off[2]


@pytest.mark.parametrize("task", TASKS3)
@pytest.mark.parametrize("steps", [0, 1])
def test_same_masks_term_vanishes_with_eps_with_dropout_on(setup, model, task, steps):
    # The fast mode keeps dropout on (0.3 here) but replays the main forward's masks in f(x̃), so the term
    # measures the perturbation alone, like the report's dropout-off version.
    batch = batch_of(setup, task)
    same = [adversarial_only(model, batch, eps, False, steps, same_masks=True) for eps in (1e-2, 1e-4, 1e-6)]
    assert same[0] > 0 and same[1] < same[0] * 1e-2 and same[2] < same[1] * 1e-2
    assert same[2] < 1e-9
    fresh = adversarial_only(model, batch, 1e-6, False, steps)
    assert fresh > 1e4 * same[2]


def test_same_masks_needs_dropout_on(model):
    with pytest.raises(ValueError, match="dropout_off=False"):
        Smart(model, SmartConfig(same_masks=True, dropout_off=True))


def count_encoder_passes(model, setup, config: SmartConfig) -> tuple[int, float]:
    """Encoder forwards in one regularized step, and the loss (for the gradient check)."""
    calls = []
    hook = model.bert.encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        smart = Smart(model, config)
        batch = batch_of(setup, "sst")
        emb, out = main_forward(model, batch, smart)
        reg = smart.regularizer("sst", batch, emb, out)
        reg.backward()
    finally:
        hook.remove()
    return len(calls), reg.item()


def test_fast_mode_runs_three_encoder_passes_instead_of_five(setup, model):
    # Cost in forward units: default main 3 + reference 1 + ascent 2 + adversarial 3 + teacher 1 = 10;
    # fast main 3 + adversarial 3 + teacher 1 = 7 (what `walkless bench` measures as a time ratio).
    n_default, _ = count_encoder_passes(model, setup, SmartConfig())
    n_fast, reg = count_encoder_passes(model, setup, SmartConfig.fast(eps=1e-2, sigma=1e-2))
    assert (n_default, n_fast) == (5, 3)
    assert reg > 0
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


def test_same_masks_replay_does_not_rewind_the_random_stream(setup, model):
    # After the regularizer, training continues from fresh random numbers: the next dropout masks are not a
    # repeat of the main forward's (the replay restores the state it found).
    smart = Smart(model, SmartConfig.fast(mu=0.0))
    batch = batch_of(setup, "sst")
    emb, out = main_forward(model, batch, smart)
    smart.regularizer("sst", batch, emb, out)
    _, again = main_forward(model, batch)
    assert not torch.allclose(again, out)


def test_ascent_beats_a_random_perturbation_of_the_same_size(setup, model):
    batch = batch_of(setup, "sst")
    eps = 1e-3
    smart = Smart(model, SmartConfig(eps=eps, sigma=eps))
    with smart.dropout_off(), torch.no_grad():
        x = model.embed(batch)
        ref = model.head("sst", x, batch.attention_mask)
    with smart.dropout_off():
        torch.manual_seed(0)
        delta = smart.ascend("sst", x, batch.attention_mask, ref)
        with torch.no_grad():
            adv = smoothness_loss("sst", model.head("sst", x + delta, batch.attention_mask), ref).item()
            rand = torch.sign(torch.randn_like(x)) * eps  # same ∞-norm, a random direction
            base = smoothness_loss("sst", model.head("sst", x + rand, batch.attention_mask), ref).item()
    assert delta.abs().max().item() <= eps * (1 + 1e-6)
    assert adv > 3 * base


def test_regularizer_leaves_weight_grads_alone_and_restores_modes(setup, model):
    model.bert.embeddings.eval()  # a module someone keeps in eval must stay so
    before = {name: m.training for name, m in model.named_modules()}
    smart = Smart(model, SmartConfig(mu=0.0))
    batch = batch_of(setup, "sts")
    emb, out = main_forward(model, batch)
    reg = smart.regularizer("sts", batch, emb, out)
    assert all(p.grad is None for p in model.parameters())  # the ascent used autograd.grad w.r.t. δ only
    assert {name: m.training for name, m in model.named_modules()} == before
    reg.backward()
    assert model.bert.embeddings.word_embeddings.weight.grad is not None  # through x̃ = x + δ
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


# --- Bregman teacher ------------------------------------------------------------------------------
@pytest.mark.parametrize("task", TASKS3)
def test_bregman_is_zero_when_teacher_equals_student(setup, model, task):
    batch = batch_of(setup, task)
    smart = Smart(model, SmartConfig(lam=0.0))
    emb, out = main_forward(model, batch, smart)
    assert smart.regularizer(task, batch, emb, out).item() == 0.0  # same weights, same dropout masks
    # Without the replayed masks the term would be dropout noise, not a distance between weights.
    emb, out = main_forward(model, batch)
    assert smart.regularizer(task, batch, emb, out).item() > 0.0
    # Once the weights move away from the teacher, the term is positive.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    emb, out = main_forward(model, batch, smart)
    assert smart.regularizer(task, batch, emb, out).item() > 0.0


def test_teacher_update_follows_the_formula(model):
    beta = 0.9
    smart = Smart(model, SmartConfig(beta=beta))
    old = [t.clone() for t in smart.teacher]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    smart.update_teacher()
    for t, o, p in zip(smart.teacher, old, smart.params, strict=True):
        torch.testing.assert_close(t, beta * o + (1 - beta) * p.detach(), rtol=0, atol=1e-6)
    assert not any(torch.equal(t, p) for t, p in zip(smart.teacher, smart.params, strict=True))
    assert all(t.data_ptr() != p.data_ptr() for t, p in zip(smart.teacher, smart.params, strict=True))  # a copy


def test_teacher_state_round_trips_through_safetensors(model, tmp_path):
    smart = Smart(model, SmartConfig(beta=0.5))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    smart.update_teacher()
    save_file(smart.state_dict(), str(tmp_path / "teacher.safetensors"))
    other = Smart(model, SmartConfig())
    assert not all(torch.equal(a, b) for a, b in zip(other.teacher, smart.teacher, strict=True))
    other.load_state_dict(load_file(str(tmp_path / "teacher.safetensors")))
    assert all(torch.equal(a, b) for a, b in zip(other.teacher, smart.teacher, strict=True))
    state = smart.state_dict()
    state.pop(next(iter(state)))
    with pytest.raises(ValueError, match="lacks 1 tensors"):
        other.load_state_dict(state)


# --- the trainer adds the terms with their weights --------------------------------------------------
@pytest.mark.parametrize("task", TASKS3)
def test_the_training_loss_is_task_loss_plus_lambda_r_plus_mu_bregman(setup, model, task):
    """What the trainer optimizes (``StepLoss``, through ``batch_loss``) is the task loss + λ·R_s + μ·D_Breg:
    each term is measured alone (the other weight 0), then both with other weights. Dropping the regularizer
    from the loss, or either weight, fails here."""
    from core.trainer import StepLoss

    batch = batch_of(setup, task)
    smart = Smart(model, SmartConfig())
    with torch.no_grad():  # move the teacher away from θ so the Bregman term is not 0
        for t in smart.teacher:
            t.add_(torch.randn_like(t) * 0.05)

    def loss(lam, mu):
        smart.config = SmartConfig(lam=lam, mu=mu, eps=3e-2, sigma=3e-2, eta=1.0)  # a term well above float noise
        torch.manual_seed(5)  # same dropout masks and noise in every call
        return StepLoss(model, smart if (lam or mu) else None)([(task, batch, 1.0)]).item()

    plain, r, b = loss(0.0, 0.0), loss(1.0, 0.0), loss(0.0, 1.0)
    assert r - plain > 1e-7 and b - plain > 1e-7
    assert loss(5.0, 2.0) - plain == pytest.approx(5.0 * (r - plain) + 2.0 * (b - plain), rel=1e-3, abs=1e-7)


# --- the trainer logs each term -------------------------------------------------------------------------
def smart_run(tiny_encoder, demo_data, tmp_path, variant="rrobin+smart", **smart):
    from core.trainer import Trainer

    torch.manual_seed(0)
    c = TrainConfig(variant=variant, encoder=str(tiny_encoder), data_dir=str(demo_data), runs_dir=str(tmp_path),
                    max_train=24, max_dev=8, batch_size=4, lr=1e-3, epochs=1, log_every=1,
                    smart=SmartConfig(eps=3e-2, sigma=3e-2, **smart))
    (tmp_path / "run").mkdir(parents=True)
    return Trainer(prepare(c), tmp_path / "run")


def log_lines(fit) -> list[str]:
    """The step-log lines (``walkless.steps``, train.log's) written while ``fit()`` runs."""
    import logging

    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("walkless.steps")
    logger.addHandler(handler)
    try:
        fit()
    finally:
        logger.removeHandler(handler)
    return lines


def test_the_step_log_shows_r_s_and_bregman_as_the_trainer_added_them(tiny_encoder, demo_data, tmp_path):
    """Each step record carries SMART's two unweighted terms, and λ·R_s + μ·Bregman is what the regularizer
    returned for that step; the Bregman term is 0 at step 1 (teacher = θ), then not."""
    from core.runs import read_metrics

    t = smart_run(tiny_encoder, demo_data, tmp_path, lam=2.0, mu=3.0)
    added, regularizer = [], t.smart.regularizer

    def recording(*a, **k):
        reg = regularizer(*a, **k)
        added.append(reg.item())
        return reg

    t.smart.regularizer = recording
    lines = log_lines(t.fit)
    steps = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "step"]
    assert len(steps) == len(added) == t.step > 3
    for r, reg in zip(steps, added, strict=True):
        assert 2.0 * r["smart_rs"] + 3.0 * r["bregman"] == pytest.approx(reg, rel=1e-5, abs=1e-9)
        assert r["loss"] > 2.0 * r["smart_rs"] + 3.0 * r["bregman"] - 1e-9
    assert steps[0]["bregman"] == 0.0 and all(r["bregman"] > 0 for r in steps[1:])
    assert all(r["smart_rs"] > 0 for r in steps)
    assert len(lines) == t.step and all("(R_s " in line and ", Bregman " in line for line in lines)


def test_lambda_0_logs_a_zero_r_s_and_a_plain_run_no_smart_terms(tiny_encoder, demo_data, tmp_path):
    from core.runs import read_metrics

    smart_run(tiny_encoder, demo_data, tmp_path / "a", lam=0.0).fit()
    steps = [r for r in read_metrics(tmp_path / "a" / "run") if r["kind"] == "step"]
    assert steps and all(r["smart_rs"] == 0.0 for r in steps) and any(r["bregman"] > 0 for r in steps)
    lines = log_lines(smart_run(tiny_encoder, demo_data, tmp_path / "b", variant="rrobin").fit)
    plain = [r for r in read_metrics(tmp_path / "b" / "run") if r["kind"] == "step"]
    assert plain and not any("smart_rs" in r or "bregman" in r for r in plain)
    assert lines and not any("R_s" in line or "Bregman" in line for line in lines)
