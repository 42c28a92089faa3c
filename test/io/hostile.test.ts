// Acceptance (issue 15): files handed over by others cost memory and time bounded by their own
// size, every field of a model file is checked, every path and value before any work. Each case
// is built here and run through the CLI under a 4 GiB address-space cap (libtorch alone maps
// 1.9 GB) and a 10 s limit: one line naming the file (and field), exit 1, peak RSS under 600 MB.
import test from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, mkdirSync, symlinkSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { createDeflateRaw } from 'node:zlib';
import sharp from 'sharp';
import { manualSeed } from '../../src/torch/index.js';
import { zooEntry } from '../../src/models/registry.js';
import { VisionClassifier } from '../../src/learner/model.js';
import { exportModel } from '../../src/learner/export.js';
import { folderDataset } from '../../src/data/folders.js';
import { presize } from '../../src/data/presize.js';
import { tempDir, makeZip, op } from './fixtures.js';
import { visiontuneCapped, assertRefused, assertOneLineError } from '../helpers/cli.js';

const dir = tempDir('hostile');
const image = path.join(dir, 'photo.jpg');
let model = '';

test.before(async () => {
  await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 30, b: 30 } } }).jpeg().toFile(image);
  manualSeed(0);
  const m = new VisionClassifier(zooEntry('resnet18').build(), 2, {});
  model = path.join(dir, 'model.safetensors');
  exportModel(model, m, { architecture: 'resnet18', classes: ['cat', 'dog'], size: 32, normalization: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, head: {} });
  m.dispose();
});

// Pickle ints of any size (BININT, 4 bytes); the fixtures' op.int is one byte.
const int = (n: number): Buffer => {
  const b = Buffer.alloc(5);
  b.write('J', 0, 'latin1');
  b.writeInt32LE(n, 1);
  return b;
};
const ints = (xs: number[]): Buffer[] => [op.mark, ...xs.map(int), op.tuple];

/** A state dict pickle of `keys` tensors, each of `size`/`stride` over storage '0' of `numel` floats. */
function viewsPickle(keys: string[], numel: number, size: number[], stride: number[]): Buffer {
  const tensor = (k: string): Buffer[] => [op.str(k),
    op.global('torch._utils', '_rebuild_tensor_v2'), op.mark,
    op.mark, op.str('storage'), op.global('torch', 'FloatStorage'), op.str('0'), op.str('cpu'), int(numel), op.tuple, op.persid,
    int(0), ...ints(size), ...ints(stride), op.newfalse, op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce,
    op.tuple, op.reduce];
  return Buffer.concat([op.proto, op.emptyDict, op.mark, ...keys.flatMap(tensor), op.setitems, op.stop]);
}

const predictWith = (weights: string, extra: string[] = []) => visiontuneCapped(['predict', 'resnet18', image, '--weights', weights, ...extra]);

test('issue 15 case 1: a stride-0 view of one float (one key or four) is refused before any allocation', () => {
  for (const keys of [['w'], ['a', 'b', 'c', 'd']]) {
    const file = path.join(dir, `views-${keys.length}.pth`);
    writeFileSync(file, makeZip([['archive/data.pkl', viewsPickle(keys, 1, [500_000_000], [0])], ['archive/data/0', Buffer.alloc(4)], ['archive/version', '3\n']]));
    assert.ok(readFileSync(file).length < 1500);
    assertRefused(predictWith(file), file, /tensors would take \d+ bytes from a \d+-byte file/);
  }
  // 37 GB as one view: refused the same way, by the budget, not by the allocator.
  const huge = path.join(dir, 'views-huge.pth');
  writeFileSync(huge, makeZip([['archive/data.pkl', viewsPickle(['w'], 1, [2_000_000_000, 5], [0, 0])], ['archive/data/0', Buffer.alloc(4)], ['archive/version', '3\n']]));
  assertRefused(predictWith(huge), huge, /tensors would take/);
});

