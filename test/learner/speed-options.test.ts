// Issue 17's training options: progressive resizing follows its documented schedule (sizes and
// augmentation per epoch, validation at the full size), and a frozen phase with frozen batch
// norm leaves the body's statistics and parameters as they were, and the feature cache gives the
// uncached path's head gradients while skipping the body.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { manualSeed } from '../../src/torch/index.js';
import { BatchNorm2d } from '../../src/nn/index.js';
import { DataLoaders } from '../../src/data/dataloaders.js';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { AUG_DEFAULTS } from '../../src/data/augment.js';
import { visionLearner } from '../../src/learner/vision.js';
import { ProgressiveResize, progressiveSizes, progressiveMagnitude, PROGRESSIVE_MIN_MAGNITUDE } from '../../src/learner/progressive.js';
import type { Callback } from '../../src/learner/events.js';
import { UNTRAINED_NORMS_NOTE, type Learner } from '../../src/learner/learner.js';

const dir = mkdtempSync(path.join(tmpdir(), 'vt-speed-'));
test.before(async () => { await writeSyntheticFolder(dir, { perClass: 8, numClasses: 3, minSide: 64, maxSide: 80, seed: 4 }); });
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('progressiveSizes: linear from MIN to MAX, rounded to multiples of 16, the last epoch at MAX', () => {
  assert.deepEqual(progressiveSizes(128, 224, 6), [128, 144, 160, 192, 208, 224]);
  assert.deepEqual(progressiveSizes(128, 224, 2), [128, 224]);
  assert.deepEqual(progressiveSizes(128, 224, 1), [224]);
  assert.deepEqual(progressiveSizes(160, 160, 3), [160, 160, 160]);
  assert.deepEqual(progressiveSizes(100, 230, 3), [96, 160, 230], 'MAX itself at the end even off the multiple');
  assert.throws(() => progressiveSizes(224, 128, 3), RangeError);
  assert.throws(() => progressiveSizes(128, 224, 0), RangeError);
  assert.equal(progressiveMagnitude(128, 128, 224), PROGRESSIVE_MIN_MAGNITUDE);
  assert.equal(progressiveMagnitude(224, 128, 224), 1);
  assert.ok(Math.abs(progressiveMagnitude(176, 128, 224) - (PROGRESSIVE_MIN_MAGNITUDE + 1) / 2) < 1e-12);
});

test('ProgressiveResize: each epoch trains at its scheduled size with augmentation scaled to it; validation stays at MAX', async () => {
  manualSeed(0);
  const dls = await DataLoaders.fromFolder(dir, { size: 64, itemSize: 64, bs: 4, log: null });
  const learn = await visionLearner(dls, 'resnet18', { weights: null, log: null });
  const seen: { train: number[]; valid: number[]; rotate: number[] } = { train: [], valid: [], rotate: [] };
  const watch: Callback = {
    beforeBatch: (l: Learner) => {
      const side = l.xb!.shape[3];
      const list = l.training ? seen.train : seen.valid;
      if (list[l.history.length] === undefined) list[l.history.length] = side;
      assert.equal(side, list[l.history.length], 'one size per epoch');
      if (l.training) seen.rotate[l.history.length] = dls.train.aug!.maxRotate;
    },
  };
  learn.addCallback(new ProgressiveResize(dls.train, 32, 64, 3)).addCallback(watch);
  await learn.fitOneCycle(3, 1e-3);
  assert.deepEqual(seen.train, [32, 48, 64]);
  assert.equal((learn.callbacks.find((c) => c instanceof ProgressiveResize) as ProgressiveResize | undefined)?.sizeAt(7), 64, 'epochs past the schedule train at MAX');
  assert.deepEqual(seen.valid, [64, 64, 64]);
  const full = AUG_DEFAULTS.maxRotate;
  assert.deepEqual(seen.rotate.map((r) => +(r / full).toFixed(6)), [32, 48, 64].map((s) => +progressiveMagnitude(s, 32, 64).toFixed(6)));
});

/** Every BatchNorm2d's running statistics and affine parameters in `modules`, flattened. */
function bnState(learn: Awaited<ReturnType<typeof visionLearner>>, part: 'body' | 'head'): number[] {
  const out: number[] = [];
  for (const m of learn.model[part].modules()) {
    if (!(m instanceof BatchNorm2d)) continue;
    for (const name of ['running_mean', 'running_var', 'weight', 'bias']) out.push(...(m.getTensor(name)!.toArray() as number[]));
  }
  return out;
}

