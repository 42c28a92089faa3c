// `npm run demo`: the whole visiontune study on a small built-in example. It draws a folder of
// pattern photos, fine-tunes a zoo model on it (ImageNet weights when they are cached or can be
// downloaded, otherwise random weights, said plainly), prints the fastai table and the
// interpretation, writes a run folder (models, checkpoint, pictures, report.html) and predicts
// one image with the run's best model.
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeSyntheticFolder } from '../src/data/synthetic-files.js';
import { isCached, resolveWeights, WeightsError } from '../src/models/weights.js';
import { trainCommand } from '../src/cli/train.js';
import { predictCommand } from '../src/cli/predict.js';
import { getNumThreads, libtorchVersion } from '../src/torch/index.js';

const ARCH = 'resnet18';
const root = path.join(tmpdir(), 'visiontune-demo');
const data = path.join(root, 'patterns');
const out = path.join(root, 'run');

console.log(`visiontune demo: libtorch ${libtorchVersion().torch}, ${getNumThreads()} threads`);
rmSync(root, { recursive: true, force: true });
const files = await writeSyntheticFolder(data, { perClass: 80, numClasses: 3, format: 'jpeg', minSide: 80, maxSide: 140, seed: 7 });
console.log(`Drew ${files.length} photos of 3 patterns into ${data} (one folder per class)\n`);

// ImageNet weights if we have them or can fetch them quickly; the demo never hangs on a network.
let weights = 'none';
try {
  if (!isCached(ARCH)) console.log(`Fetching ${ARCH}'s ImageNet weights…`);
  await resolveWeights(ARCH, 'imagenet', { timeoutMs: 10_000 });
  weights = 'imagenet';
} catch (e) {
  const why = e instanceof WeightsError && e.reason === 'offline' ? 'not cached, and no download possible here' : (e as Error).message;
  console.log(`No ImageNet weights for ${ARCH} (${why}): this demo starts from random weights, ` +
    'so it needs more epochs and a higher learning rate than fine-tuning would.\n');
}

await trainCommand({
  data, arch: ARCH, weights, epochs: 4, freezeEpochs: 1, lr: weights === 'none' ? 1e-2 : 2e-3,
  size: 64, itemSize: 96, bs: 16, validPct: 0.2, seed: 42, earlyStop: 0, precision: 'fp32', memoryFormat: 'channels_last', out,
}, (s) => console.log(s));

console.log('\nPredicting one photo with the exported model:');
await predictCommand({ model: path.join(out, 'best.safetensors'), files: [files[0]], topK: 3, json: false }, (s) => console.log(s));
console.log(`\nThe run folder: ${out} (open ${path.join(out, 'report.html')} in a browser)`);
