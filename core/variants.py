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


# one line per base and modifier, for the launch form (the schedules in full: core/schedules.py)
ABOUT = {
    "pretrain": "SST alone with the encoder frozen: only the task head learns (the report's baseline)",
    "finetune": "one task (the task field) alone, the whole encoder trained",
    "rrobin": "SST, Quora, STS in turn, one batch each per iteration; as many iterations as STS has batches",
    "rrobin-pre": "rrobin after a Quora-only pass at the start of the first epoch(s) (--pre-epochs)",
    "rrobin-full": "rrobin over all of Quora each epoch, SST and STS in smaller batches beside it (the report's "
                   "interleaved)",
    "proportional": "each step samples its task with probability ∝ its training-set size",
    "annealed": "proportional at first, then towards uniform (temperature), as in BERT-and-PALs",
    "rlayer": "+rlayer: a relational layer shared by the pair tasks",
    "smart": "+smart: SMART adversarial regularization (about 3x a plain step)",
}


def describe_variant(text: str) -> str:
    """One line saying what variant ``text`` trains (its base, then its modifiers)."""
    v = parse_variant(text)
    return "; ".join([ABOUT[v.base], *(ABOUT[m] for m in MODIFIERS if getattr(v, m))])


def variant_defaults(v: Variant) -> dict[str, float | int]:
    """The report's settings that depend on the variant (section 4.2): lr 1e-3 for pretrain (only a head
    learns), 1e-5 otherwise; batch 16 under SMART, else 64."""
    return {"lr": 1e-3 if v.base == "pretrain" else 1e-5, "batch_size": 16 if v.smart else 64}


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