/**
 * Gives the body's batch norm the running statistics a pretrained body has (mean 0.1, variance 2
 * here): random weights have none, and a frozen phase trains batch norm without them.
 */
function withNormStats(learn: Awaited<ReturnType<typeof visionLearner>>): void {
  for (const m of learn.model.body.modules()) {
    if (!(m instanceof BatchNorm2d)) continue;
    m.getTensor('running_mean')!.fill_(0.1);
    m.getTensor('running_var')!.fill_(2);
  }
}

for (const freezeBn of [true, false]) {
  test(`fineTune({ freezeBn: ${freezeBn} }): the body's batch norm ${freezeBn ? 'stays as it was' : 'trains'} through the frozen epoch`, async () => {
    manualSeed(1);
    const dls = await DataLoaders.fromFolder(dir, { size: 32, itemSize: 64, bs: 4, log: null });
    const learn = await visionLearner(dls, 'resnet18', { weights: null, log: null });
    withNormStats(learn);
    assert.equal(learn.bodyNormStatsUntrained(), false);
    const before = bnState(learn, 'body');
    let gradBodyParams = -1;
    learn.addCallback({
      afterBackward: (l: Learner) => {
        if (gradBodyParams < 0) gradBodyParams = l.model.parameters().filter((p) => p.requiresGrad).length;
      },
    });
    // Only the frozen fit: the one-cycle over 2 epochs on the head.
    await learn.fitPlan([{ frozen: true, freezeBn, nEpoch: 2, lrMax: 1e-2, oneCycle: { pctStart: 0.99 } }]);
    const after = bnState(learn, 'body');
    const moved = Math.max(...before.map((v, i) => Math.abs(v - after[i])));
    if (freezeBn) {
      assert.equal(moved, 0, 'body batch-norm statistics and parameters unchanged');
      const headParams = learn.model.head.parameters().length;
      assert.equal(gradBodyParams, headParams, 'only the head trains');
    } else {
      assert.ok(moved > 1e-3, `fastai's default trains the body's batch norm (moved ${moved})`);
    }
    // Unfrozen afterwards, everything trains again.
    await learn.fitPlan([{ frozen: false, nEpoch: 1, lrMax: 1e-3, oneCycle: {} }]);
    const later = bnState(learn, 'body');
    assert.ok(Math.max(...after.map((v, i) => Math.abs(v - later[i]))) > 1e-4);
    assert.equal(learn.options.trainBn, true, 'the learner\'s own setting is back');
  });
}

test('the feature cache: with inputs that repeat, frozen epochs after the first skip the body, with the uncached path\'s head gradients (1e-5)', async () => {
  const square = mkdtempSync(path.join(tmpdir(), 'vt-cache-'));
  try {
    // 2 × 10 images: 16 training and 4 validation.
    await writeSyntheticFolder(square, { perClass: 10, numClasses: 2, minSide: 64, maxSide: 64, seed: 5 });
    const run = async (cacheFeatures: boolean, bs: number): Promise<{ grads: number[][]; bodyRows: number[]; validLoss: number }> => {
      manualSeed(0);
      const dls = await DataLoaders.fromFolder(square, { size: 32, itemSize: 64, bs, aug: false, log: null });
      assert.equal(dls.train.deterministic, true, 'square items, no augmentation: the training inputs repeat');
      assert.deepEqual([dls.train.items.length, dls.valid.items.length], [16, 4]);
      const learn = await visionLearner(dls, 'resnet18', { weights: null, log: null });
      withNormStats(learn);
      const body = learn.model.body;
      const bodyForward = body.forward.bind(body);
      let rows = 0;
      body.forward = (x) => { rows += x.shape[0]; return bodyForward(x); };
      const grads: number[][] = [];
      const bodyRows: number[] = [];
      learn.addCallback({
        afterBackward: (l: Learner) => {
          grads.push((l.model as typeof learn.model).head.parameters().flatMap((p) => Array.from(p.grad!.toArray() as ArrayLike<number>)));
        },
        afterEpoch: () => { bodyRows.push(rows); },
      });
      const epochs = await learn.fitPlan([{ frozen: true, freezeBn: true, cacheFeatures, nEpoch: 3, lrMax: 1e-3, oneCycle: { pctStart: 0.99 } }]);
      return { grads, bodyRows, validLoss: epochs[2].valid_loss };
    };
    // Batches of 4: every training image in every epoch.
    const cached = await run(true, 4);
    const plain = await run(false, 4);
    assert.deepEqual(plain.bodyRows, [20, 40, 60], 'uncached: the body runs for every image of every epoch');
    assert.deepEqual(cached.bodyRows, [20, 20, 20], 'cached: only in the first epoch (training and validation)');
    assert.equal(cached.grads.length, plain.grads.length);
    let worst = 0;
    cached.grads.forEach((g, s) => g.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - plain.grads[s][i])); }));
    assert.ok(worst <= 1e-5, `largest head-gradient difference ${worst}`);
    // Batches of 5: the first epoch drops one training image; later epochs run the body for it alone.
    const partial = await run(true, 5);
    assert.equal(partial.bodyRows[0], 19);
    assert.ok(partial.bodyRows[2] === 20, `later epochs only for the image the first dropped: ${partial.bodyRows}`);
    // Its features, made in a batch of one, differ from a batch of five's by the convolutions' rounding only.
    const unpartial = await run(false, 5);
    assert.ok(Math.abs(partial.validLoss - unpartial.validLoss) <= 1e-4 * Math.abs(unpartial.validLoss), `${partial.validLoss} vs ${unpartial.validLoss}`);
  } finally {
    rmSync(square, { recursive: true, force: true });
  }
});

