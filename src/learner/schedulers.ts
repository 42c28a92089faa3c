// The callbacks that shape each training step, as fastai's: the hyper-parameter schedule,
// gradient accumulation, mixed precision, the channels_last memory format and frozen batch norm.
import { BatchNorm1d, BatchNorm2d } from '../nn/index.js';
import { CancelBatchException, type Callback } from './events.js';
import type { Learner } from './learner.js';

/** Each layer group's learning rate and the momentum (Adam's β1) at `pos` ∈ [0, 1) of a fit. */
export type Schedule = (pos: number) => { lrs: number[]; mom: number };

/** fastai's ParamScheduler: before every training batch, sets the hyper-parameters the schedule gives at the fit's position. */
export class ParamScheduler implements Callback {
  readonly order = -20;
  constructor(readonly schedule: Schedule) {}

  beforeBatch(learn: Learner): void {
    if (!learn.training) return;
    const { lrs, mom } = this.schedule(learn.pctTrain);
    learn.setHypers(lrs, mom);
  }
}

/**
 * fastai's GradientAccumulation, counted in batches: the loss is divided by `nAcc` before the
 * backward pass and the optimizer steps once every `nAcc` batches (the count restarts each
 * epoch, whose gradients start from none), so `nAcc` batches of bs train as one of nAcc·bs.
 */
export class GradientAccumulation implements Callback {
  readonly order = -10;
  #count = 0;

  constructor(readonly nAcc: number) {
    if (!Number.isInteger(nAcc) || nAcc < 1) throw new RangeError(`gradient accumulation needs a whole number of batches ≥ 1, got ${nAcc}`);
  }

  beforeTrain(): void { this.#count = 0; }

  afterLoss(learn: Learner): void {
    if (learn.training && this.nAcc > 1 && learn.lossGrad) learn.lossGrad = learn.lossGrad.div(this.nAcc);
  }

  beforeStep(): void {
    if (++this.#count < this.nAcc) throw new CancelBatchException('accumulating gradients');
    this.#count = 0;
  }
}

/**
 * fastai's MixedPrecision: forward and loss under autocast in `dtype`, weights and gradients in
 * float32. bfloat16 (the default) keeps float32's exponent range and needs no loss scaling; on the
 * CPU it is fast only with bf16 instructions (AMX, avx512_bf16). float16 (CUDA) needs a
 * GradScaler beside it, which the learner adds.
 */
export class MixedPrecision implements Callback {
  constructor(readonly dtype: 'bfloat16' | 'float16' = 'bfloat16') {}
  afterCreate(learn: Learner): void { learn.autocastDtype = this.dtype; }
}

/**
 * fastai's BnFreeze: before each training phase, the batch-norm layers whose parameters are
 * frozen go to eval mode, so their running statistics stay as they are (Keras's advice for
 * fine-tuning). With the learner's trainBn off, a frozen body then has no trainable part at
 * all: its forward pass records no graph and the backward pass stops at the head.
 */
export class BnFreeze implements Callback {
  beforeTrain(learn: Learner): void {
    for (const m of learn.model.modules()) {
      if ((m instanceof BatchNorm1d || m instanceof BatchNorm2d) && !m.parameters().some((p) => p.requiresGrad)) m.eval();
    }
  }
}

/**
 * Moves each batch to the learner's device when its loader made it elsewhere (fastai's
 * DataLoader.device); runs first, so every later callback sees the batch where the model is.
 */
export class ToDevice implements Callback {
  readonly order = -100;
  beforeBatch(learn: Learner): void {
    // to() returns the tensor itself, uncopied, when it is there already.
    if (learn.xb) learn.xb = learn.xb.to({ device: learn.device });
    if (learn.yb) learn.yb = learn.yb.to({ device: learn.device });
  }
}

/**
 * Keras's fine-tuning advice in full (base_model(x, training=False)): before each training phase,
 * every module of the frozen layer groups (those with no trainable parameter) goes to eval mode —
 * batch norm keeps its statistics, dropout and stochastic depth stop — so a frozen body computes
 * the same function every epoch. What --frozen-bn does in the frozen fits.
 */
export class FrozenEval implements Callback {
  beforeTrain(learn: Learner): void {
    learn.splitter(learn.model).forEach((group, i) => {
      if (i >= learn.frozenGroups) return;
      for (const root of group) for (const m of root.modules()) if (!m.parameters().some((p) => p.requiresGrad)) m.eval();
    });
  }
}

/** fastai's ChannelsLast: weights and batches in channels_last (NHWC), which oneDNN's CPU convolutions take without a layout conversion. */
export class ChannelsLast implements Callback {
  afterCreate(learn: Learner): void { learn.model.to({ memoryFormat: 'channels_last' }); }

  beforeBatch(learn: Learner): void {
    if (learn.xb && learn.xb.ndim === 4) learn.xb = learn.xb.contiguous('channels_last');
  }
}
