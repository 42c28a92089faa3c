#!/usr/bin/env bash
# visiontune on an NVIDIA GPU, checked in one go: builds the addon against the CUDA libtorch inside
# this machine's PyTorch (or $LIBTORCH), runs the CUDA tests (test/cuda: ops and gradients on CUDA
# against the CPU, a zoo model's logits, a short fine-tune), and times an epoch of
# efficientnet_v2_s against the same recipe in PyTorch (bench/gpu.ts).
#   scripts/gpu-check.sh OUT_DIR              all three steps
#   scripts/gpu-check.sh OUT_DIR --build-only the build and the machine's description
# Writes OUT_DIR/gpu-check.log (everything printed) and OUT_DIR/gpu-figures.json (bench/gpu.ts's
# figures). Needs node ≥ 20, g++, make, a python3 with a CUDA torch and torchvision
# ($VISIONTUNE_PYTHON), the npm packages (npm ci) and the compiled TypeScript (npx tsc).
set -uo pipefail
out=${1:?usage: scripts/gpu-check.sh OUT_DIR [--build-only]}
mode=${2:-all}
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec > >(tee -a "$out/gpu-check.log") 2>&1
cd "$(dirname "$0")/.."
py=${VISIONTUNE_PYTHON:-python3}
export VISIONTUNE_PYTHON=$py
export LIBTORCH=${LIBTORCH:-$("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))')}
step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step machine
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "gpu-check: nvidia-smi failed"
echo "cpu: $(nproc) cores; $(g++ --version | head -1); node $(node -v); $("$py" -c 'import torch, torchvision; print("torch", torch.__version__, "cuda", torch.version.cuda, "torchvision", torchvision.__version__, "gpu", torch.cuda.is_available())')"
node native/torch-config.cjs --describe

step "build the addon against $LIBTORCH"
nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
[ -f "$nodedir/include/node/node_api.h" ] || nodedir=/usr
started=$(date +%s)
if ! (cd native && node ../node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir="$nodedir" -j "$(nproc)" --loglevel=error >"$out/build.log" 2>&1); then
  grep -E 'error|Error' "$out/build.log" | head -40
  echo "gpu-check: the addon did not build (whole log: build.log)"
  exit 1
fi
echo "built in $(( $(date +%s) - started )) s"
node --input-type=module -e "import('./build/src/torch/index.js').then((t) => console.log('libtorch', JSON.stringify(t.libtorchVersion()), 'CUDA devices', t.cuda.deviceCount()))"
[ "$mode" = --build-only ] && exit 0

status=0
step "CUDA tests"
node --test --test-concurrency=1 build/test/cuda/*.test.js || status=1

step "CPU tests of the engine against this libtorch"
node --test --test-concurrency=1 build/test/torch/*.test.js build/test/nn/*.test.js build/test/optim/*.test.js || status=1

step "an epoch against PyTorch"
node build/bench/gpu.js --json "$out/gpu-figures.json" || status=1
exit $status
