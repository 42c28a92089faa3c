// The learner's types: what it trains on (loaders of batches), how its model splits into layer
// groups, and its options.
import type { Tensor, Device } from '../torch/index.js';
import type { OrderShard } from '../data/loader.js';
import type { Module } from '../nn/index.js';
import type { Metric } from './metrics.js';
import type { Callback } from './events.js';
import type { Learner } from './learner.js';
import type { LearningRate, OneCycleOptions } from './schedule.js';

/** A batch of normalised images [N, 3, H, W] and class indices [N] (int64). */
export interface Batch {
  x: Tensor;
  y: Tensor;
  /** The indices of the batch's items in the loader's dataset, when the loader says (the feature cache needs them). */
  items?: readonly number[];
}

/** Batches for one epoch each time it is iterated; `length` is the number of batches. */
export interface Loader extends AsyncIterable<Batch> {
  readonly length: number;
  /** Epochs iterated so far (a resumable loader says; see ImageLoader). */
  readonly epochsStarted?: number;
  /** Makes the next iteration run epoch `epoch` from batch `batch` on; a loader without it cannot resume mid-epoch. */
  resumeAt?(epoch: number, batch: number): void;
  /** This process's part of each epoch when several train together (ImageLoader, TensorLoader); null for all of it. */
  shard?: OrderShard | null;
  /** True when an item gives the same input every time (no augmentation, no random crop): its features can be cached. */
  readonly deterministic?: boolean;
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
  /** fp16 autocast for forward and loss with a GradScaler (CUDA only: libtorch's CPU autocast has no float16). */
  fp16?: boolean;
  /**
   * Where the model trains: 'cpu' (default), 'cuda' or 'cuda:N' (see resolveDevice). The model
   * moves there when the learner is made; a batch a loader makes elsewhere is moved there before
   * the batch's events (fastai's dls.device).
   */
  device?: Device;
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
  /** Continue an interrupted fit from this position instead of starting it (see FitStart). */
  start?: FitStart;
}

/**
 * Where a resumed fit continues: its epoch (0-based, within the fit), the training batches of
 * that epoch already done, the training loader's epoch number then, and what puts back the rest of
 * the state (weights, optimizer, recorder, callbacks, random generators) once the fit's
 * beforeFit events have run.
 */
export interface FitStart {
  epoch: number;
  batch: number;
  loaderEpoch: number;
  restore?: (learn: Learner) => void;
}

/** fastai's fine_tune options; defaults in FINE_TUNE_DEFAULTS. */
export interface FineTuneOptions {
  /** Continue an interrupted fineTune: which of its fits (0 frozen, 1 unfrozen; see fineTunePlan) and where in it. */
  resume?: { fit: number; start: FitStart };
  baseLr?: number;
  freezeEpochs?: number;
  lrMult?: number;
  pctStart?: number;
  div?: number;
  /**
   * While frozen, freeze the body's batch norm too (its parameters and, by BnFreeze, its running
   * statistics), so a frozen step is the body's forward pass without a graph plus the head's
   * forward and backward passes. fastai's default, false, keeps batch norm training. Where the
   * body's batch norm has no statistics (Learner.bodyNormStatsUntrained: random weights), a
   * frozen fit started from its beginning logs UNTRAINED_NORMS_NOTE and trains it instead; a fit
   * resumed part-way takes freezeBn as given.
   */
  freezeBn?: boolean;
  /**
   * With freezeBn, when the training loader is deterministic (no augmentation, no random crop):
   * the body runs once per image and its features are kept for the later frozen epochs and
   * validations (see FeatureCache). Default true; false always runs the body.
   */
  cacheFeatures?: boolean;
}

/** One fit of a plan (see Learner.fitPlan): one-cycle over nEpoch epochs at lrMax, the body frozen or not. */
export interface PlannedFit {
  frozen: boolean;
  /** With frozen: the body's batch norm frozen too (see FineTuneOptions.freezeBn). */
  freezeBn?: boolean;
  /** With freezeBn: keep the body's features when the training inputs repeat (see FineTuneOptions.cacheFeatures). Default true. */
  cacheFeatures?: boolean;
  nEpoch: number;
  lrMax: LearningRate;
  oneCycle: OneCycleOptions;
}
