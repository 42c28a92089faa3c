// The optimizer base, torch.optim.Optimizer's contract: parameter groups with their own
// hyper-parameters (mutable between steps, as schedulers need), per-parameter state held as
// tensors the optimizer owns, and a step that runs without autograd and frees its temporaries.
import { Tensor, enableGrad, keep, noGrad, tidy, type Device } from '../torch/index.js';

/** A bad optimizer option, parameter list or state dict; the message says which, in torch.optim's words. */
export class OptimError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptimError';
  }
}

/** One parameter's state under torch.optim's keys ('momentum_buffer', 'exp_avg', 'step'…). */
export type ParamState = Record<string, Tensor | number>;

/** A group of parameters and its hyper-parameters; set `group.lr` (etc.) between steps to schedule them. */
export type ParamGroup<H> = H & { params: Tensor[] };

/** A group as given to the constructor or addParamGroup: options it leaves out take the optimizer's. */
export type GroupSpec<H> = Partial<H> & { params: Tensor[] | Tensor };

/** Parameters, or groups of them each with hyper-parameters that override the defaults. */
export type Params<H> = Tensor[] | GroupSpec<H>[];

/**
 * torch.optim's state_dict layout, with its key names, so a dict saved by PyTorch loads as is:
 * `state` maps a parameter's index (counted across groups, in order) to its state; each group
 * lists its hyper-parameters in snake_case ('weight_decay') and its parameters' indices.
 */
export interface OptimizerStateDict {
  state: Record<number, ParamState> | Map<number, ParamState>;
  param_groups: ({ params: number[] } & Record<string, unknown>)[];
}

/** What saveState() returns: a copy of the state dict that restoreState() consumes. */
export type OptimizerSnapshot = OptimizerStateDict;

export abstract class Optimizer<H extends { lr: number } = { lr: number }> {
  readonly paramGroups: ParamGroup<H>[] = [];
  /** The options a group leaves out. */
  readonly defaults: H;
  /** Per-parameter state (momentum buffers, moments), created at a parameter's first update. */
  protected readonly state = new Map<Tensor, ParamState>();

  constructor(params: Params<H>, defaults: H) {
    this.defaults = copyHypers(defaults) as H;
    // A required option (SGD's lr) may be left to the groups, as in torch; the rest is checked now.
    if (Object.values(defaults).every((v) => v !== undefined)) this.validate(this.defaults);
    if (params instanceof Tensor || !Array.isArray(params)) {
      throw new OptimError(`params argument given to the optimizer should be an array of Tensors or groups, but got ${describe(params)}`);
    }
    if (params.length === 0) throw new OptimError('optimizer got an empty parameter list');
    const groups = (params[0] instanceof Tensor ? [{ params: params as Tensor[] }] : params) as GroupSpec<H>[];
    for (const g of groups) this.addParamGroup(g);
  }

  /** Adds a group (as torch.optim's add_param_group, e.g. to train layers unfrozen later). */
  addParamGroup(group: GroupSpec<H>): void {
    if (typeof group !== 'object' || group === null || group instanceof Tensor || !('params' in group)) {
      throw new OptimError(`param group must be an object with params, got ${describe(group)}`);
    }
    const params = group.params instanceof Tensor ? [group.params] : Array.isArray(group.params) ? [...group.params] : null;
    if (params === null) throw new OptimError(`a param group's params must be an array of Tensors, got ${describe(group.params)}`);
    for (const p of params) {
      if (!(p instanceof Tensor)) throw new OptimError(`optimizer can only optimize Tensors, but one of the params is ${describe(p)}`);
      if (!p.isLeaf) throw new OptimError("can't optimize a non-leaf Tensor");
    }
    // torch only warns here; a duplicate would be updated twice per step, so it is refused.
    if (new Set(params).size !== params.length) throw new OptimError('optimizer contains a parameter group with duplicate parameters');
    const taken = new Set(this.paramGroups.flatMap((g) => g.params));
    if (params.some((p) => taken.has(p))) throw new OptimError('some parameters appear in more than one parameter group');

    const full = copyHypers(this.defaults);
    for (const [k, v] of Object.entries(group)) if (k !== 'params' && v !== undefined) full[k] = copyValue(v);
    for (const [k, v] of Object.entries(full)) {
      if (v === undefined) throw new OptimError(`parameter group didn't specify a value of required optimization parameter ${snake(k)}`);
    }
    // Unlike torch, which checks only the constructor's options, every group is checked.
    this.validate(full as H);
    this.paramGroups.push({ ...full, params } as ParamGroup<H>);
  }

