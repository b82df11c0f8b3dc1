"""Training options from the report's code and beyond it: rrobin's fixed subset, gradient clipping, the
learning-rate schedule, and single-task runs evaluated on every dev set."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from options_support import other_values

from core.checkpoint import load_checkpoint
from core.cli import build_parser, main, train_config
from core.config import TrainConfig, read_config_file
from core.data import collate
from core.encoders import load_pretrained
from core.multitask import HeadConfig, MultitaskBert, task_loss
from core.runs import read_metrics
from core.schedules import ScheduleOptions, make_plan
from core.setup import lr_factor, prepare
from core.trainer import Trainer

LENGTHS = {"sst": [5] * 50, "para": [7] * 90, "sts": [6] * 20}


def used(plan, task):
    return {i for it in plan for t, idx in it if t == task for i in idx}


def test_rrobin_fixed_subset_is_the_same_every_epoch_and_as_large_as_the_smallest_task():
    rng = random.Random(0)
    plans = [make_plan("rrobin", LENGTHS, e, rng, ScheduleOptions(4, seed=7)) for e in (1, 2, 3)]
    for task in LENGTHS:
        sets = [used(p, task) for p in plans]
        assert sets[0] == sets[1] == sets[2] and len(sets[0]) == 20  # floor(20 / 4) * 4 unique examples
    assert [it[0][1] for it in plans[0]] != [it[0][1] for it in plans[1]]  # reshuffled each epoch
    other_seed = make_plan("rrobin", LENGTHS, 1, random.Random(0), ScheduleOptions(4, seed=8))
    assert used(other_seed, "para") != used(plans[0], "para")


def test_rrobin_fresh_subset_draws_anew_each_epoch():
    rng = random.Random(0)
    a, b = (make_plan("rrobin", LENGTHS, e, rng, ScheduleOptions(4, rrobin_subset="fresh")) for e in (1, 2))
    assert used(a, "para") != used(b, "para")
    with pytest.raises(ValueError, match="fixed or fresh"):
        ScheduleOptions(4, rrobin_subset="half")


def test_rrobin_pre_uses_the_subset_after_its_full_quora_pass():
    plan = make_plan("rrobin-pre", LENGTHS, 1, random.Random(0), ScheduleOptions(4, seed=1))
    pre = [it for it in plan if len(it) == 1]
    assert used(pre, "para") == set(range(90))
    assert len(used([it for it in plan if len(it) == 3], "para")) == 20


def test_lr_factor_warmup_then_linear_decay_to_zero():
    f = [lr_factor(s, 100, 0.1, "linear") for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and f[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    assert f[99] == pytest.approx(1 / 90)
    assert [lr_factor(s, 100, 0.0, "constant") for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="constant or linear"):
        lr_factor(50, 100, 0.0, "cosine")


def parse_train(*args: str) -> TrainConfig:
    """The TrainConfig of ``walkless train ARGS``."""
    return train_config(build_parser().parse_args(["train", *args]))


def make_trainer(tiny_encoder, demo_data, tmp_path, **kw) -> Trainer:
    torch.manual_seed(0)
    c = TrainConfig(variant=kw.pop("variant", "rrobin"), encoder=str(tiny_encoder), data_dir=str(demo_data),
                    runs_dir=str(tmp_path), max_train=24, max_dev=8, batch_size=4, lr=1e-3, seed=0, log_every=1000,
                    **kw)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return Trainer(prepare(c), run_dir)


def record_steps(trainer: Trainer) -> list[dict]:
    """Wrap the optimizer step to record the learning rate and the gradient norm it is given."""
    seen, step = [], trainer.optimizer.step

    def recording(*a, **k):
        g = torch.stack([p.grad.norm() for p in trainer.params if p.grad is not None]).norm().item()
        seen.append({"lr": trainer.optimizer.param_groups[0]["lr"], "grad_norm": g})
        return step(*a, **k)

    trainer.optimizer.step = recording
    return seen


def record_tasks(trainer: Trainer) -> list[str]:
    """Wrap the step loss to record the task of every training step, in order."""
    tasks, forward = [], trainer.step_loss.forward

    def recording(items):
        tasks.extend(task for task, *_ in items)
        return forward(items)

    trainer.step_loss.forward = recording
    return tasks


def test_linear_schedule_follows_the_plan_to_its_last_step(tiny_encoder, demo_data, tmp_path):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, epochs=2, lr_schedule="linear", warmup=0.2)
    seen = record_steps(t)
    t.fit()
    assert t.step == t.total_steps == len(seen) == 2 * 6 * 3  # 2 epochs x floor(24/4) iterations x 3 tasks
    lrs = [s["lr"] for s in seen]
    n_warm = int(0.2 * len(lrs))
    assert lrs[0] == pytest.approx(1e-3 / n_warm) and lrs[n_warm] == pytest.approx(1e-3)
    assert lrs[-1] == pytest.approx(1e-3 / (len(lrs) - n_warm))


@pytest.mark.parametrize("clip", [0.05, 0.0])
def test_gradient_clipping(tiny_encoder, demo_data, tmp_path, clip):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, epochs=1, clip_grad=clip, dropout=0.1)
    seen = record_steps(t)
    t.fit()
    norms = [s["grad_norm"] for s in seen]
    if clip:
        assert max(norms) <= clip * 1.001
    else:
        assert max(norms) > 0.05  # unclipped gradients are larger than the clip above


def test_smart_clips_at_one_by_default_as_the_reports_code():
    assert TrainConfig().grad_clip_norm(smart=True) == 1.0
    assert TrainConfig().grad_clip_norm(smart=False) is None
    assert TrainConfig(clip_grad=0).grad_clip_norm(smart=True) is None
    assert TrainConfig(clip_grad=2.5).grad_clip_norm(smart=False) == 2.5


def test_single_task_eval_all_reports_every_dev_set_and_keeps_the_best_by_its_task(tiny_encoder, tmp_path):
    runs = tmp_path / "runs"
    assert main(["train", "--variant", "finetune", "--task", "sst", "--eval-all", "--encoder", str(tiny_encoder),
                 "--runs-dir", str(runs), "--name", "ft", "--epochs", "2", "--batch-size", "8", "--max-train", "16",
                 "--max-dev", "8", "--lr", "1e-3", "--threads", "1"]) == 0
    epochs = [r for r in read_metrics(runs / "ft") if r["kind"] == "epoch"]
    assert all({"sst/acc", "para/acc", "sts/pearson"} <= set(r["dev"]) for r in epochs)
    best = json.loads((runs / "ft" / "best.json").read_text())
    assert best["score"] == max(r["dev"]["sst/acc"] for r in epochs)  # SST alone picks the best checkpoint
    steps = {r["task"] for r in read_metrics(runs / "ft") if r["kind"] == "step"}
    assert steps == {"sst"}  # the other heads are only evaluated, never trained


@pytest.mark.parametrize("key,text,value,msg", [("epochs", "-1", -1, "--epochs -1: must be at least 1"),
                                                ("dropout", "1.5", 1.5, "--dropout 1.5: must be in [0, 1)"),
                                                ("warmup", "1", 1.0, "--warmup 1.0: must be in [0, 1)"),
                                                ("pair_input", "tri", "tri", "--pair-input tri: must be one of bi, cross"),
                                                ("batch_size", "x", "32", "--batch-size 32: must be an integer")])
def test_options_out_of_range_are_refused_before_a_run_exists(tmp_path, capsys, key, text, value, msg):
    flag = "--" + key.replace("_", "-")
    with pytest.raises(SystemExit) as exit_:  # a flag: argparse's usage error
        main(["train", "--runs-dir", str(tmp_path / "runs"), flag, text])
    assert exit_.value.code == 2 and f"argument {flag}: '{text}': must be" in capsys.readouterr().err
    config = tmp_path / "c.json"  # a value from a --config file
    config.write_text(json.dumps({key: value}))
    assert main(["train", "--runs-dir", str(tmp_path / "runs"), "--config", str(config)]) == 1
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_layer_decay_gives_each_depth_its_learning_rate(tiny_encoder, demo_data, tmp_path):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, epochs=1, layer_decay=0.5, lr_schedule="linear")
    n = t.model.config.num_hidden_layers
    lr_of = {id(p): g["lr"] for g in t.optimizer.param_groups for p in g["params"]}
    assert lr_of[id(t.model.sst_classifier.weight)] == pytest.approx(1e-3)
    assert lr_of[id(t.model.bert.encoder.layer[n - 1].output.dense.weight)] == pytest.approx(1e-3 * 0.5)
    assert lr_of[id(t.model.bert.embeddings.word_embeddings.weight)] == pytest.approx(1e-3 * 0.5 ** (n + 1))
    seen = record_steps(t)
    t.fit()
    assert t.optimizer.param_groups[-1]["lr"] < 1e-3 / 10  # the schedule scales every group from its own base
    assert len(seen) == t.total_steps


@pytest.mark.parametrize("layer_decay", [1.0, 0.5])
def test_head_lr_multiplies_the_heads_learning_rate_only(tiny_encoder, demo_data, tmp_path, layer_decay):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, epochs=1, head_lr=10.0, layer_decay=layer_decay,
                     variant="rrobin+rlayer")
    n = t.model.config.num_hidden_layers
    lr_of = {id(p): g["lr"] for g in t.optimizer.param_groups for p in g["params"]}
    for head in (t.model.sst_classifier, t.model.relational.dense, t.model.para_out, t.model.sts_out):
        assert lr_of[id(head.weight)] == pytest.approx(1e-3 * 10)
    assert lr_of[id(t.model.bert.encoder.layer[n - 1].output.dense.weight)] == pytest.approx(1e-3 * layer_decay)
    assert lr_of[id(t.model.bert.embeddings.word_embeddings.weight)] == pytest.approx(1e-3 * layer_decay ** (n + 1))
    heads_before = t.model.sst_classifier.weight.detach().clone()
    t.fit()
    assert not torch.equal(heads_before, t.model.sst_classifier.weight)


def test_ema_is_what_is_evaluated_and_saved_and_resume_continues_it(tiny_encoder, tmp_path):
    from safetensors.torch import load_file

    from core.train import resume, train

    def cfg(runs, epochs):
        return TrainConfig(variant="rrobin", encoder=str(tiny_encoder), runs_dir=str(runs), name="e", epochs=epochs,
                           max_train=24, max_dev=8, batch_size=4, lr=3e-3, seed=0, log_every=1, ema=0.9, threads=1)

    ref = train(cfg(tmp_path / "ref", 2))
    part = train(cfg(tmp_path / "part", 1))
    resume(part, epochs=2)
    steps = lambda r: [(x["step"], x["loss"]) for x in read_metrics(r) if x["kind"] == "step"]  # noqa: E731
    assert [s for s, _ in steps(part)] == [s for s, _ in steps(ref)]
    for (s, a), (_, b) in zip(steps(part), steps(ref), strict=True):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6), f"step {s}"
    last = lambda r: load_file(str(r / json.loads((r / "last.json").read_text())["path"] / "model.safetensors"))  # noqa: E731
    a, b = last(part), last(ref)
    assert all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in a)


def test_ema_weights_are_the_average_not_the_trained_ones(tiny_encoder, demo_data, tmp_path):
    from safetensors.torch import load_file

    t = make_trainer(tiny_encoder, demo_data, tmp_path, epochs=1, ema=0.9)
    manual = [p.detach().clone() for p in t.params]
    step = t.optimizer.step

    def stepping(*a, **k):
        out = step(*a, **k)
        with torch.no_grad():
            for m, p in zip(manual, t.params, strict=True):
                m.mul_(0.9).add_(p.detach(), alpha=0.1)
        return out

    t.optimizer.step = stepping
    t.fit()
    saved = load_file(str(t.run_dir / json.loads((t.run_dir / "last.json").read_text())["path"] / "model.safetensors"))
    for name, m in zip(t.param_names, manual, strict=True):
        assert torch.allclose(saved[name], m, atol=1e-6)  # the checkpoint holds the average...
    # ...not the trained weights, which the model holds again after saving
    assert any(not torch.allclose(saved[n], p.detach(), atol=1e-4)
               for n, p in zip(t.param_names, t.params, strict=True))


def test_step_losses_go_to_train_log_but_not_to_the_console(tiny_encoder, demo_data, tmp_path, capsys):
    # The app's Monitor tails train.log: it should show step losses, not only epoch lines; the CLI console
    # keeps its progress bar free of them.
    code = main(["train", "--variant", "finetune", "--task", "sst", "--encoder", str(tiny_encoder), "--data-dir",
                 str(demo_data), "--runs-dir", str(tmp_path), "--name", "steps", "--max-train", "16",
                 "--max-dev", "8", "--batch-size", "4", "--log-every", "2", "--epochs", "1"])
    assert code == 0
    text = (tmp_path / "steps" / "train.log").read_text()
    assert "step 2: sst loss " in text and "step 4: sst loss " in text
    out = capsys.readouterr()
    assert "sst loss" not in out.out + out.err


def test_every_training_option_is_set_by_the_flag_of_its_name_and_by_a_config_file(tmp_path):
    """One source of truth: each field of TrainConfig/SmartConfig is a flag of the same name (``smart_lam`` is
    ``--smart-lam``), and a JSON file of the options (a run's config.json) gives them all back."""
    parser, values = build_parser(), other_values()
    assert len(values) == 68  # 59 + issue 38: --profile and the eight per-choice options it sets
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        args = [flag if value else f"--no-{flag[2:]}"] if isinstance(value, bool) else [flag, str(value)]
        # --sst-passes: only rrobin-full takes it; --cfimdb: only multitask variants; --calibrate-para: Quora's
        args += ["--variant", "rrobin-full"] if name in ("sst_passes", "cfimdb", "calibrate_para") else []
        args += ["--variant", "rrobin", "--no-per-task-step"] if name == "grad_surgery" else []  # a summed step
        assert train_config(parser.parse_args(["train", *args])).flat()[name] == value, flag
    config = TrainConfig().updated(values)
    (tmp_path / "c.json").write_text(json.dumps(config.to_dict()))
    assert read_config_file(tmp_path / "c.json") == config


# --- SST levers: --sst-passes (rrobin-full) and --label-smoothing (the 5-class losses) -------------------------
@pytest.mark.parametrize("variant", ["rrobin", "finetune", "rrobin-pre", "proportional"])
def test_sst_passes_is_refused_by_every_schedule_but_rrobin_full(variant):
    assert TrainConfig(variant=variant).validate().sst_passes == 1  # the default is fine everywhere
    with pytest.raises(ValueError, match=f"--sst-passes 2: only the rrobin-full schedule.*variant {variant}"):
        TrainConfig(variant=variant, sst_passes=2).validate()
    for ok in ("rrobin-full", "rrobin-full+smart", "rrobin-full+rlayer"):
        assert TrainConfig(variant=ok, sst_passes=2).validate().sst_passes == 2


def test_sst_passes_and_label_smoothing_flags(tmp_path, capsys):
    c = parse_train("--variant", "rrobin-full", "--sst-passes", "2", "--label-smoothing", "0.1")
    assert (c.sst_passes, c.label_smoothing) == (2, 0.1)
    assert (parse_train().sst_passes, parse_train().label_smoothing) == (1, 0.0)
    with pytest.raises(ValueError, match="--sst-passes 2"):
        parse_train("--variant", "rrobin", "--sst-passes", "2")
    assert main(["train", "--runs-dir", str(tmp_path / "runs"), "--variant", "finetune", "--sst-passes", "2"]) == 1
    assert "--sst-passes 2: only the rrobin-full schedule" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    for flag, text in (("--sst-passes", "0"), ("--label-smoothing", "1")):
        with pytest.raises(SystemExit) as exit_:
            main(["train", "--runs-dir", str(tmp_path / "runs"), "--variant", "rrobin-full", flag, text])
        assert exit_.value.code == 2 and f"argument {flag}: '{text}': must be" in capsys.readouterr().err


@pytest.mark.parametrize("passes", [1, 2])
def test_trainer_takes_sst_passes_sst_steps_per_rrobin_full_iteration(tiny_encoder, demo_data, tmp_path, passes):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, variant="rrobin-full", epochs=1, sst_passes=passes)
    tasks = record_tasks(t)
    seen = record_steps(t)
    t.fit()
    # 24 examples per task at batch 4: para anchors 6 iterations, each sst x passes, para, sts
    assert t.step == t.total_steps == len(seen) == len(tasks) == 6 * (passes + 2)
    assert Counter(tasks) == Counter({"sst": 6 * passes, "para": 6, "sts": 6})
    assert tasks[:passes + 2] == (["sst", "para", "sts"] if passes == 1 else ["sst", "para", "sst", "sts"])


