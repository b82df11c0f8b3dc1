"""The headless CLI end to end on the demo data with a tiny encoder: train, eval, predict, errors."""

from __future__ import annotations

import csv
import json

import pytest

from core.cli import main
from core.runs import read_metrics


def train_args(tiny_encoder, runs, name, *extra):
    return ["train", "--encoder", str(tiny_encoder), "--runs-dir", str(runs), "--name", name, "--epochs", "3", "--dropout", "0.1",
            "--batch-size", "16", "--lr", "1e-3", "--log-every", "2", *extra]


@pytest.fixture(scope="module")
def sst_run(tiny_encoder, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    assert main(train_args(tiny_encoder, runs, "ft", "--variant", "finetune", "--task", "sst")) == 0
    return runs / "ft"


def test_train_writes_a_complete_run_folder(sst_run):
    config = json.loads((sst_run / "config.json").read_text())
    assert config["variant"] == "finetune" and config["tasks"] == ["sst"] and config["epochs"] == 3
    assert config["data_sizes"]["sst"]["train"] == 300
    assert json.loads((sst_run / "status.json").read_text())["state"] == "finished"
    recs = read_metrics(sst_run)
    epochs = [r for r in recs if r["kind"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and all(e["seconds"] > 0 for e in epochs)
    assert 0.0 <= epochs[-1]["dev"]["sst/acc"] <= 1.0
    report = [r for r in recs if r["kind"] == "report"][-1]
    assert len(report["confusion"]) == 5 and len(report["f1"]) == 5
    best = json.loads((sst_run / "best.json").read_text())
    ckpt = sst_run / best["path"]
    assert {"model.safetensors", "config.json", "walkless.json", "vocab.txt"} <= {p.name for p in ckpt.iterdir()}
    assert not list(sst_run.rglob("*.pt")) and not list(sst_run.rglob("*.bin"))


def test_a_runs_config_json_starts_a_new_run_beside_it_with_the_same_settings(sst_run, capsys):
    """`walkless train --config RUN/config.json` is "a new run from this one": every option comes from the file,
    the flags given override it, and the new run lands next to the old one under a new name."""
    assert main(["train", "--config", str(sst_run / "config.json"), "--epochs", "1", "--max-steps", "2"]) == 0
    new = [p for p in sst_run.parent.iterdir() if p.is_dir() and p != sst_run]
    assert len(new) == 1 and new[0].name.startswith("finetune-")
    old_config, new_config = (json.loads((p / "config.json").read_text()) for p in (sst_run, new[0]))
    changed = {k for k in old_config if old_config[k] != new_config.get(k)}
    assert changed == {"name", "epochs", "max_steps"}
    assert (new_config["epochs"], new_config["max_steps"], new_config["lr"]) == (1, 2, 1e-3)


def test_training_loss_goes_down(sst_run):
    losses = [r["loss"] for r in read_metrics(sst_run) if r["kind"] == "step"]
    assert len(losses) >= 8
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3


def test_pretrain_keeps_the_encoder_frozen(tiny_encoder, tmp_path):
    from safetensors.torch import load_file

    assert main(train_args(tiny_encoder, tmp_path, "pre", "--variant", "pretrain", "--task", "cfimdb")) == 0
    ckpt = tmp_path / "pre" / json.loads((tmp_path / "pre" / "best.json").read_text())["path"]
    after = load_file(str(ckpt / "model.safetensors"))
    before = load_file(str(tiny_encoder / "model.safetensors"))
    assert all((after["bert." + k] == v).all() for k, v in before.items())
    assert "cfimdb_classifier.weight" in after


def test_eval_prints_metrics(sst_run, capsys):
    assert main(["eval", "--checkpoint", str(sst_run), "--json", str(sst_run / "eval.json")]) == 0
    out = json.loads((sst_run / "eval.json").read_text())
    assert "sst/acc" in out["metrics"] and len(out["reports"]["sst"]["confusion"]) == 5
    best = json.loads((sst_run / "best.json").read_text())
    assert f"step {best['step']}, epoch {best['epoch']}" in capsys.readouterr().err  # which checkpoint was scored


def test_predict_writes_one_row_per_valid_input_row_in_order(sst_run, demo_data, tmp_path):
    src = tmp_path / "in.csv"
    lines = (demo_data / "ids-sst-test-student.csv").read_text().splitlines()
    lines.insert(3, "99\tbroken-row-with-no-sentence\t")  # skipped, counted
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "pred.tsv"
    assert main(["predict", "--checkpoint", str(sst_run), "--task", "sst", "--input", str(src),
                 "--output", str(out)]) == 0
    rows = list(csv.reader(out.open(), delimiter="\t"))
    assert rows[0] == ["id", "prediction"]
    expected_ids = [r.split("\t")[1] for r in lines[1:] if not r.startswith("99\t")]
    assert [r[0] for r in rows[1:]] == expected_ids
    assert all(r[1] in {"0", "1", "2", "3", "4"} for r in rows[1:])


def test_errors_exit_non_zero_with_a_message(tiny_encoder, tmp_path, capsys):
    assert main(["train", "--variant", "nonsense", "--encoder", str(tiny_encoder), "--runs-dir", str(tmp_path)]) != 0
    assert "unknown base" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(tmp_path / "missing")]) != 0
    assert main(["train", "--data-dir", str(tmp_path), "--encoder", str(tiny_encoder),
                 "--runs-dir", str(tmp_path / "r")]) != 0
    assert "ids-sst-train.csv" in capsys.readouterr().err


def test_compare_says_which_values_it_shows(sst_run, capsys):
    assert main(["compare", "--markdown", str(sst_run)]) == 0
    assert "each column's best dev value over the epochs" in capsys.readouterr().out
    assert main(["compare", "--markdown", "--best-checkpoint", str(sst_run)]) == 0
    out = capsys.readouterr().out
    best = json.loads((sst_run / "best.json").read_text())
    assert "best checkpoint" in out and f"{best['dev']['sst/acc']:.3f}" in out
