// Deterministic memory release: tensors made inside tidy(fn) are disposed when fn returns,
// except those it returns (they move to the enclosing scope) and those passed to keep().

/** What a scope needs from a tensor. */
export interface Scoped {
  scope: Scope | null;
  dispose(): void;
  /**
   * Called when the tensor is outside every scope (made outside one, returned from the outermost,
   * or kept): only dispose() or the garbage collector frees it from then on, so its bytes should
   * count towards V8's next collection.
   */
  unscoped(): void;
}

export class Scope {
  readonly tensors: Scoped[] = [];
}

const stack: Scope[] = [];

/** Records a new tensor in the innermost open scope, if any. */
export function track(t: Scoped): void {
  const scope = stack[stack.length - 1];
  if (scope) {
    scope.tensors.push(t);
    t.scope = scope;
  } else {
    t.unscoped();
  }
}

/** Takes `t` out of any scope so it lives until disposed (or collected); returns it. */
export function keep<T extends Scoped>(t: T): T {
  t.scope = null;
  t.unscoped();
  return t;
}

function isScoped(v: unknown): v is Scoped {
  return typeof v === 'object' && v !== null && 'scope' in v && typeof (v as Scoped).dispose === 'function';
}

// The tensors a scope's result holds: the result itself, or inside arrays and plain objects.
function collect(v: unknown, out: Set<Scoped>, depth = 0): void {
  if (depth > 4 || v === null || typeof v !== 'object') return;
  if (isScoped(v)) {
    out.add(v);
  } else if (Array.isArray(v)) {
    for (const x of v) collect(x, out, depth + 1);
  } else if (Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collect(x, out, depth + 1);
  }
}

/**
 * Returns fn's result after disposing every tensor fn made that the result does not hold.
 * Synchronous only: an async function's tensors outlive its first await, so it is refused.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Scope();
  stack.push(scope);
  let result: T | undefined;
  try {
    result = fn();
    if (result instanceof Promise) {
      throw new TypeError('tidy() takes a synchronous function; dispose tensors of async code explicitly');
    }
  } finally {
    stack.pop();
    const survivors = new Set<Scoped>();
    collect(result, survivors);
    const outer = stack[stack.length - 1] ?? null;
    for (const t of scope.tensors) {
      if (t.scope !== scope) continue;
      if (survivors.has(t)) {
        t.scope = outer;
        if (outer) outer.tensors.push(t);
        else t.unscoped();
      } else {
        t.dispose();
      }
    }
  }
  return result as T;
}

/** Disposes every tensor held by `v` (a tensor, or arrays and plain objects of tensors). */
export function dispose(v: unknown): void {
  const found = new Set<Scoped>();
  collect(v, found);
  for (const t of found) t.dispose();
}
