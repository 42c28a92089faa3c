// The loader: seeded shuffling, batches of presized items cropped to squares, augmented and
// normalised on tensors; the next batches' files decode in sharp's thread pool while the
// current batch trains.
import { performance } from 'node:perf_hooks';
import { tensor, type Tensor, type Device } from '../torch/index.js';
import { seededRandom } from './random.js';
import { drawAugParams, identityParams, AUG_DEFAULTS, IMAGENET_STATS, type AugOptions, type Stats } from './augment.js';
import { cropSquares, centreOffsets, toModelInput, type EvalTransform } from './transform.js';
import { balancedDraw } from './balance.js';
import { itemPixels, type PresizedItem, type PresizedSet } from './presize.js';
import type { RawImage } from './decode.js';
import type { Skipped } from './errors.js';

import { DEFAULT_BS, DEFAULT_SIZE, DEFAULT_SEED } from './defaults.js';

export { DEFAULT_BS, DEFAULT_SIZE } from './defaults.js';

/** Normalised images [B, 3, size, size] (float32) and class indices [B] (int64); the consumer disposes them. */
export interface ImageBatch {
  x: Tensor;
  y: Tensor;
  /** The batch's items, as indices into the loader's `items`. */
  items: number[];
}

export interface LoaderOptions {
  bs?: number;
  /** Training: shuffled, last partial batch dropped, random crops and augmentation. */
  train?: boolean;
  shuffle?: boolean;
  dropLast?: boolean;
  /** Final size of the square images. */
  size?: number;
  /** Augmentation for training (fastai's aug_transforms by default); false for none. */
  aug?: Partial<AugOptions> | false;
  stats?: Stats;
  device?: Device;
  /** Batches whose files are decoding ahead (when items are not kept in memory). Default 2. */
  prefetch?: number;
  seed?: number;
  /** Training draws its items with replacement so that every class comes equally often (see balancedDraw). */
  balancedSampler?: boolean;
}

/**
 * The part of each epoch's item order one process takes when several train together (see
 * src/distributed/sampler.ts). Every process sees the same order and takes its own part.
 */
export interface OrderShard {
  /** Returns this process's items of an epoch's order. */
  take(order: readonly number[]): number[];
  /** How many items it takes from an order of n. */
  count(n: number): number;
  /** Mixed into each batch's augmentation seed, so that the processes' batches are augmented differently (0: as one process). */
  readonly seedSalt: number;
}

/** Time spent preparing batches while the consumer waited, for the last epoch. */
export interface LoaderTiming {
  batches: number;
  waitMs: number;
}

/**
 * Returns `t` copied to `device` through pinned memory, the copy queued on the GPU's stream so
 * this thread goes on (PyTorch's DataLoader pin_memory=True with .to(device, non_blocking=True));
 * libtorch's pinned-memory allocator keeps the buffer until the copy has run. Frees `t`.
 */
function toDeviceAsync(t: Tensor, device: Device): Tensor {
  const pinned = t.pinMemory();
  const out = pinned.to({ device, nonBlocking: true });
  pinned.dispose();
  t.dispose();
  return out;
}

