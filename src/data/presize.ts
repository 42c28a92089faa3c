// Presizing: every image decoded and resized once to the item size and kept as uint8 in memory
// when the set fits, so each epoch only crops and augments tensors; otherwise items are decoded
// again when their batch comes (the loader does that ahead of time).
import os from 'node:os';
import { DEFAULT_ITEM_SIZE, MAX_ASPECT } from './defaults.js';
import { decodeImage, probeImage, DEFAULT_MAX_PIXELS, type RawImage, type ResizeMethod } from './decode.js';
import type { Item } from './sources.js';
import type { Skipped } from './errors.js';
import { fingerprint, type Fingerprint } from './fingerprint.js';

/** Share of the machine's memory presized items may take before they are decoded per batch instead. */
export const DEFAULT_CACHE_SHARE = 0.5;

export interface PresizeOptions {
  itemSize?: number;
  method?: ResizeMethod;
  maxPixels?: number;
  /** Most bytes the items may take in memory; default half the machine's memory. */
  cacheBytes?: number;
  /** Files decoded at once (in sharp's thread pool); default twice the cores. */
  concurrency?: number;
  /** Called as files finish, with the count done and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** An item ready to batch: its class index and, when cached, its presized pixels. */
export interface PresizedItem {
  path: string;
  label: number;
  /** Upright size of the presized image (crop keeps the shorter side at itemSize). */
  height: number;
  width: number;
  /** Channels-first RGB, or null when the set is too large to keep and is decoded per batch. */
  data: Uint8Array | null;
  /** Exact and perceptual hashes of the presized pixels, taken when they were decoded here (cached sets). */
  fingerprint?: Fingerprint;
}

export interface PresizedSet {
  items: PresizedItem[];
  skipped: Skipped[];
  cached: boolean;
  itemSize: number;
  method: ResizeMethod;
  maxPixels: number;
}

/** Returns fn over items with at most `limit` running at once, results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** The presized height and width of an upright h×w image. */
export function presizedShape(h: number, w: number, size: number, method: ResizeMethod): [number, number] {
  if (method !== 'crop') return [size, size];
  const long = (a: number, b: number): number => Math.min(size * MAX_ASPECT, Math.max(size, Math.round((a * size) / b)));
  return h <= w ? [size, long(w, h)] : [long(h, w), size];
}

/**
 * Returns the items presized (decoded and resized once, in memory when they fit within
 * cacheBytes) with the files that could not be used and why; `vocab` gives class indices.
 */
export async function presize(items: Item[], vocab: readonly string[], o: PresizeOptions = {}): Promise<PresizedSet> {
  const itemSize = o.itemSize ?? DEFAULT_ITEM_SIZE;
  const method = o.method ?? 'crop';
  const maxPixels = o.maxPixels ?? DEFAULT_MAX_PIXELS;
  const concurrency = o.concurrency ?? 2 * os.availableParallelism();
  const cacheBytes = o.cacheBytes ?? DEFAULT_CACHE_SHARE * os.totalmem();
  const index = new Map(vocab.map((c, i) => [c, i]));
  const skipped: Skipped[] = [];
  let done = 0;
  const tick = (): void => o.onProgress?.(++done, items.length);

  // Headers first: cheap, and they tell whether the decoded set fits in memory.
  const probes = await mapLimit(items, concurrency, (it) => probeImage(it.path, { maxPixels }));
  let bytes = 0;
  const usable: PresizedItem[] = [];
  probes.forEach((p, i) => {
    if (!p.ok) {
      skipped.push(p.skipped);
      return;
    }
    const [height, width] = presizedShape(p.height, p.width, itemSize, method);
    bytes += 3 * height * width;
    usable.push({ path: items[i].path, label: index.get(items[i].label) ?? -1, height, width, data: null });
  });
  const cached = bytes <= cacheBytes;
  if (!cached) {
    for (let i = 0; i < items.length; i++) tick();
    return { items: usable, skipped, cached, itemSize, method, maxPixels };
  }
  const decoded = await mapLimit(usable, concurrency, async (it) => {
    const r = await decodeImage(it.path, { size: itemSize, method, maxPixels });
    tick();
    return r;
  });
  const kept: PresizedItem[] = [];
  decoded.forEach((r, i) => {
    if (!r.ok) {
      skipped.push(r.skipped);
    } else {
      kept.push({ ...usable[i], height: r.image.height, width: r.image.width, data: r.image.data, fingerprint: fingerprint(r.image) });
    }
  });
  return { items: kept, skipped, cached, itemSize, method, maxPixels };
}

/** Returns an item's presized pixels: the cached ones, or a fresh decode (null when the file went bad since). */
export async function itemPixels(item: PresizedItem, set: Pick<PresizedSet, 'itemSize' | 'method' | 'maxPixels'>): Promise<RawImage | Skipped> {
  if (item.data) return { data: item.data, height: item.height, width: item.width };
  const r = await decodeImage(item.path, { size: set.itemSize, method: set.method, maxPixels: set.maxPixels });
  return r.ok ? r.image : r.skipped;
}
