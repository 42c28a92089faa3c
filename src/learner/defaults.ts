// The learner's defaults, each a named constant in a module that loads nothing heavy, so the
// command line can declare its flags with them before libtorch is loaded.

/** fastai's Learner defaults: decoupled weight decay, no decay on norm layers and biases, norm layers trained while frozen, Adam's β2 and ε. */
export const LEARNER_DEFAULTS = { wd: 0.01, wdBnBias: false, trainBn: true, beta2: 0.99, eps: 1e-5, gradAccum: 1, labelSmoothing: 0 };

/** fastai's fine_tune defaults: base_lr 2e-3, one frozen epoch, lr_mult 100, pct_start 0.3, div 5. */
export const FINE_TUNE_DEFAULTS = { baseLr: 2e-3, freezeEpochs: 1, lrMult: 100, pctStart: 0.3, div: 5 };

/** Unfrozen epochs of `visiontune train` when none are given: the seed study's. */
export const DEFAULT_EPOCHS = 4;
/** Early stopping's patience when none is given: 0, off. */
export const DEFAULT_PATIENCE = 0;
/** Training precision: auto, bf16 autocast on CUDA and on CPUs with bf16 instructions, float32 elsewhere (see choosePrecision). */
export const DEFAULT_PRECISION = 'auto';
/** Where models run: CUDA when this libtorch has it and a GPU is visible, else the CPU (see resolveDevice). */
export const DEFAULT_DEVICE = 'auto';
/** Weights and batches in channels_last: oneDNN's CPU convolutions need no layout conversion (see VisionLearnerOptions.channelsLast). */
export const DEFAULT_MEMORY_FORMAT = 'channels_last';
/** Classes `predict` lists per image. */
export const DEFAULT_TOP_K = 5;
/** Test-time augmentation passes of `predict` by default: none. */
export const DEFAULT_TTA = 0;
/** The most test-time augmentation passes predict takes (fastai's tta uses 4). */
export const MAX_TTA = 64;
/** The most epochs train takes in one call. */
export const MAX_EPOCHS = 10_000;
/** The most libtorch threads visiontune asks for. */
export const MAX_THREADS = 1024;
/** Training batches between mid-epoch checkpoints when not told (--save-every): 0, a checkpoint at each epoch's end only. */
export const DEFAULT_SAVE_EVERY = 0;
