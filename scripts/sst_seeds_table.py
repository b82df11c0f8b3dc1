"""The one-epoch SST check's table: the expert transformers script against `walkless train`, seed by seed.

Reads the files scripts/sst-seeds.sh's runs leave, as committed in results/sst-one-epoch/seeds/:
``expert-sN.txt`` (the script's last lines, with ``dev accuracy X``) and ``ours-sN.best.json`` (the run's
``best.json``; one epoch, so its only evaluation). Prints a markdown table of the seeds that have both, then the
mean ± sample standard deviation of each column (the last column is the paired difference).

    python scripts/sst_seeds_table.py results/sst-one-epoch/seeds
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path


def read_seeds(folder: Path) -> dict[int, tuple[float, float]]:
    """seed -> (expert dev accuracy, ours dev accuracy), for every seed with both files."""
    out = {}
    for txt in sorted(folder.glob("expert-s*.txt")):
        seed = int(re.fullmatch(r"expert-s(\d+)\.txt", txt.name).group(1))
        ours = folder / f"ours-s{seed}.best.json"
        m = re.search(r"dev accuracy ([0-9.]+)", txt.read_text())
        if m is None:
            raise SystemExit(f"{txt}: no 'dev accuracy' line")
        if ours.is_file():
            out[seed] = (float(m.group(1)), json.loads(ours.read_text())["dev"]["sst/acc"])
    return dict(sorted(out.items()))


def table(seeds: dict[int, tuple[float, float]]) -> str:
    """The markdown table: one row per seed, then mean ± sd over them."""
    rows = ["| seed | expert transformers script | `walkless train` | walkless − expert |", "|---:|---:|---:|---:|"]
    for seed, (expert, ours) in seeds.items():
        rows.append(f"| {seed} | {expert:.4f} | {ours:.4f} | {ours - expert:+.4f} |")
    expert = [e for e, _ in seeds.values()]
    ours = [o for _, o in seeds.values()]
    diff = [o - e for e, o in seeds.values()]

    def stat(xs, sign: str = "") -> str:
        mean = f"{statistics.mean(xs):{sign}.4f}"
        return f"{mean} ± {statistics.stdev(xs):.4f}" if len(xs) > 1 else mean

    rows.append(f"| mean ± sd, {len(seeds)} seeds | {stat(expert)} | {stat(ours)} | {stat(diff, '+')} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path)
    a = p.parse_args(argv)
    seeds = read_seeds(a.folder)
    if not seeds:
        print(f"{a.folder}: no seed has both expert-sN.txt and ours-sN.best.json", file=sys.stderr)
        return 2
    sys.stdout.write(table(seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
