"""Dropout masks from 16-bit random lanes (``core.fastpath.Dropout``) against the ``rand_like`` mask it replaced
and ``F.dropout`` (``bernoulli_``): time to drop out one (32, 12, 80, 80) attention tensor, then our trainer's
SST steps with each dropout, steps alternating (``core.bench._interleave``) on the same batches.

    python benchmarks/dropout.py --data-dir ../shared/data [--steps 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from core import bench
from core.data import read_examples, task_file, tokenize
from core.encoders import load_tokenizer, resolve_encoder
from core.fastpath import Dropout

LANES = Dropout.forward


def rand_like_forward(self: Dropout, x: torch.Tensor) -> torch.Tensor:
    """The previous CPU mask: one float draw per element."""
    if not self.training or self.p == 0.0:
        return x
    keep = (torch.rand_like(x) >= self.p).to(x.dtype)
    return x * keep.mul_(1.0 / (1.0 - self.p))


def mask_ms(fn, x: torch.Tensor, repeats: int = 20) -> float:
    """Mean ms of ``fn(x)`` over ``repeats`` calls after one untimed call."""
    fn(x)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn(x)
    return (time.perf_counter() - t0) / repeats * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    d, x = Dropout(0.1), torch.randn(32, 12, 80, 80)
    print(f"threads {torch.get_num_threads()}; dropping out a {tuple(x.shape)} tensor, p = 0.1:")
    print(f"  16-bit lanes {mask_ms(d, x):.1f} ms, rand_like {mask_ms(lambda t: rand_like_forward(d, t), x):.1f} ms, "
          f"F.dropout {mask_ms(lambda t: F.dropout(t, 0.1, True), x):.1f} ms")

    cfg = bench.BenchConfig(data_dir=a.data_dir, threads=a.threads, out=None)
    enc, data_dir = resolve_encoder(cfg.encoder), Path(a.data_dir)
    tok = load_tokenizer(enc)
    data = tokenize(read_examples(task_file(data_dir, "sst", "train"), "sst")[: (a.steps + 4) * 32], "sst", tok)
    with tempfile.TemporaryDirectory(prefix="walkless-dropout-") as tmp:
        forwards = {"lanes": LANES, "rand_like": rand_like_forward}
        trainers = {name: bench._make_trainer(cfg, "finetune", enc, data_dir, tok, data, Path(tmp) / name)
                    for name in forwards}
        batches = bench._our_batches(trainers["lanes"], 0, a.steps + 4)

        def step(name: str, forward):
            def run(idx: list[int]) -> None:
                Dropout.forward = forward
                trainers[name].iteration([("sst", idx)])
                Dropout.forward = LANES
            return run

        sides = {name: (step(name, fwd), batches, trainers[name].flush_losses) for name, fwd in forwards.items()}
        bench._interleave({k: (s, b[:4], f) for k, (s, b, f) in sides.items()})  # warm-up
        secs, steal = bench._interleave({k: (s, b[4:], f) for k, (s, b, f) in sides.items()})
    n = len(batches) - 4
    print(f"training steps (SST, batch 32, {n} each, alternating; steal {steal:.1f} s): "
          f"lanes {secs['lanes'] / n * 1e3:.0f} ms, rand_like {secs['rand_like'] / n * 1e3:.0f} ms, "
          f"lanes / rand_like {secs['lanes'] / secs['rand_like']:.3f}")


if __name__ == "__main__":
    main()
