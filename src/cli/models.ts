// `visiontune models`: the zoo with parameter counts, download size, ImageNet accuracy and
// whether the weights are in the cache.
import { ZOO } from '../models/registry.js';
import { isCached, cachedWeightsPath, cacheDir } from '../models/weights.js';

export interface ModelRow {
  name: string;
  params: number;
  /** float32 weights, megabytes. */
  sizeMb: number;
  top1: number;
  resize: number;
  crop: number;
  cached: boolean;
  path: string;
}

export function modelRows(): ModelRow[] {
  return [...ZOO.values()].map((e) => ({
    name: e.name, params: e.weights.numParams, sizeMb: (e.weights.numParams * 4) / 1e6, top1: e.weights.top1,
    resize: e.weights.transforms.resizeSize, crop: e.weights.transforms.cropSize, cached: isCached(e), path: cachedWeightsPath(e),
  }));
}

/** Prints the zoo as a table, or as JSON. */
export function modelsCommand(json: boolean, out: (s: string) => void): void {
  const rows = modelRows();
  if (json) {
    out(JSON.stringify(rows, null, 2));
    return;
  }
  out('arch                params   size     top-1   eval size  weights');
  for (const r of rows) {
    out(`${r.name.padEnd(18)}  ${(r.params / 1e6).toFixed(1).padStart(5)}M  ${r.sizeMb.toFixed(0).padStart(4)} MB  ` +
      `${r.top1.toFixed(2).padStart(5)}%  ${String(r.resize).padStart(3)}→${String(r.crop).padEnd(3)}    ${r.cached ? 'cached' : 'not cached'}`);
  }
  out(`cache: ${cacheDir()}; the default architecture is efficientnet_v2_s (torchvision's ImageNet-1k weights)`);
}
