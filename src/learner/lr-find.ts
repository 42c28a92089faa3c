// fastai's learning-rate finder: an exponential sweep over a few batches, stopped when the
// smoothed loss diverges, with its four suggestions. The weights and optimizer state are put back.
import { tidy, F } from '../torch/index.js';
import { assertBatches, type Learner } from './learner.js';

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

/** Sweeps the learning rate exponentially from startLr to endLr over numIt batches; see LrFindResult. */
export async function lrFind(learn: Learner, o: LrFindOptions = {}): Promise<LrFindResult> {
  const { startLr = 1e-7, endLr = 10, numIt = 100, stopDiv = true } = o;
  assertBatches(learn.dls.train);
  const opt = learn.opt ?? learn.createOpt();
  const weights = learn.model.copyStateDict();
  const optState = opt.saveState();
  const lrs: number[] = [];
  const losses: number[] = [];
  let smooth = 0;
  let best = Infinity;
  let i = 0;
  learn.model.train();
  try {
    sweep: while (i < numIt) {
      const before = i;
      for await (const { x, y } of learn.dls.train) {
        const lr = startLr * (endLr / startLr) ** (i / numIt);
        for (const g of opt.paramGroups) g.lr = lr;
        const loss = tidy(() => {
          const l = F.crossEntropy(learn.forward(x), y, { labelSmoothing: learn.options.labelSmoothing });
          opt.zeroGrad(true);
          l.backward();
          opt.step();
          return l.item();
        });
        x.dispose();
        y.dispose();
        i++;
        smooth = 0.98 * smooth + 0.02 * loss;
        const value = smooth / (1 - 0.98 ** i);
        lrs.push(lr);
        losses.push(value);
        if (value < best) best = value;
        if (i >= numIt || (stopDiv && (value > 4 * best || Number.isNaN(value)))) break sweep;
      }
      if (i === before) assertBatches({ length: 0 }); // a loader that promised batches and gave none
    }
  } finally {
    learn.model.loadStateDict(weights);
    for (const t of weights.values()) t.dispose();
    opt.restoreState(optState);
    opt.zeroGrad(true);
  }
  return { lrs, losses, suggestions: suggest(lrs, losses, numIt) };
}
