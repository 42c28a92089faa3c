// What went wrong in a fit, in a sentence: the run diverged (a non-finite loss, or a loss far
// above the level of guessing), or it over-trained, or neither. A diverged run is never called
// healthy, and the learning rate is named as the cause.
import { overTrainingSummary } from './callbacks.js';
import { CancelTrainException, CancelValidateException, type BatchInfo, type Callback, type EpochRow } from './events.js';
import type { Learner } from './learner.js';

/**
 * A fit diverges when its smoothed training loss exceeds this many times the larger of its first
 * loss and ln(classes) (the loss of a uniform guess): the same factor fastai's lr_find stops at.
 */
export const DIVERGENCE_FACTOR = 4;

/** Where and how training diverged. */
export interface Divergence {
  /** The epoch (of the learner's table) and the training batch within it; batch −1: in validation. */
  epoch: number;
  batch: number;
  /** The loss that gave it away: a training batch's, the smoothed training loss, or the validation loss. */
  loss: number;
  reason: 'non-finite loss' | 'loss far above its start' | 'non-finite validation loss';
}

/** A fit that cannot go on: no batch to train on, or nothing to measure. */
export class TrainingError extends Error {
  override readonly name = 'TrainingError';
}

/** Returns the divergence a training loss shows, or null: non-finite, or above DIVERGENCE_FACTOR × the reference. */
export function divergenceOf(loss: number, smoothed: number, reference: number): Divergence['reason'] | null {
  if (!Number.isFinite(loss) || !Number.isFinite(smoothed)) return 'non-finite loss';
  if (smoothed > DIVERGENCE_FACTOR * reference) return 'loss far above its start';
  return null;
}

const fmt = (x: number): string => (Number.isFinite(x) ? (Math.abs(x) >= 1e4 ? x.toExponential(2) : x.toFixed(4)) : String(x));

/** The sentence that says a run diverged and what to do. */
export function divergenceMessage(d: Divergence, baseLr?: number): string {
  const where = d.batch >= 0 ? `epoch ${d.epoch}, batch ${d.batch}` : `epoch ${d.epoch} (validation)`;
  const what = d.reason === 'loss far above its start'
    ? `the training loss rose to ${fmt(d.loss)}, over ${DIVERGENCE_FACTOR}× where it started`
    : d.reason === 'non-finite validation loss' ? `the validation loss is ${fmt(d.loss)}` : `the training loss is ${fmt(d.loss)}`;
  const lr = baseLr !== undefined ? ` (it was ${baseLr.toExponential(1)})` : '';
  return `Training diverged at ${where}: ${what}. The learning rate is too high${lr}: ` +
    'lower it (run lr-find and take its valley, or use --lr auto) and train again.';
}

/**
 * Returns the diagnosis of a fit's rows: divergence when there was any (never an all-clear over
 * it), else overTrainingSummary's sentence; without validation, says
 * that over-training cannot be judged.
 */
export function diagnose(rows: Pick<EpochRow, 'epoch' | 'train_loss' | 'valid_loss'>[], divergence: Divergence | null,
  o: { baseLr?: number; hasValidation?: boolean } = {}): string {
  if (divergence) return divergenceMessage(divergence, o.baseLr);
  if (o.hasValidation === false) return 'No validation images: over-training cannot be judged (hold some images out with --valid-pct).';
  return overTrainingSummary(rows);
}

/**
 * Stops a fit where it diverges (fastai's TerminateOnNaNCallback, widened): at the first
 * non-finite training loss or smoothed loss over DIVERGENCE_FACTOR × max(first loss, ln C), the
 * epoch's training ends, its validation is skipped, its row is kept and fitting stops; a
 * non-finite validation loss stops fitting after its epoch. Sets `learn.divergence`.
 */
export class TerminateOnDivergence implements Callback {
  /** After the recorder, whose smoothed loss it reads. */
  readonly order = -90;
  /** The first finite training loss the learner saw: the level divergence is measured from. */
  #startLoss: number | null = null;

  afterBatch(learn: Learner, b: BatchInfo): void {
    if (b.phase !== 'train') return;
    if (this.#startLoss === null && Number.isFinite(b.loss)) this.#startLoss = b.loss;
    const smoothed = learn.recorder.smoothed;
    const reference = Math.max(this.#startLoss ?? 0, Math.log(Math.max(2, learn.dls.vocab.length)));
    const reason = divergenceOf(b.loss, smoothed, reference);
    if (!reason) return;
    learn.divergence = { epoch: learn.recorder.history.length, batch: b.index, loss: Number.isFinite(b.loss) ? smoothed : b.loss, reason };
    throw new CancelTrainException(reason);
  }

  beforeValidate(learn: Learner): void {
    // A diverged model's validation says nothing more; its loss would only be NaN or worse.
    if (learn.fitting && learn.divergence) throw new CancelValidateException('training diverged');
  }

  afterValidate(learn: Learner): void {
    const loss = learn.recorder.valid.loss;
    if (learn.fitting && !learn.divergence && learn.recorder.validItems > 0 && !Number.isFinite(loss)) {
      learn.divergence = { epoch: learn.recorder.history.length, batch: -1, loss, reason: 'non-finite validation loss' };
    }
  }

  afterEpoch(learn: Learner, _row: EpochRow): void {
    if (learn.divergence) learn.stopTraining = true;
  }
}
