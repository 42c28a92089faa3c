// The one evaluation transform: how an image becomes a model's input when nothing is random —
// decoded, presized to the item size, its centre square cut, resampled to the model's size and
// normalised. The validation loader, predict, test-time augmentation and exported models all go
// through these functions (fastai's dls.test_dl; timm's resolve_data_config + create_transform).
import { tensor, type Tensor, type Stats } from '../torch/index.js';
import { decodeImage, type ImageInput, type RawImage, type ResizeMethod } from './decode.js';
import { augmentBatch, identityParams, type AugParams } from './augment.js';
import type { Skipped } from './errors.js';

/** Everything that makes an image a model input, as a model records it. */
export interface EvalTransform {
  /** Presizing: the shorter side ('crop') or the square ('squish', 'pad') in pixels. */
  itemSize: number;
  method: ResizeMethod;
  /** The centre square cut from the presized item, in pixels. */
  cropSize: number;
  /** The model's input size: the square is resampled to size × size. */
  size: number;
  stats: Stats;
}

/**
 * The transform of a model trained here: as its validation images were made (presized to its item
 * size by its method, the whole item square resampled to its size); for a model file that predates
 * presizing, the shorter side resized to the size and the centre square kept.
 */
export function trainedTransform(size: number, stats: Stats, presizing?: { itemSize?: number; resizeMethod?: ResizeMethod } | null): EvalTransform {
  const itemSize = presizing?.itemSize ?? size;
  return { itemSize, method: presizing?.resizeMethod ?? 'crop', cropSize: itemSize, size, stats };
}

/**
 * torchvision's evaluation transform of pretrained weights (shorter side to resizeSize, the centre
 * cropSize square, normalised; torchvision's ImageClassification preset) as an EvalTransform.
 */
export function weightsTransform(t: { resizeSize: number; cropSize: number; mean: Stats['mean']; std: Stats['std'] }): EvalTransform {
  return { itemSize: t.resizeSize, method: 'crop', cropSize: t.cropSize, size: t.cropSize, stats: { mean: t.mean, std: t.std } };
}

/** Offsets of a centred side-px square in an h × w image: half the margin, rounded down (fastai's centre crop). */
export const centreOffsets = (img: { height: number; width: number }, side: number): [number, number] =>
  [Math.max(0, img.height - side) >> 1, Math.max(0, img.width - side) >> 1];

/**
 * Returns each image's side-px square at the offsets `at` gives (the centre by default) as one
 * uint8 buffer [n, 3, side, side]; an image smaller than the square fills its top-left part.
 */
export function cropSquares(images: readonly RawImage[], side: number,
  at: (img: RawImage) => [number, number] = (img) => centreOffsets(img, side)): Uint8Array {
  const plane = side * side;
  const buf = new Uint8Array(images.length * 3 * plane);
  images.forEach((img, b) => {
    const [oy, ox] = at(img);
    const h = Math.min(side, img.height);
    const w = Math.min(side, img.width);
    for (let c = 0; c < 3; c++) {
      const src = c * img.height * img.width;
      const dst = (b * 3 + c) * plane;
      for (let y = 0; y < h; y++) {
        const from = src + (y + oy) * img.width + ox;
        buf.set(img.data.subarray(from, from + w), dst + y * side);
      }
    }
  });
  return buf;
}

/**
 * Returns squares [N, 3, c, c] (uint8, or float in [0, 1]) as the model's input, float32
 * [N, 3, size, size]: resampled by `params` (none by default: only the resize to size) and
 * normalised by the transform's statistics.
 */
export function toModelInput(squares: Tensor, t: Pick<EvalTransform, 'size' | 'stats'>, params: AugParams = identityParams(squares.size(0))): Tensor {
  return augmentBatch(squares, params, t.size, t.stats);
}

/** Returns the image decoded and presized by `t`, its centre square as uint8 [1, 3, c, c], or why it cannot be used. */
export async function centreSquare(input: ImageInput, t: EvalTransform, o: { maxPixels?: number } = {}): Promise<Tensor | Skipped> {
  const r = await decodeImage(input, { size: t.itemSize, method: t.method, maxPixels: o.maxPixels });
  if (!r.ok) return r.skipped;
  return tensor(cropSquares([r.image], t.cropSize), { shape: [1, 3, t.cropSize, t.cropSize] });
}
