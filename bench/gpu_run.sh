#!/usr/bin/env bash
# The whole GPU session in one call: CUDA tests, then the MNIST race (hand-written loop vs cnnlab,
# same run), then throughput (resnet18@32, keras-mnist; bf16 vs fp32), then a Markdown summary.
# Everything lands in $OUT (log, JSON per benchmark, junit XML, summary.md).
#
#   On the GPU machine (device tool, repo root, carry [".whl", ".data"], timeout_s 570):
#       bash bench/gpu_run.sh
#   CPU check of every step here (no GPU needed, a few minutes):
#       PYTHON=.venv/bin/python OUT=/tmp/gpu_out bash bench/gpu_run.sh --smoke
#
# Needs: .data/mnist/*.gz (cp ../shared/data/mnist/*.gz .data/mnist/) and, when the machine lacks
# numpy/yaml/safetensors/rich/PIL/pytest, their wheels in .whl/ (see BENCHMARKS.md, "scale").
# Each step has its own time limit so one hang cannot eat the session; the sum stays under 540 s.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/bench/results/gpu_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null 2>&1 || PY=python
SMOKE=""
[ "${1:-}" = "--smoke" ] && SMOKE="--smoke"
exec > >(tee "$OUT/gpu_run.log") 2>&1
T0=$(date +%s)

echo "== machine ($(date -u))"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null || echo "no nvidia-smi"
"$PY" -c "import sys, torch; print(sys.version.split()[0], torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
uname -m

DEPS=/tmp/cnnlab-gpu-deps
"$PY" bench/gpu_deps.py "$ROOT/.whl" "$DEPS"
export PYTHONPATH="$ROOT/src:$ROOT/bench:$DEPS${PYTHONPATH:+:$PYTHONPATH}"
export CNNLAB_DATA="$ROOT/.data" MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1
: > "$OUT/steps.txt"

step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2 start rc
  shift 2
  [ -n "$SMOKE" ] && limit=$(( limit * 5 ))  # a busy shared CPU is far slower than the GPU
  start=$(date +%s)
  echo "== $name (limit ${limit}s, $(( start - T0 ))s into the run)"
  timeout -k 5 "$limit" "$@"
  rc=$?
  echo "== $name: exit $rc after $(( $(date +%s) - start ))s"
  echo "$name exit=$rc seconds=$(( $(date +%s) - start ))" >> "$OUT/steps.txt"
}

CUDA_TESTS=$(grep -l "mark.cuda" tests/test_*.py | tr '\n' ' ')
step cuda_tests 120 "$PY" -m pytest -q -p no:cacheprovider -m cuda -rs --continue-on-collection-errors \
  --junitxml="$OUT/cuda_tests.xml" $CUDA_TESTS
step mnist_baseline 70 "$PY" bench/gpu_mnist_baseline.py $SMOKE
step mnist_cnnlab 110 "$PY" bench/gpu_mnist_cnnlab.py $SMOKE
step throughput 120 "$PY" bench/gpu_throughput.py $SMOKE
[ -z "$SMOKE" ] && step mnist_cnnlab_compile 90 "$PY" bench/gpu_mnist_cnnlab.py --compile --seeds 0
step summary 20 "$PY" bench/gpu_summary.py $SMOKE
cp bench/results/gpu_*.json "$OUT/" 2>/dev/null
echo "== done in $(( $(date +%s) - T0 ))s"
