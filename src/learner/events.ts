// The training loop's events and how a callback hooks into them, after fastai's Learner
// (fastai/learner.py: `_with_events`, `one_batch`, the Cancel*Exception family).
import type { Learner } from './learner.js';

/** A training or validation batch as a callback sees it after the batch: its phase, index in the phase, the phase's batch count and its loss. */
export interface BatchInfo {
  phase: 'train' | 'valid';
  index: number;
  of: number;
  loss: number;
}

/** One row of the table: epoch, train_loss, valid_loss, each metric by name, time in seconds. */
export type EpochRow = { epoch: number; train_loss: number; valid_loss: number; time: number } & Record<string, number>;

/**
 * Hooks into the loop; each runs at its event with the learner, whose state (`xb`, `yb`, `pred`,
 * `loss`, `training`, `epoch`, `iter`, `pctTrain`…) it may read and change. The events, in the
 * order fit runs them:
 *
 *   beforeFit
 *     beforeEpoch
 *       beforeTrain   [beforeBatch afterPred afterLoss beforeBackward afterBackward beforeStep afterStep afterBatch]…  afterTrain
 *       beforeValidate [beforeBatch afterPred afterLoss afterBatch]…  afterValidate
 *     afterEpoch
 *   afterFit
 *
 * A callback cancels part of the loop by throwing CancelStep, CancelBatch, CancelTrain,
 * CancelValidate, CancelEpoch or CancelFit: the rest of that part is skipped, `afterCancel<Part>`
 * runs, and then `after<Part>` runs as it would have (a cancelled step's gradients are still
 * cleared; a cancelled batch's are kept, as gradient accumulation needs). Callbacks run in ascending `order` (default 0), then in
 * the order they were added.
 */
export interface Callback {
  order?: number;
  /** When the callback joins a learner (fastai's after_create). */
  afterCreate?(learn: Learner): void;
  beforeFit?(learn: Learner): void;
  beforeEpoch?(learn: Learner): void;
  beforeTrain?(learn: Learner): void;
  beforeBatch?(learn: Learner): void;
  afterPred?(learn: Learner): void;
  afterLoss?(learn: Learner): void;
  beforeBackward?(learn: Learner): void;
  afterBackward?(learn: Learner): void;
  beforeStep?(learn: Learner): void;
  afterStep?(learn: Learner): void;
  afterBatch?(learn: Learner, b: BatchInfo): void;
  afterTrain?(learn: Learner): void;
  beforeValidate?(learn: Learner): void;
  afterValidate?(learn: Learner): void;
  afterEpoch?(learn: Learner, row: EpochRow): void;
  afterFit?(learn: Learner): void;
  afterCancelStep?(learn: Learner): void;
  afterCancelBatch?(learn: Learner): void;
  afterCancelTrain?(learn: Learner): void;
  afterCancelValidate?(learn: Learner): void;
  afterCancelEpoch?(learn: Learner): void;
  afterCancelFit?(learn: Learner): void;
}

/** The parts of the loop a callback can cancel, by the name their events carry. */
export type Part = 'Step' | 'Batch' | 'Train' | 'Validate' | 'Epoch' | 'Fit';

/** Thrown by a callback to skip the rest of a part of the loop (see Callback). */
export class CancelException extends Error {
  constructor(readonly part: Part, reason = '') {
    super(`cancel ${part.toLowerCase()}${reason ? `: ${reason}` : ''}`);
    this.name = `Cancel${part}Exception`;
  }
}

/** Skips this optimizer step (a gradient scaler's after an overflow); afterStep still runs and the gradients are cleared. */
export class CancelStepException extends CancelException { constructor(reason = '') { super('Step', reason); } }
/** Skips the rest of this batch (its step, for instance); afterBatch still runs. */
export class CancelBatchException extends CancelException { constructor(reason = '') { super('Batch', reason); } }
/** Ends this epoch's training phase; validation still runs. */
export class CancelTrainException extends CancelException { constructor(reason = '') { super('Train', reason); } }
/** Skips this epoch's validation. */
export class CancelValidateException extends CancelException { constructor(reason = '') { super('Validate', reason); } }
/** Ends this epoch; afterEpoch still runs. */
export class CancelEpochException extends CancelException { constructor(reason = '') { super('Epoch', reason); } }
/** Ends the fit; afterFit still runs. */
export class CancelFitException extends CancelException { constructor(reason = '') { super('Fit', reason); } }
