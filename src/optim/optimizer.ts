// The optimizer base: parameter groups with their own hyper-parameters, per-parameter state held
// as tensors, and a step that runs without autograd and frees its temporaries.
import { keep, noGrad, tidy, type Tensor } from '../torch/index.js';

/** A bad optimizer option or parameter list; the message says which, as torch.optim does. */
export class OptimError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptimError';
  }
}

/** A group of parameters and its hyper-parameters (mutable between steps, as schedulers need). */
export type ParamGroup<H> = H & { params: Tensor[] };

/** Parameters, or groups of them each with hyper-parameters that override the defaults. */
export type Params<H> = Tensor[] | (Partial<H> & { params: Tensor[] })[];

/** What saveState() returns: per-parameter state and each group's hyper-parameters. */
export interface OptimizerSnapshot<H> {
  state: Map<Tensor, Record<string, Tensor | number>>;
  hypers: H[];
}

export abstract class Optimizer<H extends { lr: number } = { lr: number }> {
  readonly paramGroups: ParamGroup<H>[] = [];
  /** Per-parameter state (momentum buffers, moments), created at a parameter's first update. */
  protected readonly state = new Map<Tensor, Record<string, Tensor | number>>();

  constructor(params: Params<H>, readonly defaults: H) {
    this.validate(defaults);
    if (params.length === 0) throw new OptimError('optimizer got an empty parameter list');
    const groups = params[0] && 'params' in params[0] ? params as (Partial<H> & { params: Tensor[] })[] : [{ params: params as Tensor[] }];
    for (const g of groups) this.addParamGroup(g as Partial<H> & { params: Tensor[] });
  }

  /** Adds a group; options it leaves out take the defaults. */
  addParamGroup(group: Partial<H> & { params: Tensor[] }): void {
    const full = { ...this.defaults, ...group, params: [...group.params] } as ParamGroup<H>;
    this.validate(full);
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    for (const p of full.params) {
      if (seen.has(p)) throw new OptimError('some parameters appear in more than one parameter group');
      seen.add(p);
    }
    this.paramGroups.push(full);
  }

  /** Throws OptimError for a hyper-parameter out of its range. */
  protected abstract validate(h: H): void;

  /** Updates one parameter from its gradient; runs under noGrad inside a scope. */
  protected abstract update(p: Tensor, grad: Tensor, group: ParamGroup<H>, state: Record<string, Tensor | number>): void;

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    noGrad(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          tidy(() => {
            const grad = p.grad;
            if (grad === null) return;
            let s = this.state.get(p);
            if (!s) this.state.set(p, (s = {}));
            this.update(p, grad, group, s);
          });
        }
      }
    });
  }

  /** Makes a state tensor outlive the step's scope; the optimizer frees it in dispose(). */
  protected own(t: Tensor): Tensor { return keep(t); }

  /** Clears every parameter's gradient: to null by default (torch ≥ 2.0), else to zeros in place. */
  zeroGrad(setToNone = true): void {
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        if (setToNone) {
          p.grad = null;
        } else {
          const g = p.grad;
          if (g) {
            noGrad(() => g.zero_());
            g.dispose();
          }
        }
      }
    }
  }

  /** Forgets momentum and moments (as a fresh optimizer would have), freeing their tensors. */
  clearState(): void {
    for (const s of this.state.values()) {
      for (const v of Object.values(s)) if (typeof v !== 'number') v.dispose();
    }
    this.state.clear();
  }

  /** Returns a copy of the per-parameter state and the groups' hyper-parameters, for restoreState(). */
  saveState(): OptimizerSnapshot<H> {
    const state = new Map([...this.state].map(([p, s]) => [p, Object.fromEntries(Object.entries(s).map(
      ([k, v]) => [k, typeof v === 'number' ? v : keep(v.detach().clone())],
    ))]));
    return { state, hypers: this.paramGroups.map(({ params: _, ...h }) => structuredClone(h) as unknown as H) };
  }

  /** Puts back what saveState() copied; the snapshot is consumed. */
  restoreState(snapshot: OptimizerSnapshot<H>): void {
    this.clearState();
    for (const [p, s] of snapshot.state) this.state.set(p, s);
    snapshot.hypers.forEach((h, i) => Object.assign(this.paramGroups[i], h));
  }

  dispose(): void { this.clearState(); }
}

/** Throws unless value ≥ 0, naming the option as torch does. */
export function checkRange(name: string, value: number): void {
  if (!(value >= 0)) throw new OptimError(`Invalid ${name} value: ${value}`);
}
