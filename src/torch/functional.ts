// Functional ops with torch.nn.functional's names and defaults.
import { Tensor, t } from './tensor.js';
import { callOp, callInPlace } from './dispatch.js';
import { TorchError } from './errors.js';
import { tidy } from './scope.js';
import type { Handle } from './native.js';

type Pair = number | [number, number];
const h = (x: Tensor | null | undefined): Handle | null => (x ? x.handle : null);

export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return t('aten::linear', x.handle, weight.handle, h(bias));
}

export interface Conv2dOptions {
  stride?: Pair;
  /** A size, or 'same' / 'valid' as in PyTorch. */
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
}

export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: Conv2dOptions = {}): Tensor {
  const { stride = 1, padding = 0, dilation = 1, groups = 1 } = o;
  return typeof padding === 'string'
    ? t('aten::conv2d.padding', x.handle, weight.handle, h(bias), stride, padding, dilation, groups)
    : t('aten::conv2d', x.handle, weight.handle, h(bias), stride, padding, dilation, groups);
}

/** Batch normalisation; in training it uses batch statistics and updates the running ones in place. */
export function batchNorm(
  x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight: Tensor | null = null,
  bias: Tensor | null = null, training = false, momentum = 0.1, eps = 1e-5,
): Tensor {
  return t('aten::batch_norm', x.handle, h(weight), h(bias), h(runningMean), h(runningVar), training, momentum, eps, true);
}

/**
 * Layer normalisation over the last dims (normalizedShape) of x [*, ...normalizedShape], with
 * weight and bias of normalizedShape (Ba et al. 2016; PyTorch's F.layer_norm). A bfloat16 CPU
 * input with float32 weight (autocast's bfloat16 activations, float32 parameters) is normalised in
 * float32 and rounded back to bfloat16 once, as PyTorch 2.x's mixed-dtype CPU kernel computes it:
 * libtorch 1.13 throws for that mix, and its CPU autocast leaves layer_norm uncast.
 */
export function layerNorm(x: Tensor, normalizedShape: number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  if (x.dtype === 'bfloat16' && x.device === 'cpu' && weight?.dtype === 'float32') {
    return tidy(() => t('aten::layer_norm', x.float().handle, normalizedShape, h(weight), h(bias), eps, true).bfloat16());
  }
  return t('aten::layer_norm', x.handle, normalizedShape, h(weight), h(bias), eps, true);
}

/**
 * Calls an activation's in-place overload on `x` and returns `x` (PyTorch's `inplace=True`): no
 * new tensor, so the batch's largest buffers are not made again per layer. As in PyTorch,
 * autograd refuses it (at backward, or at once for a leaf that requires grad) where the value it
 * overwrites is still needed.
 */
function activateInPlace(x: Tensor, op: string, ...args: unknown[]): Tensor {
  callInPlace(op, [x.handle, ...args]);
  return x;
}

/**
 * ReLU, max(x, 0), elementwise, any shape. `inplace` overwrites `x` and returns it
 * (torch.nn.functional.relu's `inplace`).
 */
export function relu(x: Tensor, inplace = false): Tensor {
  return inplace ? activateInPlace(x, 'aten::relu_') : t('aten::relu', x.handle);
}
/**
 * ReLU6, min(max(x, 0), 6) (MobileNetV2, Sandler et al. 2018), as PyTorch's hardtanh(x, 0, 6),
 * elementwise, any shape; its gradient passes where 0 < x < 6. bfloat16 CPU tensors in a dense
 * layout go to the addon's visiontune::relu6 (native/src/bf16_activations.cc: one exact pass
 * each way), since libtorch 1.13 has no bfloat16 hardtanh backward on the CPU; other bfloat16
 * tensors to clamp(x, 0, 6) (whose gradient also passes at exactly 0 and 6). `inplace`
 * overwrites `x` with hardtanh_ and returns it, except for bfloat16 (a new tensor as above).
 */
