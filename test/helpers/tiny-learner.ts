// A small, fast Learner for tests: SimpleCNN (width 8, no dropout) with two parameter groups —
// its features, then its classifier — on generated 24 px pattern images (64 train, 32 valid).
import { manualSeed } from '../../src/torch/index.js';
import { SimpleCNN } from '../../src/models/simple-cnn.js';
import type { Module } from '../../src/nn/index.js';
import { Learner, type LearnerOptions } from '../../src/learner/learner.js';
import { TensorLoader } from '../../src/learner/tensor-loader.js';
import { syntheticImages } from '../../src/data/synthetic.js';

/** Seeds: libtorch's (weights), the two image sets', and the training loader's shuffle. */
export interface TinySeeds {
  torch: number;
  train: number;
  valid: number;
  shuffle: number;
}

export function tinyLearner(options: LearnerOptions, seeds: TinySeeds): Learner {
  manualSeed(seeds.torch);
  const train = syntheticImages(64, 24, { seed: seeds.train });
  const valid = syntheticImages(32, 24, { seed: seeds.valid });
  const cnn = new SimpleCNN({ numClasses: 4, width: 8, dropout: 0 });
  const splitter = (): Module[][] => [[cnn.features], [cnn.classifier]];
  return new Learner({
    train: new TensorLoader(train.images, train.labels, { bs: 16, shuffle: true, seed: seeds.shuffle }),
    valid: new TensorLoader(valid.images, valid.labels, { bs: 32 }),
    vocab: ['a', 'b', 'c', 'd'],
  }, cnn, { log: null, splitter, ...options });
}
