// Pictures of images: showBatch, a grid of one batch as the model sees it (augmented, then
// un-normalised), each image captioned with its label — to check augmentation and labels by eye
// (fastai's show_batch); the grid itself, for top losses too; thumbnails as data URIs.
import sharp, { type OverlayOptions } from 'sharp';
import { tidy, tensor, type Tensor } from '../torch/index.js';
import { IMAGENET_STATS } from './augment.js';
import type { ImageLoader } from './loader.js';
import { writeAtomic } from '../io/atomic.js';

export interface ShowBatchOptions {
  /** Most images shown. Default 16. */
  maxN?: number;
  /** Images per row; default the square root of the count, rounded up. */
  cols?: number;
  /** Which epoch's first batch (augmentation differs per epoch). Default 0. */
  epoch?: number;
}

const CAPTION_PX = 22;
const GAP_PX = 4;

const escapeXml = (s: string): string => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** One picture of a grid: its pixels (RGB, interleaved, `width` × `height`) and the lines under it. */
export interface GridTile {
  pixels: Uint8Array;
  width: number;
  height: number;
  caption: readonly string[];
}

/**
 * Writes tiles as a grid to `file` (PNG or JPEG, by its extension) with each caption under its
 * picture; `cols` default the square root of the count, rounded up. Written atomically.
 */
export async function writeGrid(tiles: readonly GridTile[], file: string, cols = Math.ceil(Math.sqrt(tiles.length))): Promise<void> {
  const lines = Math.max(1, ...tiles.map((t) => t.caption.length));
  const w = Math.max(1, ...tiles.map((t) => t.width));
  const h = Math.max(1, ...tiles.map((t) => t.height));
  const cellW = w + GAP_PX;
  const cellH = h + lines * CAPTION_PX + GAP_PX;
  const rows = Math.max(1, Math.ceil(tiles.length / cols));
  const overlays: OverlayOptions[] = [];
  tiles.forEach((t, i) => {
    const left = (i % cols) * cellW + GAP_PX / 2;
    const top = Math.floor(i / cols) * cellH + GAP_PX / 2;
    overlays.push({ input: Buffer.from(t.pixels.buffer, t.pixels.byteOffset, t.width * t.height * 3), raw: { width: t.width, height: t.height, channels: 3 }, left, top });
    const text = t.caption.map((c, k) => `<text x="${w / 2}" y="${(k + 1) * CAPTION_PX - 6}" font-family="DejaVu Sans, sans-serif" font-size="${Math.min(15, Math.max(9, Math.floor(w / 12)))}" ` +
      `text-anchor="middle" fill="#000">${escapeXml(c)}</text>`).join('');
    overlays.push({ input: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${lines * CAPTION_PX}">${text}</svg>`), left, top: top + h });
  });
  const image = sharp({ create: { width: cols * cellW, height: rows * cellH, channels: 3, background: '#ffffff' } }).composite(overlays);
  const bytes = await (/\.jpe?g$/i.test(file) ? image.jpeg({ quality: 90 }) : image.png()).toBuffer();
  writeAtomic(file, [bytes]);
}

/** Writes the grid of the loader's first batch of epoch `o.epoch` to `file` (PNG or JPEG) and returns the number of images in it. */
export async function showBatch(dl: ImageLoader, file: string, o: ShowBatchOptions = {}): Promise<number> {
  const it = dl.epoch(o.epoch ?? 0);
  const first = await it.next();
  await it.return(undefined);
  if (first.done) throw new Error('showBatch: the loader has no batch');
  const { x, y } = first.value;
  const n = Math.min(o.maxN ?? 16, x.size(0));
  const s = x.size(2);
  const stats = dl.o.stats ?? IMAGENET_STATS;
  // Un-normalise to bytes, channels last, for sharp.
  const pixels = tidy(() => {
    const chan = (v: readonly number[]): Tensor => tensor(Float32Array.from(v), { shape: [1, 3, 1, 1] });
    const bytes = x.narrow(0, 0, n).cpu().mul(chan(stats.std)).add(chan(stats.mean)).clamp(0, 1).mul(255).round().to('uint8');
    return bytes.permute(0, 2, 3, 1).contiguous().toTypedArray() as Uint8Array;
  });
  const labels = y.toArray().slice(0, n).map((i) => dl.vocab[i] ?? String(i));
  x.dispose();
  y.dispose();
  const tiles = labels.map((label, i) => ({ pixels: pixels.subarray(i * s * s * 3, (i + 1) * s * s * 3), width: s, height: s, caption: [label] }));
  await writeGrid(tiles, file, o.cols);
  return n;
}

/** Returns RGB pixels as a small JPEG in a data URI, for pages that must work offline. */
export async function jpegDataUri(pixels: Uint8Array, width: number, height: number): Promise<string> {
  const jpeg = await sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}
