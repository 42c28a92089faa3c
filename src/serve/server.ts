// `visiontune serve`: a model behind HTTP, on fastify. POST /predict takes an image (the raw body,
// or a multipart form's first file) and answers its top classes; concurrent requests are batched
// (up to maxBatch images, waiting at most maxWaitMs for more) into one forward pass. Every limit
// — body bytes, image pixels, queue length, request time — is answered with a JSON error naming
// it; input never crashes the server; close() lets the requests in flight finish.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import multipart from '@fastify/multipart';
import { cat, type Tensor } from '../torch/index.js';
import { centreSquare } from '../data/transform.js';
import { cropProbs, topClasses } from '../learner/predict.js';
import type { ExportedModel } from '../learner/export.js';
import { pageHtml } from './page.js';
import { VERSION } from '../version.js';
import * as defaults from '../models/defaults.js';

/** The server's limits and batching; defaults in SERVE_DEFAULTS. */
export interface ServeOptions {
  /** Images in one forward pass at most. */
  maxBatch: number;
  /** How long the first request of a batch waits for others, in ms (0: no wait). */
  maxWaitMs: number;
  /** Requests waiting for the model at most; more are answered 503. */
  maxQueue: number;
  /** Request body size at most, in bytes; more is answered 413. */
  maxBodyBytes: number;
  /** Decoded image size at most, in pixels (read from the header, before decoding); more is answered 413. */
  maxPixels: number;
  /** Time a request may take, in ms, queue included; more is answered 503. */
  requestTimeoutMs: number;
  /** Classes answered per image when ?top_k= is not given. */
  topK: number;
}

const D = defaults.SERVE_DEFAULTS;
export const SERVE_DEFAULTS: ServeOptions = {
  maxBatch: D.maxBatch, maxWaitMs: D.maxWaitMs, maxQueue: D.maxQueue, maxBodyBytes: Math.round(D.maxBodyMb * 1024 * 1024),
  maxPixels: Math.round(D.maxMegapixels * 1e6), requestTimeoutMs: D.requestTimeoutMs, topK: 5,
};

/** An answer with a status: what /predict sends when it cannot classify. */
class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly limit?: string) {
    super(message);
  }
}

interface Pending {
  square: Tensor;
  resolve: (probs: number[]) => void;
  reject: (e: Error) => void;
}

// Requests waiting for the model, run in batches of up to maxBatch, one batch at a time.
class Batcher {
  readonly queue: Pending[] = [];
  #running = false;
  #timer: NodeJS.Timeout | null = null;
  /** Batches run and images in them, for /health. */
  batches = 0;
  images = 0;

  constructor(readonly model: ExportedModel, readonly o: ServeOptions) {}

