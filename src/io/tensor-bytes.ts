// Raw little-endian bytes ↔ tensors of any dtype (16-bit floats and bool included), with no
// per-element work in JavaScript: bytes become a uint8 tensor that libtorch reinterprets.
import { tensor, type Tensor } from '../torch/index.js';
import { t } from '../torch/tensor.js';
import { dtypeCode, type DType } from '../torch/dtype.js';

/** Returns a new 1-d tensor of `dtype` holding a copy of `bytes` (length a multiple of the item size). */
export function tensorFromBytes(bytes: Uint8Array, dtype: DType): Tensor {
  const raw = tensor(bytes, { shape: [bytes.length] });
  if (dtype === 'uint8') return raw;
  try {
    return t('aten::view.dtype', raw.handle, dtypeCode(dtype));
  } finally {
    raw.dispose();
  }
}

/** Returns a new contiguous tensor: `shape` elements of `storage` read at `offset` + Σ index·stride (as_strided). */
export function gather(storage: Tensor, shape: number[], strides: number[], offset: number): Tensor {
  const view = t('aten::as_strided', storage.handle, shape, strides, offset);
  try {
    return view.clone('contiguous');
  } finally {
    view.dispose();
  }
}

/** Returns `bytes` with every `size`-byte element reversed (big-endian ↔ little-endian), as a copy. */
export function swapBytes(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += size) {
    for (let j = 0; j < size; j++) out[i + j] = bytes[i + size - 1 - j];
  }
  return out;
}

/** Returns the tensor's elements as raw little-endian bytes, row-major, copied to the CPU. */
export function tensorToBytes(x: Tensor): Uint8Array {
  // toTypedArray widens 16-bit floats to float32; reinterpreting them as int16 keeps the bits.
  const bits = x.dtype === 'float16' || x.dtype === 'bfloat16' ? t('aten::view.dtype', x.handle, dtypeCode('int16')) : x;
  try {
    const a = bits.toTypedArray();
    return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  } finally {
    if (bits !== x) bits.dispose();
  }
}
