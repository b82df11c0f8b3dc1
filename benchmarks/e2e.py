"""End to end: ``walkless train --variant finetune --task sst --epochs 1 --batch-size 32`` against the same work
as a plain transformers script (benchmarks/hf_baseline.py), each a fresh process timed from launch to exit
(imports, start-up, training, dev evaluation and saving included). Runs alternate (baseline, ours,
baseline, ours...) so that load from other processes hits both alike.

    python benchmarks/e2e.py --data-dir ../shared/data [--repeats 1] [--max-train N] [--out e2e.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.bench import steal_s

HERE = Path(__file__).resolve().parent


def timed(cmd: list[str], log: Path) -> tuple[float, float]:
    """(wall seconds, hypervisor steal seconds during the run) of ``cmd``, its output in ``log``."""
    s0, t0 = steal_s(), time.perf_counter()
    with open(log, "w") as f:
        subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - t0, steal_s() - s0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-train", type=int, default=None, help="quick checks only: a subset of SST train")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="e2e.json")
    a = p.parse_args()
    common = ["--epochs", str(a.epochs), "--batch-size", str(a.batch_size), "--data-dir", a.data_dir]
    if a.max_train:
        common += ["--max-train", str(a.max_train)]
    if a.threads:
        common += ["--threads", str(a.threads)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="walkless-e2e-") as tmp:
        ours = [sys.executable, "-m", "core.cli", "train", "--variant", "finetune", "--task", "sst",
                "--runs-dir", str(Path(tmp) / "runs"), *common]
        base = [sys.executable, str(HERE / "hf_baseline.py"), "--out", str(Path(tmp) / "hf"), *common]
        for r in range(a.repeats):
            load = os.getloadavg()[0]
            tb, sb = timed(base, Path(tmp) / f"base-{r}.log")
            to, so = timed(ours, Path(tmp) / f"ours-{r}.log")
            tail_b = (Path(tmp) / f"base-{r}.log").read_text().strip().splitlines()[-2:]
            tail_o = (Path(tmp) / f"ours-{r}.log").read_text().strip().splitlines()[-3:]
            rows.append({"baseline_s": round(tb, 1), "ours_s": round(to, 1), "ratio": round(to / tb, 3),
                         "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
                         "steal_s": {"baseline": round(sb, 1), "ours": round(so, 1)},
                         "baseline_tail": tail_b, "ours_tail": tail_o})
            print(f"round {r + 1}: baseline {tb:.1f}s, ours {to:.1f}s, ours/baseline {to / tb:.2f} "
                  f"(load {load:.2f} -> {os.getloadavg()[0]:.2f})", flush=True)
            print("  baseline: " + " | ".join(tail_b), flush=True)
    res = {"command": "python benchmarks/e2e.py " + " ".join(sys.argv[1:]),
           "ours_cmd": " ".join(["python", *ours[1:]]), "baseline_cmd": " ".join(["python", *base[1:]]), "rounds": rows,
           "ratio": round(sum(x["ours_s"] for x in rows) / sum(x["baseline_s"] for x in rows), 3)}
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    print(f"ours / baseline wall time: {res['ratio']:.2f} (target <= 0.5); wrote {a.out}")


if __name__ == "__main__":
    main()
