// Decoding one image file with sharp (libvips) into 8-bit sRGB, channels first, resized once
// (presizing); a file that cannot be used comes back as a Skipped with its reason, never a throw.
import os from 'node:os';
import { promises as fs } from 'node:fs';
import sharp, { type Metadata, type Sharp } from 'sharp';
import type { SkipReason, Skipped } from './errors.js';
import { sniff, magic, type Sniff } from './sniff.js';
import { BMP_HEAD_BYTES, decodeBmp, readBmpHeader } from './bmp.js';

// libuv's pool runs sharp's decodes; its default of 4 threads would cap a many-core machine.
// This only takes effect when set before the pool's first use, which is why it runs at import.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, os.availableParallelism()));

// libvips' operation cache would keep user files open and serve stale pixels if a file changes.
sharp.cache(false);

/** Images with more pixels than this (from the header) are skipped unless the limit is raised. */
export const DEFAULT_MAX_PIXELS = 100_000_000;
import { MAX_ASPECT } from './defaults.js';

export { DEFAULT_ITEM_SIZE } from './defaults.js';

/** Presizing interpolation: bilinear (antialiased when shrinking), as fastai's Resize uses. */
export const RESIZE_KERNEL = 'linear';

/**
 * How an image becomes an item: 'crop' keeps the aspect ratio with the shorter side at the item
 * size (the loader crops the square, randomly when training); 'squish' stretches to the square;
 * 'pad' fits inside the square and fills the rest by reflection.
 */
export type ResizeMethod = 'crop' | 'squish' | 'pad';

/** 8-bit RGB pixels, channels first: data[c·H·W + y·W + x]. */
export interface RawImage {
  data: Uint8Array;
  height: number;
  width: number;
}

export interface DecodeOptions {
  /** Resize to this item size (see ResizeMethod); full size when absent. */
  size?: number;
  method?: ResizeMethod;
  maxPixels?: number;
}

/** An image file's path, or the file's bytes (an upload, say); skips name a Buffer '<buffer>'. */
export type ImageInput = string | Buffer;

/** The name a skip gives an input: its path, or '<buffer>' for bytes. */
export const inputName = (input: ImageInput): string => (typeof input === 'string' ? input : '<buffer>');

export type DecodeResult = { ok: true; image: RawImage } | { ok: false; skipped: Skipped };
/** `bmp`: the content is a BMP, which decodeImage hands to its own decoder. */
export type ProbeResult = { ok: true; height: number; width: number; bmp?: boolean } | { ok: false; skipped: Skipped };

const skip = (path: string, reason: SkipReason, detail: string): { ok: false; skipped: Skipped } =>
  ({ ok: false, skipped: { path, reason, detail } });

// Why a file the decoder refused is unusable: its container says truncated or corrupt; the
// decoder's own message is kept as the detail.
async function reasonOf(input: ImageInput, e: unknown): Promise<{ ok: false; skipped: Skipped }> {
  const path = inputName(input);
  const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0].replace(/^Input (file|buffer) (has corrupt header|contains): /, '');
  if (/pixel limit/i.test(msg)) return skip(path, 'too large', msg);
  let found: Sniff;
  try {
    found = await sniff(input);
  } catch (err) {
    return skip(path, 'unreadable', (err as Error).message);
  }
  if (found.format === null) return skip(path, 'not an image', `not a JPEG, PNG, WebP, GIF, TIFF, AVIF or BMP file (${msg})`);
  if (found.truncated) return skip(path, 'truncated', `the ${found.format.toUpperCase()} data ends early (${msg})`);
  return skip(path, 'corrupt', `${found.format.toUpperCase()} file the decoder cannot read (${msg})`);
}

// Why a file cannot be opened at all, or null when it can; bytes only need to be there.
async function unopenable(input: ImageInput): Promise<{ ok: false; skipped: Skipped } | null> {
  if (typeof input !== 'string') return input.length === 0 ? skip(inputName(input), 'empty', 'the buffer has 0 bytes') : null;
  try {
    const st = await fs.stat(input);
    if (!st.isFile()) return skip(input, 'unreadable', 'not a regular file');
    if (st.size === 0) return skip(input, 'empty', 'the file has 0 bytes');
    await fs.access(input, fs.constants.R_OK);
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return skip(input, code === 'ENOENT' ? 'missing' : 'unreadable', (e as Error).message);
  }
}

