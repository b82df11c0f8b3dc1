"""--cfimdb: CFIMDB as a fourth task of multitask runs, its dev accuracy reported but not used to pick the best checkpoint."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
import torch
from support.training import make_trainer, record_tasks

from core.cli import main
from core.config import TrainConfig
from core.runs import read_metrics


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

