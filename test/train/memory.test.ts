// Acceptance: a 1,000-step training loop of a small CNN with AdamW keeps the process's RSS
// within 50 MB of its size after step 50, and leaves no more tensors undisposed at the end than then.
import test from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import { manualSeed, memory, tidy, zeros } from '../../src/torch/index.js';
import { AdamW } from '../../src/optim/index.js';
import { SimpleCNN } from '../../src/models/simple-cnn.js';
import { syntheticImages } from '../../src/data/synthetic.js';
import { trainStep, undisposed } from '../helpers/train.js';

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
      tensorsAt50 = undisposed();
    } else if (step > 50 && step % 25 === 0) {
      peak = Math.max(peak, process.memoryUsage.rss());
    }
  }
  const growth = (peak - rssAt50) / MB;
  t.diagnostic(`RSS after step 50: ${(rssAt50 / MB).toFixed(1)} MB; growth to the peak by step 1000: ${growth.toFixed(1)} MB`);
  assert.ok(growth < 50, `RSS grew ${growth.toFixed(1)} MB between step 50 and step 1000`);
  assert.equal(undisposed(), tensorsAt50, 'tensors never disposed (live or collected) after 1,000 steps vs after 50');
  opt.dispose();
  model.dispose();
  images.dispose();
  labels.dispose();
});

test('a synchronous loop that never disposes gets its tensors back from the garbage collector', () => {
  // 500 tensors of 4 MB (2 GB in all), none disposed and no turn of the event loop between them:
  // the addon reports each tensor's bytes to V8, whose collections release the dead handles then.
  const before = memory();
  const undisposedBefore = undisposed();
  let peak = 0;
  for (let i = 0; i < 500; i++) {
    zeros([1024, 1024]);
    peak = Math.max(peak, memory().bytes - before.bytes);
  }
  const after = memory();
  assert.ok(peak < 512 * MB, `undisposed tensors held ${(peak / MB).toFixed(0)} MB at the peak`);
  assert.ok(after.collected - before.collected > 0, 'the garbage collector released none');
  assert.equal(undisposed(), undisposedBefore + 500, 'every handle is live or collected');
});

test('tidy() steps that make and free 80 MB each start no full garbage collection', () => {
  // When every tensor's bytes were reported, each such step crossed V8's 64 MB external limit and
  // started a full collection of a heap with nothing to collect: 48 in these 50 steps.
  const profiler = new v8.GCProfiler();
  profiler.start();
  for (let step = 0; step < 50; step++) {
    tidy(() => {
      let x = zeros([1024, 1024]);
      for (let i = 0; i < 20; i++) x = x.add(1);
      return x.sum().item();
    });
  }
  const full = profiler.stop().statistics.filter((gc) => gc.gcType === 'MarkSweepCompact').length;
  assert.ok(full < 5, `${full} full collections in 50 steps`);
});