/** Raw deflate of `bytes` zeros, streamed (never held in memory). */
async function deflatedZeros(bytes: number): Promise<Buffer> {
  const z = createDeflateRaw({ level: 9 });
  const out: Buffer[] = [];
  z.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve) => z.on('end', resolve));
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < bytes / chunk.length; i++) if (!z.write(chunk)) await new Promise((r) => z.once('drain', r));
  z.end();
  await done;
  return Buffer.concat(out);
}

/** A zip whose entry `name` holds `data` deflated, declaring `size` bytes inflated. */
function zipWithDeflated(entries: [string, Uint8Array | string][], name: string, data: Buffer, size: number): Buffer {
  const zip = makeZip([...entries, [name, data]]);
  // makeZip stores `data`; relabel that entry as deflated with the declared size (local and central headers).
  const nameBytes = Buffer.from(name);
  for (let at = zip.indexOf(nameBytes); at >= 0; at = zip.indexOf(nameBytes, at + 1)) {
    if (zip.readUInt32LE(at - 30) === 0x04034b50) {
      zip.writeUInt16LE(8, at - 30 + 8);
      zip.writeUInt32LE(size, at - 30 + 22);
    } else if (zip.readUInt32LE(at - 46) === 0x02014b50) {
      zip.writeUInt16LE(8, at - 46 + 10);
      zip.writeUInt32LE(size, at - 46 + 24);
    }
  }
  return zip;
}

test('issue 15 case 2: compressed entries that inflate past the file\'s size, or declare so, are refused before inflating', async () => {
  const gib = 1 << 30;
  const bomb = await deflatedZeros(gib);
  const file = path.join(dir, 'zipbomb.pth');
  writeFileSync(file, zipWithDeflated([['archive/data.pkl', viewsPickle(['w'], gib / 4, [gib / 4], [1])], ['archive/version', '3\n']], 'archive/data/0', bomb, gib));
  assert.ok(readFileSync(file).length < 2 << 20, `${readFileSync(file).length} bytes`);
  assertRefused(predictWith(file), file, /declares 1073741824 bytes inflated from a \d+-byte file/);
  // data.pkl declared 3 GiB (the 32-bit field holds 0xC0000000).
  const pkl = path.join(dir, 'bigpickle.pth');
  writeFileSync(pkl, zipWithDeflated([['archive/version', '3\n']], 'archive/data.pkl', await deflatedZeros(1 << 20), 0xc0000000));
  assertRefused(predictWith(pkl), pkl, /declares 3221225472 bytes inflated/);
});