// The first n bytes of the input (fewer when it is shorter).
async function head(input: ImageInput, n: number): Promise<Buffer> {
  if (typeof input !== 'string') return input.subarray(0, n);
  const fh = await fs.open(input, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

// The size check every header gets before any pixel is decoded.
function sized(path: string, width: number, height: number, maxPixels: number): ProbeResult {
  if (!(width > 0 && height > 0)) return skip(path, 'corrupt', 'the header gives no image size');
  if (width * height > maxPixels) {
    const mp = (n: number): string => `${(n / 1e6).toFixed(1)} MP`;
    return skip(path, 'too large', `${width}×${height} = ${mp(width * height)}, over the ${mp(maxPixels)} limit (raise maxPixels to read it)`);
  }
  return { ok: true, height, width };
}

/** Returns the image's upright size from its header alone, or why it cannot be used. */
export async function probeImage(input: ImageInput, o: { maxPixels?: number } = {}): Promise<ProbeResult> {
  const maxPixels = o.maxPixels ?? DEFAULT_MAX_PIXELS;
  const path = inputName(input);
  const refused = await unopenable(input);
  if (refused) return refused;
  const first = await head(input, BMP_HEAD_BYTES);
  // Only the formats listed are handed to a decoder, by their content: never SVG (librsvg would
  // fetch the files it names) or anything else libvips happens to read.
  if (magic(first) === null) return skip(path, 'not an image', 'its content is not JPEG, PNG, WebP, GIF, TIFF, AVIF or BMP');
  const bmp = readBmpHeader(first);
  if (bmp) {
    const r = sized(path, bmp.width, bmp.height, maxPixels);
    return r.ok ? { ...r, bmp: true } : r;
  }
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (e) {
    return reasonOf(input, e);
  }
  const turned = (meta.orientation ?? 1) >= 5; // EXIF orientations 5–8 swap width and height
  const [width, height] = [meta.width ?? 0, meta.height ?? 0];
  return sized(path, turned ? height : width, turned ? width : height, maxPixels);
}

// A sharp pipeline over the input: the file itself, or for a BMP its pixels decoded here.
async function source(input: ImageInput, bmp: boolean): Promise<Sharp> {
  if (!bmp) return sharp(input, { limitInputPixels: false, failOn: 'error', page: 0 });
  const { data, width, height } = decodeBmp(typeof input === 'string' ? await fs.readFile(input) : input);
  return sharp(data, { raw: { width, height, channels: 3 } });
}

/**
 * Returns the image as 8-bit sRGB channels-first pixels: EXIF orientation applied, alpha
 * composited on white, greyscale/CMYK/16-bit converted, the first frame of an animation,
 * resized to `size` by `method` when given; or the reason the file (or buffer) is skipped. Only
 * reads the file.
 */
export async function decodeImage(input: ImageInput, o: DecodeOptions = {}): Promise<DecodeResult> {
  const probe = await probeImage(input, o);
  if (!probe.ok) return probe;
  const { size, method = 'crop' } = o;
  try {
    // failOn 'error': a file the decoder cannot finish is skipped; damaged pixel data inside an
    // intact structure decodes with the damage, as PIL does, rather than losing the image.
    let img = (await source(input, probe.bmp === true))
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb');
    if (size !== undefined) {
      const [h, w] = [probe.height, probe.width];
      if (method === 'crop' && Math.max(h, w) > MAX_ASPECT * Math.min(h, w)) {
        // Past MAX_ASPECT the centre is kept: the item's cost is bounded by the item size, whatever the file's shape.
        const long = size * MAX_ASPECT;
        img = img.resize({ width: w >= h ? long : size, height: w >= h ? size : long, fit: 'cover', kernel: RESIZE_KERNEL });
      } else {
        const fit = method === 'crop' ? 'outside' : method === 'squish' ? 'fill' : 'inside';
        img = img.resize({ width: size, height: size, fit, kernel: RESIZE_KERNEL });
      }
    }
    const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    const image = toChw(data, info.height, info.width, info.channels);
    return { ok: true, image: size !== undefined && method === 'pad' ? reflectPad(image, size) : image };
  } catch (e) {
    return reasonOf(input, e);
  }
}

/** Returns interleaved pixels (1 to 4 channels) as RGB channels first; grey repeats, alpha drops. */
export function toChw(hwc: Uint8Array, height: number, width: number, channels: number): RawImage {
  const plane = height * width;
  const data = new Uint8Array(3 * plane);
  if (channels >= 3) {
    // One pass over the source, three planes written together.
    for (let i = 0, j = 0; i < plane; i++, j += channels) {
      data[i] = hwc[j];
      data[plane + i] = hwc[j + 1];
      data[2 * plane + i] = hwc[j + 2];
    }
  } else {
    for (let i = 0, j = 0; i < plane; i++, j += channels) data[i] = data[plane + i] = data[2 * plane + i] = hwc[j];
  }
  return { data, height, width };
}

// Mirror index into [0, n): fastai pads with reflection, not a colour.
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}

/** Returns the image centred in a size×size square, the border filled by reflection. */
export function reflectPad(img: RawImage, size: number): RawImage {
  if (img.height === size && img.width === size) return img;
  const top = Math.floor((size - img.height) / 2);
  const left = Math.floor((size - img.width) / 2);
  const data = new Uint8Array(3 * size * size);
  const cols = Int32Array.from({ length: size }, (_, x) => reflect(x - left, img.width));
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < size; y++) {
      const row = c * img.height * img.width + reflect(y - top, img.height) * img.width;
      const out = c * size * size + y * size;
      for (let x = 0; x < size; x++) data[out + x] = img.data[row + cols[x]];
    }
  }
  return { data, height: size, width: size };
}
