#!/usr/bin/env bash
# The suite's GPU check: one run on one CUDA device (sized for an NVIDIA H200 in < 8 minutes)
# that writes results/bench/gpu.txt (override with GPU_CHECK_OUT=path):
#   1. pytest -m gpu (tests/test_gpu.py and every other gpu-marked test)
#   2. training throughput of ijr against a plain PyTorch loop: cnn6 and wrn28_10 at B = 128
#   3. the cost of one step of each method relative to SGD (cnn6, wrn28_10 at B = 128)
#   4. the time per Hessian-vector product, batched (is_grads_batched, k = 1, 2, 4, 8) vs single
#   5. one sharpness measurement of wrn28_10 over 1,000 images against PyHessian
# Every step runs under `timeout` within a total budget (GPU_CHECK_BUDGET seconds, default 450);
# a step that runs out is recorded as TIMED OUT and the next one starts. Without a CUDA device the
# script prints "no CUDA device" and exits 0 at once, writing nothing.
#
#   bash scripts/gpu_check.sh                 # from the repository root, after `make install`
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${GPU_CHECK_OUT:-results/bench/gpu.txt}
BUDGET=${GPU_CHECK_BUDGET:-450}

# no device: decide before importing torch where possible (nvidia-smi answers in milliseconds)
if [ "${CUDA_VISIBLE_DEVICES-unset}" = "" ] || [ "${CUDA_VISIBLE_DEVICES-unset}" = "-1" ] ||
    ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "no CUDA device"
    exit 0
fi
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "no CUDA device"
    exit 0
fi

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
export CUBLAS_WORKSPACE_CONFIG=:4096:8   # deterministic cuBLAS (the trainer asks for it too)
export THP_MEM_ALLOC_ENABLE=1
START=$(date +%s)
mkdir -p "$(dirname "$OUT")"
TMP_OUT="$OUT.partial"
: >"$TMP_OUT"

log() { echo "$*" | tee -a "$TMP_OUT"; }

# step NAME SECONDS COMMAND...: run COMMAND under min(SECONDS, what is left of the budget)
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((BUDGET - ($(date +%s) - START)))
    [ "$limit" -gt "$left" ] && limit=$left
    if [ "$limit" -le 5 ]; then
        log "== $name: SKIPPED (budget of ${BUDGET}s spent)"
        return
    fi
    log "== $name (limit ${limit}s): $*"
    local t0 rc
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$TMP_OUT"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        log "== $name: TIMED OUT after ${limit}s"
    else
        log "== $name: exit $rc after $(($(date +%s) - t0))s"
    fi
}

log "# GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
log "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1)"
log "$("$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1)"

step "pytest -m gpu" 130 "$PY" -m pytest -q -m gpu -p no:cacheprovider
step "training throughput vs plain PyTorch (cnn6, wrn28_10; B = 128)" 80 \
    "$PY" scripts/bench/bench_training.py --device cuda --cases cnn6_b128,wrn28_10_b128 --steps 40 --warmup 10
step "method cost / SGD (cnn6, wrn28_10; B = 128)" 80 \
    "$PY" scripts/bench/bench_methods.py --device cuda --models cnn6 wrn28_10 --batch-size 128 --rounds 9
step "HVP batched vs single (wrn28_10)" 40 \
    "$PY" scripts/bench/bench_curvature.py --only hvp_batched --device cuda
step "sharpness of wrn28_10 over 1,000 images vs PyHessian" 120 \
    "$PY" scripts/bench/bench_curvature.py --only sharpness_wrn --device cuda --wrn-probe 1000

log "# total $(($(date +%s) - START))s of a ${BUDGET}s budget"
mv "$TMP_OUT" "$OUT"
echo "wrote $OUT"
