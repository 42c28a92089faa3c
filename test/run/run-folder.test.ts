// Acceptance (issue 13): a run folder a person can look at, keep and resume. An end-to-end run on
// generated photos writes every file (each picture decoded and non-blank; the confusion counts
// in the report's SVG equal --json's); the report opens in headless Chromium with no console
// error, no failed request and every image drawn (screenshot kept under build/test-artifacts);
// a run stopped by SIGINT mid-epoch and resumed equals the uninterrupted run; SIGKILL at random
// moments never leaves a file that loads wrong; --epochs +N appends N rows.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import puppeteer from 'puppeteer-core';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { loadModel } from '../../src/learner/export.js';
import { readCheckpoint } from '../../src/learner/checkpoint.js';
import { readSafetensors } from '../../src/io/index.js';
import { seededRandom } from '../../src/data/random.js';
import { visiontune, assertOneLineError } from '../helpers/cli.js';
import { resumingLine } from '../../src/cli/train.js';
import { UNTRAINED_NORMS_NOTE } from '../../src/learner/learner.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'test-artifacts');
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);
const SMALL = ['--arch', 'resnet18', '--weights', 'none', '--size', '32', '--item-size', '48', '--threads', '2', '--seed', '5'];
// 3 classes × 30 photos; 72 for training at --bs 4: 18 batches an epoch, long enough to stop in one.
const RUN = [...SMALL, '--bs', '4', '--freeze-epochs', '1', '--epochs', '2', '--lr', '2e-3'];

const dir = mkdtempSync(path.join(tmpdir(), 'vt-run-'));
const data = path.join(dir, 'photos');
test.before(async () => { await writeSyntheticFolder(data, { perClass: 30, numClasses: 3, minSide: 48, maxSide: 72, seed: 8 }); });
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI in the background; resolves with its exit code and output. `onLine` sees each stdout line as it comes. */
function spawnCli(args: string[], onLine?: (line: string, child: ReturnType<typeof spawn>) => void, cwd?: string):
  { child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, VISIONTUNE_OFFLINE: '1' }, cwd });
  let stdout = '';
  let stderr = '';
  let pending = '';
  child.stdout!.on('data', (b: Buffer) => {
    stdout += b;
    pending += b;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const l of lines) onLine?.(l, child);
  });
  child.stderr!.on('data', (b: Buffer) => { stderr += b; });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

const csvRows = (file: string): Record<string, string>[] => {
  const [head, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  const cols = head.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
};

/** The largest absolute difference between the tensors of two safetensors files with the same keys. */
function maxWeightDiff(a: string, b: string): number {
  const [x, y] = [readSafetensors(a).tensors, readSafetensors(b).tensors];
  assert.deepEqual([...x.keys()].sort(), [...y.keys()].sort());
  let worst = 0;
  for (const [k, t] of x) {
    if (t.dtype !== 'float32') continue;
    const [p, q] = [t.toTypedArray() as Float32Array, y.get(k)!.toTypedArray() as Float32Array];
    for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(p[i] - q[i]));
  }
  for (const t of [...x.values(), ...y.values()]) t.dispose();
  return worst;
}

