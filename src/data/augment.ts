// Batch augmentation on tensors, fastai's aug_transforms: every geometric part (random resized
// crop, flip, rotation, zoom, perspective warp) becomes one projective matrix per image, so a
// batch takes one affine_grid and one grid_sample; lighting is one op in logit space; then
// normalisation. Parameters come from a seeded JavaScript generator, so a seed repeats a batch.
import { F, Tensor, tensor, linspace, tidy, IMAGENET_STATS, type Stats } from '../torch/index.js';
import { callOp, callInPlace } from '../torch/dispatch.js';
import type { Handle } from '../torch/native.js';

export { IMAGENET_STATS, type Stats } from '../torch/index.js';

/** fastai's aug_transforms options (camelCase), with the presizing recipe's minScale. */
export interface AugOptions {
  /** RandomResizedCrop's smallest area share of the item (ratio 1); 1 turns the crop off. */
  minScale: number;
  doFlip: boolean;
  /** Horizontal flip probability. */
  flipP: number;
  /** Rotation drawn from U(−maxRotate, maxRotate) degrees. */
  maxRotate: number;
  /** Zoom drawn from U(1, maxZoom), at a random centre. */
  maxZoom: number;
  /** Perspective warp magnitude, U(−maxWarp, maxWarp) per axis. */
  maxWarp: number;
  /** Probability of each of rotation, zoom and warp. */
  pAffine: number;
  /** Brightness U(0.5(1−m), 0.5(1+m)) added as a logit; contrast log-uniform in [1−m, 1/(1−m)]. */
  maxLighting: number;
  /** Probability of each of brightness and contrast. */
  pLighting: number;
}

/** fastai's aug_transforms defaults, with min_scale 0.75 from the presizing recipe. */
export const AUG_DEFAULTS: Readonly<AugOptions> = {
  minScale: 0.75, doFlip: true, flipP: 0.5, maxRotate: 10, maxZoom: 1.1, maxWarp: 0.2, pAffine: 0.75,
  maxLighting: 0.2, pLighting: 0.75,
};

/** Nothing random: the validation transform. */
export const NO_AUG: Readonly<AugOptions> = {
  minScale: 1, doFlip: false, flipP: 0, maxRotate: 0, maxZoom: 1, maxWarp: 0, pAffine: 0, maxLighting: 0, pLighting: 0,
};

/**
 * Returns `o` with its magnitudes scaled by `m` in [0, 1] (0: none, 1: as given): rotation, zoom,
 * warp, lighting and the random crop's scale range; flips and probabilities unchanged. How
 * progressive learning (EfficientNetV2, Tan & Le 2021, §4) weakens augmentation for small images.
 */
export function scaledAug(o: AugOptions, m: number): AugOptions {
  return {
    ...o, maxRotate: o.maxRotate * m, maxZoom: 1 + (o.maxZoom - 1) * m, maxWarp: o.maxWarp * m, maxLighting: o.maxLighting * m,
    minScale: 1 - (1 - o.minScale) * m,
  };
}

/** Per-image parameters of one batch: M maps output coordinates to item coordinates (row-major 3×3). */
export interface AugParams {
  n: number;
  /** n × 9: projective matrices in normalised coordinates ([−1, 1], corners aligned). */
  matrices: Float64Array;
  /** n: logit added (0 = unchanged). */
  brightness: Float64Array;
  /** n: logit multiplier (1 = unchanged). */
  contrast: Float64Array;
}

/** A 3×3 matrix, row-major. */
export type Mat = number[];

const mul = (a: Mat, b: Mat): Mat => {
  const c = new Array<number>(9).fill(0);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) c[3 * i + j] += a[3 * i + k] * b[3 * k + j];
  return c;
};
const IDENTITY: Mat = [1, 0, 0, 0, 1, 0, 0, 0, 1];
const logit = (p: number): number => Math.log(p / (1 - p));

/** Returns the homography taking the four `from` points to the `to` points (8-unknown solve). */
export function homography(from: [number, number][], to: [number, number][]): Mat {
  const a: number[][] = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = from[i];
    const [u, v] = to[i];
    a.push([x, y, 1, 0, 0, 0, -x * u, -y * u, u]);
    a.push([0, 0, 0, x, y, 1, -x * v, -y * v, v]);
  }
  for (let c = 0; c < 8; c++) {
    let p = c;
    for (let r = c + 1; r < 8; r++) if (Math.abs(a[r][c]) > Math.abs(a[p][c])) p = r;
    [a[c], a[p]] = [a[p], a[c]];
    for (let r = 0; r < 8; r++) {
      if (r === c) continue;
      const f = a[r][c] / a[c][c];
      for (let k = c; k < 9; k++) a[r][k] -= f * a[c][k];
    }
  }
  const h = a.map((row, i) => row[8] / row[i]);
  return [h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1];
}

