// Acceptance (issue 11, cases 2, 3, 7) at the data layer: the split-folder layouts people use,
// visiontune's own output never read as data, every file passed over counted by reason, and BMP
// read like the other formats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { folderDataset, makeOutputDir, expandImageArgs, OUTPUT_MARKER } from '../../src/data/folders.js';
import { summarize, formatSummary } from '../../src/data/summary.js';
import { decodeImage, probeImage } from '../../src/data/decode.js';
import { DataError } from '../../src/data/errors.js';
import { DataLoaders } from '../../src/data/dataloaders.js';
import { writeSafetensors } from '../../src/io/index.js';
import { zeros } from '../../src/torch/index.js';
import { tempDir, solid, write, bmp } from './images.js';

// Discovery only looks at names, so empty files with image extensions are enough here.
function touch(root: string, files: string[]): string {
  for (const f of files) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), '');
  }
  return root;
}
const classes = (split: string, n = 3): string[] => ['red', 'blue'].flatMap((c) => Array.from({ length: n }, (_, i) => `${split}/${c}/${i}.jpg`));
const sizes = (ds: { train: unknown[]; valid: unknown[]; test: unknown[] }): number[] => [ds.train.length, ds.valid.length, ds.test.length];

test('issue 11 case 2: fastai train/valid, Keras train/validation, Ultralytics train/val/test and Kaggle train/test are recognised', async () => {
  const fastai = await folderDataset(touch(tempDir(), [...classes('train', 4), ...classes('valid', 2)]));
  assert.deepEqual([fastai.vocab, sizes(fastai), fastai.layout], [['blue', 'red'], [8, 4, 0], 'train/valid']);
  const keras = await folderDataset(touch(tempDir(), [...classes('train', 4), ...classes('validation', 2)]));
  assert.deepEqual([keras.vocab, sizes(keras)], [['blue', 'red'], [8, 4, 0]]);
  const ultra = await folderDataset(touch(tempDir(), [...classes('train', 4), ...classes('val', 2), ...classes('test', 1)]));
  assert.deepEqual([ultra.vocab, sizes(ultra), ultra.layout], [['blue', 'red'], [8, 4, 2], 'train/val/test']);
  // Kaggle: no validation folder, so validation is split from train; test stays held out.
  const kaggle = await folderDataset(touch(tempDir(), [...classes('train', 5), ...classes('test', 2)]), { validPct: 0.2, seed: 1 });
  assert.deepEqual([kaggle.vocab, sizes(kaggle)], [['blue', 'red'], [8, 2, 4]]);
  assert.match(kaggle.layout!, /^train\/test \(valid split from train\)$/);
  assert.ok(kaggle.test.every((it) => it.path.includes(`${path.sep}test${path.sep}`)));
  assert.ok(![...kaggle.train, ...kaggle.valid].some((it) => it.path.includes(`${path.sep}test${path.sep}`)), 'test never trains or validates');
  // Upper-case names are the same folders, and so are Kaggle's training_set/test_set.
  const upper = await folderDataset(touch(tempDir(), [...classes('Train', 2), ...classes('Valid', 1)]));
  assert.deepEqual(sizes(upper), [4, 2, 0]);
  const sets = await folderDataset(touch(tempDir(), [...classes('training_set', 5), ...classes('test_set', 2)]), { validPct: 0.2 });
  assert.deepEqual([sets.vocab, sizes(sets), sets.layout], [['blue', 'red'], [8, 2, 4], 'training_set/test_set (valid split from training_set)']);
});