export function relu6(x: Tensor, inplace = false): Tensor {
  if (x.dtype !== 'bfloat16') return inplace ? activateInPlace(x, 'aten::hardtanh_', 0, 6) : t('aten::hardtanh', x.handle, 0, 6);
  return x.device === 'cpu' ? t('visiontune::relu6', x.handle) : t('aten::clamp', x.handle, 0, 6);
}
/**
 * SiLU, x·sigmoid(x) (Elfwing et al. 2018), elementwise, any shape. bfloat16 CPU tensors in a
 * dense layout go to the addon's visiontune::silu (native/src/bf16_activations.cc): forward and gradient each
 * one pass in float32, rounded once, as PyTorch 2.x computes them (libtorch 1.13's bfloat16
 * kernels round every step and are 3.5× and 5.6× slower than its float32 ones). Everything else
 * is aten::silu. `inplace` overwrites `x` with silu_ and returns it, except for bfloat16 CPU
 * tensors (a new tensor from visiontune::silu).
 */
export function silu(x: Tensor, inplace = false): Tensor {
  if (x.dtype === 'bfloat16' && x.device === 'cpu') return t('visiontune::silu', x.handle);
  return inplace ? activateInPlace(x, 'aten::silu_') : t('aten::silu', x.handle);
}
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor { return t('aten::gelu', x.handle, approximate); }
export function sigmoid(x: Tensor): Tensor { return t('aten::sigmoid', x.handle); }
export function tanh(x: Tensor): Tensor { return t('aten::tanh', x.handle); }
/** Hard swish, x·relu6(x + 3)/6 (MobileNetV3, Howard et al. 2019), elementwise; `inplace` as relu's. */
export function hardswish(x: Tensor, inplace = false): Tensor {
  return inplace ? activateInPlace(x, 'aten::hardswish_') : t('aten::hardswish', x.handle);
}
export function hardsigmoid(x: Tensor): Tensor { return t('aten::hardsigmoid', x.handle); }
export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor { return t('aten::leaky_relu', x.handle, negativeSlope); }
export function softmax(x: Tensor, dim: number): Tensor { return t('aten::softmax.int', x.handle, dim); }
export function logSoftmax(x: Tensor, dim: number): Tensor { return t('aten::log_softmax.int', x.handle, dim); }

export interface Pool2dOptions {
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
}

export function maxPool2d(x: Tensor, kernelSize: Pair, o: Pool2dOptions & { dilation?: Pair } = {}): Tensor {
  return t('aten::max_pool2d', x.handle, kernelSize, o.stride ?? kernelSize, o.padding ?? 0, o.dilation ?? 1, o.ceilMode ?? false);
}

export function avgPool2d(x: Tensor, kernelSize: Pair, o: Pool2dOptions & { countIncludePad?: boolean } = {}): Tensor {
  return t('aten::avg_pool2d', x.handle, kernelSize, o.stride ?? kernelSize, o.padding ?? 0, o.ceilMode ?? false,
    o.countIncludePad ?? true, null);
}

export function adaptiveAvgPool2d(x: Tensor, outputSize: Pair): Tensor {
  return t('aten::adaptive_avg_pool2d', x.handle, outputSize);
}

export function adaptiveMaxPool2d(x: Tensor, outputSize: Pair): Tensor {
  const [values, indices] = callOp('aten::adaptive_max_pool2d', [x.handle, outputSize]) as [Handle, Handle];
  new Tensor(indices).dispose();
  return new Tensor(values);
}

/** Zeroes elements with probability p when training, scaling the rest by 1/(1-p). */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  if (p < 0 || p > 1) throw new TorchError('dropout', `probability has to be between 0 and 1, but got ${p}`, 'value');
  return t('aten::dropout', x.handle, p, training);
}

export type Reduction = 'none' | 'mean' | 'sum';
const reductionCode: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

function reduction(op: string, r: Reduction): number {
  const code = reductionCode[r];
  if (code === undefined) throw new TorchError(op, `reduction must be 'none', 'mean' or 'sum', got '${r}'`, 'value');
  return code;
}

export interface CrossEntropyOptions {
  weight?: Tensor | null;
  reduction?: Reduction;
  ignoreIndex?: number;
  labelSmoothing?: number;
}

