// A minimal zip reader for torch.save archives: the central directory (with ZIP64), stored or
// deflated entries, every offset checked against the file's length.
import { inflateRawSync } from 'node:zlib';

/** One file in the archive, as its central-directory record describes it. */
export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate; anything else is refused when read. */
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

/** A zip could not be read; `reason` matches CheckpointErrorReason. */
export class ZipError extends Error {
  constructor(readonly reason: 'truncated' | 'corrupt' | 'compressed', message: string) {
    super(message);
    this.name = 'ZipError';
  }
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;
const SIG_END64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const END_SIZE = 22;
const MAX_COMMENT = 0xffff;
const MAX_ENTRIES = 1_000_000;
/**
 * How much a deflated entry may inflate, as a multiple of the whole file (plus 1 MiB). torch.save
 * stores its entries; a re-zipped archive compresses weights little, a zip bomb by thousands.
 */
export const MAX_INFLATE_RATIO = 16;

/** Returns the archive's entries by name, read from the central directory. */
export function readZipDirectory(buf: Uint8Array): Map<string, ZipEntry> {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const end = findEnd(view);
  let count = view.getUint16(end + 10, true);
  let cdSize = view.getUint32(end + 12, true);
  let cdOffset = view.getUint32(end + 16, true);
  // torch.save writes the ZIP64 records even for tiny files; when present they are authoritative.
  const locator = end - 20;
  if (locator >= 0 && view.getUint32(locator, true) === SIG_LOCATOR64) {
    const end64 = u64(view, locator + 8, 'ZIP64 end record offset');
    if (end64 + 56 > locator) throw new ZipError('corrupt', 'the ZIP64 end record lies outside the file');
    if (view.getUint32(end64, true) !== SIG_END64) throw new ZipError('corrupt', 'the ZIP64 end record has a wrong signature');
    count = u64(view, end64 + 32, 'entry count');
    cdSize = u64(view, end64 + 40, 'central directory size');
    cdOffset = u64(view, end64 + 48, 'central directory offset');
  }
  if (cdOffset + cdSize > buf.length) {
    throw new ZipError('truncated', `the central directory (bytes ${cdOffset}–${cdOffset + cdSize}) runs past the end of the file (${buf.length} bytes)`);
  }
  if (count > MAX_ENTRIES || count * 46 > cdSize) throw new ZipError('corrupt', `the central directory cannot hold ${count} entries`);
  const entries = new Map<string, ZipEntry>();
  let at = cdOffset;
  for (let i = 0; i < count; i++) {
    if (at + 46 > cdOffset + cdSize || view.getUint32(at, true) !== SIG_CENTRAL) {
      throw new ZipError('corrupt', `central directory record ${i} is damaged`);
    }
    const nameLen = view.getUint16(at + 28, true);
    const extraLen = view.getUint16(at + 30, true);
    const commentLen = view.getUint16(at + 32, true);
    const next = at + 46 + nameLen + extraLen + commentLen;
    if (next > cdOffset + cdSize) throw new ZipError('corrupt', `central directory record ${i} overruns the directory`);
    const name = new TextDecoder('utf-8').decode(buf.subarray(at + 46, at + 46 + nameLen));
    const entry: ZipEntry = {
      name,
      flags: view.getUint16(at + 8, true),
      method: view.getUint16(at + 10, true),
      compressedSize: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
      localOffset: view.getUint32(at + 42, true),
    };
    applyZip64Extra(view, at + 46 + nameLen, extraLen, entry);
    if (entries.has(name)) throw new ZipError('corrupt', `the archive lists '${name}' twice`);
    entries.set(name, entry);
    at = next;
  }
  return entries;
}

/** Returns the entry's bytes: a view into `buf` when stored, a new buffer when deflated. */
export function readZipEntry(buf: Uint8Array, entry: ZipEntry): Uint8Array {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const local = entry.localOffset;
  if (local + 30 > buf.length) throw new ZipError('truncated', `entry '${entry.name}' starts past the end of the file`);
  if (view.getUint32(local, true) !== SIG_LOCAL) throw new ZipError('corrupt', `entry '${entry.name}' has no local header`);
  if (entry.flags & 1) throw new ZipError('compressed', `entry '${entry.name}' is encrypted`);
  const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
  const stop = start + entry.compressedSize;
  if (stop > buf.length) {
    throw new ZipError('truncated', `entry '${entry.name}' (bytes ${start}–${stop}) runs past the end of the file (${buf.length} bytes)`);
  }
  const raw = buf.subarray(start, stop);
  if (entry.method === 0) {
    if (entry.size !== entry.compressedSize) throw new ZipError('corrupt', `stored entry '${entry.name}' has two different sizes`);
    return raw;
  }
  if (entry.method === 8) {
    const limit = MAX_INFLATE_RATIO * buf.length + (1 << 20);
    if (entry.size > limit) {
      throw new ZipError('compressed', `entry '${entry.name}' declares ${entry.size} bytes inflated from a ${buf.length}-byte file `
        + `(over ${MAX_INFLATE_RATIO}× it): refused before inflating`);
    }
    let out: Buffer;
    try {
      out = inflateRawSync(raw, { maxOutputLength: Math.max(entry.size, 1) });
    } catch (e) {
      throw new ZipError('corrupt', `entry '${entry.name}' does not inflate: ${(e as Error).message}`);
    }
    if (out.length !== entry.size) throw new ZipError('corrupt', `entry '${entry.name}' inflates to ${out.length} bytes, not ${entry.size}`);
    return out;
  }
  throw new ZipError('compressed',
    `entry '${entry.name}' uses zip compression method ${entry.method}; only stored (0) and deflate (8) entries can be read`);
}

// The end-of-central-directory record sits in the last 22 bytes plus at most a 64 KiB comment.
function findEnd(view: DataView): number {
  const last = view.byteLength - END_SIZE;
  for (let at = last; at >= 0 && at >= last - MAX_COMMENT; at--) {
    if (view.getUint32(at, true) === SIG_END && at + END_SIZE + view.getUint16(at + 20, true) <= view.byteLength) return at;
  }
  throw new ZipError('truncated', 'the zip has no end-of-central-directory record: the file is cut short (an interrupted download?)');
}

// ZIP64 extra field (id 1): the 64-bit values, in this order, of the fields saturated at 0xFFFFFFFF.
function applyZip64Extra(view: DataView, at: number, length: number, entry: ZipEntry): void {
  const stop = at + length;
  while (at + 4 <= stop) {
    const id = view.getUint16(at, true);
    const size = view.getUint16(at + 2, true);
    if (id === 1) {
      let p = at + 4;
      for (const field of ['size', 'compressedSize', 'localOffset'] as const) {
        if (entry[field] !== 0xffffffff) continue;
        if (p + 8 > at + 4 + size) throw new ZipError('corrupt', `entry '${entry.name}' has a short ZIP64 field`);
        entry[field] = u64(view, p, `ZIP64 ${field}`);
        p += 8;
      }
      return;
    }
    at += 4 + size;
  }
}

function u64(view: DataView, at: number, what: string): number {
  if (at + 8 > view.byteLength) throw new ZipError('truncated', `the ${what} lies past the end of the file`);
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError('corrupt', `the ${what} (${v}) is impossibly large`);
  return Number(v);
}
