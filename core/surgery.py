"""Gradient surgery between tasks for the summed multitask step (``--grad-surgery``, with ``--no-per-task-step``).

In a summed step the tasks' losses of one iteration are added and take one optimizer step. Surgery first computes
each task's gradient over the parameters two or more tasks share (the encoder, the relational layer), changes
them where they disagree, and steps on their sum; a parameter only one task reaches (its head) keeps that task's
gradient.

- ``pcgrad`` (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning", Algorithm 1): for each task i, in a
  random order of the others j, where ``g_i' · g_j < 0`` project ``g_i'`` onto the normal plane of ``g_j``:
  ``g_i' ← g_i' - (g_i' · g_j) / |g_j|² g_j`` (``g_j`` the original gradient). Gradients that do not conflict
  are left as they are.
- ``gradvac`` (Wang et al. 2021, "Gradient Vaccine", Algorithm 2): each ordered task pair keeps a target cosine
  ``φ̂_ij``, an exponential moving average ``φ̂ ← (1 - β) φ̂ + β φ`` of the cosines seen (starting at 0). Where
  ``φ = cos(g_i', g_j)`` falls below it, ``g_i'`` moves towards ``g_j`` until their cosine is the target:
  ``g_i' ← g_i' + |g_i'| (φ̂ √(1 - φ²) - φ √(1 - φ̂²)) / (|g_j| √(1 - φ̂²)) g_j``. With a target of 0 this is
  PCGrad's projection; a positive target also aligns gradients that merely diverge. One target per pair over all
  shared parameters together (the paper also has per-layer targets).

Parameters reached by some of the tasks only (with ``+rlayer`` the relational layer: the pair tasks; with
``--sst-layers`` the shared top: the pair tasks, and the sentiment branch) take the surgery among those tasks.
Task gradients come from one ``torch.autograd.grad`` per task (the tasks' forwards are separate graphs, so this
costs what the summed backward costs, plus vectors of the shared size per task). The random order and the targets
are state (``state_dict``), saved with the trainer's checkpoints so that ``--resume`` continues exactly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch

from core.config import GRAD_SURGERIES


def pcgrad_one(g: torch.Tensor, others: Sequence[torch.Tensor]) -> torch.Tensor:
    """One task's flat gradient (D,) projected against each of ``others`` (D,) it conflicts with, in that order."""
    g = g.clone()
    for o in others:
        dot = torch.dot(g, o)
        if dot < 0:
            g -= dot / torch.dot(o, o).clamp_min(1e-20) * o
    return g


def vaccinate(g: torch.Tensor, o: torch.Tensor, target: float) -> tuple[torch.Tensor, float]:
    """GradVac's step for one pair: ``g`` (D,) moved towards ``o`` (D,) when their cosine is below ``target``;
    returns (the new ``g``, the cosine before the move)."""
    gn, on = g.norm(), o.norm()
    if gn == 0 or on == 0:
        return g, 0.0
    cos = float(torch.dot(g, o) / (gn * on))
    if cos < target:
        scale = gn * (target * math.sqrt(max(0.0, 1 - cos * cos)) - cos * math.sqrt(max(0.0, 1 - target * target)))
        g = g + scale / (on * math.sqrt(max(1e-12, 1 - target * target))) * o
    return g, cos


class GradSurgery:
    """PCGrad or GradVac over flat task gradients; ``combine`` returns the sum to step on."""

    def __init__(self, method: str, beta: float = 0.01, seed: int = 0):
        if method not in GRAD_SURGERIES[1:]:
            raise ValueError(f"grad surgery {method!r}: choose {' or '.join(GRAD_SURGERIES[1:])}")
        self.method, self.beta = method, beta
        self.rng = random.Random(f"{seed}:grad-surgery")  # its own: the data order stays that of a plain run
        self.targets: dict[str, float] = {}  # GradVac's φ̂ per ordered pair "i>j"

    def combine(self, grads: dict[str, torch.Tensor], group: str = "") -> torch.Tensor:
        """Each task's flat gradient over some shared parameters (D,) -> the sum of the changed gradients (D,).
        ``group`` names the parameters (GradVac keeps its targets per group and ordered task pair)."""
        tasks = list(grads)
        out = []
        for i in tasks:
            others = [j for j in tasks if j != i]
            self.rng.shuffle(others)
            if self.method == "pcgrad":
                out.append(pcgrad_one(grads[i], [grads[j] for j in others]))
                continue
            g = grads[i].clone()
            for j in others:
                key = f"{group}:{i}>{j}" if group else f"{i}>{j}"
                target = self.targets.get(key, 0.0)
                g, cos = vaccinate(g, grads[j], target)
                self.targets[key] = (1 - self.beta) * target + self.beta * cos
            out.append(g)
        return torch.stack(out).sum(0)

    def state_dict(self) -> dict:
        return {"rng": self.rng.getstate(), "targets": dict(self.targets)}

    def load_state_dict(self, state: dict) -> None:
        rng = state["rng"]  # through JSON a tuple may come back as a list
        self.rng.setstate((rng[0], tuple(rng[1]), rng[2]))
        self.targets = {str(k): float(v) for k, v in state["targets"].items()}

    def backward(self, tasks: Sequence[str], losses: Sequence[torch.Tensor],
                 params: Sequence[torch.Tensor]) -> None:
        """The losses of the iteration's task batches (``tasks``: one name each, a task may repeat; each loss its own
        graph) -> ``.grad`` of ``params``. Parameters are grouped by the tasks whose gradients reach them (the
        encoder: all; the relational layer: the pair tasks; a head: its task); each group of two or more tasks
        takes the surgery's sum over its tasks, a one-task group that task's gradient."""
        by_task: dict[str, torch.Tensor] = {}
        for t, loss in zip(tasks, losses, strict=True):
            by_task[t] = by_task[t] + loss if t in by_task else loss
        if len(by_task) < 2:  # one task: nothing to disagree with
            next(iter(by_task.values())).backward()
            return
        names = list(by_task)
        grads = {t: torch.autograd.grad(by_task[t], params, retain_graph=k < len(names) - 1, allow_unused=True)
                 for k, t in enumerate(names)}  # per task: one gradient, or None where it does not reach
        groups: dict[tuple[str, ...], list[int]] = {}
        for p in range(len(params)):
            reach = tuple(t for t in names if grads[t][p] is not None)
            if reach:
                groups.setdefault(reach, []).append(p)
        for reach, idx in groups.items():
            if len(reach) == 1:
                for p in idx:
                    _accumulate(params[p], grads[reach[0]][p])
                continue
            flat = {t: torch.cat([grads[t][p].reshape(-1) for p in idx]) for t in reach}
            total, offset = self.combine(flat, ",".join(reach)), 0
            for p in idx:
                n = params[p].numel()
                _accumulate(params[p], total[offset:offset + n].view_as(params[p]))
                offset += n


def _accumulate(p: torch.Tensor, g: torch.Tensor) -> None:
    """Add ``g`` into ``p.grad`` as ``backward`` would."""
    if p.grad is None:
        p.grad = g.detach().clone()
    else:
        p.grad.add_(g)
