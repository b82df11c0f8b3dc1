#!/usr/bin/env bash
# The GPU checks in one run (about 4 minutes on one H100/H200, at most 8):
#   1. tests/core/test_cuda.py: minBERT = transformers on CUDA, the CPU fast paths standing aside, SMART's dropout
#      replay (Bregman term exactly 0 at the teacher), bf16 autocast, a GPU run checkpointed, scored on the CPU
#      and resumed;
#   2. end to end against the expert transformers script on the GPU (bf16, sdpa), 3 alternating rounds;
#   3. one Table 2 row (rrobin-full+rlayer) for one epoch on the full data: its seconds per epoch.
# Writes OUT_DIR/gpu.json (kept as results/performance/gpu-DATE.json once it has run on a GPU) and the logs.
#   benchmarks/gpu.sh DATA_DIR [OUT_DIR]
set -uo pipefail
DATA=${1:?usage: benchmarks/gpu.sh DATA_DIR [OUT_DIR]}
OUT=${2:-bench-results/gpu}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
work=$(mktemp -d)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/nvidia-smi.txt" 2>&1

t0=$SECONDS
timeout 200 "$PY" -m pytest -q -p no:cacheprovider tests/core/test_cuda.py > "$OUT/cuda-tests.log" 2>&1
tests_rc=$?
tests_s=$((SECONDS - t0))
echo "cuda tests: rc $tests_rc in ${tests_s}s: $(tail -n 1 "$OUT/cuda-tests.log")"

timeout 240 "$PY" benchmarks/e2e.py --data-dir "$DATA" --device cuda --bf16 --sides expert,ours --rounds 3 \
    --out "$OUT/e2e-gpu.json" > "$OUT/e2e-gpu.log" 2>&1
echo "e2e: rc $?"; tail -n 4 "$OUT/e2e-gpu.log"

timeout 150 "$PY" -m core.cli table2 --runs-dir "$work/t2" --data-dir "$DATA" --epochs 1 --rows rrobin-full+rlayer \
    > "$OUT/table2-row.log" 2>&1
echo "table2 row: rc $?"; cp "$work/t2/table2.json" "$OUT/table2-row.json" 2>/dev/null

"$PY" - "$OUT" "$tests_rc" "$tests_s" <<'PY'
import json, sys
from pathlib import Path
from core.bench import machine
out, rc, secs = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def load(name):
    p = out / name
    return json.loads(p.read_text()) if p.is_file() else None
tests = (out / "cuda-tests.log").read_text().strip().splitlines()
row = load("table2-row.json")
res = {"machine": machine(), "gpu": (out / "nvidia-smi.txt").read_text().strip(),
       "cuda_tests": {"rc": rc, "seconds": secs, "summary": tests[-1] if tests else None},
       "e2e": load("e2e-gpu.json"), "table2_row": row and row["rows"][0]}
(out / "gpu.json").write_text(json.dumps(res, indent=2) + "\n")
print(f"wrote {out / 'gpu.json'}")
PY
rm -rf "$work"
