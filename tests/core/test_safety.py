"""No pickles: checkpoints are safetensors + JSON, and a foreign ``.bin``/``.pt`` is read with
``weights_only=True``, so a crafted pickle that would run code is refused."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from core.checkpoint import pack_state, save_checkpoint
from core.encoders import CheckpointError, load_pretrained, load_torch_file
from core.multitask import HeadConfig, MultitaskBert


class Payload:
    """Unpickling this calls ``os.mkdir(path)``: a stand-in for any code an attacker would run."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def crafted_bin(path: Path, marker: Path, tiny_encoder: Path) -> Path:
    """A real-looking BERT state dict with the payload tucked in."""
    from safetensors.torch import load_file

    sd: dict = load_file(str(tiny_encoder / "model.safetensors"))
    sd["cls.predictions.bias"] = Payload(marker)
    torch.save(sd, path)
    return path


def test_the_crafted_pickle_is_live(tmp_path, tiny_encoder):
    """Control: loaded the unsafe way, the file runs its code. The tests below show we never do that."""
    marker = tmp_path / "pwned"
    f = crafted_bin(tmp_path / "evil.bin", marker, tiny_encoder)
    torch.load(f, weights_only=False)
    assert marker.is_dir()


def test_a_crafted_pickle_is_refused_and_runs_nothing(tmp_path, tiny_encoder):
    marker = tmp_path / "pwned"
    f = crafted_bin(tmp_path / "evil.pt", marker, tiny_encoder)
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused or unreadable with weights_only=True"):
        load_torch_file(f)
    assert not marker.exists()
    # the same file as an encoder folder's pytorch_model.bin
    enc = Path(shutil.copytree(tiny_encoder, tmp_path / "enc"))
    (enc / "model.safetensors").unlink()
    crafted_bin(enc / "pytorch_model.bin", marker, tiny_encoder)
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin: refused"):
        load_pretrained(enc)
    assert not marker.exists()


def test_a_plain_state_dict_bin_still_loads(tmp_path, tiny_encoder):
    from safetensors.torch import load_file

    enc = Path(shutil.copytree(tiny_encoder, tmp_path / "enc"))
    torch.save(load_file(str(enc / "model.safetensors")), enc / "pytorch_model.bin")
    (enc / "model.safetensors").unlink()
    a, b = load_pretrained(enc), load_pretrained(tiny_encoder)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_checkpoints_hold_no_pickles(tmp_path, tiny_encoder):
    model = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(tasks=("sst", "para", "sts")))
    opt = torch.optim.AdamW(model.parameters())
    model.sst_classifier.weight.sum().backward()
    opt.step()
    tensors: dict = {}
    tree = pack_state({"optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state()}, "state", tensors)
    ckpt = save_checkpoint(tmp_path, "step-00000001", model, {"step": 1}, tiny_encoder, tensors, tree)
    names = sorted(p.name for p in ckpt.iterdir())
    assert "trainer_state.safetensors" in names and "trainer_state.json" in names
    for f in ckpt.iterdir():
        assert f.suffix in (".safetensors", ".json", ".txt"), f.name
        data = f.read_bytes()
        assert data[:1] != b"\x80" and data[:2] != b"PK", f"{f.name} looks like a pickle or a torch zip"
        if f.suffix == ".safetensors":  # 8-byte header length, then the JSON header
            assert data[8:9] == b"{" and 8 + int.from_bytes(data[:8], "little") <= len(data)
