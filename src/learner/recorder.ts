// fastai's Recorder: what a fit measured — the smoothed training loss, the validation loss and
// metrics, each group's learning rate and momentum, the time — as one table row per epoch, the
// learner's history, and the table printed as it goes.
import { performance } from 'node:perf_hooks';
import type { Callback, EpochRow, BatchInfo } from './events.js';
import { keep, type Tensor } from '../torch/index.js';
import type { Learner } from './learner.js';

/** fastai's AvgSmoothLoss β: the training loss shown is an exponential moving average. */
export const SMOOTH_BETA = 0.98;
// 1 − β written out: the subtraction would round to 0.020000000000000018.
const SMOOTH_WEIGHT = 0.02;

/** Formats seconds as fastai does: mm:ss, or h:mm:ss from an hour. */
export function formatTime(seconds: number): string {
  const s = Math.round(seconds);
  const two = (n: number): string => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600);
  return h > 0 ? `${h}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}` : `${two(Math.floor(s / 60))}:${two(s % 60)}`;
}

/** Returns rows as CSV text with `columns` in order (a `time` column in seconds, three decimals): the history, the lr_find curve. */
export function rowsCsv(rows: readonly Record<string, number>[], columns: readonly string[]): string {
  const lines = [columns.join(',')];
  for (const r of rows) lines.push(columns.map((c) => (c === 'time' ? r.time.toFixed(3) : String(r[c]))).join(','));
  return `${lines.join('\n')}\n`;
}

export class Recorder implements Callback {
  /** First among callbacks: the others read the row it makes in afterEpoch. */
  readonly order = -100;
  /** Every epoch's row since the learner was made. */
  readonly history: EpochRow[] = [];
  /** Per training batch of the current fit: each optimizer group's learning rate and Adam β1. */
  readonly lrs: number[][] = [];
  readonly moms: number[][] = [];
  /** Every training batch's loss since the learner was made (lr_find's excepted), and the smoothed loss after it: the curves. */
  readonly losses: number[] = [];
  readonly smoothLosses: number[] = [];
  /** The smoothed training loss (β SMOOTH_BETA), reset at each fit, and the batches it averages. */
  smoothLoss = 0;
  count = 0;
  /** While set (lr_find), no row is kept, printed or numbered. */
  silent = false;
  /** The row afterEpoch made last. */
  lastRow: EpochRow | null = null;
  #epochStart = 0;
  #headerLogged = false;
  #validLoss = 0;
  #validSums: number[] = [];
  #validN = 0;
  /** The validation result of the last validation pass: NaN where nothing was measured. */
  valid: { loss: number; metrics: Record<string, number> } = { loss: NaN, metrics: {} };
  /** How many items the last validation pass measured (0 when it was skipped or empty). */
  validItems = 0;

  /** The smoothed loss debiased for its start at 0, as fastai shows it. */
  get smoothed(): number { return this.count === 0 ? NaN : this.smoothLoss / (1 - SMOOTH_BETA ** this.count); }

  beforeFit(): void {
    this.smoothLoss = 0;
    this.count = 0;
    this.lrs.length = 0;
    this.moms.length = 0;
  }

  beforeEpoch(learn: Learner): void {
    this.#epochStart = performance.now();
    this.valid = { loss: NaN, metrics: Object.fromEntries(learn.metrics.map((m) => [m.name, NaN])) };
  }

  beforeValidate(): void {
    this.validItems = 0;
    this.#validLoss = 0;
    this.#validN = 0;
    this.#validSums = [];
  }

  afterLoss(learn: Learner): void {
    if (learn.training || !learn.pred || !learn.yb) return;
    const bs = learn.yb.size(0);
    this.#validLoss += learn.lossValue * bs;
    learn.metrics.forEach((m, i) => { this.#validSums[i] = (this.#validSums[i] ?? 0) + m.batch(learn.pred!, learn.yb!) * bs; });
    this.#validN += bs;
  }

  afterValidate(learn: Learner): void {
    const n = this.#validN;
    this.validItems = n;
    this.valid = { loss: this.#validLoss / n, metrics: Object.fromEntries(learn.metrics.map((m, i) => [m.name, (this.#validSums[i] ?? 0) / n])) };
  }

  afterBatch(learn: Learner, b: BatchInfo): void {
    if (b.phase !== 'train') return;
    this.smoothLoss = SMOOTH_BETA * this.smoothLoss + SMOOTH_WEIGHT * b.loss;
    this.count++;
    if (!this.silent) {
      this.losses.push(b.loss);
      this.smoothLosses.push(this.smoothed);
    }
    const groups = learn.opt?.paramGroups ?? [];
    this.lrs.push(groups.map((g) => g.lr));
    this.moms.push(groups.map((g) => g.betas[0]));
  }

  afterEpoch(learn: Learner): void {
    if (this.silent) return;
    const row = {
      epoch: this.history.length, train_loss: this.smoothed, valid_loss: this.valid.loss, ...this.valid.metrics,
      time: (performance.now() - this.#epochStart) / 1000,
    } as EpochRow;
    if (!this.#headerLogged) this.#logHeader(learn);
    this.history.push(row);
    this.lastRow = row;
    this.#logRow(learn, row);
  }

  /** Prints the table so far: the header and every row (as a resumed run starts); the rows to come follow it. */
  logTable(learn: Learner): void {
    this.#logHeader(learn);
    for (const row of this.history) this.#logRow(learn, row);
  }

  #logHeader(learn: Learner): void {
    this.#headerLogged = true;
    learn.log(learn.columns.map((c) => c.padEnd(Math.max(c.length, 8))).join('  ').trimEnd());
  }

  #logRow(learn: Learner, row: EpochRow): void {
    const cells = learn.columns.map((c) => {
      const width = Math.max(c.length, 8);
      if (c === 'epoch') return String(row.epoch).padEnd(width);
      if (c === 'time') return formatTime(row.time);
      // fastai's mark for a value that was not measured: no validation set.
      if (Number.isNaN(row[c]) && c !== 'train_loss' && learn.dls.valid.length === 0) return '#na#'.padEnd(width);
      return row[c].toFixed(6).padEnd(width);
    });
    learn.log(cells.join('  ').trimEnd());
  }
}

// Collects probabilities, per-item losses and targets over a validation pass (fastai's GatherPredsCallback).
export class GatherPreds implements Callback {
  readonly probs: Tensor[] = [];
  readonly losses: Tensor[] = [];
  readonly targets: Tensor[] = [];

  afterLoss(learn: Learner): void {
    if (learn.training || !learn.pred || !learn.yb) return;
    // On the CPU, as fastai's get_preds returns them (to_detach(cpu=True)): what reads them (the
    // interpretation, calibration, label checks) mixes them with tensors of its own.
    this.probs.push(keep(learn.pred.softmax(1).cpu()));
    this.losses.push(keep(learn.lossFunc(learn.pred, learn.yb, 'none').cpu()));
    this.targets.push(keep(learn.yb.clone().cpu()));
  }
}
