// Tensor: a JavaScript owner of one libtorch tensor, with PyTorch's method names in camelCase.
import { native, type Handle } from './native.js';
import { callOp, callInPlace } from './dispatch.js';
import { TorchError, asTorchError } from './errors.js';
import { track, type Scope, type Scoped } from './scope.js';
import {
  dtypeCode, dtypeName, memoryFormatCode, viewAs,
  type DType, type Device, type MemoryFormat, type TypedArray,
} from './dtype.js';

type Other = Tensor | number;

// A handle whose tensor is already released: passing it to any op fails with "tensor was disposed".
const DISPOSED: Handle = native.fromBuffer(new Float32Array(0), [0], dtypeCode('float32'));
native.dispose(DISPOSED);

/** Values and indices, as torch.max(dim), topk and sort return them. */
export interface ValuesIndices {
  values: Tensor;
  indices: Tensor;
}

export class Tensor implements Scoped {
  scope: Scope | null = null;
  #h: Handle | null;
  #meta: [number[], number, string, boolean] | null = null;

  /** Wraps a handle from the addon; the new tensor joins the innermost open scope. */
  constructor(handle: Handle) {
    this.#h = handle;
    track(this);
  }

  /** The handle, for the op layer; once disposed, a dead handle the addon refuses, so the error names the op. */
  get handle(): Handle {
    return this.#h ?? DISPOSED;
  }

