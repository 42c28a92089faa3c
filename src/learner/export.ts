// Export and reload: one safetensors file holds the trained weights, and its __metadata__ holds
// everything needed to rebuild and use the model (DESIGN: no pickles, no code in model files).
import { F, noGrad, tidy, tensor, type Tensor } from '../torch/index.js';
import { readSafetensors, writeSafetensors } from '../io/index.js';
import { zooEntry } from '../models/registry.js';
import { VisionClassifier, type HeadOptions } from './model.js';
import { predictImage, trainedPreprocess, type ImagePrediction, type PredictOptions, type Preprocess } from './predict.js';
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
}

/** A model file that cannot be used: not one of ours, or inconsistent. */
export class ModelFileError extends Error {
  constructor(readonly path: string, detail: string) {
    super(`${path}: ${detail}`);
    this.name = 'ModelFileError';
  }
}

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

  /**
   * The inference transform: the validation loader's (presized to the item size, centre square
   * resampled to the training size) when the file records it, else the shorter side resized to
   * the training size and the centre square; then the normalisation.
   */
  get preprocess(): Preprocess {
    return trainedPreprocess(this.meta.size, this.meta.normalization, this.meta);
  }

  /** Returns the class of one image, a file path or its bytes, with every class's probability. */
  predict(input: ImageInput, o: PredictOptions = {}): Promise<ImagePrediction> {
    return predictImage(this.model, this.classes, input, this.preprocess, o);
  }

  /** Returns class probabilities [N, C] for images [N, 3, H, W] with values in [0, 1] (normalised here). */
  probabilities(images: Tensor): Tensor {
    const { mean, std } = this.meta.normalization;
    return noGrad(() => tidy(() => {
      const m = tensor(mean, { shape: [1, 3, 1, 1] });
      const s = tensor(std, { shape: [1, 3, 1, 1] });
      return F.softmax(this.model.forward(images.sub(m).div(s)), 1);
    }));
  }
}

/** Rebuilds the model an exported file describes and loads its weights (fastai's load_learner). */
export function loadModel(path: string): ExportedModel {
  const { tensors, metadata } = readSafetensors(path);
  if (!metadata.visiontune) throw new ModelFileError(path, 'not a visiontune model: its safetensors metadata has no "visiontune" entry');
  let meta: ModelMeta;
  try {
    meta = JSON.parse(metadata.visiontune) as ModelMeta;
  } catch (e) {
    throw new ModelFileError(path, `its visiontune metadata is not valid JSON: ${(e as Error).message}`);
  }
  if (meta.formatVersion !== 1) {
    throw new ModelFileError(path, `model format ${meta.formatVersion} is newer than this visiontune (${VERSION}) reads; upgrade visiontune`);
  }
  const model = new VisionClassifier(zooEntry(meta.architecture).build(), meta.classes.length, meta.head);
  try {
    model.loadStateDict(tensors);
  } catch (e) {
    throw new ModelFileError(path, `its weights do not fit a ${meta.architecture} with ${meta.classes.length} classes: ${(e as Error).message}`);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  model.to({ memoryFormat: 'channels_last' }); // as training: faster CPU convolutions, any input layout
  return new ExportedModel(model, meta);
}

/** fastai's name for loadModel. */
export const loadLearner = loadModel;
