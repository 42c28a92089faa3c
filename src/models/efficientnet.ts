// EfficientNet B0 and V2 (S, M, L) exactly as torchvision builds them (torchvision/models/
// efficientnet.py): same stage tables, parameter names, batch-norm eps, stochastic depth and dropout.
import type { Tensor } from '../torch/index.js';
import { Module, Sequential, SiLU, StochasticDepth, AdaptiveAvgPool2d, Dropout, Linear } from '../nn/index.js';
import { convNormAct, makeDivisible, SqueezeExcitation, initConvNet, type Backbone } from './blocks.js';

/** One stage: block type, expansion ratio, kernel, stride of its first block, channels in/out, blocks. */
export interface StageConfig {
  block: 'MBConv' | 'FusedMBConv';
  expandRatio: number;
  kernel: number;
  stride: number;
  inChannels: number;
  outChannels: number;
  layers: number;
}

interface BlockConfig extends StageConfig {
  /** Stochastic-depth probability of this block. */
  sdProb: number;
  eps: number;
}

const stage = (block: StageConfig['block'], expandRatio: number, kernel: number, stride: number, inChannels: number,
  outChannels: number, layers: number): StageConfig => ({ block, expandRatio, kernel, stride, inChannels, outChannels, layers });

// A block's layers, with a residual connection through stochastic depth when the block keeps
// its width and resolution (torchvision's MBConv and FusedMBConv share this).
abstract class ResidualBlock extends Module {
  readonly useResidual: boolean;
  readonly block: Sequential;
  readonly stochasticDepth: StochasticDepth;

  constructor(c: BlockConfig, layers: Module[]) {
    super();
    this.useResidual = c.stride === 1 && c.inChannels === c.outChannels;
    this.block = this.registerModule('block', new Sequential(...layers));
    this.stochasticDepth = this.registerModule('stochastic_depth', new StochasticDepth(c.sdProb, 'row'));
  }

  forward(x: Tensor): Tensor {
    const y = this.block.forward(x);
    return this.useResidual ? this.stochasticDepth.forward(y).add_(x) : y;
  }
}

const expandedChannels = (c: BlockConfig): number => makeDivisible(c.inChannels * c.expandRatio, 8);

// Inverted residual: 1×1 expand, k×k depthwise, squeeze-excitation, 1×1 project.
class MBConv extends ResidualBlock {
  constructor(c: BlockConfig) {
    const expanded = expandedChannels(c);
    const layers: Module[] = [];
    if (expanded !== c.inChannels) layers.push(convNormAct(c.inChannels, expanded, 1, { eps: c.eps, activation: SiLU }));
    layers.push(
      convNormAct(expanded, expanded, c.kernel, { stride: c.stride, groups: expanded, eps: c.eps, activation: SiLU }),
      new SqueezeExcitation(expanded, Math.max(1, Math.floor(c.inChannels / 4)), SiLU),
      convNormAct(expanded, c.outChannels, 1, { eps: c.eps, activation: null }),
    );
    super(c, layers);
  }
}

// EfficientNetV2's early blocks: the expand and depthwise convs fused into one k×k conv.
class FusedMBConv extends ResidualBlock {
  constructor(c: BlockConfig) {
    const expanded = expandedChannels(c);
    super(c, expanded !== c.inChannels
      ? [
        convNormAct(c.inChannels, expanded, c.kernel, { stride: c.stride, eps: c.eps, activation: SiLU }),
        convNormAct(expanded, c.outChannels, 1, { eps: c.eps, activation: null }),
      ]
      : [convNormAct(c.inChannels, c.outChannels, c.kernel, { stride: c.stride, eps: c.eps, activation: SiLU })]);
  }
}

export interface EfficientNetOptions {
  numClasses?: number;
  /** Dropout before the classifier; the variant's own value by default. */
  dropout?: number;
  /** Stochastic depth of the last block (it grows linearly from 0). Default 0.2. */
  stochasticDepthProb?: number;
}

interface Variant {
  stages: StageConfig[];
  lastChannels: number | null;
  dropout: number;
  eps: number;
}

export class EfficientNet extends Module implements Backbone {
  readonly features: Sequential;
  readonly avgpool: AdaptiveAvgPool2d;
  classifier: Sequential;
  readonly numFeatures: number;

