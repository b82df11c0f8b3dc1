#!/usr/bin/env bash
# The one-epoch SST check of the results issue over seeds: the expert transformers script
# (benchmarks/hf_expert.py) and `walkless train --variant finetune --task sst --epochs 1 --batch-size 32 --lr 5e-5`,
# alternating, one thread each. Prints one line per run; logs and runs go to RUNS_DIR.
#   scripts/sst-seeds.sh DATA_DIR RUNS_DIR "SEEDS_EXPERT" "SEEDS_OURS"      e.g. ... "0 1 2 3 4" "3 4"
# DEVICE=cuda runs both on the GPU with bf16 autocast (the settings of benchmarks/gpu.sh's end-to-end check).
set -uo pipefail
DATA=${1:?usage: scripts/sst-seeds.sh DATA_DIR RUNS_DIR "SEEDS_EXPERT" "SEEDS_OURS"}
RUNS=${2:?}; EXPERT=${3:-0 1 2}; OURS=${4:-0 1 2}
HERE=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$RUNS"
if [ "${DEVICE:-cpu}" = cuda ]; then EXPERT_DEV="--device cuda --bf16"; OURS_DEV="--device cuda --autocast bf16"
else EXPERT_DEV="--threads 1"; OURS_DEV="--threads 1"; fi
for s in $(echo "$EXPERT $OURS" | tr ' ' '\n' | sort -nu); do
    if [[ " $EXPERT " == *" $s "* ]]; then
        python "$HERE/benchmarks/hf_expert.py" --data-dir "$DATA" --seed "$s" $EXPERT_DEV --out "$RUNS/expert-s$s" \
            > "$RUNS/expert-s$s.log" 2>&1
        echo "expert seed $s: $(grep -o 'dev accuracy [0-9.]*' "$RUNS/expert-s$s.log")"
    fi
    if [[ " $OURS " == *" $s "* ]]; then
        walkless train --variant finetune --task sst --epochs 1 --batch-size 32 --lr 5e-5 --data-dir "$DATA" \
            --runs-dir "$RUNS" --name "ours-s$s" --seed "$s" $OURS_DEV > "$RUNS/ours-s$s.log" 2>&1
        echo "ours seed $s: $(grep -o 'sst/acc [0-9.]*' "$RUNS/ours-s$s.log" | tail -n 1)"
    fi
done
