// Acceptance (issue 11, cases 4–6) at the learner: every loop over batches ends on an empty
// loader, an empty validation set is a supported mode, and a diverging fit stops at once and is
// diagnosed as divergence, never as healthy.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Learner } from '../../src/learner/learner.js';
import { TensorLoader } from '../../src/learner/tensor-loader.js';
import { lrFind } from '../../src/learner/lr-find.js';
import { EarlyStopping } from '../../src/learner/callbacks.js';
import { diagnose, TrainingError, DIVERGENCE_FACTOR } from '../../src/learner/diagnosis.js';
import { syntheticImages } from '../../src/data/synthetic.js';
import { tinyLearner } from '../helpers/tiny-learner.js';
import { zeros } from '../../src/torch/index.js';

const SEEDS = { torch: 1, train: 2, valid: 3, shuffle: 4 };

/** The tiny learner with its training or validation loader replaced. */
function withLoaders(o: { train?: TensorLoader; valid?: TensorLoader }, lines?: string[]): Learner {
  const base = tinyLearner({}, SEEDS);
  return new Learner({ train: o.train ?? base.dls.train, valid: o.valid ?? base.dls.valid, vocab: base.dls.vocab }, base.model,
    { log: lines ? (l) => lines.push(l) : null });
}

// 3 images and a batch of 8 with the last partial batch dropped: no batch at all.
const tooFew = (): TensorLoader => {
  const d = syntheticImages(3, 24, { seed: 9 });
  return new TensorLoader(d.images, d.labels, { bs: 8, dropLast: true });
};
const emptyValid = (): TensorLoader => new TensorLoader(zeros([0, 3, 24, 24]), zeros([0], { dtype: 'int64' }), { bs: 8 });

test('issue 11 case 4: fit, fineTune and lrFind on a training loader with no batch throw a TrainingError at once', async () => {
  const learn = withLoaders({ train: tooFew() });
  assert.equal(learn.dls.train.length, 0);
  const noBatch = (e: unknown): boolean => e instanceof TrainingError && /no batch.*lower the batch size \(--bs\)/.test((e as Error).message);
  await assert.rejects(learn.fitOneCycle(1, 1e-3), noBatch);
  await assert.rejects(learn.fineTune(1), noBatch);
  await assert.rejects(lrFind(learn), noBatch, 'lr_find would loop forever');
  assert.deepEqual(learn.history, [], 'nothing was trained');
});

test('issue 11 case 4: lrFind ends with an error when a loader promises batches and yields none', async () => {
  const liar = { length: 3, async *[Symbol.asyncIterator]() { /* yields nothing */ } };
  const base = tinyLearner({}, SEEDS);
  const learn = new Learner({ train: liar, valid: base.dls.valid, vocab: base.dls.vocab }, base.model, { log: null });
  await assert.rejects(lrFind(learn), TrainingError);
});

test('issue 11 case 5: with no validation set, fit trains, validation is NaN and shown as #na#, getPreds is empty', async () => {
  const lines: string[] = [];
  const learn = withLoaders({ valid: emptyValid() }, lines);
  const rows = await learn.fineTune(1, { freezeEpochs: 1 });
  assert.equal(rows.length, 2);
  for (const r of rows) {
    assert.ok(Number.isFinite(r.train_loss) && r.train_loss > 0, `train loss ${r.train_loss}`);
    assert.ok(Number.isNaN(r.valid_loss) && Number.isNaN(r.error_rate));
  }
  assert.match(lines[1], /^0\s+\d+\.\d{6}\s+#na#\s+#na#\s+\d\d:\d\d$/);
  assert.equal(learn.divergence, null, 'an absent validation set is not divergence');
  const preds = await learn.getPreds();
  assert.deepEqual([preds.probs.shape, preds.targets.shape, preds.losses.shape], [[0, 4], [0], [0]]);
  assert.match(diagnose(rows, null, { hasValidation: false }), /^No validation images: over-training cannot be judged/);
});

test('issue 11 case 6: a diverging fit stops at the first non-finite or exploded loss and is diagnosed as divergence', async () => {
  const learn = tinyLearner({ callbacks: [new EarlyStopping({ patience: 5 })] }, SEEDS);
  const rows = await learn.fitOneCycle(4, 1e4);
  const d = learn.divergence;
  assert.ok(d !== null, 'divergence recorded');
  assert.equal(rows.length, 1, 'training stopped in the first epoch');
  assert.equal(d.epoch, 0);
  assert.ok(d.batch < learn.dls.train.length, `stopped at batch ${d.batch}`);
  assert.ok(d.reason === 'non-finite loss' || d.reason === 'loss far above its start', d.reason);
  assert.ok(!Number.isFinite(d.loss) || d.loss > DIVERGENCE_FACTOR * Math.log(4), `loss ${d.loss}`);
  const text = diagnose(rows, d, { baseLr: 1e4 });
  assert.match(text, /^Training diverged at epoch 0, batch \d+: .*The learning rate is too high \(it was 1\.0e\+4\): lower it/);
  assert.doesNotMatch(text, /No sign of over-training/);
});

test('issue 11 case 6: a healthy fit and the unfrozen phase after a low frozen loss are not called divergent', async () => {
  const learn = tinyLearner({}, SEEDS);
  const rows = await learn.fineTune(2, { baseLr: 1e-2, freezeEpochs: 1 });
  assert.equal(learn.divergence, null);
  assert.equal(rows.length, 3);
  assert.doesNotMatch(diagnose(rows, null), /diverged/);
});

test('issue 11 case 6: a non-finite validation loss is divergence too, and NaN weights stop at the first batch', async () => {
  // NaN running variances: training normalises with batch statistics and stays finite; evaluation uses them and is NaN.
  const learn = tinyLearner({}, SEEDS);
  for (const [name, b] of learn.model.namedBuffers()) if (name.endsWith('running_var')) b.fill_(Number.NaN);
  const rows = await learn.fitOneCycle(3, 1e-3);
  assert.equal(rows.length, 1);
  assert.ok(Number.isFinite(rows[0].train_loss));
  assert.deepEqual([learn.divergence?.reason, learn.divergence?.batch], ['non-finite validation loss', -1]);
  assert.match(diagnose(rows, learn.divergence), /^Training diverged at epoch 0 \(validation\): the validation loss is NaN/);

  const nan = tinyLearner({}, SEEDS);
  for (const p of nan.model.parameters()) p.detach().fill_(Number.NaN);
  await nan.fitOneCycle(1, 1e-3);
  assert.deepEqual([nan.divergence?.reason, nan.divergence?.batch], ['non-finite loss', 0]);
});
