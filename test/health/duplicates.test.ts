// Acceptance (issue 16, duplicates and leaks): on generated photos with planted problems — 5 exact
// copies across train/valid, 5 resized and re-encoded copies, 3 copies under another label —
// every planted group is found, with its kind, and no false group among 200 distinct images.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, copyFileSync, rmSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { DataLoaders } from '../../src/data/dataloaders.js';
import { seededRandom } from '../../src/data/random.js';
import { fingerprint, hammingDistance } from '../../src/data/fingerprint.js';
import { findDuplicates, dedupeDrops, duplicateLines, fingerprintedItems } from '../../src/health/duplicates.js';
import { visiontune } from '../helpers/cli.js';

/** A distinct 64×64 photo: an 8×8 grid of random colours, smoothly enlarged. */
async function photo(file: string, seed: number): Promise<void> {
  const rand = seededRandom(seed);
  const grid = Buffer.from(Array.from({ length: 8 * 8 * 3 }, () => Math.floor(rand() * 256)));
  mkdirSync(path.dirname(file), { recursive: true });
  await sharp(grid, { raw: { width: 8, height: 8, channels: 3 } }).resize(64, 64, { kernel: 'cubic' }).jpeg({ quality: 90 }).toFile(file);
}

test('issue 16: planted copies, near copies, leaks and conflicting labels are found, and no false group', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'vt-dups-'));
  try {
    const classes = ['a', 'b', 'c', 'd'];
    for (const [k, c] of classes.entries()) {
      for (let i = 0; i < 40; i++) await photo(path.join(root, 'train', c, `${i}.jpg`), 1000 * k + i);
      for (let i = 40; i < 50; i++) await photo(path.join(root, 'valid', c, `${i}.jpg`), 1000 * k + i);
    }
    // 5 exact copies of training photos in valid/ (leaks).
    for (let i = 0; i < 5; i++) copyFileSync(path.join(root, 'train', 'a', `${i}.jpg`), path.join(root, 'valid', 'a', `leak${i}.jpg`));
    // 5 resized and re-encoded copies inside a class.
    for (let i = 0; i < 5; i++) {
      await sharp(path.join(root, 'train', 'b', `${i}.jpg`)).resize(52, 52).jpeg({ quality: 60 }).toFile(path.join(root, 'train', 'b', `near${i}.jpg`));
    }
    // 3 copies under another label.
    for (let i = 0; i < 3; i++) copyFileSync(path.join(root, 'train', 'c', `${i}.jpg`), path.join(root, 'train', 'd', `wrong${i}.jpg`));

    const started = performance.now();
    const dls = await DataLoaders.fromFolder(root, { itemSize: 48, size: 32, bs: 16, log: null });
    const items = fingerprintedItems(dls)!;
    const checkMs = performance.now() - started;
    const groups = findDuplicates(items);
    t.diagnostic(`${items.length} images, ${groups.length} groups; presizing with fingerprints and the check took ${checkMs.toFixed(0)} ms`);
    const kinds = (k: string) => groups.filter((g) => g.kinds.includes(k as never));
    assert.equal(groups.length, 13, JSON.stringify(groups.map((g) => g.items.map((it) => path.relative(root, it.path)))));
    assert.equal(kinds('leak').length, 5);
    assert.ok(kinds('leak').every((g) => g.exact && g.items.some((it) => it.split === 'valid')));
    assert.equal(kinds('conflicting labels').length, 3);
    assert.equal(kinds('copies').length, 5);
    assert.ok(kinds('copies').every((g) => !g.exact), 'the resized copies are near copies');
    // --dedupe: the leaked validation copies and the extra training copies go.
    const drops = dedupeDrops(groups);
    assert.equal(drops.size, 5 + 5 + 3);
    const before = dls.train.items.length + dls.valid.items.length;
    assert.equal(dls.drop(drops), 13);
    assert.equal(dls.train.items.length + dls.valid.items.length, before - 13);
    assert.match(duplicateLines(groups).join('\n'), /5 validation or test images have a copy in training \(leaks\)/);

    // Distinct photos are far apart: the closest pair among the 200 originals.
    const originals = items.filter((it) => /\/\d+\.jpg$/.test(it.path));
    let closest = 64;
    for (let i = 0; i < originals.length; i++) for (let j = i + 1; j < originals.length; j++) {
      closest = Math.min(closest, hammingDistance(originals[i].fingerprint.phash, originals[j].fingerprint.phash));
    }
    t.diagnostic(`closest pair of distinct photos: ${closest} bits apart`);
    assert.ok(closest > 6);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('issue 16: the perceptual hash is stable under resizing and tells different images apart', () => {
  const img = (f: (x: number, y: number) => number, size = 64) => {
    const data = new Uint8Array(3 * size * size);
    for (let c = 0; c < 3; c++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) data[c * size * size + y * size + x] = f(x / size, y / size);
    return { data, height: size, width: size };
  };
  const a = fingerprint(img((x, y) => 128 + 100 * Math.sin(6 * x + 3 * y)));
  const small = fingerprint(img((x, y) => 128 + 100 * Math.sin(6 * x + 3 * y), 40));
  const other = fingerprint(img((x, y) => 128 + 100 * Math.cos(9 * x - 5 * y)));
  assert.ok(hammingDistance(a.phash, small.phash) <= 4, `resized: ${hammingDistance(a.phash, small.phash)}`);
  assert.ok(hammingDistance(a.phash, other.phash) > 12, `different: ${hammingDistance(a.phash, other.phash)}`);
  assert.notEqual(a.exact, small.exact);
});

test('issue 16: visiontune check reports the data and its leaks without training', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'vt-check-'));
  try {
    for (const [k, c] of ['a', 'b'].entries()) {
      for (let i = 0; i < 6; i++) await photo(path.join(root, 'train', c, `${i}.jpg`), 100 * k + i);
      for (let i = 6; i < 8; i++) await photo(path.join(root, 'valid', c, `${i}.jpg`), 100 * k + i);
    }
    copyFileSync(path.join(root, 'train', 'a', '0.jpg'), path.join(root, 'valid', 'a', 'leak.jpg'));
    const json = path.join(root, 'check.json');
    const r = visiontune(['check', root, '--item-size', '48', '--json', json]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^a\s+6\s+3$/m);
    assert.match(r.stdout, /^warning: 1 validation or test image has a copy in training \(leaks\)/m);
    assert.match(r.stdout, /^ {2}leak: .*train\/a\/0\.jpg \[train, a\] {2}.*valid\/a\/leak\.jpg \[valid, a\]$/m);
    const results = JSON.parse(readFileSync(json, 'utf8'));
    assert.deepEqual(results.duplicates.map((g: { kinds: string[] }) => g.kinds), [['leak']]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