  submit(square: Tensor): Promise<number[]> {
    if (this.queue.length >= this.o.maxQueue) {
      square.dispose();
      return Promise.reject(new HttpError(503, `the queue is full (${this.o.maxQueue} requests waiting, --max-queue): try again shortly`, 'max-queue'));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ square, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#running || this.#timer) return;
    if (this.queue.length >= this.o.maxBatch || this.o.maxWaitMs === 0) {
      setImmediate(() => this.#run());
    } else {
      this.#timer = setTimeout(() => { this.#timer = null; this.#run(); }, this.o.maxWaitMs);
    }
  }

  #run(): void {
    if (this.#running || this.queue.length === 0) return;
    this.#running = true;
    const batch = this.queue.splice(0, this.o.maxBatch);
    try {
      const t = this.model.preprocess;
      const squares = batch.length === 1 ? batch[0].square : cat(batch.map((p) => p.square));
      const flat = cropProbs(this.model.model, squares, t, { temperature: this.model.meta.temperature });
      if (squares !== batch[0].square) squares.dispose();
      const c = this.model.classes.length;
      batch.forEach((p, i) => p.resolve(flat.slice(i * c, (i + 1) * c)));
      this.batches++;
      this.images += batch.length;
    } catch (e) {
      for (const p of batch) p.reject(e as Error);
    } finally {
      for (const p of batch) p.square.dispose();
      this.#running = false;
      if (this.queue.length) this.#schedule();
    }
  }
}

/** Returns the fastify app serving `model` (not listening yet). */
export async function createServer(model: ExportedModel, options: Partial<ServeOptions> = {}): Promise<FastifyInstance> {
  const o: ServeOptions = { ...SERVE_DEFAULTS, ...options };
  const app = Fastify({ bodyLimit: o.maxBodyBytes, logger: false });
  await app.register(multipart, { limits: { fileSize: o.maxBodyBytes, files: 1 } });
  // Any other body is the image itself, as bytes.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: o.maxBodyBytes }, (_req, body, done) => done(null, body));
  const batcher = new Batcher(model, o);
  const t = model.preprocess;

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof HttpError) return sendError(reply, err);
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || err.code === 'FST_REQ_FILE_TOO_LARGE') {
      return sendError(reply, new HttpError(413, `the body is over the limit of ${o.maxBodyBytes} bytes (--max-body-mb)`, 'max-body'));
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    return sendError(reply, new HttpError(status, status === 500 ? `internal error: ${err.message}` : err.message));
  });

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(pageHtml({
    mode: 'server', title: `${model.meta.architecture}: ${model.classes.length} classes`, classes: model.classes, itemSize: t.itemSize, topK: Math.min(5, model.classes.length),
  })));
  app.get('/health', async () => ({ status: 'ok', queue: batcher.queue.length, batches: batcher.batches, images: batcher.images }));
  app.get('/model', async () => ({
    architecture: model.meta.architecture, classes: model.classes, size: model.meta.size, itemSize: t.itemSize, normalization: model.meta.normalization,
    temperature: model.meta.temperature ?? 1, visiontuneVersion: VERSION, limits: o,
  }));
  app.post('/predict', async (req, reply) => {
    const started = Date.now();
    const query = req.query as { top_k?: string };
    const topK = query.top_k === undefined ? o.topK : Number(query.top_k);
    if (!Number.isInteger(topK) || topK < 1) throw new HttpError(400, `top_k must be a positive integer, got '${query.top_k}'`);
    let bytes: Buffer;
    if (req.isMultipart()) {
      const file = await req.file();
      if (!file) throw new HttpError(400, 'the form has no file: send the image as a file field, or as the raw body');
      bytes = await file.toBuffer();
    } else {
      bytes = req.body as Buffer;
    }
    if (!Buffer.isBuffer(bytes) || bytes.length === 0) throw new HttpError(400, 'the body is empty: send an image (JPEG, PNG, WebP, GIF, TIFF, AVIF or BMP)');
    const square = await centreSquare(bytes, t, { maxPixels: o.maxPixels });
    if (!('shape' in square)) {
      const tooLarge = square.reason === 'too large';
      throw new HttpError(tooLarge ? 413 : 400, `the image cannot be used: ${square.reason} (${square.detail})${tooLarge ? '; the server\'s limit is --max-megapixels' : ''}`,
        tooLarge ? 'max-pixels' : undefined);
    }
    const left = o.requestTimeoutMs - (Date.now() - started);
    let timer: NodeJS.Timeout | undefined;
    const probs = await Promise.race([
      batcher.submit(square),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new HttpError(503, `the request took longer than ${o.requestTimeoutMs} ms (--request-timeout-ms)`, 'request-timeout')), Math.max(0, left));
      }),
    ]).finally(() => clearTimeout(timer));
    return reply.send({ predictions: topClasses(probs, model.classes, topK) });
  });
  return app;
}

function sendError(reply: FastifyReply, e: HttpError): FastifyReply {
  return reply.status(e.status).type('application/json').send({ error: e.message, ...(e.limit ? { limit: e.limit } : {}) });
}