  /** Throws OptimError for a hyper-parameter out of its range. */
  protected abstract validate(h: H): void;

  /** Updates one parameter from its gradient; runs under noGrad inside a scope that frees its temporaries. */
  protected abstract update(p: Tensor, grad: Tensor, group: ParamGroup<H>, state: ParamState): void;

  /**
   * Updates a group's parameters that have a gradient at once (torch.optim's foreach
   * implementations), when the optimizer has such an update: asked first with `probe` true, it
   * returns whether it takes this group (false leaves the group to `update`, one parameter at a
   * time); then it runs with `probe` false, returning true, under noGrad inside a scope that
   * frees its temporaries.
   */
  protected updateGroup?(items: { p: Tensor; grad: Tensor; state: ParamState }[], group: ParamGroup<H>, probe: boolean): boolean;

  /**
   * Applies one update to every parameter that has a gradient (those without are left as they
   * are); returns the closure's result. The closure, if any, runs first with autograd on (as in
   * torch, to recompute the loss); the update itself records no graph and leaves no temporaries.
   */
  step<T = undefined>(closure?: () => T): T | undefined {
    const loss = closure ? enableGrad(closure) : undefined;
    noGrad(() => {
      for (const group of this.paramGroups) {
        const updateGroup = this.updateGroup?.bind(this);
        const updated = updateGroup && tidy(() => {
          // Inside the scope: each read of p.grad makes a wrapper that the scope frees.
          const items = group.params.map((p) => ({ p, grad: p.grad })).filter((it): it is { p: Tensor; grad: Tensor } => it.grad !== null).map((it) => {
            let s = this.state.get(it.p);
            if (!s) this.state.set(it.p, (s = {}));
            return { ...it, state: s };
          });
          return items.length > 0 && updateGroup(items, group, true) && updateGroup(items, group, false);
        });
        if (updated) continue;
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
    return loss;
  }

  /** Makes a state tensor outlive the step's scope; the optimizer frees it in clearState() and dispose(). */
  protected own(t: Tensor): Tensor { return keep(t); }

  /**
   * Clears every parameter's gradient. As torch 1.13's default (set_to_none=False), gradients are
   * zeroed in place, so a parameter that had one keeps a zero gradient and is still stepped
   * (weight decay, momentum); with setToNone they become null, as torch ≥ 2.0's default, and
   * parameters without a new gradient are skipped by step().
   */
  zeroGrad(setToNone = false): void {
    noGrad(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          if (setToNone) {
            p.grad = null;
            continue;
          }
          const g = p.grad;
          if (g === null) continue;
          let target = g;
          // A gradient made with createGraph carries history: cut it (torch's detach_()) before zeroing.
          if (g.requiresGrad) {
            if (g.gradFn !== null) p.grad = target = g.detach();
            else g.requiresGrad_(false);
          }
          target.zero_();
          if (target !== g) target.dispose();
          g.dispose();
        }
      }
    });
  }

  /**
   * Returns the state in torch.optim's state_dict layout (see OptimizerStateDict). Like
   * Module.stateDict, its tensors are the optimizer's own, not copies: do not dispose them.
   */
  stateDict(): OptimizerStateDict & { state: Record<number, ParamState> } {
    const index = new Map<Tensor, number>();
    const param_groups = this.paramGroups.map(({ params, ...hypers }) => {
      const packed: { params: number[] } & Record<string, unknown> = { params: [] };
      for (const [k, v] of Object.entries(hypers)) packed[snake(k)] = copyValue(v);
      for (const p of params) {
        index.set(p, index.size);
        packed.params.push(index.size - 1);
      }
      return packed;
    });
    const state: Record<number, ParamState> = {};
    for (const [p, s] of this.state) if (Object.keys(s).length > 0) state[index.get(p)!] = { ...s };
    return { state, param_groups };
  }

