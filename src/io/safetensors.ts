// safetensors: 8-byte little-endian header length, a JSON header, then the tensors' bytes, laid
// end to end. Reading validates as strictly as the reference implementation; writing is atomic.
import { writeAtomic } from './atomic.js';
import type { Tensor } from '../torch/index.js';
import { itemSize, type DType } from '../torch/dtype.js';
import type { StateDict } from '../nn/module.js';
import { CheckpointError, readSource, sourceName, type CheckpointErrorReason } from './errors.js';
import { tensorFromBytes, tensorToBytes } from './tensor-bytes.js';

/** A safetensors file's contents. */
export interface SafetensorsFile {
  tensors: StateDict;
  /** The `__metadata__` map (empty when absent). */
  metadata: Record<string, string>;
}

/** safetensors dtype name → ours, for every dtype visiontune's tensors can hold. */
const DTYPES: Record<string, DType> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64', I64: 'int64', I32: 'int32', I16: 'int16',
  I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const NAMES = new Map<DType, string>(Object.entries(DTYPES).map(([k, v]) => [v, k]));
// Valid in the format, but without a libtorch 1.13 dtype here.
const UNSUPPORTED = new Set(['U16', 'U32', 'U64', 'C64', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4']);
/** The reference implementation's cap on the JSON header. */
export const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';

type Fail = (reason: CheckpointErrorReason, detail: string) => never;
interface Entry { name: string; dtype: DType; shape: number[]; begin: number; end: number }

/** Returns the tensors and metadata of a safetensors file (path or bytes), synchronously. Throws CheckpointError. */
export function readSafetensors(source: string | Uint8Array): SafetensorsFile {
  const path = sourceName(source);
  return parseSafetensors(readSource(source, 'the safetensors file'), path);
}

/** A safetensors file's header: each tensor's name, dtype and shape, and the metadata. */
export interface SafetensorsHeader {
  tensors: { name: string; dtype: DType; shape: number[] }[];
  metadata: Record<string, string>;
}

/** Returns the header of a safetensors file's bytes, every field and offset checked, without building a tensor. Throws CheckpointError. */
export function parseSafetensorsHeader(bytes: Uint8Array, path: string): SafetensorsHeader {
  const { entries, metadata } = headerOf(bytes, path);
  return { tensors: entries.map(({ name, dtype, shape }) => ({ name, dtype, shape })), metadata };
}

/** Returns the contents of a safetensors file's bytes; errors name `path`. */
export function parseSafetensors(bytes: Uint8Array, path: string): SafetensorsFile {
  const { entries, metadata, data } = headerOf(bytes, path);
  const tensors: StateDict = new Map();
  try {
    for (const e of entries) {
      const flat = tensorFromBytes(data.subarray(e.begin, e.end), e.dtype);
      try { tensors.set(e.name, flat.reshape(...e.shape)); } finally { flat.dispose(); }
    }
  } catch (err) {
    for (const x of tensors.values()) x.dispose();
    throw new CheckpointError(path, 'corrupt', `cannot build the tensors: ${(err as Error).message}`);
  }
  return { tensors, metadata };
}

// The header's entries and metadata and the data section, the layout checked against the file.
function headerOf(bytes: Uint8Array, path: string): { entries: Entry[]; metadata: Record<string, string>; data: Uint8Array } {
  const fail: Fail = (reason, detail) => { throw new CheckpointError(path, reason, detail); };
  if (bytes.length === 0) fail('empty', 'the file is empty');
  if (bytes.length < 8) fail('invalid-header', `${bytes.length} bytes is too small for a safetensors file (the header length alone takes 8)`);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    fail('invalid-header', `the header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit: not a safetensors file, or a corrupt one`);
  }
  const n = Number(headerLength);
  if (8 + n > bytes.length) {
    fail('invalid-header', `the header length ${n} runs past the end of the file (${bytes.length} bytes): truncated or not a safetensors file`);
  }
  const { entries, metadata } = parseHeader(bytes.subarray(8, 8 + n), fail);
  const data = bytes.subarray(8 + n);
  checkLayout(entries, data.length, fail);
  return { entries, metadata, data };
}

// The header's entries in the order written, each field checked.
function parseHeader(raw: Uint8Array, fail: Fail): { entries: Entry[]; metadata: Record<string, string> } {
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    fail('invalid-header', 'the header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail('invalid-header', 'the header is not a JSON object (it must start with \'{\')');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail('invalid-header', `the header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(header)) return fail('invalid-header', 'the header is not a JSON object');
  const names = topLevelKeys(text);
  const duplicate = names.find((k, i) => names.indexOf(k) !== i);
  if (duplicate !== undefined) fail('invalid-header', `the header lists '${duplicate}' twice`);

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const name of names) {
    const value = header[name];
    if (name === METADATA_KEY) {
      if (!isPlainObject(value)) fail('invalid-header', '__metadata__ is not a JSON object');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail('invalid-header', `__metadata__['${k}'] is a ${typeof v}; metadata values must be strings`);
        metadata[k] = v as string;
      }
      continue;
    }
    const at = `tensor '${name}'`;
    if (!isPlainObject(value)) return fail('invalid-header', `${at} is not described by a JSON object`);
    const { dtype, shape, data_offsets: offsets } = value;
    if (typeof dtype !== 'string' || !(dtype in DTYPES)) {
      if (typeof dtype === 'string' && UNSUPPORTED.has(dtype)) {
        fail('unsupported', `${at} has dtype ${dtype}, which visiontune cannot hold (supported: ${Object.keys(DTYPES).join(', ')})`);
      }
      fail('invalid-header', `${at} has ${dtype === undefined ? 'no dtype' : `unknown dtype ${JSON.stringify(dtype)}`} (expected one of ${Object.keys(DTYPES).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) fail('invalid-header', `${at} has a shape that is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      fail('invalid-header', `${at} has data_offsets that are not [begin, end] with 0 ≤ begin ≤ end`);
    }
    entries.push({ name, dtype: DTYPES[dtype as string], shape: shape as number[], begin: offsets[0], end: offsets[1] });
  }
  return { entries, metadata };
}

// Each tensor inside the data section, its byte count matching its shape, and the tensors tiling
// the data section exactly: no overlaps, no gaps, no trailing bytes.
function checkLayout(entries: Entry[], dataLength: number, fail: Fail): void {
  for (const e of entries) {
    const at = `tensor '${e.name}'`;
    if (e.end > dataLength) {
      fail('out-of-bounds', `${at} data_offsets [${e.begin}, ${e.end}] reach past the end of the data section (${dataLength} bytes)`);
    }
    const numel = e.shape.reduce((a, b) => a * b, 1);
    const needed = numel * itemSize(e.dtype);
    if (!Number.isSafeInteger(needed) || needed !== e.end - e.begin) {
      fail('bad-offsets', `${at}: shape [${e.shape}] of ${NAMES.get(e.dtype)} needs ${needed} bytes, but data_offsets [${e.begin}, ${e.end}] span ${e.end - e.begin}`);
    }
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: Entry | null = null;
  for (const e of sorted) {
    if (e.begin < covered && previous) {
      fail('bad-offsets', `tensor '${e.name}' (data_offsets [${e.begin}, ${e.end}]) overlaps tensor '${previous.name}' `
        + `([${previous.begin}, ${previous.end}])`);
    }
    if (e.begin > covered) fail('bad-offsets', `bytes ${covered}–${e.begin} of the data section, before tensor '${e.name}', belong to no tensor`);
    covered = e.end;
    previous = e;
  }
  if (covered !== dataLength) fail('bad-offsets', `the data section has ${dataLength} bytes but its tensors end at ${covered}`);
}

/**
 * Writes tensors (and string metadata) to a safetensors file atomically (see writeAtomic): readers
 * never see half a file. Synchronous; throws CheckpointError.
 */
export function writeSafetensors(path: string, tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata?: Record<string, string>): void {
  const fail: Fail = (reason, detail) => { throw new CheckpointError(path, reason, detail); };
  const items = [...(tensors instanceof Map ? tensors : Object.entries(tensors))];
  // The reference writer's order: larger item sizes first (keeps every tensor aligned), then by name.
  items.sort(([a, x], [b, y]) => itemSize(y.dtype) - itemSize(x.dtype) || (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') fail('invalid-header', `metadata '${k}' is not a string`);
    header[METADATA_KEY] = metadata;
  }
  let offset = 0;
  for (const [name, x] of items) {
    if (name === METADATA_KEY) fail('invalid-header', `'${METADATA_KEY}' cannot name a tensor`);
    const size = x.numel() * itemSize(x.dtype);
    header[name] = { dtype: NAMES.get(x.dtype), shape: x.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Spaces pad the header so that the data section starts 8-byte aligned, as the reference does.
  const padded = Math.ceil(json.length / 8) * 8;
  json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const lengthBytes = Buffer.alloc(8);
  lengthBytes.writeBigUInt64LE(BigInt(json.length));

  try {
    writeAtomic(path, (function* chunks() {
      yield lengthBytes;
      yield json;
      for (const [, x] of items) yield tensorToBytes(x);
    })());
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    fail('io', `cannot write the safetensors file: ${(e as Error).message}`);
  }
}


// The keys of the outermost JSON object, in the order written (JSON.parse silently keeps the
// last of duplicates and reorders integer-like keys). `json` is already known to parse.
function topLevelKeys(json: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(json.slice(i, j + 1)) as string);
      expectKey = false;
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
