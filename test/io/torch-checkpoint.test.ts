import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as nn from '../../src/nn/index.js';
import { StateDictError } from '../../src/nn/module.js';
import { CheckpointError, loadTorchCheckpoint, loadWeightsFile, type CheckpointErrorReason } from '../../src/io/index.js';
import { readZipDirectory, readZipEntry } from '../../src/io/zip.js';
import { python, assertClose, type Encoded } from '../helpers/python.js';
import { callPickle, checkpointZip, makeZip, op, tempDir, tensorDictPickle } from './fixtures.js';

const dir = tempDir('ckpt');
const file = (name: string): string => path.join(dir, name);

// Every Python-made file in one run: importing torch dominates the cost.
const ref = python<{
  plain: Record<string, Encoded>;
  contiguous: Record<string, boolean>;
  linear: Record<string, Encoded>;
  resnet: { keys: string[]; shapes: number[][]; heads: Record<string, Encoded> };
}>(`
import os, torchvision
d = inp['dir']
g = torch.Generator().manual_seed(0)
base = torch.arange(20, dtype=torch.float32) * 0.5
sd = {
    'f32': torch.randn(2, 3, generator=g),
    'f16': torch.randn(4, generator=g).half(),
    'bf16': torch.randn(3, 2, generator=g).bfloat16(),
    'f64': torch.randn(2, 2, generator=g, dtype=torch.float64),
    'i64': torch.tensor([-3, 0, 2**40, 7]),
    'i32': torch.tensor([-70000, 5], dtype=torch.int32),
    'i16': torch.tensor([-300, 300], dtype=torch.int16),
    'i8': torch.tensor([-128, 127], dtype=torch.int8),
    'bool': torch.tensor([True, False, True]),
    'u8': torch.tensor([[0, 255], [17, 3]], dtype=torch.uint8),
    'transposed': torch.randn(3, 4, generator=g).t(),
    'base': base,
    'view': base[5:11].view(2, 3),
    'expanded': torch.tensor([1., 2., 3.]).expand(2, 3),
    'scalar': torch.tensor(2.5),
    'empty': torch.zeros(0, 3),
}
torch.save(sd, d + '/plain.pt')
torch.save({'state_dict': sd, 'epoch': 3, 'optimizer': {'lr': 0.1, 'betas': (0.9, 0.99)}}, d + '/nested.pt')
lin = nn.Linear(3, 2)
torch.save(lin.state_dict(), d + '/linear.pt')
torch.save({'model': lin.state_dict(), 'epoch': 1}, d + '/model-key.pt')
torch.save(sd, d + '/legacy.pt', _use_new_zipfile_serialization=False)
torch.jit.save(torch.jit.script(nn.Linear(2, 2)), d + '/scripted.pt')
class Evil:
    def __reduce__(self):
        return (os.system, ('touch ' + inp['marker'],))
torch.save({'w': torch.ones(2), 'x': Evil()}, d + '/evil.pt')
rs = torchvision.models.resnet18().state_dict()
torch.save(rs, d + '/resnet18.pt')
heads = ['conv1.weight', 'bn1.running_var', 'layer3.0.downsample.0.weight', 'layer4.1.bn2.bias', 'fc.weight', 'fc.bias',
         'layer1.0.bn1.num_batches_tracked']
out = {'plain': {k: J(v) for k, v in sd.items()}, 'contiguous': {k: v.is_contiguous() for k, v in sd.items()},
       'linear': {k: J(v) for k, v in lin.state_dict().items()},
       'resnet': {'keys': list(rs), 'shapes': [list(v.shape) for v in rs.values()],
                  'heads': {k: J(rs[k].reshape(-1)[:7]) for k in heads}}}
`, { dir, marker: file('evil-marker') });

function expectError(fn: () => unknown, reason: CheckpointErrorReason, pattern: RegExp): CheckpointError {
  let caught: unknown;
  try { fn(); } catch (e) { caught = e; }
  assert.ok(caught instanceof CheckpointError, `expected a CheckpointError, got ${String(caught)}`);
  assert.equal(caught.reason, reason, caught.message);
  assert.match(caught.message, pattern);
  return caught;
}

function assertExact(got: Map<string, import('../../src/torch/index.js').Tensor>, want: Record<string, Encoded>): void {
  assert.deepEqual([...got.keys()], Object.keys(want));
  for (const [k, e] of Object.entries(want)) {
    const x = got.get(k)!;
    assert.equal(x.dtype, e.dtype, `${k} dtype`);
    assert.ok(x.isContiguous(), `${k} comes contiguous`);
    assertClose(x, e, k, { rtol: 0, atol: 0 });
  }
}