test('issue 11 case 2: a layout that fits none is a DataError naming it', async () => {
  const mixed = touch(tempDir(), [...classes('train', 2), 'cats/a.jpg']);
  await assert.rejects(folderDataset(mixed), (e: unknown) => e instanceof DataError &&
    /mixes split folders \('train'\) with other folders \('cats'\)/.test(e.message) && /root\/train\/<class>/.test(e.message));
  const noTrain = touch(tempDir(), [...classes('valid', 2), ...classes('test', 2)]);
  await assert.rejects(folderDataset(noTrain), (e: unknown) => e instanceof DataError && /but no train folder/.test(e.message));
  const twice = touch(tempDir(), [...classes('train', 2), ...classes('val', 1), ...classes('valid', 1)]);
  await assert.rejects(folderDataset(twice), (e: unknown) => e instanceof DataError && /two valid folders \('val', 'valid'\)/.test(e.message));
  // A Kaggle test folder of unlabelled images is passed over, not made a class.
  const unlabelled = await folderDataset(touch(tempDir(), [...classes('train', 5), 'test/0001.jpg', 'test/0002.jpg']));
  assert.deepEqual([unlabelled.vocab, unlabelled.test.length, unlabelled.layout], [['blue', 'red'], 0, 'train (valid split from train)']);
  assert.equal(unlabelled.passedOver!.find((g) => g.reason === 'outside any class folder')?.count, 2);
  // Images straight in train/: the error says where they are and what to do.
  const flat = touch(tempDir(), ['train/1.jpg', 'train/2.jpg', 'train/3.jpg']);
  await assert.rejects(folderDataset(flat), (e: unknown) => e instanceof DataError &&
    /3 images lie outside any class folder \(directly in .*train\): move them into one folder per class/.test(e.message));
  // A class only in valid/, and one whose name differs from train's only in case.
  const onlyValid = touch(tempDir(), [...classes('train', 2), ...classes('valid', 1), 'valid/fish/1.jpg']);
  await assert.rejects(folderDataset(onlyValid), (e: unknown) => e instanceof DataError &&
    /class 'fish' has validation or test images but no training image/.test(e.message));
  const caseClash = touch(tempDir(), [...classes('train', 2), 'valid/Red/1.jpg', 'valid/blue/1.jpg']);
  await assert.rejects(folderDataset(caseClash), (e: unknown) => e instanceof DataError && /class 'Red'.*Did you mean 'red'\?/.test(e.message));
});

test('issue 11 case 3: visiontune output folders inside the data are never read: default name, marker, model file', async () => {
  const root = touch(tempDir(), ['red/0.jpg', 'red/1.jpg', 'blue/0.jpg', 'blue/1.jpg', 'visiontune-out/lr_find.png']);
  await makeOutputDir(path.join(root, 'my-run'));
  writeFileSync(path.join(root, 'my-run', 'plot.png'), '');
  assert.ok(readdirSync(path.join(root, 'my-run')).includes(OUTPUT_MARKER));
  mkdirSync(path.join(root, 'exported'));
  writeSafetensors(path.join(root, 'exported', 'model.safetensors'), new Map([['w', zeros([1])]]), { visiontune: '{}' });
  writeFileSync(path.join(root, 'exported', 'sample.jpg'), '');
  const ds = await folderDataset(root, { validPct: 0 });
  assert.deepEqual(ds.vocab, ['blue', 'red']);
  const out = ds.passedOver!.find((g) => g.reason === 'visiontune output')!;
  assert.deepEqual(out.paths.map((p) => path.basename(p)).sort(), ['exported', 'my-run', 'visiontune-out']);
  // The same inside split folders.
  const split = touch(tempDir(), [...classes('train', 2), ...classes('valid', 1), 'train/visiontune-out/x.png']);
  assert.deepEqual((await folderDataset(split)).vocab, ['blue', 'red']);
});

test('issue 11 case 7: every file passed over is counted and named by reason in the summary', async () => {
  const root = touch(tempDir(), ['red/0.jpg', 'red/1.jpg', 'red/2.heic', 'red/3.HEIC', 'blue/0.png', 'blue/1.png', 'blue/notes.txt',
    'blue/.DS_Store', 'loose.jpg']);
  const ds = await folderDataset(root, { validPct: 0 });
  const s = summarize(ds);
  const text = formatSummary(s);
  assert.match(text, /^passed over: 2 \.heic files: unsupported format \(convert them to JPEG or PNG to use them\)$/m);
  assert.match(text, /^passed over: 1 \.txt file: not an image \(.*notes\.txt\)$/m);
  assert.match(text, /^passed over: 1 hidden file: hidden/m);
  assert.match(text, /^passed over: 1 image directly in .*: outside any class folder, so without a label \(.*loose\.jpg\)$/m);
  assert.equal(ds.ignored, 5);
});

