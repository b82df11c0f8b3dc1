#!/usr/bin/env bash
# First look: --grad-surgery none vs pcgrad, one seed, 2,000 training examples per task, one epoch (CPU, shared).
set -euo pipefail
cd /work/wt/i42
PY=/tmp/venv43/bin/python
COMMON="--variant rrobin-full+rlayer --summed-step --epochs 1 --batch-size 32 --lr 5e-5 --lr-schedule linear --warmup 0.1 --dropout 0.1 --encoder-dropout 0 --head-lr 10 --sst-head mlp --max-train 2000 --seed 0 --threads 2 --data-dir /work/shared/data --runs-dir /work/runs/i42-surgery"
for s in none pcgrad; do
  /usr/bin/time -v nice $PY -m core.cli train $COMMON --grad-surgery $s --name $s > /work/runs/i42-surgery/$s.out 2> /work/runs/i42-surgery/$s.err
done
nice $PY -m core.cli ensemble /work/runs/i42-surgery/none /work/runs/i42-surgery/pcgrad --out /work/runs/i42-surgery/ens --data-dir /work/shared/data > /work/runs/i42-surgery/ens.out 2> /work/runs/i42-surgery/ens.err
$PY -m core.cli compare /work/runs/i42-surgery/none /work/runs/i42-surgery/pcgrad /work/runs/i42-surgery/ens --json > /work/runs/i42-surgery/compare.json
echo done
