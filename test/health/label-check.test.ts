// Acceptance (issue 16, likely label errors): on generated photos with 10% of one class's labels
// flipped, `visiontune check --label-check 5` finds ≥ 80% of the flips with precision ≥ 0.5. The
// body's features come from a model visiontune trained on other generated photos of the same
// kinds (tests download nothing; ImageNet weights play this part for real photos). Also: the
// folds, the linear head, and the errors of the flag and of a model file of another architecture.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, renameSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { manualSeed, randn, tensor, tidy } from '../../src/torch/index.js';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { DataLoaders } from '../../src/data/dataloaders.js';
import { visionLearner } from '../../src/learner/vision.js';
import { stratifiedFolds, outOfFoldProbs } from '../../src/health/label-check.js';
import { loadPretrained, WeightsError } from '../../src/models/weights.js';
import { visiontune, assertOneLineError } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'vt-label-check-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('stratifiedFolds: every fold holds each class in proportion, and the same seed deals the same folds', () => {
  const labels = Array.from({ length: 103 }, (_, i) => (i < 60 ? 0 : i < 90 ? 1 : 2));
  const folds = stratifiedFolds(labels, 5, 7);
  for (let f = 0; f < 5; f++) {
    const counts = [0, 1, 2].map((c) => labels.filter((y, i) => y === c && folds[i] === f).length);
    assert.ok(counts[0] === 12 && counts[1] === 6 && (counts[2] === 2 || counts[2] === 3), `fold ${f}: ${counts}`);
  }
  assert.deepEqual(stratifiedFolds(labels, 5, 7), folds);
  assert.notDeepEqual(stratifiedFolds(labels, 5, 8), folds);
  assert.throws(() => stratifiedFolds(labels, 1, 0), RangeError);
});

test('outOfFoldProbs: a linear head on separable features predicts each held-out item, rows summing to 1', () => {
  manualSeed(0);
  const labels = Array.from({ length: 90 }, (_, i) => i % 3);
  const probs = tidy(() => {
    const centres = randn([3, 16]).mul(3);
    const features = centres.indexSelect(0, tensor(labels, { dtype: 'int64' })).add(randn([90, 16]));
    return outOfFoldProbs(features, labels, 3, 5, 0);
  });
  assert.deepEqual(probs.shape, [90, 3]);
  const p = probs.toArray();
  const right = labels.filter((y, i) => p.slice(3 * i, 3 * i + 3).indexOf(Math.max(...p.slice(3 * i, 3 * i + 3))) === y).length;
  assert.ok(right >= 85, `${right} of 90 right out of fold`);
  for (let i = 0; i < 90; i++) assert.ok(Math.abs(p[3 * i] + p[3 * i + 1] + p[3 * i + 2] - 1) < 1e-5);
  probs.dispose();
  assert.throws(() => outOfFoldProbs(tensor([[0], [1]]), [0, 1], 2, 3, 0), /2 images cannot fill 3 folds/);
});

test('issue 16: check --label-check 5 finds ≥ 80% of 10% flipped labels with precision ≥ 0.5', async (t) => {
  // The body: resnet18 trained from random weights on other generated photos of the four kinds.
  manualSeed(0);
  const seen = path.join(dir, 'seen');
  await writeSyntheticFolder(seen, { perClass: 80, seed: 9 });
  const dls = await DataLoaders.fromFolder(seen, { validPct: 0.2, itemSize: 64, size: 64, bs: 16, log: null });
  const learn = await visionLearner(dls, 'resnet18', { weights: null, log: null });
  const rows = await learn.fitOneCycle(8, 3e-3);
  t.diagnostic(`the body's own training: error rate ${rows.at(-1)!.error_rate.toFixed(3)}`);
  const model = path.join(dir, 'body.safetensors');
  learn.export(model);
  learn.opt?.dispose();

  // New photos, 60 a class; 6 of the discs (10%) filed under the other classes.
  const data = path.join(dir, 'flipped');
  await writeSyntheticFolder(data, { perClass: 60, seed: 3 });
  const discs = readdirSync(path.join(data, 'disc')).sort();
  const flipped = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const to = path.join(data, ['horizontal', 'vertical', 'checker'][i % 3], `flipped_${discs[i]}`);
    renameSync(path.join(data, 'disc', discs[i]), to);
    flipped.add(path.relative(data, to));
  }
  const json = path.join(dir, 'check.json');
  const r = visiontune(['check', data, '--label-check', '5', '--arch', 'resnet18', '--weights', model, '--item-size', '64', '--size', '64',
    '--threads', '2', '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Likely label errors among the images \(confident learning/m);
  const results = JSON.parse(readFileSync(json, 'utf8'));
  const suspects: { file: string; split: string; given: string; suggested: string }[] = results.labelSuspects;
  const found = suspects.filter((s) => flipped.has(path.relative(data, s.file)));
  const recall = found.length / flipped.size;
  const precision = suspects.length ? found.length / suspects.length : 0;
  t.diagnostic(`${suspects.length} suspects; recall ${recall.toFixed(2)}, precision ${precision.toFixed(2)}; out-of-fold accuracy ${results.labelCheck.outOfFoldAccuracy.toFixed(3)}`);
  assert.ok(recall >= 0.8, `recall ${recall}`);
  assert.ok(precision >= 0.5, `precision ${precision}`);
  assert.ok(found.every((s) => s.suggested === 'disc'), 'a flipped image is sent back to its class');
  assert.ok(suspects.every((s) => ['train', 'valid'].includes(s.split)));

  // A model file of another architecture is one clear error, in the library and on the command line.
  await assert.rejects(loadPretrained('mobilenet_v2', model), (e: unknown) => e instanceof WeightsError && /a visiontune model of resnet18/.test(e.message));
  assertOneLineError(visiontune(['check', data, '--label-check', '2', '--arch', 'mobilenet_v2', '--weights', model]), 1, /give --arch resnet18/);
});

test('--label-check takes 0 (off) or 2 to 20 folds', () => {
  for (const bad of ['1', '21', '-1', 'x']) {
    assertOneLineError(visiontune(['check', dir, `--label-check=${bad}`]), 2, /--label-check must be 0 \(off\) or a number of folds from 2 to 20/);
  }
});
