// Adam and AdamW exactly as torch.optim updates them (the single-tensor path): AdamW decays the
// weights directly (decoupled), Adam adds the L2 penalty to the gradient.
import type { Tensor } from '../torch/index.js';
import { zerosLike } from '../torch/index.js';
import { Optimizer, OptimError, checkRange, type ParamGroup, type Params } from './optimizer.js';

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

type State = Record<string, Tensor | number>;

abstract class AdamBase extends Optimizer<AdamOptions> {
  protected abstract readonly decoupled: boolean;

  protected validate(h: AdamOptions): void {
    checkRange('learning rate', h.lr);
    checkRange('epsilon', h.eps);
    if (!Array.isArray(h.betas) || h.betas.length !== 2) throw new OptimError(`Invalid betas: ${String(h.betas)}`);
    h.betas.forEach((beta, i) => {
      if (!(beta >= 0 && beta < 1)) throw new OptimError(`Invalid beta parameter at index ${i}: ${beta}`);
    });
    checkRange('weight_decay', h.weightDecay);
  }

  protected update(p: Tensor, grad: Tensor, g: ParamGroup<AdamOptions>, s: State): void {
    const [beta1, beta2] = g.betas;
    let d = g.maximize ? grad.neg() : grad;
    if (!s.expAvg) {
      s.step = 0;
      s.expAvg = this.own(zerosLike(p));
      s.expAvgSq = this.own(zerosLike(p));
      if (g.amsgrad) s.maxExpAvgSq = this.own(zerosLike(p));
    }
    const step = (s.step = (s.step as number) + 1);
    if (this.decoupled) p.mul_(1 - g.lr * g.weightDecay);
    else if (g.weightDecay !== 0) d = d.add(p, g.weightDecay);
    const expAvg = s.expAvg as Tensor;
    const expAvgSq = s.expAvgSq as Tensor;
    expAvg.mul_(beta1).add_(d, 1 - beta1);
    expAvgSq.mul_(beta2).addcmul_(d, d, 1 - beta2);
    const stepSize = g.lr / (1 - beta1 ** step);
    const correction2Sqrt = Math.sqrt(1 - beta2 ** step);
    let second = expAvgSq;
    if (g.amsgrad) {
      const max = s.maxExpAvgSq as Tensor;
      max.copy_(max.maximum(expAvgSq));
      second = max;
    }
    p.addcdiv_(expAvg, second.sqrt().div(correction2Sqrt).add_(g.eps), -stepSize);
  }
}

export const ADAM_DEFAULTS: AdamOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false };

/** Adam with L2 weight decay added to the gradient (torch.optim.Adam). */
export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: Params<AdamOptions>, options: Partial<AdamOptions> = {}) {
    super(params, { ...ADAM_DEFAULTS, ...options });
  }
}

/** Adam with decoupled weight decay, default 0.01 (torch.optim.AdamW). */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: Params<AdamOptions>, options: Partial<AdamOptions> = {}) {
    super(params, { ...ADAM_DEFAULTS, weightDecay: 1e-2, ...options });
  }
}
