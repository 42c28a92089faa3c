// Loss scaling for float16 mixed precision: torch.amp.GradScaler as fastai's MixedPrecision
// drives it (fastai/callback/fp16.py). float16 keeps 5 exponent bits, so small gradients underflow
// to zero unless the loss is scaled up before the backward pass; the gradients are scaled back
// down before the step, and a step whose gradients overflowed (inf or NaN) is skipped while the
// scale is halved. bfloat16 has float32's exponent range and needs none of this.
import { tensor, zeros, noGrad, tidy, type Tensor } from '../torch/index.js';
import { callInPlace } from '../torch/dispatch.js';
import * as foreach from '../torch/foreach.js';
import { CancelStepException } from './events.js';
import type { StatefulCallback } from './checkpoint.js';
import type { Learner } from './learner.js';

/** torch.amp.GradScaler's defaults. */
export interface GradScalerOptions {
  /** The first loss scale. */
  initScale: number;
  /** What the scale is multiplied by after growthInterval steps without an overflow. */
  growthFactor: number;
  /** What the scale is multiplied by after an overflow. */
  backoffFactor: number;
  growthInterval: number;
}
export const GRAD_SCALER_DEFAULTS: Readonly<GradScalerOptions> = Object.freeze({ initScale: 2 ** 16, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2000 });

/**
 * Divides every gradient in `grads` by `scale` in place and returns whether any of them holds an
 * inf or a NaN (torch's _amp_foreach_non_finite_check_and_unscale_, fused on CUDA; per tensor on
 * the CPU, where libtorch 1.13 has no kernel for it).
 */
export function unscaleGrads(grads: readonly Tensor[], scale: number): boolean {
  if (grads.length === 0) return false;
  return noGrad(() => tidy(() => {
    const device = grads[0].device;
    if (device.startsWith('cuda') && grads.every((g) => g.device === device && g.dtype === 'float32')) {
      const found = zeros([1], { device: device as 'cuda' });
      callInPlace('aten::_amp_foreach_non_finite_check_and_unscale_', [grads.map((g) => g.handle), found.handle, tensor([1 / scale], { device: device as 'cuda' }).handle]);
      return found.item() > 0;
    }
    foreach.mul_(grads, 1 / scale);
    // A non-finite gradient makes its sum non-finite; one read at the end.
    let total = zeros([]);
    for (const g of grads) total = total.add(g.sum().float().cpu());
    return !Number.isFinite(total.item());
  }));
}

/**
 * The loss scale of a float16 fit, as a callback: before the backward pass the loss is multiplied
 * by the scale; before the step the gradients are divided by it, and the step is skipped
 * (CancelStepException) when one overflowed; after it the scale halves after an overflow and
 * doubles after growthInterval steps without one. Runs after gradient accumulation (whose
 * skipped batches are not steps) and before anything that reads the gradients at the step.
 */
export class GradScaler implements StatefulCallback {
  readonly order = -5;
  readonly stateName = 'grad_scaler';
  readonly options: GradScalerOptions;
  /** The current loss scale. */
  scale: number;
  /** Optimizer steps skipped because a gradient overflowed. */
  skippedSteps = 0;
  #goodSteps = 0;
  #overflow = false;

  constructor(o: Partial<GradScalerOptions> = {}) {
    this.options = { ...GRAD_SCALER_DEFAULTS, ...o };
    this.scale = this.options.initScale;
  }

  beforeBackward(learn: Learner): void {
    if (learn.lossGrad) learn.lossGrad = learn.lossGrad.mul(this.scale);
  }

  beforeStep(learn: Learner): void {
    const grads = learn.model.parameters().map((p) => p.grad).filter((g): g is Tensor => g !== null);
    this.#overflow = unscaleGrads(grads, this.scale);
    for (const g of grads) g.dispose();
    if (this.#overflow) throw new CancelStepException(`gradients overflowed at loss scale ${this.scale}`);
  }

  /** The scale and the steps since it last changed, for checkpoints (torch's GradScaler.state_dict). */
  stateDict(): { json: { scale: number; growthTracker: number; skippedSteps: number } } {
    return { json: { scale: this.scale, growthTracker: this.#goodSteps, skippedSteps: this.skippedSteps } };
  }

  loadStateDict(json: unknown): void {
    const s = json as { scale?: unknown; growthTracker?: unknown; skippedSteps?: unknown };
    if (typeof s?.scale !== 'number' || !(s.scale > 0)) throw new TypeError('grad_scaler state: scale must be a positive number');
    this.scale = s.scale;
    this.#goodSteps = typeof s.growthTracker === 'number' ? s.growthTracker : 0;
    this.skippedSteps = typeof s.skippedSteps === 'number' ? s.skippedSteps : 0;
  }

  afterStep(): void {
    const o = this.options;
    if (this.#overflow) {
      this.scale *= o.backoffFactor;
      this.skippedSteps++;
      this.#goodSteps = 0;
    } else if (++this.#goodSteps === o.growthInterval) {
      this.scale *= o.growthFactor;
      this.#goodSteps = 0;
    }
    this.#overflow = false;
  }
}
