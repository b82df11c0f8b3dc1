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
  ``rrobin_pre="para-first"`` is the report's code instead (its branch ``para-first``, where Table 2's row came
  from): every epoch has ``floor(n_para / B)`` iterations, each with a Quora batch of B (each example at most once,
  the remainder dropped); SST and STS join for the last ``floor(n_t / B)`` iterations, in batches of B (at least
  one), so an epoch is Quora alone, then Quora and SST, then all three, and sees every task's data about once.
- ``rrobin-full`` (report 4.2, "interleaved"): the largest task (Quora) anchors the epoch:
  ``iterations = floor(n_anchor / B)`` (at least 1), the anchor takes batches of B (each of its examples
  at most once, the remainder dropped) and every other task ``b_t = max(1, floor(B * n_t / n_anchor))``.
  Floor, not round, is what reproduces the report's 64 / 3 / 2 for Quora / SST / STS at 141,506 / 8,544 /
  6,040 examples (round would give 4 and 3); the smaller tasks then see ``b_t * iterations <= n_t`` examples
  per epoch, a fresh shuffle each epoch. ``sst_passes=k`` (beyond the report) puts k SST batches of ``b_sst`` in
  each iteration, spread between the other tasks' steps: k passes over SST per epoch.
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
from dataclasses import dataclass, fields
from typing import Any

from core.config import RROBIN_SUBSETS, TrainConfig
from core.data import batch_indices
from core.variants import BASES

Lengths = dict[str, list[int]]  # task -> its examples' token counts (for length bucketing)
Step = tuple[str, list[int]]
Plan = list[list[Step]]


@dataclass(frozen=True)
class ScheduleOptions:
    """What a schedule reads besides the data: the ``TrainConfig`` fields of the same names."""

    batch_size: int
    bucket: bool = True
    epochs: int = 1
    pre_epochs: int = 1
    temperature: float = 5.0
    rrobin_subset: str = "fixed"
    seed: int = 0
    sst_passes: int = 1
    rrobin_pre: str = "quora-epoch"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1 (got {self.batch_size})")
        if self.rrobin_subset not in RROBIN_SUBSETS:
            raise ValueError(f"rrobin subset {self.rrobin_subset!r}: choose {' or '.join(RROBIN_SUBSETS)}")
        if self.rrobin_pre not in ("quora-epoch", "para-first"):
            raise ValueError(f"rrobin-pre {self.rrobin_pre!r}: choose quora-epoch or para-first")

    @classmethod
    def from_config(cls, config: TrainConfig) -> ScheduleOptions:
        """The config's fields of the same names (one left unset, None, keeps this class's default: ours)."""
        values = {f.name: getattr(config, f.name) for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if v is not None})


# --- building blocks -------------------------------------------------------------------------------
def sizes_of(lengths: Lengths) -> dict[str, int]:
    return {t: len(v) for t, v in lengths.items()}


def single_task_plan(lengths: list[int], task: str, rng: random.Random, o: ScheduleOptions) -> Plan:
    return [[(task, b)] for b in batch_indices(lengths, o.batch_size, True, rng, o.bucket)]


def _cycled_batches(lengths: list[int], size: int, count: int, rng: random.Random,
                    bucket: bool) -> list[list[int]]:
    """``count`` batches of ``size`` from one task, reshuffling when the data run out."""
    out: list[list[int]] = []
    while len(out) < count:
        out += batch_indices(lengths, size, True, rng, bucket, drop_last=len(lengths) >= size)
    return out[:count]


def _interleave(lengths: Lengths, sizes: dict[str, int], n: int, rng: random.Random, bucket: bool,
                order: list[str] | None = None) -> Plan:
    """``n`` iterations, each the tasks of ``order`` (default: every task once, in ``lengths`` order) with a batch
    of ``sizes[t]`` per step; a task named twice in ``order`` draws twice as many batches of its data."""
    order = order or list(lengths)
    streams = {t: iter(_cycled_batches(lengths[t], sizes[t], order.count(t) * n, rng, bucket)) for t in lengths}
    return [[(t, next(streams[t])) for t in order] for _ in range(n)]


