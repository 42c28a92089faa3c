// Contract tests of `visiontune train`, `lr-find` and `interpret` on a generated folder of photos,
// and of each user error they name: missing folder, unknown arch, bad weights file, no images,
// one class only.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { visiontune, assertOneLineError } from '../helpers/cli.js';

const SMALL = ['--arch', 'resnet18', '--weights', 'none', '--size', '32', '--item-size', '48', '--bs', '8', '--threads', '2'];

const dir = mkdtempSync(path.join(tmpdir(), 'vt-cli-train-'));
const data = path.join(dir, 'patterns');
test.before(async () => { await writeSyntheticFolder(data, { perClass: 12, numClasses: 3, minSide: 48, maxSide: 72, seed: 3 }); });
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('train prints the table and interpretation, exports, writes history and JSON; interpret reads the export', () => {
  const out = path.join(dir, 'out');
  const json = path.join(dir, 'results.json');
  const r = visiontune(['train', data, ...SMALL, '--epochs', '1', '--label-check', '3', '--out', out, '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Likely label errors among the training images/m);
  assert.match(r.stdout, /^Found 36 images in 3 classes \(train 30, valid 6\)$/m);
  assert.match(r.stdout, /^epoch\s+train_loss\s+valid_loss\s+error_rate\s+time$/m);
  assert.match(r.stdout, /^1\s+\d+\.\d{6}\s+\d+\.\d{6}\s+\d\.\d{6}\s+\d\d:\d\d$/m);
  assert.match(r.stdout, /^Confusion matrix/m);
  assert.match(r.stdout, /^Per class, worst first$/m);
  assert.ok(existsSync(path.join(out, 'best.safetensors')) && existsSync(path.join(out, 'last.safetensors')));
  assert.equal(readFileSync(path.join(out, 'results.csv'), 'utf8').split('\n')[0], 'epoch,phase,train_loss,valid_loss,error_rate,accuracy,lr_0,lr_1,lr_2,time');
  const results = JSON.parse(readFileSync(json, 'utf8'));
  assert.deepEqual(results.classes, ['disc', 'horizontal', 'vertical']);
  assert.equal(results.epochs.length, 2);
  for (const key of ['epoch', 'train_loss', 'valid_loss', 'error_rate', 'time']) assert.ok(key in results.epochs[0], key);
  assert.equal(results.confusion.matrix.flat().reduce((a: number, b: number) => a + b, 0), 6);
  assert.ok(Array.isArray(results.perClass) && Array.isArray(results.topLosses) && Array.isArray(results.skipped));
  assert.ok(results.timings.totalSeconds > 0);
  assert.equal(results.labelCheck.folds, 3);
  assert.ok(results.labelSuspects.every((s: { split: string }) => ['train', 'valid'].includes(s.split)));

  const i = visiontune(['interpret', path.join(out, 'best.safetensors'), data, '--bs', '8', '--out', path.join(dir, 'interpreted')]);
  assert.equal(i.code, 0, i.stderr);
  assert.match(i.stdout, /^resnet18 on 6 validation images: accuracy \d+\.\d\d%$/m);
  assert.match(i.stdout, /^Most confused/m);
});

test('lr-find prints the four suggestions and writes the curve and its plot', () => {
  const out = path.join(dir, 'lr');
  const r = visiontune(['lr-find', data, ...SMALL, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  for (const name of ['valley', 'minimum', 'steep', 'slide']) assert.match(r.stdout, new RegExp(`^${name}\\s+\\d\\.\\d\\de[-+]\\d+$`, 'm'));
  assert.ok(readFileSync(path.join(out, 'lr_find.csv'), 'utf8').startsWith('lr,loss\n'));
  assert.deepEqual([...readFileSync(path.join(out, 'lr_find.png')).subarray(1, 4)], [0x50, 0x4e, 0x47]);
  // It sweeps in the precision train would use (auto by default), and says which.
  assert.match(r.stdout, /^Precision: (bf16 autocast|fp32) \(auto: this CPU has/m);
  assertOneLineError(visiontune(['lr-find', data, ...SMALL, '--precision', 'fp16', '--out', path.join(dir, 'lr16')]), 2, /--precision fp16 needs a CUDA device/);
});

test('train errors are one line: missing folder, unknown arch, bad weights file, no images, one class only, bad flag', () => {
  assertOneLineError(visiontune(['train', path.join(dir, 'nowhere'), ...SMALL]), 1, /nowhere/);
  assertOneLineError(visiontune(['train', data, '--arch', 'alexnet']), 1, /unknown architecture 'alexnet'/);
  const junk = path.join(dir, 'junk.pth');
  writeFileSync(junk, 'PK\x03\x04 this is no zip');
  assertOneLineError(visiontune(['train', data, ...SMALL.slice(0, 2), '--weights', junk, '--size', '32', '--item-size', '48']), 1, /junk\.pth/);
  const empty = path.join(dir, 'empty');
  mkdirSync(path.join(empty, 'a'), { recursive: true });
  mkdirSync(path.join(empty, 'b'), { recursive: true });
  writeFileSync(path.join(empty, 'a', 'notes.txt'), 'no images here');
  assertOneLineError(visiontune(['train', empty, ...SMALL]), 1, /image/i);
  const one = path.join(dir, 'one');
  mkdirSync(path.join(one, 'only'), { recursive: true });
  for (let k = 0; k < 3; k++) writeFileSync(path.join(one, 'only', `x${k}.jpg`), readFileSync(path.join(data, 'disc', 'disc_0.jpg')));
  assertOneLineError(visiontune(['train', one, ...SMALL]), 1, /class/i);
  assertOneLineError(visiontune(['train', data, '--epochs', 'many']), 2, /--epochs expects an integer/);
  assertOneLineError(visiontune(['train', data, '--precision', 'fp8']), 2, /--precision expects fp32 or bf16/);
  assertOneLineError(visiontune(['train', data, '--memory-format', 'nhwc']), 2, /--memory-format expects channels_last or nchw, got 'nhwc'/);
  assertOneLineError(visiontune(['train']), 2, /give one data folder/);
});
