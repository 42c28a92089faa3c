// The serving benchmark: autocannon against `visiontune serve` on loopback (a child process),
// images/s and p50/p99 latency at concurrency 1, 8 and 32, with batching on (--max-batch 16) and
// off (--max-batch 1); and, in the same run, in-process batched prediction (the model on batches
// of 16 decoded images, as the server runs them) as the reference. The last line is `ratio <served
// images/s at concurrency 32 with batching ÷ in-process batched images/s>` (target ≥ 0.8).
// Environment: BENCH_ARCH (mobilenet_v2), BENCH_SIZE (224), BENCH_SECONDS (8).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { cat, getNumThreads, manualSeed } from '../src/torch/index.js';
import { zooEntry } from '../src/models/registry.js';
import { VisionClassifier } from '../src/learner/model.js';
import { exportModel, loadModel } from '../src/learner/export.js';
import { centreSquare } from '../src/data/transform.js';
import { cropProbs } from '../src/learner/predict.js';
import { writeSyntheticFolder } from '../src/data/synthetic-files.js';
import { IMAGENET_STATS } from '../src/torch/stats.js';

const arch = process.env.BENCH_ARCH ?? 'mobilenet_v2';
const size = Number(process.env.BENCH_SIZE ?? 224);
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const dir = mkdtempSync(path.join(tmpdir(), 'vt-bench-serve-'));

async function start(extra: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', path.join(dir, 'model.safetensors'), '--port', '0', '--threads', String(getNumThreads()), ...extra]);
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => { out += b; const m = /on (http:\/\/[\d.]+:\d+)/.exec(out); if (m) resolve(m[1]); });
    child.on('exit', (c) => reject(new Error(`serve exited ${c}`)));
  });
  return { child, url };
}

try {
  manualSeed(0);
  const model = new VisionClassifier(zooEntry(arch).build(), 10);
  model.eval();
  const classes = Array.from({ length: 10 }, (_, i) => `class${i}`);
  exportModel(path.join(dir, 'model.safetensors'), model, { architecture: arch, classes, size, normalization: IMAGENET_STATS as never, head: {}, itemSize: size, resizeMethod: 'crop' });
  model.dispose();
  const [file] = await writeSyntheticFolder(path.join(dir, 'img'), { perClass: 1, numClasses: 1, minSide: 400, maxSide: 400, seed: 1 });
  const body = readFileSync(file);
  console.log(`bench:serve  ${arch} at ${size} px, ${getNumThreads()} threads, ${seconds} s per run, a ${(body.length / 1024).toFixed(0)} KB JPEG`);

  // In-process: decode 16 images and run them as one batch, as the server does.
  const exported = loadModel(path.join(dir, 'model.safetensors'));
  const t = exported.preprocess;
  let n = 0;
  const began = performance.now();
  while (performance.now() - began < seconds * 1000) {
    const squares = await Promise.all(Array.from({ length: 16 }, () => centreSquare(body, t)));
    const batch = cat(squares as never);
    cropProbs(exported.model, batch, t, {});
    batch.dispose();
    for (const s of squares) (s as { dispose(): void }).dispose();
    n += 16;
  }
  const inProcess = n / ((performance.now() - began) / 1000);
  console.log(`in-process batched predict  ${inProcess.toFixed(1)} images/s`);

  let served32 = 0;
  console.log('batching  concurrency  images/s  p50 ms  p99 ms  errors');
  for (const [label, extra] of [['on', ['--max-batch', '16']], ['off', ['--max-batch', '1']]] as const) {
    const server = await start([...extra]);
    try {
      for (const connections of [1, 8, 32]) {
        const r = await autocannon({ url: `${server.url}/predict`, method: 'POST', body, headers: { 'content-type': 'image/jpeg' }, connections, duration: seconds });
        const rate = r.requests.total / seconds;
        if (label === 'on' && connections === 32) served32 = rate;
        console.log(`${label.padEnd(9)} ${String(connections).padStart(11)}  ${rate.toFixed(1).padStart(8)}  ${String(r.latency.p50).padStart(6)}  ${String(r.latency.p99).padStart(6)}  ${r.errors + r.non2xx}`);
      }
    } finally {
      server.child.kill('SIGKILL');
    }
  }
  console.log(`ratio ${(served32 / inProcess).toFixed(3)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
