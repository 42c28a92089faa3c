// Making up for unbalanced classes, two ways: weights in the loss, or a sampler that draws every
// class equally often (fastai's weighted_dataloaders; torch's WeightedRandomSampler).

/** How training makes up for unbalanced classes: not at all, class weights in the loss, or a balanced sampler. */
export type Balance = 'none' | 'weights' | 'sampler';

/**
 * Returns each class's loss weight, inverse to its frequency: w_c = N / (C · n_c), N items in C
 * classes, n_c of class c (scikit-learn's 'balanced' weights), so that every class contributes
 * the same total weight and a balanced set gets weights of 1. A class with no item gets 0.
 */
export function balancedClassWeights(counts: readonly number[]): number[] {
  const n = counts.reduce((a, b) => a + b, 0);
  const present = counts.filter((c) => c > 0).length;
  return counts.map((c) => (c > 0 ? n / (present * c) : 0));
}

/**
 * Returns `n` item indices drawn with replacement, each item with probability proportional to
 * 1 / (items of its class): every class is drawn equally often on average (a seeded
 * WeightedRandomSampler). `labels[i]` is item i's class; `rand` draws uniform [0, 1).
 */
export function balancedDraw(labels: readonly number[], n: number, rand: () => number): number[] {
  const counts = new Map<number, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  const cumulative: number[] = [];
  let total = 0;
  for (const l of labels) cumulative.push(total += 1 / counts.get(l)!);
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    const u = rand() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    out.push(lo);
  }
  return out;
}
