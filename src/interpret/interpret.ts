// Classification interpretation, as fastai's ClassificationInterpretation: the confusion matrix,
// the most confused pairs, the top losses, and per-class precision/recall/F1 with advice.
import type { Tensor } from '../torch/index.js';
import { ImageLoader } from '../data/loader.js';
import type { Learner, Loader } from '../learner/learner.js';

export interface Predictions {
  /** [N, C] class probabilities. */
  probs: Tensor;
  /** [N] true class indices. */
  targets: Tensor;
  /** [N] per-item losses. */
  losses: Tensor;
}

export interface TopLoss {
  index: number;
  /** The item's file, when the caller knows it. */
  path?: string;
  actual: string;
  predicted: string;
  /** Probability of the predicted class. */
  probability: number;
  loss: number;
}

/** One item's outcome: its file (or #index), actual and predicted class, the prediction's probability and the loss. */
export interface ItemOutcome {
  path: string;
  actual: string;
  predicted: string;
  probability: number;
  loss: number;
}

export interface ClassReport {
  label: string;
  /**
   * Null when not measured: recall and F1 need validation images of the class (support > 0);
   * precision needs them too, or a prediction of the class.
   */
  precision: number | null;
  recall: number | null;
  f1: number | null;
  /** Validation items of this class. */
  support: number;
  /** Training items of this class, when known. */
  trainCount?: number;
  advice: string[];
}

export class Interpretation {
  /** cm[actual][predicted]. */
  readonly confusion: number[][];
  readonly predicted: number[];
  readonly actual: number[];
  readonly itemLosses: number[];
  readonly predictedProb: number[];

  /**
   * Returns the interpretation of `learn`'s predictions on a loader (the validation set by
   * default, fastai's ClassificationInterpretation.from_learner): with each item's file when the
   * loader reads files, and the training images per class when the training loader does. Pass
   * `preds` (learn.getPreds(loader)) when other checks need them too: they are then the caller's.
   */
  static async fromLearner(learn: Learner, loader: Loader = learn.dls.valid, given?: Predictions): Promise<Interpretation> {
    const preds = given ?? await learn.getPreds(loader);
    try {
      // Ordered loaders yield their items in order, so the files line up with the predictions.
      const paths = loader instanceof ImageLoader && !loader.shuffle ? loader.paths : undefined;
      const train = learn.dls.train;
      const trainCounts = train instanceof ImageLoader ? learn.dls.vocab.map((_, c) => train.items.filter((it) => it.label === c).length) : undefined;
      return new Interpretation(learn.dls.vocab, preds, paths?.length === preds.targets.size(0) ? paths : undefined, trainCounts);
    } finally {
      if (!given) for (const t of Object.values(preds)) t.dispose();
    }
  }

  /** `trainCounts`: training images per class, the default of perClass. */
  constructor(readonly vocab: readonly string[], preds: Predictions, readonly paths?: readonly string[], readonly trainCounts?: readonly number[]) {
    const n = vocab.length;
    this.actual = preds.targets.toArray();
    const best = preds.probs.max(1) as { values: Tensor; indices: Tensor };
    this.predicted = best.indices.toArray();
    this.predictedProb = best.values.toArray();
    best.values.dispose();
    best.indices.dispose();
    this.itemLosses = preds.losses.toArray();
    this.confusion = Array.from({ length: n }, () => Array(n).fill(0));
    this.actual.forEach((a, i) => { this.confusion[a][this.predicted[i]]++; });
  }

  get accuracy(): number {
    return this.actual.filter((a, i) => a === this.predicted[i]).length / Math.max(1, this.actual.length);
  }

  /** Every item's outcome, in the predictions' order. */
  items(): ItemOutcome[] {
    return this.actual.map((y, i) => ({
      path: this.paths?.[i] ?? `#${i}`, actual: this.vocab[y], predicted: this.vocab[this.predicted[i]], probability: this.predictedProb[i], loss: this.itemLosses[i],
    }));
  }

  /** (actual, predicted, count) off the diagonal with count ≥ minCount, most frequent first. */
  mostConfused(minCount = 1): [string, string, number][] {
    const out: [string, string, number][] = [];
    this.confusion.forEach((row, a) => row.forEach((c, p) => {
      if (a !== p && c >= minCount) out.push([this.vocab[a], this.vocab[p], c]);
    }));
    return out.sort((x, y) => y[2] - x[2]);
  }

