// Weight files: PyTorch checkpoints (read as data, never executed) and safetensors.
import type { StateDict } from '../nn/module.js';
import { CheckpointError, readSource } from './errors.js';
import { parseTorchCheckpoint, sniffTorchFormat } from './torch-checkpoint.js';
import { parseSafetensors } from './safetensors.js';

export { CheckpointError, readSource, type CheckpointErrorReason } from './errors.js';
export { loadTorchCheckpoint, sniffTorchFormat, ALLOWED_GLOBALS, type TorchFormat } from './torch-checkpoint.js';
export { readSafetensors, parseSafetensors, parseSafetensorsHeader, writeSafetensors, MAX_HEADER_BYTES, type SafetensorsFile, type SafetensorsHeader } from './safetensors.js';
export { writeAtomic, syncDir } from './atomic.js';

/** A weight file's tensors, with the format it was read as. */
export interface WeightsFile {
  format: 'torch' | 'safetensors';
  tensors: StateDict;
  /** safetensors `__metadata__`; empty for torch checkpoints. */
  metadata: Record<string, string>;
}

/**
 * Returns the tensors of a weight file, whatever its extension: a torch.save zip (or one of the
 * torch formats it refuses with a specific message) by its leading bytes, else safetensors when
 * its header opens a JSON object. Synchronous; every error is a CheckpointError naming `path`.
 */
export function loadWeightsFile(path: string): WeightsFile {
  const bytes = readSource(path, 'the weights file');
  if (bytes.length === 0) throw new CheckpointError(path, 'empty', 'the file is empty');
  if (sniffTorchFormat(bytes) !== 'unknown') return { format: 'torch', tensors: parseTorchCheckpoint(bytes, path), metadata: {} };
  // safetensors: an 8-byte length, then JSON text starting with '{'.
  if (bytes.length >= 9 && bytes[8] === 0x7b) return { format: 'safetensors', ...parseSafetensors(bytes, path) };
  const start = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new CheckpointError(path, 'unknown-format',
    `neither a PyTorch checkpoint (a torch.save zip) nor a safetensors file (it starts with ${start})`);
}
