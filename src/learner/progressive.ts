// Progressive resizing (fastai's lesson-era trick; "progressive learning" in EfficientNetV2, Tan &
// Le 2021, §4): the first epochs train on small images with weak augmentation, the image size
// and the augmentation's magnitude growing linearly to the full ones by the last epoch.
// Validation stays at the full size throughout.
import type { AugOptions } from '../data/augment.js';
import { scaledAug } from '../data/augment.js';
import type { Callback } from './events.js';
import type { Learner } from './learner.js';

/** Training sizes are rounded to this multiple, which the convolutions' strides divide. */
export const PROGRESSIVE_MULTIPLE = 16;
/** The augmentation magnitude at the smallest size (EfficientNetV2-S: RandAugment 5 of 15). */
export const PROGRESSIVE_MIN_MAGNITUDE = 1 / 3;

/**
 * The training size of each of `epochs` epochs: from `min` at the first to `max` at the last,
 * linearly, each rounded to the nearest multiple of PROGRESSIVE_MULTIPLE (the last is `max`
 * itself). One epoch trains at `max`. Throws a RangeError unless 0 < min ≤ max and epochs ≥ 1.
 */
export function progressiveSizes(min: number, max: number, epochs: number): number[] {
  if (!(min > 0 && min <= max) || !Number.isInteger(epochs) || epochs < 1) {
    throw new RangeError(`progressive resizing needs 0 < MIN ≤ MAX and at least one epoch (got ${min}:${max} over ${epochs})`);
  }
  return Array.from({ length: epochs }, (_, e) => {
    if (e === epochs - 1) return max;
    const size = min + ((max - min) * e) / (epochs - 1);
    return Math.min(max, Math.max(PROGRESSIVE_MULTIPLE, Math.round(size / PROGRESSIVE_MULTIPLE) * PROGRESSIVE_MULTIPLE));
  });
}

/** The augmentation magnitude (0–1) at `size` on the way from `min` to `max`. */
export function progressiveMagnitude(size: number, min: number, max: number): number {
  const t = max === min ? 1 : (size - min) / (max - min);
  return PROGRESSIVE_MIN_MAGNITUDE + (1 - PROGRESSIVE_MIN_MAGNITUDE) * Math.min(1, Math.max(0, t));
}

/** What progressive resizing changes on a training loader between epochs (ImageLoader has both). */
export interface ResizableLoader {
  size: number;
  aug: AugOptions | null;
}

/**
 * Before each training epoch, sets the loader's size and augmentation for that epoch of the run:
 * epoch k of `epochs` (k = epochs already in the learner's history, so a resumed run goes on
 * where it was) takes progressiveSizes(min, max, epochs)[k] and the augmentation scaled by
 * progressiveMagnitude. Epochs past the schedule train at `max`.
 */
export class ProgressiveResize implements Callback {
  readonly sizes: number[];
  readonly #fullAug: AugOptions | null;

  constructor(readonly loader: ResizableLoader, readonly min: number, readonly max: number, readonly epochs: number) {
    this.sizes = progressiveSizes(min, max, epochs);
    this.#fullAug = loader.aug;
  }

  /** The size epoch `k` of the run trains at. */
  sizeAt(k: number): number { return this.sizes[Math.min(k, this.sizes.length - 1)]; }

  beforeEpoch(learn: Learner): void {
    if (learn.recorder.silent) return; // lr_find's batches: at the loader's size as it stands
    const size = this.sizeAt(learn.history.length);
    this.loader.size = size;
    this.loader.aug = this.#fullAug && scaledAug(this.#fullAug, progressiveMagnitude(size, this.min, this.max));
  }
}
