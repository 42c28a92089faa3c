// fastai's trackers — early stopping, keep-best, reduce-LR-on-plateau — and an over-training
// detector. Each monitors a column of the table (valid_loss by default); a name with "loss" or
// "error" in it is better smaller. The best value resets at each fit.
import { keep, type Tensor } from '../torch/index.js';
import type { Callback, EpochRow, Learner } from './learner.js';

export interface TrackerOptions {
  monitor?: string;
  /** An improvement must beat the best by more than this. Default 0. */
  minDelta?: number;
}

abstract class Tracker implements Callback {
  readonly monitor: string;
  readonly minDelta: number;
  best = Infinity;
  bestEpoch = -1;

  constructor(o: TrackerOptions = {}) {
    this.monitor = o.monitor ?? 'valid_loss';
    this.minDelta = o.minDelta ?? 0;
  }

  get smallerIsBetter(): boolean { return /loss|error/.test(this.monitor); }

  /** The name a checkpoint keeps its state under (see StatefulCallback). */
  get stateName(): string { return this.constructor.name; }

  stateDict(): { json: unknown; tensors?: Map<string, Tensor> } {
    return { json: { best: this.best, bestEpoch: this.bestEpoch, ...this.extraState() } };
  }

  loadStateDict(json: unknown, _tensors: Map<string, Tensor>): void {
    const s = json as { best: number | null; bestEpoch: number } & Record<string, number>;
    this.best = s.best ?? Infinity; // JSON writes Infinity as null
    this.bestEpoch = s.bestEpoch;
    this.loadExtraState(s);
  }

  protected extraState(): Record<string, number> { return {}; }
  protected loadExtraState(_s: Record<string, number>): void { /* nothing more by default */ }

  beforeFit(_learn: Learner): void {
    this.best = Infinity;
    this.bestEpoch = -1;
  }

  /** Records the epoch's value; returns whether it improved on the best. */
  protected track(row: EpochRow): boolean {
    const value = row[this.monitor];
    if (value === undefined) throw new Error(`${this.constructor.name}: no column '${this.monitor}' in the table`);
    const signed = this.smallerIsBetter ? value : -value;
    if (signed < this.best - this.minDelta) {
      this.best = signed;
      this.bestEpoch = row.epoch;
      return true;
    }
    return false;
  }

  abstract afterEpoch(learn: Learner, row: EpochRow): void;
}

/** Stops the fit once `patience` epochs pass without improvement. */
export class EarlyStopping extends Tracker {
  readonly patience: number;
  /** Why the fit stopped, if it did. */
  message: string | null = null;
  #wait = 0;

  constructor(o: TrackerOptions & { patience?: number } = {}) {
    super(o);
    this.patience = o.patience ?? 1;
  }

  protected override extraState(): Record<string, number> { return { wait: this.#wait }; }
  protected override loadExtraState(s: Record<string, number>): void { this.#wait = s.wait ?? 0; }

  override beforeFit(learn: Learner): void {
    super.beforeFit(learn);
    this.#wait = 0;
    this.message = null;
  }

  afterEpoch(learn: Learner, row: EpochRow): void {
    if (this.track(row)) {
      this.#wait = 0;
    } else if (++this.#wait >= this.patience) {
      this.message = `No improvement since epoch ${this.bestEpoch}: early stopping`;
      learn.stopTraining = true;
    }
  }
}

/** Keeps a copy of the weights at the best epoch and puts them back when the fit ends (fastai's SaveModelCallback, in memory). */
export class KeepBest extends Tracker {
  #weights: Map<string, Tensor> | null = null;

  override beforeFit(learn: Learner): void {
    super.beforeFit(learn);
    this.#drop();
  }

  afterEpoch(learn: Learner, row: EpochRow): void {
    if (!this.track(row)) return;
    this.#drop();
    this.#weights = learn.model.copyStateDict();
  }

  afterFit(learn: Learner): void {
    if (this.#weights) learn.model.loadStateDict(this.#weights);
    this.#drop();
  }

  override stateDict(): { json: unknown; tensors?: Map<string, Tensor> } {
    return { ...super.stateDict(), tensors: this.#weights ?? undefined };
  }

  override loadStateDict(json: unknown, tensors: Map<string, Tensor>): void {
    super.loadStateDict(json, tensors);
    this.#drop();
    if (tensors.size > 0) this.#weights = new Map([...tensors].map(([k, t]) => [k, keep(t.clone())]));
  }

  #drop(): void {
    for (const t of this.#weights?.values() ?? []) t.dispose();
    this.#weights = null;
  }
}

/**
 * Divides the learning rate by `factor` after `patience` epochs without improvement. Under a
 * one-cycle schedule it scales the scheduled rates (fastai's version is overwritten by the schedule).
 */
export class ReduceLROnPlateau extends Tracker {
  readonly patience: number;
  readonly factor: number;
  readonly minLrFactor: number;
  #wait = 0;

  constructor(o: TrackerOptions & { patience?: number; factor?: number; minLrFactor?: number } = {}) {
    super(o);
    this.patience = o.patience ?? 1;
    this.factor = o.factor ?? 10;
    this.minLrFactor = o.minLrFactor ?? 0;
  }

  protected override extraState(): Record<string, number> { return { wait: this.#wait }; }
  protected override loadExtraState(s: Record<string, number>): void { this.#wait = s.wait ?? 0; }

  override beforeFit(learn: Learner): void {
    super.beforeFit(learn);
    this.#wait = 0;
  }

  afterEpoch(learn: Learner, row: EpochRow): void {
    if (this.track(row)) {
      this.#wait = 0;
    } else if (++this.#wait >= this.patience) {
      learn.lrFactor = Math.max(this.minLrFactor, learn.lrFactor / this.factor);
      this.#wait = 0;
    }
  }
}

/**
 * Returns the epoch where over-training set in — the one after the best valid loss, when valid
 * loss rose there and never came back below the best while train loss went on falling (the last
 * epoch's below the best epoch's; one epoch's bump, such as the first unfrozen epoch's, does not
 * hide it) — or null.
 */
export function overTrainingEpoch(rows: Pick<EpochRow, 'epoch' | 'train_loss' | 'valid_loss'>[]): number | null {
  if (rows.length < 2) return null;
  const best = rows.reduce((b, r, i) => (r.valid_loss < rows[b].valid_loss ? i : b), 0);
  const next = rows[best + 1];
  if (!next) return null;
  const last = rows[rows.length - 1];
  return next.valid_loss > rows[best].valid_loss && last.train_loss < rows[best].train_loss ? next.epoch : null;
}

/** A sentence on over-training for the end of a run. */
export function overTrainingSummary(rows: Pick<EpochRow, 'epoch' | 'train_loss' | 'valid_loss'>[]): string {
  const at = overTrainingEpoch(rows);
  const best = rows.reduce((a, b) => (b.valid_loss < a.valid_loss ? b : a), rows[0]);
  const last = rows[rows.length - 1];
  if (at === null) {
    if (!best || best === last) return 'No sign of over-training: the last epoch has the best valid loss.';
    return last.train_loss >= best.train_loss
      ? `No sign of over-training: valid loss was best at epoch ${best.epoch}, and train loss has not fallen below that epoch's since ` +
        '(worse on both is not over-training).'
      : `No sign of over-training: valid loss did not rise after its best, at epoch ${best.epoch}.`;
  }
  return `Over-training from epoch ${at}: valid loss turned up while train loss kept falling; ` +
    `the best valid loss was ${best.valid_loss.toFixed(6)} at epoch ${best.epoch}.`;
}
