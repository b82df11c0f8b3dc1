"""End to end: ``walkless train --variant finetune --task sst --epochs 1 --batch-size 32 --lr 5e-5`` against the
same work written by a skilled transformers user (benchmarks/hf_expert.py, the headline) and as a naive loop
(benchmarks/hf_baseline.py, a second column). Each side is a fresh process timed from launch to exit (imports,
start-up, training, dev evaluation, saving). Rounds alternate the sides (expert, naive, ours, expert, ...) so
that load from other processes hits all alike; the table reports the median of the rounds and each side's dev
accuracy, since a speed-up with a worse model does not count.

    python benchmarks/e2e.py --data-dir ../shared/data [--rounds 3] [--sides expert,naive,ours] [--out e2e.json]
    python benchmarks/e2e.py --data-dir DATA --device cuda --bf16 --sides expert,ours      # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.bench import steal_s

HERE = Path(__file__).resolve().parent
ACCURACY = {"expert": r"dev accuracy ([0-9.]+)", "naive": r"dev accuracy ([0-9.]+)", "ours": r"sst/acc ([0-9.]+)"}
TRAIN_S = {"expert": r"train ([0-9.]+)", "naive": r"train ([0-9.]+)", "ours": r"epoch 1: .*\(([0-9.]+)s\)"}


def timed(cmd: list[str], log: Path) -> tuple[float, float]:
    """(wall seconds, hypervisor steal seconds during the run) of ``cmd``, its output in ``log``."""
    s0, t0 = steal_s(), time.perf_counter()
    with open(log, "w") as f:
        subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - t0, steal_s() - s0


def found(pattern: str, text: str) -> float | None:
    """The last number ``pattern`` captures in ``text`` (None if absent)."""
    hits = re.findall(pattern, text)
    return float(hits[-1]) if hits else None


def commands(a: argparse.Namespace, tmp: Path) -> dict[str, list[str]]:
    common = ["--epochs", str(a.epochs), "--batch-size", str(a.batch_size), "--lr", str(a.lr), "--data-dir", a.data_dir]
    if a.max_train:
        common += ["--max-train", str(a.max_train)]
    if a.threads:
        common += ["--threads", str(a.threads)]
    device = ["--device", a.device]
    return {
        "expert": [sys.executable, str(HERE / "hf_expert.py"), "--out", str(tmp / "expert"), *common, *device,
                   *(["--bf16"] if a.bf16 else [])],
        "naive": [sys.executable, str(HERE / "hf_baseline.py"), "--out", str(tmp / "naive"), *common],
        "ours": [sys.executable, "-m", "core.cli", "train", "--variant", "finetune", "--task", "sst",
                 "--runs-dir", str(tmp / "runs"), *common, *device, *(["--autocast", "bf16"] if a.bf16 else [])],
    }


def summary(rows: list[dict], sides: list[str]) -> dict:
    """Median wall seconds, train seconds and dev accuracy per side, and ours' median ratio to each baseline."""
    out = {}
    for s in sides:
        med = {k: statistics.median(v) if (v := [r[s][k] for r in rows if r[s][k] is not None]) else None
               for k in ("wall_s", "train_s", "dev_acc")}
        out[s] = {**med, "dev_acc_all": [r[s]["dev_acc"] for r in rows]}
    if "ours" in sides:
        for s in sides:
            if s != "ours":
                out[f"speedup_vs_{s}"] = round(out[s]["wall_s"] / out["ours"]["wall_s"], 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sides", default="expert,naive,ours", help="comma-separated, in the order each round runs them")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--max-train", type=int, default=None, help="quick checks only: a subset of SST train")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu", help="naive runs on the CPU only: leave it out of --sides on a GPU")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast on both expert and ours (GPU)")
    p.add_argument("--out", default="e2e.json")
    a = p.parse_args()
    sides = [s.strip() for s in a.sides.split(",") if s.strip()]
    if bad := [s for s in sides if s not in ACCURACY]:
        p.error(f"--sides: unknown side {bad[0]!r} (expert, naive, ours)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="walkless-e2e-") as tmp:
        cmds = commands(a, Path(tmp))
        for r in range(a.rounds):
            row = {"load_before": round(os.getloadavg()[0], 2)}
            for s in sides:
                log = Path(tmp) / f"{s}-{r}.log"
                wall, steal = timed(cmds[s], log)
                text = log.read_text()
                row[s] = {"wall_s": round(wall, 1), "steal_s": round(steal, 1), "dev_acc": found(ACCURACY[s], text),
                          "train_s": found(TRAIN_S[s], text), "tail": text.strip().splitlines()[-2:]}
            row["load_after"] = round(os.getloadavg()[0], 2)
            rows.append(row)
            print(f"round {r + 1}: " + ", ".join(f"{s} {row[s]['wall_s']:.1f}s (dev {row[s]['dev_acc']})"
                                                  for s in sides) + f" (load {row['load_before']} -> {row['load_after']})",
                  flush=True)
    res = {"command": "python benchmarks/e2e.py " + " ".join(sys.argv[1:]),
           "commands": {s: " ".join(["python", *cmds[s][1:]]) for s in sides}, "rounds": rows,
           "median": summary(rows, sides)}
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    med = res["median"]
    for s in sides:
        print(f"{s:>7}: median {med[s]['wall_s']} s end to end, train {med[s]['train_s']} s, dev acc {med[s]['dev_acc']}")
    for s in sides:
        if f"speedup_vs_{s}" in med:
            print(f"ours vs {s}: {med[f'speedup_vs_{s}']:.2f}x (median wall)")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
