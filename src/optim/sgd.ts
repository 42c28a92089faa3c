// Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay, updating
// exactly as torch.optim.SGD does (torch 1.13's single-tensor path, its default).
import type { Tensor } from '../torch/index.js';
import { Optimizer, OptimError, checkNonNegative, withDefaults, type ParamGroup, type ParamState, type Params } from './optimizer.js';

export interface SGDOptions {
  /** Required, here or in every group (torch has no default either). */
  lr: number;
  momentum: number;
  /** Share of the new gradient held back from the momentum buffer: buf = momentum·buf + (1 − dampening)·g. */
  dampening: number;
  /** L2 penalty: weightDecay·p is added to the gradient. */
  weightDecay: number;
  nesterov: boolean;
  /** Ascend the objective instead of descending it. */
  maximize: boolean;
}

/** torch.optim.SGD's defaults (lr has none). */
export const SGD_DEFAULTS: Readonly<Omit<SGDOptions, 'lr'>> = Object.freeze({
  momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false,
});

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: Params<SGDOptions>, options: Partial<SGDOptions> = {}) {
    super(params, withDefaults({ ...SGD_DEFAULTS, lr: undefined as unknown as number }, options));
  }

  protected validate(h: SGDOptions): void {
    checkNonNegative('learning rate', h.lr);
    checkNonNegative('momentum value', h.momentum);
    checkNonNegative('weight_decay value', h.weightDecay);
    if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) {
      throw new OptimError('Nesterov momentum requires a momentum and zero dampening');
    }
  }

  protected update(p: Tensor, grad: Tensor, g: ParamGroup<SGDOptions>, s: ParamState): void {
    let d = g.maximize ? grad.neg() : grad;
    if (g.weightDecay !== 0) d = d.add(p, g.weightDecay);
    if (g.momentum !== 0) {
      let buf = s.momentum_buffer as Tensor | undefined;
      if (buf === undefined) {
        buf = s.momentum_buffer = this.own(d.clone());
      } else {
        buf.mul_(g.momentum).add_(d, 1 - g.dampening);
      }
      d = g.nesterov ? d.add(buf, g.momentum) : buf;
    }
    p.add_(d, -g.lr);
  }
}
