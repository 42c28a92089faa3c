// Interpretation on hand-made predictions: confusion matrix, most confused, top losses, per-class
// precision/recall/F1 worst first, and advice drawn from those numbers.
import test from 'node:test';
import assert from 'node:assert/strict';
import { tensor, cat, zeros, F } from '../../src/torch/index.js';
import { Interpretation } from '../../src/interpret/interpret.js';

const VOCAB = ['apple', 'banana', 'cherry'];
// Actual → predicted: apples right ×4; bananas: 2 right, 2 taken for cherries; cherries: 3 right, 1 taken for banana.
const PAIRS: [number, number][] = [[0, 0], [0, 0], [0, 0], [0, 0], [1, 1], [1, 1], [1, 2], [1, 2], [2, 2], [2, 2], [2, 2], [2, 1]];

function predictions() {
  const probs = tensor(PAIRS.map(([, p], i) => [0, 1, 2].map((c) => (c === p ? 0.6 + 0.01 * i : (0.4 - 0.01 * i) / 2))));
  const targets = tensor(PAIRS.map(([a]) => a), { dtype: 'int64' });
  const losses = F.nllLoss(probs.log(), targets, { reduction: 'none' });
  return { probs, targets, losses };
}

test('confusion matrix is cm[actual][predicted], most confused pairs come first', () => {
  const interp = new Interpretation(VOCAB, predictions());
  assert.deepEqual(interp.confusion, [[4, 0, 0], [0, 2, 2], [0, 1, 3]]);
  assert.deepEqual(interp.mostConfused(), [['banana', 'cherry', 2], ['cherry', 'banana', 1]]);
  assert.deepEqual(interp.mostConfused(2), [['banana', 'cherry', 2]]);
  assert.equal(interp.accuracy, 9 / 12);
});

test('top losses are the wrong predictions with the most confident mistakes first', () => {
  const paths = PAIRS.map((_, i) => `img${i}.jpg`);
  const top = new Interpretation(VOCAB, predictions(), paths).topLosses(3);
  assert.deepEqual(top.map((t) => t.path), ['img11.jpg', 'img7.jpg', 'img6.jpg']);
  assert.deepEqual([top[0].actual, top[0].predicted], ['cherry', 'banana']);
  assert.ok(Math.abs(top[0].probability - 0.71) < 1e-6);
  assert.ok(top[0].loss > top[1].loss && top[1].loss > top[2].loss);
});

test('per-class table is worst first, with advice from the numbers', () => {
  const report = new Interpretation(VOCAB, predictions()).perClass([100, 30, 90]);
  assert.deepEqual(report.map((r) => r.label), ['banana', 'cherry', 'apple']);
  const banana = report[0];
  assert.ok(Math.abs(banana.precision! - 2 / 3) < 1e-12 && banana.recall === 0.5 && banana.support === 4);
  assert.ok(banana.advice.some((a) => /^more data: 30 training images/.test(a)), banana.advice.join(' | '));
  assert.ok(banana.advice.some((a) => /^label check: 2 of 4 'banana' images were taken for 'cherry' and 1 the other way/.test(a)));
  assert.deepEqual(report[2].advice, [], 'a perfect class gets no advice');
});

test('issue 11 case 10: a class with no validation image is not measured, kept out of the mean F1 and of the advice', () => {
  // 'date' has training images but none in valid/; nothing is predicted as it either.
  const vocab = [...VOCAB, 'date'];
  const { probs, targets, losses } = predictions();
  const padded = cat([probs, zeros([PAIRS.length, 1])], 1);
  const interp = new Interpretation(vocab, { probs: padded, targets, losses });
  const report = interp.perClass([100, 30, 90, 40]);
  const date = report.find((r) => r.label === 'date')!;
  assert.deepEqual([date.precision, date.recall, date.f1, date.support, date.advice], [null, null, null, 0, []]);
  assert.equal(report[report.length - 1].label, 'date', 'not measured comes last');
  const measured = new Interpretation(VOCAB, predictions()).meanF1()!;
  assert.ok(Math.abs(interp.meanF1()! - measured) < 1e-12, `mean F1 ${interp.meanF1()} is the three measured classes' ${measured}`);
  // Predicted as a class it has no image of: its precision is measured (0), its recall is not.
  const wrong = tensor([[0.1, 0.1, 0.1, 0.7], ...PAIRS.slice(1).map(([, p]) => [0, 1, 2, 3].map((c) => (c === p ? 0.9 : 0.1 / 3)))]);
  const report2 = new Interpretation(vocab, { probs: wrong, targets, losses }).perClass();
  const date2 = report2.find((r) => r.label === 'date')!;
  assert.deepEqual([date2.precision, date2.recall, date2.f1], [0, null, null]);
});
