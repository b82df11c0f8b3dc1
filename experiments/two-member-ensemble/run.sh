#!/usr/bin/env bash
# Two members of the best recipe (scripts/best.args) at two epochs each, trained side by side with one thread each,
# then averaged into one ensemble folder that scores, evaluates and predicts like a checkpoint.
#   experiments/two-member-ensemble/run.sh DATA_DIR RUNS_DIR [SEED_A SEED_B]     (seeds default to 0 and 1)
# Writes RUNS_DIR/member-sSEED_A, RUNS_DIR/member-sSEED_B and RUNS_DIR/ensemble-sSEED_A-SEED_B (with each member's,
# the ensemble's and the leave-one-out dev metrics in its evaluation files). A killed member resumes: run it again.
set -euo pipefail
if [ $# -ne 2 ] && [ $# -ne 4 ]; then
    echo "usage: $0 DATA_DIR RUNS_DIR [SEED_A SEED_B]" >&2
    exit 2
fi
DATA_DIR=$1
RUNS_DIR=$2
SEED_A=${3:-0}
SEED_B=${4:-1}
ENSEMBLE="$RUNS_DIR/ensemble-s$SEED_A-$SEED_B"
if [ -e "$ENSEMBLE" ]; then
    echo "$ENSEMBLE exists" >&2
    exit 1
fi

member() {  # member SEED: train (or resume) one member, one thread, two epochs (levers-on-best/run.sh)
    "$(dirname "$0")/../levers-on-best/run.sh" "$DATA_DIR" "$RUNS_DIR" "member-s$1" "$1" --epochs 2
}

member "$SEED_A" > "$RUNS_DIR.member-s$SEED_A.log" 2>&1 &
A=$!
member "$SEED_B" > "$RUNS_DIR.member-s$SEED_B.log" 2>&1 &
B=$!
wait "$A"
wait "$B"
walkless ensemble "$RUNS_DIR/member-s$SEED_A" "$RUNS_DIR/member-s$SEED_B" --out "$ENSEMBLE" --data-dir "$DATA_DIR"
