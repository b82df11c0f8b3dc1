"""Where a training step's time goes: our trainer on SST batches (``finetune``, batch 32), profiled with
``torch.profiler``, then each share of the step: optimizer (fused AdamW over every parameter, the 30,522-row
word embedding included), ``zero_grad``, the word embedding's dense gradient (``embedding_dense_backward``),
the rest of the backward pass, and the forward pass. Start-up pieces are timed too: importing the trainer,
loading the encoder, tokenizing the training set, and evaluating the SST dev set.

    python benchmarks/profile_step.py --data-dir ../shared/data [--steps 20] [--threads 2] [--out profile.json]

Shares are of the profiled steps' wall time; on a busy machine they are indicative, not a benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

T0 = time.perf_counter()
import torch  # noqa: E402

from core.config import TrainConfig  # noqa: E402

IMPORT_S = time.perf_counter() - T0

GROUPS = {  # profiler event name -> share label; the first matching prefix wins
    "Optimizer.step": "optimizer step (AdamW)",
    "Optimizer.zero_grad": "zero_grad",
    "aten::embedding_dense_backward": "word embedding gradient (dense)",
    "autograd::engine::evaluate_function": "backward (all)",
}


def shares(prof, steps_s: float) -> dict[str, float]:
    """Seconds per group from the profiler's top-level events (children are not double counted)."""
    out = dict.fromkeys(GROUPS.values(), 0.0)
    for e in prof.events():
        for prefix, label in GROUPS.items():
            if e.name.startswith(prefix) and (label != "backward (all)" or e.cpu_parent is None
                                              or not e.cpu_parent.name.startswith("autograd::engine")):
                out[label] += e.cpu_time_total / 1e6
                break
    out["forward and the rest"] = steps_s - out["optimizer step (AdamW)"] - out["zero_grad"] - out["backward (all)"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="profile.json")
    a = p.parse_args()
    from torch.profiler import ProfilerActivity, profile

    from core.evaluate import evaluate
    from core.setup import build_model, prepare
    from core.trainer import Trainer

    if a.threads:
        torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(variant="finetune", task="sst", data_dir=a.data_dir, runs_dir=tmp, batch_size=32, lr=5e-5,
                          threads=a.threads, log_every=10**9, max_steps=a.steps + 3)
        t = time.perf_counter()
        setup = prepare(cfg)  # tokenizer, data (tokenized once)
        prepare_s = time.perf_counter() - t
        t = time.perf_counter()
        build_model(setup, torch.device("cpu"))
        model_s = time.perf_counter() - t
        (Path(tmp) / "run").mkdir()
        trainer = Trainer(setup, Path(tmp) / "run")
        plan = trainer.plan(1)
        for it in plan[:3]:  # warm-up
            trainer.iteration(it)
        trainer.flush_losses()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t = time.perf_counter()
            for it in plan[3:3 + a.steps]:
                trainer.iteration(it)
            trainer.flush_losses()
            steps_s = time.perf_counter() - t
        t = time.perf_counter()
        trainer.model.eval()
        evaluate(trainer.model, {"sst": setup.dev["sst"]})
        eval_s = time.perf_counter() - t
    parts = shares(prof, steps_s)
    n_emb = trainer.model.bert.embeddings.word_embeddings.weight.numel()
    n_all = sum(q.numel() for q in trainer.model.parameters())
    res = {"command": "python benchmarks/profile_step.py " + " ".join(sys.argv[1:]), "threads": torch.get_num_threads(),
           "steps": a.steps, "step_ms": round(1e3 * steps_s / a.steps, 1),
           "shares": {k: round(v / steps_s, 3) for k, v in parts.items()},
           "parameters": n_all, "word_embedding_parameters": n_emb,
           "startup_s": {"import torch + core.config": round(IMPORT_S, 2), "prepare (tokenizer, data)": round(prepare_s, 2),
                         "build model (load encoder)": round(model_s, 2)},
           "sst_dev_eval_s": round(eval_s, 2)}
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    print(f"{a.steps} steps, {res['step_ms']} ms/step, {res['threads']} threads")
    for k, v in res["shares"].items():
        print(f"  {k:36s} {v:6.1%}")
    print(f"  word embedding: {n_emb:,} of {n_all:,} parameters ({n_emb / n_all:.0%}), updated densely each step")
    for k, v in res["startup_s"].items():
        print(f"  start-up, {k:30s} {v:6.2f} s")
    print(f"  SST dev evaluation {eval_s:.2f} s; wrote {a.out}")


if __name__ == "__main__":
    main()
