"""Variant names: the grammar ``base[+rlayer][+smart]``, the report's Table 2 rows and the task sets.

Imports no torch, so that the app's launch form can offer every valid variant without waiting for it
(``core.schedules`` builds each base's plans).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

MULTITASK = ("sst", "para", "sts")
BASES = ("pretrain", "finetune", "rrobin", "rrobin-pre", "rrobin-full", "proportional", "annealed")
MODIFIERS = ("rlayer", "smart")  # canonical order in names: rrobin-full+rlayer+smart
# The report's Table 2 rows, in its order.
REPORT_VARIANTS = ("pretrain", "finetune", "finetune+smart", "rrobin", "rrobin+smart", "rrobin-pre+smart",
                   "rrobin-full", "rrobin-full+smart", "rrobin-full+rlayer")


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
    if len(set(mods)) != len(mods):
        raise ValueError(f"variant {text!r}: a modifier is repeated")
    v = Variant(base, "smart" in mods, "rlayer" in mods)
    if v.rlayer and not v.multitask:
        raise ValueError(f"variant {text!r}: +rlayer needs a multitask base (the pair tasks share it)")
    if v.base == "pretrain" and v.smart:
        raise ValueError(f"variant {text!r}: pretrain freezes the encoder; +smart needs finetune")
    return v


def train_tasks(variant: Variant, task: str, cfimdb: bool = False) -> tuple[str, ...]:
    """The tasks a run trains: a multitask base trains the report's three (and CFIMDB after them with
    ``cfimdb``), a single-task base ``task``."""
    if not variant.multitask:
        return (task,)
    return MULTITASK + (("cfimdb",) if cfimdb else ())


def judged_tasks(variant: Variant, tasks: tuple[str, ...]) -> tuple[str, ...]:
    """The trained tasks whose dev metrics pick the best checkpoint: a multitask run's SST, Quora and STS (an
    added CFIMDB task is only a helper), a single-task run's own task."""
    return tuple(t for t in tasks if t in MULTITASK) if variant.multitask else tasks


def all_variants() -> list[str]:
    """Every name ``parse_variant`` accepts, in canonical form: each base, then its modifier combinations."""
    out = []
    for base in BASES:
        for n in range(len(MODIFIERS) + 1):
            for mods in itertools.combinations(MODIFIERS, n):
                try:
                    out.append(parse_variant("+".join([base, *mods])).name)
                except ValueError:
                    continue
    return out
