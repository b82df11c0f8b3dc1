"""Saving and loading fine-tuned checkpoints: safetensors + JSON, never pickle.

A checkpoint folder is self-contained: ``model.safetensors`` (the whole multitask model, encoder under
``bert.``), ``config.json`` (the BERT config, so the folder also loads as an ``--encoder``),
``walkless.json`` (heads, tasks, encoder, epoch/step, dev metrics), the tokenizer files, and for
``--resume`` ``trainer_state.safetensors`` + ``trainer_state.json`` (optimizer, SMART teacher, RNG states,
schedule position). ``manifest.json``, written last, lists every file with its size and SHA-256.

It is written into a hidden temporary folder and renamed into place, so a crash (even SIGKILL) or a
full disk mid-save leaves the previous checkpoints intact; ``verify_checkpoint`` checks a folder
against its manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from core.encoders import CheckpointError, load_tokenizer, read_safetensors
from core.model import BertConfig, BertModel
from core.multitask import HeadConfig, MultitaskBert
from core.runs import (
    CKPT_CONFIG,
    CKPT_MANIFEST,
    CKPT_META,
    CKPT_WEIGHTS,
    POINTERS,
    RunFolder,
    checkpoint_path,
    copy_tokenizer,
    read_json,
    write_json_atomic,
)

FORMAT = 1
STATE_TENSORS, STATE_JSON = "trainer_state.safetensors", "trainer_state.json"
_TMP_PREFIXES = (".tmp-", ".old-")


# --- nested state (optimizer, RNG, teacher) <-> JSON + named tensors ---------------------------------

def pack_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A nested structure of dicts, lists, tuples, numbers, strings and tensors -> a JSON-able tree.

    Every tensor moves into ``tensors`` under a dotted key (``optimizer.state.3.exp_avg``) and is
    replaced by ``{"__tensor__": key}``; dict keys keep their type (an optimizer's int ids) and tuples
    stay tuples. Anything else is refused: checkpoints hold no pickles.
    """
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().contiguous().cpu()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"{prefix}: cannot store a {type(k).__name__} dict key without pickle")
        return {"__dict__": [[k, pack_state(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [pack_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [pack_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"{prefix}: cannot store a {type(obj).__name__} without pickle")


def unpack_state(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of ``pack_state``."""
    if isinstance(tree, list):
        return [unpack_state(v, tensors) for v in tree]
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__tuple__" in tree:
            return tuple(unpack_state(v, tensors) for v in tree["__tuple__"])
        if "__dict__" in tree:
            return {k: unpack_state(v, tensors) for k, v in tree["__dict__"]}
        raise ValueError(f"unknown packed node {sorted(tree)[:3]}")
    return tree


# --- writing ------------------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    """The file's SHA-256 as hex, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename) to disk where the system allows it (not on Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_files(tmp: Path, model: MultitaskBert, meta: dict, tokenizer_dir: Path,
                 extra: dict[str, torch.Tensor] | None, extra_meta: dict | None) -> None:
    """Every file of a checkpoint (``save_checkpoint``'s arguments), the manifest last, all synced to disk."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / CKPT_WEIGHTS))
    (tmp / CKPT_CONFIG).write_text(json.dumps({**model.config.to_dict(), "model_type": "bert"}, indent=2))
    (tmp / CKPT_META).write_text(json.dumps({"format": FORMAT, "heads": model.heads.to_dict(), **meta},
                                                  indent=2))
    copy_tokenizer(tokenizer_dir, tmp)
    if extra is not None:
        save_file({k: v.detach().contiguous().cpu() for k, v in extra.items()}, str(tmp / STATE_TENSORS))
    if extra_meta is not None:
        (tmp / STATE_JSON).write_text(json.dumps(extra_meta))
    files = {f.name: {"size": f.stat().st_size, "sha256": sha256(f)} for f in sorted(tmp.iterdir())}
    (tmp / CKPT_MANIFEST).write_text(json.dumps({"format": FORMAT, "files": files}, indent=2))
    for f in tmp.iterdir():  # data on disk before the rename makes it visible
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())


def save_checkpoint(run_dir: Path, name: str, model: MultitaskBert, meta: dict[str, Any], tokenizer_dir: Path,
                    extra: dict[str, torch.Tensor] | None = None, extra_meta: dict | None = None) -> Path:
    """Write ``run_dir/checkpoints/name`` atomically and return it.

    ``extra`` tensors (optimizer, teacher) go to ``trainer_state.safetensors``, ``extra_meta`` to
    ``trainer_state.json``; both are what ``--resume`` needs and what scoring ignores. A failed save
    (full disk, lost permissions) removes its temporary folder and raises a ``CheckpointError``.
    """
    ckpts = RunFolder(run_dir).checkpoints_dir
    final, tmp = ckpts / name, ckpts / f".tmp-{name}-{os.getpid()}"
    try:
        ckpts.mkdir(exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _write_files(tmp, model, meta, tokenizer_dir, extra, extra_meta)
        old = ckpts / f".old-{name}-{os.getpid()}"
        if final.exists():  # re-saving a step after a resume: move the old one aside, never delete first
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(ckpts)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"saving checkpoint {final} failed ({e.strerror or e}); "
                              f"the previous checkpoints are intact") from e
    return final


def point_to(run_dir: Path, which: str, ckpt: Path, **info: Any) -> None:
    """Atomically make ``best.json`` / ``last.json`` point at a checkpoint folder."""
    write_json_atomic(RunFolder(run_dir).pointer_file(which), {"path": str(ckpt.relative_to(run_dir)), **info})


def prune_checkpoints(run_dir: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints, never the best or the last one."""
    folder = RunFolder(run_dir)
    keep = {(folder.pointer(which) or {}).get("path") for which in POINTERS}
    ckpts = folder.checkpoints()
    for p in ckpts[: max(0, len(ckpts) - keep_last)]:
        if str(p.relative_to(run_dir)) not in keep:
            shutil.rmtree(p, ignore_errors=True)


def remove_partial_saves(run_dir: Path) -> list[Path]:
    """Delete the temporary folders of saves that were killed half-way; returns what was removed."""
    gone = [p for p in RunFolder(run_dir).checkpoints_dir.glob(".*") if p.is_dir() and p.name.startswith(_TMP_PREFIXES)]
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return gone


# --- reading ------------------------------------------------------------------------------------------

def verify_checkpoint(folder: Path, hashes: bool = True) -> None:
    """Check every file of ``manifest.json`` is present with its size (and SHA-256); ``CheckpointError``
    naming the first bad file. A checkpoint without a manifest (older format) passes."""
    manifest = folder / CKPT_MANIFEST
    if not manifest.exists():
        return
    info = read_json(manifest)
    if not isinstance(info, dict) or not isinstance(info.get("files"), dict):
        raise CheckpointError(f"{manifest}: unreadable or truncated")
    for name, want in info["files"].items():
        f = folder / name
        if not f.is_file():
            raise CheckpointError(f"{f}: missing (listed in {CKPT_MANIFEST})")
        if f.stat().st_size != want.get("size"):
            raise CheckpointError(f"{f}: {f.stat().st_size} bytes, expected {want.get('size')} (truncated?)")
        if hashes and sha256(f) != want.get("sha256"):
            raise CheckpointError(f"{f}: content does not match its SHA-256 in {CKPT_MANIFEST} (corrupt)")


def load_model_weights(model: MultitaskBert, folder: Path) -> None:
    """Copy ``folder/model.safetensors`` into ``model``; every weight must be there with its shape."""
    weights = folder / CKPT_WEIGHTS
    sd = read_safetensors(weights)
    own = model.state_dict()
    bad = [k for k in own if k not in sd or sd[k].shape != own[k].shape]
    if bad:
        raise CheckpointError(f"{weights}: does not match the model (missing or mis-shaped {bad[:3]}); "
                              f"is it from another encoder or variant?")
    model.load_state_dict({k: sd[k] for k in own})


def read_trainer_state(folder: Path) -> dict[str, Any]:
    """The trainer state saved with a checkpoint (what ``--resume`` restores)."""
    tree = read_json(folder / STATE_JSON)
    if not isinstance(tree, dict):
        raise CheckpointError(f"{folder / STATE_JSON}: missing or unreadable (was this checkpoint saved for resuming?)")
    state = unpack_state(tree, read_safetensors(folder / STATE_TENSORS))
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{folder / STATE_JSON}: format {state.get('format')!r}, expected {FORMAT}")
    return state


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[MultitaskBert, dict, Any]:
    """A run folder (its best checkpoint) or a checkpoint folder -> (model in eval mode, meta, tokenizer); an
    ensemble folder (``walkless ensemble``) gives a ``core.ensemble.Ensemble``, which scores like the model."""
    folder = checkpoint_path(path)
    verify_checkpoint(folder, hashes=False)  # sizes only: cheap; safetensors checks its own structure
    meta = read_json(folder / CKPT_META)
    if isinstance(meta, dict) and meta.get("kind") == "ensemble":  # several checkpoints averaged: core.ensemble
        from core.ensemble import load_ensemble

        return load_ensemble(folder, meta, device)  # type: ignore[return-value]  # an Ensemble scores like the model
    cfg = read_json(folder / CKPT_CONFIG)
    if not isinstance(meta, dict) or "heads" not in meta:
        raise CheckpointError(f"{folder / CKPT_META}: missing or unreadable (not a walkless checkpoint?)")
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{folder / CKPT_CONFIG}: missing or unreadable")
    try:
        model = MultitaskBert(BertModel(BertConfig.from_dict(cfg)), HeadConfig.from_dict(meta["heads"]))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{folder}: config.json or walkless.json has unusable fields ({e})") from e
    load_model_weights(model, folder)
    return model.to(device).eval(), meta, load_tokenizer(folder)


def load_single(path: str | Path, what: str) -> tuple[MultitaskBert, dict, Any]:
    """``load_checkpoint`` for commands that change one model's weights (``what``): an ensemble is refused."""
    model, meta, tok = load_checkpoint(path)
    if meta.get("kind") == "ensemble":
        raise ValueError(f"{path}: an ensemble; {what} takes one model's checkpoint (apply it to the members' runs, "
                         f"then build the ensemble again)")
    return model, meta, tok


# --- checkpoint averaging -----------------------------------------------------------------------------

def unfitted(heads: dict) -> dict:
    """A checkpoint's head settings without the fitted paraphrase offset (checkpoints differing only there average)."""
    return {k: v for k, v in heads.items() if k != "para_offset"}


def average_checkpoints(paths: list[str | Path], out: str | Path) -> Path:
    """Write the uniform average of the weights of ``paths`` (run folders: their best checkpoint; or checkpoint
    folders) to the new checkpoint folder ``out``, which scores, evaluates and loads like any other (no trainer
    state: it cannot be resumed). Every checkpoint must have the same encoder config and heads."""
    out = Path(out)
    if len(paths) < 2:
        raise ValueError("averaging needs at least two checkpoints")
    if out.exists():
        raise ValueError(f"{out}: exists; averaging writes a new folder")
    folders = [checkpoint_path(p) for p in paths]
    model, meta, _ = load_single(folders[0], "averaging")
    total = {k: v.double() for k, v in model.state_dict().items()}
    for f in folders[1:]:
        other, other_meta, _ = load_single(f, "averaging")
        if other.config != model.config or unfitted(other_meta["heads"]) != unfitted(meta["heads"]):
            raise ValueError(f"{f}: another encoder config or other heads than {folders[0]}; cannot average them")
        for k, v in other.state_dict().items():
            total[k] += v.double()
        model.heads.para_offset += other.heads.para_offset
    model.heads.para_offset /= len(folders)  # a starting point: refit it on the average (walkless calibrate)
    dtypes = {k: v.dtype for k, v in model.state_dict().items()}
    model.load_state_dict({k: (v / len(folders)).to(dtypes[k]) for k, v in total.items()})
    info = {**model_meta(meta), "averaged": [str(f) for f in folders]}
    return save_model(out, model, info, folders[0])


def model_meta(meta: dict) -> dict:
    """What a checkpoint derived from another (averaged, recalibrated) keeps of its ``walkless.json``: not its dev
    values, which were measured on other weights."""
    return {k: meta.get(k) for k in ("variant", "tasks", "encoder", "epoch", "step") if k in meta}


def save_model(out: Path, model: MultitaskBert, meta: dict, tokenizer_dir: Path) -> Path:
    """Write a new checkpoint folder ``out`` (no trainer state: it scores, evaluates and loads, but cannot be
    resumed) atomically; ``out`` must not exist."""
    out = Path(out)
    if out.exists():
        raise ValueError(f"{out}: exists; this writes a new folder")
    tmp = out.with_name(f".tmp-{out.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write_files(tmp, model, meta, tokenizer_dir, None, None)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