def rrobin_iterations(sizes: dict[str, int], batch_size: int) -> int:
    """Equal batches from every task, ``floor(len(sts_train) / batch)`` iterations (the report's rule)."""
    return max(1, sizes.get("sts", min(sizes.values())) // batch_size)


def fixed_subset(n: int, k: int, seed: int, task: str) -> list[int]:
    """``k`` of ``range(n)`` (all of them when ``k >= n``), the same for a seed and task in every epoch."""
    return list(range(n)) if k >= n else sorted(random.Random(f"{seed}:{task}").sample(range(n), k))


def anchor_task(sizes: dict[str, int]) -> str:
    """The task whose data an ``rrobin-full`` epoch uses completely: the largest (Quora; ties prefer para)."""
    return max(sizes, key=lambda t: (sizes[t], t == "para"))


def rrobin_full_sizes(sizes: dict[str, int], batch_size: int) -> tuple[int, dict[str, int]]:
    """``(iterations, {task: batch size})`` of interleaved round-robin (see the module docstring)."""
    anchor = anchor_task(sizes)
    n_max = sizes[anchor]
    n = max(1, n_max // batch_size)
    return n, {t: batch_size if t == anchor else max(1, batch_size * sizes[t] // n_max) for t in sizes}


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


# --- the schedules ---------------------------------------------------------------------------------
class Schedule:
    """One variant base's schedule: ``plan`` builds the iterations of epoch ``epoch`` (1-based); ``describe``
    says what an epoch looks like, in plain JSON for ``config.json`` and the compare table (``sizes``:
    examples per task)."""

    def plan(self, lengths: Lengths, epoch: int, rng: random.Random, o: ScheduleOptions) -> Plan:
        raise NotImplementedError

    def describe(self, sizes: dict[str, int], o: ScheduleOptions) -> dict[str, Any]:
        raise NotImplementedError


class SingleTask(Schedule):
    def plan(self, lengths: Lengths, epoch: int, rng: random.Random, o: ScheduleOptions) -> Plan:
        (task, lens), = lengths.items()
        return single_task_plan(lens, task, rng, o)

    def describe(self, sizes: dict[str, int], o: ScheduleOptions) -> dict[str, Any]:
        (n,) = sizes.values()
        return {"iterations": math.ceil(n / o.batch_size), "batch_sizes": dict.fromkeys(sizes, o.batch_size)}


@dataclass(frozen=True)
class RoundRobin(Schedule):
    pre: bool = False  # rrobin-pre: a Quora pass in front of the first pre_epochs

    def plan(self, lengths: Lengths, epoch: int, rng: random.Random, o: ScheduleOptions) -> Plan:
        if self.pre and o.rrobin_pre == "para-first":
            return para_first_plan(lengths, rng, o)
        head = []
        if self.pre and epoch <= o.pre_epochs:
            if "para" not in lengths:
                raise ValueError("schedule rrobin-pre needs the paraphrase (para) task")
            head = single_task_plan(lengths["para"], "para", rng, o)
        n, sizes = rrobin_iterations(sizes_of(lengths), o.batch_size), dict.fromkeys(lengths, o.batch_size)
        if o.rrobin_subset == "fresh":
            return head + _interleave(lengths, sizes, n, rng, o.bucket)
        keep = {t: fixed_subset(len(v), n * o.batch_size, o.seed, t) for t, v in lengths.items()}
        plan = _interleave({t: [lengths[t][i] for i in keep[t]] for t in lengths}, sizes, n, rng, o.bucket)
        return head + [[(t, [keep[t][j] for j in idx]) for t, idx in it] for it in plan]

    def describe(self, sizes: dict[str, int], o: ScheduleOptions) -> dict[str, Any]:
        if self.pre and o.rrobin_pre == "para-first":
            n, starts = para_first_starts(sizes, o.batch_size)
            return {"iterations": n, "batch_sizes": dict.fromkeys(sizes, o.batch_size), "starts": starts,
                    "rrobin_pre": "para-first"}
        d: dict[str, Any] = {"iterations": rrobin_iterations(sizes, o.batch_size),
                             "batch_sizes": dict.fromkeys(sizes, o.batch_size), "subset": o.rrobin_subset}
        if self.pre:
            d.update(pre_epochs=o.pre_epochs, pre_iterations=math.ceil(sizes.get("para", 0) / o.batch_size))
        return d


def para_first_starts(sizes: dict[str, int], batch_size: int) -> tuple[int, dict[str, int]]:
    """``(iterations, {task: first iteration it trains in})`` of the report's code's para-first epoch: Quora's
    ``floor(n / B)`` iterations, each other task joining for its last ``max(1, floor(n_t / B))``."""
    if "para" not in sizes:
        raise ValueError("schedule rrobin-pre (para-first) needs the paraphrase (para) task")
    n = max(1, sizes["para"] // batch_size)
    return n, {t: 0 if t == "para" else n - min(n, max(1, k // batch_size)) for t, k in sizes.items()}


def para_first_plan(lengths: Lengths, rng: random.Random, o: ScheduleOptions) -> Plan:
    """One para-first epoch (see the module docstring): iteration i has every task whose start is <= i, in the
    tasks' order (sst, para, sts), each a batch of B drawn without repeats from a fresh shuffle."""
    n, starts = para_first_starts(sizes_of(lengths), o.batch_size)
    streams = {t: iter(_cycled_batches(lengths[t], o.batch_size, n - starts[t], rng, o.bucket)) for t in lengths}
    return [[(t, next(streams[t])) for t in lengths if i >= starts[t]] for i in range(n)]


class Interleaved(Schedule):
    def plan(self, lengths: Lengths, epoch: int, rng: random.Random, o: ScheduleOptions) -> Plan:
        n, per_task = rrobin_full_sizes(sizes_of(lengths), o.batch_size)
        return _interleave(lengths, per_task, n, rng, o.bucket, sst_pass_order(list(lengths), o.sst_passes))

    def describe(self, sizes: dict[str, int], o: ScheduleOptions) -> dict[str, Any]:
        n, per_task = rrobin_full_sizes(sizes, o.batch_size)
        d = {"iterations": n, "batch_sizes": per_task, "anchor": anchor_task(sizes)}
        return {**d, "sst_passes": o.sst_passes} if o.sst_passes != 1 else d


def sst_pass_order(tasks: list[str], passes: int) -> list[str]:
    """One ``rrobin-full`` iteration's tasks with ``passes`` SST steps: the usual order with the extra SST steps
    after the other tasks' steps in turn, so SST's updates stay spread out (2: sst, para, sst, sts; 3: sst, para,
    sst, sts, sst). Without SST, or with one pass, the usual order."""
    if passes == 1 or "sst" not in tasks:
        return tasks
    order, extra = ["sst"], passes - 1
    for t in (t for t in tasks if t != "sst"):
        order += [t] + ["sst"] * min(extra, 1)
        extra -= min(extra, 1)
    return order + ["sst"] * extra


@dataclass(frozen=True)
class Sampled(Schedule):
    annealed: bool = False  # proportional, or annealed towards o.temperature

    def probabilities(self, sizes: dict[str, int], epoch: int, o: ScheduleOptions) -> dict[str, float]:
        alpha = annealed_alpha(epoch, o.epochs, o.temperature) if self.annealed else 1.0
        return sampling_probabilities(sizes, alpha)

    def plan(self, lengths: Lengths, epoch: int, rng: random.Random, o: ScheduleOptions) -> Plan:
        """Each step draws its task and takes that task's next batch; iterations of one step per task."""
        tasks, sizes = list(lengths), sizes_of(lengths)
        probs, n = self.probabilities(sizes, epoch, o), sampled_steps(sizes, o.batch_size)
        draws = rng.choices(tasks, weights=[probs[t] for t in tasks], k=n)
        n_t = Counter(draws)
        streams = {t: iter(_cycled_batches(lengths[t], o.batch_size, n_t[t], rng, o.bucket)) for t in tasks}
        steps = [(t, next(streams[t])) for t in draws]
        return [steps[i:i + len(tasks)] for i in range(0, n, len(tasks))]

    def describe(self, sizes: dict[str, int], o: ScheduleOptions) -> dict[str, Any]:
        steps = sampled_steps(sizes, o.batch_size)
        d = {"steps": steps, "iterations": math.ceil(steps / len(sizes)),
             "batch_sizes": dict.fromkeys(sizes, o.batch_size)}
        p = [{t: round(v, 4) for t, v in self.probabilities(sizes, e, o).items()}
             for e in range(1, o.epochs + 1)]
        if not self.annealed:
            return {**d, "probabilities": p[0]}
        return {**d, "temperature": o.temperature, "probabilities_per_epoch": p}


SCHEDULES: dict[str, Schedule] = {"pretrain": SingleTask(), "finetune": SingleTask(), "rrobin": RoundRobin(),
                                  "rrobin-pre": RoundRobin(pre=True), "rrobin-full": Interleaved(),
                                  "proportional": Sampled(), "annealed": Sampled(annealed=True)}


def make_plan(base: str, lengths: Lengths, epoch: int, rng: random.Random, o: ScheduleOptions) -> Plan:
    """``SCHEDULES[base].plan``, with clear errors for an unknown base and a task without training data."""
    if base not in SCHEDULES:
        raise ValueError(f"schedule {base!r} is not available (choose from {', '.join(BASES)})")
    if not lengths or any(len(v) == 0 for v in lengths.values()):
        raise ValueError(f"schedule {base!r}: every task needs training examples (sizes {sizes_of(lengths)})")
    return SCHEDULES[base].plan(lengths, epoch, rng, o)


def plan_steps(plan: Plan) -> int:
    return sum(len(it) for it in plan)
