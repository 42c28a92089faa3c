// Generated image folders for tests, benchmarks and examples: class folders of pattern images
// (stripes, disc, checkerboard) of varied sizes, written with sharp. No downloads.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { seededRandom } from './random.js';
import { SYNTHETIC_CLASSES } from './synthetic.js';
import { mapLimit } from './presize.js';

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif';
export const FORMAT_EXTENSIONS: Record<ImageFormat, string> = {
  jpeg: '.jpg', png: '.png', webp: '.webp', gif: '.gif', tiff: '.tif', avif: '.avif',
};

/**
 * The patterns a generated folder's classes draw, in order: the four of SYNTHETIC_CLASSES, then
 * six more for folders of up to ten distinct classes (a larger count repeats them, numbered).
 */
export const FOLDER_PATTERNS = [...SYNTHETIC_CLASSES, 'diagonal', 'antidiagonal', 'ring', 'square', 'cross', 'dots'] as const;

/** Returns interleaved RGB pixels of class `cls` (an index into FOLDER_PATTERNS) drawn with `rand`. */
export function patternPixels(cls: number, width: number, height: number, rand: () => number): Uint8Array {
  const period = Math.max(2, Math.round(Math.min(width, height) / (4 + rand() * 4)));
  const phase = Math.floor(rand() * period * 2);
  const fg = [rand(), rand(), rand()].map((v) => v * 255);
  const bg = fg.map((v) => (v + 90 + rand() * 75) % 256);
  const r = Math.min(width, height) / 3;
  const [cx, cy] = [width / 2, height / 2];
  const stripe = (t: number): boolean => Math.floor((t + phase) / period) % 2 === 0;
  const on = (x: number, y: number): boolean => {
    switch (cls) {
      case 0: return stripe(y);
      case 1: return stripe(x);
      case 2: return (x - cx) ** 2 + (y - cy) ** 2 < r * r;
      case 3: return (Math.floor((x + phase) / period) + Math.floor((y + phase) / period)) % 2 === 0;
      case 4: return stripe((x + y) / Math.SQRT2);
      case 5: return stripe((x - y + height) / Math.SQRT2);
      case 6: {
        const d = Math.sqrt((x - cx) ** 2 + (y - cy) ** 2);
        return d < r && d > r * 0.6;
      }
      case 7: return Math.abs(x - cx) < r * 0.9 && Math.abs(y - cy) < r * 0.9;
      case 8: return (Math.abs(x - cx) < r / 4 || Math.abs(y - cy) < r / 4) && Math.abs(x - cx) < r * 1.2 && Math.abs(y - cy) < r * 1.2;
      default: {
        const [u, v] = [((x + phase) % period) - period / 2, ((y + phase) % period) - period / 2];
        return u * u + v * v < (period / 3) ** 2;
      }
    }
  };
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const px = on(x, y) ? fg : bg;
      const o = 3 * (y * width + x);
      out[o] = px[0];
      out[o + 1] = px[1];
      out[o + 2] = px[2];
    }
  }
  return out;
}

export interface SyntheticFolderOptions {
  /** Images per class. */
  perClass?: number;
  numClasses?: number;
  /** Side lengths are drawn from [minSide, maxSide]. */
  minSide?: number;
  maxSide?: number;
  format?: ImageFormat;
  seed?: number;
}

/** Writes `root/<class>/<class>_<i>.<ext>` pattern images and returns their paths. */
export async function writeSyntheticFolder(root: string, o: SyntheticFolderOptions = {}): Promise<string[]> {
  const { perClass = 20, numClasses = SYNTHETIC_CLASSES.length, minSide = 64, maxSide = 96, format = 'jpeg', seed = 0 } = o;
  const rand = seededRandom(seed);
  const jobs: { file: string; cls: number; w: number; h: number; seed: number }[] = [];
  for (let c = 0; c < numClasses; c++) {
    const name = FOLDER_PATTERNS[c % FOLDER_PATTERNS.length] + (c >= FOLDER_PATTERNS.length ? `_${c}` : '');
    await fs.mkdir(path.join(root, name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const side = (): number => Math.round(minSide + rand() * (maxSide - minSide));
      jobs.push({ file: path.join(root, name, `${name}_${i}${FORMAT_EXTENSIONS[format]}`), cls: c % FOLDER_PATTERNS.length, w: side(), h: side(), seed: Math.floor(rand() * 2 ** 31) });
    }
  }
  await mapLimit(jobs, 8, async (j) => {
    const px = patternPixels(j.cls, j.w, j.h, seededRandom(j.seed));
    await sharp(px, { raw: { width: j.w, height: j.h, channels: 3 } }).toFormat(format).toFile(j.file);
  });
  return jobs.map((j) => j.file);
}
