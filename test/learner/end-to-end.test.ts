// Acceptance: a small zoo model trained from random weights on generated images of three drawn
// patterns reaches a stated error bound; export → load → predict gives the learner's probabilities.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { manualSeed } from '../../src/torch/index.js';
import { visionLearner } from '../../src/learner/vision.js';
import { loadModel } from '../../src/learner/export.js';
import { TensorLoader } from '../../src/learner/tensor-loader.js';
import { syntheticImages, SYNTHETIC_CLASSES } from '../../src/data/synthetic.js';
import { assertClose, enc } from '../helpers/python.js';

const ERROR_BOUND = 0.15;

test(`resnet18 from random weights learns three patterns to error ≤ ${ERROR_BOUND}; its export predicts the same`, async (t) => {
  manualSeed(0);
  const train = syntheticImages(240, 32, { seed: 21, numClasses: 3 });
  const valid = syntheticImages(60, 32, { seed: 22, numClasses: 3 });
  const dls = {
    train: new TensorLoader(train.images, train.labels, { bs: 24, shuffle: true, dropLast: true, seed: 0 }),
    valid: new TensorLoader(valid.images, valid.labels, { bs: 30 }),
    vocab: SYNTHETIC_CLASSES.slice(0, 3),
  };
  const lines: string[] = [];
  const learn = await visionLearner(dls, 'resnet18', { weights: null, size: 32, normalization: { mean: [0, 0, 0], std: [1, 1, 1] }, log: (l) => lines.push(l) });
  const rows = await learn.fitOneCycle(5, 3e-3);
  for (const l of lines) t.diagnostic(l);
  assert.match(lines[0], /^epoch\s+train_loss\s+valid_loss\s+error_rate\s+time$/);
  assert.ok(rows[4].error_rate <= ERROR_BOUND, `final error rate ${rows[4].error_rate}`);

  const dir = mkdtempSync(path.join(tmpdir(), 'vt-export-'));
  try {
    const file = path.join(dir, 'model.safetensors');
    learn.export(file);
    const exported = loadModel(file);
    assert.deepEqual(exported.classes, ['horizontal', 'vertical', 'disc']);
    assert.equal(exported.meta.architecture, 'resnet18');
    const { probs } = await learn.getPreds();
    assertClose(exported.probabilities(valid.images), enc(probs), 'probabilities from the exported model');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('visionLearner keeps weights and batches channels_last unless told channelsLast: false', async () => {
  const few = syntheticImages(4, 32, { seed: 1, numClasses: 3 });
  const loader = new TensorLoader(few.images, few.labels);
  const dls = { train: loader, valid: loader, vocab: SYNTHETIC_CLASSES.slice(0, 3) };
  const convWeights = (l: Awaited<ReturnType<typeof visionLearner>>): boolean[] =>
    l.model.parameters().filter((p) => p.ndim === 4 && p.size(2) > 1).map((p) => p.isContiguous('channels_last') && !p.isContiguous());
  const byDefault = await visionLearner(dls, 'resnet18', { weights: null, log: null });
  assert.ok(convWeights(byDefault).every(Boolean), 'channels_last by default');
  const nchw = await visionLearner(dls, 'resnet18', { weights: null, log: null, channelsLast: false });
  assert.ok(!convWeights(nchw).some(Boolean), 'NCHW when asked');
});
