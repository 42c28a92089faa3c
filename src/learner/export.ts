// Export and reload: one safetensors file holds the trained weights, and its __metadata__ holds
// everything needed to rebuild and use the model (DESIGN: no pickles, no code in model files).
import { F, noGrad, tidy, type Tensor } from '../torch/index.js';
import { readSource, parseSafetensors, parseSafetensorsHeader, writeSafetensors } from '../io/index.js';
import { ModelFileError, parseModelMeta } from './model-meta.js';
import { zooEntry } from '../models/registry.js';
import { VisionClassifier, type HeadOptions } from './model.js';
import { predictImage, type ImagePrediction, type PredictOptions } from './predict.js';
import { toModelInput, trainedTransform, type EvalTransform } from '../data/transform.js';
import type { ImageInput, ResizeMethod } from '../data/decode.js';
import { VERSION } from '../version.js';

/** What an exported model file says about itself (`__metadata__.visiontune`, JSON). */
export interface ModelMeta {
  formatVersion: 1;
  visiontuneVersion: string;
  architecture: string;
  classes: string[];
  /** Square input size in pixels the model was trained at. */
  size: number;
  normalization: { mean: [number, number, number]; std: [number, number, number] };
  head: HeadOptions;
  /**
   * How the training images were presized (item size and method), so that predictions make the
   * input as validation did; absent when the learner's loaders were not image loaders.
   */
  itemSize?: number;
  resizeMethod?: ResizeMethod;
  /**
   * The validation share and seed of the split training used (absent when the loaders did not
   * split), so that `interpret` holds out the same images by default.
   */
  split?: { validPct: number; seed: number };
  /** The temperature fitted on the validation set (see fitTemperature): predictions are softmax(logits / T). Absent: 1. */
  temperature?: number;
}

export { ModelFileError } from './model-meta.js';

/** Writes the model's weights and `meta` to one .safetensors file (atomically). */
export function exportModel(path: string, model: VisionClassifier, meta: Omit<ModelMeta, 'formatVersion' | 'visiontuneVersion'>): void {
  const full: ModelMeta = { formatVersion: 1, visiontuneVersion: VERSION, ...meta };
  writeSafetensors(path, model.stateDict(), { visiontune: JSON.stringify(full) });
}

/** A trained classifier loaded from an exported file, ready to predict. */
export class ExportedModel {
  constructor(readonly model: VisionClassifier, readonly meta: ModelMeta) {
    model.eval();
  }

  get classes(): string[] { return this.meta.classes; }

  /** The inference transform: as the model's validation images were made (see trainedTransform). */
  get preprocess(): EvalTransform {
    return trainedTransform(this.meta.size, this.meta.normalization, this.meta);
  }

  /** Returns the class of one image, a file path or its bytes, with every class's probability. */
  predict(input: ImageInput, o: PredictOptions = {}): Promise<ImagePrediction> {
    return predictImage(this.model, this.classes, input, this.preprocess, { temperature: this.meta.temperature, ...o });
  }

  /**
   * Returns class probabilities [N, C] for images [N, 3, H, W] with values in [0, 1]: resampled to
   * the model's size when they are not at it, normalised, through the one evaluation transform.
   */
  probabilities(images: Tensor): Tensor {
    return noGrad(() => tidy(() => F.softmax(this.model.forward(toModelInput(images, this.preprocess)), 1)));
  }
}

/**
 * Rebuilds the model an exported file describes and loads its weights (fastai's load_learner).
 * The metadata is validated against its schema and the header's shapes before anything is
 * built; weights that are not finite are refused. Throws ModelFileError or CheckpointError.
 */
export function loadModel(path: string): ExportedModel {
  const bytes = readSource(path, 'the model file');
  const meta = parseModelMeta(path, parseSafetensorsHeader(bytes, path)) as ModelMeta;
  const { tensors } = parseSafetensors(bytes, path);
  const model = new VisionClassifier(zooEntry(meta.architecture).build(), meta.classes.length, meta.head);
  try {
    for (const [name, t] of tensors) {
      if (t.dtype === 'float32' && noGrad(() => tidy(() => !Number.isFinite(t.abs().max().item())))) {
        throw new ModelFileError(path, `tensor '${name}' holds NaN or infinite values: the model it comes from had diverged`);
      }
    }
    model.loadStateDict(tensors);
  } catch (e) {
    model.dispose();
    if (e instanceof ModelFileError) throw e;
    throw new ModelFileError(path, `its weights do not fit a ${meta.architecture} with ${meta.classes.length} classes: ${(e as Error).message}`);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  model.to({ memoryFormat: 'channels_last' }); // as training: faster CPU convolutions, any input layout
  return new ExportedModel(model, meta);
}

/** fastai's name for loadModel. */
export const loadLearner = loadModel;
