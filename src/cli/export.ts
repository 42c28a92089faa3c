// `visiontune export MODEL --format onnx`: a model file (or a run folder's best model, or a zoo
// architecture with its weights) to ONNX, verified against libtorch before it is written.
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { writeAtomic } from '../io/atomic.js';
import { pageHtml } from '../serve/page.js';
import { loadModel } from '../learner/export.js';
import { weightsTransform } from '../data/transform.js';
import { zooEntry, ZOO } from '../models/registry.js';
import { loadPretrained } from '../models/weights.js';
import { IMAGENET_CLASSES } from '../models/imagenet-classes.js';
import { expandImageArgs } from '../data/folders.js';
import { setNumThreads } from '../torch/index.js';
import { exportOnnx, ONNX_TOLERANCE, VERIFY_IMAGES, type OnnxSource } from '../onnx/index.js';
import { modelFileOf } from './predict.js';

export interface ExportArgs {
  model: string;
  format: 'onnx';
  out?: string;
  opset: number;
  preprocess: boolean;
  /** Images (a folder, files or globs) to verify the export on; default generated ones. */
  data?: string;
  /** A zoo architecture's weights (imagenet, a file, or none). */
  weights?: string;
  /** Also write a static page into this folder that runs the model in the browser (the graph gets the preprocessing). */
  web?: string;
  threads?: number;
}

/** Exports and verifies; prints the file and the largest difference; returns the result. */
export async function exportCommand(a: ExportArgs, out: (s: string) => void, onDownload?: (bytes: number, total: number | null) => void) {
  if (a.threads !== undefined) setNumThreads(a.threads);
  let source: OnnxSource;
  let file: string;
  if (ZOO.has(a.model)) {
    const entry = zooEntry(a.model);
    const weights = a.weights ?? 'imagenet';
    const module = weights === 'none' ? entry.build() : await loadPretrained(entry, weights, { onProgress: onDownload });
    source = { module, architecture: entry.name, classes: IMAGENET_CLASSES, transform: weightsTransform(entry.weights.transforms) };
    file = a.out ?? `${entry.name}.onnx`;
  } else {
    const modelFile = modelFileOf(a.model);
    const m = loadModel(modelFile);
    m.model.to({ memoryFormat: 'contiguous' });
    source = { module: m.model, architecture: m.meta.architecture, classes: m.classes, transform: m.preprocess, temperature: m.meta.temperature };
    file = a.out ?? path.join(path.dirname(modelFile), `${path.basename(modelFile, '.safetensors')}.onnx`);
  }
  const verifyFiles = a.data ? (await expandImageArgs([a.data])).files.slice(0, VERIFY_IMAGES) : undefined;
  const preprocess = a.preprocess || a.web !== undefined;
  if (a.web !== undefined) {
    mkdirSync(a.web, { recursive: true });
    file = path.join(a.web, 'model.onnx');
  }
  const r = await exportOnnx(source, file, { opset: a.opset, preprocess, verifyFiles });
  out(`Wrote ${r.file} (${(r.bytes / 1e6).toFixed(1)} MB, opset ${a.opset}${preprocess ? ', preprocessing in the graph: feed uint8 RGB pixels' : ''})`);
  out(`Verified with onnxruntime on ${r.verifiedOn} ${verifyFiles?.length ? 'of your' : 'generated'} images: largest probability difference from libtorch ` +
    `${r.maxDifference.toExponential(2)} (limit ${ONNX_TOLERANCE})`);
  if (a.web !== undefined) {
    writeWebPage(a.web, source);
    out(`Wrote the page ${path.join(a.web, 'index.html')} with onnxruntime-web: serve the folder over HTTP (browsers do not load models from file://), ` +
      `e.g. python3 -m http.server -d ${a.web}`);
  }
  return r;
}

/** onnxruntime-web's files the page needs: its WebAssembly build, its loader, its script. */
export const ORT_WEB_FILES = ['ort.wasm.min.js', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];

/** Writes index.html and onnxruntime-web's files beside model.onnx in `dir`. */
export function writeWebPage(dir: string, source: Pick<OnnxSource, 'architecture' | 'classes' | 'transform'>): void {
  // The package exports no package.json: its wasm build's script ('require' of ./wasm) lies in dist/.
  const dist = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web/wasm'));
  for (const f of ORT_WEB_FILES) copyFileSync(path.join(dist, f), path.join(dir, f));
  writeAtomic(path.join(dir, 'index.html'), [pageHtml({
    mode: 'local', title: `${source.architecture}: ${source.classes.length} classes`, classes: source.classes, itemSize: source.transform.itemSize,
    topK: Math.min(5, source.classes.length), modelUrl: 'model.onnx', ortUrl: 'ort.wasm.min.js',
  })]);
}