  /** The k items with the largest loss, largest first. */
  topLosses(k = 9): TopLoss[] {
    const order = this.itemLosses.map((l, i) => [l, i] as const).sort((a, b) => b[0] - a[0]).slice(0, k);
    return order.map(([loss, i]) => ({
      index: i, ...(this.paths ? { path: this.paths[i] } : {}),
      actual: this.vocab[this.actual[i]], predicted: this.vocab[this.predicted[i]], probability: this.predictedProb[i], loss,
    }));
  }

  /**
   * Precision, recall and F1 per class, worst F1 first, each with advice drawn from its numbers.
   * A class with no validation image is not measured (null F1, no advice, left out of the mean
   * F1) and comes last.
   */
  perClass(trainCounts: readonly number[] | undefined = this.trainCounts): ClassReport[] {
    const n = this.vocab.length;
    const reports = this.vocab.map((label, c) => {
      const tp = this.confusion[c][c];
      const support = this.confusion[c].reduce((a, b) => a + b, 0);
      const predictedAs = this.confusion.reduce((s, row) => s + row[c], 0);
      const precision = predictedAs ? tp / predictedAs : support ? 0 : null;
      const recall = support ? tp / support : null;
      const f1 = recall === null ? null : precision! + recall ? (2 * precision! * recall) / (precision! + recall) : 0;
      return { label, precision, recall, f1, support, ...(trainCounts ? { trainCount: trainCounts[c] } : {}), advice: [] as string[] };
    });
    const meanTrain = trainCounts ? trainCounts.reduce((a, b) => a + b, 0) / n : 0;
    const measured = reports.filter((r) => r.f1 !== null);
    const meanF1 = measured.reduce((s, r) => s + r.f1!, 0) / Math.max(1, measured.length);
    for (const r of measured) r.advice = this.#advise(r as ClassReport & { f1: number }, meanTrain, meanF1);
    const rank = (r: ClassReport): number => r.f1 ?? Infinity;
    return reports.sort((a, b) => rank(a) - rank(b) || a.label.localeCompare(b.label));
  }

  /** The mean F1 over the classes measured (those with validation images); null when none is. */
  meanF1(): number | null {
    const f1s = this.perClass().map((r) => r.f1).filter((f): f is number => f !== null);
    return f1s.length ? f1s.reduce((a, b) => a + b, 0) / f1s.length : null;
  }

  // Advice from the numbers of a measured class: too little data, a likely label mix-up, or a class much weaker than the rest.
  #advise(r: ClassReport & { f1: number }, meanTrain: number, meanF1: number): string[] {
    const advice: string[] = [];
    if (r.f1 >= 0.95) return advice;
    if (r.trainCount !== undefined && meanTrain > 0 && r.trainCount < 0.5 * meanTrain) {
      advice.push(`more data: ${r.trainCount} training images against ${Math.round(meanTrain)} per class on average`);
    }
    const c = this.vocab.indexOf(r.label);
    const confusedWith = this.confusion[c]
      .map((count, p) => [count, p] as const).filter(([count, p]) => p !== c && count > 0).sort((a, b) => b[0] - a[0])[0];
    if (confusedWith && r.support > 0 && confusedWith[0] / r.support >= 0.2) {
      const other = this.vocab[confusedWith[1]];
      const back = this.confusion[confusedWith[1]][c];
      advice.push(back > 0
        ? `label check: ${confusedWith[0]} of ${r.support} '${r.label}' images were taken for '${other}' and ${back} the other way; ` +
          'look at the top losses for mislabelled or ambiguous images'
        : `${confusedWith[0]} of ${r.support} '${r.label}' images were taken for '${other}': more varied examples, ` +
          'or a higher resolution (--size) if the difference is in fine detail');
    }
    if (r.precision! < 0.7 && r.recall! >= 0.8) {
      advice.push(`over-predicted (precision ${r.precision!.toFixed(2)}): other classes fall into '${r.label}'; balance the classes or add augmentation`);
    }
    if (r.f1 < meanF1 - 0.15 && advice.length === 0) {
      advice.push(`well below the average F1 ${meanF1.toFixed(2)}: more epochs, more augmentation, or more images of this class`);
    }
    return advice;
  }
}
