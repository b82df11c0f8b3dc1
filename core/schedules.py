"""Variant names and multitask schedules: which task batches each training iteration takes.

An epoch plan is a list of iterations; an iteration is a list of ``(task, example indices)`` steps,
taken in order (one optimizer step each, or one summed step).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from core.data import batch_indices

MULTITASK = ("sst", "para", "sts")
BASES = ("pretrain", "finetune", "rrobin", "rrobin-pre", "rrobin-full", "proportional", "annealed")
MODIFIERS = ("smart", "rlayer")


@dataclass(frozen=True)
class Variant:
    base: str
    smart: bool = False
    rlayer: bool = False

    @property
    def multitask(self) -> bool:
        return self.base not in ("pretrain", "finetune")

    @property
    def name(self) -> str:
        return "+".join([self.base] + [m for m in MODIFIERS if getattr(self, m)])


def parse_variant(text: str) -> Variant:
    """``rrobin-full+rlayer+smart`` -> Variant; a clear ``ValueError`` for unknown parts."""
    base, *mods = [p.strip() for p in text.strip().split("+")]
    if base not in BASES:
        raise ValueError(f"variant {text!r}: unknown base {base!r} (choose from {', '.join(BASES)})")
    for m in mods:
        if m not in MODIFIERS:
            raise ValueError(f"variant {text!r}: unknown modifier {m!r} (choose from {', '.join(MODIFIERS)})")
    v = Variant(base, "smart" in mods, "rlayer" in mods)
    if v.rlayer and not v.multitask:
        raise ValueError(f"variant {text!r}: +rlayer needs a multitask base (the pair tasks share it)")
    if v.base == "pretrain" and v.smart:
        raise ValueError(f"variant {text!r}: pretrain freezes the encoder; +smart needs finetune")
    return v


def single_task_plan(n: int, lengths: list[int], task: str, batch_size: int, rng: random.Random,
                     bucket: bool) -> list[list[tuple[str, list[int]]]]:
    return [[(task, b)] for b in batch_indices(lengths, batch_size, True, rng, bucket)]


def rrobin_iterations(sizes: dict[str, int], batch_size: int) -> int:
    """Equal batches from every task, ``floor(len(sts_train) / batch)`` iterations (the report's rule)."""
    return max(1, sizes.get("sts", min(sizes.values())) // batch_size)


def _cycled_batches(lengths: list[int], size: int, count: int, rng: random.Random, bucket: bool) -> list[list[int]]:
    """``count`` batches of ``size`` from one task, reshuffling when the data run out."""
    out: list[list[int]] = []
    while len(out) < count:
        out += batch_indices(lengths, size, True, rng, bucket, drop_last=len(lengths) >= size)
    return out[:count]


def rrobin_plan(lengths: dict[str, list[int]], batch_size: int, rng: random.Random,
                bucket: bool) -> list[list[tuple[str, list[int]]]]:
    n = rrobin_iterations({t: len(v) for t, v in lengths.items()}, batch_size)
    per_task = {t: _cycled_batches(lengths[t], batch_size, n, rng, bucket) for t in lengths}
    return [[(t, per_task[t][i]) for t in lengths] for i in range(n)]


def make_plan(base: str, lengths: dict[str, list[int]], batch_size: int, epoch: int, rng: random.Random,
              bucket: bool = True, **options) -> list[list[tuple[str, list[int]]]]:
    """The iterations of one epoch for a schedule ``base``."""
    if base in ("pretrain", "finetune"):
        (task, lens), = lengths.items()
        return single_task_plan(len(lens), lens, task, batch_size, rng, bucket)
    if base == "rrobin":
        return rrobin_plan(lengths, batch_size, rng, bucket)
    raise ValueError(f"schedule {base!r} is not available")


def plan_steps(plan: list[list[tuple[str, list[int]]]]) -> int:
    return sum(len(it) for it in plan)


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b)
