#!/usr/bin/env bash
# Installs what visiontune needs and is missing, then builds it; safe to run again and again.
#   scripts/setup.sh          libtorch, a C++ toolchain, npm packages, the native addon, the TypeScript
#   scripts/setup.sh --test   also what the tests use: Python PyTorch as a reference, Chromium for the report
# With LIBTORCH set (a libtorch folder with include/ and lib/, e.g. a CUDA build), that libtorch
# is used and none is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

say() { printf 'setup: %s\n' "$*" >&2; }

missing=()
need() { dpkg -s "$1" >/dev/null 2>&1 || missing+=("$1"); }
if command -v dpkg >/dev/null 2>&1; then
  need g++; need make; need python3
  if [ -z "${LIBTORCH:-}" ]; then need libtorch-dev; need libopenblas0-openmp; need libgloo-dev; fi
  if [ "$want_test" = 1 ]; then need python3-torch; need python3-torchvision; need chromium; fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    sudo=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo"
  else
    say "missing Debian packages: ${missing[*]}"
    say "install them as root (apt-get install ${missing[*]}), or set LIBTORCH to a libtorch folder"
    say "(one with include/ and lib/, such as the one inside a pip torch install) and install a C++ compiler."
    exit 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || say "apt-get update failed; trying the install with the lists at hand"
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ -z "${LIBTORCH:-}" ] && ! command -v dpkg >/dev/null 2>&1; then
  say "not a Debian/Ubuntu system: set LIBTORCH to a libtorch folder (with include/ and lib/)"
  exit 1
fi

if [ ! -d node_modules ] || [ package.json -nt node_modules ] || [ package-lock.json -nt node_modules ]; then
  say "installing npm packages"
  # onnxruntime-node's install script would fetch optional GPU files from a host that may be unreachable;
  # its CPU binaries ship in the package.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
  touch node_modules
fi

# The addon is rebuilt when its sources change or another libtorch is chosen.
addon=native/build/Release/visiontune.node
stamp=native/build/libtorch.json
torch_now=$(node native/torch-config.cjs --describe)
rebuild=0
if [ ! -f "$addon" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$torch_now" ]; then
  rebuild=1
elif [ -n "$(find native/src native/binding.gyp native/torch-config.cjs -newer "$addon" 2>/dev/null)" ]; then
  rebuild=1
fi
if [ "$rebuild" = 1 ]; then
  say "building the native addon against $(node -e "console.log(JSON.parse(process.argv[1]).libDir)" "$torch_now")"
  nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  [ -f "$nodedir/include/node/node_api.h" ] || nodedir=/usr
  (cd native && npx --no-install node-gyp rebuild --nodedir="$nodedir" -j 2 --loglevel=error >/dev/null)
  printf '%s' "$torch_now" >"$stamp"
fi

npx --no-install tsc -p tsconfig.json
