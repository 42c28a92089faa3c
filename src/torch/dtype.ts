// Element types and devices, with the codes libtorch's c10::ScalarType uses.
import { TorchError } from './errors.js';

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;
export type MemoryFormat = 'contiguous' | 'preserve' | 'channels_last';

const codes: Record<DType, number> = {
  uint8: 0, int8: 1, int16: 2, int32: 3, int64: 4, float16: 5, float32: 6, float64: 7, bool: 11, bfloat16: 15,
};
const names = new Map<number, DType>(Object.entries(codes).map(([k, v]) => [v, k as DType]));

/** Returns libtorch's ScalarType code for a dtype name; `op`, the caller, is named in the error for an unknown one. */
export function dtypeCode(dtype: DType, op = 'dtype'): number {
  const code = codes[dtype];
  if (code === undefined) {
    throw new TorchError(op, `unknown dtype '${dtype}'; expected one of ${Object.keys(codes).join(', ')}`, 'type');
  }
  return code;
}

/** Returns the dtype name for libtorch's ScalarType code. */
export function dtypeName(code: number): DType {
  const name = names.get(code);
  if (name === undefined) throw new TypeError(`unsupported libtorch dtype code ${code}`);
  return name;
}

export const memoryFormatCode: Record<MemoryFormat, number> = { contiguous: 0, preserve: 1, channels_last: 2 };

export function isFloating(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16';
}

/** Bytes per element. */
export function itemSize(dtype: DType): number {
  switch (dtype) {
    case 'float64': case 'int64': return 8;
    case 'float32': case 'int32': return 4;
    case 'float16': case 'bfloat16': case 'int16': return 2;
    default: return 1;
  }
}

export type TypedArray = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array;

/** Returns the dtype a typed array holds natively. */
export function dtypeOfArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof BigInt64Array) return 'int64';
  return 'uint8';
}

/** Returns a view of `buf` as the typed array for `dtype` (16-bit floats come as raw Uint16 bits). */
export function viewAs(buf: ArrayBuffer, dtype: DType): TypedArray | Uint16Array {
  switch (dtype) {
    case 'float32': return new Float32Array(buf);
    case 'float64': return new Float64Array(buf);
    case 'int64': return new BigInt64Array(buf);
    case 'int32': return new Int32Array(buf);
    case 'int16': return new Int16Array(buf);
    case 'int8': return new Int8Array(buf);
    case 'float16': case 'bfloat16': return new Uint16Array(buf);
    default: return new Uint8Array(buf);
  }
}
