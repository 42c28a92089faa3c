// `visiontune train --nproc 2`: two ranks over Gloo on this machine, against one process on the
// same seed; a rank killed mid-epoch; Ctrl-C on the launcher; the refusals before any rank starts.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { visiontune, assertOneLineError } from '../helpers/cli.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const dir = mkdtempSync(path.join(tmpdir(), 'vt-nproc-'));
// The demo's photos (3 patterns × 80, seed 7) and others of the same kinds (seed 9) to train a body on.
const demo = path.join(dir, 'demo');
const other = path.join(dir, 'other');
const small = path.join(dir, 'small');
const BODY = path.join(dir, 'body');
const MODEL = ['--arch', 'resnet18', '--size', '64', '--item-size', '96', '--bs', '16', '--seed', '42'];
// 3 × 30 photos at --bs 4: 18 training batches an epoch, time to act in one.
const SLOW = ['--arch', 'resnet18', '--weights', 'none', '--size', '32', '--item-size', '48', '--bs', '4', '--seed', '5', '--freeze-epochs', '1', '--epochs', '2',
  '--lr', '2e-3', '--dist-timeout', '20'];

test.before(async () => {
  const kinds = { numClasses: 3, format: 'jpeg' as const, minSide: 80, maxSide: 140 };
  await writeSyntheticFolder(demo, { perClass: 80, seed: 7, ...kinds });
  await writeSyntheticFolder(other, { perClass: 80, seed: 9, ...kinds });
  await writeSyntheticFolder(small, { perClass: 30, numClasses: 3, minSide: 48, maxSide: 72, seed: 8 });
  // Fine-tuning from a trained body, as users do, not from random weights: from random weights
  // two runs on one seed end 0.1 apart in error whatever the process count.
  const r = visiontune(['train', other, ...MODEL, '--weights', 'none', '--freeze-epochs', '0', '--epochs', '8', '--lr', '1e-2', '--threads', '2', '--out', BODY]);
  assert.equal(r.code, 0, r.stderr);
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** The table's rows as printed: header cells, then each epoch's numbers. */
function table(stdout: string): { header: string[]; rows: number[][] } {
  const lines = stdout.split('\n');
  const at = lines.findIndex((l) => l.startsWith('epoch '));
  const header = lines[at].split(/\s+/);
  const rows = lines.slice(at + 1).filter((l) => /^\d+\s/.test(l)).map((l) => l.split(/\s+/).slice(0, -1).map(Number));
  return { header, rows };
}

test('train --nproc 2 completes, writes one model set, prints the table of one process; validation error within 0.05', () => {
  const fineTune = [demo, ...MODEL, '--weights', path.join(BODY, 'best.safetensors'), '--freeze-epochs', '1', '--epochs', '2', '--lr', '2e-3'];
  const one = visiontune(['train', ...fineTune, '--threads', '2', '--out', path.join(dir, 'one')]);
  assert.equal(one.code, 0, one.stderr);
  const two = visiontune(['train', ...fineTune, '--nproc', '2', '--out', path.join(dir, 'two')]);
  assert.equal(two.code, 0, two.stderr);
  assert.match(two.stderr, /^visiontune: 2 ranks \(2 on this machine, 1 thread each\), rendezvous at 127\.0\.0\.1:\d+; pids 0:\d+ 1:\d+$/m);
  assert.match(two.stdout, /training batches of 2 × 8 \(2 processes\)/);
  // The same files, once: rank 1 writes nothing.
  assert.deepEqual(readdirSync(path.join(dir, 'two')).sort(), readdirSync(path.join(dir, 'one')).sort());
  assert.equal(two.stdout.split('\n').filter((l) => l.startsWith('epoch ')).length, 1, 'one table');
  const [a, b] = [table(one.stdout), table(two.stdout)];
  assert.deepEqual(b.header, a.header);
  assert.equal(b.rows.length, a.rows.length);
  assert.equal(b.rows.length, 3);
  const err = (t: typeof a): number => t.rows[t.rows.length - 1][a.header.indexOf('error_rate')];
  assert.ok(Math.abs(err(a) - err(b)) <= 0.05, `error ${err(a)} with one process, ${err(b)} with two`);
  const csv = (run: string): string[] => readFileSync(path.join(dir, run, 'results.csv'), 'utf8').trim().split('\n');
  assert.equal(csv('two').length, csv('one').length);
  // The table's validation figures are the saved model's: every rank validates with rank 0's batch-norm statistics.
  const results = JSON.parse(readFileSync(path.join(dir, 'two', 'results.json'), 'utf8')) as
    { epochs: { valid_loss: number; error_rate: number }[]; validation: { loss: number; actual: string; predicted: string }[] };
  const items = results.validation;
  const last = results.epochs[results.epochs.length - 1];
  assert.ok(Math.abs(items.reduce((t, it) => t + it.loss, 0) / items.length - last.valid_loss) < 1e-5, 'valid_loss is the saved model\'s');
  assert.equal(items.filter((it) => it.actual !== it.predicted).length / items.length, last.error_rate);
  const settings = JSON.parse(readFileSync(path.join(dir, 'two', 'settings.json'), 'utf8'));
  assert.equal(settings.args.nproc, 2);
  assert.equal(settings.args.bs, 16, 'the batch is the step\'s, over both processes');
});

/** Runs the CLI in the background; calls `onTable` once the table's header is out. */
function background(args: string[], onTable: (pids: number[], launcher: number) => void):
  Promise<{ code: number | null; stdout: string; stderr: string; pids: number[]; ms: number }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, VISIONTUNE_OFFLINE: '1' } });
  let stdout = '';
  let stderr = '';
  let pids: number[] = [];
  let acted = false;
  let actedAt = 0;
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b;
    const m = /pids ((?:\d+:\d+ ?)+)/.exec(stderr);
    if (m && pids.length === 0) pids = m[1].trim().split(' ').map((p) => Number(p.split(':')[1]));
  });
  child.stdout!.on('data', (b: Buffer) => {
    stdout += b;
    // After the first epoch's row: the checkpoint exists, the second epoch runs.
    if (!acted && /^0\s+\d/m.test(stdout)) {
      acted = true;
      actedAt = Date.now();
      onTable(pids, child.pid!);
    }
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr, pids, ms: Date.now() - actedAt })));
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function assertAllGone(pids: number[]): Promise<void> {
  for (let i = 0; i < 50 && pids.some(isAlive); i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(pids.filter(isAlive), [], 'no rank is left behind');
}

test('a rank killed mid-epoch (with --sync-bn): rank 0 names it in one line within the timeout, the launcher fails, no process is left', async () => {
  // With SyncBatchNorm the collectives also run inside the forward and backward passes.
  const r = await background(['train', small, ...SLOW, '--nproc', '2', '--sync-bn', '--out', path.join(dir, 'killed')], (pids) => process.kill(pids[1], 'SIGKILL'));
  assert.equal(r.pids.length, 2);
  assert.equal(r.code, 137, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 3, r.stderr);
  assert.match(lines[1], new RegExp(`^visiontune: rank 1 \\(pid ${r.pids[1]}\\) was killed by SIGKILL`));
  assert.match(lines[2], /^visiontune: rank 0: (allreduce|broadcast|syncBatchNorm|backward) failed: lost rank 1 \(/);
  assert.ok(r.ms < 20_000, `took ${r.ms} ms; the timeout is 20 s`);
  await assertAllGone(r.pids);
  // The epochs before stay: the checkpoint of the first.
  assert.ok(existsSync(path.join(dir, 'killed', 'checkpoint.safetensors')));
});

test('Ctrl-C on the launcher (with --sync-bn): every rank stops after the same batch, rank 0 saves, exit 130; --resume finishes the run', async () => {
  const out = path.join(dir, 'stopped');
  const r = await background(['train', small, ...SLOW, '--nproc', '2', '--sync-bn', '--out', out], (_pids, launcher) => process.kill(launcher, 'SIGINT'));
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /SIGINT: stopping at the end of this batch and saving/);
  assert.match(r.stderr, /visiontune: stopped by SIGINT; saved .*checkpoint\.safetensors.*resume with visiontune train --resume \S+ --nproc 2$/m);
  assert.doesNotMatch(r.stderr, /lost rank|rank 1/);
  await assertAllGone(r.pids);
  // Resumed with two ranks again (one would do too: --bs is the step's batch, whatever the process count).
  const resumed = visiontune(['train', '--resume', out, '--nproc', '2']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /Resuming at epoch 1, batch \d+ of 18:/);
  assert.equal(JSON.parse(readFileSync(path.join(out, 'settings.json'), 'utf8')).args.syncBn, true);
  assert.equal(readFileSync(path.join(out, 'results.csv'), 'utf8').trim().split('\n').length, 1 + 3);
});

test('two machines, simulated by two launchers with --nnodes 2 on this one, train as --nproc 2 does', async () => {
  const args = ['train', small, ...SLOW, '--freeze-epochs', '0', '--epochs', '1', '--bs', '8'];
  const single = visiontune([...args, '--nproc', '2', '--out', path.join(dir, 'nproc')]);
  assert.equal(single.code, 0, single.stderr);
  const port = String(20000 + Math.floor(Math.random() * 20000));
  const nodes = await Promise.all([0, 1].map((node) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args, '--nproc', '1', '--nnodes', '2', '--node-rank', String(node), '--master-addr', '127.0.0.1',
      '--master-port', port, '--threads', '1', '--out', path.join(dir, 'nodes')], { env: { ...process.env, VISIONTUNE_OFFLINE: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b; });
    child.stderr.on('data', (b: Buffer) => { stderr += b; });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  })));
  for (const n of nodes) assert.equal(n.code, 0, n.stderr);
  assert.equal(nodes[1].stdout, '', 'machine 1 prints nothing but the launcher line');
  assert.deepEqual(table(nodes[0].stdout).rows.map((r) => r.slice(1)), table(single.stdout).rows.map((r) => r.slice(1)));
});