// Seeds of successive epochs: far apart in mulberry32's sequence space.
const epochSeed = (seed: number, epoch: number): number => (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0;

/** Batches of one split; iterating it runs one epoch (the n-th iteration is epoch n). */
export class ImageLoader implements AsyncIterable<ImageBatch> {
  readonly bs: number;
  readonly train: boolean;
  /** The size of the images it yields; progressive resizing (see ProgressiveResize) changes it between epochs. */
  size: number;
  /** Training augmentation (null: none); progressive resizing scales it with the size. */
  aug: AugOptions | null;
  readonly timing: LoaderTiming = { batches: 0, waitMs: 0 };
  /** This process's part of each epoch (distributed training), or null for all of it. */
  shard: OrderShard | null = null;
  #epoch = 0;
  #startBatch = 0;
  #bad = new Set<number>();

  /** `skipped` is shared with the DataLoaders: files that fail when decoded again are added to it. */
  constructor(readonly set: PresizedSet, readonly vocab: readonly string[], readonly skipped: Skipped[], readonly o: LoaderOptions = {}) {
    this.bs = o.bs ?? DEFAULT_BS;
    this.train = o.train ?? false;
    this.size = o.size ?? DEFAULT_SIZE;
    this.aug = !this.train || o.aug === false ? null : { ...AUG_DEFAULTS, ...(o.aug ?? {}) };
  }

  get items(): readonly PresizedItem[] { return this.set.items; }

  /** The files of the items an epoch yields, in item order (those that failed to decode are gone). */
  get paths(): string[] { return this.set.items.filter((_, i) => !this.#bad.has(i)).map((it) => it.path); }

  /** How this loader makes an evaluation input (presizing, the centre item square, size, statistics): what predict must repeat. */
  get evalTransform(): EvalTransform {
    const { itemSize, method } = this.set;
    return { itemSize, method, cropSize: itemSize, size: this.size, stats: this.o.stats ?? IMAGENET_STATS };
  }
  get shuffle(): boolean { return this.o.shuffle ?? this.train; }
  /** Whether an item gives the same input every epoch: always when evaluating; training, without augmentation and with square items (no random crop). */
  get deterministic(): boolean { return !this.train || (this.aug === null && this.set.items.every((it) => it.width === it.height)); }
  get dropLast(): boolean { return this.o.dropLast ?? this.train; }

  /** Number of batches in an epoch. */
  get length(): number {
    // Sharded, the files that failed stay in the order (and their batch is one smaller), so that
    // every process keeps the same number of batches.
    const n = this.shard ? this.shard.count(this.set.items.length) : this.set.items.length - this.#bad.size;
    return this.dropLast ? Math.floor(n / this.bs) : Math.ceil(n / this.bs);
  }

  [Symbol.asyncIterator](): AsyncIterator<ImageBatch> {
    const from = this.#startBatch;
    this.#startBatch = 0;
    return this.epoch(this.#epoch++, from);
  }

  /** Epochs iterated so far: the next iteration runs epoch `epochsStarted` (0-based). */
  get epochsStarted(): number { return this.#epoch; }

  /** Makes the next iteration run epoch `epoch` from its batch `batch` on, as if the batches before had been taken: how a resumed fit continues. */
  resumeAt(epoch: number, batch = 0): void {
    this.#epoch = epoch;
    this.#startBatch = batch;
  }

  /**
   * Returns the batches of epoch `e` (0-based) from batch `from` on, without moving the loader's
   * own epoch count. The order comes from the epoch's seed, each batch's crops and augmentation
   * from its own, so a batch is the same whether the ones before it were taken or not.
   */
  async *epoch(e: number, from = 0): AsyncGenerator<ImageBatch> {
    const seed = epochSeed(this.o.seed ?? DEFAULT_SEED, e);
    const rand = seededRandom(seed);
    let order = this.set.items.map((_, i) => i).filter((i) => this.shard !== null || !this.#bad.has(i));
    if (this.o.balancedSampler && this.train) {
      const labels = order.map((i) => this.set.items[i].label);
      order = balancedDraw(labels, order.length, rand).map((k) => order[k]);
    } else if (this.shuffle) {
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
    }
    if (this.shard) order = this.shard.take(order);
    const batches: number[][] = [];
    for (let s = 0; s < order.length; s += this.bs) {
      if (this.dropLast && s + this.bs > order.length) break;
      batches.push(order.slice(s, s + this.bs));
    }
    const batchSeeds = batches.map((_, k) => (epochSeed(seed, k) ^ (this.shard?.seedSalt ?? 0)) >>> 0);
    batches.splice(0, from);
    batchSeeds.splice(0, from);
    const ahead = Math.max(1, this.o.prefetch ?? 2);
    const fetch = (k: number): Promise<(RawImage | Skipped)[]> =>
      Promise.all(batches[k].map((i) => itemPixels(this.set.items[i], this.set)));
    const pending = batches.slice(0, ahead).map((_, k) => fetch(k));
    this.timing.batches = 0;
    this.timing.waitMs = 0;
    for (let k = 0; k < batches.length; k++) {
      const start = performance.now();
      const pixels = await (pending.shift() as Promise<(RawImage | Skipped)[]>);
      if (k + ahead < batches.length) pending.push(fetch(k + ahead));
      const batch = this.#collate(batches[k], pixels, seededRandom(batchSeeds[k]));
      this.timing.waitMs += performance.now() - start;
      this.timing.batches++;
      if (batch) yield batch;
    }
  }

  // Crops each item to the item-size square (random when training, centre otherwise), stacks
  // them as uint8, and augments the whole batch in one resample (none but the resize when evaluating).
  #collate(indices: number[], pixels: (RawImage | Skipped)[], rand: () => number): ImageBatch | null {
    const s = this.set.itemSize;
    const good: number[] = [];
    const images: RawImage[] = [];
    pixels.forEach((p, j) => {
      if ('data' in p) {
        good.push(indices[j]);
        images.push(p);
      } else {
        this.#bad.add(indices[j]);
        this.skipped.push(p);
      }
    });
    if (images.length === 0) return null;
    const n = images.length;
    // Training crops anywhere in the item, evaluation at its centre.
    const at = (img: RawImage): [number, number] => (this.train
      ? [Math.floor(rand() * (Math.max(0, img.height - s) + 1)), Math.floor(rand() * (Math.max(0, img.width - s) + 1))]
      : centreOffsets(img, s));
    const buf = cropSquares(images, s, at);
    const params = this.aug ? drawAugParams(n, rand, this.aug) : identityParams(n);
    const device = this.o.device;
    const gpu = device !== undefined && device !== 'cpu';
    const u8 = tensor(buf, { shape: [n, 3, s, s] });
    const onDevice = gpu ? toDeviceAsync(u8, device) : u8;
    const x = toModelInput(onDevice, { size: this.size, stats: this.o.stats ?? IMAGENET_STATS }, params);
    onDevice.dispose();
    const labels = tensor(BigInt64Array.from(good, (i) => BigInt(this.set.items[i].label)), { shape: [n] });
    const y = gpu ? toDeviceAsync(labels, device) : labels;
    return { x, y, items: good };
  }
}
