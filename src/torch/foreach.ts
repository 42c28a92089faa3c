// torch._foreach_*: one call for a whole list of tensors (PyTorch's multi-tensor ops). On CUDA a
// call launches a few fused kernels instead of one per tensor; on the CPU libtorch loops over the
// list with the ordinary ops, so the results equal the per-tensor ones exactly. The optimizers
// use them as torch.optim's foreach implementations do (torch/optim/adamw.py, _multi_tensor_adamw).
import { callOp, callInPlace } from './dispatch.js';
import { Tensor } from './tensor.js';
import type { Handle } from './native.js';

const handles = (ts: readonly Tensor[]): Handle[] => ts.map((t) => t.handle);

/** Each tensor ← tensor · scalar, in place. */
export function mul_(ts: readonly Tensor[], scalar: number): void {
  if (ts.length) callInPlace('aten::_foreach_mul_.Scalar', [handles(ts), scalar]);
}

/** Each tensor ← tensor / scalar, in place. */
export function div_(ts: readonly Tensor[], scalar: number): void {
  if (ts.length) callInPlace('aten::_foreach_div_.Scalar', [handles(ts), scalar]);
}

/** Each tensor ← tensor + scalar, in place. */
export function addScalar_(ts: readonly Tensor[], scalar: number): void {
  if (ts.length) callInPlace('aten::_foreach_add_.Scalar', [handles(ts), scalar]);
}

/** Each tensor ← tensor + alpha · other (same-length lists, pairwise same shapes), in place. */
export function add_(ts: readonly Tensor[], others: readonly Tensor[], alpha = 1): void {
  if (ts.length) callInPlace('aten::_foreach_add_.List', [handles(ts), handles(others), alpha]);
}

/** Each tensor ← tensor + value · t1 · t2, in place. */
export function addcmul_(ts: readonly Tensor[], t1: readonly Tensor[], t2: readonly Tensor[], value = 1): void {
  if (ts.length) callInPlace('aten::_foreach_addcmul_.Scalar', [handles(ts), handles(t1), handles(t2), value]);
}

/** Each tensor ← tensor + value · t1 / t2, in place. */
export function addcdiv_(ts: readonly Tensor[], t1: readonly Tensor[], t2: readonly Tensor[], value = 1): void {
  if (ts.length) callInPlace('aten::_foreach_addcdiv_.Scalar', [handles(ts), handles(t1), handles(t2), value]);
}

/** Returns the square root of each tensor (new tensors). */
export function sqrt(ts: readonly Tensor[]): Tensor[] {
  return ts.length ? (callOp('aten::_foreach_sqrt', [handles(ts)]) as Handle[]).map((h) => new Tensor(h)) : [];
}
