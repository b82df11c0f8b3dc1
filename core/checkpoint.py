"""Saving and loading fine-tuned checkpoints: safetensors + JSON, never pickle.

A checkpoint folder is self-contained: ``model.safetensors`` (the whole multitask model, encoder under
``bert.``), ``config.json`` (the BERT config, so the folder also loads as an ``--encoder``),
``walkless.json`` (heads, tasks, encoder, epoch/step, dev metrics) and the tokenizer files.
It is written into a hidden temporary folder and renamed into place, so a crash mid-save leaves the
previous checkpoints intact.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from core.encoders import CheckpointError, load_tokenizer
from core.model import BertConfig, BertModel
from core.multitask import HeadConfig, MultitaskBert
from core.runs import checkpoint_path, copy_tokenizer, read_json, write_json_atomic

FORMAT = 1


def save_checkpoint(run_dir: Path, name: str, model: MultitaskBert, meta: dict[str, Any], tokenizer_dir: Path,
                    extra: dict[str, torch.Tensor] | None = None, extra_meta: dict | None = None) -> Path:
    """Write ``run_dir/checkpoints/name`` atomically and return it.

    ``extra`` tensors (optimizer, teacher) go to ``trainer_state.safetensors``, ``extra_meta`` to
    ``trainer_state.json``; both are what ``--resume`` needs and what scoring ignores.
    """
    ckpts = run_dir / "checkpoints"
    ckpts.mkdir(exist_ok=True)
    final, tmp = ckpts / name, ckpts / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"))
    (tmp / "config.json").write_text(json.dumps({**model.config.to_dict(), "model_type": "bert"}, indent=2))
    (tmp / "walkless.json").write_text(json.dumps({"format": FORMAT, "heads": model.heads.to_dict(), **meta},
                                                  indent=2))
    copy_tokenizer(tokenizer_dir, tmp)
    if extra is not None:
        save_file({k: v.detach().contiguous().cpu() for k, v in extra.items()}, str(tmp / "trainer_state.safetensors"))
    if extra_meta is not None:
        (tmp / "trainer_state.json").write_text(json.dumps(extra_meta))
    for f in tmp.iterdir():  # data on disk before the rename makes it visible
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    return final


def point_to(run_dir: Path, which: str, ckpt: Path, **info: Any) -> None:
    """Atomically make ``best.json`` / ``last.json`` point at a checkpoint folder."""
    write_json_atomic(run_dir / f"{which}.json", {"path": str(ckpt.relative_to(run_dir)), **info})


def prune_checkpoints(run_dir: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints, never the best or the last one."""
    keep = {(read_json(run_dir / f"{w}.json") or {}).get("path") for w in ("best", "last")}
    ckpts = sorted(p for p in (run_dir / "checkpoints").glob("*") if p.is_dir() and not p.name.startswith("."))
    for p in ckpts[: max(0, len(ckpts) - keep_last)]:
        if str(p.relative_to(run_dir)) not in keep:
            shutil.rmtree(p, ignore_errors=True)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[MultitaskBert, dict, Any]:
    """A run folder (its best checkpoint) or a checkpoint folder -> (model in eval mode, meta, tokenizer)."""
    folder = checkpoint_path(path)
    meta = read_json(folder / "walkless.json")
    cfg = read_json(folder / "config.json")
    if not isinstance(meta, dict) or "heads" not in meta:
        raise CheckpointError(f"{folder / 'walkless.json'}: missing or unreadable")
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{folder / 'config.json'}: missing or unreadable")
    model = MultitaskBert(BertModel(BertConfig.from_dict(cfg)), HeadConfig.from_dict(meta["heads"]))
    weights = folder / "model.safetensors"
    try:
        sd = load_file(str(weights))
    except Exception as e:
        raise CheckpointError(f"{weights}: missing, truncated or corrupt ({e})") from e
    own = model.state_dict()
    bad = [k for k in own if k not in sd or sd[k].shape != own[k].shape]
    if bad:
        raise CheckpointError(f"{weights}: does not match its config.json/walkless.json "
                              f"(missing or mis-shaped {bad[:3]}); is it from another encoder?")
    model.load_state_dict(sd)
    return model.to(device).eval(), meta, load_tokenizer(folder)
