// visiontune's public API: the engine, the zoo, weight files, the data pipeline, the learner and interpretation.
export * from './torch/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export { loadWeightsFile, loadTorchCheckpoint, readSafetensors, writeSafetensors, CheckpointError } from './io/index.js';
export { ZOO, zooEntry, UnknownArchError, type ZooEntry, type PretrainedWeights, type EvalTransforms } from './models/registry.js';
export type { Backbone } from './models/blocks.js';
export { IMAGENET_CLASSES } from './models/imagenet-classes.js';
export { SimpleCNN } from './models/simple-cnn.js';
export {
  Learner, defaultSplitter, type DataLoadersLike, type Loader, type Batch, type LearnerOptions, type FineTuneOptions, type FitOptions, type Splitter,
} from './learner/learner.js';
export type { FitStart, PlannedFit } from './learner/types.js';
export { fineTunePlan, oneCycle, type OneCycleOptions, type LearningRate } from './learner/schedule.js';
export {
  SaveCheckpoint, saveCheckpoint, readCheckpoint, resumeFrom, type Checkpoint, type CheckpointMeta, type CheckpointPosition, type StatefulCallback,
} from './learner/checkpoint.js';
export { buildReport, reportHtml, diagnosisSentences, type RunResults } from './run/report.js';
export { newRunDir, RUN_FILES } from './run/folder.js';
export { renderSvg, curvesSpec, lrFindSpec, confusionSpec, perClassSpec } from './run/charts.js';
export {
  CancelStepException, CancelBatchException, CancelTrainException, CancelValidateException, CancelEpochException, CancelFitException,
  type Callback, type EpochRow, type BatchInfo,
} from './learner/events.js';
export { Recorder, formatTime, rowsCsv } from './learner/recorder.js';
export { ParamScheduler, GradientAccumulation, MixedPrecision, ChannelsLast, type Schedule } from './learner/schedulers.js';
export { TerminateOnDivergence, diagnose, TrainingError, DIVERGENCE_FACTOR, type Divergence } from './learner/diagnosis.js';
export { visionLearner, VisionLearner, type VisionLearnerOptions } from './learner/vision.js';
export { VisionClassifier, createHead, type HeadOptions } from './learner/model.js';
export { TensorLoader } from './learner/tensor-loader.js';
export { lrFind, LRFinder, type LrFindResult, type LrSuggestions } from './learner/lr-find.js';
export { EarlyStopping, KeepBest, ReduceLROnPlateau, overTrainingEpoch, overTrainingSummary } from './learner/callbacks.js';
export { accuracy, errorRate, topKAccuracy, type Metric } from './learner/metrics.js';
export { loadModel, loadLearner, ExportedModel, ModelFileError, type ModelMeta } from './learner/export.js';
export { predictImage, loadImage, type ImagePrediction, type PredictOptions, type Preprocess } from './learner/predict.js';
export { Interpretation, type TopLoss, type ClassReport } from './interpret/interpret.js';
export {
  DataLoaders, ImageLoader, DataError, folderDataset, csvDataset, showBatch, decodeImage, probeImage, AUG_DEFAULTS, IMAGENET_STATS,
  type DataLoadersOptions, type ImageInput, type Skipped, type AugOptions,
} from './data/index.js';
export { loadPretrained, resolveWeights, isCached, cacheDir, WeightsError } from './models/weights.js';
export { VERSION } from './version.js';
export { exportOnnx, onnxModelBytes, OnnxExportError, ONNX_TOLERANCE, type OnnxSource, type ExportOnnxOptions, type OnnxExportResult } from './onnx/index.js';
export { createServer, SERVE_DEFAULTS, type ServeOptions } from './serve/server.js';
export { pageHtml, type PageOptions } from './serve/page.js';
export { initProcessGroup, ProcessGroup, DistributedError, DistributedDataParallel, DistributedSampler, convertSyncBatchNorm, launch, type ProcessGroupOptions, type DdpOptions,
  type LaunchOptions } from './distributed/index.js';
