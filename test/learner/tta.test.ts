// Test-time augmentation: augmented passes over the validation set blended with a plain one;
// predict() on one image (a path or its bytes), plain or with test-time augmentation, in the
// learner and in its export.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { manualSeed, tensor } from '../../src/torch/index.js';
import { DataLoaders } from '../../src/data/dataloaders.js';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { visionLearner } from '../../src/learner/vision.js';
import { loadLearner } from '../../src/learner/export.js';
import { loadImage } from '../../src/learner/predict.js';
import { DataError } from '../../src/data/errors.js';
import { assertClose, enc } from '../helpers/python.js';

test('tta blends augmented and plain predictions as fastai does (beta 1 is the plain pass)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-tta-'));
  try {
    await writeSyntheticFolder(dir, { perClass: 8, numClasses: 3, minSide: 48, maxSide: 64, seed: 5 });
    manualSeed(0);
    const dls = await DataLoaders.fromFolder(dir, { size: 32, itemSize: 48, bs: 8, log: null });
    const learn = await visionLearner(dls, 'resnet18', { weights: null, log: null });
    const plain = await learn.getPreds();
    const same = await learn.tta(2, 1);
    assertClose(same.probs, enc(plain.probs), 'tta with beta 1');
    const blended = await learn.tta(2, 0.25);
    assert.deepEqual(blended.targets.toArray(), plain.targets.toArray());
    assertClose(blended.probs.sum(1), Array(plain.targets.size(0)).fill(1), 'rows of probabilities sum to 1');
    assert.ok(!blended.probs.allclose(plain.probs, 1e-4, 1e-6), 'augmented passes change the probabilities');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('predict takes a path or a Buffer, in the learner and in its export; tta blends and repeats with its seed', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-predict-'));
  try {
    await writeSyntheticFolder(dir, { perClass: 6, numClasses: 3, minSide: 48, maxSide: 64, seed: 6 });
    manualSeed(0);
    const dls = await DataLoaders.fromFolder(dir, { size: 32, itemSize: 48, bs: 6, log: null });
    const learn = await visionLearner(dls, 'resnet18', { weights: null, size: 32, log: null });
    await learn.fitOneCycle(1, 1e-3);
    const file = dls.valid.items[2].path;

    const fromPath = await learn.predict(file);
    assert.equal(fromPath.label, dls.vocab[fromPath.index]);
    assert.equal(fromPath.probs[fromPath.index], Math.max(...fromPath.probs));
    const { probs } = await learn.getPreds();
    assertClose(fromPath.probs, probs.toArray().slice(2 * 3, 3 * 3), 'predict() makes the input as validation did');

    const exportFile = path.join(dir, 'model.safetensors');
    learn.export(exportFile);
    const exported = loadLearner(exportFile);
    assert.deepEqual([exported.meta.itemSize, exported.meta.resizeMethod], [48, 'crop']);
    const fromBuffer = await exported.predict(readFileSync(file));
    assert.equal(fromBuffer.label, fromPath.label);
    assertClose(fromBuffer.probs, fromPath.probs, 'export on the Buffer vs learner on the path');
    const image = await loadImage(file, exported.preprocess);
    const { mean, std } = exported.meta.normalization;
    const pixels = image.mul(tensor(std, { shape: [3, 1, 1] })).add(tensor(mean, { shape: [3, 1, 1] })).unsqueeze(0);
    assertClose(exported.probabilities(pixels), fromPath.probs, 'probabilities() on the same pixels', { rtol: 1e-4 });

    assertClose((await exported.predict(file, { tta: 2, beta: 1 })).probs, fromPath.probs, 'tta with beta 1');
    const tta = await exported.predict(file, { tta: 3 });
    assertClose((await exported.predict(file, { tta: 3 })).probs, tta.probs, 'tta repeats with the same seed');
    assert.ok(Math.abs(tta.probs.reduce((a, b) => a + b) - 1) < 1e-5);
    assert.ok(tta.probs.some((p, i) => Math.abs(p - fromPath.probs[i]) > 1e-5), 'augmented passes change the probabilities');
    assert.ok((await exported.predict(file, { tta: 3, seed: 1 })).probs.some((p, i) => Math.abs(p - tta.probs[i]) > 1e-6), 'another seed, other draws');

    await assert.rejects(exported.predict(Buffer.from('not a picture')), (e: unknown) =>
      e instanceof DataError && /not an image/.test(e.message) && e.path === '<buffer>');
    await assert.rejects(exported.predict(path.join(dir, 'missing.jpg')), (e: unknown) => e instanceof DataError && /missing/.test(e.message));
    await assert.rejects(exported.predict(file, { tta: -1 }), RangeError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
