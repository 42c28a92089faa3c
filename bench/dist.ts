// The distributed benchmark: one epoch of `visiontune train` (mobilenet_v2 from random weights,
// 160 px, generated images, no frozen epoch) with 1 process × all threads against `--nproc 2` ×
// threads/2 each on this machine, and the allreduce bandwidth of two ranks over loopback Gloo for
// DDP's 25 MB bucket. No target: on 2 cores two processes cannot be faster than one; the figures
// show the overhead. The last line is `ratio <2-process epoch seconds ÷ 1-process epoch seconds>`.
// Environment: BENCH_IMAGES (320), BENCH_SIZE (160), BENCH_BS (32), BENCH_ALLREDUCE_ROUNDS (20).
import { spawnSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { writeSyntheticFolder } from '../src/data/synthetic-files.js';

const HERE = fileURLToPath(import.meta.url);
const BIN = path.resolve(path.dirname(HERE), '..', 'src', 'cli', 'main.js');
const BUCKET_MB = 25;

// A rank of the allreduce measurement: `node dist.js --allreduce` with RANK, WORLD_SIZE, MASTER_PORT set.
async function allreduceRank(): Promise<void> {
  const { initProcessGroup } = await import('../src/distributed/index.js');
  const { zeros, setNumThreads } = await import('../src/torch/index.js');
  setNumThreads(1);
  const group = initProcessGroup({ timeoutS: 60 });
  const bucket = zeros([(BUCKET_MB * 2 ** 20) / 4]);
  const rounds = Number(process.env.BENCH_ALLREDUCE_ROUNDS ?? 20);
  group.allreduce([bucket]); // warm-up: Gloo's pairs and buffers
  group.barrier();
  const start = performance.now();
  for (let i = 0; i < rounds; i++) group.allreduce([bucket]);
  const seconds = (performance.now() - start) / 1000;
  if (group.rank === 0) process.stdout.write(`${JSON.stringify({ seconds, rounds })}\n`);
  group.barrier();
  group.destroy();
}

async function main(): Promise<void> {
  const images = Number(process.env.BENCH_IMAGES ?? 320);
  const size = Number(process.env.BENCH_SIZE ?? 160);
  const bs = Number(process.env.BENCH_BS ?? 32);
  const cores = os.availableParallelism();
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-bench-dist-'));
  try {
    const data = path.join(dir, 'photos');
    await writeSyntheticFolder(data, { perClass: images / 4, numClasses: 4, format: 'jpeg', minSide: 180, maxSide: 260, seed: 3 });
    console.log(`bench:dist — ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${cores} cores; mobilenet_v2, ${images} generated images (80% train), ` +
      `${size} px, batch ${bs} per step, 1 epoch`);
    const epoch = (nproc: number): { epoch: number; wall: number } => {
      const out = path.join(dir, `run${nproc}`);
      const threads = nproc === 1 ? ['--threads', String(cores)] : [];
      const start = performance.now();
      const r = spawnSync(process.execPath, [BIN, 'train', data, '--arch', 'mobilenet_v2', '--weights', 'none', '--size', String(size), '--item-size', String(size),
        '--bs', String(bs), '--freeze-epochs', '0', '--epochs', '1', '--lr', '1e-3', '--seed', '1', '--nproc', String(nproc), ...threads, '--out', out],
      { encoding: 'utf8', env: { ...process.env, VISIONTUNE_OFFLINE: '1' } });
      if (r.status !== 0) throw new Error(`train --nproc ${nproc} failed: ${r.stderr}`);
      const rows = readFileSync(path.join(out, 'results.csv'), 'utf8').trim().split('\n');
      const header = rows[0].split(',');
      return { epoch: Number(rows[1].split(',')[header.indexOf('time')]), wall: (performance.now() - start) / 1000 };
    };
    const one = epoch(1);
    console.log(`1 process × ${cores} threads:   epoch ${one.epoch.toFixed(2)} s (training and validation), command ${one.wall.toFixed(1)} s`);
    const two = epoch(2);
    console.log(`2 processes × ${Math.max(1, Math.floor(cores / 2))} thread${cores >= 4 ? 's' : ''}: epoch ${two.epoch.toFixed(2)} s, command ${two.wall.toFixed(1)} s`);

    const port = 20000 + Math.floor(Math.random() * 20000);
    const ranks = [0, 1].map((rank) => spawn(process.execPath, [HERE, '--allreduce'], {
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    }));
    let text = '';
    ranks[0].stdout!.on('data', (b: Buffer) => { text += b; });
    await Promise.all(ranks.map((c) => new Promise((resolve) => c.on('exit', resolve))));
    const { seconds, rounds } = JSON.parse(text) as { seconds: number; rounds: number };
    const perCall = seconds / rounds;
    console.log(`allreduce of a ${BUCKET_MB} MB bucket, 2 ranks over loopback Gloo: ${(perCall * 1000).toFixed(1)} ms each, ` +
      `${(BUCKET_MB / perCall).toFixed(0)} MB/s (bucket size ÷ time; ${rounds} rounds)`);
    console.log(`ratio ${(two.epoch / one.epoch).toFixed(3)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes('--allreduce')) await allreduceRank();
else await main();
