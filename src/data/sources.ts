// Where the images and their labels come from: class folders (pre-split or not) or a CSV, and the
// seeded, stratified train/valid split.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { seededRandom } from './random.js';
import { DataError, type Skipped } from './errors.js';

import { DEFAULT_VALID_PCT, DEFAULT_SEED } from './defaults.js';

export { DEFAULT_VALID_PCT, DEFAULT_SEED } from './defaults.js';

/**
 * Which folder names the class: 'top' (the first folder under the root, so files nested deeper
 * count for it, as Keras does) or 'parent' (the file's own folder, fastai's parent_label).
 */
export type LabelRule = 'top' | 'parent';

/** One image and its class name. */
export interface Item {
  path: string;
  label: string;
}

export type SplitName = 'train' | 'valid' | 'test';

/** Labelled images split for training; `vocab` is the sorted class names. */
export interface Dataset {
  root: string;
  vocab: string[];
  train: Item[];
  valid: Item[];
  test: Item[];
  /** Where each class came from (its folder, or the CSV), for error messages. */
  origin: Record<string, string>;
  /** Files left out already (a CSV row naming a missing file…). */
  skipped: Skipped[];
  /** How many files and folders were passed over (the total of `passedOver`). */
  ignored: number;
  /** What was passed over without being read, grouped by reason. */
  passedOver?: PassedOver[];
  /** The layout found: 'class folders', 'train/valid/test', 'train/test (valid split from train)', 'CSV'… */
  layout?: string;
}

/** Why a file or folder was passed over without being read. */
export type PassReason = 'hidden' | 'not an image' | 'unsupported format' | 'outside any class folder' | 'visiontune output'
  | 'outside the data folder' | 'unreadable';

/** Files or folders passed over for one reason (and one extension, for formats). */
export interface PassedOver {
  reason: PassReason;
  /** What they are, for a sentence: '.bmp files', 'hidden files', 'folders visiontune wrote'. */
  what: string;
  count: number;
  paths: string[];
}

/** Returns the sorted class names: `names` and every item's label. */
export function vocabOf(names: string[], ...lists: Item[][]): string[] {
  const all = new Set(names);
  for (const list of lists) for (const it of list) all.add(it.label);
  return [...all].sort();
}

/**
 * Returns the items split per class: round(n·validPct) of each class to valid (at least one
 * when the class has two or more and validPct > 0, never all of it), chosen by a seeded shuffle
 * of the class's items in path order, so the split depends only on the files, not on how they
 * were listed.
 */
export function splitByValidPct(items: Item[], validPct: number, seed: number): { train: Item[]; valid: Item[] } {
  if (!(validPct >= 0 && validPct < 1)) throw new RangeError(`validPct must be in [0, 1), got ${validPct}`);
  const byClass = new Map<string, Item[]>();
  for (const it of [...items].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const list = byClass.get(it.label) ?? [];
    list.push(it);
    byClass.set(it.label, list);
  }
  const rand = seededRandom(seed);
  const train: Item[] = [];
  const valid: Item[] = [];
  for (const label of [...byClass.keys()].sort()) {
    const list = byClass.get(label) as Item[];
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [list[i], list[j]] = [list[j], list[i]];
    }
    const n = list.length;
    const nValid = validPct === 0 || n < 2 ? 0 : Math.min(n - 1, Math.max(1, Math.round(n * validPct)));
    valid.push(...list.slice(0, nValid));
    train.push(...list.slice(nValid));
  }
  return { train, valid };
}

export interface CsvOptions {
  /** The folder paths in the CSV are relative to; default the CSV's folder. */
  root?: string;
  /** Used when the CSV has no is_valid column. */
  validPct?: number;
  seed?: number;
}

