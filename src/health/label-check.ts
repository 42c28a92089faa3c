// Out-of-sample probabilities for items a model trains on, cheaply: the frozen body's pooled
// features, one forward pass per image, and a linear head (multinomial logistic regression)
// fitted K times, each time on K−1 folds and applied to the fold left out. Confident learning
// (label-errors.ts) then reads these probabilities as it reads validation predictions. This is
// how cleanlab's documentation advises finding label issues in image data (features from a
// pretrained network, cross-validated logistic regression; Northcutt et al. 2021, §6).
import { F, noGrad, tidy, keep, cat, zeros, tensor, type Tensor, type Stats } from '../torch/index.js';
import type { Module } from '../nn/index.js';
import { Adam } from '../optim/index.js';
import { seededRandom } from '../data/random.js';
import { ImageLoader, type ImageBatch } from '../data/loader.js';
import type { PresizedSet } from '../data/presize.js';
import { confidentLearning } from './label-errors.js';

/** Optimisation of the linear head: full-batch Adam steps and their learning rate, on standardised features. */
export const LINEAR_HEAD_STEPS = 300;
export const LINEAR_HEAD_LR = 0.05;

/**
 * Returns the fold (0…k−1) of each item: within each class the items are shuffled with `seed`
 * and dealt round the folds, so every fold holds each class in proportion (stratified K-fold).
 * Throws a RangeError when k < 2.
 */
export function stratifiedFolds(labels: readonly number[], k: number, seed: number): number[] {
  if (!(Number.isInteger(k) && k >= 2)) throw new RangeError(`stratifiedFolds: k must be an integer ≥ 2, got ${k}`);
  const rand = seededRandom(seed);
  const folds = new Array<number>(labels.length).fill(0);
  const byClass = new Map<number, number[]>();
  labels.forEach((y, i) => byClass.set(y, [...(byClass.get(y) ?? []), i]));
  let next = 0;
  for (const y of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = byClass.get(y)!;
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    // Continue dealing where the last class stopped, so small classes do not all land in fold 0.
    for (const i of idx) folds[i] = next++ % k;
  }
  return folds;
}

/**
 * Returns the body's features of every image the loader yields, in its order: the body's output
 * [B, C, H, W] average-pooled to [B, C], stacked to [N, C] float32; in eval mode, without gradients.
 * The model is put back in train mode afterwards.
 */
export async function bodyFeatures(body: Module, loader: AsyncIterable<ImageBatch>): Promise<Tensor> {
  const parts: Tensor[] = [];
  const device = body.device;
  body.eval();
  try {
    for await (const { x, y } of loader) {
      try {
        // On the body's device; the features come back to the CPU, where the small linear fits run.
        parts.push(noGrad(() => tidy(() => keep(F.adaptiveAvgPool2d(body.forward(x.to({ device })), 1).flatten(1).float().cpu()))));
      } finally {
        x.dispose();
        y.dispose();
      }
    }
  } finally {
    body.train();
  }
  if (parts.length === 0) return zeros([0, 0]);
  const out = cat(parts);
  for (const p of parts) p.dispose();
  return out;
}

/**
 * Returns softmax probabilities [M, C] for `test` [M, F] from multinomial logistic regression
 * fitted on `train` [N, F] with labels `y` (N class indices): features standardised with the
 * training mean and standard deviation, an L2 penalty of 1/(2N)·‖W‖² on the mean cross-entropy
 * (scikit-learn's LogisticRegression with C = 1), LINEAR_HEAD_STEPS full-batch Adam steps.
 */
export function linearHeadProbs(train: Tensor, y: readonly number[], test: Tensor, numClasses: number): Tensor {
  return tidy(() => {
    const n = train.size(0);
    const mean = train.mean([0], true);
    const std = train.std([0], false, true).add(1e-6);
    const xs = train.sub(mean).div(std);
    const target = tensor([...y], { dtype: 'int64' });
    const w = zeros([train.size(1), numClasses], { requiresGrad: true });
    const b = zeros([numClasses], { requiresGrad: true });
    // Adam's L2 term on W (weight decay 1/N) is the gradient of the 1/(2N)·‖W‖² penalty.
    const opt = new Adam([{ params: [w], weightDecay: 1 / n }, { params: [b], weightDecay: 0 }], { lr: LINEAR_HEAD_LR });
    try {
      for (let step = 1; step <= LINEAR_HEAD_STEPS; step++) {
        opt.zeroGrad();
        tidy(() => F.crossEntropy(xs.matmul(w).add(b), target).backward());
        opt.step();
      }
    } finally {
      opt.dispose();
    }
    return noGrad(() => F.softmax(test.sub(mean).div(std).matmul(w).add(b), 1));
  });
}

