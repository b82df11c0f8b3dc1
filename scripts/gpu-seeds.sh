#!/usr/bin/env bash
# On a GPU machine: the best-model recipe (scripts/best.sh, its flags in scripts/best.args) at several seeds, and one
# lever (the report's head dropout 0.3) at two, all at once (one process each, sharing the GPU), stopped at a
# deadline. It measures how far one seed's SST moves, which one CPU run cannot. A stopped run keeps its finished
# epochs, and running the script again resumes it from its checkpoint. Writes RUNS_DIR/seeds.json (per run: settings,
# per-epoch dev numbers) and RUNS_DIR/seeds.md (the table, and the mean and spread over seeds per epoch).
#   scripts/gpu-seeds.sh DATA_DIR RUNS_DIR [DEADLINE_SECONDS [RUNS_FILE]]   (DEADLINE_SECONDS 0: only the summary)
# RUNS_FILE (e.g. experiments/sst-levers/levers.runs) replaces the runs below: one run per line, its name and the flags
# added after the recipe's (a flag given twice takes the later value), e.g. "sst2-s0 --sst-passes 2 --seed 0".
set -uo pipefail
USAGE="usage: scripts/gpu-seeds.sh DATA_DIR RUNS_DIR [DEADLINE_SECONDS [RUNS_FILE]]"
DATA=${1:?$USAGE}
RUNS=${2:?$USAGE}
DEADLINE=${3:-300}
RUNS_FILE=${4:-}
PY=${PYTHON:-python3}
MAX="${MAX_TRAIN:+--max-train $MAX_TRAIN} ${MAX_DEV:+--max-dev $MAX_DEV}"  # smoke runs only
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$RUNS"
HERE=$(dirname "$0")
source "$HERE/deadline.sh"
RECIPE=$(<"$HERE/best.args")  # scripts/best.sh's recipe
declare -A SPEC=([q-s0]="$RECIPE --seed 0" [q-s1]="$RECIPE --seed 1" [q-s2]="$RECIPE --seed 2" [q-s3]="$RECIPE --seed 3"
                 [q-s4]="$RECIPE --seed 4" [q-s5]="$RECIPE --seed 5"
                 [q-drop03-s0]="${RECIPE/--dropout 0.1/--dropout 0.3} --seed 0"
                 [q-drop03-s1]="${RECIPE/--dropout 0.1/--dropout 0.3} --seed 1")
if [ -n "$RUNS_FILE" ]; then
    SPEC=()
    while read -r name flags; do
        [ -n "$name" ] && [ "${name:0:1}" != "#" ] && SPEC[$name]="$RECIPE $flags"
    done < "$RUNS_FILE"
fi
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
stop_at_deadline "$DEADLINE" 15 "${pids[@]}"
"$PY" "$HERE/seeds.py" "$RUNS"/*/ --json "$RUNS/seeds.json" > "$RUNS/seeds.md"
cat "$RUNS/seeds.md"
