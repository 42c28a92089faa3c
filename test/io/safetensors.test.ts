import test from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randn, tensor, type Tensor } from '../../src/torch/index.js';
import {
  CheckpointError, loadWeightsFile, readSafetensors, writeSafetensors, type CheckpointErrorReason,
} from '../../src/io/index.js';
import { python, enc, assertClose, type Encoded } from '../helpers/python.js';
import { rawSafetensors, tempDir } from './fixtures.js';

const dir = tempDir('safetensors');
const file = (name: string): string => path.join(dir, name);

function expectError(fn: () => unknown, reason: CheckpointErrorReason, pattern: RegExp, what = ''): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `${what}: expected a CheckpointError, got ${String(e)}`);
    assert.equal(e.reason, reason, `${what}: ${e.message}`);
    assert.match(e.message, pattern, what);
    return true;
  }, what);
}

function everyDtype(): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ['f32', randn([2, 3])],
    ['f16', tensor([0.5, -1.25, 65504, 1e-4], { dtype: 'float16' })],
    ['bf16', tensor([[1.5, -3], [1e30, 0.0078125]], { dtype: 'bfloat16' })],
    ['f64', tensor(new Float64Array([Math.PI, -Number.MAX_VALUE, 5e-324]))],
    ['i64', tensor(new BigInt64Array([-(2n ** 62n), 0n, 2n ** 53n + 1n]))],
    ['i32', tensor(new Int32Array([-(2 ** 31), 2 ** 31 - 1]))],
    ['i16', tensor(new Int16Array([-32768, 32767, 1]))],
    ['i8', tensor(new Int8Array([-128, 127]))],
    ['u8', tensor(new Uint8Array([0, 255, 9]), { shape: [3, 1] })],
    ['bool', tensor([true, false, true, true])],
    ['scalar', tensor(7.5)],
    ['empty', tensor(new Float32Array(0), { shape: [0, 4] })],
  ]);
}

// Raw bytes compare everything exactly, int64 beyond 2^53 included.
function bits(x: Tensor): string {
  const b = x.dtype === 'float16' || x.dtype === 'bfloat16' ? x.to('float32') : x;
  return Buffer.from(b.toTypedArray().buffer).toString('hex');
}

test('every dtype round-trips through a file, with metadata, and Python reads it', () => {
  const tensors = everyDtype();
  const metadata = { format: 'pt', 'visiontune.config': JSON.stringify({ arch: 'resnet18', classes: ['a', 'b'] }) };
  writeSafetensors(file('all.safetensors'), tensors, metadata);
  const back = readSafetensors(file('all.safetensors'));
  assert.deepEqual(back.metadata, metadata);
  assert.deepEqual([...back.tensors.keys()].sort(), [...tensors.keys()].sort());
  for (const [k, x] of tensors) {
    const y = back.tensors.get(k)!;
    assert.equal(y.dtype, x.dtype, k);
    assert.deepEqual(y.shape, x.shape, k);
    assert.equal(bits(y), bits(x), k);
  }
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left behind');

  const raw = readFileSync(file('all.safetensors'));
  const n = Number(raw.readBigUInt64LE(0));
  assert.equal(n % 8, 0, 'header padded to 8 bytes');
  // The reference layout, read independently: alignment order, contiguous offsets, readable by torch.
  const py = python<{ order: string[]; values: Record<string, Encoded>; metadata: Record<string, string> }>(`
import struct
raw = open(inp['path'], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
dt = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'F64': torch.float64, 'I64': torch.int64,
      'I32': torch.int32, 'I16': torch.int16, 'I8': torch.int8, 'U8': torch.uint8, 'BOOL': torch.bool}
meta = header.pop('__metadata__')
order = sorted(header, key=lambda k: header[k]['data_offsets'][0])
values = {}
for k in order:
    b, e = header[k]['data_offsets']
    buf = bytearray(raw[8 + n + b: 8 + n + e])
    t = torch.frombuffer(buf, dtype=dt[header[k]['dtype']]) if buf else torch.empty(0, dtype=dt[header[k]['dtype']])
    values[k] = J(t.reshape(header[k]['shape']))
out = {'order': order, 'values': values, 'metadata': meta}
`, { path: file('all.safetensors') });
  assert.deepEqual(py.metadata, metadata);
  assert.deepEqual(py.order, ['f64', 'i64', 'empty', 'f32', 'i32', 'scalar', 'bf16', 'f16', 'i16', 'bool', 'i8', 'u8']);
  for (const [k, x] of tensors) if (k !== 'i64') assertClose(enc(x).data, py.values[k], k, { rtol: 0, atol: 0 });
});

