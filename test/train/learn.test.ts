// Acceptance: a small CNN trained on generated data learns in TypeScript, and its stateDict()
// loads into the same model in Python PyTorch with identical outputs.
import test from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, noGrad, randperm, tidy } from '../../src/torch/index.js';
import { AdamW } from '../../src/optim/index.js';
import { SimpleCNN } from '../../src/models/simple-cnn.js';
import { syntheticImages, SYNTHETIC_CLASSES } from '../../src/data/synthetic.js';
import { python, enc, assertClose, type Encoded } from '../helpers/python.js';
import { trainStep } from '../helpers/train.js';

const N_CLASSES = SYNTHETIC_CLASSES.length;
const BATCH = 32;

test('SimpleCNN learns the generated patterns and its state dict gives PyTorch the same outputs', () => {
  manualSeed(0);
  const train = syntheticImages(256, 32, { seed: 1 });
  const valid = syntheticImages(64, 32, { seed: 2 });
  const model = new SimpleCNN({ numClasses: N_CLASSES, width: 16 });
  const opt = new AdamW(model.parameters(), { lr: 3e-3 });
  const epochLoss: number[] = [];
  for (let epoch = 0; epoch < 8; epoch++) {
    let sum = 0;
    tidy(() => {
      const order = randperm(256);
      for (let i = 0; i < 256 / BATCH; i++) {
        sum += tidy(() => {
          const idx = order.narrow(0, i * BATCH, BATCH);
          return trainStep(model, opt, train.images.indexSelect(0, idx), train.labels.indexSelect(0, idx));
        });
      }
    });
    epochLoss.push(sum / (256 / BATCH));
  }
  // Chance is ln 4 ≈ 1.39.
  assert.ok(epochLoss[0] > 1.0, `first epoch already at ${epochLoss[0]}: the task is too easy to show learning`);
  assert.ok(epochLoss[7] < 0.3, `train loss per epoch ${epochLoss.map((l) => l.toFixed(3)).join(', ')}: did not fall below 0.3`);

  model.eval();
  const logits = noGrad(() => model.forward(valid.images));
  const errorRate = logits.argmax(1).ne(valid.labels).float().mean().item();
  assert.ok(errorRate <= 0.1, `valid error rate ${errorRate}`);

  const state = Object.fromEntries([...model.stateDict()].map(([k, v]) => [k, enc(v)]));
  const ref = python<{ logits: Encoded; missing: string[]; unexpected: string[] }>(`
from simple_cnn import SimpleCNN
m = SimpleCNN(${N_CLASSES}, width=16)
r = m.load_state_dict({k: T(v) for k, v in inp['state'].items()}, strict=False)
m.eval()
with torch.no_grad():
    out = {'logits': J(m(T(inp['x']))), 'missing': r.missing_keys, 'unexpected': r.unexpected_keys}
`, { state, x: enc(valid.images) });
  assert.deepEqual([ref.missing, ref.unexpected], [[], []]);
  assertClose(logits, ref.logits, 'eval logits in PyTorch from our state dict');
});
