// Telling a truncated image from a corrupt one by its container, since decoders word both alike:
// a file is truncated when it ends before the structure its own header declares.
import { promises as fs } from 'node:fs';

export type Container = 'jpeg' | 'png' | 'gif' | 'webp' | 'tiff' | 'heif' | 'bmp';

export interface Sniff {
  /** The container the magic bytes name, or null for none we read. */
  format: Container | null;
  /** Whether the file ends before its structure does. */
  truncated: boolean;
}

const ascii = (b: Buffer, start: number, end: number): string => b.toString('latin1', start, end);

/** Returns the container the first 12 bytes name, or null for none visiontune reads (SVG, PDF, text…). */
export function magic(head: Buffer): Container | null {
  if (head.length < 12) head = Buffer.concat([head, Buffer.alloc(12 - head.length)]);
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head.readUInt32BE(0) === 0x89504e47) return 'png';
  if (ascii(head, 0, 4) === 'GIF8') return 'gif';
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') return 'webp';
  if (ascii(head, 0, 4) === 'II*\0' || ascii(head, 0, 4) === 'MM\0*') return 'tiff';
  if (ascii(head, 4, 8) === 'ftyp') return 'heif';
  if (ascii(head, 0, 2) === 'BM') return 'bmp';
  return null;
}

/** Up to `n` bytes at `pos` (fewer at the end). */
type ReadAt = (pos: number, n: number) => Promise<Buffer>;

function fileReader(fh: fs.FileHandle): ReadAt {
  return async (pos, n) => {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, pos);
    return buf.subarray(0, bytesRead);
  };
}

// ISO-BMFF (AVIF, HEIF): the top-level boxes' sizes must fit in the file.
async function boxesOverrun(readAt: ReadAt, size: number): Promise<boolean> {
  let pos = 0;
  for (let i = 0; i < 64 && pos < size; i++) {
    const h = await readAt(pos, 16);
    if (h.length < 8) return true;
    let len = h.readUInt32BE(0);
    if (len === 1) {
      if (h.length < 16) return true;
      len = Number(h.readBigUInt64BE(8));
    } else if (len === 0) {
      return false; // the last box runs to the end of the file by definition
    }
    if (len < 8) return false;
    pos += len;
  }
  return pos > size;
}

/**
 * Returns the container of the file at `input` (or of the bytes given) and whether it is cut
 * short; unknown containers are never called truncated.
 */
export async function sniff(input: string | Buffer): Promise<Sniff> {
  if (Buffer.isBuffer(input)) return sniffWith((pos, n) => Promise.resolve(input.subarray(pos, pos + n)), input.length);
  const fh = await fs.open(input, 'r');
  try {
    return await sniffWith(fileReader(fh), (await fh.stat()).size);
  } finally {
    await fh.close();
  }
}

async function sniffWith(readAt: ReadAt, size: number): Promise<Sniff> {
  const head = Buffer.alloc(16);
  head.set(await readAt(0, 16));
  const format = magic(head);
  const tail = await readAt(Math.max(0, size - 32), 32);
  let end = tail.length;
  while (end > 0 && tail[end - 1] === 0) end--; // some writers pad with zeros
  const trimmed = tail.subarray(0, end);
  let truncated = false;
  switch (format) {
    case 'jpeg': truncated = !(trimmed[trimmed.length - 2] === 0xff && trimmed[trimmed.length - 1] === 0xd9); break;
    case 'png': truncated = !tail.includes('IEND', 0, 'latin1'); break;
    case 'gif': truncated = trimmed[trimmed.length - 1] !== 0x3b; break;
    case 'webp': truncated = head.readUInt32LE(4) + 8 > size; break;
    case 'tiff': {
      const ifd = ascii(head, 0, 2) === 'II' ? head.readUInt32LE(4) : head.readUInt32BE(4);
      truncated = ifd >= size;
      break;
    }
    case 'heif': truncated = await boxesOverrun(readAt, size); break;
    case 'bmp': truncated = head.readUInt32LE(2) > size; break; // the declared file size (0 when left out)
    default: break;
  }
  return { format, truncated };
}