test('writing replaces an existing file atomically and accepts a plain object', () => {
  writeFileSync(file('over.safetensors'), 'old contents');
  writeSafetensors(file('over.safetensors'), { w: tensor([1, 2, 3]) });
  assert.deepEqual(readSafetensors(file('over.safetensors')).tensors.get('w')!.toArray(), [1, 2, 3]);
  assert.deepEqual(readSafetensors(readFileSync(file('over.safetensors'))).metadata, {});
  expectError(() => writeSafetensors(path.join(dir, 'no-such-folder', 'x.safetensors'), { w: tensor([1]) }), 'io', /cannot write/);
});

test('malformed headers and offsets are refused, each with its own message', () => {
  const f32 = (begin: number, end: number, shape: number[] = [(end - begin) / 4]): object =>
    ({ dtype: 'F32', shape, data_offsets: [begin, end] });
  const cases: [string, Buffer, CheckpointErrorReason, RegExp][] = [
    ['overlap', rawSafetensors({ a: f32(0, 8), b: f32(4, 12) }, 12), 'bad-offsets', /tensor 'b' \(data_offsets \[4, 12\]\) overlaps tensor 'a'/],
    ['gap', rawSafetensors({ a: f32(0, 4), b: f32(8, 12) }, 12), 'bad-offsets', /bytes 4–8 .* belong to no tensor/],
    ['trailing', rawSafetensors({ a: f32(0, 4) }, 8), 'bad-offsets', /has 8 bytes but its tensors end at 4/],
    ['out of bounds', rawSafetensors({ a: f32(0, 16) }, 8), 'out-of-bounds', /'a' data_offsets \[0, 16\] reach past the end of the data section \(8 bytes\)/],
    ['header too long', rawSafetensors({ a: f32(0, 4) }, 4, 1000), 'invalid-header', /header length 1000 runs past the end of the file/],
    ['huge header', rawSafetensors({}, 0, 2 ** 40), 'invalid-header', /exceeds the 100000000-byte limit/],
    ['unknown dtype', rawSafetensors({ a: { dtype: 'X99', shape: [1], data_offsets: [0, 4] } }, 4), 'invalid-header', /unknown dtype "X99"/],
    ['unsupported dtype', rawSafetensors({ a: { dtype: 'U32', shape: [1], data_offsets: [0, 4] } }, 4), 'unsupported', /dtype U32/],
    ['size mismatch', rawSafetensors({ a: f32(0, 8, [3]) }, 8), 'bad-offsets', /shape \[3\] of F32 needs 12 bytes, but data_offsets \[0, 8\] span 8/],
    ['bad JSON', rawSafetensors('{"a": ', 0), 'invalid-header', /not valid JSON/],
    ['not an object', rawSafetensors('[1, 2]', 0), 'invalid-header', /must start with '\{'/],
    ['duplicate key', rawSafetensors('{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', 1),
      'invalid-header', /lists 'a' twice/],
    ['metadata', rawSafetensors({ __metadata__: { n: 3 } }, 0), 'invalid-header', /__metadata__\['n'\] is a number/],
    ['bad shape', rawSafetensors({ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 1] } }, 1), 'invalid-header', /shape that is not a list/],
    ['too small', Buffer.from([1, 2, 3]), 'invalid-header', /3 bytes is too small/],
  ];
  for (const [what, bytes, reason, pattern] of cases) {
    writeFileSync(file('bad.safetensors'), bytes);
    expectError(() => readSafetensors(file('bad.safetensors')), reason, pattern, what);
  }
  // The edge cases that are valid: no tensors, zero-size tensors at the same offset.
  assert.equal(readSafetensors(rawSafetensors({}, 0)).tensors.size, 0);
  const zeros = readSafetensors(rawSafetensors({ a: f32(0, 0, [0]), b: f32(0, 4, [1]), c: f32(4, 4, [2, 0]) }, 4));
  assert.deepEqual([...zeros.tensors.keys()], ['a', 'b', 'c']);
});

test('loadWeightsFile tells the formats apart by content and names the file', () => {
  writeSafetensors(file('w.safetensors'), { w: tensor([1, 2]) });
  copyFileSync(file('w.safetensors'), file('w.bin'));
  const loaded = loadWeightsFile(file('w.bin'));
  assert.equal(loaded.format, 'safetensors');
  assert.deepEqual(loaded.tensors.get('w')!.toArray(), [1, 2]);
  writeFileSync(file('notes.txt'), 'just some text, long enough');
  expectError(() => loadWeightsFile(file('notes.txt')), 'unknown-format', /notes\.txt: neither a PyTorch checkpoint .* nor a safetensors file/);
  writeFileSync(file('cut.safetensors'), readFileSync(file('w.safetensors')).subarray(0, 20));
  expectError(() => loadWeightsFile(file('cut.safetensors')), 'invalid-header', /cut\.safetensors: the header length \d+ runs past the end/);
  expectError(() => loadWeightsFile(file('absent.pt')), 'io', /absent\.pt: cannot read/);
});
