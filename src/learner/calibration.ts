// Calibration after training: temperature scaling (Guo et al. 2017, "On Calibration of Modern
// Neural Networks") fitted on the validation set, the expected calibration error before and after,
// and what an "unknown below P" rule would refuse.
import { F, noGrad, tidy, tensor, type Tensor } from '../torch/index.js';

/** Bins of the expected calibration error, as Guo et al. use. */
export const ECE_BINS = 15;

/** Returns the mean negative log-likelihood of targets [N] (int64) under softmax(logits [N, C] / T). */
export function nllAt(logits: Tensor, targets: Tensor, temperature: number): number {
  return noGrad(() => tidy(() => F.crossEntropy(logits.div(temperature), targets).item()));
}

/**
 * Returns the temperature T that minimises the validation negative log-likelihood of
 * softmax(logits / T) (golden-section search on log T in [1/20, 20]; the NLL is convex in 1/T);
 * 1 when no T does better than 1, so scaling never makes the validation NLL worse.
 * logits: [N, C] (log-probabilities do as well); targets: [N] int64. Throws on an empty set.
 */
export function fitTemperature(logits: Tensor, targets: Tensor): number {
  if (targets.size(0) === 0) throw new RangeError('fitTemperature: no validation items');
  const f = (logT: number): number => nllAt(logits, targets, Math.exp(logT));
  const phi = (Math.sqrt(5) - 1) / 2;
  let [a, b] = [-Math.log(20), Math.log(20)];
  let c = b - phi * (b - a);
  let d = a + phi * (b - a);
  let [fc, fd] = [f(c), f(d)];
  for (let i = 0; i < 60; i++) {
    if (fc < fd) {
      [b, d, fd] = [d, c, fc];
      c = b - phi * (b - a);
      fc = f(c);
    } else {
      [a, c, fc] = [c, d, fd];
      d = a + phi * (b - a);
      fd = f(d);
    }
  }
  const t = Math.exp((a + b) / 2);
  return Number.isFinite(f(Math.log(t))) && f(Math.log(t)) < f(0) ? t : 1;
}

/**
 * Returns the expected calibration error of probabilities [N, C] against targets [N]: the
 * item-weighted mean, over ECE_BINS equal-width bins of the top probability, of |accuracy −
 * mean top probability| (Guo et al. 2017; Naeini et al. 2015).
 */
export function expectedCalibrationError(probs: Tensor, targets: Tensor, bins = ECE_BINS): number {
  const n = targets.size(0);
  if (n === 0) return NaN;
  const c = probs.size(1);
  const p = probs.toArray();
  const t = targets.toArray();
  const sums = Array.from({ length: bins }, () => ({ n: 0, conf: 0, right: 0 }));
  for (let i = 0; i < n; i++) {
    const row = p.slice(i * c, (i + 1) * c);
    const top = Math.max(...row);
    const b = sums[Math.min(bins - 1, Math.floor(top * bins))];
    b.n++;
    b.conf += top;
    b.right += row.indexOf(top) === t[i] ? 1 : 0;
  }
  return sums.reduce((e, b) => e + (b.n ? (b.n / n) * Math.abs(b.right / b.n - b.conf / b.n) : 0), 0);
}

/** Returns probabilities [N, C] as calibrated by `temperature`: softmax(log p / T). */
export function calibrate(probs: Tensor, temperature: number): Tensor {
  return tidy(() => F.softmax(probs.clamp(1e-12, 1).log().div(temperature), 1));
}

/** Returns the share of items whose top probability in probs [N, C] is below `p`: what `--unknown-below p` would refuse. */
export function refusedShare(probs: Tensor, p: number): number {
  const n = probs.size(0);
  if (n === 0) return NaN;
  return noGrad(() => tidy(() => (probs.max(1) as { values: Tensor }).values.lt(tensor(p)).float().mean().item()));
}
