// The float16 loss scaler, on the CPU in float32 (the arithmetic it does is the same; only CUDA
// has float16 autocast): a power-of-two scale leaves training exactly as it was, an overflow skips
// the step and halves the scale, quiet steps double it, and its state rides in checkpoints.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tensor } from '../../src/torch/index.js';
import { GradScaler, unscaleGrads } from '../../src/learner/grad-scaler.js';
import { Learner } from '../../src/learner/learner.js';
import type { Callback } from '../../src/learner/events.js';
import { tinyLearner } from '../helpers/tiny-learner.js';
import { lrFind } from '../../src/learner/lr-find.js';

const SEEDS = { torch: 3, train: 1, valid: 2, shuffle: 4 };
const weights = (learn: Learner): number[][] => learn.model.parameters().map((p) => Array.from(p.toArray() as ArrayLike<number>));

test('unscaleGrads divides in place and says whether a gradient is inf or NaN', () => {
  const a = tensor([2, 4, 8]);
  const b = tensor([16]);
  assert.equal(unscaleGrads([a, b], 4), false);
  assert.deepEqual(Array.from(a.toArray()), [0.5, 1, 2]);
  assert.deepEqual(Array.from(b.toArray()), [4]);
  assert.equal(unscaleGrads([tensor([1, Infinity])], 2), true);
  assert.equal(unscaleGrads([tensor([1]), tensor([NaN])], 2), true);
  assert.equal(unscaleGrads([], 2), false);
});

test('a power-of-two loss scale trains exactly as no scaling does', async () => {
  const plain = tinyLearner({}, SEEDS);
  await plain.fit(2, () => ({ lrs: [1e-2, 1e-2], mom: 0.9 }));
  const scaler = new GradScaler({ initScale: 2 ** 10, growthInterval: 3 });
  const scaled = tinyLearner({ callbacks: [scaler] }, SEEDS);
  await scaled.fit(2, () => ({ lrs: [1e-2, 1e-2], mom: 0.9 }));
  const [w1, w2] = [weights(plain), weights(scaled)];
  w1.forEach((w, i) => assert.deepEqual(w2[i], w, `parameter ${i}`));
  assert.equal(scaler.skippedSteps, 0);
  // 8 steps (2 epochs of 4 batches), doubling every 3 quiet ones.
  assert.equal(scaler.scale, 2 ** 12);
});

test('an overflow skips the step, halves the scale, and the gradients are cleared', async () => {
  // 2^128 is infinite in float32: the first step's gradients are inf or NaN.
  const scaler = new GradScaler({ initScale: 2 ** 128 });
  const before: number[][][] = [];
  const finite: boolean[] = [];
  const spy: Callback = {
    order: -50, // before the scaler: the gradients as the backward pass left them
    beforeStep: (learn) => {
      before.push(weights(learn));
      finite.push(learn.model.parameters().every((p) => p.grad === null || Number.isFinite(p.grad.sum().item())));
    },
  };
  const learn = tinyLearner({ callbacks: [scaler, spy] }, SEEDS);
  const start = weights(learn);
  await learn.fit(1, () => ({ lrs: [1e-2, 1e-2], mom: 0.9 }));
  assert.equal(finite.length, 4);
  assert.equal(finite[0], false, 'the first step overflows');
  const skipped = finite.filter((f) => !f).length;
  assert.equal(scaler.skippedSteps, skipped);
  assert.equal(scaler.scale, 2 ** 128 * 0.5 ** skipped);
  // Once the scale is small enough the steps go on: the skipped ones' gradients did not stay behind.
  assert.ok(finite.includes(true), `every step overflowed: ${finite}`);
  const firstGood = finite.indexOf(true);
  before[firstGood].forEach((w, i) => assert.deepEqual(w, start[i], 'skipped steps leave the weights as they were'));
  assert.notDeepEqual(weights(learn)[0], start[0], 'the steps after the overflow trained');
});

test('the scale and its growth count go into checkpoints and come back', () => {
  const a = new GradScaler({ growthInterval: 5 });
  a.scale = 512;
  const state = a.stateDict();
  const b = new GradScaler();
  b.loadStateDict(state.json);
  assert.equal(b.scale, 512);
  assert.deepEqual(b.stateDict(), state);
  assert.throws(() => b.loadStateDict({ scale: -1 }), /scale must be a positive number/);
});

test('fp16 needs CUDA, and bf16 with fp16 is refused', () => {
  assert.throws(() => tinyLearner({ fp16: true }, SEEDS), /fp16 autocast needs a CUDA device/);
  assert.throws(() => tinyLearner({ fp16: true, bf16: true, device: 'cuda' }, SEEDS), /choose one/);
});

test('a learner\'s own loss scaler (as fp16 makes it) is saved with its checkpoints and comes back on load', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-scaler-'));
  try {
    const learn = tinyLearner({}, SEEDS);
    const scaler = new GradScaler({ initScale: 2 ** 8 });
    learn.coreCallbacks.push(scaler); // where the fp16 option puts it (fp16 itself needs CUDA)
    await learn.fit(1, () => ({ lrs: [1e-2, 1e-2], mom: 0.9 }));
    scaler.scale = 2 ** 5;
    const file = path.join(dir, 'ckpt.safetensors');
    learn.save(file);
    const again = tinyLearner({}, SEEDS);
    const fresh = new GradScaler();
    again.coreCallbacks.push(fresh);
    again.load(file);
    assert.equal(fresh.scale, 2 ** 5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lrFind leaves the learner\'s loss scale as it found it (the sweep grows or halves it)', async () => {
  const learn = tinyLearner({}, SEEDS);
  const scaler = new GradScaler({ initScale: 2 ** 8, growthInterval: 2 });
  learn.coreCallbacks.push(scaler);
  const seen: number[] = [];
  learn.coreCallbacks.push({ afterStep: () => { seen.push(scaler.scale); } }); // lrFind sets the given callbacks aside
  await lrFind(learn, { numIt: 12 });
  assert.ok(seen.some((s) => s !== 2 ** 8), `the sweep changed the scale: ${seen}`);
  assert.equal(scaler.scale, 2 ** 8);
});
