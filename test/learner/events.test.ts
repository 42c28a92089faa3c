// Acceptance (issue 12, the loop as events): a custom callback written against the public API
// alone, the order of events, cancelling a batch, an epoch and a fit, the splitter option, and
// lr_find as a callback on an ordinary fit — the same sweep as the loop it replaces, now with
// gradient accumulation.
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  Learner, CancelEpochException, CancelBatchException, CancelFitException, lrFind, type Callback, type LearnerOptions,
} from '../../src/index.js';
import { tidy, noGrad } from '../../src/torch/index.js';
import { tinyLearner } from '../helpers/tiny-learner.js';

const SEEDS = { torch: 3, train: 5, valid: 6, shuffle: 1 };
const tiny = (o: LearnerOptions = {}): Learner => tinyLearner(o, SEEDS);

// The 20-line callback of the acceptance: the gradient norm after each backward pass; a NaN one cancels the epoch.
class GradNorm implements Callback {
  readonly norms: number[] = [];
  cancelled = 0;
  afterBackward(learn: Learner): void {
    const norm = noGrad(() => tidy(() => {
      let sq = 0;
      for (const p of learn.model.parameters()) if (p.grad) sq += p.grad.pow(2).sum().item();
      return Math.sqrt(sq);
    }));
    this.norms.push(norm);
    if (Number.isNaN(norm)) throw new CancelEpochException('gradient norm is NaN');
  }
  afterCancelEpoch(): void { this.cancelled++; }
}

test('issue 12: a custom callback reads the gradient norm after backward and cancels the epoch when it is NaN', async () => {
  const norms = new GradNorm();
  const learn = tiny({ callbacks: [norms] });
  const rows = await learn.fitOneCycle(2, 1e-2);
  assert.equal(norms.norms.length, 2 * learn.dls.train.length);
  assert.ok(norms.norms.every((n) => Number.isFinite(n) && n > 0), norms.norms.join(' '));
  assert.equal(rows.length, 2);

  const broken = new GradNorm();
  const nan = tiny({ callbacks: [broken] });
  for (const p of nan.model.parameters()) p.detach().fill_(Number.NaN);
  const cancelled = await nan.fitOneCycle(1, 1e-2);
  assert.deepEqual([broken.norms.length, broken.cancelled], [1, 1], 'the first NaN norm cancels the epoch at once');
  assert.equal(cancelled.length, 1, 'afterEpoch still ran and the recorder kept the row');
});

test('issue 12: events run in fastai\'s order, and cancelling a batch skips its step but not afterBatch', async () => {
  const seen: string[] = [];
  const names = ['beforeFit', 'beforeEpoch', 'beforeTrain', 'beforeBatch', 'afterPred', 'afterLoss', 'beforeBackward', 'afterBackward',
    'beforeStep', 'afterStep', 'afterBatch', 'afterTrain', 'beforeValidate', 'afterValidate', 'afterEpoch', 'afterFit', 'afterCancelBatch'] as const;
  const spy: Callback = Object.fromEntries(names.map((n) => [n, () => { seen.push(n); }]));
  const skipEveryStep: Callback = { beforeStep: () => { throw new CancelBatchException(); } };
  const learn = tiny({ callbacks: [spy, skipEveryStep] });
  const before = learn.model.parameters().map((p) => p.toArray());
  await learn.fitOneCycle(1, 1e-2);
  const firstBatch = seen.slice(seen.indexOf('beforeBatch'), seen.indexOf('afterBatch') + 1);
  assert.deepEqual(firstBatch, ['beforeBatch', 'afterPred', 'afterLoss', 'beforeBackward', 'afterBackward', 'beforeStep', 'afterCancelBatch', 'afterBatch']);
  assert.deepEqual(seen.slice(0, 3), ['beforeFit', 'beforeEpoch', 'beforeTrain']);
  assert.deepEqual(seen.slice(-4), ['afterBatch', 'afterValidate', 'afterEpoch', 'afterFit']);
  const validBatch = seen.slice(seen.indexOf('beforeValidate') + 1, seen.indexOf('afterValidate'));
  assert.deepEqual(validBatch.slice(0, 4), ['beforeBatch', 'afterPred', 'afterLoss', 'afterBatch'], 'no backward or step in validation');
  assert.deepEqual(learn.model.parameters().map((p) => p.toArray()), before, 'no step was taken');
});

