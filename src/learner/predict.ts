// Inference on images (files or their bytes): each decoded (EXIF orientation, alpha on white,
// sRGB) and made into the model's input as the weights' eval transform does, or, for a model
// trained here, exactly as its validation images were; then classified, optionally with
// test-time augmentation; every class's probability, or the top classes.
import { tensor, noGrad, tidy, stack, type Tensor } from '../torch/index.js';
import { decodeImage, inputName, type ImageInput, type ResizeMethod } from '../data/decode.js';
import { augmentBatch, drawAugParams, identityParams } from '../data/augment.js';
import { seededRandom } from '../data/synthetic.js';
import { DataError, SKIP_HINTS, type Skipped } from '../data/errors.js';
import type { Module } from '../nn/index.js';
import type { EvalTransforms } from '../models/registry.js';

/**
 * How an image becomes the model's input. Without `itemSize`: the weights' eval transform, the
 * shorter side resized to resizeSize and the centre cropSize square kept (resampling is sharp's,
 * whatever the weights' interpolation). With it: as the data loaders make validation images,
 * presized to itemSize by `method`, the centre itemSize square resampled to cropSize.
 */
export type Preprocess = Omit<EvalTransforms, 'interpolation'> & { itemSize?: number; method?: ResizeMethod };

/**
 * The inference transform of a model trained here: as its validation images were made when its
 * presizing is known (item size and method), else the eval transform at its training size.
 */
export function trainedPreprocess(size: number, normalization: { mean: [number, number, number]; std: [number, number, number] },
  presizing?: { itemSize?: number; resizeMethod?: ResizeMethod } | null): Preprocess {
  const presized = presizing?.itemSize ? { itemSize: presizing.itemSize, method: presizing.resizeMethod ?? 'crop' } : {};
  return { resizeSize: size, cropSize: size, ...normalization, ...presized };
}

export interface Prediction {
  label: string;
  index: number;
  prob: number;
}

export interface FilePredictions {
  file: string;
  predictions: Prediction[];
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
}

// The image decoded and centre-cropped: uint8 [3, c, c], c the crop size, or the item size.
async function centreCrop(input: ImageInput, p: Preprocess): Promise<Tensor> {
  const r = await tryCentreCrop(input, p);
  if ('reason' in r) throw new DataError(`cannot use the image (${r.reason}: ${r.detail})`, inputName(input), `${SKIP_HINTS[r.reason]}.`);
  return r;
}

// centreCrop, or why the image cannot be used.
async function tryCentreCrop(input: ImageInput, p: Preprocess): Promise<Tensor | Skipped> {
  const side = p.itemSize ?? p.cropSize;
  const r = await decodeImage(input, p.itemSize ? { size: p.itemSize, method: p.method ?? 'crop' } : { size: p.resizeSize, method: 'crop' });
  const name = inputName(input);
  if (!r.ok) return r.skipped;
  const { data, height, width } = r.image;
  if (height < side || width < side) {
    throw new DataError(`the image decoded to ${width}×${height}, smaller than the ${side} px crop`, name, 'this is a bug in visiontune; please report it');
  }
  // Offsets: torchvision's CenterCrop rounds (H − C) / 2; the validation loader halves down.
  const offset = (d: number): number => (p.itemSize ? d >> 1 : Math.round(d / 2));
  return tidy(() => tensor(data, { shape: [3, height, width], dtype: 'uint8' })
    .narrow(1, offset(height - side), side).narrow(2, offset(width - side), side).contiguous());
}

// uint8 crops [N, 3, c, c] → the model's normalised input [N, 3, cropSize, cropSize].
function toInput(crops: Tensor, p: Preprocess): Tensor {
  if (p.itemSize) return augmentBatch(crops, identityParams(crops.size(0)), p.cropSize, { mean: p.mean, std: p.std });
  return tidy(() => crops.float().div(255).sub(tensor(p.mean, { shape: [1, 3, 1, 1] })).div(tensor(p.std, { shape: [1, 3, 1, 1] })));
}