const CORNERS: [number, number][] = [[-1, -1], [-1, 1], [1, -1], [1, 1]];

/** Draws uniform numbers in [0, 1); the pieces below take theirs in a fixed order. */
export type Rand = () => number;

/**
 * A geometric augmentation (fastai's AffineCoordTfm): the projective matrix it applies to one
 * image's output coordinates (composed on the right of the ones before it), or null when it does
 * not fire this time. Each draws its numbers from `rand` only when its options let it act.
 */
export type CoordAug = (rand: Rand, o: AugOptions) => Mat | null;

/** A lighting augmentation (fastai's LightingTfm): its change in logit space, or null when it does not fire. */
export type LightingAug = (rand: Rand, o: AugOptions) => { brightness?: number; contrast?: number } | null;

const uniformIn = (rand: Rand, lo: number, hi: number): number => lo + (hi - lo) * rand();

/** fastai's RandomResizedCrop (square): an area share in [minScale, 1], anywhere inside the item. */
export const randomResizedCrop: CoordAug = (rand, o) => {
  if (o.minScale >= 1) return null;
  const side = Math.sqrt(uniformIn(rand, o.minScale, 1));
  const cx = uniformIn(rand, -(1 - side), 1 - side);
  const cy = uniformIn(rand, -(1 - side), 1 - side);
  return [side, 0, cx, 0, side, cy, 0, 0, 1];
};

/** fastai's Warp: a keystone on each axis, acting on the crop's coordinates before rotation and zoom. */
export const warp: CoordAug = (rand, o) => {
  if (!(o.maxWarp > 0 && rand() < o.pAffine)) return null;
  const mx = uniformIn(rand, -o.maxWarp, o.maxWarp);
  const my = uniformIn(rand, -o.maxWarp, o.maxWarp);
  return homography(CORNERS, CORNERS.map(([x, y]) => [x - my * x * y, y - mx * x * y] as [number, number]));
};

/** fastai's Flip: a horizontal mirror with probability flipP. */
export const flip: CoordAug = (rand, o) => (o.doFlip && rand() < o.flipP ? [-1, 0, 0, 0, 1, 0, 0, 0, 1] : null);

/** fastai's Rotate: U(−maxRotate, maxRotate) degrees about the centre. */
export const rotate: CoordAug = (rand, o) => {
  if (!(o.maxRotate > 0 && rand() < o.pAffine)) return null;
  const t = (uniformIn(rand, -o.maxRotate, o.maxRotate) * Math.PI) / 180;
  return [Math.cos(t), -Math.sin(t), 0, Math.sin(t), Math.cos(t), 0, 0, 0, 1];
};

/** fastai's Zoom: U(1, maxZoom) at a random centre. */
export const zoom: CoordAug = (rand, o) => {
  if (!(o.maxZoom > 1 && rand() < o.pAffine)) return null;
  const s = uniformIn(rand, 1, o.maxZoom);
  const col = rand();
  const row = rand();
  return [1 / s, 0, (1 - 1 / s) * (2 * col - 1), 0, 1 / s, (1 - 1 / s) * (2 * row - 1), 0, 0, 1];
};

/** fastai's Brightness: U(0.5(1−m), 0.5(1+m)) added as a logit. */
export const brightness: LightingAug = (rand, o) =>
  (o.maxLighting > 0 && rand() < o.pLighting ? { brightness: logit(uniformIn(rand, 0.5 * (1 - o.maxLighting), 0.5 * (1 + o.maxLighting))) } : null);

/** fastai's Contrast: a logit multiplier, log-uniform in [1−m, 1/(1−m)]. */
export const contrast: LightingAug = (rand, o) =>
  (o.maxLighting > 0 && rand() < o.pLighting
    ? { contrast: Math.exp(uniformIn(rand, Math.log(1 - o.maxLighting), -Math.log(1 - o.maxLighting))) } : null);

/** The geometric augmentations in the order they compose; adding one is a function here and a line in this list. */
export const COORD_AUGS: readonly CoordAug[] = [randomResizedCrop, warp, flip, rotate, zoom];
/** The lighting augmentations in the order they draw. */
export const LIGHTING_AUGS: readonly LightingAug[] = [brightness, contrast];

/**
 * Returns n images' augmentation parameters drawn from `rand` (uniform [0, 1)) in a fixed order
 * (COORD_AUGS, then LIGHTING_AUGS, image by image), so the same generator state gives the same batch.
 */
