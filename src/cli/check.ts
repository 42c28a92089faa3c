// `visiontune check <data>`: the data checks alone, before any training — what the folder holds
// (layout, counts, passed-over and skipped files, imbalance) and its copies and leaks.
import { writeFileSync } from 'node:fs';
import { setNumThreads, IMAGENET_STATS } from '../torch/index.js';
import { DataLoaders } from '../data/dataloaders.js';
import { formatSummary } from '../data/summary.js';
import { findDuplicates, duplicateLines, fingerprintedItems, groupLine } from '../health/duplicates.js';

export interface CheckArgs {
  data: string;
  itemSize: number;
  validPct: number;
  seed: number;
  threads?: number;
  json?: string;
}

/** Runs the data checks; prints the summary table and what the checks found; returns them for --json. */
export async function checkCommand(a: CheckArgs, out: (s: string) => void): Promise<Record<string, unknown>> {
  if (a.threads !== undefined) setNumThreads(a.threads);
  const dls = await DataLoaders.fromFolder(a.data, { validPct: a.validPct, seed: a.seed, itemSize: a.itemSize, stats: IMAGENET_STATS, log: null });
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
  const results = { data: dls.summary, duplicates };
  if (a.json) writeFileSync(a.json, `${JSON.stringify(results, null, 2)}\n`);
  return results;
}
