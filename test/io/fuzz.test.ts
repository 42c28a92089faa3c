// Acceptance (issue 15, fuzzing): 2,000 seeded mutations each (bit flips, truncations, size-field
// and header edits, overwritten spans; most in the header or zip structure) of a valid .pth, a
// valid .safetensors and a valid exported model, all loaded in one process under a 4 GiB address
// cap and a time limit: nothing crashes or hangs, and every failure is a CheckpointError or a
// ModelFileError with a one-line message.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { manualSeed, randn, zeros } from '../../src/torch/index.js';
import { writeSafetensors } from '../../src/io/index.js';
import { zooEntry } from '../../src/models/registry.js';
import { VisionClassifier } from '../../src/learner/model.js';
import { exportModel } from '../../src/learner/export.js';
import { python } from '../helpers/python.js';
import { tempDir } from './fixtures.js';

const MUTATIONS = 2000;
const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fuzz-worker.js');

test('issue 15: 2,000 mutations each of a .pth, a .safetensors and an exported model load or fail cleanly, capped', (t) => {
  const dir = tempDir('fuzz');
  python(`torch.manual_seed(0)
torch.save({'conv.weight': torch.randn(4, 3, 3, 3), 'conv.bias': torch.randn(4), 'bn.running_mean': torch.zeros(4),
            'bn.num_batches_tracked': torch.tensor(3), 'fc.weight': torch.randn(2, 4).t()}, inp)`, path.join(dir, 'valid.pth'));
  manualSeed(0);
  writeSafetensors(path.join(dir, 'valid.safetensors'), new Map([['a', randn([4, 3, 3, 3])], ['b', zeros([7], { dtype: 'int64' })], ['c', randn([5])]]),
    { note: 'fuzz' });
  const m = new VisionClassifier(zooEntry('mobilenet_v2').build(), 2, { linFtrs: [16] });
  exportModel(path.join(dir, 'valid.model.safetensors'), m, { architecture: 'mobilenet_v2', classes: ['a', 'b'], size: 32,
    normalization: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, head: { linFtrs: [16] } });
  m.dispose();
  const r = spawnSync('bash', ['-c', `ulimit -v ${4096 * 1024}; exec "$0" "$@"`, process.execPath, WORKER, dir, String(MUTATIONS), '7'],
    { encoding: 'utf8', timeout: 600_000, maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `the worker ended with ${r.status ?? r.signal}: ${r.stderr.slice(-2000)}`);
  const result = JSON.parse(r.stdout) as Record<string, { loaded: number; checkpointError: number; modelFileError: number; other: string[]; reasons: Record<string, number> }>;
  for (const [kind, tally] of Object.entries(result)) {
    t.diagnostic(`${kind}: ${tally.loaded} loaded, ${tally.checkpointError} CheckpointError (${JSON.stringify(tally.reasons)}), ` +
      `${tally.modelFileError} ModelFileError, ${tally.other.length} other`);
    assert.deepEqual(tally.other, [], `${kind}: failures that are not a clean CheckpointError or ModelFileError`);
    assert.equal(tally.loaded + tally.checkpointError + tally.modelFileError, MUTATIONS);
    assert.ok(tally.checkpointError + tally.modelFileError > MUTATIONS / 4, `${kind}: most mutations should be refused`);
  }
});
