"""--sst-passes (more SST steps per rrobin-full iteration) and --label-smoothing (the 5-class losses only)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from support.training import make_trainer, parse_train, record_steps, record_tasks

from core.cli import main
from core.config import TrainConfig
from core.data import collate
from core.multitask import task_loss


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

