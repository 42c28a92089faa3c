// Calls libtorch operators by their schema name ('aten::add.Tensor'), resolving each once.
import { native } from './native.js';
import { asTorchError } from './errors.js';

const ids = new Map<string, number>();

function opId(op: string): number {
  let id = ids.get(op);
  if (id === undefined) {
    const dot = op.indexOf('.', op.indexOf('::') + 2);
    const name = dot < 0 ? op : op.slice(0, dot);
    const overload = dot < 0 ? '' : op.slice(dot + 1);
    try {
      id = native.resolveOp(name, overload);
    } catch (e) {
      throw asTorchError(shortName(op), e);
    }
    ids.set(op, id);
  }
  return id;
}

/** The name users know an operator by: 'aten::conv2d' → 'conv2d'. */
export function shortName(op: string): string {
  const start = op.indexOf('::') + 2;
  const dot = op.indexOf('.', start);
  return dot < 0 ? op.slice(start) : op.slice(start, dot);
}

/** Sees every operator call while set (see setOpObserver): the ONNX exporter traces a forward pass this way. */
export type OpObserver = (op: string, args: readonly unknown[], result: unknown, inPlace: boolean) => void;
let observer: OpObserver | null = null;

/** Sets (or clears, with null) the observer of operator calls; returns the previous one. */
export function setOpObserver(o: OpObserver | null): OpObserver | null {
  const before = observer;
  observer = o;
  return before;
}

/** Returns the operator's raw result (handles, values, or arrays of them). */
export function callOp(op: string, args: unknown[]): unknown {
  const id = opId(op);
  let result: unknown;
  try {
    result = native.callOp(id, ...args);
  } catch (e) {
    throw asTorchError(shortName(op), e);
  }
  observer?.(op, args, result, false);
  return result;
}

/** Calls an operator that writes into one of its arguments, discarding the returned alias. */
export function callInPlace(op: string, args: unknown[]): void {
  const id = opId(op);
  try {
    native.callOpInPlace(id, ...args);
  } catch (e) {
    throw asTorchError(shortName(op), e);
  }
  observer?.(op, args, args[0], true);
}

/** Returns the operator's schema as libtorch prints it. */
export function schemaOf(op: string): string {
  return native.schema(opId(op));
}
