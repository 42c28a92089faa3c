// Acceptance (issue 14, serving and the page): `visiontune serve` over loopback takes 1,000
// requests at concurrency 16, a tenth of them bad (empty, garbage, truncated JPEG, a 20,000 ×
// 20,000 PNG bomb, a body over the limit): every good answer equals predict's, every bad one is
// its documented 4xx, the server stays up and its memory settles; SIGTERM lets the requests in
// flight finish. The page of `serve` and the page of `export --web` (onnxruntime-web in headless
// Chromium) show predict's top class and probability, with no console error and no request
// outside the local server.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import Fastify from 'fastify';
import puppeteer from 'puppeteer-core';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { loadModel } from '../../src/learner/export.js';
import { hugePngHeader } from '../data/images.js';
import { visiontune } from '../helpers/cli.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'test-artifacts');
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);
const dir = mkdtempSync(path.join(tmpdir(), 'vt-serve-'));
const data = path.join(dir, 'photos');
const run = path.join(dir, 'run');
let images: string[] = [];

test.before(async () => {
  images = await writeSyntheticFolder(data, { perClass: 10, numClasses: 3, minSide: 48, maxSide: 72, seed: 4 });
  const r = visiontune(['train', data, '--arch', 'resnet18', '--weights', 'none', '--size', '32', '--item-size', '48', '--bs', '8', '--epochs', '2',
    '--threads', '2', '--out', run]);
  assert.equal(r.code, 0, r.stderr);
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Starts `visiontune serve` on a free port; resolves with the process and its base URL. */
async function startServer(extra: string[] = []): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, [BIN, 'serve', run, '--port', '0', '--threads', '2', ...extra], { env: { ...process.env, VISIONTUNE_OFFLINE: '1' } });
  let output = '';
  child.stderr!.on('data', (b: Buffer) => { output += b; });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      output += b;
      const m = /on (http:\/\/[\d.]+:\d+)/.exec(output);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${output}`)));
  });
  return { child, url, output: () => output };
}

const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

test('issue 14: 1,000 requests at concurrency 16, 10% bad: good answers equal predict\'s, bad ones their 4xx, the server stays up, memory settles', async (t) => {
  const model = loadModel(path.join(run, 'best.safetensors'));
  const good = images.slice(0, 10);
  const expected = new Map<string, number[]>();
  for (const f of good) expected.set(f, (await model.predict(f)).probs);
  model.model.dispose();
  const jpeg = readFileSync(good[0]);
  const bad: { name: string; body: Buffer; status: number; error: RegExp }[] = [
    { name: 'empty', body: Buffer.alloc(0), status: 400, error: /the body is empty/ },
    { name: 'garbage', body: Buffer.from('definitely not an image, just some text'.repeat(10)), status: 400, error: /not an image/ },
    { name: 'truncated JPEG', body: jpeg.subarray(0, Math.floor(jpeg.length / 2)), status: 400, error: /cannot be used: (truncated|corrupt)/ },
    { name: 'PNG bomb', body: hugePngHeader(20_000, 20_000), status: 413, error: /too large.*--max-megapixels/ },
    { name: 'over the body limit', body: Buffer.alloc(300 * 1024, 7), status: 413, error: /over the limit of \d+ bytes \(--max-body-mb\)/ },
  ];
  const server = await startServer(['--max-body-mb', '0.25']);
  try {
    let done = 0;
    let rssAt100 = 0;
    const failures: string[] = [];
    const one = async (k: number): Promise<void> => {
      const isBad = k % 10 === 9;
      const b = bad[Math.floor(k / 10) % bad.length];
      const file = good[k % good.length];
      const r = await fetch(`${server.url}/predict?top_k=3`, { method: 'POST', body: isBad ? b.body : readFileSync(file), headers: { 'content-type': 'application/octet-stream' } });
      const body = await r.json() as { error?: string; predictions?: { index: number; prob: number }[] };
      if (isBad) {
        if (r.status !== b.status || !b.error.test(body.error ?? '')) failures.push(`${b.name}: ${r.status} ${JSON.stringify(body)}`);
      } else {
        const want = expected.get(file)!;
        if (r.status !== 200 || body.predictions!.some((p) => Math.abs(p.prob - want[p.index]) > 1e-5)) failures.push(`${file}: ${r.status} ${JSON.stringify(body)}`);
      }
      if (++done === 100) rssAt100 = rssMb(server.child.pid!);
    };
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => { while (next < 1000) await one(next++); }));
    const rssEnd = rssMb(server.child.pid!);
    const health = await (await fetch(`${server.url}/health`)).json() as { status: string; batches: number; images: number };
    t.diagnostic(`RSS ${rssAt100.toFixed(0)} MB after 100 requests, ${rssEnd.toFixed(0)} MB after 1,000; ${health.images} images in ${health.batches} batches`);
    assert.deepEqual(failures.slice(0, 5), []);
    assert.equal(health.status, 'ok');
    assert.ok(health.images === 900 && health.batches < 900, 'requests were batched');
    assert.ok(rssEnd - rssAt100 <= 50, `RSS grew ${(rssEnd - rssAt100).toFixed(0)} MB`);
    const meta = await (await fetch(`${server.url}/model`)).json() as { classes: string[] };
    assert.deepEqual(meta.classes, ['disc', 'horizontal', 'vertical']);
    const multipart = new FormData();
    multipart.append('image', new Blob([readFileSync(good[1])], { type: 'image/jpeg' }), 'photo.jpg');
    const m = await fetch(`${server.url}/predict`, { method: 'POST', body: multipart });
    assert.equal(m.status, 200);
    const top = (await m.json() as { predictions: { index: number; prob: number }[] }).predictions[0];
    assert.ok(Math.abs(top.prob - expected.get(good[1])![top.index]) <= 1e-5);
  } finally {
    server.child.kill('SIGKILL');
  }
});

test('issue 14: SIGTERM lets the requests in flight finish, then the server exits 0', async () => {
  const server = await startServer(['--max-wait-ms', '200']);
  const requests = images.slice(0, 6).map((f) => fetch(`${server.url}/predict`, { method: 'POST', body: readFileSync(f) }));
  await new Promise((r) => setTimeout(r, 50));
  server.child.kill('SIGTERM');
  const statuses = await Promise.all(requests.map(async (p) => (await p).status));
  const code = await new Promise<number | null>((resolve) => server.child.on('exit', (c) => resolve(c)));
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200]);
  assert.equal(code, 0);
  assert.match(server.output(), /SIGTERM: finishing the requests in flight/);
});

/** Opens a page, gives it `image`, and returns its top class and probability, console errors and requests. */
async function classifyInPage(url: string, image: string, shot: string) {
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('request', (q) => requests.push(q.url()));
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
    const input = await page.$('#file');
    await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(image);
    await page.waitForSelector('#result[data-top]', { timeout: 60_000 });
    const [top, probability] = await page.$eval('#result', (el) => [(el as unknown as { dataset: Record<string, string> }).dataset.top,
      Number((el as unknown as { dataset: Record<string, string> }).dataset.probability)] as const);
    await page.screenshot({ path: shot, fullPage: true });
    return { top, probability, errors, requests };
  } finally {
    await browser.close();
  }
}

test('issue 14: the pages of serve and export --web show predict\'s top class and probability (1e-3), offline', async (t) => {
  assert.ok(CHROMIUM, 'Chromium is installed (scripts/setup.sh --test installs Debian\'s chromium)');
  // An image already at the item size: the page's canvas and sharp then read the same pixels.
  const image = path.join(dir, 'probe.png');
  await sharp(images[3]).resize(48, 48, { fit: 'cover' }).png().toFile(image);
  const p = visiontune(['predict', run, image, '--json']);
  assert.equal(p.code, 0, p.stderr);
  const want = (JSON.parse(p.stdout) as { predictions: { predictions: { label: string; prob: number }[] }[] }).predictions[0].predictions[0];
  const { mkdirSync } = await import('node:fs');
  mkdirSync(ARTIFACTS, { recursive: true });

  const server = await startServer();
  try {
    const got = await classifyInPage(`${server.url}/`, image, path.join(ARTIFACTS, 'serve-page.png'));
    t.diagnostic(`serve's page: ${got.top} ${got.probability}; predict: ${want.label} ${want.prob}`);
    assert.deepEqual(got.errors, []);
    assert.ok(got.requests.every((u) => u.startsWith(server.url) || u.startsWith('blob:') || u.startsWith('data:')), got.requests.join(' '));
    assert.equal(got.top, want.label);
    assert.ok(Math.abs(got.probability - want.prob) <= 1e-3);
  } finally {
    server.child.kill('SIGKILL');
  }

  const web = path.join(dir, 'web');
  const e = visiontune(['export', run, '--web', web]);
  assert.equal(e.code, 0, e.stderr);
  const files = Fastify();
  files.get('/*', async (req, reply) => {
    const name = path.basename((req.params as { '*': string })['*'] || 'index.html');
    const file = path.join(web, name);
    if (!existsSync(file)) return reply.status(404).send();
    const type = name.endsWith('.html') ? 'text/html' : name.endsWith('.wasm') ? 'application/wasm' : name.endsWith('js') ? 'text/javascript' : 'application/octet-stream';
    return reply.type(type).send(readFileSync(file));
  });
  const base = await files.listen({ host: '127.0.0.1', port: 0 });
  try {
    const got = await classifyInPage(`${base}/index.html`, image, path.join(ARTIFACTS, 'web-page.png'));
    t.diagnostic(`export --web page: ${got.top} ${got.probability}; predict: ${want.label} ${want.prob}`);
    assert.deepEqual(got.errors, []);
    assert.ok(got.requests.every((u) => u.startsWith(base) || u.startsWith('blob:') || u.startsWith('data:')), got.requests.join(' '));
    assert.equal(got.top, want.label);
    assert.ok(Math.abs(got.probability - want.prob) <= 1e-3);
  } finally {
    await files.close();
  }
});