test('issue 11 case 7: BMP files are read (24-bit, bottom-up and top-down), counted and decoded to the right pixels', async () => {
  const root = tempDir();
  for (const c of ['red', 'blue']) {
    const rgb = c === 'red' ? [200, 10, 10] : [10, 10, 200];
    for (let i = 0; i < 5; i++) await write(path.join(root, c, `${i}.jpg`), solid(40, 32, rgb), 'jpeg');
    for (let i = 0; i < 5; i++) writeFileSync(path.join(root, c, `${i}.bmp`), bmp(40, 32, () => rgb, { topDown: i % 2 === 1 }));
  }
  const lines: string[] = [];
  const dls = await DataLoaders.fromFolder(root, { validPct: 0.2, itemSize: 32, size: 24, bs: 4, log: (l) => lines.push(l) });
  assert.match(lines[0], /^Found 20 images in 2 classes \(train 16, valid 4\)$/);
  assert.deepEqual(dls.skipped, []);
  // A gradient tells rows and columns apart: x in red, y in green.
  const file = path.join(root, 'gradient.bmp');
  writeFileSync(file, bmp(5, 3, (x, y) => [x * 50, y * 100, 7]));
  const r = await decodeImage(file);
  assert.ok(r.ok);
  assert.deepEqual([r.image.width, r.image.height], [5, 3]);
  assert.deepEqual(Array.from(r.image.data.subarray(0, 15)), [0, 50, 100, 150, 200, 0, 50, 100, 150, 200, 0, 50, 100, 150, 200]);
  assert.deepEqual(Array.from(r.image.data.subarray(15, 30)), [0, 0, 0, 0, 0, 100, 100, 100, 100, 100, 200, 200, 200, 200, 200]);
  const top = await decodeImage(Buffer.from(bmp(5, 3, (x, y) => [x * 50, y * 100, 7], { topDown: true })));
  assert.ok(top.ok);
  assert.deepEqual(top.image.data, r.image.data);
});

test('issue 11 case 7: a truncated or huge BMP is skipped with its reason before anything is allocated', async () => {
  const good = bmp(40, 30, () => [1, 2, 3]);
  const cut = await decodeImage(good.subarray(0, 200));
  assert.ok(!cut.ok && cut.skipped.reason === 'truncated', JSON.stringify(cut));
  const huge = Buffer.from(good.subarray(0, 54));
  huge.writeInt32LE(100_000, 18);
  huge.writeInt32LE(100_000, 22);
  const probe = await probeImage(huge);
  assert.ok(!probe.ok && probe.skipped.reason === 'too large', JSON.stringify(probe));
});

test('issue 11 case 8: predict arguments expand folders recursively and globs, and report what names nothing', async () => {
  const root = touch(tempDir(), ['a/1.jpg', 'a/deep/2.png', 'a/3.heic', 'a/.hidden.jpg', 'b/4.jpg', 'b/5.txt']);
  const { files, skipped } = await expandImageArgs([path.join(root, 'a'), path.join(root, 'b', '*.jpg'), path.join(root, 'nope', '*.jpg'),
    path.join(root, 'a', '1.jpg')]);
  assert.deepEqual(files.map((f) => path.relative(root, f)), ['a/1.jpg', 'a/deep/2.png', 'b/4.jpg']);
  assert.deepEqual(skipped.map((s) => [path.relative(root, s.path), s.reason]), [['nope/*.jpg', 'missing'], ['a/3.heic', 'unsupported format']]);
  // A glob over everything takes the images only, and nothing from visiontune's output.
  touch(root, ['b/visiontune-out/lr_find.png', 'b/visiontune-out/lr_find.csv']);
  const all = await expandImageArgs([path.join(root, 'b', '**')]);
  assert.deepEqual(all.files.map((f) => path.relative(root, f)), ['b/4.jpg']);
  assert.deepEqual(all.passedOver.map((g) => [g.reason, g.count]).sort(), [['not an image', 1], ['visiontune output', 2]]);
});
