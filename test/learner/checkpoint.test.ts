// learn.save / learn.load (fastai's, widened to a whole checkpoint): a learner loaded from a
// checkpoint holds the same weights, optimizer moments and history, and goes on training exactly
// as the saved one does; a file that is not a checkpoint is a CheckpointError.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { manualSeed } from '../../src/torch/index.js';
import { visionLearner } from '../../src/learner/vision.js';
import { TensorLoader } from '../../src/learner/tensor-loader.js';
import { syntheticImages, SYNTHETIC_CLASSES } from '../../src/data/synthetic.js';
import { CheckpointError } from '../../src/io/errors.js';

async function learner() {
  const train = syntheticImages(48, 32, { seed: 1, numClasses: 3 });
  const valid = syntheticImages(12, 32, { seed: 2, numClasses: 3 });
  const dls = {
    train: new TensorLoader(train.images, train.labels, { bs: 8, shuffle: true, dropLast: true, seed: 3 }),
    valid: new TensorLoader(valid.images, valid.labels, { bs: 12 }),
    vocab: SYNTHETIC_CLASSES.slice(0, 3),
  };
  return visionLearner(dls, 'resnet18', { weights: null, size: 32, normalization: { mean: [0, 0, 0], std: [1, 1, 1] }, log: null });
}

test('learn.save then learn.load: same weights, optimizer state and history; the next epoch is the same', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-ckpt-'));
  try {
    manualSeed(0);
    const a = await learner();
    await a.fitOneCycle(1, 1e-3);
    const file = path.join(dir, 'a.safetensors');
    a.save(file);
    manualSeed(99); // the load puts back the generator as saved
    const b = await learner();
    const position = b.load(file);
    assert.equal(position.epoch, 1);
    assert.deepEqual(b.history, a.history);
    const [wa, wb] = [a.model.stateDict(), b.model.stateDict()];
    for (const [k, t] of wa) assert.deepEqual(wb.get(k)!.toArray(), t.toArray(), k);
    const [sa, sb] = [a.opt!.stateDict().state, b.opt!.stateDict().state];
    assert.deepEqual(Object.keys(sb), Object.keys(sa));
    for (const id of Object.keys(sa)) {
      for (const [name, v] of Object.entries(sa[Number(id)])) {
        const w = sb[Number(id)][name];
        assert.deepEqual(typeof v === 'number' ? v : v.toArray(), typeof w === 'number' ? w : w.toArray(), `${id}.${name}`);
      }
    }
    // Both go on with the same loader epoch and generator: the same next epoch.
    b.dls.train.resumeAt!(a.dls.train.epochsStarted!, 0);
    const [ra, rb] = [await a.fitOneCycle(1, 1e-3), await b.fitOneCycle(1, 1e-3)];
    assert.equal(rb[0].train_loss, ra[0].train_loss);
    assert.equal(rb[0].valid_loss, ra[0].valid_loss);
    writeFileSync(path.join(dir, 'junk.safetensors'), 'not a checkpoint');
    assert.throws(() => b.load(path.join(dir, 'junk.safetensors')), CheckpointError);
    a.model.dispose();
    b.model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
