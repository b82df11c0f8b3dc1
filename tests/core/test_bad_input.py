"""Bad input gets a clear one-line message naming the file, row or field, and loses nothing: data files,
encoder and checkpoint folders, a NaN loss, a runs folder that cannot be written."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch

import core.trainer
from core.checkpoint import load_checkpoint
from core.cli import main
from core.config import TrainConfig
from core.data import DataError, load_task, read_examples
from core.encoders import CheckpointError, load_pretrained, load_tokenizer
from core.runs import RunError, create_run_dir
from core.tiny import write_tiny_encoder
from core.train import train

SST_HEADER = "\tid\tsentence\tsentiment\n"
STS_HEADER = "\tid\tsentence1\tsentence2\tsimilarity\n"




def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def one_line_error(capsys) -> str:
    """The CLI's error: one line, the last on stderr (after any progress bar)."""
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert errors == [len(lines) - 1], lines
    return lines[-1]


# --- data files -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("", r"empty file \(expected a tab-separated header row\)"),
    (SST_HEADER, r"no data rows \(only a header\)"),
    (",id,sentence,sentiment\n0,a,Fine.,3\n", r"missing column 'id'.*\(is the file tab-separated\?\)"),
    (SST_HEADER + '0\ta\t"An unclosed quote.\t3\n' + "1\tb\tMore text.\t2\n" * 15000,
     r"line \d+: unreadable as tab-separated text \(field larger than field limit"),
    (SST_HEADER + "0\ta\tFine.\t7\n1\tb\tBad.\t9\n", r"no valid rows; skipped 2: 2 sentiment outside 0\.\.4 "
                                                     r"\(first at line 2: '7'\)"),
], ids=["empty", "header-only", "commas", "unclosed-quote", "labels-out-of-range"])
def test_unusable_data_files_are_one_clear_error(tmp_path, text, message):
    f = write(tmp_path / "ids-sst-train.csv", text)
    with pytest.raises(DataError, match=message) as e:
        read_examples(f, "sst")
    assert str(e.value).startswith(str(f)) and "\n" not in str(e.value)


def test_bad_rows_are_skipped_and_named_in_one_warning(tmp_path, caplog):
    f = write(tmp_path / "sts-train.csv", (STS_HEADER
                                           + "0\ta\tA man plays.\tA man sings.\t2.5\n"
                                           + "1\tb\tA cat.\tA dog.\t9\n"  # score out of range
                                           + "2\tc\tOne.\tTwo.\tfive\n").encode()  # not a number
              + b"3\td\tCaf\xe9 au lait.\tCoffee.\t4.0\n"  # a Latin-1 byte: not UTF-8
              + b"4\te\tA bird.\tA plane.\t1.0\n")
    with caplog.at_level(logging.WARNING):
        ex = read_examples(f, "sts")
    assert [e.id for e in ex] == ["a", "e"]
    [warning] = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert warning.startswith(f"{f}: skipped 3 malformed rows")
    assert "similarity outside 0..5 (first at line 3: '9')" in warning
    assert "similarity not a number (first at line 4: 'five')" in warning
    assert "non-UTF-8 bytes in sentence1 (first at line 5)" in warning


def test_utf8_with_a_byte_order_mark_reads(tmp_path):
    f = write(tmp_path / "ids-sst-dev.csv", b"\xef\xbb\xbfid\tsentence\tsentiment\na\tFine.\t3\n")
    assert [e.id for e in read_examples(f, "sst")] == ["a"]


def test_long_sentences_are_cut_counted_and_located(tmp_path, tiny_encoder, caplog):
    write(tmp_path / "ids-sst-train.csv", SST_HEADER + "0\ta\tshort one\t1\n" + "1\tb\t" + "very " * 700 + "long\t2\n")
    with caplog.at_level(logging.WARNING):
        data = load_task(tmp_path, "sst", "train", load_tokenizer(tiny_encoder), max_length=64)
    assert data.truncated == 1 and len(data.tokens_a[1]) == 64 and len(data.tokens_a[0]) < 64
    assert any("1 sentences longer than 64 tokens were truncated (first at line 3)" in r.getMessage()
               for r in caplog.records)


def test_cli_names_the_bad_data_file_in_one_line(tiny_encoder, tmp_path, capsys, demo_data):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    write(data / "sts-train.csv", STS_HEADER)
    assert main(["train", "--variant", "rrobin", "--encoder", str(tiny_encoder), "--data-dir", str(data),
                 "--runs-dir", str(tmp_path / "runs")]) == 1
    err = one_line_error(capsys)
    assert f"{data / 'sts-train.csv'}: no data rows (only a header)" in err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())  # no half-made run


# --- encoder and checkpoint folders ---------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_run(tiny_encoder, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    return train(TrainConfig(variant="finetune", task="sst", encoder=str(tiny_encoder), runs_dir=str(runs),
                             name="ok", epochs=1, batch_size=8, max_train=16, max_dev=8, lr=1e-3, threads=1))