test('issue 12: CancelFit ends the fit with afterFit; the splitter option gives the layer groups', async () => {
  let fits = 0;
  const stopAfterOne: Callback = { afterEpoch: () => { throw new CancelFitException(); }, afterFit: () => { fits++; } };
  const learn = tiny({ callbacks: [stopAfterOne] });
  const rows = await learn.fitOneCycle(5, 1e-2);
  assert.deepEqual([rows.length, fits], [1, 1]);
  const base = tiny();
  const whole = new Learner(base.dls, base.model, { log: null, splitter: (m) => [[m]] });
  assert.equal(whole.nGroups, 1);
  assert.equal(base.nGroups, 2, 'the helper gives features and classifier as groups by a splitter');
});

// The sweep as the learner ran it before lr_find became a callback: its own loop over the training batches.
async function oldSweep(learn: Learner, numIt: number): Promise<{ lrs: number[]; losses: number[] }> {
  const opt = learn.opt ?? learn.createOpt();
  const [lrs, losses] = [[] as number[], [] as number[]];
  let [smooth, best, i] = [0, Infinity, 0];
  learn.model.train();
  sweep: while (i < numIt) {
    for await (const { x, y } of learn.dls.train) {
      const lr = 1e-7 * (10 / 1e-7) ** (i / numIt);
      for (const g of opt.paramGroups) g.lr = lr;
      const loss = tidy(() => {
        const l = learn.lossFunc(learn.forward(x), y);
        opt.zeroGrad(true);
        l.backward();
        opt.step();
        return l.item();
      });
      x.dispose();
      y.dispose();
      smooth = 0.98 * smooth + 0.02 * loss;
      const value = smooth / (1 - 0.98 ** ++i);
      lrs.push(lr);
      losses.push(value);
      best = Math.min(best, value);
      if (i >= numIt || value > 4 * best || Number.isNaN(value)) break sweep;
    }
  }
  return { lrs, losses };
}

test('issue 12: lrFind on the event loop records the same sweep as the old loop, and honours gradient accumulation', async () => {
  const ours = await lrFind(tiny(), { numIt: 40 });
  const old = await oldSweep(tiny(), 40);
  assert.deepEqual(ours.lrs, old.lrs);
  assert.deepEqual(ours.losses, old.losses);

  const accumulating = tiny({ gradAccum: 2 });
  const opt = accumulating.createOpt();
  let steps = 0;
  const step = opt.step.bind(opt);
  opt.step = ((closure?: () => unknown) => { steps++; return step(closure); }) as typeof opt.step;
  const r = await lrFind(accumulating, { numIt: 8, stopDiv: false });
  assert.deepEqual([r.lrs.length, steps], [8, 4], 'eight batches, one step per pair');
  assert.deepEqual(accumulating.history, [], 'lr_find leaves no row in the table');
});

test('the table has one header: a run resumed in its first epoch prints it (logTable), and the epoch\'s row follows without another', async () => {
  const lines: string[] = [];
  const learn = tiny({ log: (line) => lines.push(line) });
  learn.recorder.logTable(learn);
  assert.deepEqual(lines, ['epoch     train_loss  valid_loss  error_rate  time']);
  await learn.fitOneCycle(1, 1e-3);
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[1], /^0\s+\d+\.\d{6}\s+\d+\.\d{6}\s+\d\.\d{6}\s+\d\d:\d\d$/);
  const fresh: string[] = [];
  await tiny({ log: (line) => fresh.push(line) }).fitOneCycle(1, 1e-3);
  assert.deepEqual(fresh.map((l) => l.split(/\s+/)[0]), ['epoch', '0']);
});