test('the feature cache stays off when the training inputs change between epochs (augmentation, random crops)', async () => {
  const dls = await DataLoaders.fromFolder(dir, { size: 32, itemSize: 64, bs: 4, log: null });
  assert.equal(dls.train.deterministic, false, 'augmented');
  assert.equal(dls.valid.deterministic, true, 'validation always repeats');
  const lines: string[] = [];
  const learn = await visionLearner(dls, 'resnet18', { weights: null, log: (l) => lines.push(l) });
  withNormStats(learn);
  await learn.fitPlan([{ frozen: true, freezeBn: true, nEpoch: 1, lrMax: 1e-3, oneCycle: { pctStart: 0.99 } }]);
  assert.equal(lines.some((l) => /features are kept/.test(l)), false);
  assert.equal(learn.predictor, null);
});

test('freezeBn over batch norm without statistics (random weights): the frozen epochs train it, as fastai does, and say so; a resume into the fit keeps freezeBn as given', async () => {
  manualSeed(2);
  const dls = await DataLoaders.fromFolder(dir, { size: 32, itemSize: 64, bs: 4, log: null });
  const lines: string[] = [];
  const learn = await visionLearner(dls, 'resnet18', { weights: null, log: (l) => lines.push(l) });
  assert.equal(learn.bodyNormStatsUntrained(), true, 'mean 0 and variance 1 everywhere, as initialized');
  const before = bnState(learn, 'body');
  await learn.fitPlan([{ frozen: true, freezeBn: true, nEpoch: 1, lrMax: 1e-2, oneCycle: { pctStart: 0.99 } }]);
  assert.deepEqual(lines.filter((l) => l === UNTRAINED_NORMS_NOTE).length, 1, lines.join('\n'));
  const after = bnState(learn, 'body');
  assert.ok(Math.max(...before.map((v, i) => Math.abs(v - after[i]))) > 1e-3, 'the body\'s batch norm trained');
  assert.equal(learn.bodyNormStatsUntrained(), false, 'it has statistics now');

  // Resumed into the frozen fit, the plan's freezeBn stands (the CLI passes the first run's choice).
  const again = await visionLearner(dls, 'resnet18', { weights: null, log: (l) => lines.push(l) });
  const fresh = bnState(again, 'body');
  lines.length = 0;
  await again.fitPlan([{ frozen: true, freezeBn: true, nEpoch: 2, lrMax: 1e-2, oneCycle: { pctStart: 0.99 } }], { fit: 0, start: { epoch: 1, batch: 0, loaderEpoch: 1 } });
  assert.deepEqual(lines.filter((l) => l === UNTRAINED_NORMS_NOTE), []);
  const later = bnState(again, 'body');
  assert.equal(Math.max(...fresh.map((v, i) => Math.abs(v - later[i]))), 0, 'frozen as given');
});
