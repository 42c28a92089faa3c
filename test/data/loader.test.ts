// Acceptance (issue 4): loading goes on past bad files (each listed with its reason); a class
// emptied by bad files stops with a clear error; batches and augmentation repeat with a seed;
// validation is deterministic; showBatch writes a PNG.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { DataLoaders, type DataLoadersOptions } from '../../src/data/dataloaders.js';
import { augmentBatch, drawAugParams, identityParams, NO_AUG, type Stats } from '../../src/data/augment.js';
import { showBatch } from '../../src/data/show.js';
import { DataError } from '../../src/data/errors.js';
import { seededRandom } from '../../src/data/synthetic.js';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { tensor, type Tensor } from '../../src/torch/index.js';
import { tempDir, writeBadFiles } from './images.js';

const small: DataLoadersOptions = { itemSize: 40, size: 32, bs: 8, log: null };

async function firstBatch(dl: AsyncIterable<{ x: Tensor; y: Tensor }>): Promise<{ x: number[]; y: number[] }> {
  for await (const { x, y } of dl) {
    const out = { x: x.toArray(), y: y.toArray() };
    x.dispose();
    y.dispose();
    return out;
  }
  throw new Error('no batch');
}

let shared: string | null = null;
async function dataset(): Promise<string> {
  if (!shared) {
    shared = tempDir();
    await writeSyntheticFolder(shared, { perClass: 12, numClasses: 3, minSide: 40, maxSide: 64 });
  }
  return shared;
}

test('batches: normalised float32 [B, 3, size, size] and int64 labels; dropLast for training only', async () => {
  const dls = await DataLoaders.fromFolder(await dataset(), small);
  assert.deepEqual(dls.vocab, ['disc', 'horizontal', 'vertical']);
  assert.equal(dls.train.length, Math.floor(dls.train.items.length / 8));
  assert.equal(dls.valid.length, Math.ceil(dls.valid.items.length / 8));
  let n = 0;
  for await (const { x, y } of dls.train) {
    assert.deepEqual(x.shape, [8, 3, 32, 32]);
    assert.equal(x.dtype, 'float32');
    assert.equal(y.dtype, 'int64');
    n += y.size(0);
    x.dispose();
    y.dispose();
  }
  assert.equal(n, 8 * dls.train.length);
  let m = 0;
  for await (const { x, y } of dls.valid) { m += y.size(0); x.dispose(); y.dispose(); }
  assert.equal(m, dls.valid.items.length);
});

test('each bad file is skipped with its reason while the rest loads', async () => {
  const root = tempDir();
  await writeSyntheticFolder(root, { perClass: 6, numClasses: 2, minSide: 32, maxSide: 40 });
  const bad = await writeBadFiles(path.join(root, 'horizontal'));
  const dls = await DataLoaders.fromFolder(root, small);
  const got = Object.fromEntries(dls.skipped.map((s) => [s.path, s.reason]));
  for (const [reason, file] of Object.entries(bad)) assert.equal(got[file], reason, file);
  assert.equal(dls.train.items.length + dls.valid.items.length, 12);
});

test('a class emptied by bad files stops with a DataError naming it', async () => {
  const root = tempDir();
  await writeSyntheticFolder(root, { perClass: 4, numClasses: 1, minSide: 32, maxSide: 32 });
  await writeBadFiles(path.join(root, 'broken'));
  await assert.rejects(DataLoaders.fromFolder(root, small), (e: unknown) =>
    e instanceof DataError && /class 'broken' has no usable training image/.test(e.message) && e.path === path.join(root, 'broken'));
});

test('splits, shuffles and augmentation are reproducible with a seed; validation is deterministic', async () => {
  const root = await dataset();
  const a = await DataLoaders.fromFolder(root, { ...small, seed: 5 });
  const b = await DataLoaders.fromFolder(root, { ...small, seed: 5 });
  const c = await DataLoaders.fromFolder(root, { ...small, seed: 6 });
  const [ta, tb, tc] = [await firstBatch(a.train), await firstBatch(b.train), await firstBatch(c.train)];
  assert.deepEqual(ta, tb);
  assert.notDeepEqual(ta.x, tc.x);
  const second = await firstBatch(a.train);
  assert.notDeepEqual(second.x, ta.x, 'a new epoch draws new augmentations');
  const [v1, v2] = [await firstBatch(a.valid), await firstBatch(a.valid)];
  assert.deepEqual(v1, v2);
});

test('augmentation: identity parameters only resize; a flip mirrors; lighting stays in range', () => {
  const stats: Stats = { mean: [0, 0, 0], std: [1, 1, 1] };
  const px = new Uint8Array(3 * 8 * 8);
  for (let c = 0; c < 3; c++) for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) px[c * 64 + y * 8 + x] = x * 30;
  const x = tensor(px, { shape: [1, 3, 8, 8] });
  const same = augmentBatch(x, identityParams(1), 8, stats);
  assert.ok(same.allclose(x.float().div(255), 1e-5, 1e-5));
  const flip = drawAugParams(1, () => 0, { ...NO_AUG, doFlip: true, flipP: 1 });
  const flipped = augmentBatch(x, flip, 8, stats);
  const mirrored = Float32Array.from(px, (_, i) => px[i - (i % 8) + 7 - (i % 8)] / 255);
  assert.ok(flipped.allclose(tensor(mirrored, { shape: [1, 3, 8, 8] }), 1e-5, 1e-5));
  const rand = seededRandom(1);
  const p1 = drawAugParams(4, rand);
  const p2 = drawAugParams(4, seededRandom(1));
  assert.deepEqual(p1, p2);
  const out = augmentBatch(x.expand(4, 3, 8, 8).contiguous(), p1, 6, stats);
  assert.deepEqual(out.shape, [4, 3, 6, 6]);
  assert.ok(out.min().item() >= 0 && out.max().item() <= 1);
  for (const t of [x, same, flipped, out]) t.dispose();
});

test('showBatch writes a PNG grid with labels', async () => {
  const dls = await DataLoaders.fromFolder(await dataset(), small);
  const file = path.join(tempDir(), 'batch.png');
  const n = await showBatch(dls.train, file, { maxN: 6 });
  assert.equal(n, 6);
  assert.ok(existsSync(file));
  const meta = await sharp(file).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, 3 * (32 + 4));
});

test('a set too large for memory is decoded per batch ahead of use, with the same batches', async () => {
  const root = await dataset();
  const cached = await DataLoaders.fromFolder(root, { ...small, seed: 2 });
  const streamed = await DataLoaders.fromFolder(root, { ...small, seed: 2, cacheBytes: 0 });
  assert.ok(streamed.train.items.every((it) => it.data === null));
  assert.deepEqual(await firstBatch(streamed.train), await firstBatch(cached.train));
  assert.deepEqual(await firstBatch(streamed.valid), await firstBatch(cached.valid));
});
