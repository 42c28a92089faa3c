// lr_find's suggestions against fastai's formulas (transcribed into Python with numpy as the
// reference) on a fixed loss curve; lrFind puts the weights back; early stopping and keep-best
// restore the right epoch's weights; the over-training detector names the epoch.
import test from 'node:test';
import assert from 'node:assert/strict';
import type { Learner, EpochRow, LearnerOptions } from '../../src/learner/learner.js';
import { lrFind, suggest } from '../../src/learner/lr-find.js';
import { EarlyStopping, KeepBest, overTrainingEpoch, overTrainingSummary } from '../../src/learner/callbacks.js';
import { python } from '../helpers/python.js';
import { tinyLearner } from '../helpers/tiny-learner.js';

// fastai 2.7's suggestion functions (fastai/callback/schedule.py), over points [n//10:-5].
const FASTAI_SUGGESTIONS = `
import numpy as np
lrs, losses, num_it = torch.tensor(inp['lrs'], dtype=torch.float64), torch.tensor(inp['losses'], dtype=torch.float64), inp['num_it']
lrs, losses = lrs[num_it // 10:-5], losses[num_it // 10:-5]
def valley(lrs, losses):
    n = len(losses); max_start, max_end = 0, 0; lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1): lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]: max_end = i; max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(lrs[max_start + int(sections) + int(sections / 2)])
def minimum(lrs, losses): return lrs[losses.argmin()].item() / 10
def steep(lrs, losses):
    grads = (losses[1:] - losses[:-1]) / (lrs[1:].log() - lrs[:-1].log())
    return lrs[grads.argmin()].item()
def slide(lrs, losses, lr_diff=15, thresh=.005):
    loss_grad = np.gradient(losses.numpy()); r_idx = -1; l_idx = r_idx - lr_diff; local_min_lr = lrs[l_idx]
    while (l_idx >= -len(losses)) and (abs(loss_grad[r_idx] - loss_grad[l_idx]) > thresh):
        local_min_lr = lrs[l_idx]; r_idx -= 1; l_idx -= 1
    return float(local_min_lr)
out = {'valley': valley(lrs, losses), 'minimum': minimum(lrs, losses), 'steep': steep(lrs, losses), 'slide': slide(lrs, losses)}
`;

test('lr_find suggestions match fastai’s formulas on fixed loss curves', () => {
  const numIt = 100;
  const lrs = Array.from({ length: numIt }, (_, i) => 1e-7 * (10 / 1e-7) ** (i / numIt));
  // A typical curve: flat, a long fall, a minimum near lr 1e-1, then divergence; with a wiggle.
  const typical = lrs.map((lr, i) => {
    const x = Math.log10(lr);
    return 2.3 - 1.5 / (1 + Math.exp(-(x + 3.5) * 2)) + (x > -1 ? (x + 1) ** 2 * 2 : 0) + 0.02 * Math.sin(i * 1.7);
  });
  // A short, noisy curve that diverged early.
  const short = lrs.slice(0, 40).map((_, i) => 1.5 - 0.01 * i + 0.05 * Math.cos(i * 2.3) + (i > 30 ? (i - 30) * 0.3 : 0));
  for (const [name, losses] of [['typical', typical], ['short', short]] as const) {
    const ours = suggest(lrs.slice(0, losses.length), losses, numIt);
    const ref = python<Record<string, number>>(FASTAI_SUGGESTIONS, { lrs: lrs.slice(0, losses.length), losses, num_it: numIt });
    for (const k of ['valley', 'minimum', 'steep', 'slide'] as const) {
      assert.ok(Math.abs(ours[k] - ref[k]) <= 1e-12 * ref[k], `${name} curve, ${k}: ${ours[k]} vs fastai ${ref[k]}`);
    }
  }
});

const tiny = (options: LearnerOptions = {}): Learner => tinyLearner(options, { torch: 3, train: 5, valid: 6, shuffle: 1 });

const snapshot = (learn: Learner): number[] => [...learn.model.stateDict().values()].flatMap((t) => t.toArray());

