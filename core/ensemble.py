"""Ensembles: several runs' best checkpoints as one model that averages their probabilities.

``build_ensemble(runs, out)`` writes an ensemble folder that loads through ``core.checkpoint.load_checkpoint`` (so
``walkless eval``, ``walkless predict``, ``core.scoring.Scorer`` and the app's Score and Evaluate screens take it
as they take a checkpoint) into an ``Ensemble``: a module with the multitask model's interface (``heads.tasks``,
``heads.cross``, ``forward(batch)``, ``embed`` / ``sentence_embeddings`` / ``output``) whose outputs are the
members' averaged

- class probabilities for SST and CFIMDB (the softmax of each member's logits), returned as their logarithm, so
  that ``softmax`` gives back the average and ``argmax`` picks its most probable class;
- paraphrase probabilities (each member's sigmoid), returned as the logit of the average (``> 0`` iff the average
  is above one half);
- STS similarities (each member's prediction, clamped to 0..5 as it would score alone), returned as their mean.

A task is averaged over the members that have its head (a single-task SST run can join multitask runs). Members
must share one tokenizer (the same ids for the same text) and one pair input (bi or cross: a batch is collated
once for all of them).

The folder (``walkless.json`` with ``"kind": "ensemble"``; safetensors + JSON only)::

    walkless.json      kind, tasks, members (name, source checkpoint, tasks), and with --data-dir the dev
                       metrics of every member, of the ensemble and of the ensemble without each member
    members/NN-NAME/   a copy of member NN's checkpoint: weights, configs and tokenizer, no trainer state
    vocab.txt ...      the shared tokenizer
    config.json, status.json, best.json, metrics.jsonl   so that the app lists it as a finished run (its
                       Evaluate screen reads the dev reports from metrics.jsonl and evaluates the folder itself)
    manifest.json      every top-level file with its size and SHA-256, written last

Members are copied, not referenced by path: a run's best checkpoint changes when the run is resumed and goes
when its folder is pruned or moved, and an ensemble that silently changed or broke with them would not be
the model that was measured. The copy costs one checkpoint's disk per member (about 90 MB for MiniLM-L6).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.checkpoint import FORMAT, load_checkpoint, save_model, sha256, verify_checkpoint
from core.data import TASKS, Batch, TaskData, load_task
from core.encoders import CheckpointError, load_tokenizer
from core.evaluate import outputs, task_report
from core.multitask import MultitaskBert, predictions
from core.report import overall
from core.runs import (
    CKPT_MANIFEST,
    CKPT_META,
    RunFolder,
    RunState,
    checkpoint_path,
    copy_tokenizer,
    read_json,
)

KIND = "ensemble"
PROBE = "Walkless probes the tokenizer: Ünïcode, UPPER case, numbers 12345 and rare-word sesquipedalian."


# --- the averaging ----------------------------------------------------------------------------------

def combine(task: str, outs: list[torch.Tensor]) -> torch.Tensor:
    """The members' raw outputs of one task (each as ``MultitaskBert`` gives it) -> the ensemble's raw output,
    in the same form: log of the mean softmax (N, C) for SST/CFIMDB, logit of the mean sigmoid (N,) for the
    paraphrase task, mean clamped similarity (N,) for STS. Computed with log-sum-exp, so confident members
    give no infinities."""
    if not outs:
        raise ValueError(f"{task}: no member has this head")
    kind, log_m = TASKS[task].kind, math.log(len(outs))
    x = torch.stack([o.float() for o in outs])  # (M, N, C) or (M, N)
    if kind == "classify":
        return torch.logsumexp(F.log_softmax(x, dim=-1), dim=0) - log_m  # (N, C) log mean p
    if kind == "binary":
        log_p = torch.logsumexp(F.logsigmoid(x), dim=0) - log_m  # log mean σ(z)
        log_q = torch.logsumexp(F.logsigmoid(-x), dim=0) - log_m  # log mean (1 - σ(z))
        return log_p - log_q  # (N,) logit of the mean probability
    return x.clamp(0.0, 5.0).mean(0)  # (N,)


# --- the model --------------------------------------------------------------------------------------

@dataclass
class EnsembleHeads:
    """What callers read of ``MultitaskBert.heads``: the tasks (any member's) and the pair input (all share it)."""

    tasks: tuple[str, ...]
    pair_input: str = "bi"
    para_offset: float = 0.0  # each member keeps its own fitted offset; nothing to add on top

    @property
    def cross(self) -> bool:
        return self.pair_input == "cross"

    def to_dict(self) -> dict:
        return {"tasks": list(self.tasks), "pair_input": self.pair_input}


class MemberEncoders:
    """``Ensemble.bert``: the members' encoders packed and unpacked together (``core.evaluate.frozen``)."""

    def __init__(self, members: Sequence[MultitaskBert]):
        self.members = members

    @property
    def is_packed(self) -> bool:
        return all(m.bert.is_packed for m in self.members)

    def pack_for_inference(self) -> bool:
        return any([m.bert.pack_for_inference() for m in self.members])  # a list: pack every one; any: unpack after

    def unpack(self) -> None:
        for m in self.members:
            m.bert.unpack()


class Ensemble(nn.Module):
    """Members (``MultitaskBert``s sharing a tokenizer and pair input) -> averaged outputs (module docstring).

    ``embed`` and ``sentence_embeddings`` return one tensor per member (a list), which ``output`` and ``head``
    take back, so code written for one model's ``embed -> sentence_embeddings -> output`` (the scorer) runs
    unchanged."""

    def __init__(self, members: list[MultitaskBert]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        inputs = {m.heads.pair_input for m in members}
        if len(inputs) > 1:
            raise ValueError(f"members mix pair inputs {sorted(inputs)}; an ensemble collates each batch once")
        self.members: Sequence[MultitaskBert] = nn.ModuleList(members)  # type: ignore[assignment]  # of the members
        tasks = [t for t in TASKS if any(t in m.heads.tasks for m in members)]
        self.heads = EnsembleHeads(tuple(tasks), inputs.pop())
        self.bert = MemberEncoders(self.members)

    def having(self, task: str) -> list[int]:
        """The members with a ``task`` head."""
        return [i for i, m in enumerate(self.members) if task in m.heads.tasks]

    @property
    def config(self):
        return self.members[0].config

    def embed(self, batch: Batch) -> list[torch.Tensor]:
        """Token ids -> each member's embedding-layer output [(N, T, C_i)]."""
        return [m.embed(batch) for m in self.members]

    def sentence_embeddings(self, embs: list[torch.Tensor], mask: torch.Tensor, task: str) -> list[torch.Tensor]:
        """Each member's pooled sentence embeddings [(N, C_i)] for ``task``."""
        return [m.sentence_embeddings(e, mask, task) for m, e in zip(self.members, embs, strict=True)]

    def output(self, task: str, xs: list[torch.Tensor]) -> torch.Tensor:
        """Each member's sentence embeddings -> the averaged output of ``task`` (``combine``)."""
        return combine(task, [self.members[i].output(task, xs[i]) for i in self.having(task)])

    def head(self, task: str, embs: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return self.output(task, self.sentence_embeddings(embs, mask, task))

    def forward(self, batch: Batch) -> torch.Tensor:
        """One task batch -> the averaged output, running only the members with that task's head."""
        return combine(batch.task, [self.members[i](batch) for i in self.having(batch.task)])


# --- building the folder ----------------------------------------------------------------------------

@dataclass
class Member:
    name: str  # the folder under members/
    source: Path  # the checkpoint it was copied from
    model: MultitaskBert
    meta: dict
    tokenizer: Any


@dataclass
class EnsembleResult:
    out: Path
    members: list[dict]  # name, source, tasks, and "dev" with --data-dir
    dev: dict[str, float] = field(default_factory=dict)  # the ensemble's dev metrics (and overall)
    leave_one_out: list[dict] = field(default_factory=list)  # per member: the ensemble without it, and the deltas
    reports: dict[str, dict] = field(default_factory=dict)


def same_tokenizer(a: Any, b: Any) -> bool:
    """Whether two tokenizers give the same ids for the same text (same vocabulary, same normalisation)."""
    return a.get_vocab() == b.get_vocab() and a(PROBE)["input_ids"] == b(PROBE)["input_ids"]


def load_members(runs: list[str | Path]) -> list[Member]:
    """Each run folder's best checkpoint (or a checkpoint folder), checked to share the first one's tokenizer."""
    members: list[Member] = []
    for i, run in enumerate(runs):
        folder = checkpoint_path(run)
        model, meta, tok = load_checkpoint(folder)
        if meta.get("kind") == KIND:
            raise ValueError(f"{run}: is an ensemble; give its members' runs instead")
        if members and not same_tokenizer(members[0].tokenizer, tok):
            raise ValueError(f"{run}: its tokenizer ({folder}) differs from {runs[0]}'s; ensemble members must "
                             f"share one tokenizer and vocabulary")
        if members and model.heads.pair_input != members[0].model.heads.pair_input:
            raise ValueError(f"{run}: pair input {model.heads.pair_input}, but {runs[0]} has "
                             f"{members[0].model.heads.pair_input}; ensemble members must share it")
        label = Path(run).name if Path(run).name not in ("", ".") else f"member{i}"
        members.append(Member(f"{i:02d}-{label}", folder, model, meta, tok))
    return members


def dev_outputs(members: list[Member], data_dir: Path, batch_size: int) -> tuple[dict[str, TaskData],
                                                                                   list[dict[str, torch.Tensor]]]:
    """The dev sets of every task some member has, and each member's raw outputs on those it has a head for."""
    tasks = [t for t in TASKS if any(t in m.model.heads.tasks for m in members)]
    dev = {t: load_task(data_dir, t, "dev", members[0].tokenizer) for t in tasks}
    outs = [{t: outputs(m.model, dev[t], batch_size) for t in tasks if t in m.model.heads.tasks} for m in members]
    return dev, outs


def subset_metrics(dev: dict[str, TaskData], outs: list[dict[str, torch.Tensor]]) -> tuple[dict[str, float],
                                                                                         dict[str, dict]]:
    """Dev metrics (plus ``overall`` when SST, Quora and STS are there) and reports of the ensemble of the members
    whose outputs ``outs`` holds; a task none of them has is left out."""
    metrics: dict[str, float] = {}
    reports: dict[str, dict] = {}
    for task, data in dev.items():
        have = [o[task] for o in outs if task in o]
        if not have or data.labels is None:
            continue
        preds = predictions(task, combine(task, have)).float().numpy()
        m, r = task_report(task, data.labels.float().numpy(), preds)
        metrics.update(m)
        reports[task] = r
    whole = overall(metrics)
    return (metrics if whole is None else {**metrics, "overall": whole}), reports


def main_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k.endswith(("/acc", "/pearson")) or k == "overall"}


def evaluate_members(result: EnsembleResult, members: list[Member], data_dir: Path, batch_size: int) -> None:
    """Fill ``result`` with each member's dev metrics, the ensemble's, and what each member adds: the
    ensemble's metric minus the metric of the ensemble without that member (one member: none)."""
    dev, outs = dev_outputs(members, data_dir, batch_size)
    result.dev, result.reports = subset_metrics(dev, outs)
    for info, out in zip(result.members, outs, strict=True):
        info["dev"] = main_metrics(subset_metrics(dev, [out])[0])
    if len(members) < 2:
        return
    for i, info in enumerate(result.members):
        without = main_metrics(subset_metrics(dev, outs[:i] + outs[i + 1:])[0])
        adds = {k: v - without[k] for k, v in main_metrics(result.dev).items() if k in without}
        result.leave_one_out.append({"member": info["name"], "without": without, "adds": adds})


def build_ensemble(runs: list[str | Path], out: str | Path, data_dir: str | Path | None = None,
                   batch_size: int = 128) -> EnsembleResult:
    """Write the ensemble folder ``out`` (must not exist) of ``runs`` (run folders: their best checkpoint; or
    checkpoint folders); with ``data_dir``, evaluate every member, the ensemble and each leave-one-out ensemble
    on its dev files first. The folder appears complete or not at all (written aside, then renamed)."""
    out = Path(out)
    if not runs:
        raise ValueError("an ensemble needs at least one run")
    if out.exists():
        raise ValueError(f"{out}: exists; walkless ensemble writes a new folder")
    members = load_members(runs)
    Ensemble([m.model for m in members])  # refuses mixed pair inputs before anything is written
    result = EnsembleResult(out, [{"name": m.name, "source": str(m.source), "tasks": list(m.model.heads.tasks),
                                   "variant": m.meta.get("variant")} for m in members])
    if data_dir is not None:
        evaluate_members(result, members, Path(data_dir), batch_size)
    tmp = out.with_name(f".tmp-{out.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write_folder(tmp, result, members, data_dir)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def write_folder(tmp: Path, result: EnsembleResult, members: list[Member], data_dir: str | Path | None) -> None:
    """Every file of the ensemble folder (module docstring) into ``tmp``, the manifest last."""
    (tmp / "members").mkdir()
    for m in members:
        save_model(tmp / "members" / m.name, m.model, {**m.meta, "source": str(m.source)}, m.source)
    copy_tokenizer(members[0].source, tmp)
    tasks = [t for t in TASKS if any(t in m.model.heads.tasks for m in members)]
    encoders = sorted({str(m.meta.get("encoder")) for m in members})
    meta = {"format": FORMAT, "kind": KIND, "variant": f"ensemble of {len(members)}", "tasks": tasks,
            "epoch": 0, "epoch_done": True, "step": 0,  # its one "epoch" (metrics.jsonl, the app's Evaluate screen)
            "encoder": encoders[0] if len(encoders) == 1 else ", ".join(encoders),
            "heads": {"tasks": tasks, "pair_input": members[0].model.heads.pair_input},
            "members": result.members, "dev": result.dev, "leave_one_out": result.leave_one_out,
            "data_dir": None if data_dir is None else str(data_dir)}
    (tmp / CKPT_META).write_text(json.dumps(meta, indent=2))
    run_files(tmp, meta, result)
    files = {f.name: {"size": f.stat().st_size, "sha256": sha256(f)} for f in sorted(tmp.iterdir()) if f.is_file()}
    (tmp / CKPT_MANIFEST).write_text(json.dumps({"format": FORMAT, "files": files}, indent=2))


def run_files(folder: Path, meta: dict, result: EnsembleResult) -> None:
    """The files that make the app list the folder as a finished run (core.runs): its config, state, the best
    checkpoint (the folder itself) and, when evaluated, one epoch record with the dev reports."""
    now, run = time.time(), RunFolder(folder)
    run.config_file.write_text(json.dumps({"variant": meta["variant"], "kind": KIND, "tasks": meta["tasks"],
                                                    "encoder": meta["encoder"], "epochs": 0,
                                                    "members": [m["source"] for m in result.members]}, indent=2))
    run.status_file.write_text(json.dumps({"state": RunState.FINISHED, "epoch": 0, "epochs": 0, "step": 0,
                                                    "started": now, "updated": now, "message": None}))
    run.pointer_file("best").write_text(json.dumps({"path": ".", "epoch": 0, "step": 0, "dev": result.dev}))
    lines = []
    if result.dev:
        lines.append({"kind": "epoch", "time": round(now, 3), "epoch": 0, "step": 0, "dev": result.dev})
        lines += [{"kind": "report", "time": round(now, 3), "epoch": 0, "step": 0, **r} for r in result.reports.values()]
    run.metrics_file.write_text("".join(json.dumps(rec) + "\n" for rec in lines))


# --- loading ----------------------------------------------------------------------------------------

def load_ensemble(folder: Path, meta: dict, device: str | torch.device = "cpu") -> tuple[Ensemble, dict, Any]:
    """An ensemble folder (``walkless.json`` of kind ``ensemble``) -> (``Ensemble`` in eval mode, meta, tokenizer);
    ``core.checkpoint.load_checkpoint`` calls this. A missing or damaged member is a ``CheckpointError`` naming
    it."""
    names = [m.get("name") for m in meta.get("members") or [] if isinstance(m, dict)]
    if not names or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"{folder / CKPT_META}: an ensemble without a list of members")
    models = []
    for name in map(str, names):
        member = folder / "members" / name
        if not (member / CKPT_META).is_file():
            raise CheckpointError(f"{member}: ensemble member missing")
        verify_checkpoint(member, hashes=False)
        models.append(load_checkpoint(member, device)[0])
    return Ensemble(models).to(device).eval(), meta, load_tokenizer(folder)


def is_ensemble(path: str | Path) -> bool:
    """Whether ``path`` is an ensemble folder."""
    return (read_json(Path(path) / CKPT_META) or {}).get("kind") == KIND
