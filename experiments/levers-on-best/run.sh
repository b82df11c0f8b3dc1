#!/usr/bin/env bash
# One run of the best recipe (scripts/best.args) with extra flags, one thread, resumable.
#   experiments/levers-on-best/run.sh DATA_DIR RUNS_DIR NAME SEED [FLAG...]
#   e.g. run.sh ../shared/data ~/runs lstm-s0 0 --sst-head lstm
# Writes RUNS_DIR/NAME; a killed run resumes when the same command runs again. Later flags win over best.args's.
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 DATA_DIR RUNS_DIR NAME SEED [FLAG...]" >&2
    exit 2
fi
DATA_DIR=$1
RUNS_DIR=$2
NAME=$3
SEED=$4
shift 4
RUN="$RUNS_DIR/$NAME"
if grep -qs '"state": "finished"' "$RUN/status.json"; then
    echo "$RUN finished" >&2
elif [ -e "$RUN" ]; then
    exec walkless train --resume "$RUN" --threads 1
else
    # shellcheck disable=SC2046  # best.args is a list of flags
    exec walkless train $(<"$(dirname "$0")/../../scripts/best.args") "$@" --seed "$SEED" --threads 1 \
        --data-dir "$DATA_DIR" --runs-dir "$RUNS_DIR" --name "$NAME"
fi