test('lrFind sweeps, stops on divergence, and leaves the weights as they were', async () => {
  const learn = tiny();
  const before = snapshot(learn);
  const result = await lrFind(learn, { numIt: 60 });
  assert.deepEqual(snapshot(learn), before);
  assert.ok(result.lrs.length > 10 && result.lrs.length <= 60, `${result.lrs.length} points`);
  assert.ok(result.lrs.every((lr, i) => i === 0 || lr > result.lrs[i - 1]));
  for (const v of Object.values(result.suggestions)) assert.ok(v > 1e-7 && v < 10, `suggestion ${v}`);
});

// Two good epochs at a small learning rate, then a rate so large that valid loss gets worse.
const goodThenBad = (pos: number): { lrs: number[]; mom: number } =>
  ({ lrs: pos < 0.4 ? [3e-3, 3e-3] : [3, 3], mom: 0.9 });

test('early stopping ends the fit after `patience` epochs without improvement', async () => {
  const stop = new EarlyStopping({ patience: 1 });
  const learn = tiny({ callbacks: [stop] });
  const rows = await learn.fit(5, goodThenBad);
  assert.ok(rows.length < 5, `ran ${rows.length} epochs`);
  assert.equal(rows.length, stop.bestEpoch + 2);
  assert.match(stop.message ?? '', new RegExp(`No improvement since epoch ${stop.bestEpoch}`));
});

test('keep-best restores the weights of the epoch with the best valid loss', async () => {
  const perEpoch: number[][] = [];
  const best = new KeepBest();
  const learn = tiny({ callbacks: [{ afterEpoch: (l: Learner) => { perEpoch.push(snapshot(l)); } }, best] });
  const rows = await learn.fit(4, goodThenBad);
  const bestRow = rows.reduce((a, b) => (b.valid_loss < a.valid_loss ? b : a));
  assert.ok(bestRow.epoch < 3, `best epoch ${bestRow.epoch}: the schedule should make the last epochs worse`);
  assert.equal(best.bestEpoch, bestRow.epoch);
  assert.deepEqual(snapshot(learn), perEpoch[bestRow.epoch]);
});

test('the over-training detector names the epoch where valid loss turned up as train loss fell', () => {
  const row = (epoch: number, train: number, valid: number): Pick<EpochRow, 'epoch' | 'train_loss' | 'valid_loss'> =>
    ({ epoch, train_loss: train, valid_loss: valid });
  const rows = [row(0, 1.2, 1.0), row(1, 0.9, 0.8), row(2, 0.7, 0.75), row(3, 0.5, 0.8), row(4, 0.3, 0.9)];
  assert.equal(overTrainingEpoch(rows), 3);
  assert.match(overTrainingSummary(rows), /Over-training from epoch 3.*best valid loss was 0\.750000 at epoch 2/);
  assert.equal(overTrainingEpoch(rows.slice(0, 3)), null);
  // A bump that recovers to a new best is not over-training.
  assert.equal(overTrainingEpoch([row(0, 1.2, 1.0), row(1, 0.9, 1.3), row(2, 0.7, 0.6)]), null);
  // Valid loss rising while train loss also rises is not over-training either.
  assert.equal(overTrainingEpoch([row(0, 1.2, 1.0), row(1, 1.3, 1.1)]), null);
  assert.match(overTrainingSummary(rows.slice(0, 3)), /^No sign of over-training: the last epoch has the best valid loss\.$/);
  // Valid loss rose after the frozen epoch while train loss fell, but never below the frozen epoch's: the sentence says so.
  const worse = [row(0, 1.97, 1.33), row(1, 3.22, 2.27), row(2, 2.71, 3.24), row(3, 2.82, 5.07)];
  assert.equal(overTrainingEpoch(worse), null);
  assert.match(overTrainingSummary(worse), /^No sign of over-training: valid loss was best at epoch 0, and train loss has not fallen below that epoch's since/);
  // The first unfrozen epoch's train loss bumps above the frozen epoch's; valid loss rises from there on.
  const unfrozen = [row(0, 1.0, 0.70), row(1, 1.09, 0.77), row(2, 0.77, 1.03), row(3, 0.70, 1.12), row(4, 0.66, 1.12)];
  assert.equal(overTrainingEpoch(unfrozen), 1);
});
