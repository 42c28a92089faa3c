// Acceptance (issue 4): every format decodes; EXIF-rotated and alpha images decode as expected
// (pixel checks); greyscale, CMYK and 16-bit become 8-bit sRGB; each bad file is skipped with its
// reason; user files are only read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage, probeImage, type RawImage } from '../../src/data/decode.js';
import { FORMAT_EXTENSIONS } from '../../src/data/synthetic-files.js';
import { FORMATS, drawn, solid, tempDir, write, writeBadFiles } from './images.js';

const pixel = (img: RawImage, x: number, y: number): number[] =>
  [0, 1, 2].map((c) => img.data[c * img.height * img.width + y * img.width + x]);

function near(got: number[], want: number[], tol: number, what: string): void {
  assert.ok(got.every((v, i) => Math.abs(v - want[i]) <= tol), `${what}: got [${got}], expected about [${want}]`);
}

async function decoded(file: string, o = {}): Promise<RawImage> {
  const r = await decodeImage(file, o);
  assert.ok(r.ok, `decode ${file}: ${r.ok ? '' : r.skipped.detail}`);
  return r.image;
}

test('every format decodes to 8-bit RGB channels first: JPEG, PNG, WebP, GIF, TIFF, AVIF', async () => {
  const dir = tempDir();
  for (const f of FORMATS) {
    const file = await write(path.join(dir, `img${FORMAT_EXTENSIONS[f]}`), solid(40, 30, [200, 40, 90]), f);
    const img = await decoded(file);
    assert.deepEqual([img.height, img.width, img.data.length], [30, 40, 3 * 30 * 40], f);
    near(pixel(img, 20, 15), [200, 40, 90], f === 'gif' || f === 'avif' ? 12 : 6, f);
  }
});

test('GIF: the first frame of an animation', async () => {
  const dir = tempDir();
  const frame = (background: string): Promise<Buffer> => sharp({ create: { width: 16, height: 16, channels: 3, background } }).png().toBuffer();
  const file = path.join(dir, 'anim.gif');
  await sharp([await frame('#ff0000'), await frame('#0000ff')], { join: { animated: true } }).gif().toFile(file);
  assert.equal((await sharp(file).metadata()).pages, 2);
  const img = await decoded(file);
  assert.deepEqual([img.height, img.width], [16, 16]);
  near(pixel(img, 8, 8), [255, 0, 0], 10, 'first frame');
});

test('EXIF orientation is applied (orientation 6: rotate 90° clockwise)', async () => {
  const dir = tempDir();
  // Stored 40 wide × 20 high: left half red, right half blue. Shown rotated clockwise, the
  // left half (red) ends up on top: 20 wide × 40 high, red above blue.
  const stored = drawn(40, 20, (x) => (x < 20 ? [255, 0, 0] : [0, 0, 255]));
  const file = path.join(dir, 'phone.jpg');
  await stored.jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(file);
  const img = await decoded(file);
  assert.deepEqual([img.height, img.width], [40, 20]);
  near(pixel(img, 10, 5), [255, 0, 0], 40, 'top');
  near(pixel(img, 10, 35), [0, 0, 255], 40, 'bottom');
  const probe = await probeImage(file);
  assert.ok(probe.ok && probe.height === 40 && probe.width === 20, 'the header probe knows the upright size');
});

test('alpha is composited on white', async () => {
  const dir = tempDir();
  // Left: fully transparent black; right: opaque green; middle column: half-transparent red.
  const img = drawn(30, 10, (x) => (x < 10 ? [0, 0, 0, 0] : x < 20 ? [255, 0, 0, 128] : [0, 255, 0, 255]));
  for (const f of ['png', 'webp'] as const) {
    const out = await decoded(await write(path.join(dir, `alpha.${f}`), img, f));
    near(pixel(out, 5, 5), [255, 255, 255], 3, `${f} transparent`);
    near(pixel(out, 15, 5), [255, 127, 127], 6, `${f} half`);
    near(pixel(out, 25, 5), [0, 255, 0], 6, `${f} opaque`);
  }
});

