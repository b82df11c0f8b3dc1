"""``core.runs.RunFolder``: the one owner of a run folder's layout (file paths, checkpoints, pointers, RunInfo)."""

import json

from core.launch import quick_info
from core.runs import RunFolder, RunState, checkpoint_path, load_run, write_status


def make_run(tmp_path, steps=(5, 10), last=10):
    """A run folder as training leaves it: config, status, metrics, step checkpoints, a last pointer."""
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.config_file.write_text(json.dumps({"variant": "rrobin", "tasks": ["sst", "para", "sts"], "epochs": 2}))
    write_status(folder.path, state="finished", epoch=1, epochs=2, step=last, total_steps=20, started=1.0)
    folder.metrics_file.write_text(json.dumps({"kind": "epoch", "epoch": 1, "seconds": 4.0,
                                               "dev": {"sst/acc": 0.5}}) + "\n")
    for step in steps:
        ckpt = folder.checkpoints_dir / folder.step_checkpoint(step)
        ckpt.mkdir(parents=True)
        (ckpt / "walkless.json").write_text("{}")
    (folder.checkpoints_dir / ".tmp-step-00000099-1").mkdir()  # a save killed half-way is not a checkpoint
    if last is not None:
        folder.pointer_file("last").write_text(json.dumps({"path": f"checkpoints/{folder.step_checkpoint(last)}"}))
    return folder


def test_paths_and_checkpoints(tmp_path):
    folder = make_run(tmp_path)
    assert folder.config_file.name == "config.json" and folder.status_file.name == "status.json"
    assert folder.metrics_file.name == "metrics.jsonl" and folder.log_file.name == "train.log"
    assert [p.name for p in folder.checkpoints()] == ["step-00000005", "step-00000010"]  # oldest first
    assert folder.pointed("last") == folder.checkpoints_dir / "step-00000010"
    assert folder.pointed("best") is None and folder.pointer("best") is None
    assert checkpoint_path(folder.path) == folder.checkpoints_dir / "step-00000010"  # no best: the last
    assert folder.has_checkpoint() and folder.is_run()
    empty = RunFolder(tmp_path / "empty")
    empty.path.mkdir()
    assert not empty.has_checkpoint() and not empty.is_run() and empty.checkpoints() == []


def test_a_step_folder_without_pointer_still_counts_for_resume(tmp_path):
    folder = make_run(tmp_path, steps=(5,), last=None)
    assert folder.pointed("last") is None and folder.has_checkpoint()


def test_info_reads_metrics_only_when_asked(tmp_path):
    folder = make_run(tmp_path)
    full, quick = folder.info(), folder.info(metrics=False)
    assert full == load_run(folder.path)
    assert full.state == RunState.FINISHED and full.step == 10 and full.tasks == ["sst", "para", "sts"]
    assert full.dev == {"sst/acc": 0.5} and full.seconds_per_epoch == 4.0
    assert quick.dev == {} and quick.seconds_per_epoch is None  # the monitor reads metrics.jsonl itself
    assert (quick.state, quick.step, quick.total_steps, quick.variant) == (full.state, 10, 20, "rrobin")
    assert quick_info(folder.path) == quick


def test_quick_info_of_a_folder_without_status_and_of_bad_values(tmp_path):
    (tmp_path / "bare").mkdir()
    info = quick_info(tmp_path / "bare")
    assert info.state == RunState.FAILED and "no status.json" in info.message
    folder = make_run(tmp_path)
    folder.status_file.write_text(json.dumps({"state": "finished", "epoch": "one"}))
    info = quick_info(folder.path)
    assert info.state == RunState.DAMAGED and "status.json: epoch is a str" in info.reason  # issue 41
