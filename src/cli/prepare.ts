// What train and lr-find share: the data loaded and presized, and the learner made for it.
import type { Precision } from '../learner/precision.js';
import { manualSeed, setNumThreads, type Device } from '../torch/index.js';
import { zooEntry } from '../models/registry.js';
import { DataLoaders } from '../data/dataloaders.js';
import { balancedClassWeights } from '../data/balance.js';
import { findDuplicates, dedupeDrops, duplicateLines, fingerprintedItems, groupLine, type DuplicateGroup } from '../health/duplicates.js';
import { visionLearner, type VisionLearner } from '../learner/vision.js';
import { DEFAULT_MEMORY_FORMAT } from '../learner/defaults.js';
import type { Callback } from '../learner/events.js';
import type { TrainArgs } from './train.js';

/** Loads the data and makes the learner, as train and lr-find share them. */
export async function prepare(a: Pick<TrainArgs, 'data' | 'arch' | 'weights' | 'size' | 'itemSize' | 'bs' | 'validPct' | 'seed' | 'threads'> & Partial<Pick<TrainArgs, 'memoryFormat' | 'balance' | 'dedupe'>>
  & { precision: Precision; device?: Device },
  log: (s: string) => void, callbacks: Callback[] = [], onDownload?: (bytes: number, total: number | null) => void,
  o: { weightsFromCheckpoint?: boolean } = {}): Promise<{ dls: DataLoaders; learn: VisionLearner; duplicates: DuplicateGroup[] | null }> {
  const entry = zooEntry(a.arch); // an unknown architecture fails before any data is read
  if (a.threads !== undefined) setNumThreads(a.threads);
  manualSeed(a.seed);
  const stats = { mean: entry.weights.transforms.mean, std: entry.weights.transforms.std };
  const dls = await DataLoaders.fromFolder(a.data, {
    validPct: a.validPct, seed: a.seed, itemSize: a.itemSize, size: a.size, bs: a.bs, stats, log, balancedSampler: a.balance === 'sampler', device: a.device,
  });
  const duplicates = checkDuplicates(dls, Boolean(a.dedupe), log);
  let classWeights: number[] | undefined;
  if (a.balance === 'weights') {
    classWeights = balancedClassWeights(dls.vocab.map((_, c) => dls.train.items.filter((it) => it.label === c).length));
    log(`Balance: class weights in the loss, N / (C · n_c): ${dls.vocab.map((v, c) => `${v} ${classWeights![c].toFixed(2)}`).join(', ')}`);
  } else if (a.balance === 'sampler') {
    log('Balance: training draws its images so that every class comes equally often (with replacement)');
  }
  // A resumed run's weights come from its checkpoint: none are loaded here.
  const weights = a.weights === 'none' || o.weightsFromCheckpoint ? null : a.weights;
  if (a.weights === 'none' && !o.weightsFromCheckpoint) log('Starting from random weights (--weights none).');
  // Size and normalisation come with the loaders: the learner takes them from there.
  const learn = await visionLearner(dls, a.arch, {
    weights, bf16: a.precision === 'bf16', fp16: a.precision === 'fp16', device: a.device, classWeights,
    channelsLast: (a.memoryFormat ?? DEFAULT_MEMORY_FORMAT) === 'channels_last', callbacks, log, download: { onProgress: onDownload },
  });
  return { dls, learn, duplicates };
}

/** Finds copies and leaks among the presized images, says what they do, and with `dedupe` leaves them out; null when not checked. */
function checkDuplicates(dls: DataLoaders, dedupe: boolean, log: (s: string) => void): DuplicateGroup[] | null {
  const items = fingerprintedItems(dls);
  if (!items) {
    log('Duplicate check skipped: the images are decoded per batch, not kept in memory');
    return null;
  }
  const groups = findDuplicates(items);
  for (const line of duplicateLines(groups)) log(`warning: ${line}`);
  for (const g of groups.slice(0, 10)) log(`  ${groupLine(g)}`);
  if (groups.length > 10) log(`  … and ${groups.length - 10} more groups (--json lists them all)`);
  if (dedupe && groups.length > 0) log(`--dedupe: left out ${dls.drop(dedupeDrops(groups))} images`);
  return groups;
}