def test_task_loss_smooths_the_classify_tasks_only():
    torch.manual_seed(0)
    logits, labels = torch.randn(6, 5) * 3, torch.tensor([0, 1, 2, 3, 4, 2])
    plain = task_loss("sst", logits, labels)
    smooth = task_loss("sst", logits, labels, 0.1)
    assert plain.item() == pytest.approx(F.cross_entropy(logits, labels).item())
    assert smooth.item() == pytest.approx(F.cross_entropy(logits, labels, label_smoothing=0.1).item())
    assert abs(smooth.item() - plain.item()) > 1e-3
    two, y2 = logits[:, :2], torch.tensor([0, 1, 1, 0, 1, 0])
    assert task_loss("cfimdb", two, y2, 0.2).item() == pytest.approx(
        F.cross_entropy(two, y2, label_smoothing=0.2).item())
    assert abs(task_loss("cfimdb", two, y2, 0.2).item() - task_loss("cfimdb", two, y2).item()) > 1e-3
    para, y_para = logits[:, 0], torch.tensor([0, 1, 1, 0, 1, 0])
    sts, y_sts = logits[:, 1], torch.tensor([0.0, 1.5, 2.0, 5.0, 3.2, 4.0])
    for task, out, y in (("para", para, y_para), ("sts", sts, y_sts)):
        assert task_loss(task, out, y, 0.3).item() == task_loss(task, out, y).item(), task
    assert task_loss("para", para, y_para).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(para, y_para.float()).item())
    assert task_loss("sts", sts, y_sts).item() == pytest.approx(F.mse_loss(sts, y_sts).item())


