#!/usr/bin/env node
// Prints the compiler and linker settings for the libtorch this build links:
// $LIBTORCH (a libtorch folder with include/ and lib/) when set, else Debian/Ubuntu's libtorch-dev.
'use strict';
const fs = require('fs');
const path = require('path');

function systemTorch() {
  const multiarch = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];
  const libDir = multiarch.find((d) => fs.existsSync(path.join(d, 'libtorch.so')));
  if (!libDir || !fs.existsSync('/usr/include/torch/csrc/api/include')) return null;
  return {
    includes: ['/usr/include', '/usr/include/torch/csrc/api/include'],
    libDir,
    cmake: path.join(libDir, 'cmake/Torch/TorchConfig.cmake'),
    rpath: false,
  };
}

function userTorch(root) {
  const abs = path.resolve(root);
  if (!fs.existsSync(path.join(abs, 'include')) || !fs.existsSync(path.join(abs, 'lib'))) {
    throw new Error(`LIBTORCH=${root} has no include/ and lib/ folders`);
  }
  return {
    includes: [path.join(abs, 'include'), path.join(abs, 'include/torch/csrc/api/include')],
    libDir: path.join(abs, 'lib'),
    cmake: path.join(abs, 'share/cmake/Torch/TorchConfig.cmake'),
    rpath: true,
  };
}

// The libstdc++ ABI must match libtorch's: take it from TorchConfig.cmake, else look for
// cxx11-ABI symbols in libc10.so.
function cxx11Abi(t) {
  if (fs.existsSync(t.cmake)) {
    const m = /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(fs.readFileSync(t.cmake, 'utf8'));
    if (m) return m[1];
  }
  const c10 = path.join(t.libDir, 'libc10.so');
  return fs.existsSync(c10) && fs.readFileSync(c10).includes('__cxx11') ? '1' : '0';
}

// libtorch's version, from its torch/version.h: [major, minor].
function torchVersion(t) {
  // Debian keeps it with the C++ API's headers, a pip torch's include/ beside ATen.
  const header = t.includes.map((d) => path.join(d, 'torch/version.h')).find((f) => fs.existsSync(f));
  const text = header ? fs.readFileSync(header, 'utf8') : '';
  const num = (what) => Number((new RegExp(`TORCH_VERSION_${what}\\s+(\\d+)`).exec(text) || [])[1] || 0);
  return [num('MAJOR'), num('MINOR')];
}

const torch = process.env.LIBTORCH ? userTorch(process.env.LIBTORCH) : systemTorch();
if (!torch) {
  console.error('visiontune: no libtorch found. Install libtorch-dev (Debian/Ubuntu) or set LIBTORCH to a libtorch folder.');
  process.exit(1);
}
const has = (lib) => fs.existsSync(path.join(torch.libDir, `lib${lib}.so`));
const cuda = has('torch_cuda');
// c10d with Gloo: its headers come with libtorch, Gloo's own with the libtorch folder or Debian's libgloo-dev.
const c10d = fs.existsSync(path.join(torch.includes[0], 'torch/csrc/distributed/c10d/ProcessGroupGloo.hpp')) &&
  [torch.includes[0], '/usr/include'].some((d) => fs.existsSync(path.join(d, 'gloo/context.h')));
const [major, minor] = torchVersion(torch);
// ATen's headers ask for C++20 from libtorch 2.12 on; C++17 before.
const std = major > 2 || (major === 2 && minor >= 12) ? 'c++20' : 'c++17';
const what = process.argv[2];
if (what === '--include') {
  console.log(torch.includes.join(' '));
} else if (what === '--cflags') {
  console.log(`-std=${std} -D_GLIBCXX_USE_CXX11_ABI=${cxx11Abi(torch)}${cuda ? ' -DVT_WITH_CUDA=1' : ''}${c10d ? ' -DVT_WITH_C10D=1' : ''}`);
} else if (what === '--libs') {
  const libs = [`-L${torch.libDir}`];
  if (torch.rpath) libs.push(`-Wl,-rpath,${torch.libDir}`);
  // --no-as-needed: the CUDA libraries register their kernels from static constructors; an
  // as-needed link drops them because no symbol of theirs is referenced.
  libs.push('-Wl,--no-as-needed');
  if (cuda) libs.push('-ltorch_cuda', '-lc10_cuda');
  libs.push('-ltorch', '-ltorch_cpu', '-lc10', '-Wl,--as-needed');
  console.log(libs.join(' '));
} else if (what === '--describe') {
  console.log(JSON.stringify({ ...torch, version: `${major}.${minor}`, cuda, c10d, abi: cxx11Abi(torch) }));
} else {
  console.error('usage: torch-config.cjs --include|--cflags|--libs|--describe');
  process.exit(2);
}
