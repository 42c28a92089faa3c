// showBatch: a PNG grid of one batch as the model sees it (augmented, then un-normalised), each
// image captioned with its label — to check augmentation and labels by eye.
import sharp, { type OverlayOptions } from 'sharp';
import { tidy, tensor, type Tensor } from '../torch/index.js';
import { IMAGENET_STATS } from './augment.js';
import type { ImageLoader } from './loader.js';

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

/** Writes the grid to `file` (PNG) and returns the number of images in it. */
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
  const cols = o.cols ?? Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const cellW = s + GAP_PX;
  const cellH = s + CAPTION_PX + GAP_PX;
  const overlays: OverlayOptions[] = [];
  for (let i = 0; i < n; i++) {
    const left = (i % cols) * cellW + GAP_PX / 2;
    const top = Math.floor(i / cols) * cellH + GAP_PX / 2;
    overlays.push({
      input: Buffer.from(pixels.buffer, i * s * s * 3, s * s * 3),
      raw: { width: s, height: s, channels: 3 },
      left, top,
    });
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${s}" height="${CAPTION_PX}">` +
      `<text x="${s / 2}" y="${CAPTION_PX - 6}" font-family="sans-serif" font-size="15" text-anchor="middle" fill="#000">` +
      `${escapeXml(labels[i])}</text></svg>`;
    overlays.push({ input: Buffer.from(svg), left, top: top + s });
  }
  await sharp({ create: { width: cols * cellW, height: rows * cellH, channels: 3, background: '#ffffff' } })
    .composite(overlays)
    .png()
    .toFile(file);
  return n;
}
