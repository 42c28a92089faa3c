// `visiontune check <data>`: the data checks alone, before any training — what the folder holds
// (layout, counts, passed-over and skipped files, imbalance), its copies and leaks, and with
// --label-check the images whose labels look wrong.
import { writeFileSync } from 'node:fs';
import { setNumThreads, manualSeed } from '../torch/index.js';
import { DataLoaders } from '../data/dataloaders.js';
import { formatSummary } from '../data/summary.js';
import { findDuplicates, duplicateLines, fingerprintedItems, groupLine } from '../health/duplicates.js';
import { labelCheck } from '../health/label-check.js';
import { zooEntry } from '../models/registry.js';
import { loadPretrained } from '../models/weights.js';
import { Body } from '../learner/model.js';
import { printLabelSuspects } from './report.js';

export interface CheckArgs {
  data: string;
  itemSize: number;
  validPct: number;
  seed: number;
  /** Folds of the label check; 0: off. */
  labelCheck: number;
  /** The body whose features the label check uses: a zoo architecture and its weights ('imagenet', a file, or 'none'). */
  arch: string;
  weights: string;
  size: number;
  bs: number;
  threads?: number;
  json?: string;
}

/** Runs the data checks; prints the summary table and what the checks found; returns them for --json. */
export async function checkCommand(a: CheckArgs, out: (s: string) => void, onDownload?: (bytes: number, total: number | null) => void):
  Promise<Record<string, unknown>> {
  const entry = zooEntry(a.arch); // an unknown architecture fails before any data is read
  if (a.threads !== undefined) setNumThreads(a.threads);
  manualSeed(a.seed);
  const stats = { mean: entry.weights.transforms.mean, std: entry.weights.transforms.std };
  const dls = await DataLoaders.fromFolder(a.data, { validPct: a.validPct, seed: a.seed, itemSize: a.itemSize, size: a.size, bs: a.bs, stats, log: null });
  out(formatSummary(dls.summary));
  const items = fingerprintedItems(dls);
  const duplicates = items ? findDuplicates(items) : null;
  if (!duplicates) out('\nDuplicate check skipped: the images are too many to keep in memory');
  else if (duplicates.length === 0) out('\nNo copies or leaks found.');
  else {
    out('');
    for (const line of duplicateLines(duplicates)) out(`warning: ${line}`);
    for (const g of duplicates) out(`  ${groupLine(g)}`);
  }
  const results: Record<string, unknown> = { data: dls.summary, duplicates };
  if (a.labelCheck > 0) {
    // Nothing has trained on any of the images: every split is checked, each image out of fold.
    const splits = [dls.train, dls.valid, dls.test].flatMap((l) => (l ? [l] : []));
    const splitOf = new Map(splits.flatMap((l, i) => l.items.map((it) => [it.path, ['train', 'valid', 'test'][i]] as const)));
    const set = { ...dls.train.set, items: splits.flatMap((l) => l.items) };
    out(`\nChecking the labels: ${a.labelCheck}-fold linear head on the features of ${a.arch}'s body (${a.weights === 'none' ? 'random' : a.weights} weights)…`);
    const body = new Body(a.weights === 'none' ? entry.build() : await loadPretrained(entry, a.weights, { onProgress: onDownload }));
    try {
      const checked = await labelCheck(body, set, dls.vocab, (p) => splitOf.get(p) ?? 'train', { k: a.labelCheck, seed: a.seed, size: a.size, stats, bs: a.bs });
      out(`  out-of-fold accuracy of the linear head: ${(100 * checked.accuracy).toFixed(1)}%${a.weights === 'none' ? ' (random weights: the check means little)' : ''}`);
      printLabelSuspects(checked.suspects, 'the images', out);
      Object.assign(results, { labelCheck: { folds: a.labelCheck, arch: a.arch, weights: a.weights, outOfFoldAccuracy: checked.accuracy }, labelSuspects: checked.suspects });
    } finally {
      body.dispose();
    }
  }
  if (a.json) writeFileSync(a.json, `${JSON.stringify(results, null, 2)}\n`);
  return results;
}
