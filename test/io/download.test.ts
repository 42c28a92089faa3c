// The weight cache and the verified download, against a local HTTP server on 127.0.0.1: no test
// here touches the real network.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { tensor, type Tensor } from '../../src/torch/index.js';
import { StateDictError } from '../../src/nn/module.js';
import { writeSafetensors } from '../../src/io/index.js';
import { download, DownloadError, progressBar, type DownloadErrorReason } from '../../src/io/download.js';
import { zooEntry, type ZooEntry } from '../../src/models/registry.js';
import {
  cacheDir, cachedWeightsPath, isCached, loadPretrained, resolveWeights, TORCHVISION_BASE_URL, WeightsError,
} from '../../src/models/weights.js';
import { python, enc, type Encoded } from '../helpers/python.js';
import { tempDir } from './fixtures.js';

const ARCH = 'mobilenet_v2';

interface TestServer {
  /** The server's base URL, ending in '/'. */
  base: string;
  /** Paths requested so far. */
  requests: string[];
  close(): Promise<void>;
}

async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<TestServer> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}/`,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Serves `files` (URL path → bytes) with a Content-Length; anything else is a 404. */
function fileHandler(files: Record<string, Uint8Array>) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const body = files[req.url ?? ''];
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' }).end(body);
  };
}

/** A fresh cache root for this test, in $VISIONTUNE_HOME; weights served from `base` if given. */
function freshHome(base?: string): string {
  const home = tempDir('home');
  process.env.VISIONTUNE_HOME = home;
  if (base) process.env.VISIONTUNE_WEIGHTS_BASE_URL = base;
  return home;
}

afterEach(() => {
  delete process.env.VISIONTUNE_HOME;
  delete process.env.VISIONTUNE_WEIGHTS_BASE_URL;
});

/** Every file in the cache's weights folder, temporary ones included. */
function cached(home: string): string[] {
  const dir = path.join(home, 'weights');
  return existsSync(dir) ? readdirSync(dir) : [];
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A zoo entry that builds mobilenet_v2 but whose weights are `file`, published with `bytes`' hash. */
function entryFor(file: string, bytes: Uint8Array): ZooEntry {
  const zoo = zooEntry(ARCH);
  return { ...zoo, weights: { ...zoo.weights, url: TORCHVISION_BASE_URL + file, sha256Prefix: sha256(bytes).slice(0, 8) } };
}

function expectDownloadError(e: unknown, reason: DownloadErrorReason, pattern: RegExp): true {
  assert.ok(e instanceof DownloadError, `expected a DownloadError, got ${String(e)}`);
  assert.equal(e.reason, reason, e.message);
  assert.match(e.message, pattern);
  return true;
}

// mobilenet_v2 built here, its state dict as a safetensors file: the bytes the server publishes.
const scratch = tempDir('download-src');
const modelFile = path.join(scratch, 'mobilenet_v2.safetensors');
const source = zooEntry(ARCH).build();
writeSafetensors(modelFile, source.stateDict());
const modelBytes = readFileSync(modelFile);
const sourceBias = source.stateDict().get('classifier.1.bias')!.toArray();
source.dispose();

function tensorOf(model: { stateDict(): Map<string, Tensor> }, key: string): number[] {
  return model.stateDict().get(key)!.toArray();
}

test('a good file is downloaded, verified and cached; a second call uses the cache without a request', async () => {
  const entry = entryFor('mobilenet_v2_test-x.safetensors', modelBytes);
  const server = await serve(fileHandler({ '/mobilenet_v2_test-x.safetensors': modelBytes }));
  const home = freshHome(server.base);
  assert.equal(isCached(entry), false);
  const progress: [number, number | null][] = [];

  const model = await loadPretrained(entry, 'imagenet', { onProgress: (n, total) => progress.push([n, total]) });
  assert.deepEqual(server.requests, ['/mobilenet_v2_test-x.safetensors']);
  assert.deepEqual(tensorOf(model, 'classifier.1.bias'), sourceBias);
  model.dispose();
  const dest = path.join(home, 'weights', 'mobilenet_v2_test-x.safetensors');
  assert.equal(cacheDir(), home);
  assert.equal(cachedWeightsPath(entry), dest);
  assert.ok(isCached(entry));
  assert.deepEqual(cached(home), ['mobilenet_v2_test-x.safetensors'], 'the file under its final name, and no .part file');
  assert.equal(sha256(readFileSync(dest)), sha256(modelBytes));
  assert.deepEqual(progress[0], [0, modelBytes.length]);
  assert.deepEqual(progress.at(-1), [modelBytes.length, modelBytes.length]);
  assert.ok(progress.every(([n], i) => i === 0 || n >= progress[i - 1][0]), 'progress never goes back');

  await server.close();
  assert.equal(await resolveWeights(entry, 'imagenet'), dest);
  const again = await loadPretrained(entry, 'imagenet');
  assert.deepEqual(tensorOf(again, 'classifier.1.bias'), sourceBias);
  again.dispose();
  assert.equal(server.requests.length, 1, 'the cached file needs no request');
});

test('a hash mismatch is a DownloadError naming the expected prefix and the digest; nothing is cached', async () => {
  const wrong = randomBytes(100_000);
  const file = path.basename(new URL(zooEntry(ARCH).weights.url).pathname); // mobilenet_v2-7ebf99e0.pth
  const server = await serve(fileHandler({ [`/${file}`]: wrong }));
  const home = freshHome(server.base);
  try {
    await assert.rejects(resolveWeights(ARCH, 'imagenet'), (e) => {
      expectDownloadError(e, 'hash-mismatch', new RegExp(`expected a digest starting with 7ebf99e0, got ${sha256(wrong)}`));
      const d = e as DownloadError;
      assert.equal(d.url, `${server.base}${file}`);
      assert.equal(d.dest, path.join(home, 'weights', file));
      return true;
    });
    assert.deepEqual(cached(home), [], 'no file and no .part file');
    assert.equal(isCached(ARCH), false);
  } finally {
    await server.close();
  }
});

test('a connection cut mid-file is an error and leaves nothing in the cache', async () => {
  const bytes = randomBytes(1_000_000);
  const entry = entryFor('cut-1.pth', bytes);
  const server = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': bytes.length });
    res.write(bytes.subarray(0, bytes.length / 2), () => setTimeout(() => res.socket?.destroy(), 20));
  });
  const home = freshHome(server.base);
  try {
    await assert.rejects(resolveWeights(entry, 'imagenet'), (e) => expectDownloadError(e, 'interrupted', /connection broke after \d+ of 1000000 bytes/));
    assert.deepEqual(cached(home), []);
  } finally {
    await server.close();
  }
});

test('HTTP 404 is an error naming the status; a redirect to the file is followed', async () => {
  const bytes = randomBytes(10_000);
  const entry = entryFor('moved-2.pth', bytes);
  const server = await serve((req, res) => {
    if (req.url === '/moved-2.pth') res.writeHead(302, { location: '/real/moved-2.pth' }).end();
    else fileHandler({ '/real/moved-2.pth': bytes })(req, res);
  });
  const home = freshHome(server.base);
  try {
    await assert.rejects(resolveWeights(ARCH, 'imagenet'), (e) => expectDownloadError(e, 'http-status', /HTTP 404 Not Found/));
    assert.deepEqual(cached(home), []);
    const got = await resolveWeights(entry, 'imagenet');
    assert.deepEqual(readFileSync(got), bytes);
    assert.deepEqual(server.requests, ['/mobilenet_v2-7ebf99e0.pth', '/moved-2.pth', '/real/moved-2.pth']);
  } finally {
    await server.close();
  }
});

test('a server that stops sending is a timeout (reported as offline), with nothing cached', async () => {
  const entry = entryFor('stall-3.pth', randomBytes(1000));
  const server = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': 1000 });
    res.write(Buffer.alloc(100));
  });
  const home = freshHome(server.base);
  try {
    await assert.rejects(resolveWeights(entry, 'imagenet', { timeoutMs: 200 }), (e) => {
      assert.ok(e instanceof WeightsError && e.reason === 'offline', String(e));
      assert.match(e.message, /no data for 200 ms after 100 bytes\): download it yourself to .*--weights FILE/);
      return expectDownloadError(e.cause, 'timeout', /no data for 200 ms after 100 bytes/);
    });
    assert.deepEqual(cached(home), []);
  } finally {
    await server.close();
  }
});

test('offline (nothing listens): WeightsError naming the URL, the cache path and --weights FILE', async () => {
  const closed = await serve(() => undefined);
  await closed.close();
  const home = freshHome(closed.base);
  const url = `${closed.base}mobilenet_v2-7ebf99e0.pth`;
  const dest = path.join(home, 'weights', 'mobilenet_v2-7ebf99e0.pth');
  for (const offline of [false, true]) {
    await assert.rejects(resolveWeights(ARCH, 'imagenet', { offline }), (e) => {
      assert.ok(e instanceof WeightsError, String(e));
      assert.equal(e.reason, 'offline');
      assert.equal(e.url, url);
      assert.equal(e.path, dest);
      for (const part of [url, dest, '--weights FILE']) assert.ok(e.message.includes(part), `'${part}' in: ${e.message}`);
      if (!offline) assert.match(e.message, /ECONNREFUSED/);
      return true;
    });
  }
  await assert.rejects(loadPretrained(ARCH, 'imagenet'), WeightsError);
  assert.deepEqual(cached(home), []);
});

test('a weights path that does not exist is a clear error', async () => {
  const home = freshHome();
  const missing = path.join(home, 'no-such-file.pth');
  await assert.rejects(resolveWeights(ARCH, missing), (e) => {
    assert.ok(e instanceof WeightsError, String(e));
    assert.equal(e.reason, 'missing-file');
    assert.equal(e.message, `weights file not found: ${missing} (expected 'imagenet' or an existing .pth or .safetensors file)`);
    return true;
  });
  await assert.rejects(loadPretrained(ARCH, home), /weights file not found/, 'a folder is not a weights file');
});

test('loadPretrained: a local safetensors file loads; wrong keys or shapes give the StateDictError details', async () => {
  freshHome();
  const model = await loadPretrained(ARCH, modelFile);
  assert.deepEqual(tensorOf(model, 'classifier.1.bias'), sourceBias);

  // A new classifier size: the body loads strictly and the classifier keeps its fresh initialisation.
  const ten = await loadPretrained(ARCH, modelFile, { numClasses: 10 });
  assert.deepEqual(ten.stateDict().get('classifier.1.weight')!.shape, [10, 1280]);
  assert.deepEqual(tensorOf(ten, 'features.18.1.running_var'), tensorOf(model, 'features.18.1.running_var'));
  ten.dispose();

  const sd = new Map(model.stateDict());
  const renamed = new Map(sd);
  renamed.set('fc.weight', renamed.get('classifier.1.weight')!);
  renamed.delete('classifier.1.weight');
  renamed.set('features.0.0.weight', tensor(new Float32Array(27), { shape: [1, 3, 3, 3] }));
  const wrongFile = path.join(scratch, 'wrong-keys.safetensors');
  writeSafetensors(wrongFile, renamed);
  model.dispose();
  for (const numClasses of [undefined, 10]) {
    await assert.rejects(loadPretrained(ARCH, wrongFile, { numClasses }), (e) => {
      assert.ok(e instanceof WeightsError, String(e));
      assert.equal(e.reason, 'mismatch');
      assert.equal(e.path, wrongFile);
      assert.ok(e.cause instanceof StateDictError);
      assert.ok(e.message.startsWith(`${wrongFile}: its weights do not fit mobilenet_v2: `), e.message);
      assert.match(e.message, /features\.0\.0\.weight: file has \[1,3,3,3\], model has \[32,3,3,3\]/);
      if (numClasses === undefined) {
        assert.deepEqual(e.cause.missingKeys, ['classifier.1.weight']);
        assert.deepEqual(e.cause.unexpectedKeys, ['fc.weight']);
        assert.match(e.message, /1 missing keys \(classifier\.1\.weight\); 1 unexpected keys \(fc\.weight\)/);
      }
      return true;
    });
  }
});

test('loadPretrained: a torch.save file of torchvision\'s mobilenet_v2 loads', async () => {
  const home = freshHome();
  const file = path.join(home, 'torchvision-mobilenet_v2.pth');
  const bias = python<Encoded>(`
