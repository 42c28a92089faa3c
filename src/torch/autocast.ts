// Mixed precision: inside autocast(fn), eligible ops (convolutions, matmuls) run in a lower
// precision dtype and precision-sensitive ones in float32, exactly as torch.autocast does.
import { native } from './native.js';
import { dtypeCode, type DType } from './dtype.js';
import { TorchError } from './errors.js';

export interface AutocastOptions {
  /** 'cpu' (bfloat16 only) or 'cuda' (float16 or bfloat16). Default 'cpu'. */
  device?: 'cpu' | 'cuda';
  /** Default bfloat16 on CPU, float16 on CUDA. */
  dtype?: DType;
  enabled?: boolean;
}

/** Returns fn() run under autocast. */
export function autocast<T>(fn: () => T, o: AutocastOptions = {}): T {
  const device = o.device ?? 'cpu';
  const dtype = o.dtype ?? (device === 'cpu' ? 'bfloat16' : 'float16');
  if (device === 'cpu' && dtype !== 'bfloat16') {
    throw new TorchError('autocast', `CPU autocast supports bfloat16 only, got ${dtype}`, 'value');
  }
  if (dtype !== 'bfloat16' && dtype !== 'float16') {
    throw new TorchError('autocast', `autocast dtype must be float16 or bfloat16, got ${dtype}`, 'value');
  }
  const [wasEnabled, wasDtype] = native.autocastState(device);
  native.setAutocast(device, o.enabled ?? true, dtypeCode(dtype));
  native.autocastEnter();
  try {
    const result = fn();
    if (result instanceof Promise) throw new TypeError('autocast takes a synchronous function');
    return result;
  } finally {
    native.autocastExit();
    native.setAutocast(device, wasEnabled, wasDtype);
  }
}
