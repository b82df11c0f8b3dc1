"""Runs sharing a runs folder never clobber each other, one run is written by one process only, and a
reader (the app) never sees a half-written JSON file."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.runs import RunError, RunLock, create_run_dir, drop_metrics_after, read_metrics, write_json_atomic
from core.train import resume

REPO = Path(__file__).resolve().parents[2]


def test_simultaneous_runs_get_distinct_folders(tmp_path):
    barrier = threading.Barrier(12)
    made: list[Path] = []
    errors: list[Exception] = []

    def new(name: str | None) -> None:
        barrier.wait()
        try:
            made.append(create_run_dir(tmp_path, name, prefix="rrobin"))
        except RunError as e:
            errors.append(e)

    threads = [threading.Thread(target=new, args=(None,)) for _ in range(8)]
    threads += [threading.Thread(target=new, args=("mine",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == len(set(made)) == 9  # 8 generated names (same second: suffixes) + one "mine"
    assert len(errors) == 3 and all("already exists" in str(e) for e in errors)


@pytest.mark.slow
def test_two_training_processes_in_one_runs_folder(tiny_encoder, tmp_path):
    runs = tmp_path / "runs"
    argv = ["train", "--variant", "finetune", "--encoder", str(tiny_encoder), "--runs-dir", str(runs),
            "--epochs", "1", "--batch-size", "8", "--max-train", "16", "--max-dev", "8", "--log-every", "1",
            "--threads", "1"]
    procs = [subprocess.Popen([sys.executable, "-m", "core.cli", *argv, "--seed", str(seed)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for _, e in outs]
    folders = sorted(runs.iterdir())
    assert len(folders) == 2  # nothing shared in the runs folder itself
    seeds = set()
    for run in folders:
        assert json.loads((run / "status.json").read_text())["state"] == "finished"
        seeds.add(json.loads((run / "config.json").read_text())["seed"])
        assert [r["step"] for r in read_metrics(run) if r["kind"] == "step"] == [1, 2]
        assert (run / json.loads((run / "best.json").read_text())["path"] / "model.safetensors").is_file()
    assert seeds == {1, 2}


def test_a_run_being_written_cannot_be_resumed_by_another_process(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    lock = RunLock(run).acquire()
    try:
        with pytest.raises(RunError, match="is being written by another process"):
            RunLock(run).acquire()
        (run / "config.json").write_text("{}")
        with pytest.raises(RunError, match="is being written by another process"):
            resume(run)
    finally:
        lock.release()
    RunLock(run).acquire().release()  # free again once the writer lets go (or dies: the OS drops it)


WRITER = """
import sys
from pathlib import Path
from core.runs import write_json_atomic
path, n = Path(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    write_json_atomic(path, {"version": i, "rows": [[i] * 50 for _ in range(300)]})  # ~100 kB
"""


def test_readers_never_see_a_half_written_json_file(tmp_path):
    path = tmp_path / "status.json"
    write_json_atomic(path, {"version": -1})
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "100"], cwd=REPO)
    reads, versions = 0, set()
    try:
        while writer.poll() is None:
            doc = json.loads(path.read_text())  # raises on a torn file
            versions.add(doc["version"])
            reads += 1
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0
    assert json.loads(path.read_text())["version"] == 99
    assert reads > 0 and len(versions) > 1
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporary file left behind


def test_metrics_readers_skip_a_torn_last_line_and_resume_cleans_it(tmp_path):
    lines = [json.dumps({"kind": "step", "step": s, "loss": 1.0}) for s in (1, 2, 3)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n" + '{"kind": "step", "st')  # killed mid-line
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    assert drop_metrics_after(tmp_path, 2) == 2  # step 3 (redone after the checkpoint) and the torn line
    assert (tmp_path / "metrics.jsonl").read_text() == "\n".join(lines[:2]) + "\n"


def test_atomic_json_gets_the_mode_the_umask_gives(tmp_path):
    """A shared runs folder: JSON written atomically is as readable as metrics.jsonl, not mkstemp's 0600."""
    import os

    from core.runs import write_json_atomic

    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "status.json", {"state": "running"})
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        assert (tmp_path / "status.json").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
