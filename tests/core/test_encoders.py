"""Loading Hugging Face BERT folders: name resolution, old layouts, and clear errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from core.encoders import (
    CheckpointError,
    default_pooling,
    load_pretrained,
    resolve_encoder,
)


def state(folder):
    return load_file(str(folder / "model.safetensors"))


def clone(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_default_encoder_is_the_packaged_minilm():
    folder = resolve_encoder("minilm-l6")
    assert (folder / "config.json").is_file()
    assert default_pooling(folder) == "mean"


def test_cls_pooling_when_the_folder_declares_nothing(tiny_encoder, tmp_path):
    f = clone(tiny_encoder, tmp_path / "enc")
    shutil.rmtree(f / "1_Pooling")
    assert default_pooling(f) == "cls"


def test_bert_prefix_and_gamma_beta_names_load_the_same_weights(tiny_encoder, tmp_path):
    ref = load_pretrained(tiny_encoder).state_dict()
    f = clone(tiny_encoder, tmp_path / "old")
    old = {}
    for k, v in state(tiny_encoder).items():
        k = "bert." + k
        k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        old[k] = v
    old["cls.predictions.bias"] = torch.zeros(3)  # a pre-training head minBERT ignores
    (f / "model.safetensors").unlink()
    torch.save(old, f / "pytorch_model.bin")  # a .bin, read with weights_only=True
    loaded = load_pretrained(f).state_dict()
    assert all(torch.equal(loaded[k], ref[k]) for k in ref)


def test_missing_weight_is_a_clear_error(tiny_encoder, tmp_path):
    f = clone(tiny_encoder, tmp_path / "miss")
    sd = state(f)
    sd.pop("encoder.layer.1.attention.self.query.weight")
    save_file(sd, str(f / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing weights.*layer\.1\.attention\.self\.query"):
        load_pretrained(f)


def test_misshaped_weight_is_a_clear_error(tiny_encoder, tmp_path):
    f = clone(tiny_encoder, tmp_path / "shape")
    cfg = json.loads((f / "config.json").read_text())
    cfg["intermediate_size"] = 100
    (f / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"intermediate\.dense\.(weight|bias) has shape \(128,?.*expected \(100"):
        load_pretrained(f)


def test_unknown_name_or_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not a known name"):
        resolve_encoder(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="config.json is missing"):
        resolve_encoder(tmp_path)


def test_overrides_set_dropout(tiny_encoder):
    m = load_pretrained(tiny_encoder, hidden_dropout_prob=0.3)
    assert m.embeddings.dropout.p == 0.3