def test_the_trainers_step_loss_smooths_sst_by_its_config(tiny_encoder, demo_data, tmp_path):
    from core.data import collate
    from core.trainer import StepLoss

    t = make_trainer(tiny_encoder, demo_data, tmp_path, label_smoothing=0.2)
    model = t.model.eval()  # no dropout: the same forward in every call
    batches = {task: collate(t.setup.train[task], list(range(8))) for task in ("sst", "para", "sts")}
    for task, batch in batches.items():
        with torch.no_grad():
            plain = StepLoss(model, None)([(task, batch, 1.0)]).item()
            smooth = StepLoss(model, None, 0.2)([(task, batch, 1.0)]).item()
            trainers = t.step_loss([(task, batch, 1.0)]).item()
        assert trainers == smooth, task  # the trainer's loss takes --label-smoothing
        if task == "sst":
            ref = F.cross_entropy(model(batch), batch.labels, label_smoothing=0.2).item()
            assert smooth == pytest.approx(ref, rel=1e-5) and abs(smooth - plain) > 1e-3
        else:
            assert smooth == plain, task


# --- --cfimdb: CFIMDB as a fourth training task of a multitask run ----------------------------------------------
@pytest.mark.parametrize("variant", ["finetune", "pretrain", "finetune+smart"])
def test_cfimdb_is_refused_by_single_task_variants(variant, tmp_path, capsys):
    with pytest.raises(ValueError, match=f"--cfimdb adds a fourth task.*variant {re.escape(variant)}"):
        TrainConfig(variant=variant, cfimdb=True).validate()
    assert main(["train", "--runs-dir", str(tmp_path / "runs"), "--variant", variant, "--cfimdb"]) == 1
    assert "--cfimdb adds a fourth task" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_cfimdb_trains_a_fourth_task_and_the_best_checkpoint_is_judged_without_it(tiny_encoder, demo_data, tmp_path):
    from core.evaluate import headline

    t = make_trainer(tiny_encoder, demo_data, tmp_path, variant="rrobin-full+rlayer", epochs=2, cfimdb=True)
    assert t.setup.tasks == ("sst", "para", "sts", "cfimdb") and t.setup.judged_tasks == ("sst", "para", "sts")
    tasks = record_tasks(t)
    head = t.model.cfimdb_classifier.weight.detach().clone()
    t.fit()
    # 24 examples per task at batch 4: para anchors 6 iterations of sst, para, sts, cfimdb
    assert tasks[:4] == ["sst", "para", "sts", "cfimdb"]
    assert Counter(tasks) == Counter({"sst": 12, "para": 12, "sts": 12, "cfimdb": 12})
    assert not torch.equal(head, t.model.cfimdb_classifier.weight)  # its head trains
    epochs = [r for r in read_metrics(t.run_dir) if r["kind"] == "epoch"]
    assert all("cfimdb/acc" in r["dev"] for r in epochs)  # its dev set is reported...
    best = json.loads((t.run_dir / "best.json").read_text())
    scores = [headline(r["dev"], ("sst", "para", "sts")) for r in epochs]
    assert best["score"] == pytest.approx(max(scores))  # ...but the best checkpoint is the three tasks' best
    assert best["score"] != pytest.approx(max(headline(r["dev"]) for r in epochs))


