// Data-parallel training over c10d/Gloo, at the library level: the sampler's shards, the
// buckets, 2 processes × batch 8 against 1 process × batch 16 (same losses and weights), a
// rank killed mid-run (the other names it), and the process group's refusals.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { zeros } from '../../src/torch/index.js';
import { DistributedSampler, bucketsOf, initProcessGroup, DistributedError, freePort } from '../../src/distributed/index.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.js');
const dir = mkdtempSync(path.join(tmpdir(), 'vt-ddp-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

interface Exit { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

/** Starts worker.js MODE OUT as rank `rank` of `world` (world 0: a lone process); `exited` resolves when it ends. */
function worker(mode: string, out: string, rank: number, world: number, port: number, env: Record<string, string> = {}):
  { child: ChildProcess; exited: Promise<Exit> } {
  const group = world > 0 ? { RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) } : {};
  const started = Date.now();
  const child = spawn(process.execPath, [WORKER, mode, out], { env: { ...process.env, ...group, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => { stdout += b; });
  child.stderr!.on('data', (b: Buffer) => { stderr += b; });
  const exited = new Promise<Exit>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started })));
  return { child, exited };
}

const untilRunning = (child: ChildProcess): Promise<void> => new Promise((resolve) => {
  child.stdout!.on('data', (b: Buffer) => { if (String(b).includes('running')) resolve(); });
});

test('DistributedSampler: training shards are padded to equal length and together cover the order; validation shards are exact', () => {
  const order = [5, 3, 9, 0, 7, 1, 8, 2, 6, 4, 10];
  const train = [0, 1, 2].map((r) => new DistributedSampler(r, 3));
  const shards = train.map((s) => s.take(order));
  assert.deepEqual(shards.map((s) => s.length), [4, 4, 4]);
  assert.deepEqual(train.map((s) => s.count(order.length)), [4, 4, 4]);
  assert.deepEqual(new Set(shards.flat()), new Set(order));
  // Rank r takes the order's items r, r + W, …; padding repeats the order's first item.
  assert.deepEqual(shards[0], [5, 0, 8, 4]);
  assert.deepEqual(shards[2], [9, 1, 6, 5]);
  const valid = [0, 1, 2].map((r) => new DistributedSampler(r, 3, { pad: false }));
  const parts = valid.map((s) => s.take(order));
  assert.deepEqual(parts.map((p) => p.length), valid.map((s) => s.count(order.length)));
  assert.deepEqual(parts.flat().sort((a, b) => a - b), [...order].sort((a, b) => a - b));
  assert.equal(new DistributedSampler(0, 2).seedSalt, 0, 'rank 0 augments as one process would');
  assert.notEqual(new DistributedSampler(1, 2).seedSalt, 0);
  assert.throws(() => new DistributedSampler(2, 2), RangeError);
});

test('bucketsOf: consecutive buckets under the cap, an oversized tensor alone', () => {
  const ts = [zeros([100]), zeros([100]), zeros([1000]), zeros([10]), zeros([10])];
  assert.deepEqual(bucketsOf(ts, 800), [[0, 1], [2], [3, 4]]);
  for (const t of ts) t.dispose();
});

/** Runs worker MODE alone and as 2 ranks; returns both results. */
async function alongside(mode: string): Promise<{ a: FitResult; b: FitResult }> {
  const port = await freePort();
  const single = path.join(dir, `${mode}-single.json`);
  const dist = path.join(dir, `${mode}-dist.json`);
  const alone = await worker(mode, single, 0, 0, port).exited;
  assert.equal(alone.code, 0, alone.stderr);
  const ranks = await Promise.all([0, 1].map((r) => worker(mode, dist, r, 2, port).exited));
  for (const r of ranks) assert.equal(r.code, 0, r.stderr);
  return { a: JSON.parse(readFileSync(single, 'utf8')) as FitResult, b: JSON.parse(readFileSync(dist, 'utf8')) as FitResult };
}

type FitResult = { losses: number[]; weights: Record<string, number[]>; steps: number; valid: Record<string, number> };

/** The largest difference between the two runs' per-step losses and final weights (and buffers). */
function differences(a: FitResult, b: FitResult): { loss: number; weight: number } {
  const loss = Math.max(...a.losses.map((l, i) => Math.abs(l - b.losses[i])));
  let weight = 0;
  for (const [k, w] of Object.entries(a.weights)) {
    const other = [b.weights[k]].flat(4) as number[];
    ([w].flat(4) as number[]).forEach((v, i) => { weight = Math.max(weight, Math.abs(v - other[i])); });
  }
  return { loss, weight };
}