def checkpoint_copy(run: Path, dst: Path) -> Path:
    src = run / json.loads((run / "best.json").read_text())["path"]
    return Path(shutil.copytree(src, dst))


def test_checkpoint_missing_files(trained_run, tmp_path, capsys):
    for name, message in [("walkless.json", r"walkless\.json: missing"), ("config.json", r"config\.json: missing"),
                          ("model.safetensors", r"model\.safetensors: missing"),
                          ("vocab.txt", r"vocab\.txt: missing")]:
        ckpt = checkpoint_copy(trained_run, tmp_path / name)
        (ckpt / name).unlink()
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(ckpt)
    # without a manifest (an older or hand-made folder) the files' own checks still speak
    ckpt = checkpoint_copy(trained_run, tmp_path / "nomanifest")
    (ckpt / "manifest.json").unlink()
    for f in ("vocab.txt", "tokenizer.json"):
        (ckpt / f).unlink()
    with pytest.raises(CheckpointError, match=r"no tokenizer \(neither vocab\.txt nor tokenizer\.json\)"):
        load_checkpoint(ckpt)
    assert main(["eval", "--checkpoint", str(tmp_path / "model.safetensors")]) == 1
    assert "model.safetensors: missing" in one_line_error(capsys)


def test_truncated_checkpoint(trained_run, tmp_path):
    ckpt = checkpoint_copy(trained_run, tmp_path / "c")
    (ckpt / "manifest.json").unlink()  # so that safetensors itself must notice
    w = ckpt / "model.safetensors"
    w.write_bytes(w.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: truncated or corrupt"):
        load_checkpoint(ckpt)


def test_checkpoint_or_encoder_from_another_encoder(trained_run, tmp_path):
    other = write_tiny_encoder(tmp_path / "wide", hidden=48)
    ckpt = checkpoint_copy(trained_run, tmp_path / "c")
    (ckpt / "manifest.json").unlink()
    shutil.copy(other / "config.json", ckpt / "config.json")  # a config that does not fit the weights
    with pytest.raises(CheckpointError, match=r"model\.safetensors: does not match the model .*another encoder"):
        load_checkpoint(ckpt)
    enc = Path(shutil.copytree(other, tmp_path / "mislabelled"))  # weights 48 wide, config says 32
    (enc / "config.json").write_text(json.dumps({**json.loads((enc / "config.json").read_text()), "hidden_size": 32,
                                                 "intermediate_size": 128}))
    with pytest.raises(CheckpointError, match=r"mislabelled: weight \S+ has shape \([\d, ]+\), expected \([\d, ]+\)"):
        load_pretrained(enc)


def test_a_new_run_refuses_an_unwritable_runs_folder(tiny_encoder, tmp_path, capsys):
    blocker = write(tmp_path / "a-file", "x")
    with pytest.raises(RunError, match=r"runs folder .*a-file/runs: cannot create"):
        create_run_dir(blocker / "runs", None)
    assert main(["train", "--encoder", str(tiny_encoder), "--runs-dir", str(blocker / "runs"), "--max-train", "8"]) == 1
    assert "a-file/runs: cannot create" in one_line_error(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_runs_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(RunError, match="not writable"):
            create_run_dir(ro, None)
    finally:
        ro.chmod(0o700)


# --- a NaN loss -----------------------------------------------------------------------------------

def test_nan_loss_stops_naming_step_and_task_and_keeps_the_last_good_checkpoint(tiny_encoder, tmp_path, capsys,
                                                                               monkeypatch):
    real = core.trainer.task_loss
    calls = {"n": 0}

    def poisoned(task, out, labels, label_smoothing=0.0):
        calls["n"] += 1
        loss = real(task, out, labels, label_smoothing)
        return loss * float("nan") if calls["n"] == 5 else loss  # step 5: NaN grads -> NaN weights

    monkeypatch.setattr(core.trainer, "task_loss", poisoned)
    # 4 steps per epoch; checkpoints at steps 2, 4 (epoch end), 6, ...; losses reach the host every 4 steps,
    # so the NaN of step 5 is first seen when step 6 is about to be saved: that save must not happen
    argv = ["train", "--variant", "finetune", "--encoder", str(tiny_encoder), "--runs-dir", str(tmp_path),
            "--name", "nan", "--epochs", "3", "--batch-size", "4", "--max-train", "16", "--max-dev", "8",
            "--lr", "1e-3", "--log-every", "4", "--checkpoint-every", "2", "--threads", "1"]
    assert main(argv) == 1
    err = one_line_error(capsys)
    run = tmp_path / "nan"
    assert f"loss is nan at step 5 on task sst; training stopped, the last good checkpoint is kept " \
           f"({run / 'checkpoints' / 'step-00000004'})" in err
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "step 5 on task sst" in status["message"]
    assert json.loads((run / "last.json").read_text())["step"] == 4  # nothing saved after the NaN
    assert not (run / "checkpoints" / "step-00000006").exists()
    model, meta, _ = load_checkpoint(run / "checkpoints" / "step-00000004")
    assert all(torch.isfinite(p).all() for p in model.parameters())
