#!/usr/bin/env bash
# The GPU check of DWA's CUDA path (issue 14), for a session that is lent a GPU: run it once.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        (default: results/gpu-check, ignored by git)
#
# 1. the GPU's name;
# 2. correctness on the GPU: the paper-size DWA AlexNet with the Triton operators against the
#    reference formulation in float64 (outputs, both mask losses, every gradient; rel. 1e-5);
# 3. benchmarks/bench_dwa.py --device cuda: samples/s and torch.cuda.max_memory_allocated for the
#    plain AlexNet and DWA fast / per-sample / reference / compiled, batches 32 and 256;
# 4. DWA (preset final-warm) on mixture-offline for EPOCHS epochs per task, and the paper's full
#    mixture run projected from the measured per-epoch times (benchmarks/project_mixture.py).
#    mixture-offline needs Fashion-MNIST: DATA_DIR=... if it is not in the system's datasets.
# 5. OUT_DIR/gpu-check.json: every step's exit status, seconds and last lines, the GPU's name and
#    bench.json merged (benchmarks/measured_table.py --merge-gpu); copied to tables/gpu-check.json,
#    `python benchmarks/measured_table.py --readme README.md` fills the README's GPU rows from it.
#
# Environment: PYTHON (default .venv/bin/python), EPOCHS (default 2, the fewest the projection can
# use: it leaves out each task's first epoch; was 3), DATA_DIR, STEPS (default 5).
# Device time: each step has a time limit (seconds: equivalence 90, bench 240, mixture 180,
# projection 60; LIMIT_<STEP> overrides), so the script ends within 10 minutes of a started machine
# whatever the GPU; a step over its limit is reported as exit 124. Setup (the virtual environment,
# scripts/setup.sh) is not part of it. Each step writes OUT_DIR/<step>.txt; a failing step is
# reported and the next one still runs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/gpu-check}
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH=$PWD
mkdir -p "$OUT"
status=0

step() {  # step NAME LIMIT_S COMMAND...: run within LIMIT_S, tee to OUT/NAME.txt, remember a failure
    local name=$1 limit=$2; shift 2
    echo "== $name: $*" | tee "$OUT/$name.txt"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$OUT/$name.txt"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$OUT/$name.txt"
    [ "$rc" -eq 0 ] || status=1
}

step gpu 30 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
step equivalence "${LIMIT_EQUIVALENCE:-90}" "$PY" benchmarks/cuda_equivalence.py --device cuda
step bench "${LIMIT_BENCH:-240}" "$PY" benchmarks/bench_dwa.py --device cuda --steps "${STEPS:-5}" \
    --json "$OUT/bench.json"
step mixture "${LIMIT_MIXTURE:-180}" "$PY" -m dwa_core run --preset final-warm --benchmark mixture-offline \
    --device cuda --epochs "${EPOCHS:-2}" --output-dir "$OUT/runs" --no-figure \
    ${DATA_DIR:+--data-dir "$DATA_DIR"}
results=$(ls -t "$OUT"/runs/*/results.json 2>/dev/null | head -1)
if [ -n "$results" ]; then
    step projection "${LIMIT_PROJECTION:-60}" "$PY" benchmarks/project_mixture.py "$results"
else
    echo "== projection: skipped, the mixture run wrote no results.json" | tee "$OUT/projection.txt"
    status=1
fi
"$PY" benchmarks/measured_table.py --merge-gpu "$OUT" || status=1
exit $status
