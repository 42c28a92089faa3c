// `exportOnnx`: a trained model (or a bare zoo model) to one .onnx file that answers as the model
// does, proven before the file is written: onnxruntime-node runs the graph on a batch of images
// and its probabilities must equal libtorch's within ONNX_TOLERANCE.
import { tensor, noGrad, tidy, F } from '../torch/index.js';
import type { Module } from '../nn/index.js';
import { cropSquares, toModelInput, type EvalTransform } from '../data/transform.js';
import { decodeImage, toChw, type RawImage } from '../data/decode.js';
import { patternPixels } from '../data/synthetic-files.js';
import { seededRandom } from '../data/random.js';
import { VERSION } from '../version.js';
import { onnxModelBytes, writeOnnx, OnnxExportError, DEFAULT_OPSET } from './export.js';

export { onnxModelBytes, OnnxExportError, MIN_OPSET, MAX_OPSET, DEFAULT_OPSET } from './export.js';

/** The largest difference in probability between onnxruntime and libtorch an export may show. */
export const ONNX_TOLERANCE = 1e-4;

/** What is exported: the network, its classes and how its input is made. */
export interface OnnxSource {
  module: Module;
  architecture: string;
  classes: readonly string[];
  /** How an image becomes the model's input (see EvalTransform). */
  transform: EvalTransform;
  /** The calibration temperature (probabilities are softmax(logits / T)); 1 when absent. */
  temperature?: number;
}

export interface ExportOnnxOptions {
  opset?: number;
  /** Put the preprocessing in the graph: its input is then uint8 RGB pixels [N, H, W, 3]. */
  preprocess?: boolean;
  /** Image files to verify on (the validation images, say); default generated ones. */
  verifyFiles?: readonly string[];
}

/** What an export did: the file, its size, and the verification's largest difference. */
export interface OnnxExportResult {
  file: string;
  bytes: number;
  maxDifference: number;
  verifiedOn: number;
}

/** Images the verification runs on: at most this many. */
export const VERIFY_IMAGES = 8;

/**
 * Writes `source` as ONNX to `file` after verifying it (see the file's head). Throws
 * OnnxExportError when an operator has no translation or the verification finds a difference
 * above ONNX_TOLERANCE (then nothing is written).
 */
export async function exportOnnx(source: OnnxSource, file: string, o: ExportOnnxOptions = {}): Promise<OnnxExportResult> {
  const t = source.transform;
  source.module.eval(); // as the graph: batch-norm statistics, no dropout
  const metadata: Record<string, string> = {
    visiontune_version: VERSION,
    architecture: source.architecture,
    classes: JSON.stringify(source.classes),
    size: String(t.size),
    item_size: String(t.itemSize),
    resize_method: t.method,
    normalization: JSON.stringify(t.stats),
    temperature: String(source.temperature ?? 1),
    input: o.preprocess ? 'pixels: uint8 [N, H, W, 3] RGB, presized (shorter side item_size); the graph cuts the centre square, resamples and normalises'
      : `input: float32 [N, 3, ${t.size}, ${t.size}] normalised`,
  };
  const bytes = onnxModelBytes(source.module, t.size, {
    opset: o.opset ?? DEFAULT_OPSET, temperature: source.temperature, metadata, name: source.architecture,
    preprocess: o.preprocess ? { size: t.size, cropSize: t.cropSize === t.itemSize ? undefined : t.cropSize, mean: t.stats.mean, std: t.stats.std } : null,
  });
  const images = await verificationImages(t, o.verifyFiles);
  const maxDifference = await compareWithOnnxRuntime(bytes, source, images, Boolean(o.preprocess));
  if (!(maxDifference <= ONNX_TOLERANCE)) {
    throw new OnnxExportError(`the ONNX graph's probabilities differ from libtorch's by ${maxDifference.toExponential(2)} (more than ${ONNX_TOLERANCE}); nothing written`);
  }
  writeOnnx(file, bytes);
  return { file, bytes: bytes.length, maxDifference, verifiedOn: images.length };
}

/** Presized images (decoded as predict decodes them) from the files, or generated pattern photos at the item size. */
async function verificationImages(t: EvalTransform, files?: readonly string[]): Promise<RawImage[]> {
  const out: RawImage[] = [];
  for (const f of files ?? []) {
    if (out.length >= VERIFY_IMAGES) break;
    const r = await decodeImage(f, { size: t.itemSize, method: t.method });
    if (r.ok) out.push(r.image);
  }
  const rand = seededRandom(7);
  for (let i = 0; out.length < Math.min(4, VERIFY_IMAGES); i++) {
    const [h, w] = [t.itemSize, t.itemSize + (i % 2) * Math.round(t.itemSize / 4)];
    out.push(toChw(patternPixels(i % 4, w, h, rand), h, w, 3));
  }
  return out;
}

// The largest |p_onnx − p_libtorch| over the images. The model input is made once, as predict
// makes it, and goes to libtorch and (without the preprocessing in the graph) to onnxruntime; with
// the preprocessing the graph gets the presized pixels, one image at a time (their sizes differ).
async function compareWithOnnxRuntime(bytes: Uint8Array, source: OnnxSource, images: readonly RawImage[], preprocess: boolean): Promise<number> {
  const ort = (await import('onnxruntime-node')).default;
  const session = await ort.InferenceSession.create(bytes);
  const t = source.transform;
  const input = noGrad(() => toModelInput(tensor(cropSquares(images, t.cropSize), { shape: [images.length, 3, t.cropSize, t.cropSize] }), t));
  try {
    const expected = noGrad(() => tidy(() => F.softmax(source.module.forward(input).div(source.temperature ?? 1), 1).toTypedArray() as Float32Array));
    const c = source.classes.length;
    let worst = 0;
    const check = (got: Float32Array, from: number): void => {
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[from * c + i]) || (Number.isNaN(got[i]) ? Infinity : 0));
    };
    if (preprocess) {
      for (const [k, img] of images.entries()) {
        const r = await session.run({ pixels: new ort.Tensor('uint8', hwcOf(img), [1, img.height, img.width, 3]) });
        check(r.probabilities.data as Float32Array, k);
      }
    } else {
      const r = await session.run({ input: new ort.Tensor('float32', tidy(() => input.contiguous().toTypedArray() as Float32Array), [images.length, 3, t.size, t.size]) });
      check(r.probabilities.data as Float32Array, 0);
    }
    return worst;
  } finally {
    input.dispose();
    await session.release();
  }
}

/** Channels-first RGB to interleaved (what the graph's pixels input takes). */
export function hwcOf(img: RawImage): Uint8Array {
  const n = img.height * img.width;
  const out = new Uint8Array(3 * n);
  for (let c = 0; c < 3; c++) for (let p = 0; p < n; p++) out[3 * p + c] = img.data[c * n + p];
  return out;
}

