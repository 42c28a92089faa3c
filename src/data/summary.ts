// The table a user reads before training: images per split and class, with warnings about
// imbalance and classes too small to learn.
import { countByClass, type Dataset, type PassedOver, type SplitName } from './sources.js';
import type { Skipped } from './errors.js';

/** A class with more than this many times the training images of another is called imbalanced. */
export const IMBALANCE_RATIO = 5;
/** Fewer training images than this in a class, and it is called too small to learn. */
export const MIN_TRAIN_IMAGES = 10;

export interface DatasetSummary {
  vocab: string[];
  /** counts[split][class]: images per split and class. */
  counts: Record<SplitName, Record<string, number>>;
  warnings: string[];
  skipped: Skipped[];
  ignored: number;
  /** Files and folders passed over without being read, by reason. */
  passedOver: PassedOver[];
  /** The folder layout found (see folderDataset), or 'CSV'. */
  layout: string;
}

/** Returns one sentence per group passed over: "10 .heic files: unsupported format (convert them to JPEG or PNG to use them)". */
export function passedOverLines(groups: readonly PassedOver[]): string[] {
  return groups.map((g) => {
    const one = g.count === 1;
    const what = one ? g.what.replace(/^(folder|file|image)s\b/, '$1').replace(/ files$/, ' file') : g.what;
    const why: Record<PassedOver['reason'], string> = {
      'unsupported format': `unsupported format (convert ${one ? 'it' : 'them'} to JPEG or PNG to use ${one ? 'it' : 'them'})`,
      'not an image': one ? 'not an image' : 'not images',
      hidden: 'hidden',
      'outside any class folder': 'outside any class folder, so without a label',
      'visiontune output': 'visiontune output, never read as data',
      'outside the data folder': 'not followed: a data folder is read only inside itself',
      unreadable: 'skipped',
    };
    const example = one || ['visiontune output', 'outside any class folder', 'outside the data folder', 'unreadable'].includes(g.reason)
      ? ` (${g.paths.slice(0, 3).join(', ')}${g.count > 3 ? ', …' : ''})` : '';
    return `${g.count} ${what}: ${why[g.reason]}${example}`;
  });
}

/** Returns per-split, per-class counts and the warnings they call for. */
export function summarize(ds: Dataset, skipped: Skipped[] = ds.skipped): DatasetSummary {
  const counts = { train: countByClass(ds.train), valid: countByClass(ds.valid), test: countByClass(ds.test) };
  const warnings: string[] = [];
  const train = ds.vocab.map((c) => [c, counts.train[c] ?? 0] as const).sort((a, b) => b[1] - a[1]);
  const [big, small] = [train[0], train[train.length - 1]];
  if (big && small && small[1] > 0 && big[1] / small[1] > IMBALANCE_RATIO) {
    warnings.push(`classes are imbalanced: '${big[0]}' has ${big[1]} training images, '${small[0]}' ${small[1]} ` +
      `(${(big[1] / small[1]).toFixed(1)}×); add images of the small classes, or make up for it in training (--balance weights or sampler)`);
  }
  for (const [c, n] of train) {
    if (n > 0 && n < MIN_TRAIN_IMAGES) {
      warnings.push(`class '${c}' has only ${n} training image${n === 1 ? '' : 's'}; a class needs about ${MIN_TRAIN_IMAGES} or more to be learned`);
    }
  }
  if (ds.valid.length === 0) {
    warnings.push('no validation images: losses and error rate on held-out images cannot be measured (hold a share out with --valid-pct, or add a valid/ folder)');
  } else {
    const missing = ds.vocab.filter((c) => !counts.valid[c]);
    if (missing.length > 0) warnings.push(`no validation image for ${missing.map((c) => `'${c}'`).join(', ')}: its error cannot be measured`);
  }
  if (skipped.length > 0) warnings.push(`${skipped.length} file${skipped.length === 1 ? '' : 's'} skipped (listed with reasons)`);
  return { vocab: ds.vocab, counts, warnings, skipped, ignored: ds.ignored, passedOver: ds.passedOver ?? [], layout: ds.layout ?? 'class folders' };
}

/** Returns the summary as a table with one row per class, then the warnings and skipped files. */
export function formatSummary(s: DatasetSummary): string {
  const splits = (['train', 'valid', 'test'] as const).filter((k) => Object.keys(s.counts[k]).length > 0 || k !== 'test');
  const width = Math.max(5, ...s.vocab.map((c) => c.length));
  const lines = [['class'.padEnd(width), ...splits.map((k) => k.padStart(6))].join('  ')];
  for (const c of s.vocab) lines.push([c.padEnd(width), ...splits.map((k) => String(s.counts[k][c] ?? 0).padStart(6))].join('  '));
  const total = (k: SplitName): number => Object.values(s.counts[k]).reduce((a, b) => a + b, 0);
  lines.push(['total'.padEnd(width), ...splits.map((k) => String(total(k)).padStart(6))].join('  '));
  for (const w of s.warnings) lines.push(`warning: ${w}`);
  for (const p of passedOverLines(s.passedOver)) lines.push(`passed over: ${p}`);
  for (const k of s.skipped) lines.push(`skipped: ${k.path} (${k.reason}: ${k.detail})`);
  return lines.join('\n');
}
