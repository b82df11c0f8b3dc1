"""Ensembles of one recipe at several seeds, summarized from their folders (``walkless ensemble ... --data-dir``
wrote each member's and the ensemble's dev metrics into ``walkless.json``): per ensemble its members and itself,
then the ensembles' mean and spread, the lowest SST, and what ensembling added over the members' mean.

    python scripts/ensemble_seeds.py ENSEMBLE_DIR... [--records FILE...] [--json FILE]

Markdown on stdout; ``--json`` writes the figures it was made from, and ``--records`` reads such files back (the
ensemble folders themselves live outside the repository), so a committed table can be rebuilt from its JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.report import TABLE_COLUMNS, overall  # noqa: E402

KEYS = [k for k, _ in TABLE_COLUMNS]


def read(folder: Path) -> dict:
    """An ensemble folder -> its name, members (name, dev) and dev metrics; an error naming the folder if it was
    built without ``--data-dir``."""
    meta = json.loads((folder / "walkless.json").read_text())
    if not meta.get("dev"):
        raise SystemExit(f"{folder}: has no dev metrics (build it with walkless ensemble ... --data-dir)")
    members = [{"name": m["name"], "dev": {**m["dev"], "overall": overall(m["dev"])}} for m in meta["members"]]
    return {"name": folder.name, "members": members, "dev": meta["dev"]}


def from_records(path: Path) -> list[dict]:
    """A ``--json`` file of this script -> its ensembles, an error naming the file if it is not one."""
    ensembles = json.loads(path.read_text())
    if not isinstance(ensembles, list) or not all({"name", "members", "dev"} <= set(e) for e in ensembles):
        raise SystemExit(f"{path}: not a --json file of scripts/ensemble_seeds.py (a list of name, members, dev)")
    return ensembles


def row(label: str, values: dict, bold: bool = False) -> str:
    cells = [f"{values[k]:.4f}" for k in KEYS]
    return "| " + " | ".join([label, *(f"**{c}**" for c in cells)] if bold else [label, *cells]) + " |"


def markdown(ensembles: list[dict]) -> str:
    head = ["| model | " + " | ".join(label for _, label in TABLE_COLUMNS) + " |", "|---" + "|---:" * len(KEYS) + "|"]
    lines = [*head]
    for e in ensembles:
        lines += [row(f"{e['name']}: {m['name']}", m["dev"]) for m in e["members"]]
        lines.append(row(f"{e['name']}: ensemble", e["dev"], bold=True))
    gains = [{k: e["dev"][k] - statistics.mean(m["dev"][k] for m in e["members"]) for k in KEYS} for e in ensembles]
    mean = {k: statistics.mean(e["dev"][k] for e in ensembles) for k in KEYS}
    lines += ["", *head, row(f"ensembles, mean of {len(ensembles)}", mean)]
    if len(ensembles) > 1:
        lines.append(row("ensembles, sd", {k: statistics.stdev(e["dev"][k] for e in ensembles) for k in KEYS}))
    lines += [row("ensembles, lowest", {k: min(e["dev"][k] for e in ensembles) for k in KEYS}),
              row("ensemble minus its members' mean, mean", {k: statistics.mean(g[k] for g in gains) for k in KEYS})]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ensembles", nargs="*", type=Path)
    p.add_argument("--records", nargs="+", type=Path, default=[], help="--json files of earlier calls")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    if not a.ensembles and not a.records:
        p.error("give ensemble folders or --records files")
    ensembles = [e for f in a.records for e in from_records(f)] + [read(f) for f in a.ensembles]
    print(markdown(ensembles))
    if a.json:
        a.json.write_text(json.dumps(ensembles, indent=2) + "\n")


if __name__ == "__main__":
    main()
