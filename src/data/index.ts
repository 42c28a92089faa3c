// The data layer's public surface: sources, decoding, presizing, augmentation, loaders.
export { DataError, type Skipped, type SkipReason } from './errors.js';
export {
  csvDataset, splitByValidPct, parseCsv, assertTrainable, countByClass, DEFAULT_VALID_PCT, DEFAULT_SEED,
  type Dataset, type Item, type LabelRule, type SplitName, type CsvOptions, type PassedOver, type PassReason,
} from './sources.js';
export {
  folderDataset, makeOutputDir, isOutputDir, IMAGE_EXTENSIONS, UNSUPPORTED_IMAGE_EXTENSIONS, SPLIT_FOLDERS, OUTPUT_MARKER, DEFAULT_OUT_DIR,
  type FolderOptions,
} from './folders.js';
export { summarize, formatSummary, IMBALANCE_RATIO, MIN_TRAIN_IMAGES, type DatasetSummary } from './summary.js';
export {
  decodeImage, probeImage, inputName, DEFAULT_MAX_PIXELS, DEFAULT_ITEM_SIZE,
  type RawImage, type ResizeMethod, type DecodeOptions, type DecodeResult, type ImageInput,
} from './decode.js';
export { presize, type PresizeOptions, type PresizedItem, type PresizedSet } from './presize.js';
export {
  augmentBatch, drawAugParams, identityParams, AUG_DEFAULTS, NO_AUG, IMAGENET_STATS,
  type AugOptions, type AugParams, type Stats,
} from './augment.js';
export { ImageLoader, DEFAULT_BS, DEFAULT_SIZE, type ImageBatch, type LoaderOptions, type LoaderTiming } from './loader.js';
export { DataLoaders, type DataLoadersOptions } from './dataloaders.js';
export { showBatch, type ShowBatchOptions } from './show.js';
export { writeSyntheticFolder, patternPixels, type ImageFormat, type SyntheticFolderOptions } from './synthetic-files.js';
export { syntheticImages, seededRandom, SYNTHETIC_CLASSES } from './synthetic.js';
