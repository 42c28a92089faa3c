// Acceptance: a 1,000-step training loop of a small CNN with AdamW keeps the process's RSS
// within 50 MB of its size after step 50, and holds no more tensors at the end than then.
import test from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, memory } from '../../src/torch/index.js';
import { AdamW } from '../../src/optim/index.js';
import { SimpleCNN } from '../../src/models/simple-cnn.js';
import { syntheticImages } from '../../src/data/synthetic.js';
import { trainStep } from '../helpers/train.js';

const MB = 1024 * 1024;

test('1,000 AdamW steps of a small CNN keep RSS within 50 MB of its size after step 50', (t) => {
  manualSeed(0);
  const { images, labels } = syntheticImages(16, 32, { seed: 3 });
  const model = new SimpleCNN({ numClasses: 4, width: 8 });
  const opt = new AdamW(model.parameters(), { lr: 1e-3 });
  let rssAt50 = 0, tensorsAt50 = 0, peak = 0;
  for (let step = 1; step <= 1000; step++) {
    trainStep(model, opt, images, labels);
    if (step === 50) {
      rssAt50 = process.memoryUsage.rss();
      tensorsAt50 = memory().tensors;
    } else if (step > 50 && step % 25 === 0) {
      peak = Math.max(peak, process.memoryUsage.rss());
    }
  }
  const growth = (peak - rssAt50) / MB;
  t.diagnostic(`RSS after step 50: ${(rssAt50 / MB).toFixed(1)} MB; growth to the peak by step 1000: ${growth.toFixed(1)} MB`);
  assert.ok(growth < 50, `RSS grew ${growth.toFixed(1)} MB between step 50 and step 1000`);
  assert.equal(memory().tensors, tensorsAt50, 'live tensors after 1,000 steps vs after 50');
  opt.dispose();
  model.dispose();
  images.dispose();
  labels.dispose();
});
