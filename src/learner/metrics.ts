// Classification metrics over a batch; the learner averages them over the validation set,
// weighted by batch size, as fastai does.
import type { Tensor } from '../torch/index.js';

/** A metric of logits [N, C] and targets [N]: its name in the table and its per-batch value. */
export interface Metric {
  name: string;
  batch(logits: Tensor, target: Tensor): number;
}

/** Share of predictions whose top class is the target. */
export const accuracy: Metric = {
  name: 'accuracy',
  batch: (logits, target) => logits.argmax(1).eq(target).float().mean().item(),
};

/** 1 − accuracy. */
export const errorRate: Metric = {
  name: 'error_rate',
  batch: (logits, target) => 1 - accuracy.batch(logits, target),
};

/** Share of targets among the k highest logits. */
export function topKAccuracy(k: number): Metric {
  return {
    name: `top_${k}_accuracy`,
    batch: (logits, target) => {
      const { indices } = logits.topk(Math.min(k, logits.size(1)), 1);
      // topk indices are distinct, so a row holds the target at most once.
      return indices.eq(target.unsqueeze(1)).sum(1).float().mean().item();
    },
  };
}
