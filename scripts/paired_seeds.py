"""Recipes run at the same seeds, side by side: each run's kept checkpoint per seed, each recipe's mean overall,
and what one recipe gives over another at the seeds both have (a lever's gain, seed by seed).

    python scripts/paired_seeds.py [RUN_DIR...] [--records FILE...] [--epochs-logs LOG...] \\
        --recipe LABEL RUN... [--recipe ...] [--minus LABEL LABEL ...]

Runs come from folders, ``scripts/seeds.py --json`` files, or ``NAME-epochs.log`` files beside ``NAME-config.json``
(runs whose folders are gone); ``--recipe`` names which runs (by name) make one recipe, and each run's seed comes
from its config. ``--minus A B`` adds a row of A minus B: per-task and overall differences averaged over their
common seeds, and the overall difference at each seed. Markdown on stdout.

A committed table keeps its arguments beside it (``paired.args``, paths from the repository root), so that
``python scripts/paired_seeds.py $(<DIR/paired.args) > DIR/paired.md`` rebuilds it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # core/, and seeds.py beside this file
import seeds  # noqa: E402

from core.report import TABLE_COLUMNS  # noqa: E402

TASKS = [k for k, _ in TABLE_COLUMNS if k != "overall"]


def by_seed(runs: list[dict], recipes: list[list[str]]) -> dict[str, dict[int, dict]]:
    """Run records and ``--recipe LABEL RUN...`` lists -> {label: {seed: the run's best checkpoint values}}; an
    error naming the run that is missing, unfinished, a second run of one seed in a recipe, or one whose settings
    differ from the recipe's first run's in more than the seed."""
    named = {r["name"]: r for r in runs}
    out: dict[str, dict[int, dict]] = {}
    for label, *members in recipes:
        if not members:
            raise SystemExit(f"--recipe {label}: name at least one run")
        table = out.setdefault(label, {})
        for name in members:
            if name not in named:
                raise SystemExit(f"--recipe {label}: no run named {name}")
            run = named[name]
            if run["best"] is None:
                raise SystemExit(f"--recipe {label}: {name} has no dev values for all three tasks")
            seed = run["settings"]["seed"]
            if seed in table:
                raise SystemExit(f"--recipe {label}: two runs at seed {seed}")
            if differ := differences(named[members[0]], run):
                raise SystemExit(f"--recipe {label}: {name} differs from {members[0]} in more than the seed: "
                                 + ", ".join(differ))
            table[seed] = {**run["best"], "epoch": run["best_epoch"]}
    return out


def differences(a: dict, b: dict) -> list[str]:
    """The settings of ``seeds.recipe_settings`` in which two runs differ."""
    sa, sb = seeds.recipe_settings(a), seeds.recipe_settings(b)
    return sorted(k for k in sa.keys() | sb.keys() if sa.get(k) != sb.get(k))


def cell(best: dict | None) -> str:
    """One run's kept checkpoint: SST / Quora / STS r (overall), epoch; "not run" if there is none."""
    if best is None:
        return "not run"
    return " / ".join(f"{best[k]:.3f}" for k in TASKS) + f" ({best['overall']:.3f}), epoch {best['epoch']}"


def signed(value: float) -> str:
    """A difference to 3 decimals with its sign (a typographic minus); 0.000 when it rounds to zero."""
    text = f"{value:+.3f}"
    return "0.000" if float(text) == 0 else text.replace("-", "−")


def markdown(table: dict[str, dict[int, dict]], minus: list[list[str]]) -> str:
    """The recipes' table, then one row per ``--minus`` pair."""
    all_seeds = sorted({s for runs in table.values() for s in runs})
    md = ["| recipe | " + " | ".join(f"seed {s}: SST / Quora / STS r (overall), epoch" for s in all_seeds)
          + " | mean overall (seeds) |", "|---|" + "---|" * len(all_seeds) + "---:|"]
    for label, runs in table.items():
        mean = statistics.mean(b["overall"] for b in runs.values())
        md.append(f"| {label} | " + " | ".join(cell(runs.get(s)) for s in all_seeds)
                  + f" | {mean:.3f} ({len(runs)}) |")
    if minus:
        md += ["", "| difference | seeds | SST | Quora | STS r | overall | overall at each seed |",
               "|---|---|---:|---:|---:|---:|---|"]
    for a, b in minus:
        for label in (a, b):
            if label not in table:
                raise SystemExit(f"--minus {a} {b}: no recipe labelled {label}")
        common = sorted(set(table[a]) & set(table[b]))
        if not common:
            raise SystemExit(f"--minus {a} {b}: no seed in common")
        diffs = {k: [table[a][s][k] - table[b][s][k] for s in common] for k in (*TASKS, "overall")}
        md.append(f"| {a} − {b} | {', '.join(map(str, common))} | "
                  + " | ".join(signed(statistics.mean(diffs[k])) for k in (*TASKS, "overall"))
                  + " | " + ", ".join(signed(d) for d in diffs["overall"]) + " |")
    return "\n".join(md) + "\n"


def run(argv: list[str]) -> str:
    """The command line's arguments -> the markdown it prints."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", type=Path, help="run folders")
    p.add_argument("--records", nargs="+", type=Path, default=[], help="--json files of scripts/seeds.py")
    p.add_argument("--epochs-logs", nargs="+", type=Path, default=[], help="NAME-epochs.log files")
    p.add_argument("--recipe", nargs="+", action="append", required=True, metavar="LABEL RUN",
                   help="a recipe's label and its runs' names")
    p.add_argument("--minus", nargs=2, action="append", default=[], metavar=("A", "B"), help="a row of A minus B")
    a = p.parse_args(argv)
    runs = ([r for f in a.records for r in seeds.from_records(f)]
            + [r for f in a.epochs_logs for r in seeds.from_epochs_log(f)] + seeds.from_folders(a.runs))
    return markdown(by_seed(runs, a.recipe), a.minus)


if __name__ == "__main__":
    print(run(sys.argv[1:]), end="")
