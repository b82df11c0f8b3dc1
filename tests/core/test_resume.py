"""``--resume``: a killed or stopped run continues from its last checkpoint and matches an uninterrupted run
step for step (CPU), with the optimizer, SMART teacher, schedule position and RNG states restored."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support.killable import run_and_kill

from core.cli import main
from core.config import TrainConfig
from core.runs import RunError, read_metrics
from core.train import resume, train

# rrobin+smart: three heads, per-task steps, the SMART teacher; dropout on, so the torch RNG matters.
# 12 examples / batch 4 -> 3 iterations x 3 tasks = 9 steps per epoch; a checkpoint every 3 steps at
# iteration ends (steps 3, 6, 12, 15) and at each epoch end (9, 18).
CFG = dict(variant="rrobin+smart", batch_size=4, max_train=12, max_dev=8, lr=1e-3, dropout=0.1, seed=3,
           log_every=1, checkpoint_every=3, threads=1)




def cli_args(encoder: Path, runs: Path, name: str, epochs: int) -> list[str]:
    return ["train", "--variant", CFG["variant"], "--encoder", str(encoder), "--runs-dir", str(runs),
            "--name", name, "--epochs", str(epochs), "--batch-size", "4", "--max-train", "12", "--max-dev", "8",
            "--lr", "1e-3", "--dropout", "0.1", "--seed", "3", "--log-every", "1", "--checkpoint-every", "3",
            "--threads", "1"]


def steps(run: Path) -> list[tuple[int, str, float]]:
    return [(r["step"], r["task"], r["loss"]) for r in read_metrics(run) if r["kind"] == "step"]


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    last = json.loads((run / "last.json").read_text())
    return load_file(str(run / last["path"] / "model.safetensors"))


@pytest.fixture(scope="module")
def reference(tiny_encoder, tmp_path_factory) -> Path:
    """The same training, 2 epochs, never interrupted."""
    runs = tmp_path_factory.mktemp("reference")
    return train(TrainConfig(encoder=str(tiny_encoder), runs_dir=str(runs), name="ref", epochs=2, **CFG))


def test_killed_run_resumes_and_matches_uninterrupted_step_for_step(reference, tiny_encoder, tmp_path):
    runs = tmp_path / "runs"
    run = runs / "killed"
    # Started for 1 epoch, SIGKILLed after step 5 (mid epoch; its last checkpoint is step 3), then resumed
    # with --epochs 2: the resumed run must be the 2-epoch reference, step for step.
    run_and_kill("step", 5, cli_args(tiny_encoder, runs, "killed", epochs=1), tmp_path)
    assert json.loads((run / "last.json").read_text())["step"] == 3
    assert max(s for s, _, _ in steps(run)) == 5  # the killed run logged steps past its checkpoint
    assert json.loads((run / "status.json").read_text())["state"] == "running"  # it had no chance to say

    assert resume(run, epochs=2) == run

    ref, got = steps(reference), steps(run)
    assert [(s, t) for s, t, _ in got] == [(s, t) for s, t, _ in ref]  # every step once: 4 and 5 were redone
    assert len(ref) == 18 and {t for _, t, _ in ref} == {"sst", "para", "sts"}
    for (s, t, a), (_, _, b) in zip(got, ref, strict=True):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-7), f"step {s} ({t}): resumed {a} vs uninterrupted {b}"
    dev = lambda r: [e["dev"] for e in read_metrics(r) if e["kind"] == "epoch"]  # noqa: E731
    assert dev(run) == dev(reference) and len(dev(run)) == 2
    a, b = final_weights(run), final_weights(reference)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in a)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 18 and status["resumed_from"] == "step-00000003"
    assert json.loads((run / "config.json").read_text())["epochs"] == 2


def test_resume_without_the_rng_state_would_diverge(reference, tiny_encoder, tmp_path):
    """The comparison above is sharp: restoring everything but the torch RNG (dropout, SMART noise)
    already changes the losses after the checkpoint."""
    run = train(TrainConfig(encoder=str(tiny_encoder), runs_dir=str(tmp_path), name="r", epochs=1, **CFG))
    state_file = run / "checkpoints" / "step-00000006" / "trainer_state.json"
    assert state_file.exists()  # kept: keep_last=2 keeps steps 6 and 9
    (run / "last.json").write_text(json.dumps({"path": "checkpoints/step-00000006"}))
    import core.trainer as T

    load_state = T.Trainer.load_state

    def without_rng(self, state):
        load_state(self, state)
        torch.manual_seed(999)  # a different dropout stream than the uninterrupted run had

    T.Trainer.load_state = without_rng
    try:
        resume(run)
    finally:
        T.Trainer.load_state = load_state
    got = {s: loss for s, _, loss in steps(run)}
    ref = {s: loss for s, _, loss in steps(reference) if s <= 9}
    assert all(got[s] == pytest.approx(ref[s], rel=1e-6) for s in range(1, 7))
    assert any(got[s] != pytest.approx(ref[s], rel=1e-6) for s in range(7, 10))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_signal_saves_a_checkpoint_and_resume_finishes(tiny_encoder, tmp_path, sig):
    cfg = TrainConfig(variant="finetune", task="sst", encoder=str(tiny_encoder), runs_dir=str(tmp_path), name="t",
                      epochs=1, batch_size=4, max_train=16, max_dev=8, lr=1e-3, log_every=1, threads=1)

    def stop_after_second(epoch: int, it: int, n: int) -> None:
        if it == 2:
            os.kill(os.getpid(), sig)  # SIGTERM: what `kill PID` or the app's stop button sends

    run = train(cfg, progress=stop_after_second)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "stopped" and "--resume" in status["message"]
    assert json.loads((run / "last.json").read_text())["step"] == 2  # saved mid-epoch, no epoch record
    assert not [r for r in read_metrics(run) if r["kind"] == "epoch"]
    assert main(["train", "--resume", str(run)]) == 0  # the CLI path
    assert [s for s, _, _ in steps(run)] == [1, 2, 3, 4]
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


def test_resume_refuses_what_it_cannot_continue(tiny_encoder, tmp_path, capsys):
    with pytest.raises(RunError, match="not a run folder"):
        resume(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(TrainConfig(encoder=str(tiny_encoder)).to_dict()))
    with pytest.raises(RunError, match="no checkpoint yet"):
        resume(tmp_path)
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope" in err and "not a run folder" in err
