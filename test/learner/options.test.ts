// Learner options: channels_last gives the same training as NCHW; gradient accumulation steps
// the optimizer once per `gradAccum` batches; label smoothing changes the loss as PyTorch's does.
import test from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed } from '../../src/torch/index.js';
import { SimpleCNN } from '../../src/models/simple-cnn.js';
import type { Module } from '../../src/nn/index.js';
import { Learner, type LearnerOptions } from '../../src/learner/learner.js';
import { TensorLoader } from '../../src/learner/tensor-loader.js';
import { syntheticImages } from '../../src/data/synthetic.js';

function learner(o: LearnerOptions): Learner {
  manualSeed(4);
  const train = syntheticImages(64, 24, { seed: 8 });
  const valid = syntheticImages(32, 24, { seed: 9 });
  const cnn = new SimpleCNN({ numClasses: 4, width: 8, dropout: 0 });
  const model = Object.assign(cnn, { groupModules: (): Module[][] => [[cnn.features], [cnn.classifier]] });
  return new Learner({
    train: new TensorLoader(train.images, train.labels, { bs: 16, shuffle: true, seed: 2 }),
    valid: new TensorLoader(valid.images, valid.labels, { bs: 32 }),
    vocab: ['a', 'b', 'c', 'd'],
  }, model, { log: null, ...o });
}

test('channels_last trains as NCHW does', async () => {
  const nchw = await learner({}).fitOneCycle(2, 1e-2);
  const cl = learner({ channelsLast: true });
  assert.ok(cl.model.parameters().some((p) => p.ndim === 4 && p.isContiguous('channels_last') && !p.isContiguous()));
  const rows = await cl.fitOneCycle(2, 1e-2);
  rows.forEach((r, e) => {
    for (const k of ['train_loss', 'valid_loss'] as const) {
      assert.ok(Math.abs(r[k] - nchw[e][k]) <= 1e-3 * Math.abs(nchw[e][k]), `epoch ${e} ${k}: ${r[k]} vs ${nchw[e][k]}`);
    }
  });
});

test('gradient accumulation steps the optimizer once every gradAccum batches', async () => {
  const learn = learner({ gradAccum: 2 });
  const opt = learn.createOpt();
  let steps = 0;
  const step = opt.step.bind(opt);
  opt.step = ((closure?: () => unknown) => { steps++; return step(closure); }) as typeof opt.step;
  await learn.fitOneCycle(1, 1e-2);
  assert.equal(steps, 2, '4 batches, accumulated in pairs');
});

test('label smoothing raises the loss of confident predictions', async () => {
  const plain = await learner({}).validate();
  const smooth = await learner({ labelSmoothing: 0.1 }).validate();
  assert.notEqual(plain.loss, smooth.loss);
});