export function drawAugParams(n: number, rand: Rand, o: AugOptions = AUG_DEFAULTS): AugParams {
  const matrices = new Float64Array(9 * n);
  const bright = new Float64Array(n);
  const contr = new Float64Array(n).fill(1);
  for (let i = 0; i < n; i++) {
    let m = IDENTITY;
    for (const aug of COORD_AUGS) {
      const step = aug(rand, o);
      if (step) m = m === IDENTITY ? step : mul(m, step);
    }
    matrices.set(m, 9 * i);
    for (const aug of LIGHTING_AUGS) {
      const change = aug(rand, o);
      if (change?.brightness !== undefined) bright[i] += change.brightness;
      if (change?.contrast !== undefined) contr[i] *= change.contrast;
    }
  }
  return { n, matrices, brightness: bright, contrast: contr };
}

/** Returns the identity parameters (the validation transform: only the resize to size). */
export function identityParams(n: number): AugParams {
  return drawAugParams(n, () => 0.5, NO_AUG);
}

// In-place ops the Tensor class does not expose (generic dispatch): the lighting chain runs on
// the sampled batch without allocating a new [N, 3, size, size] tensor at every step.
const inPlace = (op: string, x: Tensor, ...args: unknown[]): void => callInPlace(op, [x.handle, ...args]);

/**
 * Returns the batch augmented and normalised: float32 [N, 3, size, size] from uint8 items
 * [N, 3, H, W], with one affine_grid and one grid_sample (bilinear, reflection padding, corners
 * aligned), then lighting in logit space and (x / 255 − mean) / std.
 */
export function augmentBatch(x: Tensor, p: AugParams, size: number, stats: Stats = IMAGENET_STATS): Tensor {
  return tidy(() => {
    const n = p.n;
    const device = x.device === 'cpu' ? undefined : (x.device as 'cuda');
    // Sampling is linear, so the 1/255 scaling waits for the smaller, sampled batch.
    const f = x.dtype === 'uint8' ? x.float() : x.mul(255);
    const rows = new Float32Array(6 * n);
    const den = new Float32Array(3 * n);
    let projective = false;
    for (let i = 0; i < n; i++) {
      const m = p.matrices.subarray(9 * i, 9 * i + 9);
      rows.set(m.subarray(0, 6), 6 * i);
      den.set(m.subarray(6, 9), 3 * i);
      if (m[6] !== 0 || m[7] !== 0 || m[8] !== 1) projective = true;
    }
    const chan = (v: number[]): Tensor => tensor(Float32Array.from(v), { shape: [1, 3, 1, 1], device });
    const lighting = p.brightness.some((b) => b !== 0) || p.contrast.some((c) => c !== 1);
    // (x / 255 − mean) / std in place, as one multiply and one add.
    const normalise = (t: Tensor): Tensor => t.mul_(chan(stats.std.map((s) => 1 / (255 * s)))).add_(chan(stats.mean.map((m, i) => -m / stats.std[i])));
    const identity = !lighting && Array.from({ length: n }, (_, i) => p.matrices.subarray(9 * i, 9 * i + 9)).every((m) => m.every((v, k) => v === IDENTITY[k]));
    // Nothing to resample: the pixels themselves, exactly (an identity grid_sample rounds).
    if (identity && x.size(2) === size && x.size(3) === size) return normalise(f);
    const theta = tensor(rows, { shape: [n, 2, 3], device });
    let grid = F.affineGrid(theta, [n, 3, size, size], true);
    if (projective) {
      // The third row divides: z = g·u + h·v + k over the output grid (u along x, v along y).
      const d = tensor(den, { shape: [n, 3, 1, 1], device });
      const u = linspace(-1, 1, size, { device }).view(1, 1, size);
      const v = linspace(-1, 1, size, { device }).view(1, size, 1);
      const z = d.select(1, 0).mul(u).add(d.select(1, 1).mul(v)).add(d.select(1, 2));
      grid = grid.div(z.unsqueeze(3));
    }
    const out = F.gridSample(f, grid, { mode: 'bilinear', paddingMode: 'reflection', alignCorners: true });
    if (!lighting) return normalise(out);
    // sigmoid(c · (logit(x / 255) + b)), with logit(x / 255) = log(x / (255 − x)).
    const eps = 1e-7 * 255;
    out.clamp_(eps, 255 - eps);
    const rest = new Tensor(callOp('aten::rsub.Scalar', [out.handle, 255, 1]) as Handle);
    out.div_(rest);
    inPlace('aten::log_', out);
    out.add_(tensor(Float32Array.from(p.brightness), { shape: [n, 1, 1, 1], device }));
    out.mul_(tensor(Float32Array.from(p.contrast), { shape: [n, 1, 1, 1], device }));
    inPlace('aten::sigmoid_', out);
    out.mul_(chan(stats.std.map((s) => 1 / s))).add_(chan(stats.mean.map((m, i) => -m / stats.std[i])));
    return out;
  });
}
