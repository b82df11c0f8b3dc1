#!/usr/bin/env bash
# On a GPU machine: the best-model recipe (results/best.sh, run Q of results/ablation.md) at several seeds, and one
# lever (the report's head dropout 0.3) at two, all at once (one process each, sharing the GPU), stopped at a
# deadline. It measures how far one seed's SST moves, which one CPU run cannot. A stopped run keeps its finished
# epochs, and running the script again resumes it from its checkpoint. Writes RUNS_DIR/seeds.json (per run: settings,
# per-epoch dev numbers) and RUNS_DIR/seeds.md (the table, and the mean and spread over seeds per epoch).
#   results/gpu-seeds.sh DATA_DIR RUNS_DIR [DEADLINE_SECONDS]     (DEADLINE_SECONDS 0: only write the summary)
set -uo pipefail
DATA=${1:?usage: results/gpu-seeds.sh DATA_DIR RUNS_DIR [DEADLINE_SECONDS]}
RUNS=${2:?usage: results/gpu-seeds.sh DATA_DIR RUNS_DIR [DEADLINE_SECONDS]}
DEADLINE=${3:-300}
PY=${PYTHON:-python3}
MAX="${MAX_TRAIN:+--max-train $MAX_TRAIN} ${MAX_DEV:+--max-dev $MAX_DEV}"  # smoke runs only
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$RUNS"
Q="--variant rrobin-full+rlayer+smart --smart-fast --epochs 3 --batch-size 32 --lr 5e-5 --lr-schedule linear \
--warmup 0.1 --dropout 0.1 --head-lr 10"
declare -A SPEC=([q-s0]="$Q --seed 0" [q-s1]="$Q --seed 1" [q-s2]="$Q --seed 2" [q-s3]="$Q --seed 3"
                 [q-s4]="$Q --seed 4" [q-s5]="$Q --seed 5"
                 [q-drop03-s0]="${Q/--dropout 0.1/--dropout 0.3} --seed 0"
                 [q-drop03-s1]="${Q/--dropout 0.1/--dropout 0.3} --seed 1")
pids=()
for name in "${!SPEC[@]}"; do
    [ "$DEADLINE" -gt 0 ] || break
    if [ -e "$RUNS/$name/config.json" ]; then  # stopped at an earlier deadline: continue it
        "$PY" -m core.cli train --resume "$RUNS/$name" --threads 1 >> "$RUNS/$name.log" 2>&1 &
    else
        "$PY" -m core.cli train ${SPEC[$name]} --data-dir "$DATA" --runs-dir "$RUNS" --name "$name" --threads 1 \
            --checkpoint-every 1000000 $MAX > "$RUNS/$name.log" 2>&1 &
    fi
    pids+=($!)
done
alive() { local n=0 p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done; echo "$n"; }
end=$((SECONDS + DEADLINE))
while [ $SECONDS -lt $end ] && [ "$(alive)" -gt 0 ]; do sleep 5; done
if [ ${#pids[@]} -gt 0 ]; then
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done  # stop after the current iteration
    sleep 15
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
fi
"$PY" - "$RUNS" <<'PY'
import json, statistics, sys
from pathlib import Path
from core.runs import read_json, read_metrics
runs = Path(sys.argv[1])
out, rows = {}, []
for d in sorted(runs.iterdir()):
    if (d / "config.json").is_file():
        epochs = [r for r in read_metrics(d) if r.get("kind") == "epoch"]
        out[d.name] = {"config": read_json(d / "config.json"), "epochs": epochs}
        rows += [(d.name.rsplit("-s", 1)[0], d.name, e["epoch"], e["dev"]) for e in epochs]
(runs / "seeds.json").write_text(json.dumps(out, indent=1) + "\n")
keys = ("sst/acc", "para/acc", "sts/pearson")
md = ["| run | epoch | SST | Quora | STS r |", "|---|---:|---:|---:|---:|"]
md += [f"| {n} | {e} | " + " | ".join(f"{dev[k]:.3f}" for k in keys) + " |" for _, n, e, dev in rows]
md += ["", "Over seeds (mean ± standard deviation, min to max):", "",
       "| recipe | epoch | runs | SST | Quora | STS r |", "|---|---:|---:|---|---|---|"]
for recipe, epoch in sorted({(r, e) for r, _, e, _ in rows}):
    devs = [dev for r, _, e, dev in rows if (r, e) == (recipe, epoch)]
    cell = lambda k: (f"{statistics.mean(x[k] for x in devs):.3f} ± {statistics.pstdev(x[k] for x in devs):.3f} "
                      f"({min(x[k] for x in devs):.3f} to {max(x[k] for x in devs):.3f})")
    md.append(f"| {recipe} | {epoch} | {len(devs)} | " + " | ".join(cell(k) for k in keys) + " |")
overall = lambda dev: (dev["sst/acc"] + dev["para/acc"] + (dev["sts/pearson"] + 1) / 2) / 3
md += ["", "Each run's best checkpoint (what the run keeps: the best mean dev metric); overall = (SST + Quora + "
       "(STS + 1) / 2) / 3:", "", "| run | epoch | SST | Quora | STS r | overall |", "|---|---:|---:|---:|---:|---:|"]
for name in out:
    best = read_json(runs / name / "best.json")
    if best:
        dev = best["dev"]
        md.append(f"| {name} | {best['epoch']} | " + " | ".join(f"{dev[k]:.3f}" for k in keys)
                  + f" | {overall(dev):.3f} |")
(runs / "seeds.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
PY
