// A small convolutional classifier for examples, tests and the engine benchmark: the layer types
// of an EfficientNet (conv, batch norm, SiLU, depthwise conv, linear) at toy size.
// Its PyTorch twin is test/helpers/simple_cnn.py; the two share parameter names.
import type { Tensor } from '../torch/index.js';
import { Module, Sequential, Conv2d, BatchNorm2d, SiLU, AdaptiveAvgPool2d, Flatten, Dropout, Linear } from '../nn/index.js';

// conv → batch norm → SiLU, as torchvision's Conv2dNormActivation.
function convBnAct(inC: number, outC: number, kernel: number, stride = 1, groups = 1): Sequential {
  return new Sequential(
    new Conv2d(inC, outC, kernel, { stride, padding: (kernel - 1) >> 1, groups, bias: false }),
    new BatchNorm2d(outC),
    new SiLU(),
  );
}

export interface SimpleCNNOptions {
  numClasses: number;
  /** Channels of the first layer; later stages double it. Default 32. */
  width?: number;
  dropout?: number;
}

export class SimpleCNN extends Module {
  readonly features: Sequential;
  readonly classifier: Sequential;

  constructor({ numClasses, width = 32, dropout = 0.2 }: SimpleCNNOptions) {
    super();
    const w = width;
    this.features = this.registerModule('features', new Sequential(
      convBnAct(3, w, 3, 2),
      convBnAct(w, w, 3, 1, w), // depthwise
      convBnAct(w, 2 * w, 1), // pointwise
      convBnAct(2 * w, 2 * w, 3, 2, 2 * w),
      convBnAct(2 * w, 4 * w, 1),
    ));
    this.classifier = this.registerModule('classifier', new Sequential(
      new AdaptiveAvgPool2d(1),
      new Flatten(),
      new Dropout(dropout),
      new Linear(4 * w, numClasses),
    ));
  }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(this.features.forward(x));
  }
}
