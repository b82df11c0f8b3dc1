#!/usr/bin/env bash
# The best multitask model found so far with the packaged encoder (all-MiniLM-L6-v2), written to RUNS_DIR/best.
#   results/best.sh DATA_DIR RUNS_DIR        e.g. results/best.sh ../shared/data ~/walkless-runs
# Its dev numbers and what each setting gave are in results/README.md. Run as written (seed 0, all cores) on
# 2026-12-03, its best checkpoint (epoch 3 of 3) gave dev SST 0.504, Quora 0.849, STS 0.868, overall 0.762:
# SST > 0.501, STS > 0.802 and overall > 0.756 as the results issue asks, Quora 0.0013 short of 0.85
# (results/verify/). The same recipe at seed 0 on one thread on another CPU gave 0.503 / 0.851 / 0.868 (0.763);
# over seeds 0 to 2 it gives SST 0.499, Quora 0.847, STS 0.870, overall 0.760 on average.
# Three epochs with SMART (fast mode), the heads at 10x the lr and an SST head with a hidden layer (--sst-head mlp).
# 57 to 69 minutes on 2 CPU cores (Intel Xeon, AMD EPYC family 25), with nothing else training.
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
