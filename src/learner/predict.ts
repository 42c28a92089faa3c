// Inference on images (files or their bytes): each made into the model's input by the data
// layer's one evaluation transform (decoded with EXIF orientation, alpha on white, sRGB; presized;
// centre square; resampled; normalised) — as its validation images were for a model trained
// here, as the weights' eval transform for a zoo model — then classified, optionally with
// test-time augmentation; every class's probability, or the top classes.
import { noGrad, tidy, cat, type Tensor } from '../torch/index.js';
import { inputName, type ImageInput, type ResizeMethod } from '../data/decode.js';
import { drawAugParams } from '../data/augment.js';
import { seededRandom } from '../data/random.js';
import { centreSquare, toModelInput, trainedTransform, weightsTransform, type EvalTransform } from '../data/transform.js';
import { DataError, SKIP_HINTS, type Skipped } from '../data/errors.js';
import type { Module } from '../nn/index.js';
import type { EvalTransforms } from '../models/registry.js';

/**
 * How an image becomes the model's input: the data layer's EvalTransform, or a zoo weights'
 * eval transform (shorter side to resizeSize, the centre cropSize square), optionally with the
 * presizing of a model trained here (itemSize, method: the centre item square resampled to cropSize).
 */
export type Preprocess = EvalTransform | (Omit<EvalTransforms, 'interpolation'> & { itemSize?: number; method?: ResizeMethod });

/** Returns the EvalTransform a Preprocess stands for. */
export function evalTransformOf(p: Preprocess): EvalTransform {
  if ('stats' in p) return p;
  if (p.itemSize) return trainedTransform(p.cropSize, { mean: p.mean, std: p.std }, { itemSize: p.itemSize, resizeMethod: p.method ?? 'crop' });
  return weightsTransform(p);
}

export interface Prediction {
  label: string;
  index: number;
  prob: number;
}

export interface FilePredictions {
  file: string;
  predictions: Prediction[];
  /** Set when the top probability is below the unknownBelow threshold: the answer is "unknown". */
  unknown?: boolean;
}

/** One image's prediction: the most probable class and every class's probability. */
export interface ImagePrediction {
  label: string;
  index: number;
  /** Per class, in the model's class order. */
  probs: number[];
}

export interface PredictOptions {
  /**
   * Test-time augmentation as in fastai's tta: this many passes with the training augmentation,
   * averaged and blended with the plain pass as (1 − beta)·augmented + beta·plain. 0 (default): off.
   */
  tta?: number;
  beta?: number;
  /** Seed of the augmentation draws, so a prediction repeats. Default 0. */
  seed?: number;
  /** Calibration: probabilities are softmax(logits / temperature). Default 1. */
  temperature?: number;
}

// The image's centre square, uint8 [1, 3, c, c]; a DataError with the reason and what to do when it cannot be used.
async function square(input: ImageInput, t: EvalTransform): Promise<Tensor> {
  const r = await centreSquare(input, t);
  if ('reason' in r) throw new DataError(`cannot use the image (${r.reason}: ${r.detail})`, inputName(input), `${SKIP_HINTS[r.reason]}.`);
  return r;
}

/** Returns the image (a path or its bytes) as the model's normalised input [3, size, size]; throws DataError if it cannot be used. */
export async function loadImage(input: ImageInput, p: Preprocess): Promise<Tensor> {
  const t = evalTransformOf(p);
  const sq = await square(input, t);
  const x = tidy(() => toModelInput(sq, t).squeeze(0));
  sq.dispose();
  return x;
}

/** Returns `model`'s prediction (logits out) for one image, a path or its bytes; optionally with test-time augmentation. */
export async function predictImage(model: Module, classes: readonly string[], input: ImageInput, p: Preprocess,
  o: PredictOptions = {}): Promise<ImagePrediction> {
  checkTta(o);
  const t = evalTransformOf(p);
  const crop = await square(input, t);
  try {
    const values = cropProbs(model, crop, t, o);
    const index = values.indexOf(Math.max(...values));
    return { label: classes[index], index, probs: values };
  } finally {
    crop.dispose();
  }
}

