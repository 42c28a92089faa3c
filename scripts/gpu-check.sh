#!/usr/bin/env bash
# visiontune on an NVIDIA GPU, checked in one go: builds the addon against the CUDA libtorch inside
# this machine's PyTorch (or $LIBTORCH), runs the CUDA tests (test/cuda: ops and gradients on CUDA
# against the CPU, a zoo model's logits, a short fine-tune), times an epoch of efficientnet_v2_s
# against the same recipe in PyTorch (bench/gpu.ts), and runs the engine's CPU tests against it.
#   scripts/gpu-check.sh OUT_DIR              every step
#   scripts/gpu-check.sh OUT_DIR --build-only the build and the machine's description
# Writes OUT_DIR/gpu-check.log (everything printed) and OUT_DIR/gpu-figures.json (bench/gpu.ts's
# figures). Needs node ≥ 20, g++, make, a python3 with a CUDA torch and torchvision
# ($VISIONTUNE_PYTHON), the npm packages (npm ci) and the compiled TypeScript (npx tsc).
set -uo pipefail
out=${1:?usage: scripts/gpu-check.sh OUT_DIR [--build-only]}
mode=${2:-all}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
py=${VISIONTUNE_PYTHON:-python3}
export VISIONTUNE_PYTHON=$py
export LIBTORCH=${LIBTORCH:-$("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))')}
log="$out/gpu-check.log"
status=0
# Each step's output goes to the screen and the log; a step that fails or outlasts its limit
# (seconds; the commands, not this script's own functions) is reported and the next one still runs. The bench comes before the CPU tests: its
# figures are what only a GPU machine gives.
step() {
  local name=$1 limit=$2; shift 2
  printf '\n== %s (%s)\n' "$name" "$(date -u +%H:%M:%S)" | tee -a "$log"
  if declare -F "$1" >/dev/null; then "$@"; else timeout "$limit" "$@"; fi 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then
    echo "gpu-check: $name failed (exit $rc$([ "$rc" = 124 ] && echo ", past its ${limit} s"))" | tee -a "$log"
    status=1
  fi
  return "$rc"
}

describe() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "gpu-check: nvidia-smi failed"
  echo "cpu: $(nproc) cores; $(g++ --version | head -1); node $(node -v)"
  "$py" -c 'import torch, torchvision; print("torch", torch.__version__, "cuda", torch.version.cuda, "torchvision", torchvision.__version__, "gpu", torch.cuda.is_available())'
  node native/torch-config.cjs --describe
}

build() {
  local nodedir started
  nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  [ -f "$nodedir/include/node/node_api.h" ] || nodedir=/usr
  started=$(date +%s)
  if ! (cd native && node ../node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir="$nodedir" -j "$(nproc)" --loglevel=error >"$out/build.log" 2>&1); then
    grep -E 'error|Error' "$out/build.log" | head -40
    echo "the addon did not build against $LIBTORCH (whole log: build.log)"
    return 1
  fi
  echo "built against $LIBTORCH in $(( $(date +%s) - started )) s"
  node --input-type=module -e "import('./build/src/torch/index.js').then((t) => console.log('libtorch', JSON.stringify(t.libtorchVersion()), 'CUDA devices', t.cuda.deviceCount()))"
}

# The CUDA tests skip themselves without a GPU: here that is a failure, not a pass.
has_gpu() {
  node --input-type=module -e "import('./build/src/torch/index.js').then((t) => process.exit(t.cuda.deviceCount() > 0 ? 0 : 1))" ||
    { echo "the addon sees no CUDA device (a CPU libtorch, or no GPU visible): the CUDA tests would only skip"; return 1; }
}

step machine 60 describe
step build 300 build || exit 1
[ "$mode" = --build-only ] && exit 0
step "a GPU for the addon" 60 has_gpu
step "CUDA tests" 300 node --test --test-concurrency=1 build/test/cuda/cuda.test.js
step "an epoch against PyTorch" 420 node build/bench/gpu.js --json "$out/gpu-figures.json"
step "the engine's CPU tests against this libtorch" 180 node --test --test-concurrency=4 build/test/torch/*.test.js build/test/nn/*.test.js build/test/optim/*.test.js
exit $status