/** Cross-entropy of logits [N, C, …] against class indices (int64) or class probabilities. */
export function crossEntropy(logits: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor {
  return t('aten::cross_entropy_loss', logits.handle, target.handle, h(o.weight), reduction('cross_entropy', o.reduction ?? 'mean'),
    o.ignoreIndex ?? -100, o.labelSmoothing ?? 0);
}

export function nllLoss(logProbs: Tensor, target: Tensor, o: Omit<CrossEntropyOptions, 'labelSmoothing'> = {}): Tensor {
  return t('aten::nll_loss_nd', logProbs.handle, target.handle, h(o.weight), reduction('nll_loss', o.reduction ?? 'mean'),
    o.ignoreIndex ?? -100);
}

export function mseLoss(input: Tensor, target: Tensor, r: Reduction = 'mean'): Tensor {
  return t('aten::mse_loss', input.handle, target.handle, reduction('mse_loss', r));
}

export interface InterpolateOptions {
  size?: Pair;
  scaleFactor?: number | [number, number];
  mode?: 'bilinear' | 'nearest';
  alignCorners?: boolean;
}

/** Resizes a [N, C, H, W] batch to `size` or by `scaleFactor`. */
export function interpolate(x: Tensor, o: InterpolateOptions): Tensor {
  if ((o.size === undefined) === (o.scaleFactor === undefined)) {
    throw new TorchError('interpolate', 'give exactly one of size and scaleFactor', 'value');
  }
  const size = o.size === undefined ? null : typeof o.size === 'number' ? [o.size, o.size] : o.size;
  const scales = o.scaleFactor === undefined ? null
    : typeof o.scaleFactor === 'number' ? [o.scaleFactor, o.scaleFactor] : o.scaleFactor;
  const mode = o.mode ?? 'nearest';
  if (mode === 'bilinear') return t('aten::upsample_bilinear2d.vec', x.handle, size, o.alignCorners ?? false, scales);
  if (mode === 'nearest') {
    if (o.alignCorners !== undefined) throw new TorchError('interpolate', 'alignCorners only applies to bilinear', 'value');
    return t('aten::upsample_nearest2d.vec', x.handle, size, scales);
  }
  throw new TorchError('interpolate', `unsupported mode '${String(mode)}'`, 'value');
}

/** Sampling grid [N, H, W, 2] for the affine matrices theta [N, 2, 3] and output size [N, C, H, W]. */
export function affineGrid(theta: Tensor, size: number[], alignCorners = false): Tensor {
  return t('aten::affine_grid_generator', theta.handle, size, alignCorners);
}

export interface GridSampleOptions {
  mode?: 'bilinear' | 'nearest' | 'bicubic';
  paddingMode?: 'zeros' | 'border' | 'reflection';
  alignCorners?: boolean;
}

const sampleMode = { bilinear: 0, nearest: 1, bicubic: 2 } as const;
const paddingMode = { zeros: 0, border: 1, reflection: 2 } as const;

export function gridSample(x: Tensor, grid: Tensor, o: GridSampleOptions = {}): Tensor {
  const mode = sampleMode[o.mode ?? 'bilinear'];
  const pad = paddingMode[o.paddingMode ?? 'zeros'];
  if (mode === undefined || pad === undefined) throw new TorchError('grid_sample', 'unknown mode or paddingMode', 'value');
  return t('aten::grid_sampler', x.handle, grid.handle, mode, pad, o.alignCorners ?? false);
}

/** One-hot encoding of int64 class indices (int64 result, like PyTorch). */
export function oneHot(x: Tensor, numClasses = -1): Tensor { return t('aten::one_hot', x.handle, numClasses); }

export function pad(x: Tensor, padding: number[], mode: 'constant' | 'reflect' | 'replicate' = 'constant', value = 0): Tensor {
  return t('aten::pad', x.handle, padding, mode, mode === 'constant' ? value : null);
}

export function cat(tensors: Tensor[], dim = 0): Tensor { return t('aten::cat', tensors.map((x) => x.handle), dim); }
export function stack(tensors: Tensor[], dim = 0): Tensor { return t('aten::stack', tensors.map((x) => x.handle), dim); }

/** Elementwise choice: a where condition holds, else b. */
export function where(condition: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof a === 'number' && typeof b === 'number') return t('aten::where.Scalar', condition.handle, a, b);
  if (typeof a === 'number') return t('aten::where.ScalarSelf', condition.handle, a, (b as Tensor).handle);
  if (typeof b === 'number') return t('aten::where.ScalarOther', condition.handle, a.handle, b);
  return t('aten::where.self', condition.handle, a.handle, b.handle);
}