test('2 processes × batch 8 give the per-step losses and final weights of 1 process × batch 16 (10 steps, 1e-5)', async () => {
  const { a, b } = await alongside('fit');
  assert.equal(a.steps, 10);
  assert.equal(b.steps, 10);
  assert.equal(b.losses.length, 10);
  const d = differences(a, b);
  assert.ok(d.loss < 1e-5, `per-step losses differ by ${d.loss}`);
  assert.ok(d.weight < 1e-5, `final weights differ by ${d.weight}`);
  // Validation sharded over the ranks and summed gives the whole set's figures.
  assert.ok(Math.abs(a.valid.valid_loss - b.valid.valid_loss) < 1e-5);
  assert.equal(a.valid.error_rate.toFixed(6), b.valid.error_rate.toFixed(6));
  // The train loss each rank records is the ranks' mean: the smoothed loss matches too.
  assert.ok(Math.abs(a.valid.train_loss - b.valid.train_loss) < 1e-5);
});

test('SyncBatchNorm: 2 processes × batch 8 train as 1 process × batch 16 with BatchNorm2d (losses, weights, running statistics; 1e-5)', async () => {
  const { a, b } = await alongside('fit-bn');
  assert.ok('1.running_mean' in a.weights && '1.running_var' in b.weights, 'the batch-norm buffers are compared');
  const d = differences(a, b);
  assert.ok(d.loss < 1e-5, `per-step losses differ by ${d.loss}`);
  assert.ok(d.weight < 1e-5, `final weights and running statistics differ by ${d.weight}`);
  assert.ok(Math.abs(a.valid.valid_loss - b.valid.valid_loss) < 1e-5);
});

for (const victim of [1, 0]) {
  test(`a rank killed mid-run: the other fails within seconds naming rank ${victim}`, async () => {
    const port = await freePort();
    const ranks = [0, 1].map((r) => worker('loop', '', r, 2, port, { DIST_TIMEOUT_S: '30' }));
    await Promise.all(ranks.map((r) => untilRunning(r.child)));
    const killedAt = Date.now();
    ranks[victim].child.kill('SIGKILL');
    const survivor = await ranks[1 - victim].exited;
    const took = Date.now() - killedAt;
    assert.equal(survivor.code, 3, survivor.stderr);
    const lines = survivor.stderr.trim().split('\n').filter((l) => !/^(WARNING: Logging|[EWI]\d{8} )/.test(l));
    assert.equal(lines.length, 1, survivor.stderr);
    assert.match(lines[0], new RegExp(`^rank ${1 - victim}: allreduce failed: lost rank ${victim} \\(`));
    assert.ok(took < 30_000, `took ${took} ms, the timeout is 30 s`);
  });
}

for (const victim of [0, 1]) {
  test(`a rank frozen (SIGSTOP) mid-run: the other fails after the timeout naming rank ${victim}, not a hang`, async () => {
    const port = await freePort();
    const ranks = [0, 1].map((r) => worker('loop', '', r, 2, port, { DIST_TIMEOUT_S: '4' }));
    await Promise.all(ranks.map((r) => untilRunning(r.child)));
    const stoppedAt = Date.now();
    ranks[victim].child.kill('SIGSTOP');
    try {
      const survivor = await ranks[1 - victim].exited;
      const took = Date.now() - stoppedAt;
      assert.equal(survivor.code, 3, survivor.stderr);
      assert.match(survivor.stderr.trim(), new RegExp(`^rank ${1 - victim}: allreduce failed: lost rank ${victim} \\(`));
      assert.ok(took < 4_000 + 12_000, `took ${took} ms: the 4 s timeout, the heartbeat look and at most 5 s for a frozen store`);
    } finally {
      ranks[victim].child.kill('SIGKILL');
    }
  });
}

test('a thread that throws std::system_error while a group lives is parked, not the end of the rank; after destroy() it aborts as before', async () => {
  // libtorch 1.13's store threads throw so when rank 0's socket is reset rather than closed.
  const during = await worker('store-reset', '', 0, 1, await freePort()).exited;
  assert.equal(during.code, 0, during.stderr);
  assert.match(during.stdout, /^survived 1$/m);
  const after = await worker('store-reset', 'after', 0, 1, await freePort()).exited;
  assert.equal(after.signal, 'SIGABRT', after.stderr);
  assert.match(after.stderr, /terminate called after throwing an instance of 'std::system_error'/);
});

test('initProcessGroup refuses an impossible rank, a backend this build lacks, and a rendezvous nobody joins', async () => {
  assert.throws(() => initProcessGroup({ rank: 2, worldSize: 2 }), /rank 2 is not one of 0…1/);
  assert.throws(() => initProcessGroup({ rank: 0, worldSize: 0 }), RangeError);
  assert.throws(() => initProcessGroup({ rank: 0, worldSize: 1, backend: 'nccl' }), /nccl backend needs a CUDA libtorch/);
  // Rank 1 of 2 waits for a rank 0 that never comes: an error after the timeout, not a hang.
  const port = await freePort();
  const started = Date.now();
  assert.throws(() => initProcessGroup({ rank: 1, worldSize: 2, masterPort: port, timeoutS: 2 }),
    (e: unknown) => e instanceof DistributedError && /could not join the process group at 127\.0\.0\.1:\d+ within 2 s/.test(e.message));
  assert.ok(Date.now() - started < 15_000);
});
