// Likely label errors by confident learning (Northcutt, Jiang & Chuang 2021, "Confident Learning:
// Estimating Uncertainty in Dataset Labels"; the method behind cleanlab): from out-of-sample
// probabilities, each class's confidence threshold is the mean probability the model gives that
// class on the items labelled with it; an item is suspect when its given label's probability is
// below that class's threshold while another class's is at or above its own.

/** An item whose label confident learning doubts. */
export interface LabelSuspect {
  /** The item's index in the input. */
  index: number;
  given: number;
  /** The class confident learning would give it: the most probable of those at or above their threshold. */
  suggested: number;
  /** The model's probability of the suggested class. */
  confidence: number;
}

/**
 * Returns the per-class thresholds t_j = mean of p_j over the items labelled j (NaN for a class
 * with no item) and the suspects, most confident first. probs: N rows of C out-of-sample
 * probabilities (row-major); labels: the N given class indices.
 */
export function confidentLearning(probs: ArrayLike<number>, labels: readonly number[], numClasses: number):
  { thresholds: number[]; suspects: LabelSuspect[] } {
  const c = numClasses;
  const sums = new Array<number>(c).fill(0);
  const counts = new Array<number>(c).fill(0);
  labels.forEach((y, i) => {
    sums[y] += probs[i * c + y];
    counts[y]++;
  });
  const thresholds = sums.map((s, j) => (counts[j] ? s / counts[j] : NaN));
  const suspects: LabelSuspect[] = [];
  labels.forEach((y, i) => {
    if (!(probs[i * c + y] < thresholds[y])) return;
    let best = -1;
    for (let k = 0; k < c; k++) {
      if (k === y || !(probs[i * c + k] >= thresholds[k])) continue;
      if (best < 0 || probs[i * c + k] > probs[i * c + best]) best = k;
    }
    if (best >= 0) suspects.push({ index: i, given: y, suggested: best, confidence: probs[i * c + best] });
  });
  return { thresholds, suspects: suspects.sort((a, b) => b.confidence - a.confidence) };
}
