// Grad mode: whether ops record the graph for backward().
import { native } from './native.js';

function withGradMode<T>(on: boolean, fn: () => T): T {
  const before = native.isGradEnabled();
  native.setGradEnabled(on);
  try {
    const result = fn();
    if (result instanceof Promise) throw new TypeError('grad-mode scopes take a synchronous function');
    return result;
  } finally {
    native.setGradEnabled(before);
  }
}

/** Returns fn() run without recording autograd history, as `with torch.no_grad()`. */
export function noGrad<T>(fn: () => T): T { return withGradMode(false, fn); }
/** Returns fn() run with autograd on, even inside noGrad. */
export function enableGrad<T>(fn: () => T): T { return withGradMode(true, fn); }
export function isGradEnabled(): boolean { return native.isGradEnabled(); }
