// Module: parameters, buffers and submodules under PyTorch's dotted names, so a torchvision
// state_dict loads without renaming.
import { Tensor, keep, noGrad, type Device, type DType, type MemoryFormat } from '../torch/index.js';

/** A state dict: dotted name → tensor, in PyTorch's order. */
export type StateDict = Map<string, Tensor>;

/** loadStateDict failed: what was missing, unexpected, or of the wrong shape. */
export class StateDictError extends Error {
  constructor(
    readonly missingKeys: string[],
    readonly unexpectedKeys: string[],
    readonly shapeMismatches: { key: string; expected: number[]; got: number[] }[],
  ) {
    const parts: string[] = [];
    if (missingKeys.length) parts.push(`missing keys: ${missingKeys.join(', ')}`);
    if (unexpectedKeys.length) parts.push(`unexpected keys: ${unexpectedKeys.join(', ')}`);
    for (const m of shapeMismatches) {
      parts.push(`size mismatch for ${m.key}: checkpoint has [${m.got}], model has [${m.expected}]`);
    }
    super(`error loading state dict: ${parts.join('; ')}`);
    this.name = 'StateDictError';
  }
}

export abstract class Module {
  /** Whether the module is in training mode (dropout active, batch norm uses batch statistics). */
  training = true;
  readonly #params = new Map<string, Tensor | null>();
  readonly #buffers = new Map<string, Tensor | null>();
  readonly #nonPersistent = new Set<string>();
  readonly #children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  /** Registers a trainable tensor under `name`; returns it. The module owns it from now on. */
  registerParameter(name: string, value: Tensor | null): Tensor {
    this.#checkName(name, this.#params);
    if (value) keep(value.requiresGrad_(true));
    this.#params.set(name, value);
    return value as Tensor;
  }

  /** Registers state that is not trained (running statistics); non-persistent ones stay out of the state dict. */
  registerBuffer(name: string, value: Tensor | null, persistent = true): Tensor {
    this.#checkName(name, this.#buffers);
    if (value) keep(value);
    this.#buffers.set(name, value);
    if (!persistent) this.#nonPersistent.add(name);
    return value as Tensor;
  }

  /** Registers a submodule; returns it. */
  registerModule<M extends Module>(name: string, module: M): M {
    this.#checkName(name, this.#children);
    this.#children.set(name, module);
    return module;
  }

  #checkName(name: string, into: Map<string, unknown>): void {
    if (name === '' || name.includes('.')) throw new TypeError(`module attribute name '${name}' must be non-empty without dots`);
    const taken = [this.#params, this.#buffers, this.#children].some((m) => m !== into && m.has(name));
    if (taken) throw new TypeError(`attribute '${name}' is already registered on ${this.constructor.name}`);
  }

  /** Returns the parameter or buffer registered as `name` on this module. */
  getTensor(name: string): Tensor | null {
    return this.#params.get(name) ?? this.#buffers.get(name) ?? null;
  }

  /** Replaces a registered parameter or buffer (same name, new tensor), as `module.weight = ...` does. */
  setTensor(name: string, value: Tensor): void {
    if (this.#params.has(name)) {
      this.#params.set(name, keep(value));
    } else if (this.#buffers.has(name)) {
      this.#buffers.set(name, keep(value));
    } else {
      throw new TypeError(`${this.constructor.name} has no parameter or buffer '${name}'`);
    }
  }

