// Generated image sets for examples and tests: no downloads. Each class is a drawn pattern
// (stripes of one orientation, a disc, a checkerboard…) in random colours, at a random phase and
// with pixel noise, so a classifier has something real but learnable to find.
import { tensor, type Tensor } from '../torch/index.js';

import { seededRandom } from './random.js';

export { seededRandom } from './random.js';

export const SYNTHETIC_CLASSES = ['horizontal', 'vertical', 'disc', 'checker'] as const;

// Whether pixel (x, y) is "on" for a class with the given period and phase.
function pattern(cls: number, x: number, y: number, size: number, period: number, phase: number): boolean {
  switch (cls) {
    case 0: return Math.floor((y + phase) / period) % 2 === 0;
    case 1: return Math.floor((x + phase) / period) % 2 === 0;
    case 2: {
      const c = size / 2 + (phase - period) / 2;
      return (x - c) ** 2 + (y - c) ** 2 < (size / 3) ** 2;
    }
    default: return (Math.floor((x + phase) / period) + Math.floor((y + phase) / period)) % 2 === 0;
  }
}

export interface SyntheticBatch {
  /** [n, 3, size, size] float32 in [0, 1]. */
  images: Tensor;
  /** [n] int64 class indices. */
  labels: Tensor;
}

export interface SyntheticOptions {
  seed?: number;
  /** Patterns used, from the first; at most SYNTHETIC_CLASSES.length. */
  numClasses?: number;
  /** Uniform pixel noise amplitude. */
  noise?: number;
}

/** Returns n images of `size` px, classes cycling through the first `numClasses` patterns. */
export function syntheticImages(n: number, size: number, o: SyntheticOptions = {}): SyntheticBatch {
  const { seed = 0, numClasses = SYNTHETIC_CLASSES.length, noise = 0.15 } = o;
  const rand = seededRandom(seed);
  const pixels = new Float32Array(n * 3 * size * size);
  const labels: number[] = [];
  const plane = size * size;
  for (let i = 0; i < n; i++) {
    const cls = i % numClasses;
    labels.push(cls);
    const period = Math.max(2, Math.round(size / (4 + rand() * 4)));
    const phase = Math.floor(rand() * period * 2);
    const fg = [rand(), rand(), rand()];
    // The background is at least 0.35 away from the foreground in every channel (on the colour
    // circle), so no image is blank.
    const bg = fg.map((v) => (v + 0.35 + rand() * 0.3) % 1);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const on = pattern(cls, x, y, size, period, phase);
        for (let c = 0; c < 3; c++) {
          const v = (on ? fg[c] : bg[c]) + (rand() - 0.5) * 2 * noise;
          pixels[i * 3 * plane + c * plane + y * size + x] = Math.min(1, Math.max(0, v));
        }
      }
    }
  }
  return {
    images: tensor(pixels, { shape: [n, 3, size, size] }),
    labels: tensor(labels, { dtype: 'int64' }),
  };
}