test('issue 13: train writes the whole run folder; every picture decodes and is not blank; the report\'s confusion counts equal --json\'s', async (t) => {
  const out = path.join(dir, 'full');
  const json = path.join(dir, 'full.json');
  const r = visiontune(['train', data, ...SMALL, '--bs', '8', '--epochs', '1', '--lr', 'auto', '--out', out, '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  const files = readdirSync(out).sort();
  t.diagnostic(files.join(' '));
  for (const f of ['settings.json', 'results.csv', 'results.json', 'best.safetensors', 'last.safetensors', 'checkpoint.safetensors', 'report.html',
    'curves.png', 'lr_find.png', 'lr_find.csv', 'confusion_matrix.png', 'confusion_matrix_normalized.png', 'per_class.png', 'top_losses.jpg', 'train_batch.jpg']) {
    assert.ok(files.includes(f), `${f} in the run folder`);
  }
  assert.ok(!files.some((f) => f.endsWith('.tmp')), 'no temporary file left');
  for (const f of files.filter((x) => /\.(png|jpg)$/.test(x))) {
    const img = sharp(path.join(out, f));
    const meta = await img.metadata();
    const stats = await img.stats();
    assert.ok(meta.width! >= 100 && meta.height! >= 60, `${f}: ${meta.width}×${meta.height}`);
    assert.ok(stats.channels.slice(0, 3).some((c) => c.stdev > 5), `${f} is not blank`);
  }
  const settings = JSON.parse(readFileSync(path.join(out, 'settings.json'), 'utf8'));
  assert.equal(settings.args.arch, 'resnet18');
  assert.equal(settings.args.seed, 5);
  assert.ok(settings.plan.baseLr > 0, 'the lr lr_find chose');
  assert.ok(settings.libtorchVersion && settings.visiontuneVersion && settings.machine.threads === 2);
  assert.ok(settings.data.vocab.length === 3);
  const rows = csvRows(path.join(out, 'results.csv'));
  assert.deepEqual(rows.map((x) => x.phase), ['frozen', 'unfrozen']);
  assert.ok(rows.every((x) => Number(x.accuracy) + Number(x.error_rate) === 1 || Math.abs(Number(x.accuracy) + Number(x.error_rate) - 1) < 1e-9));
  assert.ok('lr_0' in rows[0] && 'time' in rows[0]);

  const results = JSON.parse(readFileSync(json, 'utf8'));
  const html = readFileSync(path.join(out, 'report.html'), 'utf8');
  const confusion = html.slice(html.indexOf('<section id="confusion">'));
  const svg = confusion.slice(0, confusion.indexOf('</svg>'));
  const cells = [...svg.matchAll(/aria-label="predicted: ([^;"]+); actual: ([^;"]+); value: (\d+)"/g)];
  assert.equal(cells.length, 9, 'one rect per cell');
  const classes: string[] = results.confusion.classes;
  for (const [, p, a, v] of cells) assert.equal(Number(v), results.confusion.matrix[classes.indexOf(a)][classes.indexOf(p)], `${a} → ${p}`);
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'no network reference');

  // The report rebuilds from the folder alone; predict takes the run folder.
  const rebuilt = visiontune(['report', out]);
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  const p = visiontune(['predict', out, path.join(data, 'disc', 'disc_0.jpg'), '--json']);
  assert.equal(p.code, 0, p.stderr);
  assertOneLineError(visiontune(['train', data, ...SMALL, '--out', out]), 2, /already holds files: give --exist-ok/);
  assertOneLineError(visiontune(['report', data]), 1, /not a visiontune run folder/);
});

test('issue 13: the report opens in headless Chromium: no console error, no failed request, every image drawn, one table row per epoch', async (t) => {
  assert.ok(CHROMIUM, 'Chromium is installed (scripts/setup.sh --test installs Debian\'s chromium)');
  const out = path.join(dir, 'full');
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    const failed: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('requestfailed', (q) => failed.push(q.url()));
    page.on('request', (q) => requests.push(q.url()));
    await page.setViewport({ width: 1200, height: 900 });
    await page.goto(`file://${path.join(out, 'report.html')}`, { waitUntil: 'load' });
    const widths = await page.$$eval('img', (xs) => xs.map((x) => (x as unknown as { naturalWidth: number }).naturalWidth));
    const svgs = await page.$$eval('svg', (xs) => xs.map((x) => x.getBoundingClientRect().width));
    const epochRows = await page.$$eval('table.epochs tbody tr', (xs) => xs.length);
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`${widths.length} images, ${svgs.length} charts, screenshot ${shot}`);
    assert.deepEqual(errors, []);
    assert.deepEqual(failed, []);
    assert.ok(requests.every((u) => u.startsWith('file://') || u.startsWith('data:')), requests.join(' '));
    assert.ok(widths.length > 0 && widths.every((w) => w > 0), `image widths ${widths}`);
    assert.ok(svgs.length >= 4 && svgs.every((w) => w > 0));
    const results = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    assert.equal(epochRows, results.epochs.length);
  } finally {
    await browser.close();
  }
});

