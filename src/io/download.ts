// Verified, atomic downloads: bytes stream into a temporary file beside the destination while
// SHA-256 is computed, and only a complete file whose digest matches is renamed into place. A
// reader of `dest` therefore sees either nothing or a verified file, never half of one.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import nodePath from 'node:path';

/** Receives the bytes written so far and the expected total (null when the server gives no length). */
export type ProgressCallback = (bytesSoFar: number, totalBytes: number | null) => void;

/** Why a download failed; one value per kind of problem, for callers that branch on it. */
export type DownloadErrorReason =
  | 'network' // no response at all: DNS, refused, unreachable, reset, TLS (often: the machine is offline)
  | 'http-status' // the final response (after redirects) was not 200
  | 'interrupted' // the connection broke mid-file
  | 'length-mismatch' // the body's size differs from its Content-Length
  | 'hash-mismatch' // the SHA-256 digest does not start with the expected prefix
  | 'timeout' // no data for timeoutMs
  | 'io'; // the temporary file could not be written, synced or renamed

/** A download failed; nothing was left at `dest`, and no temporary file either. */
export class DownloadError extends Error {
  constructor(readonly url: string, readonly dest: string, readonly reason: DownloadErrorReason, readonly detail: string,
    options?: { cause?: unknown }) {
    super(`download of ${url} failed: ${detail}`, options);
    this.name = 'DownloadError';
  }
}

export interface DownloadOptions {
  /** Leading hex digits the file's SHA-256 must start with (torch.hub's file-name suffix); '' checks nothing. */
  sha256Prefix: string;
  onProgress?: ProgressCallback;
  /** Give up when no data arrives for this long, connecting included. Default DEFAULT_TIMEOUT_MS. */
  timeoutMs?: number;
  /** The fetch to use (tests, proxies); default the global fetch. */
  fetchImpl?: typeof fetch;
}

/** What a successful download wrote. */
export interface DownloadResult {
  dest: string;
  bytes: number;
  /** The full SHA-256 hex digest of the file. */
  sha256: string;
}

/** An idle timeout rather than a total one: a slow link still finishes a 500 MB file. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Downloads `url` to `dest`; resolves with its size and SHA-256 once the verified file has been
 * renamed into place. Follows redirects. The parent folder is created if needed. Rejects with a
 * DownloadError, having removed its temporary file, on any failure.
 */
export async function download(url: string, dest: string, o: DownloadOptions): Promise<DownloadResult> {
  const { sha256Prefix, onProgress, timeoutMs = DEFAULT_TIMEOUT_MS, fetchImpl = fetch } = o;
  const expected = sha256Prefix.toLowerCase();
  if (!/^[0-9a-f]*$/.test(expected)) throw new TypeError(`sha256Prefix '${sha256Prefix}' is not hexadecimal`);
  const fail = (reason: DownloadErrorReason, detail: string, cause?: unknown): never => {
    throw new DownloadError(url, dest, reason, detail, cause === undefined ? undefined : { cause });
  };

  const controller = new AbortController();
  const timeoutError = new Error(`no data for ${timeoutMs} ms`);
  let timer: NodeJS.Timeout | undefined;
  const armTimer = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(timeoutError), timeoutMs);
  };

  const temp = `${dest}.part-${process.pid}-${randomBytes(4).toString('hex')}`;
  let file: FileHandle | null = null;
  try {
    armTimer();
    let response: Response;
    try {
      response = await fetchImpl(url, { signal: controller.signal, redirect: 'follow', headers: { 'accept-encoding': 'identity' } });
    } catch (e) {
      if (controller.signal.aborted) return fail('timeout', `no response within ${timeoutMs} ms`, e);
      return fail('network', `cannot connect: ${causeMessage(e)}`, e);
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      return fail('http-status', `the server answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}` +
        (response.url && response.url !== url ? ` (at ${response.url})` : ''));
    }
    // A compressed body is decoded by fetch, so its Content-Length no longer counts what we see.
    const encoding = response.headers.get('content-encoding');
    const lengthHeader = response.headers.get('content-length');
    const total = lengthHeader !== null && (!encoding || encoding === 'identity') && /^\d+$/.test(lengthHeader)
      ? Number(lengthHeader) : null;

    try {
      await mkdir(nodePath.dirname(dest), { recursive: true });
      file = await open(temp, 'wx');
    } catch (e) {
      return fail('io', `cannot create ${temp}: ${(e as Error).message}`, e);
    }
    const hash = createHash('sha256');
    let received = 0;
    onProgress?.(0, total);
    const reader = response.body?.getReader();
    for (;;) {
      let chunk: { done: true; value?: undefined } | { done: false; value: Uint8Array };
      try {
        if (!reader) break;
        chunk = await reader.read();
      } catch (e) {
        if (controller.signal.aborted) return fail('timeout', `no data for ${timeoutMs} ms after ${received} bytes`, e);
        return fail('interrupted', `the connection broke after ${received}${total !== null ? ` of ${total}` : ''} bytes (${causeMessage(e)})`, e);
      }
      if (chunk.done) break;
      armTimer();
      hash.update(chunk.value);
      try {
        await writeAll(file, chunk.value);
      } catch (e) {
        return fail('io', `cannot write ${temp}: ${(e as Error).message}`, e);
      }
      received += chunk.value.length;
      onProgress?.(received, total); // its own errors propagate as they are
    }
    clearTimeout(timer);
    if (total !== null && received !== total) {
      return fail('length-mismatch', `received ${received} bytes but Content-Length said ${total}`);
    }
    const digest = hash.digest('hex');
    if (!digest.startsWith(expected)) {
      return fail('hash-mismatch', `SHA-256 mismatch: expected a digest starting with ${expected}, got ${digest}`);
    }
    try {
      await file.sync();
      await file.close();
      file = null;
      await rename(temp, dest);
    } catch (e) {
      return fail('io', `cannot move the verified file into place at ${dest}: ${(e as Error).message}`, e);
    }
    await syncFolder(nodePath.dirname(dest));
    return { dest, bytes: received, sha256: digest };
  } finally {
    clearTimeout(timer);
    controller.abort(); // releases the socket if we left before the end of the body; a no-op otherwise
    if (file) await file.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined); // gone already after a successful rename
  }
}

