"""Checkpoints: atomic (a SIGKILL or a full disk mid-save leaves the previous one intact), verifiable,
pruned to the last k and the best, and trainer state stored as safetensors + JSON."""

from __future__ import annotations

import errno
import json
import random
from pathlib import Path

import pytest
import torch
from support.killable import run_and_kill

import core.checkpoint as C
from core.checkpoint import (
    load_checkpoint,
    pack_state,
    point_to,
    prune_checkpoints,
    remove_partial_saves,
    save_checkpoint,
    unpack_state,
    verify_checkpoint,
)
from core.encoders import CheckpointError, load_pretrained
from core.multitask import HeadConfig, MultitaskBert
from core.runs import read_metrics
from core.train import resume, resume_checkpoint


def cli_args(encoder: Path, runs: Path, name: str) -> list[str]:
    """9 steps (3 iterations of rrobin), checkpoints at steps 3, 6 and 9."""
    return ["train", "--variant", "rrobin", "--encoder", str(encoder), "--runs-dir", str(runs), "--name", name,
            "--epochs", "1", "--batch-size", "4", "--max-train", "12", "--max-dev", "8", "--lr", "1e-3",
            "--log-every", "1", "--checkpoint-every", "3", "--threads", "1"]


def small_model(encoder: Path, seed: int = 0) -> MultitaskBert:
    torch.manual_seed(seed)
    return MultitaskBert(load_pretrained(encoder), HeadConfig(tasks=("sst", "sts")))


def test_killed_while_saving_keeps_the_previous_checkpoint(tiny_encoder, tmp_path):
    runs = tmp_path / "runs"
    run = runs / "k"
    # a real training process, SIGKILLed after writing the model of checkpoint step-6 but before its
    # trainer state, manifest and rename (see tests/support/killable.py)
    run_and_kill("save", 6, cli_args(tiny_encoder, runs, "k"), tmp_path)
    ckpts = run / "checkpoints"
    partial = [p for p in ckpts.iterdir() if p.name.startswith(".tmp-step-00000006")]
    assert partial and (partial[0] / "model.safetensors").exists()  # killed half-way, for real
    assert not (ckpts / "step-00000006").exists()
    last = json.loads((run / "last.json").read_text())
    assert last["path"] == "checkpoints/step-00000003"
    verify_checkpoint(run / last["path"])  # every file there with its recorded size and SHA-256
    model, meta, _ = load_checkpoint(run / last["path"])
    assert meta["step"] == 3 and not meta["epoch_done"]
    # and it resumes: the partial folder is cleaned up, the run finishes its epoch
    resume(run)
    assert not [p for p in ckpts.iterdir() if p.name.startswith(".")]
    assert [r["step"] for r in read_metrics(run) if r["kind"] == "step"] == list(range(1, 10))
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


def test_full_disk_mid_save_raises_and_leaves_no_trace(tiny_encoder, tmp_path, monkeypatch):
    model = small_model(tiny_encoder)
    good = save_checkpoint(tmp_path, "step-00000001", model, {"step": 1}, tiny_encoder)
    point_to(tmp_path, "last", good, step=1)
    real = C.save_file

    def disk_full(tensors, filename, *a, **k):
        real(tensors, filename, *a, **k)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(C, "save_file", disk_full)
    with pytest.raises(CheckpointError, match=r"step-00000002 failed \(No space left on device\); the previous"):
        save_checkpoint(tmp_path, "step-00000002", model, {"step": 2}, tiny_encoder)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000001"]
    verify_checkpoint(good)
    assert load_checkpoint(tmp_path)[1]["step"] == 1


def test_resaving_a_step_replaces_it_whole(tiny_encoder, tmp_path):
    a, b = small_model(tiny_encoder, 0), small_model(tiny_encoder, 1)
    save_checkpoint(tmp_path, "step-00000005", a, {"step": 5}, tiny_encoder)
    ckpt = save_checkpoint(tmp_path, "step-00000005", b, {"step": 5}, tiny_encoder)
    loaded = load_checkpoint(ckpt)[0]
    assert torch.equal(loaded.sst_classifier.weight, b.sst_classifier.weight)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-00000005"]


