// visionLearner: a zoo architecture's body with fastai's head, ready to fine-tune.
import { keep, tidy, type Tensor } from '../torch/index.js';
import { zooEntry } from '../models/registry.js';
import { ImageLoader } from '../data/loader.js';
import { DataLoaders } from '../data/dataloaders.js';
import { loadPretrained, type ResolveOptions } from '../models/weights.js';
import { Learner, type DataLoadersLike, type LearnerOptions } from './learner.js';
import { VisionClassifier, type HeadOptions } from './model.js';
import { exportModel } from './export.js';
import { DEFAULT_MEMORY_FORMAT } from './defaults.js';
import { predictImage, type ImagePrediction, type PredictOptions } from './predict.js';
import { trainedTransform, type EvalTransform } from '../data/transform.js';
import type { ImageInput, ResizeMethod } from '../data/decode.js';

export interface VisionLearnerOptions extends LearnerOptions {
  /**
   * 'imagenet' (torchvision's weights, from the cache or downloaded and verified), a weights file
   * (.pth or .safetensors with the architecture's torchvision keys), or null for random weights.
   */
  weights?: 'imagenet' | string | null;
  /** How 'imagenet' weights are fetched: offline, progress, timeout. */
  download?: ResolveOptions;
  head?: HeadOptions;
  /** Input size the loaders produce; recorded in exported models. Default 224. */
  size?: number;
  /** Normalisation the loaders apply; recorded in exported models. Default the weights' (ImageNet's). */
  normalization?: { mean: [number, number, number]; std: [number, number, number] };
  /**
   * Weights and batches in channels_last (NHWC). Default true: oneDNN's CPU convolutions need no
   * layout conversion then (a training step of efficientnet_v2_s 6% shorter, of mobilenet_v2
   * 27%, on a 2-core AVX2 machine); false keeps NCHW.
   */
  channelsLast?: boolean;
}

export class VisionLearner extends Learner {
  declare readonly model: VisionClassifier;
  /** The temperature calibration fitted (see fitTemperature), recorded in the export; null: none. */
  temperature: number | null = null;

  constructor(dls: DataLoadersLike, readonly arch: string, model: VisionClassifier, readonly pretrained: boolean,
    readonly visionOptions: VisionLearnerOptions) {
    super(dls, model, visionOptions);
  }

  /**
   * fastai's test-time augmentation: the validation set's probabilities averaged over `n` passes
   * with the training augmentation, blended with one plain pass: (1 − beta)·augmented + beta·plain.
   * Needs image loaders (DataLoaders); returns probabilities [N, C] and targets [N].
   */
  async tta(n = 4, beta = 0.25): Promise<{ probs: Tensor; targets: Tensor }> {
    const valid = this.dls.valid;
    if (!(valid instanceof ImageLoader)) throw new TypeError('tta needs image loaders (DataLoaders), which can augment the validation set');
    const augmenting = new ImageLoader(valid.set, valid.vocab, valid.skipped, { ...valid.o, train: true, shuffle: false, dropLast: false });
    let sum: Tensor | null = null;
    for (let i = 0; i < n; i++) {
      const { probs, targets, losses } = await this.getPreds(augmenting);
      targets.dispose();
      losses.dispose();
      const next: Tensor = sum ? keep(sum.add(probs)) : probs;
      if (sum) {
        sum.dispose();
        probs.dispose();
      }
      sum = next;
    }
    const plain = await this.getPreds();
    plain.losses.dispose();
    if (!sum) return { probs: plain.probs, targets: plain.targets };
    const probs = keep(tidy(() => sum!.div(n).mul(1 - beta).add(plain.probs.mul(beta))));
    sum.dispose();
    plain.probs.dispose();
    return { probs, targets: plain.targets };
  }

  /**
   * The normalisation the model is fed: the option, else the image loaders' own, else the weights'
   * (ImageNet's). Settled here once; export and predict read it from here.
   */
  get normalization(): { mean: [number, number, number]; std: [number, number, number] } {
    const stats = this.visionOptions.normalization ?? (this.dls.valid instanceof ImageLoader ? this.dls.valid.evalTransform.stats : null);
    if (stats) return { mean: [...stats.mean], std: [...stats.std] };
    const t = zooEntry(this.arch).weights.transforms;
    return { mean: t.mean, std: t.std };
  }

  /** The input size: the option, else the image loaders', else 224. */
  get size(): number {
    return this.visionOptions.size ?? (this.dls.valid instanceof ImageLoader ? this.dls.valid.size : 224);
  }

  /** How the training images were presized, when the loaders are image loaders (DataLoaders). */
  get presizing(): { itemSize: number; resizeMethod: ResizeMethod } | null {
    const train = this.dls.train;
    return train instanceof ImageLoader ? { itemSize: train.set.itemSize, resizeMethod: train.set.method } : null;
  }

  /** The inference transform: as the validation loader makes its inputs (see ExportedModel.preprocess). */
  get preprocess(): EvalTransform {
    return trainedTransform(this.size, this.normalization, this.presizing);
  }

  /**
   * Returns the class of one image, a file path or its bytes, with every class's probability;
   * the image is made into the model's input as the validation images were.
   */
  predict(input: ImageInput, o: PredictOptions = {}): Promise<ImagePrediction> {
    return predictImage(this.model, this.dls.vocab, input, this.preprocess, o);
  }

  /** Writes the model and what it needs at inference (classes, size, normalisation) to one .safetensors file. */
  export(path: string): void {
    exportModel(path, this.model, {
      architecture: this.arch,
      classes: [...this.dls.vocab],
      size: this.size,
      normalization: this.normalization,
      head: this.visionOptions.head ?? {},
      ...this.presizing,
      ...(this.dls instanceof DataLoaders && this.dls.split ? { split: this.dls.split } : {}),
      ...(this.temperature !== null ? { temperature: this.temperature } : {}),
    });
  }
}

/**
 * Returns a learner for `arch` (a zoo name) on `dls`: the architecture's body with the given
 * weights and a new head; with pretrained weights it starts frozen, as in fastai.
 */
export async function visionLearner(dls: DataLoadersLike, arch: string, o: VisionLearnerOptions = {}): Promise<VisionLearner> {
  const backbone = o.weights ? await loadPretrained(arch, o.weights, o.download) : zooEntry(arch).build();
  const model = new VisionClassifier(backbone, dls.vocab.length, o.head);
  const learn = new VisionLearner(dls, arch, model, Boolean(o.weights), { ...o, channelsLast: o.channelsLast ?? DEFAULT_MEMORY_FORMAT === 'channels_last' });
  if (o.weights) learn.freeze();
  return learn;
}