test('a torch.save state dict of every dtype, with strided and shared-storage views, loads exactly', () => {
  assert.equal(ref.contiguous.transposed, false);
  assertExact(loadTorchCheckpoint(file('plain.pt')), ref.plain);
  assertExact(loadTorchCheckpoint(readFileSync(file('plain.pt'))), ref.plain);
});

test('a checkpoint nesting the state dict under state_dict or model yields that dict', () => {
  assertExact(loadTorchCheckpoint(file('nested.pt')), ref.plain);
  assertExact(loadTorchCheckpoint(file('model-key.pt')), ref.linear);
  assert.equal(loadWeightsFile(file('linear.pt')).format, 'torch');
});

test('torchvision resnet18 state dict: keys, shapes and values round-trip', () => {
  const sd = loadTorchCheckpoint(file('resnet18.pt'));
  assert.deepEqual([...sd.keys()], ref.resnet.keys);
  assert.deepEqual([...sd.values()].map((x) => x.shape), ref.resnet.shapes);
  for (const [k, e] of Object.entries(ref.resnet.heads)) {
    assertClose(sd.get(k)!.flatten().slice(0, 0, 7), e, k, { rtol: 0, atol: 0 });
  }
  assert.equal(sd.get('layer1.0.bn1.num_batches_tracked')!.dtype, 'int64');
});

test('big-endian archives are byte-swapped', () => {
  const little = readFileSync(file('plain.pt'));
  const entries = [...readZipDirectory(little).values()];
  const itemSizes: Record<string, number> = {};
  const sd = ref.plain;
  // Storage keys are numbered in order of first use; map each to its tensor's item size.
  const sizes = { float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, bool: 1, uint8: 1 };
  let key = 0;
  for (const [name, e] of Object.entries(sd)) if (name !== 'view') itemSizes[`plain/data/${key++}`] = sizes[e.dtype];
  const big = makeZip([...entries.map((e): [string, Uint8Array] => {
    const bytes = Buffer.from(readZipEntry(little, e));
    const size = itemSizes[e.name] ?? 1;
    for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
    return [e.name, bytes];
  }), ['plain/byteorder', 'big']]);
  assertExact(loadTorchCheckpoint(big), ref.plain);
});

test('deflated entries are inflated; other compression methods are refused', () => {
  const stored = readFileSync(file('plain.pt'));
  const entries = [...readZipDirectory(stored).values()].map((e): [string, Uint8Array] => [e.name, readZipEntry(stored, e)]);
  assertExact(loadTorchCheckpoint(makeZip(entries, 8)), ref.plain);
  expectError(() => loadTorchCheckpoint(makeZip(entries, 12)), 'compressed',
    /entry 'plain\/[a-z.]+' uses zip compression method 12; only stored \(0\) and deflate \(8\) entries can be read/);
});

test('malicious pickles are refused at their GLOBAL, naming it, and nothing runs', () => {
  const marker = file('evil-marker');
  const err = expectError(() => loadTorchCheckpoint(file('evil.pt')), 'unsafe-global', /posix\.system/);
  assert.match(err.message, /evil\.pt/);
  for (const [module, name] of [['os', 'system'], ['posix', 'system'], ['builtins', 'eval'], ['subprocess', 'Popen']]) {
    const zip = checkpointZip(callPickle(module, name, `open(${JSON.stringify(marker)}, 'w')`));
    expectError(() => loadTorchCheckpoint(zip), 'unsafe-global', new RegExp(`references ${module}\\.${name}\\b`));
  }
  // An allowed global that is not a callable: REDUCE on it is refused too.
  expectError(() => loadTorchCheckpoint(checkpointZip(callPickle('torch', 'FloatStorage', 'x'))), 'unsafe-global',
    /REDUCE on torch\.FloatStorage is not allowed/);
  expectError(() => loadTorchCheckpoint(checkpointZip(Buffer.from('\x80\x02X\x01\x00\x00\x00a)R.', 'latin1'))), 'corrupt',
    /REDUCE on a str, which is not callable/);
  assert.equal(existsSync(marker), false, 'the payload ran');
});

test('the pickle reader is bounded and knows only its opcodes', () => {
  const load = (...parts: Buffer[]): unknown => loadTorchCheckpoint(checkpointZip(Buffer.concat(parts)));
  // The GLOBAL is refused as soon as it is read: the garbage after it is never reached.
  expectError(() => load(op.proto, op.global('os', 'system'), Buffer.from([0xff, 0xff])), 'unsafe-global', /os\.system/);
  expectError(() => load(op.proto, Buffer.alloc(2000, '(')), 'corrupt', /MARKs nested deeper than 1000/);
  const long = Buffer.alloc(5);
  long.write('X');
  long.writeUInt32LE(2 << 20, 1);
  expectError(() => load(op.proto, long), 'corrupt', /2097152-byte string exceeds the 1048576-byte limit/);
  expectError(() => load(op.proto, Buffer.from('h\x05')), 'corrupt', /memo entry 5 was never stored/);
  expectError(() => load(op.proto, op.str('os'), op.str('system'), Buffer.from([0x93])), 'unsupported', /opcode STACK_GLOBAL is not allowed/);
  expectError(() => load(Buffer.from([0x80, 4, 0x95])), 'unsupported', /pickle protocol 4 is not supported/);
  expectError(() => load(op.proto, op.emptyDict), 'corrupt', /the pickle has no STOP/);
  expectError(() => load(op.proto, op.emptyDict, op.str('epoch'), op.int(3), Buffer.from('s'), op.stop), 'not-a-state-dict',
    /entry 'epoch' is a int, not a tensor/);
});

