// The learner's types: what it trains on (loaders of batches), how its model splits into layer
// groups, and its options.
import type { Tensor } from '../torch/index.js';
import type { Module } from '../nn/index.js';
import type { Metric } from './metrics.js';
import type { Callback } from './events.js';

/** A batch of normalised images [N, 3, H, W] and class indices [N] (int64). */
export interface Batch {
  x: Tensor;
  y: Tensor;
}

/** Batches for one epoch each time it is iterated; `length` is the number of batches. */
export interface Loader extends AsyncIterable<Batch> {
  readonly length: number;
}

export interface DataLoadersLike {
  train: Loader;
  valid: Loader;
  vocab: readonly string[];
}

/** A model whose parameters split into groups (body groups, then the head), as VisionClassifier does. */
export interface GroupedModel extends Module {
  groupModules(): Module[][];
}

/** Returns a model's layer groups: fastai's splitter. */
export type Splitter = (model: Module) => Module[][];

/** The model's own groups when it has them (groupModules), else the whole model as one group. */
export const defaultSplitter: Splitter = (model) =>
  typeof (model as unknown as Partial<GroupedModel>).groupModules === 'function' ? (model as unknown as GroupedModel).groupModules() : [[model]];

export interface LearnerOptions {
  metrics?: Metric[];
  /** Label smoothing of the cross-entropy loss (0 = none). */
  labelSmoothing?: number;
  /** Decoupled weight decay. fastai's default 0.01. */
  wd?: number;
  /** Whether biases and norm-layer parameters are decayed too. fastai's default false. */
  wdBnBias?: boolean;
  /** Whether norm layers keep training while their group is frozen. fastai's default true. */
  trainBn?: boolean;
  /** Adam's β2 and ε, fastai's defaults 0.99 and 1e-5. */
  beta2?: number;
  eps?: number;
  /** Batches whose gradients are summed before one optimizer step. Default 1. */
  gradAccum?: number;
  /** bf16 autocast for forward and loss (CPU: needs bf16 instructions to pay off). */
  bf16?: boolean;
  /** Weights and batches in channels_last memory format (NHWC), often faster for convolutions. */
  channelsLast?: boolean;
  callbacks?: Callback[];
  /** Per-class weights of the loss (see balancedClassWeights); default none. */
  classWeights?: readonly number[];
  /** The layer groups that get their own learning rates and freeze apart. Default: defaultSplitter. */
  splitter?: Splitter;
  /** Where the table goes, a line at a time. Default console.log; null for silence. */
  log?: ((line: string) => void) | null;
}

export interface FitOptions {
  /** Callbacks for this fit only, after the learner's own (a finder, a scheduler). */
  cbs?: Callback[];
}

/** fastai's fine_tune options; defaults in FINE_TUNE_DEFAULTS. */
export interface FineTuneOptions {
  baseLr?: number;
  freezeEpochs?: number;
  lrMult?: number;
  pctStart?: number;
  div?: number;
}