# --- --sst-lr: SST's own optimizer steps at a multiple of the lr ----------------------------------------------
@pytest.mark.parametrize("schedule", ["constant", "linear"])
def test_sst_lr_scales_the_lr_of_sst_steps_only(tiny_encoder, demo_data, tmp_path, schedule):
    runs = {}
    for sst_lr in (1.0, 2.5):
        (tmp_path / str(sst_lr)).mkdir()
        t = make_trainer(tiny_encoder, demo_data, tmp_path / str(sst_lr), variant="rrobin-full", epochs=1,
                         lr_schedule=schedule, head_lr=10, sst_lr=sst_lr)
        tasks, seen = record_tasks(t), record_steps(t)
        t.fit()
        runs[sst_lr] = [(task, s["lr"]) for task, s in zip(tasks, seen, strict=True)]
    assert [task for task, _ in runs[1.0]] == [task for task, _ in runs[2.5]]
    assert {task for task, _ in runs[1.0]} == {"sst", "para", "sts"}
    for (task, plain), (_, scaled) in zip(runs[1.0], runs[2.5], strict=True):
        assert scaled == pytest.approx(plain * (2.5 if task == "sst" else 1.0)), task
    if schedule == "linear":
        assert runs[1.0][-1][1] < runs[1.0][0][1]
    else:
        assert len({lr for _, lr in runs[1.0]}) == 1


