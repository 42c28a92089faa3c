// Handmade weight files for the io tests: zips, pickles and safetensors built byte by byte.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { deflateRawSync } from 'node:zlib';

/** A fresh temporary folder, removed when the test file ends. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `visiontune-${prefix}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Returns a zip of stored entries, without ZIP64 records (torch.save always writes them, so this
 * covers the plain layout). CRCs are left 0: the reader under test does not check them. Method 8
 * deflates; any other method number is written as a label over stored bytes.
 */
export function makeZip(entries: [string, Uint8Array | string][], method = 0): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, content] of entries) {
    const plain = typeof content === 'string' ? Buffer.from(content) : Buffer.from(content);
    const data = method === 8 ? deflateRawSync(plain) : plain;
    const nameBytes = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(plain.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(plain.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** A torch.save-shaped zip around `pickle`, with the given storage records (key → bytes). */
export function checkpointZip(pickle: Uint8Array, storages: Record<string, Uint8Array> = {}): Buffer {
  return makeZip([
    ['archive/data.pkl', pickle],
    ...Object.entries(storages).map(([k, v]): [string, Uint8Array] => [`archive/data/${k}`, v]),
    ['archive/version', '3\n'],
  ]);
}

// Pickle opcodes, protocol 2, as bytes.
export const op = {
  proto: Buffer.from([0x80, 2]),
  global: (module: string, name: string): Buffer => Buffer.from(`c${module}\n${name}\n`, 'latin1'),
  str(s: string): Buffer {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return Buffer.concat([Buffer.from('X'), len, b]);
  },
  int: (n: number): Buffer => Buffer.from([0x4b, n]), // BININT1
  mark: Buffer.from('('),
  tuple: Buffer.from('t'),
  tuple1: Buffer.from([0x85]),
  emptyTuple: Buffer.from(')'),
  emptyDict: Buffer.from('}'),
  setitems: Buffer.from('u'),
  reduce: Buffer.from('R'),
  persid: Buffer.from('Q'),
  newfalse: Buffer.from([0x89]),
  stop: Buffer.from('.'),
};

/** The pickle of {'w': FloatStorage tensor}: storage key '0' of `numel` elements viewed as size/stride/offset. */
export function tensorDictPickle(numel: number, size: number[], stride: number[], offset = 0): Buffer {
  const ints = (xs: number[]): Buffer[] => [op.mark, ...xs.map(op.int), op.tuple];
  return Buffer.concat([
    op.proto, op.emptyDict, op.mark, op.str('w'),
    op.global('torch._utils', '_rebuild_tensor_v2'), op.mark,
    op.mark, op.str('storage'), op.global('torch', 'FloatStorage'), op.str('0'), op.str('cpu'), op.int(numel), op.tuple, op.persid,
    op.int(offset), ...ints(size), ...ints(stride), op.newfalse,
    op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce,
    op.tuple, op.reduce, op.setitems, op.stop,
  ]);
}

/** A pickle that calls module.name(arg) on load, as a malicious checkpoint would. */
export function callPickle(module: string, name: string, arg: string): Buffer {
  return Buffer.concat([op.proto, op.global(module, name), op.str(arg), op.tuple1, op.reduce, op.stop]);
}

/** A safetensors file from a header (object or raw JSON text) and `dataLength` data bytes; `declaredLength` overrides N. */
export function rawSafetensors(header: object | string, dataLength: number, declaredLength?: number): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(declaredLength ?? json.length));
  return Buffer.concat([n, json, Buffer.alloc(dataLength, 7)]);
}
