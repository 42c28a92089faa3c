// Test-time augmentation: augmented passes over the validation set blended with a plain one.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { manualSeed } from '../../src/torch/index.js';
import { DataLoaders } from '../../src/data/dataloaders.js';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { visionLearner } from '../../src/learner/vision.js';
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
