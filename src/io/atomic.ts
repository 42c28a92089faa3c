// Files written so that no reader ever sees half of one: the bytes go to a temporary file in the
// same folder, are flushed to the disk (fsync), and the file is renamed over its final name; the
// folder is then synced so that the rename itself survives a crash. A process killed at any moment
// leaves either the old file or the new one (and at worst a stray `.NAME.*.tmp`).
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import nodePath from 'node:path';

/** Writes `chunks` in order to `path` atomically (see above). Throws the file system's error; the temporary file is removed. */
export function writeAtomic(path: string, chunks: Iterable<Uint8Array | string>): void {
  const dir = nodePath.dirname(path);
  const temp = nodePath.join(dir, `.${nodePath.basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | null = null;
  try {
    fd = openSync(temp, 'wx');
    for (const chunk of chunks) writeAll(fd, typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(temp, path);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    try { unlinkSync(temp); } catch { /* never created, or already renamed */ }
    throw e;
  }
  syncDir(dir);
}

/** Flushes a folder's entries (a rename into it) to the disk; best effort, as some file systems refuse. */
export function syncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // not supported here: the rename is still atomic, only perhaps not yet durable
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
}
