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
}

const N = 32;
// cos((2x + 1)uπ / 2N) for the 8 lowest frequencies u, at each of the N samples x.
const COS = Array.from({ length: 8 }, (_, u) => Float64Array.from({ length: N }, (_, x) => Math.cos(((2 * x + 1) * u * Math.PI) / (2 * N))));

// The image as N×N grey levels, each the mean of its box of pixels (area averaging).
function grey32(img: RawImage): Float64Array {
  const { data, height: h, width: w } = img;
  const plane = h * w;
  const out = new Float64Array(N * N);
  const count = new Float64Array(N * N);
  for (let y = 0; y < h; y++) {
    const by = Math.min(N - 1, Math.floor((y * N) / h));
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const k = by * N + Math.min(N - 1, Math.floor((x * N) / w));
      out[k] += 0.299 * data[i] + 0.587 * data[plane + i] + 0.114 * data[2 * plane + i];
      count[k]++;
    }
  }
  for (let k = 0; k < out.length; k++) out[k] /= Math.max(1, count[k]);
  return out;
}

/** Returns the image's exact and perceptual fingerprints. */
export function fingerprint(img: RawImage): Fingerprint {
  const exact = createHash('sha1').update(`${img.height}x${img.width}:`).update(img.data).digest('hex');
  const g = grey32(img);
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
  return { exact, phash: [bits[0] >>> 0, bits[1] >>> 0] };
}

const popcount = (n: number): number => {
  n -= (n >>> 1) & 0x55555555;
  n = (n & 0x33333333) + ((n >>> 2) & 0x33333333);
  return (((n + (n >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
};

/** Returns the number of bits in which two perceptual hashes differ (0–64). */
export function hammingDistance(a: Fingerprint['phash'], b: Fingerprint['phash']): number {
  return popcount((a[0] ^ b[0]) >>> 0) + popcount((a[1] ^ b[1]) >>> 0);
}