import torchvision
torch.manual_seed(0)
sd = torchvision.models.mobilenet_v2().state_dict()
torch.save(sd, inp)
out = J(sd['classifier.1.bias'])
`, file);
  const model = await loadPretrained(ARCH, file);
  assert.deepEqual(enc(model.stateDict().get('classifier.1.bias')!).data, bias.data);
  model.dispose();
});

test('download() refuses a bad prefix and writes nothing when the fetch itself fails', async () => {
  const dir = tempDir('download');
  const dest = path.join(dir, 'x.bin');
  await assert.rejects(download('http://127.0.0.1:9/x', dest, { sha256Prefix: 'xyz' }), TypeError);
  const failing: typeof fetch = () => Promise.reject(new TypeError('fetch failed', { cause: Object.assign(new Error('getaddrinfo ENOTFOUND example.invalid'), { code: 'ENOTFOUND' }) }));
  await assert.rejects(download('https://example.invalid/x', dest, { sha256Prefix: '', fetchImpl: failing }),
    (e) => expectDownloadError(e, 'network', /cannot connect: getaddrinfo ENOTFOUND example\.invalid/));
  assert.deepEqual(readdirSync(dir), []);
  const ok: typeof fetch = () => Promise.resolve(new Response(new Uint8Array(10)));
  const stop = new Error('stop');
  await assert.rejects(download('https://example.invalid/x', dest, { sha256Prefix: '', fetchImpl: ok, onProgress: (n) => { if (n) throw stop; } }),
    (e) => e === stop, "the progress callback's error is passed on as it is");
  assert.deepEqual(readdirSync(dir), []);
  writeFileSync(dest, 'kept');
  const notFound: typeof fetch = () => Promise.resolve(new Response('gone', { status: 410, statusText: 'Gone' }));
  await assert.rejects(download('https://example.invalid/x', dest, { sha256Prefix: '', fetchImpl: notFound }), /HTTP 410 Gone/);
  assert.equal(readFileSync(dest, 'utf8'), 'kept', 'a failed download leaves an existing file alone');
});

test('progressBar draws on a terminal and prints one line otherwise', () => {
  const plain = { isTTY: false, text: '', write(s: string) { this.text += s; } };
  const bar = progressBar('resnet18', plain);
  bar(0, 2_000_000);
  bar(1_000_000, 2_000_000);
  bar(2_000_000, 2_000_000);
  bar.end();
  assert.equal(plain.text, 'resnet18: 2.0 MB downloaded\n');

  const tty = { isTTY: true, columns: 100, text: '', write(s: string) { this.text += s; } };
  const live = progressBar('resnet18', tty);
  live(0, null);
  live(2_000_000, 2_000_000);
  live.end();
  assert.match(tty.text, /^\rresnet18 0\.0 MB /);
  assert.match(tty.text, /\rresnet18 \[#+\] 100% 2\.0\/2\.0 MB [\d.]+ MB\/s/);
  assert.ok(tty.text.endsWith('\n'));
  assert.ok(!/downloaded/.test(tty.text));
});
