// The data benchmark: on 2,000 generated JPEGs (four pattern classes, 300–600 px sides) it
// measures decode+presize throughput (item size 460), batch augmentation throughput (the
// training loader alone, 224 px), and the share of each training epoch of mobilenet_v2 (224 px,
// batch 64, AdamW) spent waiting for the loader, and what the duplicate check costs (fingerprints
// of every presized image and the pairwise comparison) as a share of one epoch. The last line is
// `wait_share <share of the last epoch>`. Also the cost of the opt-in label check of the training
// images (--label-check 5: mobilenet_v2's body once over them, then five linear heads) against a
// full training epoch, and of the checks every run makes after training (temperature fit and
// confident learning on the validation predictions).
// Environment: BENCH_IMAGES (2000), BENCH_EPOCHS (2), BENCH_MAX_BATCHES (whole epoch), BENCH_BS (64).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { F, cat, cuda, getNumThreads, manualSeed, noGrad, tidy, type Device, type Tensor } from '../src/torch/index.js';
import { AdamW } from '../src/optim/index.js';
import { zooEntry } from '../src/models/registry.js';
import { DataLoaders } from '../src/data/dataloaders.js';
import { writeSyntheticFolder } from '../src/data/synthetic-files.js';
import { fingerprint } from '../src/data/fingerprint.js';
import { findDuplicates, fingerprintedItems } from '../src/health/duplicates.js';
import { labelCheck } from '../src/health/label-check.js';
import { confidentLearning } from '../src/health/label-errors.js';
import { fitTemperature } from '../src/learner/calibration.js';
import { Body } from '../src/learner/model.js';

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const nImages = env('BENCH_IMAGES', 2000);
const epochs = env('BENCH_EPOCHS', 2);
const maxBatches = env('BENCH_MAX_BATCHES', Infinity);
const bs = env('BENCH_BS', 64);
const device: Device = cuda.isAvailable() ? 'cuda' : 'cpu';
const fmt = (x: number, d = 1): string => x.toFixed(d);

