"""How large SMART's two terms are next to the task loss, at a checkpoint saved by a SMART run.

For each perturbation size σ (with ε = σ; ``--steps`` ascent steps, 0 = fast mode; the main forward's dropout masks
replayed, or with ``--fresh-masks`` new masks drawn by f(x + δ)) and each task, the mean over a few training
batches (train mode, as in training) of the task loss, the smoothness term R_s = l_s(f(x + δ), f(x)) and the
Bregman term l_s(f(x; θ), f(x; θ̃)) with the checkpoint's saved teacher θ̃. Both terms are shown unweighted; the
trainer adds λ·R_s + μ·Bregman.

    python scripts/smart_terms.py CHECKPOINT DATA_DIR [--sigma 1e-5 1e-3 0.1] [--steps 0] [--fresh-masks] [--batches 8] [--threads 2]

CHECKPOINT is a checkpoint folder of a SMART run (``RUN/checkpoints/step-...``: it holds the teacher).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.checkpoint import load_checkpoint, read_trainer_state  # noqa: E402
from core.config import SmartConfig  # noqa: E402
from core.data import collate, load_task  # noqa: E402
from core.multitask import MultitaskBert  # noqa: E402
from core.smart import Smart  # noqa: E402
from core.trainer import batch_loss  # noqa: E402

BATCH = {"sst": 18, "para": 32, "sts": 13}  # rrobin-full's per-task batches at --batch-size 32 on ../shared/data


def terms(model: MultitaskBert, smart: Smart, task: str, data, batches: int) -> tuple[float, float, float]:
    """Mean (task loss, R_s, Bregman) over ``batches`` random training batches of ``task``, each through the
    trainer's own ``batch_loss`` (λ = μ = 1, so the task loss is its total minus the two terms it recorded)."""
    sums = [0.0, 0.0, 0.0]
    for k in range(batches):
        batch = collate(data, random.Random(k).sample(range(len(data)), BATCH[task]))
        total = batch_loss(model, smart, task, batch).item()
        ((r_s, bregman),) = smart.drain_terms()
        sums = [s + v for s, v in zip(sums, (total - r_s.item() - bregman.item(), r_s.item(), bregman.item()),
                                      strict=True)]
    return sums[0] / batches, sums[1] / batches, sums[2] / batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--sigma", type=float, nargs="+", default=[1e-5, 1e-3, 1e-2, 0.1])
    ap.add_argument("--steps", type=int, default=0, help="ascent steps K (the report's SMART: 1)")
    ap.add_argument("--fresh-masks", action="store_true",
                    help="f(x + δ) draws its own dropout masks (the published SMART; with small σ, R_s is then "
                         "the consistency of two dropout sub-networks, as R-Drop) instead of replaying the main "
                         "forward's")
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, _, tokenizer = load_checkpoint(args.checkpoint)
    model.train()  # training's condition: dropout on
    teacher = read_trainer_state(args.checkpoint).get("smart")
    if not teacher:
        sys.exit(f"{args.checkpoint}: no SMART teacher in its trainer state (not a SMART run's checkpoint?)")
    data = {t: load_task(args.data_dir, t, "train", tokenizer) for t in BATCH}
    print("| σ = ε | task | task loss | R_s | Bregman |\n|---:|---|---:|---:|---:|")
    for sigma in args.sigma:
        config = SmartConfig(lam=1.0, mu=1.0, eps=sigma, sigma=sigma, steps=args.steps, dropout_off=False,
                             same_masks=not args.fresh_masks)
        smart = Smart(model, config)
        smart.load_state_dict(teacher)
        for task in BATCH:
            loss, rs, bregman = terms(model, smart, task, data[task], args.batches)
            print(f"| {sigma:g} | {task} | {loss:.3f} | {rs:.1e} | {bregman:.1e} |", flush=True)


if __name__ == "__main__":
    main()
