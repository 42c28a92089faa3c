// Containers: Sequential runs its children in order; ModuleList only holds them.
import { tidy, type Tensor } from '../torch/index.js';
import { TorchError } from '../torch/errors.js';
import { Module } from './module.js';

// Children indexed "0", "1", … as torch.nn's containers name them.
abstract class IndexedModules extends Module {
  /** Appends a module under the next index; returns this. */
  append(m: Module): this {
    this.registerModule(String(this.children().length), m);
    return this;
  }

  get length(): number { return this.children().length; }

  /** Returns the i-th child (negative counts from the end). */
  at(i: number): Module {
    const all = this.children();
    const m = all[i < 0 ? i + all.length : i];
    if (!m) throw new TorchError(this.constructor.name, `index ${i} is out of range for ${all.length} modules`, 'index');
    return m;
  }

  [Symbol.iterator](): Iterator<Module> { return this.children()[Symbol.iterator](); }
}

/** Children named "0", "1", … (or by the given names), applied in order. */
export class Sequential extends IndexedModules {
  constructor(...modules: Module[] | [string, Module][]) {
    super();
    for (const m of modules) {
      if (Array.isArray(m)) this.registerModule(m[0], m[1]);
      else this.append(m);
    }
  }

  /**
   * Each child runs in its own scope, and our handle on an intermediate result goes as soon as
   * the next child has used it: autograd keeps what backward needs and frees it during backward,
   * so activations do not outlive the backward pass (PyTorch's memory behaviour).
   */
  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.children()) {
      const input = y;
      y = tidy(() => m.forward(input));
      if (input !== x && input !== y) input.dispose();
    }
    return y;
  }
}

/** Holds submodules under "0", "1", … without a forward of its own. */
export class ModuleList extends IndexedModules {
  constructor(modules: Module[] = []) {
    super();
    for (const m of modules) this.append(m);
  }

  forward(_x: Tensor): Tensor {
    throw new TorchError('ModuleList', 'a ModuleList has no forward(); iterate over its modules', 'type');
  }
}
