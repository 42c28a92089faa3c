// PyTorch's initialisers (torch.nn.init), in place and without recording gradients. With the same
// seed they draw the same numbers as PyTorch, since the generator and the kernels are libtorch's.
import { noGrad, type Tensor } from '../torch/index.js';
import { callInPlace } from '../torch/dispatch.js';
import { TorchError } from '../torch/errors.js';

export type Nonlinearity = 'linear' | 'conv2d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';
export type FanMode = 'fan_in' | 'fan_out';

/** Returns the recommended gain for a nonlinearity (torch.nn.init.calculate_gain). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear': case 'conv2d': case 'sigmoid': return 1;
    case 'tanh': return 5 / 3;
    case 'relu': return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu': return 3 / 4;
    default: throw new TorchError('calculate_gain', `unsupported nonlinearity ${String(nonlinearity)}`, 'value');
  }
}

/** Returns [fanIn, fanOut] of a weight: its input and output feature counts times the kernel area. */
export function computeFans(t: Tensor): [number, number] {
  const shape = t.shape;
  if (shape.length < 2) throw new TorchError('init', 'fan in and fan out need a tensor of at least 2 dimensions', 'value');
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return [shape[1] * receptive, shape[0] * receptive];
}

function fill(t: Tensor, op: string, ...args: unknown[]): Tensor {
  noGrad(() => callInPlace(op, [t.handle, ...args]));
  return t;
}

export function uniform_(t: Tensor, low = 0, high = 1): Tensor { return fill(t, 'aten::uniform_', low, high); }
export function normal_(t: Tensor, mean = 0, std = 1): Tensor { return fill(t, 'aten::normal_', mean, std); }
export function constant_(t: Tensor, value: number): Tensor { return fill(t, 'aten::fill_.Scalar', value); }
export function zeros_(t: Tensor): Tensor { return fill(t, 'aten::zero_'); }
export function ones_(t: Tensor): Tensor { return constant_(t, 1); }

export interface KaimingOptions {
  /** Negative slope of the leaky ReLU that follows (0 for ReLU). */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

function kaimingStd(t: Tensor, o: KaimingOptions): number {
  const [fanIn, fanOut] = computeFans(t);
  const gain = calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0);
  return gain / Math.sqrt((o.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut);
}

export function kaimingUniform_(t: Tensor, o: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, o);
  return uniform_(t, -bound, bound);
}

export function kaimingNormal_(t: Tensor, o: KaimingOptions = {}): Tensor {
  return normal_(t, 0, kaimingStd(t, o));
}

export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const [fanIn, fanOut] = computeFans(t);
  const bound = Math.sqrt(3) * gain * Math.sqrt(2 / (fanIn + fanOut));
  return uniform_(t, -bound, bound);
}

export function xavierNormal_(t: Tensor, gain = 1): Tensor {
  const [fanIn, fanOut] = computeFans(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)));
}

// The normal CDF, for truncNormal_.
function normCdf(x: number): number {
  return (1 + erf(x / Math.SQRT2)) / 2;
}

// Abramowitz–Stegun 7.1.26 is too coarse for the bounds; this series/continued-fraction pair is
// accurate to double precision, which truncNormal_'s interval needs to match PyTorch's math.erf.
function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const z = Math.abs(x);
  if (z < 2.5) {
    let term = z, sum = z;
    for (let n = 1; n < 100; n++) {
      term *= (-z * z) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return sign * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz), converges fast for z >= 2.5.
  let f = z, c = z, d = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    d = z + an * d; d = 1 / d;
    c = z + an / c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return sign * (1 - Math.exp(-z * z) / (f * Math.sqrt(Math.PI)));
}

/** Normal(mean, std) truncated to [a, b], drawn as torch.nn.init.trunc_normal_ draws it. */
export function truncNormal_(t: Tensor, mean = 0, std = 1, a = -2, b = 2): Tensor {
  const l = normCdf((a - mean) / std);
  const u = normCdf((b - mean) / std);
  noGrad(() => {
    callInPlace('aten::uniform_', [t.handle, 2 * l - 1, 2 * u - 1]);
    callInPlace('aten::erfinv_', [t.handle]);
    t.mul_(std * Math.SQRT2).add_(mean).clamp_(a, b);
  });
  return t;
}
