"""``--profile report-code`` (issue 38): each choice of the report's code (jelc53/nlp-minibert) pinned, so that it
fails if one silently became the default or went away; and the default profile pinned as ours."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from core.cli import main
from core.config import SmartConfig, TrainConfig
from core.data import collate
from core.multitask import LossOptions, pair_features, task_loss
from core.runs import RunError
from core.schedules import ScheduleOptions, make_plan
from core.setup import build_model, prepare
from core.smart import Smart, batch_softmax_bregman
from core.table2 import Table2Config, train_row
from core.trainer import StepLoss, loss_options

OURS = {"pooling": None, "sst_head": "linear", "loss_scale": "mean", "sts_target": "score", "rlayer_sts": "linear",
        "rrobin_pre": "quora-epoch", "smart_lam": 5.0, "smart_para_kl": "two-class", "smart_sts_bregman": "squared",
        "smart_teacher_masks": "same", "smart_rlayer_terms": "relational"}
REPORT_CODE = {"pooling": "pooler", "sst_head": "leaky", "loss_scale": "batch-size", "sts_target": "unit",
               "rlayer_sts": "sigmoid", "rrobin_pre": "para-first", "smart_lam": 10.0, "smart_para_kl": "one-logit",
               "smart_sts_bregman": "batch-softmax", "smart_teacher_masks": "fresh", "smart_rlayer_terms": "plain"}


def resolved_choices(config: TrainConfig) -> dict:
    flat = config.resolved().flat()
    return {k: flat[k] for k in OURS}


def setup_for(tiny_encoder, demo_data, **kw):
    return prepare(TrainConfig(encoder=str(tiny_encoder), data_dir=str(demo_data), max_train=24, max_dev=8,
                               **{"variant": "rrobin", **kw}))


def model_for(setup, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(setup, torch.device("cpu")).train()


def pair_batch(setup, task: str, n: int = 8):
    return collate(setup.train[task], list(range(n)))


# --- the profiles ---------------------------------------------------------------------------------------------
def test_the_default_profile_is_ours_and_report_code_is_the_codes_choices():
    assert TrainConfig().profile == "walkless"
    assert resolved_choices(TrainConfig()) == OURS
    assert resolved_choices(TrainConfig(profile="report-code")) == REPORT_CODE
    # each choice is its own option: given, it wins over the profile, either way round
    mixed = TrainConfig(profile="report-code", sst_head="linear", smart=SmartConfig(teacher_masks="same"))
    assert (mixed.resolved().sst_head, mixed.resolved().smart.teacher_masks) == ("linear", "same")
    assert TrainConfig(loss_scale="batch-size").resolved().loss_scale == "batch-size"
    assert SmartConfig().resolved().lam == 5.0 and SmartConfig().resolved("report-code").lam == 10.0


def test_the_default_profile_builds_our_model_losses_and_schedule(tiny_encoder, demo_data):
    s = setup_for(tiny_encoder, demo_data, variant="rrobin-full+rlayer")
    m = model_for(s)
    h = m.heads
    assert (s.config.profile, h.pooling, h.sst_head, h.rlayer_sts, h.plain_pair_heads) == (
        "walkless", "mean", "linear", "linear", False)  # the tiny encoder declares mean pooling
    assert not hasattr(m, "para_classifier") and m.sts_out.bias.item() == 2.5
    assert loss_options(s.config) == LossOptions(0.0, None, False)


# --- the model ------------------------------------------------------------------------------------------------
def test_report_code_embedding_is_the_poolers_output_for_every_task(tiny_encoder, demo_data):
    s = setup_for(tiny_encoder, demo_data, profile="report-code")
    m = model_for(s).eval()
    for task in ("sst", "para", "sts"):
        b = pair_batch(s, task, 4)
        emb = m.embed(b)
        h = m.bert.encode(emb, b.attention_mask)
        want = torch.tanh(m.bert.pooler.dense(h[:, 0]))  # dense + tanh on [CLS]
        got = m.sentence_embeddings(emb, b.attention_mask, task)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        assert not torch.allclose(got, h[:, 0]) and not torch.allclose(got, h.mean(1))


def test_the_pooler_trains_only_when_it_is_the_embedding(tiny_encoder, demo_data):
    for profile, trained in (("walkless", False), ("report-code", True)):
        s = setup_for(tiny_encoder, demo_data, profile=profile)
        m = model_for(s)
        task_loss("sst", m(pair_batch(s, "sst")), pair_batch(s, "sst").labels).backward()
        assert (m.bert.pooler.dense.weight.grad is not None) == trained, profile


def test_report_code_sentiment_head_is_leaky_relu_dropout_linear(tiny_encoder, demo_data):
    m = model_for(setup_for(tiny_encoder, demo_data, profile="report-code")).eval()
    x = torch.randn(5, m.config.hidden_size)
    torch.testing.assert_close(m.output("sst", x), m.sst_classifier(F.leaky_relu(x)))
    assert not torch.allclose(m.output("sst", x), m.sst_classifier(x))  # the negative half is scaled by 0.01


def test_report_code_rlayer_sts_output_is_a_sigmoid_on_the_0_to_5_scale(tiny_encoder, demo_data):
    s = setup_for(tiny_encoder, demo_data, profile="report-code", variant="rrobin-full+rlayer")
    m = model_for(s).eval()
    u, v = torch.randn(6, m.config.hidden_size) * 3, torch.randn(6, m.config.hidden_size) * 3
    r = m.relational(pair_features(u, v, m.heads.eps))
    torch.testing.assert_close(m.pair_output("sts", u, v), 5 * torch.sigmoid(m.sts_out(r).squeeze(-1)))
    assert m.sts_out.bias.item() != 2.5  # nn.Linear's own init, as the code's sim_classifier


# --- the losses -----------------------------------------------------------------------------------------------
def test_report_code_a_3_example_sst_batch_in_rrobin_full_contributes_sum_over_64(tiny_encoder, demo_data):
    s = setup_for(tiny_encoder, demo_data, profile="report-code", variant="rrobin-full")
    assert s.config.batch_size == 64 and loss_options(s.config) == LossOptions(0.0, 64, True)
    m = model_for(s).eval()  # eval: the two forwards below see the same outputs
    for task in ("sst", "para"):
        b = pair_batch(s, task, 3)
        out = m(b)
        got = StepLoss(m, None, loss_options(s.config))([(task, b, 1.0)]).item()
        mean = task_loss(task, out, b.labels).item()
        assert got == pytest.approx(mean * 3 / 64, rel=1e-6), task  # the sum over 3 examples / 64
    sts = pair_batch(s, "sts", 3)
    out = m(sts)
    got = StepLoss(m, None, loss_options(s.config))([("sts", sts, 1.0)]).item()
    # STS: a mean either way, on the code's 0..1 scale: cosine against label / 5
    assert got == pytest.approx(F.mse_loss(out / 5, sts.labels.float() / 5).item(), rel=1e-6)
    assert got == pytest.approx(task_loss("sts", out, sts.labels).item() / 25, rel=1e-6)


def test_our_losses_are_batch_means():
    logits, labels = torch.randn(3, 5), torch.tensor([0, 2, 4])
    assert task_loss("sst", logits, labels).item() == pytest.approx(F.cross_entropy(logits, labels).item())
    summed = task_loss("sst", logits, labels, LossOptions(per_batch=64)).item()
    assert summed == pytest.approx(F.cross_entropy(logits, labels, reduction="sum").item() / 64)


# --- rrobin-pre: the para-first branch ------------------------------------------------------------------------
def test_report_code_rrobin_pre_is_para_first_inside_every_epoch():
    lengths = {"sst": [5] * 40, "para": [5] * 105, "sts": [5] * 20}
    o = ScheduleOptions(batch_size=10, rrobin_pre="para-first", pre_epochs=1)
    for epoch in (1, 2):  # every epoch, not only the first
        plan = make_plan("rrobin-pre", lengths, epoch, random.Random(epoch), o)
        assert len(plan) == 10  # floor(105 / 10) Quora batches
        assert [[t for t, _ in it] for it in plan] == (
            [["para"]] * 6 + [["sst", "para"]] * 2 + [["sst", "para", "sts"]] * 2)  # SST joins for its last 4
        for task, n in (("para", 100), ("sst", 40), ("sts", 20)):
            seen = [i for it in plan for t, idx in it if t == task for i in idx]
            assert len(seen) == len(set(seen)) == n and all(len(idx) == 10 for it in plan for _, idx in it)


def test_our_rrobin_pre_is_one_quora_pass_then_rrobin():
    lengths = {"sst": [5] * 40, "para": [5] * 105, "sts": [5] * 20}
    o = ScheduleOptions(batch_size=10, pre_epochs=1)
    first = make_plan("rrobin-pre", lengths, 1, random.Random(0), o)
    assert [[t for t, _ in it] for it in first] == [["para"]] * 11 + [["sst", "para", "sts"]] * 2
    assert [[t for t, _ in it] for it in make_plan("rrobin-pre", lengths, 2, random.Random(0), o)] == [
        ["sst", "para", "sts"]] * 2


# --- the four SMART quirks ------------------------------------------------------------------------------------
def regularize(model, batch, config: SmartConfig, moved: bool = False, replay: bool = True) -> float:
    """λ·R_s + μ·Bregman of one batch, after the weights moved away from the teacher (``moved``)."""
    torch.manual_seed(1)
    smart = Smart(model, config)
    if moved:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    if replay:
        smart.capture_rng()
    emb = model.embed(batch)
    if replay:
        smart.capture_rng("encoder")
    out = model.head(batch.task, emb, batch.attention_mask)
    return smart.regularizer(batch.task, batch, emb, out).item()


@pytest.fixture(scope="module")
def smart_setup(tiny_encoder, demo_data):
    return setup_for(tiny_encoder, demo_data, dropout=0.3, encoder_dropout=0.3)


def test_quirk_one_logit_paraphrase_terms_are_exactly_0(smart_setup):
    b = pair_batch(smart_setup, "para")
    big = dict(lam=1.0, eps=3e-2, sigma=3e-2, eta=1.0)  # a term well above float noise
    assert regularize(model_for(smart_setup), b, SmartConfig(**big, para_kl="one-logit"), moved=True) == 0.0
    assert regularize(model_for(smart_setup), b, SmartConfig(**big), moved=True) > 0.0  # ours: two-class


def test_quirk_sts_bregman_is_a_softmax_across_the_batch(smart_setup):
    out, teacher = torch.tensor([4.0, 1.0, 2.5]), torch.tensor([3.0, 1.5, 2.5])
    want = ((torch.softmax(out / 5, 0) - torch.softmax(teacher / 5, 0)) ** 2).mean()
    torch.testing.assert_close(batch_softmax_bregman(out, teacher), want)
    # a relational (B, 1) student in the code: softmax over one element is 1, the difference broadcasts
    torch.testing.assert_close(batch_softmax_bregman(out, teacher, single=True),
                               ((1 - torch.softmax(teacher / 5, 0)[None, :]) ** 2).mean())
    b = pair_batch(smart_setup, "sts")
    ours = regularize(model_for(smart_setup), b, SmartConfig(lam=0.0), moved=True)
    quirk = regularize(model_for(smart_setup), b, SmartConfig(lam=0.0, sts_bregman="batch-softmax"), moved=True)
    assert ours > 0 and quirk > 0 and quirk != pytest.approx(ours, rel=1e-3)


def test_quirk_fresh_teacher_masks_make_the_bregman_term_dropout_noise(smart_setup):
    b = pair_batch(smart_setup, "sst")
    assert regularize(model_for(smart_setup), b, SmartConfig(lam=0.0)) == 0.0  # θ̃ = θ, same masks
    assert regularize(model_for(smart_setup), b, SmartConfig(lam=0.0, teacher_masks="fresh")) > 0.0


def test_quirk_plain_heads_smart_terms_of_rlayer_pair_tasks(tiny_encoder, demo_data, monkeypatch):
    s = setup_for(tiny_encoder, demo_data, variant="rrobin-full+rlayer+smart", profile="report-code")
    m = model_for(s)
    assert s.config.smart.rlayer_terms == "plain" and hasattr(m, "para_classifier")  # the code's unused head
    calls: list[bool] = []
    head = m.head

    def recording(task, emb, mask, plain=False):
        calls.append(plain)
        return head(task, emb, mask, plain)

    monkeypatch.setattr(m, "head", recording)
    b = pair_batch(s, "sts")
    smart = Smart(m, s.config.smart)
    emb = m.embed(b)
    out = head("sts", emb, b.attention_mask)  # the main forward: relational
    smart.regularizer("sts", b, emb, out)
    assert calls and all(calls)  # reference, ascent, perturbed and teacher forwards: all through the plain heads
    m.eval()
    u, v = torch.randn(4, m.config.hidden_size), torch.randn(4, m.config.hidden_size)
    torch.testing.assert_close(m.output("sts", torch.cat([u, v]), plain=True), 5 * F.cosine_similarity(u, v))
    ours = setup_for(tiny_encoder, demo_data, variant="rrobin-full+rlayer+smart")
    assert not Smart(model_for(ours), ours.config.smart).plain


# --- runs: config.json, the log, table2 -------------------------------------------------------------------------
def encoder_without_pooler(tiny_encoder: Path, out: Path) -> Path:
    out.mkdir()
    for f in tiny_encoder.iterdir():
        if f.is_file() and f.name != "model.safetensors":
            (out / f.name).write_bytes(f.read_bytes())
    sd = {k: v for k, v in load_file(str(tiny_encoder / "model.safetensors")).items() if not k.startswith("pooler.")}
    save_file(sd, str(out / "model.safetensors"))
    return out


@pytest.mark.parametrize("has_pooler", [True, False])
def test_the_run_records_the_profile_and_says_where_the_pooler_came_from(tiny_encoder, demo_data, tmp_path,
                                                                         has_pooler, caplog):
    caplog.set_level(logging.INFO, logger="walkless.train")  # as the CLI's own logging set-up (pytest holds root's)
    enc = tiny_encoder if has_pooler else encoder_without_pooler(tiny_encoder, tmp_path / "no-pooler")
    argv = ["train", "--profile", "report-code", "--variant", "rrobin-full+smart", "--encoder", str(enc),
            "--data-dir", str(demo_data), "--runs-dir", str(tmp_path / "runs"), "--name", "r", "--max-train", "16",
            "--max-dev", "8", "--max-steps", "1", "--epochs", "1", "--batch-size", "8"]
    assert main(argv) == 0
    run = tmp_path / "runs" / "r"
    config = json.loads((run / "config.json").read_text())
    assert config["profile"] == "report-code"
    assert {k: config[k] for k in REPORT_CODE if not k.startswith("smart_")} == {
        k: v for k, v in REPORT_CODE.items() if not k.startswith("smart_")}
    assert {f"smart_{k}": v for k, v in config["smart"].items() if f"smart_{k}" in REPORT_CODE} == {
        k: v for k, v in REPORT_CODE.items() if k.startswith("smart_")}
    log = (run / "train.log").read_text()
    assert "profile report-code: pooling pooler" in log
    if has_pooler:
        assert "pooler.dense from" in log
    else:
        assert "has no pooler weights, so a randomly initialised pooler" in log


def test_done_when_table2_report_code_row_names_the_profile_and_the_pooler(tiny_encoder, demo_data, tmp_path):
    runs = tmp_path / "t2"
    assert main(["table2", "--profile", "report-code", "--rows", "rrobin-full+smart", "--epochs", "1",
                 "--max-train", "48", "--max-dev", "8", "--encoder", str(tiny_encoder), "--data-dir", str(demo_data),
                 "--runs-dir", str(runs)]) == 0
    config = json.loads((runs / "rrobin-full_smart" / "config.json").read_text())
    assert (config["profile"], config["pooling"], config["batch_size"]) == ("report-code", "pooler", 16)
    assert json.loads((runs / "table2.json").read_text())["settings"]["profile"] == "report-code"
    assert "profile report-code" in (runs / "table2.md").read_text()
    # the same folder is never resumed under the other profile
    with pytest.raises(RunError, match="profile='report-code' \\(asked 'walkless'\\)"):
        train_row("rrobin-full+smart", Table2Config(runs_dir=str(runs), rows=("rrobin-full+smart",), max_train=48,
                                                    max_dev=8, encoder=str(tiny_encoder), data_dir=str(demo_data)))
