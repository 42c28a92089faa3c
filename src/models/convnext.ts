// ConvNeXt-Tiny exactly as torchvision builds it (torchvision/models/convnext.py): no batch norm,
// layer norms over channels, layer scale and stochastic depth on every block.
import { F, full, type Tensor } from '../torch/index.js';
import { Module, Sequential, Conv2d, LayerNorm, Linear, GELU, Flatten, StochasticDepth, AdaptiveAvgPool2d, init } from '../nn/index.js';
import type { Backbone } from './blocks.js';

/** Layer norm over the channels of an NCHW tensor (torchvision's LayerNorm2d). */
class LayerNorm2d extends LayerNorm {
  override forward(x: Tensor): Tensor {
    const y = F.layerNorm(x.permute(0, 2, 3, 1), this.normalizedShape, this.getTensor('weight'), this.getTensor('bias'), this.eps);
    return y.permute(0, 3, 1, 2);
  }
}

/** A view with permuted dimensions, as a module so that it keeps its index in a Sequential. */
class Permute extends Module {
  constructor(readonly dims: number[]) { super(); }
  forward(x: Tensor): Tensor { return x.permute(...this.dims); }
}

class CNBlock extends Module {
  readonly layerScale: Tensor;
  readonly block: Sequential;
  readonly stochasticDepth: StochasticDepth;

  constructor(dim: number, layerScale: number, sdProb: number) {
    super();
    this.layerScale = this.registerParameter('layer_scale', full([dim, 1, 1], layerScale));
    this.block = this.registerModule('block', new Sequential(
      new Conv2d(dim, dim, 7, { padding: 3, groups: dim }),
      new Permute([0, 2, 3, 1]),
      new LayerNorm(dim, 1e-6),
      new Linear(dim, 4 * dim),
      new GELU(),
      new Linear(4 * dim, dim),
      new Permute([0, 3, 1, 2]),
    ));
    this.stochasticDepth = this.registerModule('stochastic_depth', new StochasticDepth(sdProb, 'row'));
  }

  forward(x: Tensor): Tensor {
    return this.stochasticDepth.forward(this.getTensor('layer_scale')!.mul(this.block.forward(x))).add_(x);
  }
}

/** A stage: its width, the next stage's width (null for the last), and its number of blocks. */
type StageConfig = [number, number | null, number];

export interface ConvNeXtOptions {
  numClasses?: number;
  /** Stochastic depth of the last block (it grows linearly from 0). Default 0.1 for Tiny. */
  stochasticDepthProb?: number;
  layerScale?: number;
}

export class ConvNeXt extends Module implements Backbone {
  readonly features: Sequential;
  readonly avgpool: AdaptiveAvgPool2d;
  classifier: Sequential;
  readonly numFeatures: number;

  constructor(stages: StageConfig[], { numClasses = 1000, stochasticDepthProb = 0.1, layerScale = 1e-6 }: ConvNeXtOptions = {}) {
    super();
    const layers: Module[] = [new Sequential(new Conv2d(3, stages[0][0], 4, { stride: 4 }), new LayerNorm2d(stages[0][0], 1e-6))];
    const totalBlocks = stages.reduce((n, s) => n + s[2], 0);
    let blockId = 0;
    for (const [width, next, depth] of stages) {
      const blocks: Module[] = [];
      for (let i = 0; i < depth; i++) {
        blocks.push(new CNBlock(width, layerScale, (stochasticDepthProb * blockId) / (totalBlocks - 1)));
        blockId++;
      }
      layers.push(new Sequential(...blocks));
      if (next !== null) layers.push(new Sequential(new LayerNorm2d(width, 1e-6), new Conv2d(width, next, 2, { stride: 2 })));
    }
    const [lastWidth, lastNext] = stages[stages.length - 1];
    this.numFeatures = lastNext ?? lastWidth;
    this.features = this.registerModule('features', new Sequential(...layers));
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.classifier = this.registerModule('classifier', new Sequential(
      new LayerNorm2d(this.numFeatures, 1e-6), new Flatten(1), new Linear(this.numFeatures, numClasses),
    ));
    for (const m of this.modules()) {
      if (m instanceof Conv2d || m instanceof Linear) {
        init.truncNormal_(m.getTensor('weight')!, 0, 0.02);
        const bias = m.getTensor('bias');
        if (bias) init.zeros_(bias);
      }
    }
  }

  forwardFeatures(x: Tensor): Tensor { return this.features.forward(x); }

  bodyGroups(): [string, Module][][] { return [[['features', this.features]]]; }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(this.avgpool.forward(this.forwardFeatures(x)));
  }
}

export const convnextTiny = (o?: ConvNeXtOptions): ConvNeXt =>
  new ConvNeXt([[96, 192, 3], [192, 384, 3], [384, 768, 9], [768, null, 3]], o);
