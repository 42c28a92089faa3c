// Images written with sharp at test time into temporary folders: every format, and each kind of bad file.
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { FORMAT_EXTENSIONS, type ImageFormat } from '../../src/data/synthetic-files.js';

export const FORMATS = Object.keys(FORMAT_EXTENSIONS) as ImageFormat[];

export function tempDir(prefix = 'vt-data-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** Returns a sharp pipeline over w×h pixels given by px(x, y) → [r, g, b] or [r, g, b, a]. */
export function drawn(w: number, h: number, px: (x: number, y: number) => number[]): Sharp {
  const channels = px(0, 0).length as 3 | 4;
  const buf = Buffer.alloc(w * h * channels);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) buf.set(px(x, y), (y * w + x) * channels);
  return sharp(buf, { raw: { width: w, height: h, channels } });
}

/** A w×h image of one colour. */
export const solid = (w: number, h: number, rgb: number[]): Sharp => drawn(w, h, () => rgb);

export async function write(file: string, img: Sharp, format: ImageFormat): Promise<string> {
  mkdirSync(path.dirname(file), { recursive: true });
  await img.toFormat(format).toFile(file);
  return file;
}

// A PNG chunk: length, type, data, CRC.
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32 ? zlib.crc32(body) >>> 0 : crc32(body));
  return Buffer.concat([len, body, crc]);
}

function crc32(b: Buffer): number {
  let c = ~0;
  for (const byte of b) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A tiny PNG whose header claims w×h pixels: a "huge scan" that costs nothing to write. */
export function hugePngHeader(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.alloc(16))), chunk('IEND', Buffer.alloc(0))]);
}

/** Writes one file of each bad kind into dir and returns {reason: path}. */
export async function writeBadFiles(dir: string): Promise<Record<string, string>> {
  mkdirSync(dir, { recursive: true });
  const good = await solid(48, 40, [10, 200, 10]).jpeg().toBuffer();
  const png = await solid(48, 40, [10, 200, 10]).png().toBuffer();
  const files: Record<string, [string, Buffer]> = {
    empty: ['empty.jpg', Buffer.alloc(0)],
    truncated: ['truncated.jpg', good.subarray(0, Math.floor(good.length / 2))],
    // A real PNG signature and header, then garbage where the image data should be.
    corrupt: ['corrupt.png', Buffer.concat([png.subarray(0, 33), Buffer.alloc(200, 0x5a), png.subarray(png.length - 12)])],
    'not an image': ['notes.png', Buffer.from('these are my notes, not a picture\n')],
    'too large': ['scan.png', hugePngHeader(15000, 10000)],
  };
  const out: Record<string, string> = {};
  for (const [reason, [name, data]] of Object.entries(files)) {
    out[reason] = path.join(dir, name);
    writeFileSync(out[reason], data);
  }
  return out;
}

/**
 * A 24-bit BMP (BITMAPINFOHEADER) of w×h pixels given by px(x, y) → [r, g, b], written here byte
 * by byte as the format defines it: rows bottom-up (or top-down, with a negative height), BGR,
 * each row padded to 4 bytes. sharp cannot write BMP, and the test must not trust the decoder's own encoder.
 */
export function bmp(w: number, h: number, px: (x: number, y: number) => number[], o: { topDown?: boolean } = {}): Buffer {
  const row = Math.ceil((w * 3) / 4) * 4;
  const buf = Buffer.alloc(54 + row * h);
  buf.write('BM', 0, 'latin1');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(54, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(w, 18);
  buf.writeInt32LE(o.topDown ? -h : h, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(24, 28);
  buf.writeUInt32LE(row * h, 34);
  for (let r = 0; r < h; r++) {
    const y = o.topDown ? r : h - 1 - r;
    for (let x = 0; x < w; x++) {
      const [red, green, blue] = px(x, y);
      buf.set([blue, green, red], 54 + r * row + 3 * x);
    }
  }
  return buf;
}