function checkTta(o: PredictOptions): void {
  const n = o.tta ?? 0;
  const beta = o.beta ?? 0.25;
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`tta must be a whole number of passes ≥ 0, got ${n}`);
  if (!(beta >= 0 && beta <= 1)) throw new RangeError(`beta must be in [0, 1], got ${beta}`);
}

/** Returns the k most probable classes of one image's probabilities, most probable first (ties by class index). */
export function topClasses(probs: ArrayLike<number>, classes: readonly string[], k: number): Prediction[] {
  return Array.from(probs, (prob, index) => ({ label: classes[index], index, prob }))
    .sort((a, b) => b.prob - a.prob || a.index - b.index).slice(0, Math.min(k, classes.length));
}

/**
 * Returns every class's probability for centre squares [N, 3, c, c] (uint8, as centreSquare makes
 * them), row-major N × C, with the temperature; with tta (N = 1 then), blended with n augmented
 * passes as fastai's tta. The batched path of predict and of `visiontune serve`.
 */
export function cropProbs(model: Module, crop: Tensor, t: EvalTransform, o: PredictOptions): number[] {
  const n = o.tta ?? 0;
  const beta = o.beta ?? 0.25;
  model.eval();
  const device = model.device;
  const probs = noGrad(() => tidy(() => {
    const temperature = o.temperature ?? 1;
    crop = crop.to({ device });
    const plain = model.forward(toModelInput(crop, t)).div(temperature).softmax(1);
    if (n === 0) return plain;
    const copies = crop.expand(n, ...crop.shape.slice(1));
    const augmented = model.forward(toModelInput(copies, t, drawAugParams(n, seededRandom(o.seed ?? 0)))).div(temperature).softmax(1);
    return augmented.mean([0], true).mul(1 - beta).add(plain.mul(beta));
  }));
  const values = Array.from(probs.toArray());
  probs.dispose();
  return finiteProbs(values);
}

/** Returns the probabilities, or throws when the model gave NaN or infinity: a broken model must not print NaN%. */
function finiteProbs<T extends ArrayLike<number>>(values: T): T {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new Error('the model gives non-finite probabilities (NaN or infinity): its weights are broken');
  }
  return values;
}

/**
 * Returns the top-k classes of each usable file under `model` (logits out), in the files' order,
 * and each file that could not be used with its reason (a bad file never stops the others); in
 * batches, or one file at a time with test-time augmentation when `o.tta` asks for it.
 */
export async function predictFiles(model: Module, classes: readonly string[], files: string[], p: Preprocess,
  topK = 5, o: PredictOptions & { batchSize?: number; unknownBelow?: number } = {}): Promise<{ predictions: FilePredictions[]; skipped: Skipped[] }> {
  const t = evalTransformOf(p);
  const predictions: FilePredictions[] = [];
  const answer = (file: string, probs: ArrayLike<number>): FilePredictions => {
    const best = topClasses(probs, classes, topK);
    return { file, predictions: best, ...(o.unknownBelow !== undefined && best[0].prob < o.unknownBelow ? { unknown: true } : {}) };
  };
  const skipped: Skipped[] = [];
  if (o.tta) checkTta(o);
  model.eval();
  const batchSize = o.tta ? 1 : o.batchSize ?? 16;
  for (let i = 0; i < files.length; i += batchSize) {
    const chunk = files.slice(i, i + batchSize);
    const results = await Promise.all(chunk.map((f) => centreSquare(f, t)));
    const good = chunk.flatMap((file, j) => ('reason' in results[j] ? [] : [{ file, square: results[j] as Tensor }]));
    for (const r of results) if ('reason' in r) skipped.push(r);
    if (good.length === 0) continue;
    const squares = good.length === 1 ? good[0].square : cat(good.map((g) => g.square));
    const all = cropProbs(model, squares, t, o);
    if (squares !== good[0].square) squares.dispose();
    good.forEach(({ file }, j) => predictions.push(answer(file, all.slice(j * classes.length, (j + 1) * classes.length))));
    for (const g of good) g.square.dispose();
  }
  return { predictions, skipped };
}
