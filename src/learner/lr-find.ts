// fastai's learning-rate finder: an exponential sweep over a few batches, stopped when the
// smoothed loss diverges, with its four suggestions. The weights and optimizer state are put back.
// It is a callback on an ordinary fit, so whatever shapes a training step (gradient accumulation,
// mixed precision, channels_last) shapes the sweep too.
import type { Tensor } from '../torch/index.js';
import type { AdamW } from '../optim/index.js';
import { assertBatches, type Learner } from './learner.js';
import { rowsCsv } from './recorder.js';
import { CancelFitException, CancelValidateException, type BatchInfo, type Callback } from './events.js';
import { isStateful, type StatefulCallback } from './checkpoint.js';

export interface LrFindOptions {
  startLr?: number;
  endLr?: number;
  numIt?: number;
  /** Stop once the smoothed loss exceeds 4× the best so far (or is NaN). Default true. */
  stopDiv?: boolean;
}

export interface LrSuggestions {
  /** fastai's default: partway down the longest decreasing stretch of the curve. */
  valley: number;
  /** A tenth of the learning rate at the lowest loss. */
  minimum: number;
  /** Where the loss falls fastest against log(lr). */
  steep: number;
  /** Where the loss gradient stops changing, sliding in from the right. */
  slide: number;
}

export interface LrFindResult {
  lrs: number[];
  /** The smoothed (EMA β 0.98, debiased) loss after each batch. */
  losses: number[];
  suggestions: LrSuggestions;
}

/** fastai's valley: the longest strictly decreasing subsequence [s, e]; lr at s + ⌊d⌋ + ⌊d/2⌋, d = (e − s)/3. */
export function valley(lrs: number[], losses: number[]): number {
  const n = losses.length;
  let maxStart = 0;
  let maxEnd = 0;
  const lds = Array(n).fill(1);
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (losses[i] < losses[j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
      if (lds[maxEnd] < lds[i]) {
        maxEnd = i;
        maxStart = maxEnd - lds[maxEnd];
      }
    }
  }
  const sections = (maxEnd - maxStart) / 3;
  return lrs[maxStart + Math.trunc(sections) + Math.trunc(sections / 2)];
}

export function minimum(lrs: number[], losses: number[]): number {
  let best = 0;
  for (let i = 1; i < losses.length; i++) if (losses[i] < losses[best]) best = i;
  return lrs[best] / 10;
}

export function steep(lrs: number[], losses: number[]): number {
  let best = 0;
  let bestGrad = Infinity;
  for (let i = 0; i + 1 < losses.length; i++) {
    const g = (losses[i + 1] - losses[i]) / (Math.log(lrs[i + 1]) - Math.log(lrs[i]));
    if (g < bestGrad) {
      bestGrad = g;
      best = i;
    }
  }
  return lrs[best];
}

// numpy.gradient: central differences inside, one-sided at the ends.
function gradient(y: number[]): number[] {
  const n = y.length;
  return y.map((_, i) => (i === 0 ? y[1] - y[0] : i === n - 1 ? y[n - 1] - y[n - 2] : (y[i + 1] - y[i - 1]) / 2));
}

export function slide(lrs: number[], losses: number[], lrDiff = 15, thresh = 0.005): number {
  const n = losses.length;
  const grad = gradient(losses);
  const at = (a: number[], i: number): number => a[i < 0 ? n + i : i];
  let r = -1;
  let l = r - lrDiff;
  let lr = at(lrs, l);
  while (l >= -n && Math.abs(at(grad, r) - at(grad, l)) > thresh) {
    lr = at(lrs, l);
    r--;
    l--;
  }
  return lr;
}

/** The four suggestions from a recorded sweep, over points [numIt/10, −5) as fastai takes them. */
export function suggest(lrs: number[], losses: number[], numIt: number): LrSuggestions {
  const from = Math.floor(numIt / 10);
  const l = lrs.slice(from, -5);
  const y = losses.slice(from, -5);
  if (y.length < 2) {
    throw new Error(`lr_find recorded ${losses.length} points before the smoothed loss rose above 4× its lowest: too few for a suggestion ` +
      '(with very few training images the loss jumps from batch to batch); give a learning rate yourself (--lr 1e-3, say)');
  }
  return { valley: valley(l, y), minimum: minimum(l, y), steep: steep(l, y), slide: slide(l, y) };
}

