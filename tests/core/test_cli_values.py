"""The CLI's values (issue 41, item 8): absurd learning rates refused before a run folder exists, output into a
missing folder named, a file given as a checkpoint said to be one, errors on one line with no blank line first,
and a stopped run reported as stopped at its checkpoint's step."""

from __future__ import annotations

import json
import os

import pytest

from core.cli import main, run_outcome
from core.config import TrainConfig
from core.train import train


@pytest.mark.parametrize("lr", ["inf", "nan", "-inf", "1e30", "2", "0"])
def test_an_absurd_learning_rate_is_refused_before_any_run_folder(lr, tiny_encoder, tmp_path, capsys):
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as e:  # argparse refuses the value itself: exit status 2
        main(["train", "--encoder", str(tiny_encoder), "--runs-dir", str(runs), f"--lr={lr}"])
    assert e.value.code != 0
    assert not runs.exists()
    err = capsys.readouterr().err
    assert "--lr" in err and ("finite" in err if lr in ("inf", "nan", "-inf") else "in (0, 1]" in err)


def test_a_config_file_with_an_infinite_lr_is_refused_too(tiny_encoder, tmp_path, capsys):
    cfg = TrainConfig(encoder=str(tiny_encoder), runs_dir=str(tmp_path / "runs")).to_dict()
    (tmp_path / "c.json").write_text(json.dumps(cfg).replace('"lr": null', '"lr": 1e999'))  # JSON's inf
    assert main(["train", "--config", str(tmp_path / "c.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --lr inf: must be a finite number") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_output_into_a_missing_folder_names_the_folder_in_one_line(tmp_path, capsys):
    missing = tmp_path / "MISSING"
    # checked before the checkpoint is even loaded (this one does not exist either)
    assert main(["predict", "--checkpoint", str(tmp_path / "no-run"), "--task", "sst", "--input", "in.csv",
                 "--output", str(missing / "x.tsv")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and f"{missing} does not exist" in err
    assert ".tmp" not in err and not missing.exists()


def test_a_file_given_as_a_checkpoint_says_it_is_a_file(tmp_path, capsys):
    f = tmp_path / "model.txt"
    f.write_text("not a checkpoint")
    assert main(["eval", "--checkpoint", str(f)]) == 1
    err = capsys.readouterr().err
    assert "a file, not a run or checkpoint folder" in err and "no such" not in err


def test_errors_have_no_blank_line_before_them(tiny_encoder, tmp_path, capsys):
    """A run that fails before its first step (here: no data) prints its error as the first line."""
    assert main(["train", "--data-dir", str(tmp_path), "--encoder", str(tiny_encoder),
                 "--runs-dir", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    last = err.splitlines()[-1]
    assert last.startswith("error:") and "ids-sst-train.csv" in last
    assert "\n\nerror:" not in err and not err.startswith("\n")


def test_a_stopped_run_reports_the_step_of_its_checkpoint(tiny_encoder, tmp_path):
    """status.json is rewritten every few iterations: a stop in between must still say the checkpoint's step,
    and the CLI's last line says stopped (not finished) with the resume command."""
    cfg = TrainConfig(variant="finetune", task="sst", encoder=str(tiny_encoder), runs_dir=str(tmp_path), name="t",
                      epochs=1, batch_size=4, max_train=40, max_dev=8, lr=1e-3, log_every=1, threads=1)

    def stop_at_third(epoch: int, it: int, n: int) -> None:
        if it == 3:  # status.json was last written at the first iteration
            os.kill(os.getpid(), 15)

    run = train(cfg, progress=stop_at_third)
    status = json.loads((run / "status.json").read_text())
    last = json.loads((run / "last.json").read_text())
    assert status["state"] == "stopped" and status["step"] == last["step"] == 3
    assert last["path"].endswith("step-00000003")
    line = run_outcome(run)
    assert "stopped at step 3" in line and f"--resume {run}" in line and "finished" not in line


def test_none_is_a_name_or_a_folder_but_unsets_a_number_or_a_choice():
    from core.config import parse_option

    assert parse_option("name", "none") == "none" and parse_option("data_dir", "None") == "None"
    assert parse_option("name", " ") is None  # empty: the default (a generated name)
    assert parse_option("max_train", "none") is None and parse_option("autocast", "none") is None
