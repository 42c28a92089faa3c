// The engine benchmark: training-step throughput of one CNN (conv, batch norm, SiLU, depthwise
// conv, linear; AdamW) in visiontune and in Python PyTorch on the same libtorch build family and
// thread count, measured in one run, plus the cost of one tiny op through the binding.
// Rounds alternate between the two so that neither gets a quieter machine; each side's best
// round counts. The last line is `ratio <visiontune img/s ÷ PyTorch img/s>`.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { F, manualSeed, ones, rand, randint, tidy, getNumThreads, libtorchVersion } from '../src/torch/index.js';
import { nativeTinyOpMicros } from '../src/torch/runtime.js';
import { AdamW } from '../src/optim/index.js';
import { SimpleCNN } from '../src/models/simple-cnn.js';

const PYTHON = process.env.VISIONTUNE_PYTHON ?? '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));
// The sources sit beside the compiled file's mirror: build/bench → bench.
const pyScript = path.resolve(here, '..', '..', 'bench', 'engine.py');

const config = {
  threads: getNumThreads(),
  batch: 32,
  size: 224,
  classes: 10,
  width: 32,
  warmup: 2,
  steps: Number(process.env.BENCH_STEPS ?? 8),
  tiny_ops: 200_000,
};
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);

function visiontune(): { imgsPerS: number; opUs: number } {
  manualSeed(0);
  const model = new SimpleCNN({ numClasses: config.classes, width: config.width });
  const opt = new AdamW(model.parameters(), { lr: 1e-3 });
  const x = rand([config.batch, 3, config.size, config.size]);
  const y = randint(0, config.classes, [config.batch]);
  const step = (): number => tidy(() => {
    const loss = F.crossEntropy(model.forward(x), y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return loss.item();
  });
  for (let i = 0; i < config.warmup; i++) step();
  let start = performance.now();
  for (let i = 0; i < config.steps; i++) step();
  const imgsPerS = (config.batch * config.steps) / ((performance.now() - start) / 1000);

  const a = ones([1]), b = ones([1]);
  for (let i = 0; i < 1000; i++) a.add(b).dispose();
  start = performance.now();
  for (let i = 0; i < config.tiny_ops; i++) a.add(b).dispose();
  const opUs = ((performance.now() - start) * 1000) / config.tiny_ops;
  for (const t of [a, b, x, y]) t.dispose();
  opt.dispose();
  model.dispose();
  return { imgsPerS, opUs };
}

function pytorch(): { imgsPerS: number; opUs: number; torch: string } {
  const r = spawnSync(PYTHON, [pyScript, JSON.stringify(config)], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`the Python side failed (${PYTHON} ${pyScript}): ${r.error?.message ?? r.stderr}`);
  }
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  return { imgsPerS: out.imgs_per_s, opUs: out.op_us, torch: out.torch };
}

console.log(`engine benchmark: SimpleCNN width ${config.width}, batch ${config.batch}, ${config.size} px, AdamW, ` +
  `${config.threads} threads, ${config.steps} timed steps after ${config.warmup} warm-up, best of ${rounds} rounds`);
let ours = { imgsPerS: 0, opUs: Infinity };
let theirs = { imgsPerS: 0, opUs: Infinity, torch: '' };
for (let round = 0; round < rounds; round++) {
  const v = visiontune();
  const p = pytorch();
  console.log(`round ${round + 1}: visiontune ${v.imgsPerS.toFixed(2)} img/s, PyTorch ${p.imgsPerS.toFixed(2)} img/s`);
  ours = { imgsPerS: Math.max(ours.imgsPerS, v.imgsPerS), opUs: Math.min(ours.opUs, v.opUs) };
  theirs = { imgsPerS: Math.max(theirs.imgsPerS, p.imgsPerS), opUs: Math.min(theirs.opUs, p.opUs), torch: p.torch };
}
console.log(`visiontune (libtorch ${libtorchVersion().torch}): ${ours.imgsPerS.toFixed(2)} img/s per training step`);
console.log(`PyTorch ${theirs.torch}: ${theirs.imgsPerS.toFixed(2)} img/s per training step`);
const floorUs = nativeTinyOpMicros(config.tiny_ops);
console.log(`tiny op (1-element add, result freed): C++ ${floorUs.toFixed(2)} µs, visiontune ${ours.opUs.toFixed(2)} µs, ` +
  `PyTorch ${theirs.opUs.toFixed(2)} µs`);
console.log(`per-op overhead of the binding: ${(ours.opUs - floorUs).toFixed(2)} µs (Python's: ${(theirs.opUs - floorUs).toFixed(2)} µs)`);
console.log(`ratio ${(ours.imgsPerS / theirs.imgsPerS).toFixed(3)}`);