/**
 * fastai's LRFinder, a callback on an ordinary fit: before each training batch it sets every
 * group's learning rate along the exponential sweep; after it, records the smoothed loss and
 * ends the fit after numIt batches or once the loss diverges; validation is skipped; the weights
 * and optimizer state are put back when the fit ends.
 */
export class LRFinder implements Callback {
  /** After the recorder, whose smoothed loss it records; before TerminateOnDivergence: the finder ends its own sweep. */
  readonly order = -95;
  readonly lrs: number[] = [];
  readonly losses: number[] = [];
  #best = Infinity;
  #saved: { weights: Map<string, Tensor>; opt: ReturnType<AdamW['saveState']>; own: [StatefulCallback, unknown][] } | null = null;

  constructor(readonly o: Required<LrFindOptions>) {}

  beforeFit(learn: Learner): void {
    const opt = learn.opt ?? learn.createOpt();
    // The learner's own stateful callbacks run in the sweep too (the fp16 loss scale, which
    // overflows at the high rates): their JSON state is put back with the weights.
    const own = learn.coreCallbacks.filter(isStateful).map((cb): [StatefulCallback, unknown] => [cb, structuredClone(cb.stateDict().json)]);
    this.#saved = { weights: learn.model.copyStateDict(), opt: opt.saveState(), own };
  }

  beforeBatch(learn: Learner): void {
    if (!learn.training) return;
    const { startLr, endLr, numIt } = this.o;
    const lr = startLr * (endLr / startLr) ** (this.lrs.length / numIt);
    for (const g of learn.opt!.paramGroups) g.lr = lr;
    this.lrs.push(lr);
  }

  afterBatch(learn: Learner, b: BatchInfo): void {
    if (b.phase !== 'train') return;
    const value = learn.recorder.smoothed;
    this.losses.push(value);
    if (value < this.#best) this.#best = value;
    if (this.lrs.length >= this.o.numIt || (this.o.stopDiv && (value > 4 * this.#best || Number.isNaN(value)))) {
      throw new CancelFitException('lr_find done');
    }
  }

  beforeValidate(): void { throw new CancelValidateException('lr_find trains only'); }

  afterFit(learn: Learner): void { this.restore(learn); }

  /** Puts back the weights and optimizer state of before the sweep (once). */
  restore(learn: Learner): void {
    if (!this.#saved) return;
    learn.model.loadStateDict(this.#saved.weights);
    for (const t of this.#saved.weights.values()) t.dispose();
    learn.opt!.restoreState(this.#saved.opt);
    for (const [cb, json] of this.#saved.own) cb.loadStateDict(json, new Map());
    learn.opt!.zeroGrad(true);
    this.#saved = null;
  }
}

/**
 * Sweeps the learning rate exponentially from startLr to endLr over numIt training batches
 * (fastai's lr_find: an LRFinder on a fit with the learner's own callbacks, such as gradient
 * accumulation, and without the ones it was given, such as early stopping); see LrFindResult.
 * Throws a TrainingError when the training loader has no batch.
 */
export async function lrFind(learn: Learner, o: LrFindOptions = {}): Promise<LrFindResult> {
  const options = { startLr: 1e-7, endLr: 10, numIt: 100, stopDiv: true, ...o };
  assertBatches(learn.dls.train);
  const finder = new LRFinder(options);
  const epochs = Math.ceil(options.numIt / learn.dls.train.length);
  learn.recorder.silent = true;
  try {
    await learn.withoutCallbacks([...learn.callbacks], () => learn.fit(epochs, null, { cbs: [finder] }));
  } finally {
    learn.recorder.silent = false;
    finder.restore(learn);
  }
  // A loader that promised batches and gave none: nothing was recorded.
  if (finder.lrs.length === 0) assertBatches({ length: 0 });
  return { lrs: finder.lrs, losses: finder.losses, suggestions: suggest(finder.lrs, finder.losses, options.numIt) };
}

/** Returns the sweep as CSV text: lr,loss per batch. */
export function lrFindCsv(r: Pick<LrFindResult, 'lrs' | 'losses'>): string {
  return rowsCsv(r.lrs.map((lr, i) => ({ lr, loss: r.losses[i] })), ['lr', 'loss']);
}