/**
 * Returns out-of-fold probabilities [N, C] for features [N, F] with the given labels: each item's
 * row comes from a linear head fitted on the other folds (stratifiedFolds(labels, k, seed)).
 * Throws a RangeError when k < 2 or there are fewer items than folds.
 */
export function outOfFoldProbs(features: Tensor, labels: readonly number[], numClasses: number, k: number, seed: number): Tensor {
  const n = features.size(0);
  if (n < k) throw new RangeError(`--label-check ${k}: ${n} images cannot fill ${k} folds`);
  const folds = stratifiedFolds(labels, k, seed);
  const rows = new Float32Array(n * numClasses);
  for (let f = 0; f < k; f++) {
    const inFold = folds.flatMap((g, i) => (g === f ? [i] : []));
    const outFold = folds.flatMap((g, i) => (g !== f ? [i] : []));
    if (inFold.length === 0) continue;
    const probs = tidy(() => {
      const idx = (ix: number[]): Tensor => tensor(ix, { dtype: 'int64' });
      return linearHeadProbs(features.indexSelect(0, idx(outFold)), outFold.map((i) => labels[i]), features.indexSelect(0, idx(inFold)), numClasses);
    });
    const p = probs.toTypedArray() as Float32Array;
    probs.dispose();
    inFold.forEach((i, r) => rows.set(p.subarray(r * numClasses, (r + 1) * numClasses), i * numClasses));
  }
  return tensor(rows, { shape: [n, numClasses] });
}

/** An image whose label confident learning doubts, by name. */
export interface LabelSuspectFile {
  file: string;
  /** The split the image is in: train, valid or test. */
  split: string;
  given: string;
  suggested: string;
  /** The out-of-sample probability of the suggested class. */
  confidence: number;
}

export interface LabelCheckOptions {
  /** Folds (≥ 2). */
  k: number;
  /** Fold assignment seed. */
  seed: number;
  /** Model input: square size in pixels and normalisation, as the loaders make them. */
  size: number;
  stats: Stats;
  bs: number;
}

/**
 * Returns the images of `set` whose labels confident learning doubts, most confident first, from
 * K-fold out-of-fold probabilities of a linear head on `body`'s features (each image once,
 * centre-cropped as for validation), with the out-of-fold accuracy of those probabilities (how
 * much to trust the check: near chance, the body's features do not tell the classes apart).
 * `splitOf` names each item's split. Throws a RangeError when there are fewer images than folds.
 */
export async function labelCheck(body: Module, set: PresizedSet, vocab: readonly string[], splitOf: (path: string) => string,
  o: LabelCheckOptions): Promise<{ suspects: LabelSuspectFile[]; accuracy: number }> {
  if (set.items.length < o.k) throw new RangeError(`--label-check ${o.k}: ${set.items.length} images cannot fill ${o.k} folds`);
  const loader = new ImageLoader(set, vocab, [], { bs: o.bs, size: o.size, stats: o.stats, train: false });
  const features = await bodyFeatures(body, loader);
  const paths = loader.paths;
  const labelOf = new Map(set.items.map((it) => [it.path, it.label]));
  const labels = paths.map((file) => labelOf.get(file)!);
  const probs = outOfFoldProbs(features, labels, vocab.length, o.k, o.seed);
  features.dispose();
  const p = probs.toArray();
  probs.dispose();
  const c = vocab.length;
  const right = labels.filter((y, i) => {
    const row = p.slice(i * c, (i + 1) * c);
    return row.indexOf(Math.max(...row)) === y;
  }).length;
  const { suspects } = confidentLearning(p, labels, c);
  return {
    suspects: suspects.map((s) => ({ file: paths[s.index], split: splitOf(paths[s.index]), given: vocab[s.given], suggested: vocab[s.suggested], confidence: s.confidence })),
    accuracy: labels.length ? right / labels.length : NaN,
  };
}
