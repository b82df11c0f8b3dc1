"""Runs of one recipe at several seeds, summarized: every epoch's dev numbers, their mean and spread over the seeds
per epoch, and each run's best checkpoint (the one the run keeps) with the mean of those. Runs whose settings
differ only in the seed (``walkless compare``'s settings) are one recipe.

    python results/seeds.py RUN_DIR... [--json FILE]      markdown on stdout; --json: configs and epochs
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.report import COLUMNS, TABLE_COLUMNS, compare_rows  # noqa: E402
from core.runs import read_json, read_metrics  # noqa: E402

KEYS = [k for k, _ in COLUMNS]


def recipes(rows: list[dict]) -> dict[str, list[dict]]:
    """``compare_rows`` rows grouped by variant and settings without the seed, named by their first run."""
    groups: dict[str, list[dict]] = {}
    names: dict[str, str] = {}
    for row in rows:
        key = json.dumps([row["variant"], {k: v for k, v in row["settings"].items() if k != "seed"}],
                         sort_keys=True, default=str)
        groups.setdefault(names.setdefault(key, row["name"]), []).append(row)
    return groups


def spread(values: list[float]) -> str:
    """mean ± population standard deviation (min to max), to 3 decimals."""
    return (f"{statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f} "
            f"({min(values):.3f} to {max(values):.3f})")


def summary(runs: list[Path]) -> tuple[str, dict]:
    """(the markdown, per run: config and epoch records)."""
    rows = compare_rows(runs, at="checkpoint")
    epochs = {row["name"]: [r for r in read_metrics(row["path"]) if r.get("kind") == "epoch"] for row in rows}
    md = ["| run | seed | epoch | SST | Quora | STS r | seconds |", "|---|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {row['name']} | {row['settings']['seed']} | {e['epoch']} | "
           + " | ".join(f"{e['dev'][k]:.3f}" for k in KEYS) + f" | {e['seconds']:,.0f} |"
           for row in rows for e in epochs[row["name"]]]
    md += ["", "Over seeds, per epoch (mean ± standard deviation, min to max):", "",
           "| recipe (its first run) | epoch | runs | SST | Quora | STS r |", "|---|---:|---:|---|---|---|"]
    groups = recipes(rows)
    for recipe, members in groups.items():
        for n in sorted({e["epoch"] for m in members for e in epochs[m["name"]]}):
            devs = [e["dev"] for m in members for e in epochs[m["name"]] if e["epoch"] == n]
            md.append(f"| {recipe} | {n} | {len(devs)} | " + " | ".join(spread([d[k] for d in devs]) for k in KEYS)
                      + " |")
    md += ["", "Each run's best checkpoint (what the run keeps: the best mean dev metric); overall = (SST + Quora + "
           "(STS + 1) / 2) / 3:", "", "| run | seed | epoch | SST | Quora | STS r | overall |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {row['name']} | {row['settings']['seed']} | {read_json(Path(row['path']) / 'best.json')['epoch']} | "
           + " | ".join(f"{row[k]:.3f}" for k, _ in TABLE_COLUMNS)
           + " |" for row in rows if row.get("overall") is not None]
    md += ["", "| recipe (its first run) | runs | SST | Quora | STS r | overall |", "|---|---:|---|---|---|---|"]
    for recipe, members in groups.items():
        done = [m for m in members if m.get("overall") is not None]
        if done:
            md.append(f"| {recipe} | {len(done)} | " + " | ".join(spread([m[k] for m in done]) for k, _ in TABLE_COLUMNS)
                      + " |")
    return "\n".join(md) + "\n", {row["name"]: {"config": row["config"], "epochs": epochs[row["name"]]} for row in rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders")
    p.add_argument("--json", type=Path, help="also write the configs and epoch records here")
    a = p.parse_args()
    md, data = summary(a.runs)
    if a.json:
        a.json.write_text(json.dumps(data, indent=1) + "\n")
    print(md, end="")


if __name__ == "__main__":
    main()
