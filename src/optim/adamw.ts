// Adam and AdamW, updating exactly as torch.optim.Adam and torch.optim.AdamW do (torch 1.13's
// single-tensor path, its default): AdamW shrinks the weights directly (decoupled weight decay,
// p ← p·(1 − lr·wd)) before the moments; Adam adds the L2 penalty wd·p to the gradient.
import type { Tensor } from '../torch/index.js';
import { zerosLike } from '../torch/index.js';
import * as foreach_ from '../torch/foreach.js';
import { Optimizer, OptimError, checkNonNegative, withDefaults, type ParamGroup, type ParamState, type Params } from './optimizer.js';

export interface AdamOptions {
  lr: number;
  /** Decay rates of the gradient's running mean and of its running square (β1 is the "momentum" one-cycle schedules). */
  betas: [number, number];
  /** Added to the denominator's square root. */
  eps: number;
  /**
   * Updates each group's parameters with torch._foreach_* ops (torch.optim's foreach=True): a few
   * calls per group instead of several per parameter, the same arithmetic. null (the default, as
   * torch's) takes it when every parameter is on CUDA.
   */
  foreach: boolean | null;
  /** Decoupled (AdamW) or L2 (Adam). */
  weightDecay: number;
  /** Divide by the running maximum of the second moment (AMSGrad). */
  amsgrad: boolean;
  maximize: boolean;
}
export type AdamWOptions = AdamOptions;

/** torch.optim.Adam's defaults. */
export const ADAM_DEFAULTS: Readonly<AdamOptions> = Object.freeze({
  lr: 1e-3, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, foreach: null,
});
/** torch.optim.AdamW's defaults: Adam's with weight decay 0.01. */
export const ADAMW_DEFAULTS: Readonly<AdamOptions> = Object.freeze({ ...ADAM_DEFAULTS, weightDecay: 1e-2 });

abstract class AdamBase extends Optimizer<AdamOptions> {
  protected abstract readonly decoupled: boolean;

  protected validate(h: AdamOptions): void {
    checkNonNegative('learning rate', h.lr);
    checkNonNegative('epsilon value', h.eps);
    if (!Array.isArray(h.betas) || h.betas.length !== 2) throw new OptimError(`Invalid betas: expected [beta1, beta2], got ${String(h.betas)}`);
    h.betas.forEach((beta, i) => {
      if (!(typeof beta === 'number' && beta >= 0 && beta < 1)) throw new OptimError(`Invalid beta parameter at index ${i}: ${beta}`);
    });
    checkNonNegative('weight_decay value', h.weightDecay);
  }

  // Counts a parameter's step, making its moments (torch's exp_avg, exp_avg_sq) at the first; returns the step.
  #nextStep(p: Tensor, s: ParamState): number {
    if (s.exp_avg === undefined) {
      s.step = 0;
      s.exp_avg = this.own(zerosLike(p));
      s.exp_avg_sq = this.own(zerosLike(p));
    }
    return (s.step = (s.step as number) + 1);
  }

  protected update(p: Tensor, grad: Tensor, g: ParamGroup<AdamOptions>, s: ParamState): void {
    const [beta1, beta2] = g.betas;
    const step = this.#nextStep(p, s);
    // Created on first use, so amsgrad may also be switched on after some steps (torch would fail).
    if (g.amsgrad && s.max_exp_avg_sq === undefined) s.max_exp_avg_sq = this.own(zerosLike(p));
    let d = g.maximize ? grad.neg() : grad;
    // Multiplying by 1 changes nothing, so torch's unconditional mul_ is skipped when wd is 0.
    if (this.decoupled) {
      if (g.weightDecay !== 0) p.mul_(1 - g.lr * g.weightDecay);
    } else if (g.weightDecay !== 0) {
      d = d.add(p, g.weightDecay);
    }
    const expAvg = s.exp_avg as Tensor;
    const expAvgSq = s.exp_avg_sq as Tensor;
    expAvg.mul_(beta1).add_(d, 1 - beta1);
    expAvgSq.mul_(beta2).addcmul_(d, d, 1 - beta2);
    const stepSize = g.lr / (1 - beta1 ** step);
    const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** step);
    let second = expAvgSq;
    if (g.amsgrad) {
      const max = s.max_exp_avg_sq as Tensor;
      max.copy_(max.maximum(expAvgSq));
      second = max;
    }
    p.addcdiv_(expAvg, second.sqrt().div_(biasCorrection2Sqrt).add_(g.eps), -stepSize);
  }

  // The same update for a whole group in torch._foreach_* calls, one call per list of parameters
  // at the same step count (a group's parameters differ in it only after some sat frozen).
  protected override updateGroup(items: { p: Tensor; grad: Tensor; state: ParamState }[], g: ParamGroup<AdamOptions>, probe: boolean): boolean {
    const foreach = g.foreach ?? items.every(({ p }) => p.device.startsWith('cuda'));
    if (probe) return foreach && !g.amsgrad && !g.maximize && (this.decoupled || g.weightDecay === 0);
    const [beta1, beta2] = g.betas;
    const byStep = new Map<number, typeof items>();
    for (const it of items) {
      const step = this.#nextStep(it.p, it.state);
      byStep.set(step, [...(byStep.get(step) ?? []), it]);
    }
    for (const [step, list] of byStep) {
      const params = list.map((it) => it.p);
      const grads = list.map((it) => it.grad);
      const expAvgs = list.map((it) => it.state.exp_avg as Tensor);
      const expAvgSqs = list.map((it) => it.state.exp_avg_sq as Tensor);
      if (g.weightDecay !== 0) foreach_.mul_(params, 1 - g.lr * g.weightDecay);
      foreach_.mul_(expAvgs, beta1);
      foreach_.add_(expAvgs, grads, 1 - beta1);
      foreach_.mul_(expAvgSqs, beta2);
      foreach_.addcmul_(expAvgSqs, grads, grads, 1 - beta2);
      const denom = foreach_.sqrt(expAvgSqs);
      foreach_.div_(denom, Math.sqrt(1 - beta2 ** step));
      foreach_.addScalar_(denom, g.eps);
      foreach_.addcdiv_(params, expAvgs, denom, -g.lr / (1 - beta1 ** step));
    }
    return true;
  }
}

/** Adam with L2 weight decay added to the gradient (torch.optim.Adam; weight decay defaults to 0). */
export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: Params<AdamOptions>, options: Partial<AdamOptions> = {}) {
    super(params, withDefaults(ADAM_DEFAULTS, options));
  }
}

/** Adam with decoupled weight decay, default 0.01 (torch.optim.AdamW). */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: Params<AdamOptions>, options: Partial<AdamOptions> = {}) {
    super(params, withDefaults(ADAMW_DEFAULTS, options));
  }
}
