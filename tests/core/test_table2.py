"""``walkless table2``: the report's rows with their settings, killed mid-row and run again it matches an
uninterrupted sweep, finished rows are skipped, and rows trained with other settings are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.killable import run_and_kill

from core.checkpoint import read_trainer_state
from core.cli import main
from core.runs import RunError, read_metrics
from core.table2 import REPORT_TABLE2, Table2Config, read_table2, row_config


def args(encoder: Path, runs: Path, *extra: str) -> list[str]:
    # Demo data: STS has 240 training pairs -> rrobin 3 iterations x 3 tasks = 9 steps per epoch at batch 64;
    # finetune 5 steps. A checkpoint every 3 steps inside a row.
    return ["table2", "--runs-dir", str(runs), "--rows", "rrobin,finetune", "--encoder", str(encoder),
            "--epochs", "2", "--max-dev", "16", "--checkpoint-every", "3", "--threads", "1", *extra]


def losses(run: Path) -> list[tuple[int, str, float]]:
    return [(r["step"], r["task"], r["loss"]) for r in read_metrics(run) if r["kind"] == "step"]


METRIC_KEYS = ("sst/acc", "para/acc", "sts/pearson", "epochs_done", "state", "batch_size", "lr")


@pytest.fixture(scope="module")
def uninterrupted(tiny_encoder, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("t2") / "ref"
    assert main(args(tiny_encoder, runs)) == 0
    return runs


def test_rows_get_the_reports_settings():
    t = Table2Config(epochs=3)
    assert row_config("rrobin", t).batch_size == 64 and row_config("rrobin+smart", t).batch_size == 16
    ft = row_config("finetune", t)
    assert ft.task == "sst" and ft.eval_all and ft.dropout == 0.3 and ft.encoder_dropout is None and ft.lr is None
    assert row_config("finetune+smart", t).grad_clip_norm(smart=True) == 1.0


def test_table_has_our_rows_and_the_reports(uninterrupted):
    table = read_table2(uninterrupted)
    rows = {r["row"]: r for r in table["rows"]}
    assert list(rows) == ["finetune", "rrobin"]  # the report's order
    for name, r in rows.items():
        assert r["state"] == "finished" and r["epochs_done"] == 2 and r["report"] == REPORT_TABLE2[name]
        assert all(isinstance(r[k], float) for k in ("sst/acc", "para/acc", "sts/pearson", "seconds_per_epoch"))
    assert rows["finetune"]["lr"] == 1e-5 and rows["rrobin"]["batch_size"] == 64
    md = (uninterrupted / "table2.md").read_text()
    assert "| rrobin | " in md and "(0.726)" in md and table["commands"][0].startswith("walkless table2")


def test_killed_mid_row_then_run_again_matches_the_uninterrupted_sweep(uninterrupted, tiny_encoder, tmp_path):
    runs = tmp_path / "runs"
    run_and_kill("step", 5, args(tiny_encoder, runs), tmp_path)  # rrobin, epoch 1; its checkpoint is step 3
    last = json.loads((runs / "rrobin" / "last.json").read_text())
    assert last["step"] == 3 and not (runs / "finetune").exists()
    before_stop = read_trainer_state(runs / "rrobin" / last["path"])["epoch_seconds"]
    assert before_stop > 0
    assert main(args(tiny_encoder, runs)) == 0
    first = next(r for r in read_metrics(runs / "rrobin") if r["kind"] == "epoch")
    assert first["seconds"] >= before_stop  # the resumed epoch counts its time before the kill
    for row in ("rrobin", "finetune"):
        got, ref = losses(runs / row), losses(uninterrupted / row)
        assert [(s, t) for s, t, _ in got] == [(s, t) for s, t, _ in ref]
        for (s, t, a), (_, _, b) in zip(got, ref, strict=True):
            assert a == pytest.approx(b, rel=1e-6, abs=1e-7), f"{row} step {s} ({t})"
    ours = {r["row"]: {k: r[k] for k in METRIC_KEYS} for r in read_table2(runs)["rows"]}
    ref = {r["row"]: {k: r[k] for k in METRIC_KEYS} for r in read_table2(uninterrupted)["rows"]}
    assert ours == ref


def test_finished_rows_are_skipped_and_other_settings_refused(uninterrupted, tiny_encoder, capsys):
    before = {p: p.stat().st_mtime_ns for p in uninterrupted.glob("*/metrics.jsonl")}
    assert main(args(tiny_encoder, uninterrupted)) == 0
    assert "rrobin skipped" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in uninterrupted.glob("*/metrics.jsonl")} == before
    assert main(args(tiny_encoder, uninterrupted, "--max-train", "50")) == 1
    err = capsys.readouterr().err
    assert "rrobin" in err and "max_train" in err


def test_unknown_rows_and_bad_tables_are_clear_errors(tmp_path, capsys):
    assert main(["table2", "--runs-dir", str(tmp_path), "--rows", "rrobin,best"]) == 1
    assert "unknown row 'best'" in capsys.readouterr().err
    (tmp_path / "table2.json").write_text("[]")
    with pytest.raises(RunError, match="not a table2.json"):
        read_table2(tmp_path)


def test_a_stopped_row_in_its_last_epoch_resumes(tiny_encoder, tmp_path):
    """A row stopped inside its only epoch: running again with the same --epochs finishes it."""
    runs = tmp_path / "runs"
    one = ["table2", "--runs-dir", str(runs), "--rows", "rrobin", "--encoder", str(tiny_encoder), "--epochs", "1",
           "--max-dev", "8", "--checkpoint-every", "3", "--threads", "1"]
    run_and_kill("step", 5, one, tmp_path)
    assert main(one) == 0
    row = read_table2(runs)["rows"][0]
    assert row["state"] == "finished" and row["epochs_done"] == 1


def test_a_row_another_process_trains_is_passed_over(tiny_encoder, tmp_path, capsys):
    import os
    import socket

    runs = tmp_path / "runs"
    one = ["table2", "--runs-dir", str(runs), "--rows", "rrobin,finetune", "--encoder", str(tiny_encoder),
           "--epochs", "1", "--max-dev", "8", "--max-steps", "2", "--threads", "1"]
    assert main(one[:4] + ["rrobin"] + one[5:]) == 0
    status = runs / "rrobin" / "status.json"
    st = json.loads(status.read_text())
    status.write_text(json.dumps({**st, "state": "running", "pid": os.getppid(), "host": socket.gethostname()}))
    assert main(one) == 0  # another live process "has" rrobin: the sweep goes on with finetune
    assert "rrobin busy" in capsys.readouterr().err
    rows = {r["row"]: r["state"] for r in read_table2(runs)["rows"]}
    assert rows == {"finetune": "finished", "rrobin": "training"}  # being trained (by the other process)