  /** Shape, dtype code, device and requires_grad; `op` names the caller in the error a disposed tensor raises. */
  #info(op: string): [number[], number, string, boolean] {
    if (this.#meta === null) {
      try {
        this.#meta = native.meta(this.handle);
      } catch (e) {
        throw asTorchError(op, e);
      }
    }
    return this.#meta;
  }

  get shape(): number[] { return this.#info('shape')[0].slice(); }
  get dtype(): DType { return dtypeName(this.#info('dtype')[1]); }
  get device(): string { return this.#info('device')[2]; }
  get ndim(): number { return this.#info('ndim')[0].length; }
  get isDisposed(): boolean { return this.#h === null; }
  /** Number of elements. */
  numel(): number { return this.#info('numel')[0].reduce((a, b) => a * b, 1); }
  /** Size of dimension `d` (negative counts from the end). */
  size(d: number): number {
    const s = this.#info('size')[0];
    const i = d < 0 ? d + s.length : d;
    if (i < 0 || i >= s.length) throw new TorchError('size', `dimension ${d} out of range for a ${s.length}-d tensor`, 'index');
    return s[i];
  }
  strides(): number[] {
    try { return native.strides(this.handle); } catch (e) { throw asTorchError('strides', e); }
  }

  /** Tells the addon that only dispose() or the garbage collector will free this tensor now (see Scoped). */
  unscoped(): void {
    if (this.#h !== null) native.reportToGc(this.#h);
  }

  /** Releases the memory now; later use throws. Safe to call twice. */
  dispose(): void {
    if (this.#h !== null) native.dispose(this.#h);
    this.#h = null;
    this.#meta = null;
    this.scope = null;
  }

  toString(): string {
    return this.isDisposed ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device})`;
  }

  // ---- data out ----
  /** Returns the only element as a number (or boolean). */
  item(): number {
    try {
      return Number(native.item(this.handle));
    } catch (e) {
      throw asTorchError('item', e);
    }
  }
  /** Returns a copy of the elements in row-major order; float16/bfloat16 come as Float32Array, bool as Uint8Array. */
  toTypedArray(): TypedArray {
    const dtype = dtypeName(this.#info('toTypedArray')[1]);
    if (dtype === 'float16' || dtype === 'bfloat16') {
      const f = this.to('float32');
      try { return f.toTypedArray(); } finally { f.dispose(); }
    }
    try {
      return viewAs(native.toBuffer(this.handle), dtype) as TypedArray;
    } catch (e) {
      throw asTorchError('toTypedArray', e);
    }
  }
  /** Returns the elements as plain numbers, row-major. */
  toArray(): number[] {
    return Array.from(this.toTypedArray() as ArrayLike<number | bigint>, Number);
  }

  // ---- autograd ----
  get requiresGrad(): boolean {
    try { return native.meta(this.handle)[3]; } catch (e) { throw asTorchError('requiresGrad', e); }
  }
  /** Sets requires_grad in place; returns this. */
  requiresGrad_(on = true): this {
    try { native.setRequiresGrad(this.handle, on); } catch (e) { throw asTorchError('requiresGrad_', e); }
    this.#meta = null;
    return this;
  }
  /** The accumulated gradient (a new handle on it), or null. */
  get grad(): Tensor | null {
    let g: Handle | null;
    try { g = native.grad(this.handle); } catch (e) { throw asTorchError('grad', e); }
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) {
    try { native.setGrad(this.handle, g === null ? null : g.handle); } catch (e) { throw asTorchError('grad', e); }
  }
  get isLeaf(): boolean { return this.#autograd('isLeaf')[0]; }
  /** The name of the autograd node that made this tensor, e.g. 'ConvolutionBackward0'. */
  get gradFn(): string | null { return this.#autograd('gradFn')[1]; }
  #autograd(op: string): [boolean, string | null] {
    try { return native.autogradInfo(this.handle); } catch (e) { throw asTorchError(op, e); }
  }
  backward(gradient?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    try {
      native.backward(this.handle, gradient ? gradient.handle : null, opts.retainGraph ?? false, opts.createGraph ?? false);
    } catch (e) {
      throw asTorchError('backward', e);
    }
  }
  detach(): Tensor { return t('aten::detach', this.handle); }

  // ---- conversion ----
  /**
   * Returns a tensor with the given dtype and/or device (this tensor itself, uncopied, when nothing
   * changes). `nonBlocking`: a copy from pinned memory to CUDA (or back) is queued on the current
   * stream and returns at once, as torch's non_blocking=True.
   */
  to(target: DType | Device | { dtype?: DType; device?: Device; nonBlocking?: boolean }): Tensor {
    const spec = typeof target === 'string' ? (isDevice(target) ? { device: target } : { dtype: target as DType }) : target;
    return t('aten::to.dtype_layout', this.handle, spec.dtype === undefined ? null : dtypeCode(spec.dtype, 'to'), null,
      spec.device ?? null, null, 'nonBlocking' in spec && spec.nonBlocking === true);
  }
  /**
   * Returns a copy in page-locked (pinned) host memory, from which copies to CUDA can run
   * asynchronously (torch's pin_memory()). Needs a CUDA build of libtorch; throws a TorchError otherwise.
   */
  pinMemory(): Tensor { return t('aten::pin_memory', this.handle, null); }
  /** Whether the tensor lives in pinned host memory (torch's is_pinned()). */
  get isPinned(): boolean { return callOp('aten::is_pinned', [this.handle, null]) as boolean; }
  float(): Tensor { return this.to('float32'); }
  double(): Tensor { return this.to('float64'); }
  half(): Tensor { return this.to('float16'); }
  bfloat16(): Tensor { return this.to('bfloat16'); }
  long(): Tensor { return this.to('int64'); }
  int(): Tensor { return this.to('int32'); }
  bool(): Tensor { return this.to('bool'); }
  cpu(): Tensor { return this.to('cpu'); }
  cuda(index = 0): Tensor { return this.to(`cuda:${index}`); }
  clone(memoryFormat: MemoryFormat = 'preserve'): Tensor { return t('aten::clone', this.handle, memoryFormatCode[memoryFormat]); }
  contiguous(memoryFormat: MemoryFormat = 'contiguous'): Tensor {
    return t('aten::contiguous', this.handle, memoryFormatCode[memoryFormat]);
  }
  /** Returns the tensor in channels_last memory layout (NHWC strides, NCHW shape). */
  channelsLast(): Tensor { return this.contiguous('channels_last'); }
  isContiguous(memoryFormat: MemoryFormat = 'contiguous'): boolean {
    try {
      return native.isContiguous(this.handle, memoryFormatCode[memoryFormat]);
    } catch (e) {
      throw asTorchError('is_contiguous', e);
    }
  }

  // ---- shape ----
  view(...shape: number[]): Tensor { return t('aten::view', this.handle, shape); }
  reshape(...shape: number[]): Tensor { return t('aten::reshape', this.handle, shape); }
  permute(...dims: number[]): Tensor { return t('aten::permute', this.handle, dims); }
  transpose(dim0: number, dim1: number): Tensor { return t('aten::transpose.int', this.handle, dim0, dim1); }
  flatten(startDim = 0, endDim = -1): Tensor { return t('aten::flatten.using_ints', this.handle, startDim, endDim); }
  squeeze(dim?: number): Tensor {
    return dim === undefined ? t('aten::squeeze', this.handle) : t('aten::squeeze.dim', this.handle, dim);
  }
  unsqueeze(dim: number): Tensor { return t('aten::unsqueeze', this.handle, dim); }
  expand(...shape: number[]): Tensor { return t('aten::expand', this.handle, shape); }
  expandAs(other: Tensor): Tensor { return this.expand(...other.shape); }
  repeat(...times: number[]): Tensor { return t('aten::repeat', this.handle, times); }
  narrow(dim: number, start: number, length: number): Tensor { return t('aten::narrow', this.handle, dim, start, length); }
  /** Elements start..end (exclusive) by step along dim, like Python's x[..., start:end:step]. */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor {
    return t('aten::slice.Tensor', this.handle, dim, start ?? null, end ?? null, step);
  }
  select(dim: number, index: number): Tensor { return t('aten::select.int', this.handle, dim, index); }
  indexSelect(dim: number, index: Tensor): Tensor { return t('aten::index_select', this.handle, dim, index.handle); }
  gather(dim: number, index: Tensor): Tensor { return t('aten::gather', this.handle, dim, index.handle); }
  /** Splits into pieces of `size` (or of the listed sizes) along dim. */
  split(size: number | number[], dim = 0): Tensor[] {
    const raw = typeof size === 'number'
      ? callOp('aten::split.Tensor', [this.handle, size, dim])
      : callOp('aten::split_with_sizes', [this.handle, size, dim]);
    return (raw as Handle[]).map((h) => new Tensor(h));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return (callOp('aten::chunk', [this.handle, chunks, dim]) as Handle[]).map((h) => new Tensor(h));
  }

  // ---- arithmetic ----
  add(other: Other, alpha = 1): Tensor { return binary(this, 'add', other, alpha); }
  sub(other: Other, alpha = 1): Tensor { return binary(this, 'sub', other, alpha); }
  mul(other: Other): Tensor { return binary(this, 'mul', other); }
  div(other: Other): Tensor { return binary(this, 'div', other); }
  add_(other: Other, alpha = 1): this { return binaryInPlace(this, 'add_', other, alpha); }
  sub_(other: Other, alpha = 1): this { return binaryInPlace(this, 'sub_', other, alpha); }
  mul_(other: Other): this { return binaryInPlace(this, 'mul_', other); }
  div_(other: Other): this { return binaryInPlace(this, 'div_', other); }
  pow(exponent: Other): Tensor {
    return typeof exponent === 'number'
      ? t('aten::pow.Tensor_Scalar', this.handle, exponent)
      : t('aten::pow.Tensor_Tensor', this.handle, exponent.handle);
  }
  neg(): Tensor { return t('aten::neg', this.handle); }
  abs(): Tensor { return t('aten::abs', this.handle); }
  exp(): Tensor { return t('aten::exp', this.handle); }
  log(): Tensor { return t('aten::log', this.handle); }
  sqrt(): Tensor { return t('aten::sqrt', this.handle); }
  rsqrt(): Tensor { return t('aten::rsqrt', this.handle); }
  reciprocal(): Tensor { return t('aten::reciprocal', this.handle); }
  sign(): Tensor { return t('aten::sign', this.handle); }
  floor(): Tensor { return t('aten::floor', this.handle); }
  round(): Tensor { return t('aten::round', this.handle); }
  maximum(other: Tensor): Tensor { return t('aten::maximum', this.handle, other.handle); }
  minimum(other: Tensor): Tensor { return t('aten::minimum', this.handle, other.handle); }
  matmul(other: Tensor): Tensor { return t('aten::matmul', this.handle, other.handle); }
  clamp(min?: number | null, max?: number | null): Tensor { return t('aten::clamp', this.handle, min ?? null, max ?? null); }
  clamp_(min?: number | null, max?: number | null): this {
    return inPlace(this, 'aten::clamp_', this.handle, min ?? null, max ?? null);
  }
  /** this += value * t1 * t2 */
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this { return inPlace(this, 'aten::addcmul_', this.handle, t1.handle, t2.handle, value); }
  /** this += value * t1 / t2 */
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this { return inPlace(this, 'aten::addcdiv_', this.handle, t1.handle, t2.handle, value); }
  /** this += weight * (end - this) */
  lerp_(end: Tensor, weight: number): this { return inPlace(this, 'aten::lerp_.Scalar', this.handle, end.handle, weight); }
  sqrt_(): this { return inPlace(this, 'aten::sqrt_', this.handle); }
  zero_(): this { return inPlace(this, 'aten::zero_', this.handle); }
  fill_(value: number): this { return inPlace(this, 'aten::fill_.Scalar', this.handle, value); }
  copy_(src: Tensor): this { return inPlace(this, 'aten::copy_', this.handle, src.handle); }
  maskedFill(mask: Tensor, value: number): Tensor { return t('aten::masked_fill.Scalar', this.handle, mask.handle, value); }

  // ---- comparisons ----
  eq(other: Other): Tensor { return binary(this, 'eq', other); }
  ne(other: Other): Tensor { return binary(this, 'ne', other); }
  lt(other: Other): Tensor { return binary(this, 'lt', other); }
  le(other: Other): Tensor { return binary(this, 'le', other); }
  gt(other: Other): Tensor { return binary(this, 'gt', other); }
  ge(other: Other): Tensor { return binary(this, 'ge', other); }
  logicalNot(): Tensor { return t('aten::logical_not', this.handle); }
  isnan(): Tensor { return t('aten::isnan', this.handle); }
  /** Whether every element is true (or non-zero). */
  all(): boolean { return pick(this, 'aten::all'); }
  any(): boolean { return pick(this, 'aten::any'); }
  /** Whether all elements are within atol + rtol·|other| of other. */
  allclose(other: Tensor, rtol = 1e-5, atol = 1e-8): boolean {
    return callOp('aten::allclose', [this.handle, other.handle, rtol, atol, false]) as boolean;
  }

  // ---- reductions ----
  sum(dim?: number | number[], keepdim = false): Tensor {
    return dim === undefined ? t('aten::sum', this.handle) : t('aten::sum.dim_IntList', this.handle, dims(dim), keepdim);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return dim === undefined ? t('aten::mean', this.handle) : t('aten::mean.dim', this.handle, dims(dim), keepdim);
  }
  /** Population (unbiased = false) or sample standard deviation. */
  std(dim?: number | number[], unbiased = true, keepdim = false): Tensor {
    return t('aten::std.dim', this.handle, dim === undefined ? null : dims(dim), unbiased, keepdim);
  }
  var(dim?: number | number[], unbiased = true, keepdim = false): Tensor {
    return t('aten::var.dim', this.handle, dim === undefined ? null : dims(dim), unbiased, keepdim);
  }
  prod(): Tensor { return t('aten::prod', this.handle); }
  norm(p = 2): Tensor { return t('aten::norm.Scalar', this.handle, p); }
  cumsum(dim: number): Tensor { return t('aten::cumsum', this.handle, dim); }
  /** The largest element; with a dim, the largest values along it and their indices. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): ValuesIndices;
  max(dim?: number, keepdim = false): Tensor | ValuesIndices {
    return dim === undefined ? t('aten::max', this.handle) : pair(callOp('aten::max.dim', [this.handle, dim, keepdim]));
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): ValuesIndices;
  min(dim?: number, keepdim = false): Tensor | ValuesIndices {
    return dim === undefined ? t('aten::min', this.handle) : pair(callOp('aten::min.dim', [this.handle, dim, keepdim]));
  }
  argmax(dim?: number, keepdim = false): Tensor { return t('aten::argmax', this.handle, dim ?? null, keepdim); }
  argmin(dim?: number, keepdim = false): Tensor { return t('aten::argmin', this.handle, dim ?? null, keepdim); }
  topk(k: number, dim = -1, largest = true, sorted = true): ValuesIndices {
    return pair(callOp('aten::topk', [this.handle, k, dim, largest, sorted]));
  }
  sort(dim = -1, descending = false): ValuesIndices {
    return pair(callOp('aten::sort', [this.handle, dim, descending]));
  }
  softmax(dim: number): Tensor { return t('aten::softmax.int', this.handle, dim); }
  logSoftmax(dim: number): Tensor { return t('aten::log_softmax.int', this.handle, dim); }

  // ---- activations ----
  relu(): Tensor { return t('aten::relu', this.handle); }
  sigmoid(): Tensor { return t('aten::sigmoid', this.handle); }
  tanh(): Tensor { return t('aten::tanh', this.handle); }
}

// Helpers shared by the methods above and by the functional ops.

/** Calls an operator whose result is one tensor. */
export function t(op: string, ...args: unknown[]): Tensor {
  return new Tensor(callOp(op, args) as Handle);
}

/** Calls an in-place operator on `self` and returns it. */
function inPlace<T extends Tensor>(self: T, op: string, ...args: unknown[]): T {
  callInPlace(op, args);
  return self;
}

function binary(self: Tensor, name: string, other: Other, alpha?: number): Tensor {
  const alphaArgs = alpha === undefined || alpha === 1 ? [] : [alpha];
  return typeof other === 'number'
    ? t(`aten::${name}.Scalar`, self.handle, other, ...alphaArgs)
    : t(`aten::${name}.Tensor`, self.handle, other.handle, ...alphaArgs);
}

function binaryInPlace<T extends Tensor>(self: T, name: string, other: Other, alpha?: number): T {
  const alphaArgs = alpha === undefined || alpha === 1 ? [] : [alpha];
  return typeof other === 'number'
    ? inPlace(self, `aten::${name}.Scalar`, self.handle, other, ...alphaArgs)
    : inPlace(self, `aten::${name}.Tensor`, self.handle, other.handle, ...alphaArgs);
}

function pair(raw: unknown): ValuesIndices {
  const [values, indices] = raw as [Handle, Handle];
  return { values: new Tensor(values), indices: new Tensor(indices) };
}

function pick(self: Tensor, op: string): boolean {
  const r = t(op, self.handle);
  try { return Boolean(r.item()); } finally { r.dispose(); }
}

function dims(d: number | number[]): number[] {
  return typeof d === 'number' ? [d] : d;
}

function isDevice(s: string): s is Device {
  return s === 'cpu' || s === 'cuda' || s.startsWith('cuda:');
}

/** Returns the typed array for `data` in `dtype`, for tensor(); numbers convert, typed arrays pass through. */
export function toTyped(data: ArrayLike<number | boolean>, dtype: DType): ArrayBufferView {
  switch (dtype) {
    case 'float64': return Float64Array.from(data as ArrayLike<number>, Number);
    case 'int64': return BigInt64Array.from(data as ArrayLike<number>, (x) => BigInt(Math.trunc(Number(x))));
    case 'int32': return Int32Array.from(data as ArrayLike<number>, Number);
    case 'int16': return Int16Array.from(data as ArrayLike<number>, Number);
    case 'int8': return Int8Array.from(data as ArrayLike<number>, Number);
    case 'uint8': return Uint8Array.from(data as ArrayLike<number>, Number);
    // libtorch reads any byte but 0 and 1 as an invalid bool, so non-zero (NaN included) becomes 1, as in PyTorch.
    case 'bool': return Uint8Array.from(data as ArrayLike<number>, (x) => (Number(x) !== 0 ? 1 : 0));
    default: return Float32Array.from(data as ArrayLike<number>, Number);
  }
}

export { dtypeCode };
