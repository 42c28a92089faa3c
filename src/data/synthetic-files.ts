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

/** Returns interleaved RGB pixels of class `cls` (an index into SYNTHETIC_CLASSES) drawn with `rand`. */
export function patternPixels(cls: number, width: number, height: number, rand: () => number): Uint8Array {
  const period = Math.max(2, Math.round(Math.min(width, height) / (4 + rand() * 4)));
  const phase = Math.floor(rand() * period * 2);
  const fg = [rand(), rand(), rand()].map((v) => v * 255);
  const bg = fg.map((v) => (v + 90 + rand() * 75) % 256);
  const r = Math.min(width, height) / 3;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const on = cls === 0 ? Math.floor((y + phase) / period) % 2 === 0
        : cls === 1 ? Math.floor((x + phase) / period) % 2 === 0
          : cls === 2 ? (x - width / 2) ** 2 + (y - height / 2) ** 2 < r * r
            : (Math.floor((x + phase) / period) + Math.floor((y + phase) / period)) % 2 === 0;
      const px = on ? fg : bg;
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
    const name = SYNTHETIC_CLASSES[c % SYNTHETIC_CLASSES.length] + (c >= SYNTHETIC_CLASSES.length ? `_${c}` : '');
    await fs.mkdir(path.join(root, name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const side = (): number => Math.round(minSide + rand() * (maxSide - minSide));
      jobs.push({ file: path.join(root, name, `${name}_${i}${FORMAT_EXTENSIONS[format]}`), cls: c % SYNTHETIC_CLASSES.length, w: side(), h: side(), seed: Math.floor(rand() * 2 ** 31) });
    }
  }
  await mapLimit(jobs, 8, async (j) => {
    const px = patternPixels(j.cls, j.w, j.h, seededRandom(j.seed));
    await sharp(px, { raw: { width: j.w, height: j.h, channels: 3 } }).toFormat(format).toFile(j.file);
  });
  return jobs.map((j) => j.file);
}
