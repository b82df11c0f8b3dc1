"""Runs of one recipe at several seeds, summarized: every epoch's dev numbers, their mean and spread over the seeds
per epoch, and each run's best checkpoint (the one the run keeps) with the mean of those. Runs whose settings
differ only in the seed (``walkless compare``'s settings) are one recipe.

    python scripts/seeds.py RUN_DIR... [--records FILE...] [--only NAME...] [--json FILE]

Markdown on stdout; ``--json`` writes the runs' configs and epoch records. ``--records`` reads such files back
(runs whose folders are gone), their best checkpoint being the epoch with the best mean dev metric of the judged
tasks, the rule the trainer keeps it by (a run saves and judges checkpoints at epoch ends only).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.evaluate import headline  # noqa: E402
from core.report import COLUMNS, TABLE_COLUMNS, compare_rows, overall, run_settings  # noqa: E402
from core.runs import RunFolder, read_metrics  # noqa: E402
from core.variants import judged_tasks, parse_variant  # noqa: E402

KEYS = [k for k, _ in COLUMNS]
EPOCH_LINE = re.compile(r"epoch (?P<epoch>\d+): (?P<metrics>.*) \((?P<seconds>[\d.]+)s\)$")


def from_folders(runs: list[Path]) -> list[dict]:
    """Run folders -> one record per run: name, variant, settings, config, epoch records, best epoch and values."""
    out = []
    for row in compare_rows(runs, at="checkpoint"):
        epochs = [r for r in read_metrics(row["path"]) if r.get("kind") == "epoch"]
        best = RunFolder(row["path"]).pointer("best")
        out.append({**{k: row[k] for k in ("name", "variant", "settings", "config")}, "epochs": epochs,
                    "best_epoch": best["epoch"] if best else None,
                    "best": {k: row[k] for k, _ in TABLE_COLUMNS} if row.get("overall") is not None else None})
    return out


def from_records(path: Path) -> list[dict]:
    """A ``--json`` file of this script -> the same records, the best epoch recomputed from the epoch records."""
    return records(json.loads(path.read_text()))


def from_epochs_log(path: Path) -> list[dict]:
    """``NAME-epochs.log`` (a run's ``epoch N:`` lines of train.log) beside ``NAME-config.json`` (its config.json)
    -> that run's record, for runs whose folders are gone; an error naming the file and line it cannot read."""
    if not path.name.endswith("-epochs.log"):
        raise SystemExit(f"{path}: not a NAME-epochs.log file")
    name = path.name.removesuffix("-epochs.log")
    config = json.loads(path.with_name(f"{name}-config.json").read_text())
    epochs = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if (epoch := epoch_record(line)) is None:
            raise SystemExit(f"{path}:{i}: not an 'epoch N: metric value ... (S s)' line")
        epochs.append(epoch)
    return records({name: {"config": config, "epochs": epochs}})


def epoch_record(line: str) -> dict | None:
    """The trainer's ``epoch N: metric value ... (S s)`` log line -> its epoch record; None for any other line."""
    if not (m := EPOCH_LINE.search(line)):
        return None
    words = m["metrics"].split()
    try:
        dev = {k: float(v) for k, v in zip(words[::2], words[1::2], strict=True)}
    except ValueError:  # a value that is not a number, or a name without one
        return None
    return {"kind": "epoch", "epoch": int(m["epoch"]), "seconds": float(m["seconds"]), "dev": dev} if dev else None


def records(saved: dict) -> list[dict]:
    """{name: {config, epochs}} -> one record per run, as ``from_folders`` gives, the best epoch recomputed."""
    out = []
    for name, rec in saved.items():
        c, epochs = rec["config"], rec["epochs"]
        judged = judged_tasks(parse_variant(c["variant"]), tuple(c["tasks"]))
        # the first epoch of the highest score (max keeps the first, as the trainer's strict ">")
        best = max(epochs, key=lambda e: headline(e["dev"], judged), default=None)
        values = {k: best["dev"].get(k) for k in KEYS} if best else {}
        total = overall(values)
        out.append({"name": name, "variant": c["variant"], "settings": run_settings(c, c["variant"]), "config": c,
                    "epochs": epochs, "best_epoch": best["epoch"] if best else None,
                    "best": {**values, "overall": total} if total is not None else None})
    return out


def recipe_settings(run: dict) -> dict:
    """What makes a run's recipe: its variant and settings, the seed aside (runs that share them are one recipe)."""
    return {**{k: v for k, v in run["settings"].items() if k != "seed"}, "variant": run["variant"]}


def recipes(runs: list[dict]) -> dict[str, list[dict]]:
    """Runs grouped by recipe (``recipe_settings``), named by their first run."""
    groups: dict[str, list[dict]] = {}
    names: dict[str, str] = {}
    for run in runs:
        key = json.dumps(recipe_settings(run), sort_keys=True, default=str)
        groups.setdefault(names.setdefault(key, run["name"]), []).append(run)
    return groups


def cell(value: float | None) -> str:
    """A dev value to 3 decimals; "-" for a task the run does not evaluate (a single-task run)."""
    return "-" if value is None else f"{value:.3f}"


def spread(values: list[float | None]) -> str:
    """mean ± population standard deviation (min to max), to 3 decimals, of the values that are there ("-" if none)."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return (f"{statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f} "
            f"({min(values):.3f} to {max(values):.3f})")


def summary(runs: list[dict]) -> str:
    """The markdown of the runs' records."""
    md = ["| run | seed | epoch | SST | Quora | STS r | seconds |", "|---|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {run['name']} | {run['settings']['seed']} | {e['epoch']} | "
           + " | ".join(cell(e["dev"].get(k)) for k in KEYS) + f" | {e['seconds']:,.0f} |"
           for run in runs for e in run["epochs"]]
    md += ["", "Over seeds, per epoch (mean ± standard deviation, min to max):", "",
           "| recipe (its first run) | epoch | runs | SST | Quora | STS r |", "|---|---:|---:|---|---|---|"]
    groups = recipes(runs)
    for recipe, members in groups.items():
        for n in sorted({e["epoch"] for m in members for e in m["epochs"]}):
            devs = [e["dev"] for m in members for e in m["epochs"] if e["epoch"] == n]
            md.append(f"| {recipe} | {n} | {len(devs)} | " + " | ".join(spread([d.get(k) for d in devs]) for k in KEYS)
                      + " |")
    md += ["", "Each run's best checkpoint (what the run keeps: the best mean dev metric); overall = (SST + Quora + "
           "(STS + 1) / 2) / 3:", "", "| run | seed | epoch | SST | Quora | STS r | overall |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {run['name']} | {run['settings']['seed']} | {run['best_epoch']} | "
           + " | ".join(f"{run['best'][k]:.3f}" for k, _ in TABLE_COLUMNS) + " |" for run in runs if run["best"]]
    md += ["", "| recipe (its first run) | runs | SST | Quora | STS r | overall |", "|---|---:|---|---|---|---|"]
    for recipe, members in groups.items():
        done = [m["best"] for m in members if m["best"]]
        if done:
            md.append(f"| {recipe} | {len(done)} | " + " | ".join(spread([b[k] for b in done]) for k, _ in TABLE_COLUMNS)
                      + " |")
    return "\n".join(md) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", type=Path, help="run folders")
    p.add_argument("--records", nargs="+", type=Path, default=[], help="--json files of earlier calls")
    p.add_argument("--only", nargs="+", metavar="NAME", help="keep only these runs (by name), e.g. two seeds of three")
    p.add_argument("--json", type=Path, help="also write the configs and epoch records here")
    a = p.parse_args()
    if not a.runs and not a.records:
        p.error("give run folders or --records files")
    runs = [r for f in a.records for r in from_records(f)] + from_folders(a.runs)
    if a.only:
        if missing := sorted(set(a.only) - {r["name"] for r in runs}):
            p.error(f"--only: no run named {', '.join(missing)}")
        runs = [r for r in runs if r["name"] in a.only]
    if a.json:
        a.json.write_text(json.dumps({r["name"]: {"config": r["config"], "epochs": r["epochs"]} for r in runs},
                                     indent=1) + "\n")
    print(summary(runs), end="")


if __name__ == "__main__":
    main()
