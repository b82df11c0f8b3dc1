"""Multitask schedules: which task batches each training iteration takes (variant names: ``core.variants``).

An epoch plan is a list of iterations; an iteration is a list of ``(task, example indices)`` steps,
taken in order (one optimizer step each, or one summed step). ``--max-steps`` caps iterations.

Schedules (B = ``batch_size``, n_t = training examples of task t):

- ``pretrain`` / ``finetune``: one pass over the single task in batches of B.
- ``rrobin`` (report 4.2): every iteration one batch of B from SST, Quora and STS, in that order;
  ``floor(n_sts / B)`` iterations per epoch (at least 1). Tasks with fewer examples than needed are cycled.
  Which examples: ``rrobin_subset="fixed"`` (default, the report's code: ``random.sample`` of
  ``iterations * B`` examples per task, drawn once per run from the seed, reshuffled each epoch, so every
  task trains on as many unique examples as the smallest) or ``"fresh"`` (a new draw every epoch, so more
  unique SST and Quora examples over several epochs).
- ``rrobin-pre`` (report 3.2, "additional Quora pretraining"): epochs ``1 .. pre_epochs`` start with one
  Quora-only pass (every Quora example once, batches of B, last batch kept), followed by the epoch's
  ``rrobin`` iterations; later epochs are plain ``rrobin``. ``pre_epochs=0`` is plain rrobin and
  ``pre_epochs >= epochs`` puts a Quora pass in front of every epoch. With ``--max-steps`` the cap cuts the
  plan from the front, so a short cap may keep only Quora steps.
- ``rrobin-full`` (report 4.2, "interleaved"): the largest task (Quora) anchors the epoch:
  ``iterations = floor(n_anchor / B)`` (at least 1), the anchor takes batches of B (each of its examples
  at most once, the remainder dropped) and every other task ``b_t = max(1, floor(B * n_t / n_anchor))``.
  Floor, not round, is what reproduces the report's 64 / 3 / 2 for Quora / SST / STS at 141,506 / 8,544 /
  6,040 examples (round would give 4 and 3); the smaller tasks then see ``b_t * iterations <= n_t`` examples
  per epoch, a fresh shuffle each epoch.
- ``proportional`` (beyond the report): each step samples its task with ``p_t ∝ n_t`` and takes a batch of
  B from it; ``floor(sum_t n_t / B)`` steps per epoch, i.e. the same number of examples as one pass over every
  task (so in expectation each task is seen once per epoch, as with ``rrobin-full``). Steps are grouped into
  iterations of 3 (the number of tasks), so ``--max-steps`` and ``--summed-step`` mean the same optimizer
  step count as for ``rrobin``.
- ``annealed`` (MT-DNN / jiant / BERT-and-PALs): like ``proportional`` with ``p_t ∝ n_t^(1/T_e)``, where
  ``α_e = 1/T_e`` goes linearly from 1 (epoch 1, proportional) to ``1/temperature`` at the last epoch (the
  BERT-and-PALs rule ``α = 1 - 0.8 (e-1)/(E-1)`` is ``temperature=5``). A one-epoch run stays proportional.
  Same step count as ``proportional``; small tasks are upsampled (cycled) as T grows.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

from core.data import batch_indices
from core.variants import (  # noqa: F401  (re-exported: the variant names live there)
    BASES,
    MODIFIERS,
    MULTITASK,
    REPORT_VARIANTS,
    Variant,
    parse_variant,
)

Step = tuple[str, list[int]]
Plan = list[list[Step]]


# --- building blocks -------------------------------------------------------------------------------
def single_task_plan(lengths: list[int], task: str, batch_size: int, rng: random.Random, bucket: bool) -> Plan:
    return [[(task, b)] for b in batch_indices(lengths, batch_size, True, rng, bucket)]


def _cycled_batches(lengths: list[int], size: int, count: int, rng: random.Random,
                    bucket: bool) -> list[list[int]]:
    """``count`` batches of ``size`` from one task, reshuffling when the data run out."""
    out: list[list[int]] = []
    while len(out) < count:
        out += batch_indices(lengths, size, True, rng, bucket, drop_last=len(lengths) >= size)
    return out[:count]


def _interleave(lengths: dict[str, list[int]], sizes: dict[str, int], n: int, rng: random.Random,
                bucket: bool) -> Plan:
    """``n`` iterations, each one batch of ``sizes[t]`` from every task in ``lengths`` order."""
    per_task = {t: _cycled_batches(lengths[t], sizes[t], n, rng, bucket) for t in lengths}
    return [[(t, per_task[t][i]) for t in lengths] for i in range(n)]


# --- equal round-robin ----------------------------------------------------------------------------
def rrobin_iterations(sizes: dict[str, int], batch_size: int) -> int:
    """Equal batches from every task, ``floor(len(sts_train) / batch)`` iterations (the report's rule)."""
    return max(1, sizes.get("sts", min(sizes.values())) // batch_size)


def fixed_subset(n: int, k: int, seed: int, task: str) -> list[int]:
    """``k`` of ``range(n)`` (all of them when ``k >= n``), the same for a seed and task in every epoch."""
    return list(range(n)) if k >= n else sorted(random.Random(f"{seed}:{task}").sample(range(n), k))


def rrobin_plan(lengths: dict[str, list[int]], batch_size: int, rng: random.Random, bucket: bool,
                subset_seed: int | None = None) -> Plan:
    """Equal round-robin; with ``subset_seed`` each task draws from its fixed subset (the report's code)."""
    n = rrobin_iterations({t: len(v) for t, v in lengths.items()}, batch_size)
    sizes = {t: batch_size for t in lengths}
    if subset_seed is None:
        return _interleave(lengths, sizes, n, rng, bucket)
    keep = {t: fixed_subset(len(v), n * batch_size, subset_seed, t) for t, v in lengths.items()}
    plan = _interleave({t: [lengths[t][i] for i in keep[t]] for t in lengths}, sizes, n, rng, bucket)
    return [[(t, [keep[t][j] for j in idx]) for t, idx in it] for it in plan]


def quora_pass(lengths: dict[str, list[int]], batch_size: int, rng: random.Random, bucket: bool) -> Plan:
    """The Quora-only part of an ``rrobin-pre`` epoch: every paraphrase example once."""
    if "para" not in lengths:
        raise ValueError("schedule rrobin-pre needs the paraphrase (para) task")
    return single_task_plan(lengths["para"], "para", batch_size, rng, bucket)


# --- interleaved round-robin ----------------------------------------------------------------------
def anchor_task(sizes: dict[str, int]) -> str:
    """The task whose data an ``rrobin-full`` epoch uses completely: the largest (Quora; ties prefer para)."""
    return max(sizes, key=lambda t: (sizes[t], t == "para"))


def rrobin_full_sizes(sizes: dict[str, int], batch_size: int) -> tuple[int, dict[str, int]]:
    """``(iterations, {task: batch size})`` of interleaved round-robin (see the module docstring)."""
    anchor = anchor_task(sizes)
    n_max = sizes[anchor]
    n = max(1, n_max // batch_size)
    return n, {t: batch_size if t == anchor else max(1, batch_size * sizes[t] // n_max) for t in sizes}


def rrobin_full_plan(lengths: dict[str, list[int]], batch_size: int, rng: random.Random, bucket: bool) -> Plan:
    n, per_task = rrobin_full_sizes({t: len(v) for t, v in lengths.items()}, batch_size)
    return _interleave(lengths, per_task, n, rng, bucket)


# --- sampled schedules ----------------------------------------------------------------------------
def sampled_steps(sizes: dict[str, int], batch_size: int) -> int:
    """Steps per epoch of ``proportional``/``annealed``: as many examples as one pass over every task."""
    return max(1, sum(sizes.values()) // batch_size)


def annealed_alpha(epoch: int, epochs: int, temperature: float) -> float:
    """``α_e = 1/T_e``, linear from 1 at epoch 1 to ``1/temperature`` at epoch ``epochs``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive (got {temperature})")
    if epochs <= 1:
        return 1.0
    f = min(max((epoch - 1) / (epochs - 1), 0.0), 1.0)
    return 1.0 + f * (1.0 / temperature - 1.0)


def sampling_probabilities(sizes: dict[str, int], alpha: float = 1.0) -> dict[str, float]:
    """``p_t ∝ n_t^α``: α=1 proportional, α=0 uniform."""
    w = {t: float(n) ** alpha if n > 0 else 0.0 for t, n in sizes.items()}
    total = sum(w.values())
    return {t: v / total for t, v in w.items()}


def sampled_plan(lengths: dict[str, list[int]], batch_size: int, probs: dict[str, float], rng: random.Random,
                 bucket: bool) -> Plan:
    """Each step draws its task from ``probs`` and takes that task's next batch of ``batch_size``."""
    tasks = list(lengths)
    n = sampled_steps({t: len(v) for t, v in lengths.items()}, batch_size)
    draws = rng.choices(tasks, weights=[probs[t] for t in tasks], k=n)
    counts = Counter(draws)
    streams = {t: iter(_cycled_batches(lengths[t], batch_size, counts[t], rng, bucket)) for t in tasks}
    steps = [(t, next(streams[t])) for t in draws]
    k = len(tasks)
    return [steps[i:i + k] for i in range(0, n, k)]


# --- the one entry point --------------------------------------------------------------------------
def _options(config: Any, **given: Any) -> dict[str, Any]:
    """Schedule options from explicit keywords, else from a TrainConfig-like ``config``, else defaults."""
    defaults = {"pre_epochs": 1, "temperature": 5.0, "epochs": 1, "rrobin_subset": "fixed", "seed": 0}
    return {k: given[k] if given.get(k) is not None else getattr(config, k, d) for k, d in defaults.items()}


def make_plan(base: str, lengths: dict[str, list[int]], batch_size: int, epoch: int, rng: random.Random,
              bucket: bool = True, config: Any = None, *, pre_epochs: int | None = None,
              temperature: float | None = None, epochs: int | None = None, rrobin_subset: str | None = None,
              seed: int | None = None) -> Plan:
    """The iterations of epoch ``epoch`` (1-based) for schedule ``base``.

    ``lengths`` maps each task to its examples' token counts (for length bucketing); options come from
    the keywords or from ``config`` (a TrainConfig: ``pre_epochs``, ``temperature``, ``epochs``,
    ``rrobin_subset``, ``seed``).
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1 (got {batch_size})")
    if not lengths or any(len(v) == 0 for v in lengths.values()):
        raise ValueError(f"schedule {base!r}: every task needs training examples "
                         f"(sizes {({t: len(v) for t, v in lengths.items()})})")
    o = _options(config, pre_epochs=pre_epochs, temperature=temperature, epochs=epochs, rrobin_subset=rrobin_subset,
                 seed=seed)
    if o["rrobin_subset"] not in ("fixed", "fresh"):
        raise ValueError(f"rrobin subset {o['rrobin_subset']!r}: choose fixed or fresh")
    subset_seed = o["seed"] if o["rrobin_subset"] == "fixed" else None
    if base in ("pretrain", "finetune"):
        (task, lens), = lengths.items()
        return single_task_plan(lens, task, batch_size, rng, bucket)
    if base == "rrobin":
        return rrobin_plan(lengths, batch_size, rng, bucket, subset_seed)
    if base == "rrobin-pre":
        pre = quora_pass(lengths, batch_size, rng, bucket) if epoch <= o["pre_epochs"] else []
        return pre + rrobin_plan(lengths, batch_size, rng, bucket, subset_seed)
    if base == "rrobin-full":
        return rrobin_full_plan(lengths, batch_size, rng, bucket)
    sizes = {t: len(v) for t, v in lengths.items()}
    if base == "proportional":
        return sampled_plan(lengths, batch_size, sampling_probabilities(sizes), rng, bucket)
    if base == "annealed":
        alpha = annealed_alpha(epoch, o["epochs"], o["temperature"])
        return sampled_plan(lengths, batch_size, sampling_probabilities(sizes, alpha), rng, bucket)
    raise ValueError(f"schedule {base!r} is not available (choose from {', '.join(BASES)})")


def describe_schedule(base: str, sizes: dict[str, int], batch_size: int, config: Any = None,
                      **options: Any) -> dict[str, Any]:
    """What an epoch of ``base`` looks like, for ``config.json`` and the compare table (plain JSON)."""
    o = _options(config, **options)
    if base in ("pretrain", "finetune"):
        (n,) = sizes.values()
        return {"iterations": ceil_div(n, batch_size), "batch_sizes": {t: batch_size for t in sizes}}
    if base in ("rrobin", "rrobin-pre"):
        d: dict[str, Any] = {"iterations": rrobin_iterations(sizes, batch_size),
                             "batch_sizes": {t: batch_size for t in sizes}, "subset": o["rrobin_subset"]}
        if base == "rrobin-pre":
            d.update(pre_epochs=o["pre_epochs"], pre_iterations=ceil_div(sizes.get("para", 0), batch_size))
        return d
    if base == "rrobin-full":
        n, per_task = rrobin_full_sizes(sizes, batch_size)
        return {"iterations": n, "batch_sizes": per_task, "anchor": anchor_task(sizes)}
    steps = sampled_steps(sizes, batch_size)
    d = {"steps": steps, "iterations": ceil_div(steps, len(sizes)), "batch_sizes": {t: batch_size for t in sizes}}
    if base == "proportional":
        d["probabilities"] = {t: round(p, 4) for t, p in sampling_probabilities(sizes).items()}
    elif base == "annealed":
        d["temperature"] = o["temperature"]
        d["probabilities_per_epoch"] = [
            {t: round(p, 4) for t, p in sampling_probabilities(sizes, annealed_alpha(e, o["epochs"],
                                                                                     o["temperature"])).items()}
            for e in range(1, o["epochs"] + 1)]
    return d


def plan_steps(plan: Plan) -> int:
    return sum(len(it) for it in plan)


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b)