test('two machines with different copies of the data: refused on every rank in one line, before training', async () => {
  const copy = path.join(dir, 'copy');
  await writeSyntheticFolder(copy, { perClass: 29, numClasses: 3, minSide: 48, maxSide: 72, seed: 8 });
  const port = String(20000 + Math.floor(Math.random() * 20000));
  const nodes = await Promise.all([small, copy].map((data, node) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, 'train', data, ...SLOW, '--nproc', '1', '--nnodes', '2', '--node-rank', String(node), '--master-addr', '127.0.0.1',
      '--master-port', port, '--threads', '1', '--out', path.join(dir, `mismatch${node}`)], { env: { ...process.env, VISIONTUNE_OFFLINE: '1' } });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => { stderr += b; });
    child.on('exit', (code) => resolve({ code, stderr }));
  })));
  assert.equal(nodes[0].code, 2, nodes[0].stderr);
  assert.match(nodes[0].stderr, /^visiontune: rank 1 read other data or built another model than rank 0 \(69 training and 18 validation images against 72 and 18\): every machine needs the same data folder/m);
  assert.equal(nodes[1].code, 2);
  assert.doesNotMatch(nodes[0].stderr + nodes[1].stderr, /terminate called|EnforceNotMet/);
});

test('train --nproc refuses, in one line before any rank starts: a batch that does not split, --nnodes without --master-addr, a bad --node-rank, a used --out', () => {
  assertOneLineError(visiontune(['train', small, '--bs', '5', '--nproc', '2']), 2, /--bs 5 does not split among 2 processes/);
  assertOneLineError(visiontune(['train', small, '--nproc', '2', '--nnodes', '2']), 2, /--nnodes > 1 needs --master-addr/);
  assertOneLineError(visiontune(['train', small, '--nnodes', '2', '--node-rank', '2', '--master-addr', '10.0.0.1']), 2, /--node-rank 2 is not one of 0…1/);
  const used = path.join(dir, 'used');
  mkdirSync(used);
  writeFileSync(path.join(used, 'x.txt'), 'x');
  assertOneLineError(visiontune(['train', small, '--nproc', '2', '--out', used]), 2, /already holds files: give --exist-ok/);
  assertOneLineError(visiontune(['train', small, '--bs', '2', '--nproc', '2']), 2, /--bs 2 over 2 processes leaves 1 image each, too few for batch norm's statistics/);
  assertOneLineError(visiontune(['train', small, '--sync-bn']), 2, /--sync-bn is for training on several processes: give --nproc N/);
  assertOneLineError(visiontune(['train', small, '--dist-timeout', '5']), 2, /--dist-timeout is for training on several processes/);
});

test('train --nproc refuses a --master-port another program holds, in one line, at once', async () => {
  const holder = createServer().listen(0, '0.0.0.0');
  await new Promise((r) => holder.once('listening', r));
  const port = (holder.address() as { port: number }).port;
  try {
    assertOneLineError(visiontune(['train', small, '--nproc', '2', '--master-port', String(port)]), 2, new RegExp(`--master-port ${port} is in use on this machine`));
  } finally {
    holder.close();
  }
});