test('issue 13: SIGINT mid-epoch saves and exits 130; --resume gives the uninterrupted run\'s losses (1e-5) and weights', async (t) => {
  const whole = path.join(dir, 'whole');
  const w = visiontune(['train', data, ...RUN, '--out', whole]);
  assert.equal(w.code, 0, w.stderr);

  const cut = path.join(dir, 'cut');
  let sent = false;
  const { done } = spawnCli(['train', data, ...RUN, '--out', cut], (line, child) => {
    // The row of epoch 1 is printed: epoch 2 has begun; stop it a few batches in.
    if (!sent && /^1\s+\d/.test(line)) {
      sent = true;
      setTimeout(() => child.kill('SIGINT'), 200);
    }
  });
  const stopped = await done;
  assert.equal(stopped.code, 130, stopped.stderr);
  assert.match(stopped.stderr, /SIGINT: stopping at the end of this batch/);
  assertOneLineError({ code: 130, stderr: stopped.stderr.split('\n').filter((l) => l.startsWith('visiontune:')).join('\n') }, 130,
    /stopped by SIGINT; saved .*checkpoint\.safetensors.*resume with visiontune train --resume .*cut/);
  const ckpt = readCheckpoint(path.join(cut, 'checkpoint.safetensors'));
  for (const x of ckpt.tensors.values()) x.dispose();
  t.diagnostic(`stopped at ${JSON.stringify(ckpt.meta.position)}`);
  assert.equal(ckpt.meta.position.fit, 1, 'in the unfrozen fit');
  assert.equal(ckpt.meta.position.epoch, 1, 'in its second epoch, the run\'s epoch 2');
  assert.ok(ckpt.meta.position.batch > 0 && ckpt.meta.position.batch < 18, 'mid-epoch');
  assert.ok(existsSync(path.join(cut, 'report.html')) && existsSync(path.join(cut, 'last.safetensors')));
  assert.equal(csvRows(path.join(cut, 'results.csv')).length, 2);

  const resumed = visiontune(['train', '--resume', cut]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /^Resuming at epoch 2, batch \d+ of 18:$/m);
  const [a, b] = [csvRows(path.join(whole, 'results.csv')), csvRows(path.join(cut, 'results.csv'))];
  assert.equal(b.length, a.length);
  for (let i = 0; i < a.length; i++) {
    for (const k of ['train_loss', 'valid_loss', 'error_rate']) assert.ok(Math.abs(Number(a[i][k]) - Number(b[i][k])) <= 1e-5, `epoch ${i} ${k}: ${a[i][k]} vs ${b[i][k]}`);
  }
  const diff = maxWeightDiff(path.join(whole, 'last.safetensors'), path.join(cut, 'last.safetensors'));
  t.diagnostic(`largest weight difference ${diff}`);
  assert.ok(diff <= 1e-5);
  assertOneLineError(visiontune(['train', '--resume', cut]), 2, /the run is finished; give --epochs \+N/);
  assertOneLineError(visiontune(['train', data, '--resume', cut]), 2, /give no data argument/);
  assertOneLineError(visiontune(['train', '--resume', cut, '--arch', 'mobilenet_v2']), 2, /--arch cannot change/);
  assertOneLineError(visiontune(['train', data, '--epochs', '+2']), 2, /give --resume RUN_DIR/);
});

test('Ctrl-C before the fit (in lr_find) exits 130 in one line and removes the run folder it made (--out, or runs/train)', async () => {
  const out = path.join(dir, 'early');
  const cwd = path.join(dir, 'early-cwd');
  mkdirSync(cwd);
  // The line names the folder as given: --out's absolute path, or runs/train under the working folder.
  for (const [args, made, named] of [[['--out', out], out, out], [[], path.join(cwd, 'runs', 'train'), path.join('runs', 'train')]] as const) {
    const { done } = spawnCli(['train', data, ...SMALL, '--bs', '4', '--epochs', '1', '--lr', 'auto', ...args], (line, child) => {
      if (/^Finding a learning rate/.test(line)) child.kill('SIGINT');
    }, cwd);
    const r = await done;
    assertOneLineError({ code: r.code ?? -1, stderr: r.stderr }, 130, /stopped by SIGINT before training began; nothing was trained: removed the run folder /);
    assert.ok(r.stderr.trimEnd().endsWith(named), r.stderr);
    assert.ok(!existsSync(made), `${made}: the folder this run made is gone`);
  }
});

