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
/** The default output folder of `train` and `lr-find`: never read as data, marker or not. */
export const DEFAULT_OUT_DIR = 'visiontune-out';