const root = mkdtempSync(path.join(tmpdir(), 'vt-bench-data-'));
try {
  console.log(`bench:data  images ${nImages}  device ${device}  torch threads ${getNumThreads()}  batch ${bs}`);
  let t = performance.now();
  await writeSyntheticFolder(root, { perClass: Math.ceil(nImages / 4), numClasses: 4, minSide: 300, maxSide: 600, seed: 1 });
  console.log(`generated ${nImages} JPEGs in ${fmt((performance.now() - t) / 1000)} s`);

  t = performance.now();
  const dls = await DataLoaders.fromFolder(root, { itemSize: 460, size: 224, bs, seed: 0, device, log: null });
  const presizeS = (performance.now() - t) / 1000;
  const total = dls.train.items.length + dls.valid.items.length;
  console.log(`decode+presize      ${fmt(total / presizeS)} images/s  (${total} images in ${fmt(presizeS)} s, item 460 px, crop)`);

  // The loader alone: crop, augmentation, normalisation, one epoch's worth of batches.
  t = performance.now();
  let seen = 0;
  for await (const { x, y } of dls.train) {
    seen += y.size(0);
    x.dispose();
    y.dispose();
    if (seen / bs >= maxBatches) break;
  }
  const augS = (performance.now() - t) / 1000;
  console.log(`batch augmentation  ${fmt(seen / augS)} images/s  (${seen} images in ${fmt(augS)} s, 460 → 224 px)`);

  // The duplicate check: the fingerprints presizing takes (timed again here on the same pixels)
  // and the grouping over every pair.
  t = performance.now();
  for (const it of [...dls.train.items, ...dls.valid.items]) if (it.data) fingerprint({ data: it.data, height: it.height, width: it.width });
  const fingerprintS = (performance.now() - t) / 1000;
  t = performance.now();
  const items = fingerprintedItems(dls);
  const groups = items ? findDuplicates(items) : [];
  const groupS = (performance.now() - t) / 1000;
  console.log(`duplicate check     fingerprints ${fmt(fingerprintS, 2)} s, grouping ${fmt(groupS, 2)} s (${items?.length ?? 0} images, ${groups.length} groups)`);

  manualSeed(0);
  const model = zooEntry('mobilenet_v2').build({ numClasses: dls.vocab.length });
  if (device !== 'cpu') model.to({ device });
  model.train();
  const opt = new AdamW(model.parameters(), { lr: 1e-3 });
  let share = 0;
  let lastEpochMs = NaN;
  for (let e = 0; e < epochs; e++) {
    const start = performance.now();
    let batches = 0;
    let loss = 0;
    for await (const { x, y } of dls.train) {
      loss = tidy(() => {
        const l = F.crossEntropy(model.forward(x), y);
        opt.zeroGrad();
        l.backward();
        opt.step();
        return l.item();
      });
      x.dispose();
      y.dispose();
      if (++batches >= maxBatches) break;
    }
    const epochMs = performance.now() - start;
    lastEpochMs = epochMs;
    share = dls.train.timing.waitMs / epochMs;
    console.log(`epoch ${e}  ${batches} batches  ${fmt(epochMs / 1000)} s  ${fmt((batches * bs) / (epochMs / 1000))} images/s  ` +
      `waiting for data ${fmt(dls.train.timing.waitMs / 1000, 2)} s (${fmt(100 * share)}%)  loss ${fmt(loss, 3)}`);
  }
  opt.dispose();
  // Seconds a full training epoch takes at the last epoch's rate (the run may stop early).
  const fullEpochS = (lastEpochMs / 1000) * (dls.train.items.length / Math.max(1, Math.min(maxBatches, dls.train.length) * bs));

  // After training: the temperature and confident learning on the validation predictions.
  const { probs, targets } = await validationPreds(model, dls);
  t = performance.now();
  fitTemperature(probs.log(), targets);
  confidentLearning(probs.toArray(), targets.toArray(), dls.vocab.length);
  const afterS = (performance.now() - t) / 1000;
  probs.dispose();
  targets.dispose();
  model.dispose();

  // --label-check 5 over the training images.
  const body = new Body(zooEntry('mobilenet_v2').build());
  t = performance.now();
  const checked = await labelCheck(body, dls.train.set, dls.vocab, () => 'train', { k: 5, seed: 0, size: 224, stats: dls.train.evalTransform.stats, bs });
  const labelCheckS = (performance.now() - t) / 1000;
  body.dispose();
  console.log(`after training      temperature and confident learning on the validation predictions ${fmt(afterS, 2)} s (${fmt(100 * afterS / fullEpochS)}% of an epoch)`);
  console.log(`--label-check 5     ${fmt(labelCheckS, 1)} s over ${dls.train.items.length} training images (${fmt(100 * labelCheckS / fullEpochS)}% of a ` +
    `${fmt(fullEpochS)} s epoch; ${checked.suspects.length} suspects)`);
  console.log(`duplicate_check_share ${((fingerprintS + groupS) / (lastEpochMs / 1000)).toFixed(4)}  (of the last epoch)`);
  console.log(`wait_share ${share.toFixed(4)}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}

/** Returns softmax probabilities [N, C] and targets [N] of `model` over the validation loader, in eval mode. */
async function validationPreds(model: ReturnType<ReturnType<typeof zooEntry>['build']>, dls: DataLoaders): Promise<{ probs: Tensor; targets: Tensor }> {
  const probs: Tensor[] = [];
  const targets: Tensor[] = [];
  model.eval();
  for await (const { x, y } of dls.valid) {
    probs.push(noGrad(() => tidy(() => F.softmax(model.forward(x), 1))));
    targets.push(y);
    x.dispose();
  }
  model.train();
  const out = { probs: cat(probs), targets: cat(targets) };
  for (const t of [...probs, ...targets]) t.dispose();
  return out;
}
