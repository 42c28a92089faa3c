// The data layer's defaults, each a named constant in a module that loads nothing heavy, so the
// command line can declare its flags with them before libtorch or sharp is loaded.

/** fastai's default share of the images held out for validation. */
export const DEFAULT_VALID_PCT = 0.2;
/** The seed of the split, the shuffling and the augmentation when none is given: runs repeat by default (fastai's are random unless seeded). */
export const DEFAULT_SEED = 42;
/**
 * Images per batch: 32, half fastai's 64, because visiontune mostly trains on CPUs, where a batch
 * of 64 at 224 px doubles the memory of a step and gains nothing per epoch on small data sets.
 */
export const DEFAULT_BS = 32;
/** The final image size of the presizing recipe (the model's input). */
export const DEFAULT_SIZE = 224;
/** fastai's presizing item size: large enough that the batch crop to 224 has room to move. */
export const DEFAULT_ITEM_SIZE = 460;
/** The output folder of `train` and `lr-find` before run folders (visiontune ≤ 0.x): still never read as data, marker or not. */
export const DEFAULT_OUT_DIR = 'visiontune-out';

/**
 * The largest image size (--size, --item-size) visiontune takes: no zoo model was trained above
 * 480 px, and 2048 px keeps one presized item at 12 MB and a float32 batch of 32 at 1.6 GB.
 */
export const MAX_IMAGE_SIZE = 2048;
/** The largest batch visiontune takes. */
export const MAX_BS = 1024;
/**
 * The most elongated a presized item gets (longer side ÷ shorter side) with the 'crop' method: a
 * longer image keeps its centre, so a 1×100,000-pixel file costs what a 1:16 one does.
 */
export const MAX_ASPECT = 16;
/** How training makes up for unbalanced classes when not told: not at all (see Balance). */
export const DEFAULT_BALANCE = 'none';
/** Folds of the training images' label check (--label-check K) when not told: 0, off. */
export const DEFAULT_LABEL_CHECK = 0;
/** The most folds --label-check takes: each fold fits a linear head, cheap, but more than 20 adds nothing. */
export const MAX_LABEL_FOLDS = 20;
/** Where runs go when --out is not given: runs/train, runs/train2, … (and runs/lr_find…). */
export const DEFAULT_RUNS_DIR = 'runs';