  /**
   * Replaces the state and the groups' hyper-parameters with a copy of `dict`'s, matched to this
   * optimizer's parameters by position (as torch does). Floating state follows each parameter's
   * dtype and device; a tensor 'step' (torch 1.13 keeps one) becomes a number. Throws OptimError,
   * changing nothing, when the groups or the state's shapes do not match.
   */
  loadStateDict(dict: OptimizerStateDict): void {
    const saved = dict.param_groups;
    if (!Array.isArray(saved) || saved.length !== this.paramGroups.length) {
      throw new OptimError('loaded state dict has a different number of parameter groups');
    }
    if (saved.some((g, i) => !Array.isArray(g.params) || g.params.length !== this.paramGroups[i].params.length)) {
      throw new OptimError("loaded state dict contains a parameter group that doesn't match the size of optimizer's group");
    }
    const byIndex = new Map<number, Tensor>();
    saved.forEach((g, i) => g.params.forEach((id, j) => byIndex.set(Number(id), this.paramGroups[i].params[j])));
    const hypers = saved.map((g, i) => {
      const h: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(g)) if (camel(k) in this.defaults && v !== undefined) h[camel(k)] = copyValue(v);
      this.validate({ ...this.paramGroups[i], ...h });
      return h;
    });
    const entries = dict.state instanceof Map ? [...dict.state] : Object.entries(dict.state);
    for (const [id, s] of entries) {
      const p = byIndex.get(Number(id));
      if (!p) continue; // torch keeps state it cannot place; nothing here would read it
      for (const [k, v] of Object.entries(s)) {
        if (v instanceof Tensor && k !== 'step' && v.shape.join(',') !== p.shape.join(',')) {
          throw new OptimError(`loaded state dict has ${k} of shape [${v.shape}] for parameter ${id} of shape [${p.shape}]`);
        }
      }
    }
    // Copied before the old state is freed: `dict` may hold this optimizer's own tensors.
    const next = new Map<Tensor, ParamState>();
    for (const [id, s] of entries) {
      const p = byIndex.get(Number(id));
      if (p) next.set(p, copyState(p, s));
    }
    this.clearState();
    for (const [p, s] of next) this.state.set(p, s);
    hypers.forEach((h, i) => Object.assign(this.paramGroups[i], h));
  }

  /** Returns a copy of the state and hyper-parameters that restoreState() puts back (lrFind uses it). */
  saveState(): OptimizerSnapshot {
    const dict = this.stateDict();
    for (const s of Object.values(dict.state) as ParamState[]) {
      for (const [k, v] of Object.entries(s)) if (v instanceof Tensor) s[k] = keep(noGrad(() => v.clone()));
    }
    return dict;
  }

  /** Puts back what saveState() copied; the snapshot's tensors are freed. */
  restoreState(snapshot: OptimizerSnapshot): void {
    try {
      this.loadStateDict(snapshot);
    } finally {
      const states = snapshot.state instanceof Map ? [...snapshot.state.values()] : Object.values(snapshot.state);
      for (const s of states) for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
    }
  }

  /** Forgets momentum and moments (as a fresh optimizer would have), freeing their tensors. */
  clearState(): void {
    for (const s of this.state.values()) {
      for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
    }
    this.state.clear();
  }

  /** Frees the state tensors; the parameters are the caller's and stay. */
  dispose(): void { this.clearState(); }
}

/** Throws unless value is a number ≥ 0, in torch's words: checkNonNegative('momentum value', -1) → 'Invalid momentum value: -1'. */
export function checkNonNegative(what: string, value: number): void {
  if (!(typeof value === 'number' && value >= 0)) throw new OptimError(`Invalid ${what}: ${value}`);
}

/** Returns `base` with the options set in `options` (undefined ones do not override). */
export function withDefaults<H extends object>(base: H, options: Partial<H>): H {
  const out = { ...base };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

// A copy of one parameter's saved state, owned by the optimizer: floating tensors cast to the
// parameter's dtype and device (torch's rule), 'step' kept as a number.
function copyState(p: Tensor, s: ParamState): ParamState {
  const out: ParamState = {};
  noGrad(() => {
    for (const [k, v] of Object.entries(s)) {
      if (v === null || v === undefined) continue; // torch 1.13's SGD without momentum saves momentum_buffer: None
      if (!(v instanceof Tensor)) out[k] = v;
      else if (k === 'step') out[k] = v.item();
      else {
        out[k] = keep(tidy(() => {
          const dtype = v.dtype.startsWith('float') || v.dtype === 'bfloat16' ? p.dtype : v.dtype;
          return v.to({ dtype, device: p.device as Device }).clone();
        }));
      }
    }
  });
  return out;
}

function copyHypers(h: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, copyValue(v)]));
}

// Arrays (betas) are copied so groups never share one that a scheduler mutates in place.
function copyValue(v: unknown): unknown { return Array.isArray(v) ? [...v] : v; }

function snake(key: string): string { return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`); }
function camel(key: string): string { return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()); }

function describe(v: unknown): string {
  if (v instanceof Tensor) return v.toString();
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : v.constructor?.name ?? 'an object';
}
