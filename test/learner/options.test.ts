// Learner options: channels_last gives the same training as NCHW; bf16 autocast comes close; gradient accumulation steps
// the optimizer once per `gradAccum` batches; label smoothing changes the loss as PyTorch's does.
import test from 'node:test';
import assert from 'node:assert/strict';
import type { Learner, LearnerOptions } from '../../src/learner/learner.js';
import { tinyLearner } from '../helpers/tiny-learner.js';

const learner = (o: LearnerOptions): Learner => tinyLearner(o, { torch: 4, train: 8, valid: 9, shuffle: 2 });

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

test('bf16 autocast trains with float32 weights and losses near float32 training', async () => {
  const fp32 = await learner({}).fitOneCycle(2, 1e-2);
  const bf = learner({ bf16: true });
  const rows = await bf.fitOneCycle(2, 1e-2);
  assert.ok(bf.model.parameters().every((p) => p.dtype === 'float32'));
  rows.forEach((r, e) => {
    for (const k of ['train_loss', 'valid_loss'] as const) {
      assert.ok(Number.isFinite(r[k]) && Math.abs(r[k] - fp32[e][k]) <= 0.05 * Math.abs(fp32[e][k]), `epoch ${e} ${k}: ${r[k]} vs ${fp32[e][k]}`);
    }
  });
  assert.ok(rows.some((r, e) => r.train_loss !== fp32[e].train_loss), 'bfloat16 rounding shows in the losses');
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
