// `visiontune predict <arch|model.safetensors> <images…>`: top-k classes of each image (files,
// folders searched recursively, glob patterns), from a zoo model with its ImageNet weights (or a
// weights file), or from a model visiontune exported; a file that cannot be used is a skip line.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { zooEntry, ZOO } from '../models/registry.js';
import { loadPretrained } from '../models/weights.js';
import { IMAGENET_CLASSES } from '../models/imagenet-classes.js';
import { loadModel } from '../learner/export.js';
import { predictFiles, type FilePredictions } from '../learner/predict.js';
import { expandImageArgs } from '../data/folders.js';
import { passedOverLines } from '../data/summary.js';
import { DataError, SKIP_HINTS, type Skipped } from '../data/errors.js';
import { UsageError } from './errors.js';
import { cliDevice } from './device.js';
import { DEFAULT_DEVICE } from '../learner/defaults.js';

export interface PredictArgs {
  model: string;
  files: string[];
  weights?: string;
  topK: number;
  json: boolean;
  /** Test-time augmentation passes per image (0: off). */
  tta?: number;
  /** Answer unknown when the (calibrated) top probability is below this share. */
  unknownBelow?: number;
  /** cpu, cuda, cuda:N or auto (see resolveDevice); absent: auto. */
  device?: string;
}

/** The model file an argument names: the file itself, or the model.safetensors inside an output folder `train` wrote. */
export function modelFileOf(arg: string): string {
  if (!existsSync(arg) || !statSync(arg).isDirectory()) return arg;
  // A run folder's best model, else its last, else an older output folder's model.safetensors.
  for (const name of ['best.safetensors', 'last.safetensors', 'model.safetensors']) if (existsSync(path.join(arg, name))) return path.join(arg, name);
  throw new Error(`${arg} holds no model (best.safetensors, last.safetensors or model.safetensors): ` +
    (existsSync(path.join(arg, 'settings.json')) ? 'its run stopped before its first epoch ended; resume or train it again' : 'give a model file or a run folder'));
}

/** What predict found: each usable image's top classes, and each file it could not use. */
export interface PredictResults {
  predictions: FilePredictions[];
  skipped: Skipped[];
}

/**
 * Returns the predictions and the skipped files; prints them as text or JSON. Throws a DataError
 * (after printing the skip lines) when no file at all could be predicted.
 */
export async function predictCommand(a: PredictArgs, out: (s: string) => void, progress?: (bytes: number, total: number | null) => void):
  Promise<PredictResults> {
  if (a.files.length === 0) throw new UsageError('predict: give at least one image file after the model');
  if (!Number.isInteger(a.topK) || a.topK < 1) throw new UsageError(`--top-k must be a positive integer, got ${a.topK}`);
  const tta = a.tta ?? 0;
  if (!Number.isInteger(tta) || tta < 0) throw new UsageError(`--tta must be a whole number of passes (0 for none), got ${a.tta}`);
  // Said only with --json off: the JSON on stdout stays one document.
  const device = cliDevice(a.device ?? DEFAULT_DEVICE, a.json ? () => undefined : out);
  const inputs = await expandImageArgs(a.files);
  let results: PredictResults;
  const file = modelFileOf(a.model);
  if (!ZOO.has(a.model) && (file.endsWith('.safetensors') || (existsSync(file) && statSync(file).isFile()))) {
    if (a.weights) throw new UsageError('--weights goes with a zoo architecture, not with an exported model file');
    const exported = loadModel(file);
    exported.model.to({ device });
    results = await predictFiles(exported.model, exported.classes, inputs.files, exported.preprocess, a.topK,
      { tta, temperature: exported.meta.temperature, unknownBelow: a.unknownBelow });
  } else {
    const entry = zooEntry(a.model);
    const model = await loadPretrained(entry, a.weights ?? 'imagenet', { onProgress: progress });
    model.to({ memoryFormat: 'channels_last', device }); // faster convolutions, as an exported model
    results = await predictFiles(model, IMAGENET_CLASSES, inputs.files, entry.weights.transforms, a.topK, { tta, unknownBelow: a.unknownBelow });
  }
  results.skipped.unshift(...inputs.skipped);
  if (a.json) {
    out(JSON.stringify(results, null, 2));
  } else {
    for (const r of results.predictions) {
      out(r.file);
      if (r.unknown) out(`  unknown: no class reaches ${(100 * a.unknownBelow!).toFixed(0)}% (--unknown-below); the nearest are`);
      for (const p of r.predictions) out(`  ${(100 * p.prob).toFixed(2).padStart(6)}%  ${p.label} (${p.index})`);
    }
    for (const s of results.skipped) out(`skipped ${s.path}: ${s.reason} (${s.detail}); ${SKIP_HINTS[s.reason]}`);
    for (const line of passedOverLines(inputs.passedOver)) out(`passed over: ${line}`);
  }
  if (results.predictions.length === 0) {
    const reasons = [...new Set(results.skipped.map((s) => s.reason))];
    const hint = reasons.map((r) => SKIP_HINTS[r]).join('; ');
    throw new DataError(`nothing to predict: ${results.skipped.length} input${results.skipped.length === 1 ? '' : 's'} skipped (${reasons.join(', ')})`,
      a.files.join(' '), `${hint.charAt(0).toUpperCase()}${hint.slice(1)}.`);
  }
  return results;
}