test('storage records, bounds and strides are checked', () => {
  const storage = { 0: new Uint8Array(24) };
  assert.deepEqual(loadTorchCheckpoint(checkpointZip(tensorDictPickle(6, [2, 3], [1, 2]), storage)).get('w')!.shape, [2, 3]);
  expectError(() => loadTorchCheckpoint(checkpointZip(tensorDictPickle(6, [2, 3], [3, 1]))), 'missing-storage',
    /storage '0' is referenced but archive\/data\/0 is not in the zip/);
  expectError(() => loadTorchCheckpoint(checkpointZip(tensorDictPickle(6, [2, 3], [3, 1], 1), storage)), 'out-of-bounds',
    /reaches element 6 of storage '0', which has 6/);
  expectError(() => loadTorchCheckpoint(checkpointZip(tensorDictPickle(8, [2], [1]), storage)), 'out-of-bounds',
    /holds 24 bytes, but 8 float32 elements need 32/);
});

test('truncated, foreign, legacy and TorchScript files each get their own message', () => {
  const good = readFileSync(file('plain.pt'));
  writeFileSync(file('half.pt'), good.subarray(0, good.length >> 1));
  expectError(() => loadTorchCheckpoint(file('half.pt')), 'truncated', /half\.pt: .*no end-of-central-directory record.*cut short/);
  expectError(() => loadTorchCheckpoint(good.subarray(0, good.length - 1)), 'truncated', /^<buffer>: /);
  writeFileSync(file('image.pt'), Buffer.from('\x89PNG\r\n\x1a\n0000', 'latin1'));
  expectError(() => loadTorchCheckpoint(file('image.pt')), 'unknown-format', /image\.pt: not a PyTorch checkpoint.*starts with 89 50 4e 47/);
  writeFileSync(file('empty.pt'), '');
  expectError(() => loadTorchCheckpoint(file('empty.pt')), 'empty', /empty\.pt: the file is empty/);
  expectError(() => loadTorchCheckpoint(file('missing.pt')), 'io', /missing\.pt: cannot read/);
  expectError(() => loadTorchCheckpoint(file('legacy.pt')), 'legacy-format', /legacy\.pt: legacy pre-1\.6 torch\.save format; re-save/);
  const tar = Buffer.alloc(1024);
  tar.write('ustar', 257);
  expectError(() => loadTorchCheckpoint(tar), 'tar-format', /tar-based torch\.save format/);
  expectError(() => loadTorchCheckpoint(file('scripted.pt')), 'torchscript', /scripted\.pt: this is a TorchScript archive \(torch\.jit\.save\)/);
  expectError(() => loadTorchCheckpoint(makeZip([['notes.txt', 'hi']])), 'corrupt', /not inside an archive folder/);
  expectError(() => loadTorchCheckpoint(makeZip([['a/notes.txt', 'hi']])), 'not-a-state-dict', /no a\/data\.pkl/);
});

test('key and shape mismatches loading into a module raise StateDictError', () => {
  const sd = loadTorchCheckpoint(file('linear.pt'));
  const good = new nn.Linear(3, 2);
  good.loadStateDict(sd);
  assertClose(good.getTensor('weight')!, ref.linear.weight, 'weight', { rtol: 0, atol: 0 });
  assert.throws(() => new nn.Linear(4, 2).loadStateDict(sd), (e: unknown) => e instanceof StateDictError
    && e.shapeMismatches[0]?.key === 'weight' && /size mismatch for weight: checkpoint has \[2,3\], model has \[2,4\]/.test(e.message));
  const noBias = new Map([...sd].filter(([k]) => k !== 'bias'));
  assert.throws(() => new nn.Linear(3, 2).loadStateDict(noBias), (e: unknown) => e instanceof StateDictError
    && e.missingKeys.join() === 'bias');
  assert.throws(() => new nn.Linear(3, 2, { bias: false }).loadStateDict(sd), (e: unknown) => e instanceof StateDictError
    && e.unexpectedKeys.join() === 'bias');
});