def test_verify_finds_truncated_and_corrupt_files(tiny_encoder, tmp_path):
    ckpt = save_checkpoint(tmp_path, "step-00000001", small_model(tiny_encoder), {"step": 1}, tiny_encoder,
                           extra={"x": torch.ones(3)}, extra_meta={"format": 1})
    weights = ckpt / "model.safetensors"
    original = weights.read_bytes()
    data = bytearray(original)
    data[-1] ^= 0xFF  # one flipped bit: same size, still parses
    weights.write_bytes(bytes(data))
    verify_checkpoint(ckpt, hashes=False)  # sizes alone cannot see it
    with pytest.raises(CheckpointError, match=r"model\.safetensors: content does not match its SHA-256"):
        verify_checkpoint(ckpt)
    weights.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: \d+ bytes, expected \d+ \(truncated\?\)"):
        load_checkpoint(ckpt)
    weights.write_bytes(original)
    verify_checkpoint(ckpt)
    (ckpt / "trainer_state.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"trainer_state\.safetensors: missing"):
        verify_checkpoint(ckpt)


def test_resume_skips_a_damaged_last_checkpoint(tiny_encoder, tmp_path):
    model = small_model(tiny_encoder)
    state = {"format": 1, "step": 1}
    tensors: dict = {}
    tree = pack_state(state, "state", tensors)
    older = save_checkpoint(tmp_path, "step-00000001", model, {"step": 1}, tiny_encoder, tensors, tree)
    newer = save_checkpoint(tmp_path, "step-00000002", model, {"step": 2}, tiny_encoder, tensors, tree)
    point_to(tmp_path, "last", newer)
    assert resume_checkpoint(tmp_path) == newer
    (newer / "trainer_state.json").write_text("{trunc")
    assert resume_checkpoint(tmp_path) == older


def test_prune_keeps_the_last_k_and_the_best(tiny_encoder, tmp_path):
    model = small_model(tiny_encoder)
    names = [f"step-{i:08d}" for i in range(1, 7)]
    for n in names:
        ckpt = save_checkpoint(tmp_path, n, model, {}, tiny_encoder)
        if n == "step-00000002":
            point_to(tmp_path, "best", ckpt)
        point_to(tmp_path, "last", ckpt)
        prune_checkpoints(tmp_path, keep_last=2)
    left = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert left == ["step-00000002", "step-00000005", "step-00000006"]
    (tmp_path / "checkpoints" / ".tmp-step-00000007-123").mkdir()
    assert [p.name for p in remove_partial_saves(tmp_path)] == [".tmp-step-00000007-123"]


def test_trainer_state_round_trips_without_pickle(tiny_encoder):
    model = small_model(tiny_encoder)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.sst_classifier.weight.sum().backward()
    opt.step()
    state = {"optimizer": opt.state_dict(), "rng": random.Random(5).getstate(), "torch_rng": torch.get_rng_state(),
             "best": float("-inf"), "plan": None, "ids": {3: "a", "b": (1, 2.5)}}
    tensors: dict[str, torch.Tensor] = {}
    tree = pack_state(state, "state", tensors)
    back = unpack_state(json.loads(json.dumps(tree)), tensors)  # through JSON text, as on disk
    assert back["rng"] == state["rng"] and back["ids"] == state["ids"] and back["best"] == float("-inf")
    assert torch.equal(back["torch_rng"], state["torch_rng"])
    opt2 = torch.optim.AdamW(small_model(tiny_encoder).parameters(), lr=1e-3)
    opt2.load_state_dict(back["optimizer"])
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    assert all(torch.equal(s1["state"][i][k], s2["state"][i][k]) for i in s1["state"] for k in s1["state"][i])
    with pytest.raises(TypeError, match="without pickle"):
        pack_state({"f": object()}, "state", {})


def test_average_writes_the_mean_of_the_weights_as_a_loadable_checkpoint(tiny_encoder, tmp_path, capsys):
    from core.checkpoint import average_checkpoints
    from core.cli import main

    models = [small_model(tiny_encoder, seed) for seed in (0, 1, 2)]
    for m in models:  # the encoder starts from the same weights: move it apart, as training would
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p))
    (tmp_path / "run").mkdir()
    saved = [save_checkpoint(tmp_path / "run", f"step-{i}", m, {"step": i, "epoch": i, "variant": "rrobin"},
                             tiny_encoder) for i, m in enumerate(models)]
    out = average_checkpoints(saved, tmp_path / "avg")
    verify_checkpoint(out)
    avg, meta, tok = load_checkpoint(out)
    states = [m.state_dict() for m in models]
    for k, v in avg.state_dict().items():
        assert torch.allclose(v, sum(s[k] for s in states) / 3, atol=1e-6), k
    assert meta["averaged"] == [str(p) for p in saved] and meta["variant"] == "rrobin" and tok is not None
    assert not (out / C.STATE_JSON).exists()  # weights for scoring only: nothing to resume
    with pytest.raises(ValueError, match="exists"):
        average_checkpoints(saved, out)
    with pytest.raises(ValueError, match="at least two"):
        average_checkpoints(saved[:1], tmp_path / "one")
    other = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(tasks=("sst", "para", "sts")))
    odd = save_checkpoint(tmp_path / "run", "odd", other, {"step": 9}, tiny_encoder)
    with pytest.raises(ValueError, match="other heads"):
        average_checkpoints([saved[0], odd], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    assert main(["average", str(saved[0]), str(saved[1]), "--out", str(tmp_path / "cli")]) == 0
    assert "wrote the average of 2 checkpoints" in capsys.readouterr().err
    pair, _, _ = load_checkpoint(tmp_path / "cli")
    w = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.allclose(pair.state_dict()[w], (states[0][w] + states[1][w]) / 2, atol=1e-6)
