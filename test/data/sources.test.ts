// Acceptance (issue 4): class folders (nested files, fastai's parent rule), pre-split folders,
// seeded stratified splits, CSV sources giving the same items as folders, the summary, and
// clear errors for missing, empty and one-class folders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { csvDataset, splitByValidPct, parseCsv, type Item } from '../../src/data/sources.js';
import { folderDataset } from '../../src/data/folders.js';
import { summarize, formatSummary } from '../../src/data/summary.js';
import { DataError } from '../../src/data/errors.js';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { tempDir } from './images.js';

// Discovery only looks at names, so empty files with image extensions are enough here.
function touch(root: string, files: string[]): void {
  for (const f of files) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), '');
  }
}

const names = (items: Item[]): string[] => items.map((i) => i.path).sort();

test('class folders: label is the top folder, nested files count; hidden and non-image files are ignored', async () => {
  const root = tempDir();
  touch(root, ['cat/a.jpg', 'cat/sub/deeper/b.PNG', 'cat/.DS_Store', 'cat/notes.txt', 'dog/c.webp', 'dog/d.jpeg', '.hidden/e.jpg', 'loose.jpg']);
  const ds = await folderDataset(root, { validPct: 0 });
  assert.deepEqual(ds.vocab, ['cat', 'dog']);
  assert.deepEqual(ds.train.map((i) => `${i.label}:${path.basename(i.path)}`).sort(), ['cat:a.jpg', 'cat:b.PNG', 'dog:c.webp', 'dog:d.jpeg']);
  assert.equal(ds.ignored, 4);
  const parent = await folderDataset(root, { validPct: 0, labelFrom: 'parent' });
  assert.deepEqual(parent.vocab, ['cat', 'deeper', 'dog']);
});

test('pre-split train/valid/test folders are kept as given', async () => {
  const root = tempDir();
  touch(root, ['train/a/1.jpg', 'train/a/2.jpg', 'train/b/3.jpg', 'valid/a/4.jpg', 'valid/b/5.jpg', 'test/b/6.jpg']);
  const ds = await folderDataset(root, { validPct: 0.5 });
  assert.deepEqual([ds.train.length, ds.valid.length, ds.test.length], [3, 2, 1]);
  assert.deepEqual(ds.vocab, ['a', 'b']);
});

test('the split is stratified by class and reproducible with a seed', async () => {
  const items: Item[] = [];
  for (let i = 0; i < 50; i++) items.push({ path: `/x/a/${i}.jpg`, label: 'a' });
  for (let i = 0; i < 10; i++) items.push({ path: `/x/b/${i}.jpg`, label: 'b' });
  const s1 = splitByValidPct(items, 0.2, 7);
  const s2 = splitByValidPct([...items].reverse(), 0.2, 7);
  const s3 = splitByValidPct(items, 0.2, 8);
  assert.deepEqual(names(s1.valid), names(s2.valid), 'same seed, same split, whatever the listing order');
  assert.notDeepEqual(names(s1.valid), names(s3.valid), 'another seed, another split');
  assert.equal(s1.valid.filter((i) => i.label === 'a').length, 10);
  assert.equal(s1.valid.filter((i) => i.label === 'b').length, 2);
  assert.equal(s1.train.length, 48);
});

test('CSV and folder sources give the same items (with and without an is_valid column)', async () => {
  const root = tempDir();
  await writeSyntheticFolder(path.join(root, 'imgs'), { perClass: 6, numClasses: 3, minSide: 16, maxSide: 16 });
  const folder = await folderDataset(path.join(root, 'imgs'), { seed: 3 });
  const rel = (it: Item): string => path.relative(root, it.path);
  const rows = [...folder.train, ...folder.valid].map((it) => `${rel(it)},${it.label}`);
  writeFileSync(path.join(root, 'labels.csv'), `path,label\n${rows.join('\n')}\n`);
  const csv = await csvDataset(path.join(root, 'labels.csv'), { seed: 3 });
  assert.deepEqual(csv.vocab, folder.vocab);
  assert.deepEqual(names(csv.train), names(folder.train));
  assert.deepEqual(names(csv.valid), names(folder.valid));
  const validSet = new Set(folder.valid.map((i) => i.path));
  const flagged = [...folder.train, ...folder.valid].map((it) => `"${rel(it)}",${it.label},${validSet.has(it.path) ? 1 : 0}`);
  writeFileSync(path.join(root, 'flagged.csv'), `fname,label,is_valid\r\n${flagged.join('\r\n')}`);
  const csv2 = await csvDataset(path.join(root, 'flagged.csv'), { seed: 99 });
  assert.deepEqual(names(csv2.valid), names(folder.valid));
  assert.deepEqual(parseCsv('a,"b,c"\n"d""e",f\n'), [['a', 'b,c'], ['d"e', 'f']]);
});

test('summary per split and class, with warnings for imbalance and too-small classes', async () => {
  const root = tempDir();
  touch(root, [...Array.from({ length: 60 }, (_, i) => `big/${i}.jpg`), ...Array.from({ length: 5 }, (_, i) => `small/${i}.jpg`)]);
  const s = summarize(await folderDataset(root));
  assert.deepEqual(s.counts.train, { big: 48, small: 4 });
  assert.deepEqual(s.counts.valid, { big: 12, small: 1 });
  assert.ok(s.warnings.some((w) => /imbalanced/.test(w)), s.warnings.join('\n'));
  assert.ok(s.warnings.some((w) => /'small' has only 4 training images/.test(w)), s.warnings.join('\n'));
  assert.match(formatSummary(s), /small\s+4\s+1/);
});

test('a missing folder, an empty folder, an empty class and a single class give clear DataErrors', async () => {
  const root = tempDir();
  await assert.rejects(folderDataset(path.join(root, 'nope')), (e: unknown) =>
    e instanceof DataError && /folder not found/.test(e.message) && e.path === path.join(root, 'nope'));
  mkdirSync(path.join(root, 'empty'));
  await assert.rejects(folderDataset(path.join(root, 'empty')), (e: unknown) => e instanceof DataError && /no usable image/.test(e.message));
  touch(root, ['withEmpty/a/1.jpg', 'withEmpty/a/2.jpg']);
  mkdirSync(path.join(root, 'withEmpty', 'b'));
  await assert.rejects(folderDataset(path.join(root, 'withEmpty')), (e: unknown) =>
    e instanceof DataError && /class 'b' has no usable training image/.test(e.message) && e.path === path.join(root, 'withEmpty', 'b'));
  touch(root, ['one/a/1.jpg', 'one/a/2.jpg']);
  await assert.rejects(folderDataset(path.join(root, 'one')), (e: unknown) => e instanceof DataError && /only one class/.test(e.message));
  await assert.rejects(csvDataset(path.join(root, 'missing.csv')), DataError);
});
