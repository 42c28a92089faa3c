// Acceptance (issue 16, imbalance): inverse-frequency class weights follow their formula and
// raise the minority class's recall on a 10:1 set; the balanced sampler draws classes equally.
import test from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, tensor, randn, tidy, type Tensor } from '../../src/torch/index.js';
import { SimpleCNN } from '../../src/models/simple-cnn.js';
import { Learner } from '../../src/learner/learner.js';
import { TensorLoader } from '../../src/learner/tensor-loader.js';
import { seededRandom } from '../../src/data/random.js';
import { balancedClassWeights, balancedDraw } from '../../src/data/balance.js';

test('issue 16: class weights are N / (C · n_c), and 1 for a balanced set', () => {
  assert.deepEqual(balancedClassWeights([100, 10]), [110 / 200, 110 / 20]);
  assert.deepEqual(balancedClassWeights([5, 5, 5]), [1, 1, 1]);
  assert.deepEqual(balancedClassWeights([30, 0, 10]), [40 / 60, 0, 40 / 20]);
});

test('issue 16: the balanced sampler draws every class about equally often', () => {
  const labels = [...Array(1000).fill(0), ...Array(100).fill(1), ...Array(10).fill(2)];
  const drawn = balancedDraw(labels, 30_000, seededRandom(1)).map((i) => labels[i]);
  for (const c of [0, 1, 2]) {
    const share = drawn.filter((l) => l === c).length / drawn.length;
    assert.ok(Math.abs(share - 1 / 3) < 0.02, `class ${c}: ${share}`);
  }
});

// Images whose classes overlap: noise with a faint class-dependent shift of the mean.
function faint(n: number, minority: number, shift: number): { x: Tensor; y: Tensor } {
  const labels = [...Array(n - minority).fill(0), ...Array(minority).fill(1)];
  const y = tensor(labels, { dtype: 'int64' });
  const x = tidy(() => randn([n, 3, 16, 16]).add(y.float().mul(shift).view(n, 1, 1, 1)));
  return { x, y };
}

// Minority recall of a SimpleCNN trained on 100 + 10 such images (the same seed each time), measured on 50 + 50.
async function minorityRecall(classWeights?: number[]): Promise<number> {
  manualSeed(7);
  const train = faint(110, 10, 0.5);
  const valid = faint(100, 50, 0.5);
  const cnn = new SimpleCNN({ numClasses: 2, width: 8, dropout: 0 });
  const learn = new Learner({
    train: new TensorLoader(train.x, train.y, { bs: 16, shuffle: true, seed: 3 }),
    valid: new TensorLoader(valid.x, valid.y, { bs: 50 }),
    vocab: ['major', 'minor'],
  }, cnn, { log: null, classWeights });
  await learn.fitOneCycle(3, 3e-3);
  const { probs, targets } = await learn.getPreds();
  const predicted = probs.argmax(1).toArray();
  const minority = targets.toArray().map((a, i) => [a, predicted[i]]).filter(([a]) => a === 1);
  return minority.filter(([, p]) => p === 1).length / minority.length;
}

test('issue 16: --balance weights raises the minority class\'s recall on a 10:1 set (same seed)', async (t) => {
  const none = await minorityRecall();
  const weighted = await minorityRecall(balancedClassWeights([100, 10]));
  t.diagnostic(`minority recall: none ${none.toFixed(2)}, weights ${weighted.toFixed(2)}`);
  assert.ok(weighted > none, `minority recall: weights ${weighted}, none ${none}`);
});