  constructor(v: Variant, { numClasses = 1000, dropout = v.dropout, stochasticDepthProb = 0.2 }: EfficientNetOptions = {}) {
    super();
    const layers: Module[] = [convNormAct(3, v.stages[0].inChannels, 3, { stride: 2, eps: v.eps, activation: SiLU })];
    const totalBlocks = v.stages.reduce((n, s) => n + s.layers, 0);
    let blockId = 0;
    for (const s of v.stages) {
      const blocks: Module[] = [];
      for (let i = 0; i < s.layers; i++) {
        // Only a stage's first block changes the width and the resolution.
        const c: BlockConfig = {
          ...s, inChannels: i === 0 ? s.inChannels : s.outChannels, stride: i === 0 ? s.stride : 1,
          sdProb: (stochasticDepthProb * blockId) / totalBlocks, eps: v.eps,
        };
        blocks.push(s.block === 'MBConv' ? new MBConv(c) : new FusedMBConv(c));
        blockId++;
      }
      layers.push(new Sequential(...blocks));
    }
    const lastIn = v.stages[v.stages.length - 1].outChannels;
    this.numFeatures = v.lastChannels ?? 4 * lastIn;
    layers.push(convNormAct(lastIn, this.numFeatures, 1, { eps: v.eps, activation: SiLU }));
    this.features = this.registerModule('features', new Sequential(...layers));
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.classifier = this.registerModule('classifier', new Sequential(new Dropout(dropout), new Linear(this.numFeatures, numClasses)));
    initConvNet(this, 'efficientnet');
  }

  forwardFeatures(x: Tensor): Tensor { return this.features.forward(x); }

  bodyGroups(): [string, Module][][] { return [[['features', this.features]]]; }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(this.avgpool.forward(this.forwardFeatures(x)).flatten(1));
  }
}

// B0 scales neither width nor depth; B1–B7 would only change these multipliers and the resolution.
const B0: StageConfig[] = [
  stage('MBConv', 1, 3, 1, 32, 16, 1),
  stage('MBConv', 6, 3, 2, 16, 24, 2),
  stage('MBConv', 6, 5, 2, 24, 40, 2),
  stage('MBConv', 6, 3, 2, 40, 80, 3),
  stage('MBConv', 6, 5, 1, 80, 112, 3),
  stage('MBConv', 6, 5, 2, 112, 192, 4),
  stage('MBConv', 6, 3, 1, 192, 320, 1),
];

const V2_S: StageConfig[] = [
  stage('FusedMBConv', 1, 3, 1, 24, 24, 2),
  stage('FusedMBConv', 4, 3, 2, 24, 48, 4),
  stage('FusedMBConv', 4, 3, 2, 48, 64, 4),
  stage('MBConv', 4, 3, 2, 64, 128, 6),
  stage('MBConv', 6, 3, 1, 128, 160, 9),
  stage('MBConv', 6, 3, 2, 160, 256, 15),
];

const V2_M: StageConfig[] = [
  stage('FusedMBConv', 1, 3, 1, 24, 24, 3),
  stage('FusedMBConv', 4, 3, 2, 24, 48, 5),
  stage('FusedMBConv', 4, 3, 2, 48, 80, 5),
  stage('MBConv', 4, 3, 2, 80, 160, 7),
  stage('MBConv', 6, 3, 1, 160, 176, 14),
  stage('MBConv', 6, 3, 2, 176, 304, 18),
  stage('MBConv', 6, 3, 1, 304, 512, 5),
];

const V2_L: StageConfig[] = [
  stage('FusedMBConv', 1, 3, 1, 32, 32, 4),
  stage('FusedMBConv', 4, 3, 2, 32, 64, 7),
  stage('FusedMBConv', 4, 3, 2, 64, 96, 7),
  stage('MBConv', 4, 3, 2, 96, 192, 10),
  stage('MBConv', 6, 3, 1, 192, 224, 19),
  stage('MBConv', 6, 3, 2, 224, 384, 25),
  stage('MBConv', 6, 3, 1, 384, 640, 7),
];

export const efficientnetB0 = (o?: EfficientNetOptions): EfficientNet =>
  new EfficientNet({ stages: B0, lastChannels: null, dropout: 0.2, eps: 1e-5 }, o);
export const efficientnetV2S = (o?: EfficientNetOptions): EfficientNet =>
  new EfficientNet({ stages: V2_S, lastChannels: 1280, dropout: 0.2, eps: 1e-3 }, o);
export const efficientnetV2M = (o?: EfficientNetOptions): EfficientNet =>
  new EfficientNet({ stages: V2_M, lastChannels: 1280, dropout: 0.3, eps: 1e-3 }, o);
export const efficientnetV2L = (o?: EfficientNetOptions): EfficientNet =>
  new EfficientNet({ stages: V2_L, lastChannels: 1280, dropout: 0.4, eps: 1e-3 }, o);
