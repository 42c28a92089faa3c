// Acceptance (issue 11) at the command line: the inputs real users hit, each built here with
// sharp — split-folder layouts, output inside the data, too little data, no validation set, a
// diverging learning rate, BMP files, predict on many files, interpret after custom presizing,
// and a class absent from valid/.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync, readdirSync, renameSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { visiontune, assertOneLineError } from '../helpers/cli.js';
import { bmp } from '../data/images.js';

const SMALL = ['--arch', 'resnet18', '--weights', 'none', '--size', '32', '--item-size', '48', '--threads', '2'];
const QUICK = [...SMALL, '--bs', '8', '--freeze-epochs', '0', '--epochs', '1'];

const dir = mkdtempSync(path.join(tmpdir(), 'vt-cli-real-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** A folder of pattern photos: `classes` classes of `n` each (seeded). */
async function photos(root: string, n: number, seed: number, classes = 2): Promise<string> {
  await writeSyntheticFolder(root, { perClass: n, numClasses: classes, minSide: 48, maxSide: 64, seed });
  return root;
}

test('issue 11 case 2: train/test (Kaggle) trains on train, validates on a split of it, evaluates test at the end; predict answers a class', async () => {
  const root = path.join(dir, 'kaggle');
  await photos(path.join(root, 'train'), 10, 1);
  await photos(path.join(root, 'test'), 3, 2);
  const out = path.join(dir, 'kaggle-out');
  const json = path.join(dir, 'kaggle.json');
  const r = visiontune(['train', root, ...QUICK, '--out', out, '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Found 26 images in 2 classes \(train 16, valid 4, test 6\)$/m);
  assert.match(r.stdout, /^Split folders: train\/test \(valid split from train\); the test images are held out and evaluated after training$/m);
  assert.match(r.stdout, /^Test set \(6 held-out images\): loss \d+\.\d{6}, error_rate \d\.\d{6}$/m);
  const results = JSON.parse(readFileSync(json, 'utf8'));
  assert.deepEqual(results.classes, ['horizontal', 'vertical']);
  assert.equal(results.test.images, 6);
  const p = visiontune(['predict', path.join(out, 'best.safetensors'), path.join(root, 'test', 'vertical', 'vertical_0.jpg'), '--json']);
  assert.equal(p.code, 0, p.stderr);
  assert.deepEqual(JSON.parse(p.stdout).predictions[0].predictions.map((x: { label: string }) => x.label).sort(), ['horizontal', 'vertical']);
});

test('issue 11 case 3: lr-find then train run inside the data folder never take their runs/ folder for a class', async () => {
  const root = await photos(path.join(dir, 'inside'), 6, 3);
  const cwd = process.cwd();
  process.chdir(root);
  try {
    const lr = visiontune(['lr-find', '.', ...SMALL, '--bs', '4']);
    assert.equal(lr.code, 0, lr.stderr);
    assert.ok(existsSync(path.join(root, 'runs', 'lr_find', 'lr_find.png')));
    const r = visiontune(['train', '.', ...QUICK, '--json', 'run.json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Found 12 images in 2 classes/m);
    assert.match(r.stdout, /^passed over: 1 folder visiontune wrote: visiontune output, never read as data \(.*runs\)$/m);
    assert.ok(existsSync(path.join(root, 'runs', 'train', 'best.safetensors')));
    assert.deepEqual(JSON.parse(readFileSync('run.json', 'utf8')).classes, ['horizontal', 'vertical']);
    // A second run reads the same classes: the model and the run marker are passed over, and so is run.json.
    const again = visiontune(['train', '.', ...QUICK, '--out', 'second']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^Found 12 images in 2 classes/m);
    assert.ok(readdirSync(path.join(root, 'second')).includes('.visiontune'));
  } finally {
    process.chdir(cwd);
  }
});

test('issue 11 case 4: 3+3 images with --bs 8: lr-find ends, train lowers the batch size and says so, --lr auto ends', async () => {
  const root = await photos(path.join(dir, 'tiny'), 3, 4);
  const lr = visiontune(['lr-find', root, ...SMALL, '--bs', '8', '--out', path.join(dir, 'tiny-lr')]);
  assert.equal(lr.code, 0, lr.stderr);
  assert.match(lr.stdout, /^warning: batch size lowered from 8 to 4: the training split has only 4 images/m);
  assert.match(lr.stdout, /^valley\s+\d\.\d\de-\d+$/m);
  const r = visiontune(['train', root, ...QUICK, '--out', path.join(dir, 'tiny-out')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^resnet18: .*; 1 training batch of 4 at 32 px per epoch; run folder .*tiny-out$/m);
  assert.match(r.stdout, /^0\s+\d+\.\d{6}\s+\d+\.\d{6}\s+\d\.\d{6}\s+\d\d:\d\d$/m, 'a finite train loss');
  const auto = visiontune(['train', root, ...QUICK, '--lr', 'auto', '--out', path.join(dir, 'tiny-auto')]);
  assert.ok(auto.code === 0, auto.stderr);
  assert.match(auto.stdout, /^lr_find: valley /m);
});

test('issue 11 case 5: --valid-pct 0 trains on everything, skips the interpretation and still exports', async () => {
  const root = await photos(path.join(dir, 'novalid'), 6, 5);
  const out = path.join(dir, 'novalid-out');
  const json = path.join(dir, 'novalid.json');
  const r = visiontune(['train', root, ...QUICK, '--valid-pct', '0', '--out', out, '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Found 12 images in 2 classes \(train 12, valid 0\)$/m);
  assert.match(r.stdout, /^0\s+\d+\.\d{6}\s+#na#\s+#na#\s+\d\d:\d\d$/m);
  assert.match(r.stdout, /^No validation images: over-training cannot be judged/m);
  assert.match(r.stdout, /^No validation images, so no interpretation/m);
  assert.ok(existsSync(path.join(out, 'best.safetensors')));
  assert.equal(JSON.parse(readFileSync(json, 'utf8')).model, path.join(out, 'best.safetensors'));
  assertOneLineError(visiontune(['interpret', path.join(out, 'best.safetensors'), root, '--valid-pct', '0']), 1, /no validation images to interpret/);
  assertOneLineError(visiontune(['train', root, ...QUICK, '--valid-pct', '0', '--early-stop', '1']), 2, /--early-stop watches the validation loss/);
});

test('issue 11 case 6: --lr 1e4 is diagnosed as divergence: no all-clear, no model, one error line, exit 1', async () => {
  const root = await photos(path.join(dir, 'diverge'), 8, 6);
  const out = path.join(dir, 'diverge-out');
  const json = path.join(dir, 'diverge.json');
  const r = visiontune(['train', root, ...SMALL, '--bs', '4', '--epochs', '3', '--lr', '1e4', '--out', out, '--json', json]);
  assertOneLineError(r, 1, /training diverged .*no model written: lower the learning rate \(--lr 1\.0e\+4 is too high/);
  assert.match(r.stdout, /^Training diverged at epoch 0, batch \d+: .*The learning rate is too high/m);
  assert.doesNotMatch(r.stdout, /No sign of over-training|advice:/);
  assert.ok(!existsSync(path.join(out, 'best.safetensors')) && !existsSync(path.join(out, 'last.safetensors')), 'no model from diverged weights');
  const results = JSON.parse(readFileSync(json, 'utf8'));
  assert.equal(results.model, null);
  assert.equal(results.divergence.epoch, 0);
  assert.equal(results.epochs.length, 1, 'training stopped in the epoch it diverged');
});

test('issue 11 case 7: BMP photos train with the JPEGs; other formats are counted by reason', async () => {
  const root = await photos(path.join(dir, 'bmp'), 5, 7);
  for (const [c, rgb] of [['horizontal', [250, 250, 250]], ['vertical', [0, 0, 0]]] as const) {
    for (let i = 0; i < 5; i++) writeFileSync(path.join(root, c, `scan_${i}.bmp`), bmp(56, 48, (x, y) => (c === 'horizontal' ? (y >> 3) & 1 : (x >> 3) & 1) ? [...rgb] : [128, 128, 128]));
  }
  writeFileSync(path.join(root, 'vertical', 'phone.heic'), 'not decoded');
  const r = visiontune(['train', root, ...QUICK, '--out', path.join(dir, 'bmp-out')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Found 20 images in 2 classes \(train 16, valid 4\)$/m);
  assert.match(r.stdout, /^passed over: 1 \.heic file: unsupported format \(convert it to JPEG or PNG to use it\) \(.*phone\.heic\)$/m);
  assert.doesNotMatch(r.stdout, /^skipped /m);
});

test('issue 11 case 8: predict on files, a folder and a glob prints every good file and a skip line per bad one', async () => {
  const root = await photos(path.join(dir, 'many'), 8, 8);
  const out = path.join(dir, 'many-out');
  assert.equal(visiontune(['train', root, ...QUICK, '--out', out]).code, 0);
  const model = path.join(out, 'best.safetensors');
  const good = readFileSync(path.join(root, 'vertical', 'vertical_1.jpg'));
  const loose = path.join(dir, 'loose');
  mkdirSync(path.join(loose, 'deeper'), { recursive: true });
  writeFileSync(path.join(loose, 'cut.jpg'), good.subarray(0, good.length >> 1));
  writeFileSync(path.join(loose, 'deeper', 'ok.jpg'), good);
  writeFileSync(path.join(loose, 'scan.bmp'), bmp(50, 50, (x) => ((x >> 3) & 1 ? [0, 0, 0] : [128, 128, 128])));
  const files = [path.join(root, 'horizontal', 'horizontal_0.jpg'), path.join(loose, 'cut.jpg'), path.join(root, 'vertical', '*_[23].jpg'), path.join(loose, 'deeper')];
  const r = visiontune(['predict', model, ...files, '--top-k', '1']);
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['horizontal_0.jpg', 'vertical_2.jpg', 'vertical_3.jpg', 'deeper/ok.jpg']) assert.match(r.stdout, new RegExp(`^\\S*${f}$`, 'm'), f);
  assert.match(r.stdout, /^skipped .*cut\.jpg: truncated \(the JPEG data ends early.*\); the file is cut short: copy or download it again$/m);
  const j = visiontune(['predict', out, ...files, path.join(loose, 'scan.bmp'), '--json']); // the output folder names its model
  assert.equal(j.code, 0, j.stderr);
  const parsed = JSON.parse(j.stdout) as { predictions: { file: string }[]; skipped: { path: string; reason: string }[] };
  assert.equal(parsed.predictions.length, 5);
  assert.deepEqual(parsed.skipped.map((s) => [path.basename(s.path), s.reason]), [['cut.jpg', 'truncated']]);
  // Nothing usable: the skip lines, then one error line and exit 1.
  const bad = visiontune(['predict', model, path.join(loose, 'cut.jpg'), path.join(dir, 'nowhere', '*.jpg')]);
  assertOneLineError(bad, 1, /nothing to predict: 2 inputs skipped \(missing, truncated\): .*Check the path; the file is cut short/);
  assert.match(bad.stdout, /^skipped .*nowhere\/\*\.jpg: missing \(the pattern matches no file\)/m);
});

test('issue 11 case 9: interpret makes images as the model file says (trained with --item-size 64), agreeing with training', async () => {
  const root = await photos(path.join(dir, 'presize'), 10, 9, 3);
  const out = path.join(dir, 'presize-out');
  const json = path.join(dir, 'presize.json');
  // A seed other than the default: the file records the split, so interpret holds out the same images.
  const r = visiontune(['train', root, ...SMALL, '--item-size', '64', '--bs', '8', '--freeze-epochs', '0', '--epochs', '2', '--seed', '3',
    '--out', out, '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  const trained = JSON.parse(readFileSync(json, 'utf8'));
  const i = visiontune(['interpret', path.join(out, 'best.safetensors'), root, '--json', path.join(dir, 'presize-i.json'), '--out', path.join(dir, 'presize-i')]);
  assert.equal(i.code, 0, i.stderr);
  assert.doesNotMatch(i.stdout, /^warning: the model was trained with/m);
  const other = visiontune(['interpret', out, root, '--seed', '4', '--out', path.join(dir, 'presize-other')]); // the run folder names its model
  assert.match(other.stdout, /^warning: the model was trained with --valid-pct 0\.2 --seed 3; this split .* may hold out images it trained on/m);
  const interpreted = JSON.parse(readFileSync(path.join(dir, 'presize-i.json'), 'utf8'));
  assert.equal(interpreted.accuracy, trained.final.accuracy, `interpret ${interpreted.accuracy} vs training ${trained.final.accuracy}`);
  assert.deepEqual(interpreted.confusion.matrix, trained.confusion.matrix);
  assert.ok(Math.abs(1 - trained.final.accuracy - trained.final.error_rate) < 1e-6);
});

test('issue 11 case 10: a class absent from valid/ is shown as not measured and kept out of the mean F1 and the advice', async () => {
  const root = path.join(dir, 'absent');
  await photos(path.join(root, 'train'), 8, 10, 3);
  await photos(path.join(root, 'valid'), 3, 11, 3);
  const gone = readdirSync(path.join(root, 'valid')).sort()[2];
  renameSync(path.join(root, 'valid', gone), path.join(dir, 'absent-moved'));
  const json = path.join(dir, 'absent.json');
  const r = visiontune(['train', root, ...QUICK, '--out', path.join(dir, 'absent-out'), '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^  ${gone}\\s+(—|0\\.000)\\s+—\\s+—\\s+0\\s+8$`, 'm'));
  assert.match(r.stdout, /^ {6}not measured: no validation image of this class$/m);
  assert.match(r.stdout, /^ {2}mean F1 \d\.\d{3} over the 2 classes measured$/m);
  const results = JSON.parse(readFileSync(json, 'utf8'));
  const row = results.perClass.find((c: { label: string }) => c.label === gone);
  assert.deepEqual([row.f1, row.recall, row.support, row.advice], [null, null, 0, []]);
  const measured = results.perClass.filter((c: { f1: number | null }) => c.f1 !== null);
  assert.ok(Math.abs(results.meanF1 - measured.reduce((s: number, c: { f1: number }) => s + c.f1, 0) / measured.length) < 1e-12);
});

test('issue 11: bad output targets fail before any work, in one line: --out a class folder or the data, --json a folder or nowhere', async () => {
  const root = await photos(path.join(dir, 'targets'), 4, 12);
  const started = Date.now();
  assertOneLineError(visiontune(['train', root, ...QUICK, '--out', path.join(root, 'vertical')]), 1, /the output folder holds images/);
  assertOneLineError(visiontune(['lr-find', root, ...SMALL, '--out', root]), 1, /the output folder is the data folder/);
  assertOneLineError(visiontune(['train', root, ...QUICK, '--json', path.join(dir, 'no', 'such', 'x.json')]), 2, /--json .*: the folder .* does not exist/);
  assertOneLineError(visiontune(['train', root, ...QUICK, '--json', dir]), 2, /--json .* is a folder; give a file name/);
  assert.ok(Date.now() - started < 20_000, 'no training ran');
  assert.ok(!readdirSync(path.join(root, 'vertical')).includes('.visiontune'), 'the class folder was left as it was');
  const help = visiontune(['train', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: visiontune <command>/m);
});

test('issue 11: with --early-stop, the final numbers are those of the epoch whose weights were kept', async () => {
  const root = await photos(path.join(dir, 'keep'), 8, 13);
  const json = path.join(dir, 'keep.json');
  const r = visiontune(['train', root, ...SMALL, '--bs', '4', '--freeze-epochs', '0', '--epochs', '4', '--early-stop', '1', '--lr', '5e-2',
    '--out', path.join(dir, 'keep-out'), '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  const results = JSON.parse(readFileSync(json, 'utf8'));
  const best = results.epochs.reduce((a: { valid_loss: number }, b: { valid_loss: number }) => (b.valid_loss < a.valid_loss ? b : a));
  assert.deepEqual([results.final.epoch, results.final.valid_loss], [best.epoch, best.valid_loss]);
  if (best.epoch !== results.epochs.at(-1).epoch) assert.match(r.stdout, new RegExp(`^Kept the weights of epoch ${best.epoch}, the best valid loss`, 'm'));
});
