"""``walkless predict --all``: the six CS224N submission files, byte-exact headers, skips and argument errors."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from core.cli import main
from core.export import format_value, output_name, submission_lines, write_atomic
from core.tasks import task_file

HEADERS = {"sst": b"id \t Predicted_Sentiment \n", "para": b"id \t Predicted_Is_Paraphrase \n",
           "sts": b"id \t Predicted_Similiary \n"}
SIX = {f"{t}-{s}-output.csv" for t in ("sst", "para", "sts") for s in ("dev", "test")}


def tiny_run(encoder: Path, runs: Path, name: str, *variant: str) -> Path:
    assert main(["train", *variant, "--encoder", str(encoder), "--runs-dir", str(runs), "--name", name,
                 "--epochs", "1", "--batch-size", "4", "--max-train", "8", "--max-dev", "8", "--max-steps", "2",
                 "--lr", "1e-3", "--threads", "1"]) == 0
    return runs / name


@pytest.fixture(scope="module")
def multitask_run(tiny_encoder, tmp_path_factory) -> Path:
    return tiny_run(tiny_encoder, tmp_path_factory.mktemp("runs"), "mt", "--variant", "rrobin")


@pytest.fixture(scope="module")
def sst_run(tiny_encoder, tmp_path_factory) -> Path:
    return tiny_run(tiny_encoder, tmp_path_factory.mktemp("runs"), "sst", "--variant", "finetune", "--task", "sst")


@pytest.fixture
def data(demo_data, tmp_path) -> Path:
    """A copy of the demo data (it has every dev and test-student file), for the tests to remove files from."""
    assert all(task_file(demo_data, t, s).is_file() for t in ("sst", "para", "sts") for s in ("dev", "test-student"))
    return Path(shutil.copytree(demo_data, tmp_path / "data"))


def export(run: Path, data: Path, out: Path) -> int:
    return main(["predict", "--checkpoint", str(run), "--all", "--data-dir", str(data), "--out", str(out)])


def input_ids(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return [row["id"] for row in csv.DictReader(f, delimiter="\t")]


def check_file(path: Path, task: str, ids: list[str]) -> None:
    raw = path.read_bytes()
    assert raw.startswith(HEADERS[task])
    lines = raw.decode().split("\n")
    assert lines[-1] == "" and len(lines) - 2 == len(ids)  # header + one line per input row, final newline
    rows = [line.split(" , ") for line in lines[1:-1]]
    assert all(len(r) == 2 and r[1].endswith(" ") for r in rows)
    assert [r[0] for r in rows] == ids
    values = [r[1][:-1] for r in rows]
    if task == "sts":
        assert all(0.0 <= float(v) <= 5.0 for v in values)
    else:
        assert all(v.isdigit() for v in values)
        assert {int(v) for v in values} <= (set(range(5)) if task == "sst" else {0, 1})


def test_all_writes_the_six_files_in_the_starter_format(multitask_run, data, tmp_path, capsys):
    out = tmp_path / "predictions" / "nested"
    assert export(multitask_run, data, out) == 0
    assert {p.name for p in out.iterdir()} == SIX  # no temporary files left behind
    for task in ("sst", "para", "sts"):
        for split in ("dev", "test-student"):
            check_file(out / output_name(task, split), task, input_ids(task_file(data, task, split)))
    err = capsys.readouterr().err
    assert "step " in err and "epoch " in err and "warning" not in err


def test_a_missing_test_file_is_skipped_with_a_warning(multitask_run, data, tmp_path, capsys):
    missing = task_file(data, "para", "test-student")
    missing.unlink()
    out = tmp_path / "out"
    assert export(multitask_run, data, out) == 0
    assert {p.name for p in out.iterdir()} == SIX - {"para-test-output.csv"}
    check_file(out / "para-dev-output.csv", "para", input_ids(task_file(data, "para", "dev")))
    err = capsys.readouterr().err
    assert f"warning: {missing} not found" in err


def test_sst_only_checkpoint_writes_the_sst_files_and_warns_about_the_others(sst_run, data, tmp_path, capsys):
    out = tmp_path / "out"
    assert export(sst_run, data, out) == 0
    assert {p.name for p in out.iterdir()} == {"sst-dev-output.csv", "sst-test-output.csv"}
    err = capsys.readouterr().err
    assert "warning: the checkpoint has no para head" in err and "warning: the checkpoint has no sts head" in err


def test_nothing_to_write_is_an_error(sst_run, data, tmp_path, capsys):
    for split in ("dev", "test-student"):
        task_file(data, "sst", split).unlink()
    out = tmp_path / "out"
    assert export(sst_run, data, out) == 1
    err = capsys.readouterr().err
    assert "error: nothing to export" in err and not out.exists()


def test_outputs_are_replaced_whole(tmp_path):
    path = tmp_path / "sts-dev-output.csv"
    path.write_text("old content that is longer than the new one\n" * 10)
    write_atomic(path, submission_lines("sts", ["a1", "b2"], [3.14159, 5.0]))
    assert path.read_bytes() == b"id \t Predicted_Similiary \na1 , 3.1416 \nb2 , 5.0 \n"
    assert [p.name for p in tmp_path.iterdir()] == ["sts-dev-output.csv"]
    assert format_value("para", 1.0) == "1" and format_value("sst", 4.0) == "4"


@pytest.mark.parametrize("args, message", [
    (["--all", "--task", "sst", "--out", "o"], "--all cannot be combined with --task"),
    (["--all", "--input", "i", "--output", "o", "--out", "o"], "--all cannot be combined with --input, --output"),
    (["--all"], "--all requires --out"),
    (["--task", "sst", "--input", "i"], "missing --output"),
    ([], "missing --task, --input, --output"),
    (["--task", "sst", "--input", "i", "--output", "o", "--out", "d"], "--out and --data-dir only go with --all"),
])
def test_mixed_or_incomplete_modes_are_argparse_errors(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["predict", "--checkpoint", str(tmp_path / "no-such-run"), *args])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