def test_sst_lr_flag_and_its_check():
    assert (parse_train("--sst-lr", "2").sst_lr, parse_train().sst_lr) == (2.0, 1.0)
    with pytest.raises(ValueError, match="--sst-lr 2.0: needs one optimizer step per task"):
        parse_train("--sst-lr", "2", "--no-per-task-step")


# --- --sst-head mlp: dropout, dense + tanh, dropout, linear --------------------------------------------------
def test_sst_head_mlp_trains_at_the_head_lr_and_is_what_the_checkpoint_scores(tiny_encoder, demo_data, tmp_path):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, variant="rrobin-full", epochs=1, head_lr=10.0,
                     sst_head="mlp")
    m = t.model
    lr_of = {id(p): g["lr"] for g in t.optimizer.param_groups for p in g["params"]}
    assert lr_of[id(m.sst_dense.weight)] == pytest.approx(1e-3 * 10)
    before = m.sst_dense.weight.detach().clone()
    t.fit()
    assert not torch.equal(before, m.sst_dense.weight)  # the dense layer learns
    m.eval()
    x = torch.randn(5, m.config.hidden_size)
    with torch.no_grad():
        want = m.sst_classifier(torch.tanh(m.sst_dense(x)))
        assert torch.allclose(m.output("sst", x), want)
        assert not torch.allclose(m.sst_classifier(x), want)  # not the linear head
        loaded, meta, _ = load_checkpoint(t.run_dir)
        assert meta["heads"]["sst_head"] == "mlp"
        assert torch.allclose(loaded.output("sst", x), want, atol=1e-6)