test('greyscale, CMYK and 16-bit images become 8-bit sRGB', async () => {
  const dir = tempDir();
  const grey = await decoded(await write(path.join(dir, 'grey.png'), solid(8, 8, [100, 100, 100]).toColourspace('b-w'), 'png'));
  near(pixel(grey, 4, 4), [100, 100, 100], 2, 'grey');
  const cmyk = await decoded(await write(path.join(dir, 'cmyk.jpg'), solid(8, 8, [200, 40, 90]).toColourspace('cmyk'), 'jpeg'));
  near(pixel(cmyk, 4, 4), [200, 40, 90], 40, 'cmyk');
  const deep = await decoded(await write(path.join(dir, 'deep.png'), solid(8, 8, [200, 40, 90]).toColourspace('rgb16'), 'png'));
  near(pixel(deep, 4, 4), [200, 40, 90], 2, '16-bit');
});

test('presizing methods: crop keeps the aspect with the shorter side at size, squish and pad give squares', async () => {
  const dir = tempDir();
  const file = await write(path.join(dir, 'wide.png'), drawn(80, 40, (x) => (x < 40 ? [255, 0, 0] : [0, 0, 255])), 'png');
  const crop = await decoded(file, { size: 20, method: 'crop' });
  assert.deepEqual([crop.height, crop.width], [20, 40]);
  const squish = await decoded(file, { size: 20, method: 'squish' });
  assert.deepEqual([squish.height, squish.width], [20, 20]);
  const pad = await decoded(file, { size: 20, method: 'pad' });
  assert.deepEqual([pad.height, pad.width], [20, 20]);
  // Padded rows are reflections of the image, not a colour: the top row matches row 9 from the top of the content.
  near(pixel(pad, 2, 0), pixel(pad, 2, 10), 0, 'reflection');
});

test('each bad file is skipped with its reason, and user files are only read', async () => {
  const dir = tempDir();
  const bad = await writeBadFiles(dir);
  const before = Object.values(bad).map((f) => [readFileSync(f).toString('hex'), statSync(f).mtimeMs]);
  for (const [reason, file] of Object.entries(bad)) {
    const r = await decodeImage(file, { size: 32 });
    assert.equal(r.ok, false, `${reason} should be skipped`);
    if (!r.ok) {
      assert.equal(r.skipped.reason, reason, `${path.basename(file)}: ${r.skipped.detail}`);
      assert.equal(r.skipped.path, file);
      assert.ok(r.skipped.detail.length > 0);
    }
  }
  const after = Object.values(bad).map((f) => [readFileSync(f).toString('hex'), statSync(f).mtimeMs]);
  assert.deepEqual(after, before);
});

test('the pixel limit is read from the header and is configurable', async () => {
  const dir = tempDir();
  const file = await write(path.join(dir, 'big.png'), solid(200, 100, [1, 2, 3]), 'png');
  const r = await decodeImage(file, { maxPixels: 10_000 });
  assert.ok(!r.ok && r.skipped.reason === 'too large' && /20000|0\.0 MP|maxPixels/.test(r.skipped.detail), JSON.stringify(r));
  assert.ok((await decodeImage(file, { maxPixels: 20_000 })).ok);
});

test('a Buffer decodes exactly as its file does, and bad bytes are skipped with the same reasons', async () => {
  const dir = tempDir();
  const file = await write(path.join(dir, 'photo.jpg'), drawn(50, 40, (x, y) => [5 * x, 6 * y, 100]), 'jpeg');
  for (const o of [{}, { size: 32 }, { size: 32, method: 'pad' as const }]) {
    assert.deepEqual(await decodeImage(readFileSync(file), o), await decodeImage(file, o), JSON.stringify(o));
  }
  assert.deepEqual(await probeImage(readFileSync(file)), { ok: true, height: 40, width: 50 });
  for (const [reason, bad] of Object.entries(await writeBadFiles(dir))) {
    const r = await decodeImage(readFileSync(bad), { size: 32 });
    assert.ok(!r.ok && r.skipped.reason === reason && r.skipped.path === '<buffer>', `${reason}: ${JSON.stringify(r.ok ? 'decoded' : r.skipped)}`);
  }
});