async function writeAll(file: FileHandle, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await file.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

// Makes the rename itself durable; best effort, as some file systems refuse to sync a folder.
async function syncFolder(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try { await handle.sync(); } finally { await handle.close(); }
  } catch { /* not supported here */ }
}

// fetch wraps the socket's error: TypeError('fetch failed', { cause: Error('connect ECONNREFUSED …') }).
function causeMessage(e: unknown): string {
  const cause = (e as { cause?: unknown }).cause;
  const inner = cause instanceof Error ? cause.message : undefined;
  const outer = e instanceof Error ? e.message : String(e);
  return inner && inner !== outer ? inner : outer;
}

/** Where progress goes: stderr by default; a test can pass its own. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

/** A ProgressCallback that draws a bar; call `end()` when the download settles. */
export interface ProgressBar extends ProgressCallback {
  /** Finishes the line (terminal), or prints the one summary line (not a terminal). */
  end(failed?: boolean): void;
}

// Redraws at most this often, so a fast local copy does not flood the terminal.
const REDRAW_MS = 100;

/**
 * Returns a progress callback that draws `label [####----] 45% 20.1/44.7 MB 5.2 MB/s` on one
 * terminal line; when the stream is not a terminal it draws nothing and `end()` prints one line.
 */
export function progressBar(label: string, stream: ProgressStream = process.stderr): ProgressBar {
  const started = Date.now();
  let lastDraw = 0;
  let done = 0;
  let total: number | null = null;
  let drawn = false;

  const line = (): string => {
    const seconds = Math.max((Date.now() - started) / 1000, 1e-3);
    const rate = `${mb(done / seconds)}/s`;
    if (total === null || total === 0) return `${label} ${mb(done)} ${rate}`;
    const fraction = Math.min(done / total, 1);
    const width = Math.max(10, Math.min(30, (stream.columns ?? 80) - label.length - 40));
    const filled = Math.round(fraction * width);
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${percent} ${mbPair(done, total)} ${rate}`;
  };
  const draw = (): void => {
    stream.write(`\r${line()}\x1b[K`);
    drawn = true;
  };

  const bar = ((bytesSoFar: number, totalBytes: number | null): void => {
    done = bytesSoFar;
    total = totalBytes;
    if (!stream.isTTY) return;
    const now = Date.now();
    if (now - lastDraw >= REDRAW_MS || (total !== null && done >= total)) {
      lastDraw = now;
      draw();
    }
  }) as ProgressBar;
  bar.end = (failed = false): void => {
    if (stream.isTTY) {
      if (drawn) {
        draw();
        stream.write(failed ? ' failed\n' : '\n');
      }
    } else {
      stream.write(failed ? `${label}: failed after ${mb(done)}\n` : `${label}: ${mb(done)} downloaded\n`);
    }
  };
  return bar;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function mbPair(done: number, total: number): string {
  return `${(done / 1e6).toFixed(1)}/${(total / 1e6).toFixed(1)} MB`;
}
