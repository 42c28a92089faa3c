// `visiontune predict <arch|model.safetensors> <images…>`: top-k classes of each image, from a
// zoo model with its ImageNet weights (or a weights file), or from a model visiontune exported.
import { existsSync, statSync } from 'node:fs';
import { zooEntry, ZOO } from '../models/registry.js';
import { loadPretrained } from '../models/weights.js';
import { IMAGENET_CLASSES } from '../models/imagenet-classes.js';
import { loadModel } from '../learner/export.js';
import { predictFiles, type FilePredictions } from '../learner/predict.js';
import { UsageError } from './errors.js';

export interface PredictArgs {
  model: string;
  files: string[];
  weights?: string;
  topK: number;
  json: boolean;
  /** Test-time augmentation passes per image (0: off). */
  tta?: number;
}

/** Returns the predictions; prints them as text or JSON. */
export async function predictCommand(a: PredictArgs, out: (s: string) => void, progress?: (bytes: number, total: number | null) => void):
  Promise<FilePredictions[]> {
  if (a.files.length === 0) throw new UsageError('predict: give at least one image file after the model');
  if (!Number.isInteger(a.topK) || a.topK < 1) throw new UsageError(`--top-k must be a positive integer, got ${a.topK}`);
  const tta = a.tta ?? 0;
  if (!Number.isInteger(tta) || tta < 0) throw new UsageError(`--tta must be a whole number of passes (0 for none), got ${a.tta}`);
  let results: FilePredictions[];
  if (!ZOO.has(a.model) && (a.model.endsWith('.safetensors') || (existsSync(a.model) && statSync(a.model).isFile()))) {
    if (a.weights) throw new UsageError('--weights goes with a zoo architecture, not with an exported model file');
    const exported = loadModel(a.model);
    results = await predictFiles(exported.model, exported.classes, a.files, exported.preprocess, a.topK, { tta });
  } else {
    const entry = zooEntry(a.model);
    const model = await loadPretrained(entry, a.weights ?? 'imagenet', { onProgress: progress });
    model.to({ memoryFormat: 'channels_last' }); // faster CPU convolutions, as an exported model
    results = await predictFiles(model, IMAGENET_CLASSES, a.files, entry.weights.transforms, a.topK, { tta });
  }
  if (a.json) {
    out(JSON.stringify(results, null, 2));
  } else {
    for (const r of results) {
      out(r.file);
      for (const p of r.predictions) out(`  ${(100 * p.prob).toFixed(2).padStart(6)}%  ${p.label} (${p.index})`);
    }
  }
  return results;
}
