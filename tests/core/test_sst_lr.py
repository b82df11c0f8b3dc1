"""--sst-lr: SST's own optimizer steps at a multiple of the learning rate."""

from __future__ import annotations

import pytest
from support.training import make_trainer, parse_train, record_steps, record_tasks


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