/** Writes a copy of the model file with its visiontune metadata changed by `edit` (or its header by `header`). */
function edited(name: string, edit: (meta: Record<string, unknown>) => void, header?: (h: Record<string, Record<string, unknown>>) => void): string {
  const bytes = readFileSync(model);
  const n = Number(bytes.readBigUInt64LE(0));
  const h = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const meta = JSON.parse(h.__metadata__.visiontune);
  edit(meta);
  h.__metadata__.visiontune = JSON.stringify(meta);
  header?.(h);
  const json = Buffer.from(JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const file = path.join(dir, `${name}.safetensors`);
  writeFileSync(file, Buffer.concat([len, json, bytes.subarray(8 + n)]));
  return file;
}

const predictModel = (file: string) => visiontuneCapped(['predict', file, image]);

test('issue 15 case 3: metadata describing a huge model is refused against the header\'s shapes before anything is built', () => {
  const million = edited('million', (m) => { m.classes = Array.from({ length: 1_000_000 }, (_, i) => `c${i}`); });
  assertRefused(predictModel(million), million, /metadata \(1000000 classes, head widths \[512\]\) does not match its head's weights \(\[512,1024\], \[2,512\]\)/);
  const size = edited('size30000', (m) => { m.size = 30000; });
  assertRefused(predictModel(size), size, /metadata field 'size' number must be less than or equal to 2048/);
  const lin = edited('linftrs', (m) => { m.head = { linFtrs: [1_000_000] }; });
  assertRefused(predictModel(lin), lin, /metadata field 'head\.linFtrs\.0'/);
  const wide = edited('linftrs-fits-schema', (m) => { m.head = { linFtrs: [60_000] }; });
  assertRefused(predictModel(wide), wide, /does not match its head's weights/);
});

test('issue 15 case 4: every metadata field is validated, names are printed escaped, NaN weights and relabelled dtypes are refused', () => {
  const cases: [string, (m: Record<string, unknown>) => void, RegExp][] = [
    ['classes-string', (m) => { m.classes = 'cat,dog'; }, /field 'classes' expected array, received string/],
    ['classes-number', (m) => { m.classes = 2; }, /field 'classes'/],
    ['classes-null', (m) => { m.classes = null; }, /field 'classes'/],
    ['classes-objects', (m) => { m.classes = [{}, {}]; }, /field 'classes\.0'/],
    ['size-0', (m) => { m.size = 0; }, /field 'size'/],
    ['size-negative', (m) => { m.size = -64; }, /field 'size'/],
    ['size-text', (m) => { m.size = '64px'; }, /field 'size' expected number, received string/],
    ['item-small', (m) => { m.itemSize = 16; }, /field 'itemSize' is smaller than size/],
    ['std-0', (m) => { m.normalization = { mean: [0, 0, 0], std: [0, 1, 1] }; }, /field 'normalization\.std\.0'/],
    ['no-normalization', (m) => { delete m.normalization; }, /field 'normalization' required/],
    ['resize-explode', (m) => { m.resizeMethod = 'explode'; }, /field 'resizeMethod'/],
    ['arch-unknown', (m) => { m.architecture = 'alexnet'; }, /field 'architecture' not an architecture of the zoo/],
  ];
  for (const [name, edit, message] of cases) {
    const file = edited(name, edit);
    assertRefused(predictModel(file), file, message);
  }
  // Class names with terminal escapes are printed escaped.
  const ansi = edited('ansi', (m) => { m.classes = ['\u001b[2J\u001b[31mcat', 'dog\u0007']; });
  const r = visiontuneCapped(['predict', ansi, image]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f]/.test(r.stdout), JSON.stringify(r.stdout));
  assert.match(r.stdout, /\\x1b\[2J\\x1b\[31mcat/);
  // A weight of dtype relabelled F32 → I32, and weights all NaN.
  const relabelled = edited('i32', () => undefined, (h) => { h['head.8.weight'].dtype = 'I32'; });
  assertRefused(predictModel(relabelled), relabelled, /tensor 'head\.8\.weight' is int32, where a visiontune model has float32/);
  const bytes = readFileSync(model);
  const n = Number(bytes.readBigUInt64LE(0));
  const nan = Buffer.from(bytes);
  for (let at = 8 + n; at + 4 <= nan.length; at += 4) nan.writeUInt32LE(0x7fc00000, at);
  const nanFile = path.join(dir, 'nan.safetensors');
  writeFileSync(nanFile, nan);
  assertRefused(predictModel(nanFile), nanFile, /holds NaN or infinite values/);
});

test('issue 15 case 5: a 1×100,000 PNG costs what a bounded item does, in training data and in predict', async () => {
  const line = path.join(dir, 'line.png');
  await sharp(Buffer.alloc(100_000 * 3, 90), { raw: { width: 1, height: 100_000, channels: 3 } }).png().toFile(line);
  assert.ok(readFileSync(line).length < 4000);
  const r = visiontuneCapped(['predict', model, line, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.rssMb < 600 && r.ms < 10_000, `${r.rssMb.toFixed(0)} MB, ${r.ms} ms`);
  assert.equal(JSON.parse(r.stdout).predictions.length, 1);
  // Training presizes it the same bounded way, for every method.
  for (const method of ['crop', 'squish', 'pad'] as const) {
    const set = await presize([{ path: line, label: 'a' }], ['a'], { itemSize: 64, method });
    assert.deepEqual([set.items[0].height, set.items[0].width], method === 'crop' ? [1024, 64] : [64, 64], method);
  }
});

test('issue 15 case 6: a FIFO is refused, links out of the data folder are not followed', async () => {
  const fifo = path.join(dir, 'pipe.safetensors');
  execFileSync('mkfifo', [fifo]);
  assertRefused(predictModel(fifo), fifo, /not a regular file/);
  assertOneLineError(predictWith(fifo), 2, /--weights .*pipe\.safetensors: not a regular file/);
  const data = path.join(dir, 'linked');
  for (const c of ['a', 'b']) {
    mkdirSync(path.join(data, c), { recursive: true });
    await sharp(image).toFile(path.join(data, c, 'x.jpg'));
  }
  symlinkSync('/', path.join(data, 'a', 'root'));
  symlinkSync('/etc/passwd', path.join(data, 'b', 'passwd.jpg'));
  const ds = await folderDataset(data, { validPct: 0 });
  assert.deepEqual(ds.train.map((it) => path.relative(data, it.path)).sort(), ['a/x.jpg', 'b/x.jpg']);
  assert.deepEqual(ds.passedOver!.find((g) => g.reason === 'outside the data folder')?.paths.map((p) => path.relative(data, p)).sort(), ['a/root', 'b/passwd.jpg']);
});

test('issue 15 case 6: an unreadable folder among the images is skipped with its reason, the others are used', () => {
  const shared = path.join(dir, 'shared');
  mkdirSync(path.join(shared, 'locked'), { recursive: true });
  writeFileSync(path.join(shared, 'locked', 'secret.jpg'), readFileSync(image));
  writeFileSync(path.join(shared, 'ok.jpg'), readFileSync(image));
  chmodSync(path.join(shared, 'locked'), 0o000);
  for (const p of [dir, shared]) chmodSync(p, 0o755);
  chmodSync(model, 0o644);
  try {
    const r = visiontuneCapped(['predict', model, shared], { unprivileged: true });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok\.jpg\n/);
    assert.match(r.stdout, /^passed over: 1 folder that cannot be read \(EACCES\): skipped \(.*locked\)$/m);
    // A --json into a folder it cannot write: refused before any work.
    const readOnly = path.join(dir, 'read-only');
    mkdirSync(readOnly, { mode: 0o555 });
    assertOneLineError(visiontuneCapped(['interpret', model, shared, '--json', path.join(readOnly, 'r.json')], { unprivileged: true }), 2,
      /--json .*: the folder .*read-only is not writable/);
  } finally {
    chmodSync(path.join(shared, 'locked'), 0o755);
  }
});

test('issue 15 case 7: out-of-range values and unwritable outputs fail before any data is read', () => {
  for (const [args, message] of [
    [['train', '/no/data', '--threads', '4294967297'], /--threads expects an integer ≥ 1 and ≤ 1024, got '4294967297'/],
    [['train', '/no/data', '--size', '100000'], /--size expects an integer ≥ 16 and ≤ 2048/],
    [['predict', model, image, '--tta', '1e9'], /--tta must be a whole number of passes from 0 \(none\) to 64/],
    [['train', '/no/data', '--item-size', '1e9'], /--item-size expects an integer ≥ 16 and ≤ 2048/],
    [['train', '/no/data', '--json', path.join(dir, 'missing', 'r.json')], /--json .*the folder .* does not exist/],
    [['train', '/no/data', '--json', dir], /--json .* is a folder/],
  ] as [string[], RegExp][]) {
    const r = visiontuneCapped(args);
    assertOneLineError(r, 2, message);
    assert.ok(r.ms < 2000, `${args.join(' ')}: ${r.ms} ms`);
  }
});

test('issue 15 case 8: an SVG named .png is never decoded', () => {
  const svg = path.join(dir, 'drawing.png');
  writeFileSync(svg, `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><image href="file://${model}"/></svg>`);
  const r = visiontuneCapped(['predict', model, svg]);
  assertRefused(r, svg, /nothing to predict/);
  assert.match(r.stdout, /skipped .*drawing\.png: not an image \(its content is not JPEG, PNG, WebP, GIF, TIFF, AVIF or BMP\)/);
});
