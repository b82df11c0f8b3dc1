#!/usr/bin/env bash
# On a GPU machine: the report's Table 2 at its 10 epochs per row, and a small search for the best model, all at
# once (one process per row or setting, sharing the GPU), stopped at a deadline if they have not finished.
# Stopped rows keep their epochs so far (SIGTERM stops after the current iteration, with a checkpoint) and the
# table says how many each row reached. Writes RUNS_DIR/table2/table2.{json,md} and RUNS_DIR/search.json.
#   scripts/gpu-table2.sh DATA_DIR RUNS_DIR [DEADLINE_SECONDS]
set -uo pipefail
DATA=${1:?usage: scripts/gpu-table2.sh DATA_DIR RUNS_DIR [DEADLINE_SECONDS]}
RUNS=${2:?usage: scripts/gpu-table2.sh DATA_DIR RUNS_DIR [DEADLINE_SECONDS]}
DEADLINE=${3:-300}
EPOCHS=${EPOCHS:-10}   # Table 2 epochs per row (the report's 10)
SEARCH_EPOCHS=${SEARCH_EPOCHS:-5}
MAX=${MAX_TRAIN:+--max-train $MAX_TRAIN}  # smoke runs only
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$RUNS/table2" "$RUNS/search"
source "$(dirname "$0")/deadline.sh"
ROWS="pretrain finetune finetune+smart rrobin rrobin+smart rrobin-pre+smart rrobin-full rrobin-full+smart rrobin-full+rlayer"
pids=()
for row in $ROWS; do
    "$PY" -m core.cli table2 --runs-dir "$RUNS/table2" --data-dir "$DATA" --epochs "$EPOCHS" --rows "$row" \
        --threads 1 --checkpoint-every 1000000 $MAX > "$RUNS/table2/$row.log" 2>&1 &
    pids+=($!)
done
# The best-model search: run C-bi-rlayer-lld of experiments/recipe-search/ (rrobin-full+rlayer, batch 32, lr 1e-4, layer decay 0.9,
# linear schedule with 10 % warmup, head dropout 0.1) for SEARCH_EPOCHS epochs, and one lever changed per run.
C="--variant rrobin-full+rlayer --batch-size 32 --lr 1e-4 --layer-decay 0.9 --lr-schedule linear --warmup 0.1 --dropout 0.1"
declare -A SEARCH=(
    [C]="$C"
    [C-lr5e-5-flat]="--variant rrobin-full+rlayer --batch-size 32 --lr 5e-5 --lr-schedule linear --warmup 0.1 --dropout 0.1"
    [C-cross]="$C --pair-input cross"
    [C-smart-fast]="${C/rrobin-full+rlayer/rrobin-full+rlayer+smart} --smart-fast"
    [C-annealed]="${C/rrobin-full+rlayer/annealed+rlayer}"
    [C-ema]="$C --ema 0.999"
    [C-seed1]="$C --seed 1"
)
for name in "${!SEARCH[@]}"; do
    "$PY" -m core.cli train ${SEARCH[$name]} --epochs "$SEARCH_EPOCHS" --data-dir "$DATA" --runs-dir "$RUNS/search" \
        --name "$name" --threads 1 --checkpoint-every 1000000 $MAX > "$RUNS/search/$name.log" 2>&1 &
    pids+=($!)
done
stop_at_deadline "$DEADLINE" 20 "${pids[@]}"  # until the deadline or every process has ended
"$PY" - "$RUNS" "$EPOCHS" "$DATA" <<'PY'
import json, sys
from pathlib import Path
from core.runs import read_json, read_metrics
from core.table2 import ROWS, Table2Config, write_table2
runs, epochs, data = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
write_table2(Table2Config(runs_dir=str(runs / "table2"), rows=ROWS, epochs=epochs, data_dir=data,
                          command=f"scripts/gpu-table2.sh {data} {runs} (one walkless table2 --rows ROW per row, in parallel)"))
search = {}
for d in sorted((runs / "search").iterdir()):
    if (d / "config.json").is_file():
        search[d.name] = {"config": read_json(d / "config.json"), "status": read_json(d / "status.json"),
                          "best": read_json(d / "best.json"),
                          "epochs": [r for r in read_metrics(d) if r.get("kind") == "epoch"]}
(runs / "search.json").write_text(json.dumps(search, indent=1) + "\n")
for name, s in search.items():
    for e in s["epochs"]:
        dev = e["dev"]
        print(f"{name:14s} epoch {e['epoch']}: sst {dev.get('sst/acc', 0):.3f} para {dev.get('para/acc', 0):.3f} "
              f"sts {dev.get('sts/pearson', 0):.3f} ({e['seconds']:.0f}s)")
PY
cat "$RUNS/table2/table2.md"
