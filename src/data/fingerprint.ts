// Fingerprints of a presized image, taken while its pixels are at hand: an exact hash of the
// pixels, and a perceptual hash that survives resizing and re-encoding (the DCT hash of pHash,
// Zauner 2010: a 32×32 grey image's lowest 8×8 frequencies against their median).
import { createHash } from 'node:crypto';
import type { RawImage } from './decode.js';

export interface Fingerprint {
  /** SHA-1 of the presized pixels and their size: equal for identical decoded images. */
  exact: string;
  /** The 64-bit perceptual hash as two 32-bit halves. */
  phash: [number, number];
  /** The mean of each channel (0–255): the colour a grey hash cannot see. */
  mean: [number, number, number];
}

const N = 32;
// cos((2x + 1)uπ / 2N) for the 8 lowest frequencies u, at each of the N samples x.
const COS = Array.from({ length: 8 }, (_, u) => Float64Array.from({ length: N }, (_, x) => Math.cos(((2 * x + 1) * u * Math.PI) / (2 * N))));

// The image as N×N grey levels, each the mean of its box of pixels (area averaging), and the
// mean of each channel, in one pass over the pixels.
function grey32(img: RawImage): { grey: Float64Array; mean: [number, number, number] } {
  const { data, height: h, width: w } = img;
  const plane = h * w;
  const grey = new Float64Array(N * N);
  const count = new Float64Array(N * N);
  const sums = [0, 0, 0];
  for (let y = 0; y < h; y++) {
    const by = Math.min(N - 1, Math.floor((y * N) / h));
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const [r, g, b] = [data[i], data[plane + i], data[2 * plane + i]];
      sums[0] += r;
      sums[1] += g;
      sums[2] += b;
      const k = by * N + Math.min(N - 1, Math.floor((x * N) / w));
      grey[k] += 0.299 * r + 0.587 * g + 0.114 * b;
      count[k]++;
    }
  }
  for (let k = 0; k < grey.length; k++) grey[k] /= Math.max(1, count[k]);
  return { grey, mean: sums.map((s) => s / Math.max(1, plane)) as [number, number, number] };
}

/** Returns the image's exact and perceptual fingerprints. */
export function fingerprint(img: RawImage): Fingerprint {
  const exact = createHash('sha1').update(`${img.height}x${img.width}:`).update(img.data).digest('hex');
  const { grey: g, mean } = grey32(img);
  // The separable 2-D DCT-II, only the 8×8 lowest frequencies.
  const rows = new Float64Array(N * 8);
  for (let y = 0; y < N; y++) for (let u = 0; u < 8; u++) {
    let s = 0;
    for (let x = 0; x < N; x++) s += g[y * N + x] * COS[u][x];
    rows[y * 8 + u] = s;
  }
  const coef: number[] = [];
  for (let v = 0; v < 8; v++) for (let u = 0; u < 8; u++) {
    let s = 0;
    for (let y = 0; y < N; y++) s += rows[y * 8 + u] * COS[v][y];
    coef.push(s);
  }
  // The median leaves out the DC term, which only says how bright the image is.
  const median = [...coef.slice(1)].sort((a, b) => a - b)[31];
  const bits = [0, 0];
  coef.forEach((c, i) => { if (c > median) bits[i >> 5] |= 1 << (i & 31); });
  return { exact, phash: [bits[0] >>> 0, bits[1] >>> 0], mean };
}

const popcount = (n: number): number => {
  n -= (n >>> 1) & 0x55555555;
  n = (n & 0x33333333) + ((n >>> 2) & 0x33333333);
  return (((n + (n >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
};

/**
 * The most the mean of a channel may differ (of 255) between two copies of one picture: resizing
 * and re-encoding move it by a level or two, while images that only share a structure (stripes
 * of one period, say) differ in colour.
 */
export const MAX_MEAN_DIFFERENCE = 8;

/** Returns whether two fingerprints are the same picture: identical pixels, or hashes within `maxDistance` bits and the same colour. */
export function samePicture(a: Fingerprint, b: Fingerprint, maxDistance: number): boolean {
  if (a.exact === b.exact) return true;
  return hammingDistance(a.phash, b.phash) <= maxDistance && a.mean.every((m, c) => Math.abs(m - b.mean[c]) <= MAX_MEAN_DIFFERENCE);
}

/** Returns the number of bits in which two perceptual hashes differ (0–64). */
export function hammingDistance(a: Fingerprint['phash'], b: Fingerprint['phash']): number {
  return popcount((a[0] ^ b[0]) >>> 0) + popcount((a[1] ^ b[1]) >>> 0);
}
