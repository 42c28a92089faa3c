// fastai's schedules: cosine annealing between points, the one-cycle policy, and learning-rate
// slices spread over parameter groups; fine_tune as a plan of fits.
import { FINE_TUNE_DEFAULTS } from './defaults.js';
import type { FineTuneOptions, PlannedFit } from './types.js';

/** fastai's SchedCos: start → end along half a cosine as pos goes 0 → 1. */
export function cosineAnneal(start: number, end: number, pos: number): number {
  return start + ((1 + Math.cos(Math.PI * (1 - pos))) * (end - start)) / 2;
}

/** fastai's combined_cos: start → middle over the first `pct` of training, then middle → end. */
export function combinedCos(pct: number, start: number, middle: number, end: number, pos: number): number {
  if (pos < pct) return cosineAnneal(start, middle, pos / pct);
  return cosineAnneal(middle, end, pct >= 1 ? 1 : (pos - pct) / (1 - pct));
}

export interface OneCycleOptions {
  /** Start at lrMax / div. fastai's default 25. */
  div?: number;
  /** End at lrMax / divFinal. fastai's default 1e5. */
  divFinal?: number;
  /** Share of the batches spent warming up. fastai's default 0.25. */
  pctStart?: number;
  /** Momentum (Adam's β1) at the start, the peak learning rate and the end. */
  moms?: [number, number, number];
}

export const ONE_CYCLE_DEFAULTS: Required<OneCycleOptions> = { div: 25, divFinal: 1e5, pctStart: 0.25, moms: [0.95, 0.85, 0.95] };

/** Returns the learning rate and momentum at `pos` ∈ [0, 1] of a one-cycle run peaking at lrMax. */
export function oneCycle(lrMax: number, pos: number, o: OneCycleOptions = {}): { lr: number; mom: number } {
  const { div, divFinal, pctStart, moms } = { ...ONE_CYCLE_DEFAULTS, ...o };
  return {
    lr: combinedCos(pctStart, lrMax / div, lrMax, lrMax / divFinal, pos),
    mom: combinedCos(pctStart, moms[0], moms[1], moms[2], pos),
  };
}

/** A learning rate for every group alike, or fastai's slice: [hi] or [lo, hi]. */
export type LearningRate = number | { slice: [number] | [number, number] };

/**
 * Returns one learning rate per group: a number for all; slice(hi) → hi/10 for all but the last,
 * hi for the last; slice(lo, hi) → spaced evenly on a log scale from lo to hi (fastai's even_mults).
 */
export function groupLrs(lr: LearningRate, nGroups: number): number[] {
  if (typeof lr === 'number') return Array(nGroups).fill(lr);
  const [a, b] = lr.slice;
  if (b === undefined) return [...Array(nGroups - 1).fill(a / 10), a];
  if (nGroups === 1) return [b];
  const step = (b / a) ** (1 / (nGroups - 1));
  return Array.from({ length: nGroups }, (_, i) => a * step ** i);
}

/**
 * fastai's fine_tune as a plan of fits (see Learner.fitPlan): `freezeEpochs` of one-cycle on the
 * head at slice(baseLr) with pctStart 0.99 (left out when 0), then `epochs` unfrozen at
 * slice(baseLr/2/lrMult, baseLr/2) with pctStart and div. `extend` adds more unfrozen fits of
 * that many epochs each at the same rates: fastai's fit_one_cycle on a trained learner (--epochs +N).
 */
export function fineTunePlan(epochs: number, o: FineTuneOptions = {}, extend: readonly number[] = []): PlannedFit[] {
  const { baseLr, freezeEpochs, lrMult, pctStart, div } = { ...FINE_TUNE_DEFAULTS, ...o };
  const lr = baseLr / 2;
  const unfrozen = (nEpoch: number): PlannedFit => ({ frozen: false, nEpoch, lrMax: { slice: [lr / lrMult, lr] }, oneCycle: { pctStart, div } });
  return [
    ...(freezeEpochs > 0 ? [{ frozen: true, freezeBn: Boolean(o.freezeBn), cacheFeatures: o.cacheFeatures, nEpoch: freezeEpochs, lrMax: { slice: [baseLr] as [number] }, oneCycle: { pctStart: 0.99 } }] : []),
    unfrozen(epochs), ...extend.map(unfrozen),
  ];
}