def test_sst_head_flag_default_and_bad_value(tiny_encoder):
    assert (parse_train("--sst-head", "mlp").sst_head, parse_train().resolved().sst_head) == ("mlp", "linear")
    linear = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig())
    assert not hasattr(linear, "sst_dense")  # the report's head: dropout + linear only
    assert HeadConfig.from_dict({"tasks": ["sst"]}).sst_head == "linear"  # checkpoints from before the option
    with pytest.raises(ValueError, match="sst head 'deep': choose linear, leaky, mlp or lstm"):
        MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(sst_head="deep"))


# --- --pair-symmetric: both orders of a pair, averaged -------------------------------------------------------
@pytest.mark.parametrize("rlayer", [False, True])
def test_pair_symmetric_heads_give_a_pair_one_answer_in_either_order(tiny_encoder, rlayer):
    torch.manual_seed(0)
    m = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(rlayer=rlayer, pair_symmetric=True)).eval()
    plain = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(rlayer=rlayer)).eval()
    plain.load_state_dict(m.state_dict())  # the option adds no weights: the same heads, scored both ways
    u, v = torch.randn(6, m.config.hidden_size), torch.randn(6, m.config.hidden_size)
    with torch.no_grad():
        for task in ("para", "sts"):
            uv, vu = m.output(task, torch.cat([u, v])), m.output(task, torch.cat([v, u]))
            assert torch.allclose(uv, vu, atol=1e-6)
            a, b = plain.output(task, torch.cat([u, v])), plain.output(task, torch.cat([v, u]))
            assert torch.allclose(uv, (a + b) / 2, atol=1e-6)
            if task == "para" or rlayer:  # the report's heads are not symmetric ([u, v, ...]); cosine is
                assert not torch.allclose(a, b, atol=1e-4)