/** Returns the image (a path or its bytes) as the model's normalised input [3, crop, crop]; throws DataError if it cannot be used. */
export async function loadImage(input: ImageInput, p: Preprocess): Promise<Tensor> {
  const crop = await centreCrop(input, p);
  const x = tidy(() => toInput(crop.unsqueeze(0), p).squeeze(0));
  crop.dispose();
  return x;
}

/** Returns `model`'s prediction (logits out) for one image, a path or its bytes; optionally with test-time augmentation. */
export async function predictImage(model: Module, classes: readonly string[], input: ImageInput, p: Preprocess,
  o: PredictOptions = {}): Promise<ImagePrediction> {
  checkTta(o);
  const crop = await centreCrop(input, p);
  try {
    const values = cropProbs(model, crop, p, o);
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

// Every class's probability for one centre crop [3, c, c], blended with n augmented passes as fastai's tta.
function cropProbs(model: Module, crop: Tensor, p: Preprocess, o: PredictOptions): number[] {
  const n = o.tta ?? 0;
  const beta = o.beta ?? 0.25;
  model.eval();
  const probs = noGrad(() => tidy(() => {
    const plain = model.forward(toInput(crop.unsqueeze(0), p)).softmax(1);
    if (n === 0) return plain;
    const copies = crop.unsqueeze(0).expand(n, ...crop.shape);
    const stats = { mean: p.mean, std: p.std };
    const augmented = model.forward(augmentBatch(copies, drawAugParams(n, seededRandom(o.seed ?? 0)), p.cropSize, stats)).softmax(1);
    return augmented.mean([0], true).mul(1 - beta).add(plain.mul(beta));
  }));
  const values = Array.from(probs.toArray());
  probs.dispose();
  return values;
}

/**
 * Returns the top-k classes of each usable file under `model` (logits out), in the files' order,
 * and each file that could not be used with its reason (a bad file never stops the others); in
 * batches, or one file at a time with test-time augmentation when `o.tta` asks for it.
 */
export async function predictFiles(model: Module, classes: readonly string[], files: string[], p: Preprocess,
  topK = 5, o: PredictOptions & { batchSize?: number } = {}): Promise<{ predictions: FilePredictions[]; skipped: Skipped[] }> {
  const k = Math.min(topK, classes.length);
  const top = (probs: ArrayLike<number>): Prediction[] => Array.from(probs, (prob, index) => ({ label: classes[index], index, prob }))
    .sort((a, b) => b.prob - a.prob || a.index - b.index).slice(0, k);
  const predictions: FilePredictions[] = [];
  const skipped: Skipped[] = [];
  if (o.tta) {
    checkTta(o);
    for (const file of files) {
      const crop = await tryCentreCrop(file, p);
      if ('reason' in crop) {
        skipped.push(crop);
        continue;
      }
      predictions.push({ file, predictions: top(cropProbs(model, crop, p, o)) });
      crop.dispose();
    }
    return { predictions, skipped };
  }
  model.eval();
  const batchSize = o.batchSize ?? 16;
  for (let i = 0; i < files.length; i += batchSize) {
    const chunk = files.slice(i, i + batchSize);
    const results = await Promise.all(chunk.map((f) => tryCentreCrop(f, p)));
    const good = chunk.flatMap((file, j) => ('reason' in results[j] ? [] : [{ file, crop: results[j] as Tensor }]));
    for (const r of results) if ('reason' in r) skipped.push(r);
    if (good.length === 0) continue;
    const probs = noGrad(() => tidy(() => model.forward(toInput(stack(good.map((g) => g.crop)), p)).softmax(1)));
    for (const g of good) g.crop.dispose();
    const all = probs.toArray();
    probs.dispose();
    good.forEach(({ file }, j) => predictions.push({ file, predictions: top(all.slice(j * classes.length, (j + 1) * classes.length)) }));
  }
  return { predictions, skipped };
}
