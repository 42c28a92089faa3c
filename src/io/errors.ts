// The one error type of the weight-file readers and writers, and the one way they read a file.
import { readFileSync, statSync } from 'node:fs';

/** Why a weight file was refused; one value per kind of problem, for callers that branch on it. */
export type CheckpointErrorReason =
  | 'io' // the file could not be read or written (missing, permissions, disk full…)
  | 'empty'
  | 'unknown-format' // neither a torch.save zip nor a safetensors file
  | 'legacy-format' // torch.save before PyTorch 1.6 (a raw pickle stream)
  | 'tar-format' // torch.save's even older tar container
  | 'torchscript' // torch.jit.save archive: code, not a state dict
  | 'truncated' // the file ends before the data it describes
  | 'corrupt' // inconsistent structure
  | 'compressed' // a zip entry with a compression method we do not read
  | 'unsafe-global' // the pickle names a Python callable outside the allow-list
  | 'unsupported' // valid, but a feature this reader does not handle (pickle protocol, dtype…)
  | 'missing-storage' // a tensor's storage record is absent from the zip
  | 'out-of-bounds' // a tensor reaches outside its storage or the data section
  | 'not-a-state-dict' // the pickle holds something other than name → tensor
  | 'invalid-header' // safetensors header: length, JSON, fields
  | 'bad-offsets'; // safetensors data_offsets: overlaps, gaps, size mismatches

/** A weight file was refused or could not be written: `path` names it ('<buffer>' for bytes), `reason` says why. */
export class CheckpointError extends Error {
  constructor(readonly path: string, readonly reason: CheckpointErrorReason, readonly detail: string) {
    super(`${path}: ${detail}`);
    this.name = 'CheckpointError';
  }
}

/**
 * Returns a file's bytes, or the bytes given; throws CheckpointError('io') for a path that is
 * not a regular file (a FIFO or a device would block or never end) or cannot be read. `what`
 * names the file in the message ('the weights file').
 */
export function readSource(source: string | Uint8Array, what: string): Uint8Array {
  if (typeof source !== 'string') return source;
  let st;
  try {
    st = statSync(source);
  } catch (e) {
    throw new CheckpointError(source, 'io', `cannot read ${what}: ${(e as Error).message}`);
  }
  if (!st.isFile()) throw new CheckpointError(source, 'io', `cannot read ${what}: not a regular file`);
  try {
    return readFileSync(source);
  } catch (e) {
    throw new CheckpointError(source, 'io', `cannot read ${what}: ${(e as Error).message}`);
  }
}

/** The name a source is reported under: its path, or '<buffer>' for bytes in memory. */
export function sourceName(source: string | Uint8Array): string {
  return typeof source === 'string' ? source : '<buffer>';
}
