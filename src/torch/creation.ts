// Creating tensors: from JavaScript data, filled, random, ranges.
import { native } from './native.js';
import { asTorchError, TorchError } from './errors.js';
import { Tensor, t, toTyped } from './tensor.js';
import { shortName } from './dispatch.js';
import { dtypeCode, dtypeOfArray, type DType, type Device, type TypedArray } from './dtype.js';

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

type Nested = number | boolean | Nested[];

function inferShape(data: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
  }
  return shape;
}

function finish(x: Tensor, opts: TensorOptions): Tensor {
  let out = x;
  if (opts.device !== undefined && opts.device !== 'cpu') {
    out = x.to(opts.device);
    x.dispose();
  }
  if (opts.requiresGrad) out.requiresGrad_(true);
  return out;
}

/**
 * Returns a tensor holding a copy of `data`: a number, nested arrays, or a typed array (with
 * `shape`, else 1-d). Plain numbers default to float32, booleans to bool, typed arrays keep their type.
 */
export function tensor(data: Nested | TypedArray, opts: TensorOptions & { shape?: number[] } = {}): Tensor {
  const typed = ArrayBuffer.isView(data);
  const flat: ArrayLike<number | boolean> = typed ? (data as TypedArray as ArrayLike<number>)
    : Array.isArray(data) ? ((data as unknown[]).flat(Infinity) as (number | boolean)[]) : [data as number | boolean];
  const natural: DType = typed ? dtypeOfArray(data as TypedArray) : typeof flat[0] === 'boolean' ? 'bool' : 'float32';
  const dtype = opts.dtype ?? natural;
  const shape = opts.shape ?? (typed ? [flat.length] : inferShape(data as Nested));
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== flat.length) {
    throw new TorchError('tensor', `shape [${shape}] needs ${count} elements, data has ${flat.length}`, 'value');
  }
  // 16-bit floats are built in float32 and cast; int64 from a BigInt64Array passes through.
  const buildDtype: DType = dtype === 'float16' || dtype === 'bfloat16' ? 'float32' : dtype;
  const buffer = typed && natural === buildDtype ? (data as TypedArray) : toTyped(flat as ArrayLike<number>, buildDtype);
  let x: Tensor;
  try {
    x = new Tensor(native.fromBuffer(buffer, shape, dtypeCode(buildDtype, 'tensor')));
  } catch (e) {
    throw asTorchError('tensor', e);
  }
  if (buildDtype !== dtype) {
    const cast = x.to(dtype);
    x.dispose();
    x = cast;
  }
  return finish(x, opts);
}

function factory(op: string, shape: number[], opts: TensorOptions, ...before: unknown[]): Tensor {
  const x = t(op, ...before, shape, dtypeCode(opts.dtype ?? 'float32', shortName(op)), null, opts.device ?? null);
  if (opts.requiresGrad) x.requiresGrad_(true);
  return x;
}

export function zeros(shape: number[], opts: TensorOptions = {}): Tensor { return factory('aten::zeros', shape, opts); }
export function ones(shape: number[], opts: TensorOptions = {}): Tensor { return factory('aten::ones', shape, opts); }
export function empty(shape: number[], opts: TensorOptions = {}): Tensor { return factory('aten::empty.memory_format', shape, opts); }
/** A tensor of `value`s (float32 unless a dtype is given). */
export function full(shape: number[], value: number, opts: TensorOptions = {}): Tensor {
  const x = t('aten::full', shape, value, dtypeCode(opts.dtype ?? 'float32', 'full'), null, opts.device ?? null);
  if (opts.requiresGrad) x.requiresGrad_(true);
  return x;
}
/** Uniform on [0, 1). */
export function rand(shape: number[], opts: TensorOptions = {}): Tensor { return factory('aten::rand', shape, opts); }
/** Standard normal. */
export function randn(shape: number[], opts: TensorOptions = {}): Tensor { return factory('aten::randn', shape, opts); }
/** Integers uniform on [low, high), int64 unless a dtype is given. */
export function randint(low: number, high: number, shape: number[], opts: TensorOptions = {}): Tensor {
  return t('aten::randint.low', low, high, shape, dtypeCode(opts.dtype ?? 'int64', 'randint'), null, opts.device ?? null);
}
/** A random permutation of 0..n-1 (int64). */
export function randperm(n: number, opts: Omit<TensorOptions, 'dtype' | 'requiresGrad'> = {}): Tensor {
  return t('aten::randperm', n, dtypeCode('int64'), null, opts.device ?? null);
}
/** start, start+step, … below end; integers give int64, as in PyTorch, unless a dtype is given. */
export function arange(start: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  const [lo, hi] = end === undefined ? [0, start] : [start, end];
  return t('aten::arange.start_step', lo, hi, step, opts.dtype ? dtypeCode(opts.dtype, 'arange') : null, null, opts.device ?? null);
}
/** `steps` evenly spaced values from start to end inclusive. */
export function linspace(start: number, end: number, steps: number, opts: TensorOptions = {}): Tensor {
  return t('aten::linspace', start, end, steps, dtypeCode(opts.dtype ?? 'float32', 'linspace'), null, opts.device ?? null);
}
export function zerosLike(x: Tensor): Tensor { return t('aten::zeros_like', x.handle); }
export function onesLike(x: Tensor): Tensor { return t('aten::ones_like', x.handle); }
export function randLike(x: Tensor): Tensor { return t('aten::rand_like', x.handle); }
export function randnLike(x: Tensor): Tensor { return t('aten::randn_like', x.handle); }
export function fullLike(x: Tensor, value: number): Tensor { return t('aten::full_like', x.handle, value); }