  /** Returns [name, child] pairs of the direct submodules. */
  namedChildren(): [string, Module][] { return [...this.#children]; }
  children(): Module[] { return [...this.#children.values()]; }
  /** Returns the submodule at a dotted path ('features.0.1'). */
  getSubmodule(path: string): Module {
    let m: Module = this;
    for (const part of path.split('.')) {
      const next = m.#children.get(part);
      if (!next) throw new TypeError(`${m.constructor.name} has no submodule '${part}' (in '${path}')`);
      m = next;
    }
    return m;
  }

  /** Returns every module in the tree, pre-order, with dotted names ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.#children) out.push(...child.namedModules(join(prefix, name)));
    return out;
  }
  modules(): Module[] { return this.namedModules().map(([, m]) => m); }

  /** Returns [dotted name, parameter] pairs in PyTorch's order. */
  namedParameters(): [string, Tensor][] { return this.#collect((m) => m.#params); }
  parameters(): Tensor[] { return this.namedParameters().map(([, p]) => p); }
  namedBuffers(): [string, Tensor][] { return this.#collect((m) => m.#buffers); }
  buffers(): Tensor[] { return this.namedBuffers().map(([, b]) => b); }
  /** The device of the first parameter (else buffer): where to send the module's input; 'cpu' for a module with neither. */
  get device(): Device { return ((this.parameters()[0] ?? this.buffers()[0])?.device ?? 'cpu') as Device; }

  #collect(pick: (m: Module) => Map<string, Tensor | null>): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, t] of pick(m)) if (t) out.push([join(prefix, name), t]);
    }
    return out;
  }

  /** Returns the number of parameter elements (trainable only, if asked). */
  numParameters(trainableOnly = false): number {
    return this.parameters().filter((p) => !trainableOnly || p.requiresGrad).reduce((n, p) => n + p.numel(), 0);
  }

  /**
   * Returns the state dict: per module, its parameters then its persistent buffers, then its
   * children — PyTorch's order. The tensors are the module's own, not copies: do not dispose them.
   */
  stateDict(prefix = ''): StateDict {
    const out: StateDict = new Map();
    for (const [name, p] of this.#params) if (p) out.set(join(prefix, name), p);
    for (const [name, b] of this.#buffers) if (b && !this.#nonPersistent.has(name)) out.set(join(prefix, name), b);
    for (const [name, child] of this.#children) for (const [k, v] of child.stateDict(join(prefix, name))) out.set(k, v);
    return out;
  }

  /** Returns a detached copy of the state dict, outside any scope: a snapshot the caller disposes. */
  copyStateDict(): StateDict {
    return new Map([...this.stateDict()].map(([k, v]) => [k, keep(v.detach().clone())]));
  }

  /**
   * Copies values from `source` into this module's tensors (converting dtype as needed); returns
   * the missing and unexpected keys. Throws StateDictError on any shape mismatch, and in strict
   * mode (default) on any missing or unexpected key — nothing is copied when it throws.
   */
  loadStateDict(source: StateDict | Record<string, Tensor>, { strict = true } = {}):
    { missingKeys: string[]; unexpectedKeys: string[] } {
    const src = source instanceof Map ? source : new Map(Object.entries(source));
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !src.has(k));
    const unexpectedKeys = [...src.keys()].filter((k) => !own.has(k));
    const shapeMismatches: { key: string; expected: number[]; got: number[] }[] = [];
    for (const [key, target] of own) {
      const value = src.get(key);
      if (value && value.shape.join(',') !== target.shape.join(',')) {
        shapeMismatches.push({ key, expected: target.shape, got: value.shape });
      }
    }
    if (shapeMismatches.length || (strict && (missingKeys.length || unexpectedKeys.length))) {
      throw new StateDictError(strict ? missingKeys : [], strict ? unexpectedKeys : [], shapeMismatches);
    }
    noGrad(() => {
      for (const [key, target] of own) {
        const value = src.get(key);
        if (value) target.copy_(value);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  /** Sets training mode on this module and every submodule; returns this. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  /** Sets evaluation mode; returns this. */
  eval(): this { return this.train(false); }

  /** Turns gradient tracking on or off for every parameter; returns this. */
  requiresGrad_(on = true): this {
    for (const p of this.parameters()) p.requiresGrad_(on);
    return this;
  }

  /** Clears every parameter's gradient (sets it to null). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /**
   * Moves or converts every parameter and buffer; returns this. A tensor that changes becomes a
   * new tensor, so build optimizers after moving. Floating tensors follow a dtype change; integer
   * ones (num_batches_tracked) keep theirs. memoryFormat applies to 4-d tensors (conv weights).
   */
  to(target: { device?: Device; dtype?: DType; memoryFormat?: MemoryFormat }): this {
    noGrad(() => {
      for (const m of this.modules()) {
        for (const table of [m.#params, m.#buffers]) {
          for (const [name, old] of table) {
            if (!old || !needsMove(old, target)) continue;
            const dtype = isFloat(old) ? target.dtype : undefined;
            let next = old.to({ device: target.device, dtype });
            if (target.memoryFormat && next.ndim === 4) {
              const formatted = next.contiguous(target.memoryFormat);
              next.dispose();
              next = formatted;
            }
            if (table === m.#params) next.requiresGrad_(old.requiresGrad);
            table.set(name, keep(next));
            old.dispose();
          }
        }
      }
    });
    return this;
  }

  /** Releases every parameter and buffer now. */
  dispose(): void {
    for (const t of [...this.parameters(), ...this.buffers()]) t.dispose();
  }
}

function join(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}

function isFloat(t: Tensor): boolean {
  return t.dtype.startsWith('float') || t.dtype === 'bfloat16';
}

// Whether `to(target)` would change the tensor: its device, its (floating) dtype, or its layout.
function needsMove(t: Tensor, target: { device?: Device; dtype?: DType; memoryFormat?: MemoryFormat }): boolean {
  const device = target.device === 'cuda' ? 'cuda:0' : target.device;
  const here = t.device === 'cuda' ? 'cuda:0' : t.device;
  if (device !== undefined && device !== here) return true;
  if (target.dtype !== undefined && isFloat(t) && t.dtype !== target.dtype) return true;
  return target.memoryFormat !== undefined && t.ndim === 4 && !t.isContiguous(target.memoryFormat);
}
