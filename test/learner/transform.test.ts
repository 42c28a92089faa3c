// Acceptance (issue 12, one evaluation transform): predict, on a path or in an exported model,
// makes every validation image into the input the validation loader made, so its probabilities
// are the validation probabilities — for each presizing method and with or without resampling.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { manualSeed } from '../../src/torch/index.js';
import { DataLoaders } from '../../src/data/dataloaders.js';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { visionLearner } from '../../src/learner/vision.js';
import { loadLearner } from '../../src/learner/export.js';
import { Interpretation } from '../../src/interpret/interpret.js';
import { assertClose } from '../helpers/python.js';

for (const [method, itemSize, size] of [['crop', 48, 32], ['squish', 40, 32], ['pad', 40, 32], ['crop', 32, 32]] as const) {
  test(`issue 12: predict on every validation file gives the validation probabilities (${method}, item ${itemSize}, size ${size})`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vt-transform-'));
    try {
      await writeSyntheticFolder(dir, { perClass: 6, numClasses: 3, minSide: 40, maxSide: 70, seed: 7 });
      manualSeed(0);
      const dls = await DataLoaders.fromFolder(dir, { size, itemSize, method, bs: 4, log: null });
      const learn = await visionLearner(dls, 'resnet18', { weights: null, log: null });
      await learn.fitOneCycle(1, 1e-3);
      const { probs } = await learn.getPreds();
      const valid = probs.toArray();
      const files = dls.valid.paths;
      assert.equal(files.length * 3, valid.length);
      const file = path.join(dir, 'model.safetensors');
      learn.export(file);
      const exported = loadLearner(file);
      for (const [i, f] of files.entries()) {
        const want = valid.slice(3 * i, 3 * i + 3);
        assertClose((await learn.predict(f)).probs, want, `learner predict ${f}`, { rtol: 1e-5, atol: 1e-6 });
        assertClose((await exported.predict(f)).probs, want, `exported predict ${f}`, { rtol: 1e-5, atol: 1e-6 });
      }
      const interp = await Interpretation.fromLearner(learn);
      assert.deepEqual(interp.paths, files, 'the interpretation names each prediction\'s file');
      assert.deepEqual(interp.trainCounts, [0, 1, 2].map((c) => dls.train.items.filter((it) => it.label === c).length));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
