#!/usr/bin/env bash
# The best multitask model found so far with the packaged encoder (all-MiniLM-L6-v2), written to RUNS_DIR/best.
#   results/best.sh DATA_DIR RUNS_DIR        e.g. results/best.sh ../shared/data ~/walkless-runs
# Its dev numbers and what each setting gave are in results/README.md: dev SST 0.497, Quora 0.851, STS 0.871,
# overall 0.761 (the best checkpoint, epoch 2 of 3). It meets the results issue's Quora, STS and overall targets
# but not SST (0.497 against > 0.501). Three epochs with SMART (fast mode) and the heads at 10x the lr.
# That is seed 0, the best of three seeds on the CPU (seeds 1 and 2: overall 0.754 and 0.757); over six seeds on a
# GPU the recipe gives SST 0.49, Quora 0.84, STS 0.87, overall 0.757 on average (results/README.md).
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 DATA_DIR RUNS_DIR" >&2
    exit 2
fi
DATA_DIR=$1
RUNS_DIR=$2
if [ -e "$RUNS_DIR/best" ]; then
    echo "$RUNS_DIR/best exists; continue it with: walkless train --resume $RUNS_DIR/best" >&2
    exit 1
fi
# The recipe's flags are in best.args (results/gpu-seeds.sh trains the same recipe at other seeds).
exec walkless train $(<"$(dirname "$0")/best.args") --data-dir "$DATA_DIR" --runs-dir "$RUNS_DIR" --name best