/** Returns the rows of a CSV text (RFC 4180 quoting), blank lines dropped. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      if (row.some((x) => x.trim() !== '')) rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  row.push(cell);
  if (row.some((x) => x.trim() !== '')) rows.push(row);
  return rows;
}

const PATH_COLS = ['path', 'file', 'filename', 'fname', 'image', 'name'];
const LABEL_COLS = ['label', 'class', 'category', 'target'];
const VALID_COLS = ['is_valid', 'valid', 'is_validation'];

/** Returns the items a CSV of `path,label[,is_valid]` lists (a header row is optional). */
export async function csvDataset(csvPath: string, o: CsvOptions = {}): Promise<Dataset> {
  const abs = path.resolve(csvPath);
  let text: string;
  try {
    text = await fs.readFile(abs, 'utf8');
  } catch {
    throw new DataError('CSV file not found', abs, 'Give a CSV with one row per image: path,label[,is_valid]');
  }
  const rows = parseCsv(text.replace(/^\uFEFF/, ''));
  const head = rows[0]?.map((x) => x.trim().toLowerCase()) ?? [];
  const hasHeader = head.length > 0 && PATH_COLS.includes(head[0]);
  const col = (names: string[], fallback: number): number => {
    const i = hasHeader ? head.findIndex((h) => names.includes(h)) : -1;
    return i >= 0 ? i : hasHeader && names === VALID_COLS ? -1 : fallback;
  };
  const [pc, lc, vc] = [col(PATH_COLS, 0), col(LABEL_COLS, 1), col(VALID_COLS, 2)];
  const base = path.resolve(o.root ?? path.dirname(abs));
  const items: Item[] = [];
  const isValid: boolean[] = [];
  const skipped: Skipped[] = [];
  let withValid = vc >= 0;
  for (const r of rows.slice(hasHeader ? 1 : 0)) {
    const file = path.resolve(base, (r[pc] ?? '').trim());
    const label = (r[lc] ?? '').trim();
    if (label === '') {
      skipped.push({ path: file, reason: 'missing', detail: `row has no label in ${abs}` });
      continue;
    }
    try {
      await fs.access(file);
    } catch {
      skipped.push({ path: file, reason: 'missing', detail: `listed in ${abs} but not found` });
      continue;
    }
    items.push({ path: file, label });
    const v = (r[vc] ?? '').trim().toLowerCase();
    if (vc >= 0 && v === '') withValid = false;
    isValid.push(['1', 'true', 'yes', 't', 'y'].includes(v));
  }
  const origin: Record<string, string> = {};
  for (const it of items) origin[it.label] ??= abs;
  let train: Item[];
  let valid: Item[];
  if (withValid) {
    train = items.filter((_, i) => !isValid[i]);
    valid = items.filter((_, i) => isValid[i]);
  } else {
    ({ train, valid } = splitByValidPct(items, o.validPct ?? DEFAULT_VALID_PCT, o.seed ?? DEFAULT_SEED));
  }
  const ds: Dataset = { root: base, vocab: vocabOf([], items), train, valid, test: [], origin, skipped, ignored: 0, layout: 'CSV' };
  assertTrainable(ds, abs);
  return ds;
}

/** Throws a DataError unless the training split has images of at least two classes, and of every class. */
export function assertTrainable(ds: Dataset, where = ds.root): void {
  if (ds.train.length === 0) {
    const loose = ds.passedOver?.find((g) => g.reason === 'outside any class folder');
    throw new DataError('no usable image found', where, loose
      ? `${loose.count} image${loose.count === 1 ? ' lies' : 's lie'} outside any class folder (${loose.what.replace(/^images? /, '')}): ` +
        'move them into one folder per class (root/<class>/<image>.jpg)'
      : 'Put the images in one folder per class (root/<class>/<image>.jpg); readable formats: JPEG, PNG, WebP, GIF, TIFF, AVIF, BMP');
  }
  const counts = countByClass(ds.train);
  const missing = ds.vocab.filter((c) => !counts[c]);
  if (missing.length > 0) {
    const c = missing[0];
    const elsewhere = [...ds.valid, ...ds.test].some((it) => it.label === c);
    const others = missing.length > 1 ? ` (and ${missing.slice(1).map((m) => `'${m}'`).join(', ')})` : '';
    const near = ds.vocab.find((v) => v !== c && v.toLowerCase() === c.toLowerCase() && counts[v]);
    throw new DataError(elsewhere ? `class '${c}'${others} has validation or test images but no training image`
      : `class '${c}'${others} has no usable training image`, ds.origin[c] ?? where,
    near ? `Did you mean '${near}'? Class names are compared exactly, case included`
      : elsewhere ? 'Add training images of it, or remove it from the validation and test folders'
        : `Add images of it${ds.skipped.length > 0 ? ' (see the skipped files for why some were left out)' : ''}, or remove the class`);
  }
  if (ds.vocab.length < 2) {
    throw new DataError(`only one class found ('${ds.vocab[0]}')`, where,
      'A classifier needs two or more classes: give each class its own folder under the root');
  }
}

export function countByClass(items: Item[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const it of items) counts[it.label] = (counts[it.label] ?? 0) + 1;
  return counts;
}
