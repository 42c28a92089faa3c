// MobileNet V2 and V3-Large exactly as torchvision builds them (torchvision/models/mobilenetv2.py,
// mobilenetv3.py).
import { F, type Tensor } from '../torch/index.js';
import {
  Module, Sequential, Conv2d, BatchNorm2d, ReLU, ReLU6, Hardswish, Hardsigmoid, AdaptiveAvgPool2d, Dropout, Linear,
} from '../nn/index.js';
import { convNormAct, makeDivisible, SqueezeExcitation, initConvNet, type Backbone } from './blocks.js';

// MobileNetV2's inverted residual: 1×1 expand (ReLU6), depthwise 3×3 (ReLU6), 1×1 linear projection.
class InvertedResidualV2 extends Module {
  readonly useResidual: boolean;
  readonly conv: Sequential;

  constructor(inC: number, outC: number, stride: number, expandRatio: number) {
    super();
    const hidden = Math.round(inC * expandRatio);
    this.useResidual = stride === 1 && inC === outC;
    const layers: Module[] = [];
    if (expandRatio !== 1) layers.push(convNormAct(inC, hidden, 1, { activation: ReLU6 }));
    layers.push(
      convNormAct(hidden, hidden, 3, { stride, groups: hidden, activation: ReLU6 }),
      new Conv2d(hidden, outC, 1, { bias: false }),
      new BatchNorm2d(outC),
    );
    this.conv = this.registerModule('conv', new Sequential(...layers));
  }

  forward(x: Tensor): Tensor {
    const y = this.conv.forward(x);
    return this.useResidual ? y.add(x) : y;
  }
}

/** A MobileNetV3 block: input, kernel, expanded and output channels, squeeze-excitation, hard-swish, stride. */
type V3Block = [number, number, number, number, boolean, 'RE' | 'HS', number];

const V3_BN = { eps: 1e-3, momentum: 0.01 };

class InvertedResidualV3 extends Module {
  readonly useResidual: boolean;
  readonly block: Sequential;

  constructor([inC, kernel, expanded, outC, useSe, act, stride]: V3Block) {
    super();
    this.useResidual = stride === 1 && inC === outC;
    const activation = act === 'HS' ? Hardswish : ReLU;
    const layers: Module[] = [];
    if (expanded !== inC) layers.push(convNormAct(inC, expanded, 1, { ...V3_BN, activation }));
    layers.push(convNormAct(expanded, expanded, kernel, { ...V3_BN, stride, groups: expanded, activation }));
    if (useSe) layers.push(new SqueezeExcitation(expanded, makeDivisible(Math.floor(expanded / 4), 8), ReLU, Hardsigmoid));
    layers.push(convNormAct(expanded, outC, 1, { ...V3_BN, activation: null }));
    this.block = this.registerModule('block', new Sequential(...layers));
  }

  forward(x: Tensor): Tensor {
    const y = this.block.forward(x);
    return this.useResidual ? y.add(x) : y;
  }
}

export interface MobileNetOptions {
  numClasses?: number;
  dropout?: number;
}

// Expansion ratio, output channels, blocks, stride of the first block.
const V2_STAGES: [number, number, number, number][] = [
  [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
];

export class MobileNetV2 extends Module implements Backbone {
  readonly features: Sequential;
  classifier: Sequential;
  readonly numFeatures = 1280;

  constructor({ numClasses = 1000, dropout = 0.2 }: MobileNetOptions = {}) {
    super();
    let inC = 32;
    const layers: Module[] = [convNormAct(3, inC, 3, { stride: 2, activation: ReLU6 })];
    for (const [t, c, n, s] of V2_STAGES) {
      for (let i = 0; i < n; i++) {
        layers.push(new InvertedResidualV2(inC, c, i === 0 ? s : 1, t));
        inC = c;
      }
    }
    layers.push(convNormAct(inC, this.numFeatures, 1, { activation: ReLU6 }));
    this.features = this.registerModule('features', new Sequential(...layers));
    this.classifier = this.registerModule('classifier', new Sequential(new Dropout(dropout), new Linear(this.numFeatures, numClasses)));
    initConvNet(this, 'mobilenet');
  }

  forwardFeatures(x: Tensor): Tensor { return this.features.forward(x); }

  bodyGroups(): [string, Module][][] { return [[['features', this.features]]]; }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(F.adaptiveAvgPool2d(this.forwardFeatures(x), 1).flatten(1));
  }
}

const V3_LARGE: V3Block[] = [
  [16, 3, 16, 16, false, 'RE', 1],
  [16, 3, 64, 24, false, 'RE', 2],
  [24, 3, 72, 24, false, 'RE', 1],
  [24, 5, 72, 40, true, 'RE', 2],
  [40, 5, 120, 40, true, 'RE', 1],
  [40, 5, 120, 40, true, 'RE', 1],
  [40, 3, 240, 80, false, 'HS', 2],
  [80, 3, 200, 80, false, 'HS', 1],
  [80, 3, 184, 80, false, 'HS', 1],
  [80, 3, 184, 80, false, 'HS', 1],
  [80, 3, 480, 112, true, 'HS', 1],
  [112, 3, 672, 112, true, 'HS', 1],
  [112, 5, 672, 160, true, 'HS', 2],
  [160, 5, 960, 160, true, 'HS', 1],
  [160, 5, 960, 160, true, 'HS', 1],
];

export class MobileNetV3 extends Module implements Backbone {
  readonly features: Sequential;
  readonly avgpool: AdaptiveAvgPool2d;
  classifier: Sequential;
  readonly numFeatures: number;

  constructor(blocks: V3Block[], lastChannels: number, { numClasses = 1000, dropout = 0.2 }: MobileNetOptions = {}) {
    super();
    const layers: Module[] = [convNormAct(3, blocks[0][0], 3, { ...V3_BN, stride: 2, activation: Hardswish })];
    for (const b of blocks) layers.push(new InvertedResidualV3(b));
    const lastIn = blocks[blocks.length - 1][3];
    this.numFeatures = 6 * lastIn;
    layers.push(convNormAct(lastIn, this.numFeatures, 1, { ...V3_BN, activation: Hardswish }));
    this.features = this.registerModule('features', new Sequential(...layers));
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.classifier = this.registerModule('classifier', new Sequential(
      new Linear(this.numFeatures, lastChannels), new Hardswish(true), new Dropout(dropout), new Linear(lastChannels, numClasses),
    ));
    initConvNet(this, 'mobilenet');
  }

  forwardFeatures(x: Tensor): Tensor { return this.features.forward(x); }

  bodyGroups(): [string, Module][][] { return [[['features', this.features]]]; }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(this.avgpool.forward(this.forwardFeatures(x)).flatten(1));
  }
}

export const mobilenetV2 = (o?: MobileNetOptions): MobileNetV2 => new MobileNetV2(o);
export const mobilenetV3Large = (o?: MobileNetOptions): MobileNetV3 => new MobileNetV3(V3_LARGE, 1280, o);
