// Inference on image files: each decoded (EXIF orientation, alpha on white, sRGB), its shorter
// side resized, the centre cropped, then classified; the top classes with probabilities.
import { tensor, noGrad, tidy, stack, type Tensor } from '../torch/index.js';
import { decodeImage } from '../data/decode.js';
import { DataError } from '../data/errors.js';
import type { Module } from '../nn/index.js';
import type { EvalTransforms } from '../models/registry.js';

/** The eval transform's sizes and normalisation (resampling is sharp's, whatever the weights' interpolation). */
export type Preprocess = Omit<EvalTransforms, 'interpolation'>;

export interface Prediction {
  label: string;
  index: number;
  prob: number;
}

export interface FilePredictions {
  file: string;
  predictions: Prediction[];
}

/** Returns the image at `path` as a normalised float tensor [3, crop, crop]; throws DataError if it cannot be used. */
export async function loadImage(path: string, p: Preprocess): Promise<Tensor> {
  const r = await decodeImage(path, { size: p.resizeSize, method: 'crop' });
  if (!r.ok) throw new DataError(`cannot use the image (${r.skipped.reason}: ${r.skipped.detail})`, path, 'give a JPEG, PNG, WebP, GIF, TIFF or AVIF file');
  const { data, height, width } = r.image;
  if (height < p.cropSize || width < p.cropSize) {
    throw new DataError(`the image decoded to ${width}×${height}, smaller than the ${p.cropSize} px crop`, path, 'this is a bug in visiontune; please report it');
  }
  return tidy(() => {
    const full = tensor(data, { shape: [3, height, width], dtype: 'uint8' });
    // torchvision's centre crop: offsets round((H − C) / 2).
    const top = Math.round((height - p.cropSize) / 2);
    const left = Math.round((width - p.cropSize) / 2);
    const crop = full.narrow(1, top, p.cropSize).narrow(2, left, p.cropSize).float().div(255);
    return crop.sub(tensor(p.mean, { shape: [3, 1, 1] })).div(tensor(p.std, { shape: [3, 1, 1] }));
  });
}

/** Returns the top-k classes of each file under `model` (logits out), in the files' order. */
export async function predictFiles(model: Module, classes: readonly string[], files: string[], p: Preprocess,
  topK = 5, batchSize = 16): Promise<FilePredictions[]> {
  model.eval();
  const out: FilePredictions[] = [];
  for (let i = 0; i < files.length; i += batchSize) {
    const chunk = files.slice(i, i + batchSize);
    const images = await Promise.all(chunk.map((f) => loadImage(f, p)));
    const probs = noGrad(() => tidy(() => model.forward(stack(images)).softmax(1)));
    for (const img of images) img.dispose();
    const { values, indices } = probs.topk(Math.min(topK, classes.length), 1);
    const v = values.toArray();
    const ix = indices.toArray();
    const k = values.size(1);
    chunk.forEach((file, j) => {
      out.push({ file, predictions: Array.from({ length: k }, (_, r) => ({ label: classes[ix[j * k + r]], index: ix[j * k + r], prob: v[j * k + r] })) });
    });
    for (const t of [probs, values, indices]) t.dispose();
  }
  return out;
}
