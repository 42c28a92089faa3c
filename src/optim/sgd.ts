// Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay, exactly as
// torch.optim.SGD updates (its single-tensor path).
import type { Tensor } from '../torch/index.js';
import { Optimizer, OptimError, checkRange, type ParamGroup, type Params } from './optimizer.js';

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  /** L2 penalty added to the gradient. */
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

export const SGD_DEFAULTS: Omit<SGDOptions, 'lr'> = { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false };

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: Params<SGDOptions>, options: Partial<SGDOptions> & { lr: number }) {
    super(params, { ...SGD_DEFAULTS, ...options });
  }

  protected validate(h: SGDOptions): void {
    checkRange('learning rate', h.lr);
    checkRange('momentum', h.momentum);
    checkRange('weight_decay', h.weightDecay);
    if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) {
      throw new OptimError('Nesterov momentum requires a momentum and zero dampening');
    }
  }

  protected update(p: Tensor, grad: Tensor, g: ParamGroup<SGDOptions>, s: Record<string, Tensor | number>): void {
    let d = g.maximize ? grad.neg() : grad;
    if (g.weightDecay !== 0) d = d.add(p, g.weightDecay);
    if (g.momentum !== 0) {
      let buf = s.momentumBuffer as Tensor | undefined;
      if (!buf) {
        buf = s.momentumBuffer = this.own(d.clone().detach());
      } else {
        buf.mul_(g.momentum).add_(d, 1 - g.dampening);
      }
      d = g.nesterov ? d.add(buf, g.momentum) : buf;
    }
    p.add_(d, -g.lr);
  }
}