test('Ctrl-C while the results are written exits 130; --resume writes them without training more', async () => {
  const out = path.join(dir, 'late');
  let fitOver = false;
  let sent = false;
  const { done } = spawnCli(['train', data, ...RUN, '--out', out], (line, child) => {
    // The table's last row (epoch 2), then the diagnosis: the first line after the fit.
    if (/^2\s+\d/.test(line)) fitOver = true;
    else if (fitOver && !sent && line.trim()) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  const r = await done;
  assertOneLineError({ code: r.code ?? -1, stderr: r.stderr }, 130, /stopped by SIGINT while writing the run's results; every epoch is trained and saved in .*late: visiontune train --resume .*late writes/);
  const rows = csvRows(path.join(out, 'results.csv'));
  assert.equal(rows.length, 3);
  const resumed = visiontune(['train', '--resume', out]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /^Resuming after the last epoch \(3 of 3\), to write the results:$/m);
  assert.deepEqual(csvRows(path.join(out, 'results.csv')), rows, 'no epoch trained again');
  assert.ok(existsSync(path.join(out, 'report.html')));
  assert.equal(JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')).epochs.length, 3);
  assertOneLineError(visiontune(['train', '--resume', out]), 2, /the run is finished/);
});

test('--frozen-bn on random weights: the run says their batch norm has no statistics to freeze, trains it in the frozen epoch, and settings.json keeps that for --resume', () => {
  const out = path.join(dir, 'frozen-bn');
  const none = visiontune(['train', data, ...RUN, '--epochs', '1', '--freeze-epochs', '0', '--frozen-bn', '--out', `${out}-unfrozen`]);
  assert.equal(none.code, 0, none.stderr);
  assert.doesNotMatch(none.stdout, /no running statistics/, 'no frozen epochs, nothing to say');
  const r = visiontune(['train', data, ...RUN, '--epochs', '1', '--frozen-bn', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split('\n').filter((l) => l === UNTRAINED_NORMS_NOTE).length, 1, r.stdout);
  const settings = JSON.parse(readFileSync(path.join(out, 'settings.json'), 'utf8'));
  assert.equal(settings.args.frozenBn, true);
  assert.equal(settings.plan.frozenBn, false);
  const more = visiontune(['train', '--resume', out, '--epochs', '+1']);
  assert.equal(more.code, 0, more.stderr);
  assert.doesNotMatch(more.stdout, /no running statistics/);
  assert.equal(csvRows(path.join(out, 'results.csv')).length, 3);
});

test('--progressive spans the first run\'s epochs: --resume … --epochs +2 trains the added ones at MAX', () => {
  const out = path.join(dir, 'progressive');
  const r = visiontune(['train', data, ...SMALL, '--bs', '8', '--freeze-epochs', '1', '--epochs', '1', '--progressive', '16:32', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Progressive resizing: training at 16, 32 px, validation at 32 px$/m);
  const more = visiontune(['train', '--resume', out, '--epochs', '+2']);
  assert.equal(more.code, 0, more.stderr);
  assert.match(more.stdout, /^Progressive resizing: training at 16, 32 px, then 32 px in the 2 epochs added, validation at 32 px$/m);
  assert.equal(csvRows(path.join(out, 'results.csv')).length, 4);
});

test('a resumed run says where it goes on: mid-epoch, at an epoch\'s validation, after the last epoch', () => {
  assert.equal(resumingLine(2, 0, 18, 3), 'Resuming at epoch 2:');
  assert.equal(resumingLine(2, 5, 18, 3), 'Resuming at epoch 2, batch 6 of 18:');
  assert.equal(resumingLine(2, 18, 18, 3), 'Resuming at epoch 2, at its validation (its 18 training batches done):');
  assert.equal(resumingLine(3, 0, 18, 3), 'Resuming after the last epoch (3 of 3), to write the results:');
});

test('issue 13: --resume RUN_DIR --epochs +2 appends 2 rows and keeps or improves the valid loss', async () => {
  const run = path.join(dir, 'whole');
  const before = csvRows(path.join(run, 'results.csv'));
  // Ctrl-C while the data loads: nothing changes, and the line gives the command again, +2 included.
  const { done } = spawnCli(['train', '--resume', run, '--epochs', '+2'], (line, child) => {
    if (/^Precision:/.test(line)) child.kill('SIGINT');
  });
  const early = await done;
  assertOneLineError({ code: early.code ?? -1, stderr: early.stderr }, 130,
    /stopped by SIGINT before training began; nothing was trained: .*whole is as it was: resume it again with visiontune train --resume .*whole --epochs \+2$/);
  assert.deepEqual(csvRows(path.join(run, 'results.csv')), before);
  const r = visiontune(['train', '--resume', run, '--epochs', '+2']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Training 2 epochs more \(a new one-cycle\), from epoch 3:$/m);
  const after = csvRows(path.join(run, 'results.csv'));
  assert.equal(after.length, before.length + 2);
  assert.deepEqual(after.slice(0, before.length), before);
  assert.deepEqual(after.slice(-2).map((x) => x.epoch), ['3', '4']);
  const best = (rows: Record<string, string>[]): number => Math.min(...rows.map((x) => Number(x.valid_loss)));
  assert.ok(Number(after.at(-1)!.valid_loss) <= best(before) * 1.05 || best(after) <= best(before), 'the valid loss is kept or improved');
  const settings = JSON.parse(readFileSync(path.join(run, 'settings.json'), 'utf8'));
  assert.deepEqual(settings.plan.extend, [2]);
});

test('issue 13: SIGKILL at 10 random moments never leaves a model, checkpoint or table that loads wrong', async (t) => {
  const rand = seededRandom(13);
  const out = path.join(dir, 'killed');
  let seen = 0;
  for (let k = 0; k < 10; k++) {
    const args = k === 0 ? ['train', data, ...RUN, '--save-every', '2', '--out', out] : ['train', data, ...RUN, '--save-every', '2', '--out', out, '--exist-ok'];
    const { child, done } = spawnCli(args);
    const delay = 1500 + rand() * 5000;
    const timer = setTimeout(() => child.kill('SIGKILL'), delay);
    const r = await done;
    clearTimeout(timer);
    for (const name of ['best.safetensors', 'last.safetensors']) {
      const file = path.join(out, name);
      if (!existsSync(file)) continue;
      const m = loadModel(file);
      assert.deepEqual(m.classes, ['disc', 'horizontal', 'vertical'], `${name} after a kill at ${delay.toFixed(0)} ms`);
      m.model.dispose();
      seen++;
    }
    const ckptFile = path.join(out, 'checkpoint.safetensors');
    if (existsSync(ckptFile)) {
      const c = readCheckpoint(ckptFile);
      for (const x of c.tensors.values()) x.dispose();
      assert.ok(c.meta.position.epoch >= 0);
    }
    if (existsSync(path.join(out, 'results.csv'))) {
      for (const row of csvRows(path.join(out, 'results.csv'))) assert.ok(Number.isFinite(Number(row.train_loss)) && row.time !== undefined, 'complete rows');
    }
    if (r.signal !== 'SIGKILL') assert.equal(r.code, 0, r.stderr);
  }
  t.diagnostic(`${seen} model files loaded after the kills`);
  assert.ok(seen > 0, 'some kills came after a model was saved');
});

test('issue 13: SIGTERM saves and exits 143', async () => {
  const out = path.join(dir, 'term');
  const { done } = spawnCli(['train', data, ...RUN, '--out', out], (line, child) => {
    if (/^0\s+\d/.test(line)) child.kill('SIGTERM');
  });
  const r = await done;
  assert.equal(r.code, 143, r.stderr);
  assert.match(r.stderr, /stopped by SIGTERM; saved .*resume with visiontune train --resume/);
  assert.ok(existsSync(path.join(out, 'checkpoint.safetensors')));
});

test('issue 13: one training process per run folder: a live holder is named, a dead one\'s lock is taken over', async () => {
  const { lockRunDir, LOCK_FILE } = await import('../../src/run/folder.js');
  const { writeFileSync } = await import('node:fs');
  const held = path.join(dir, 'held');
  mkdirSync(held);
  writeFileSync(path.join(held, LOCK_FILE), `${process.pid}\n`); // this test's process: alive
  assertOneLineError(visiontune(['train', data, ...SMALL, '--out', held, '--exist-ok']), 1, new RegExp(`another visiontune \\(process ${process.pid}\\) is training in`));
  writeFileSync(path.join(held, LOCK_FILE), '2147483646\n'); // no such process
  const release = lockRunDir(held);
  assert.equal(readFileSync(path.join(held, LOCK_FILE), 'utf8').trim(), String(process.pid));
  release();
  assert.ok(!existsSync(path.join(held, LOCK_FILE)));
  // A folder the run makes itself is claimed as soon as it exists (helper's finding: it was not until the run ended).
  const fresh = path.join(dir, 'fresh');
  let second: ReturnType<typeof visiontune> | null = null;
  const { done } = spawnCli(['train', data, ...RUN, '--out', fresh], (line, child) => {
    if (second || !line.startsWith('epoch ')) return;
    second = visiontune(['train', data, ...SMALL, '--out', fresh, '--exist-ok']);
    child.kill('SIGKILL');
  });
  await done;
  assert.ok(second, 'the second training was tried while the first ran');
  assertOneLineError(second!, 1, /another visiontune \(process \d+\) is training in .*fresh/);
});