def test_pair_symmetric_trains_saves_and_reloads(tiny_encoder, demo_data, tmp_path):
    t = make_trainer(tiny_encoder, demo_data, tmp_path, variant="rrobin-full+rlayer", epochs=1, pair_symmetric=True)
    t.fit()
    assert t.model.heads.pair_symmetric
    loaded, meta, _ = load_checkpoint(t.run_dir)
    assert meta["heads"]["pair_symmetric"] is True and loaded.heads.pair_symmetric
    u, v = torch.randn(3, loaded.config.hidden_size), torch.randn(3, loaded.config.hidden_size)
    loaded.eval()
    with torch.no_grad():
        assert torch.allclose(loaded.output("para", torch.cat([u, v])), loaded.output("para", torch.cat([v, u])),
                              atol=1e-6)


def test_pair_symmetric_flag_default_and_cross_input(tiny_encoder):
    assert (parse_train("--pair-symmetric").pair_symmetric, parse_train().pair_symmetric) == (True, False)
    assert HeadConfig.from_dict({"tasks": ["para"]}).pair_symmetric is False  # checkpoints from before the option
    with pytest.raises(ValueError, match="--pair-symmetric .* needs --pair-input bi"):
        parse_train("--pair-symmetric", "--pair-input", "cross").validate()
    with pytest.raises(ValueError, match="use it with pair input bi"):
        MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(pair_input="cross", pair_symmetric=True))


# --- --sst-layers K: the sentiment tasks' own copy of the encoder's top K layers ------------------------------
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
