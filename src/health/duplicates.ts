// Duplicates and leaks: images that are the same picture (identical presized pixels, or a
// perceptual hash within PHASH_MAX_DISTANCE bits and the same mean colour: resized, re-encoded,
// lightly edited copies),
// grouped, and each group called what it does to a run — copies inside one class and split,
// the same picture under two labels, or a validation/test image whose copy is in training.
import { samePicture, type Fingerprint } from '../data/fingerprint.js';

/**
 * The most bits two 64-bit perceptual hashes may differ in and still be called the same picture.
 * Resizing and re-encoding move a DCT hash by 0–4 bits; unrelated images differ by about 32.
 */
export const PHASH_MAX_DISTANCE = 6;

export type Split = 'train' | 'valid' | 'test';

/** An image as the check sees it. */
export interface FingerprintedItem {
  path: string;
  label: string;
  split: Split;
  fingerprint: Fingerprint;
}

/**
 * What a group of copies does: 'leak' (a validation or test image with a copy in training:
 * its error is measured on a picture the model saw), 'conflicting labels' (the same picture
 * under two classes), or 'copies' (the same picture twice in one class and split).
 */
export type DuplicateKind = 'leak' | 'conflicting labels' | 'copies';

export interface DuplicateGroup {
  kinds: DuplicateKind[];
  /** Whether every pair is pixel-identical (else some are near copies). */
  exact: boolean;
  items: { path: string; label: string; split: Split }[];
}

/** Returns the groups of copies among `items` (path order inside each group; groups by their first path). */
export function findDuplicates(items: readonly FingerprintedItem[], maxDistance = PHASH_MAX_DISTANCE): DuplicateGroup[] {
  const parent = items.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  const union = (a: number, b: number): void => { parent[find(a)] = find(b); };
  const byExact = new Map<string, number>();
  items.forEach((it, i) => {
    const j = byExact.get(it.fingerprint.exact);
    if (j !== undefined) union(i, j);
    else byExact.set(it.fingerprint.exact, i);
  });
  for (let i = 0; i < items.length; i++) {
    for (let j = i + 1; j < items.length; j++) {
      if (samePicture(items[i].fingerprint, items[j].fingerprint, maxDistance)) union(i, j);
    }
  }
  const groups = new Map<number, number[]>();
  items.forEach((_, i) => groups.set(find(i), [...(groups.get(find(i)) ?? []), i]));
  const out: DuplicateGroup[] = [];
  for (const members of groups.values()) {
    if (members.length < 2) continue;
    const its = members.map((i) => items[i]).sort((a, b) => (a.path < b.path ? -1 : 1));
    const kinds: DuplicateKind[] = [];
    if (its.some((a) => a.split === 'train') && its.some((a) => a.split !== 'train')) kinds.push('leak');
    if (new Set(its.map((a) => a.label)).size > 1) kinds.push('conflicting labels');
    if (kinds.length === 0) kinds.push('copies');
    out.push({ kinds, exact: new Set(its.map((a) => a.fingerprint.exact)).size === 1, items: its.map(({ path, label, split }) => ({ path, label, split })) });
  }
  return out.sort((a, b) => (a.items[0].path < b.items[0].path ? -1 : 1));
}

/**
 * Returns the paths --dedupe leaves out: in each group, every training copy after the first (path
 * order) and every validation or test copy of a picture that is also in training.
 */
export function dedupeDrops(groups: readonly DuplicateGroup[]): Set<string> {
  const drop = new Set<string>();
  for (const g of groups) {
    const train = g.items.filter((it) => it.split === 'train');
    for (const it of train.slice(1)) drop.add(it.path);
    if (train.length > 0) for (const it of g.items) if (it.split !== 'train') drop.add(it.path);
  }
  return drop;
}

/** Returns one group as a line: its kinds, whether near copies, and each image with its split and label. */
export function groupLine(g: DuplicateGroup): string {
  return `${g.kinds.join(', ')}${g.exact ? '' : ' (near copies)'}: ${g.items.map((it) => `${it.path} [${it.split}, ${it.label}]`).join('  ')}`;
}

/** Returns the sentences the data summary prints about the groups. */
export function duplicateLines(groups: readonly DuplicateGroup[]): string[] {
  const count = (k: DuplicateKind): number => groups.filter((g) => g.kinds.includes(k)).length;
  const lines: string[] = [];
  const leaks = groups.flatMap((g) => (g.kinds.includes('leak') ? g.items.filter((it) => it.split !== 'train') : []));
  if (leaks.length) {
    lines.push(`${leaks.length} validation or test image${leaks.length === 1 ? ' has' : 's have'} a copy in training (leaks): ` +
      'their error is measured on pictures the model saw; --dedupe leaves them out');
  }
  if (count('conflicting labels')) lines.push(`${count('conflicting labels')} picture${count('conflicting labels') === 1 ? ' is' : 's are'} labelled as two classes: fix the labels or remove them`);
  if (count('copies')) lines.push(`${count('copies')} group${count('copies') === 1 ? '' : 's'} of copies inside a class: --dedupe keeps one of each`);
  return lines;
}

/** Returns the items of loaders that kept their pixels (and so their fingerprints), by split; null when a split was decoded per batch. */
export function fingerprintedItems(dls: { train: LoaderItems; valid: LoaderItems; test: LoaderItems | null; vocab: readonly string[] }): FingerprintedItem[] | null {
  const out: FingerprintedItem[] = [];
  for (const [split, loader] of [['train', dls.train], ['valid', dls.valid], ['test', dls.test]] as const) {
    for (const it of loader?.items ?? []) {
      if (!it.fingerprint) return null;
      out.push({ path: it.path, label: dls.vocab[it.label], split, fingerprint: it.fingerprint });
    }
  }
  return out;
}

interface LoaderItems {
  readonly items: readonly { path: string; label: number; fingerprint?: Fingerprint }[];
}
