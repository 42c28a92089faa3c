// Building blocks shared by the zoo's architectures, with torchvision's names
// (torchvision.ops.misc: Conv2dNormActivation, SqueezeExcitation; models._utils._make_divisible).
import type { Tensor } from '../torch/index.js';
import { Module, Sequential, Conv2d, Linear, BatchNorm2d, AdaptiveAvgPool2d, ReLU, Sigmoid, init, type ActivationClass } from '../nn/index.js';

/** The number of channels nearest to v that is a multiple of divisor, never more than 10% below v. */
export function makeDivisible(v: number, divisor: number, minValue = divisor): number {
  let out = Math.max(minValue, Math.floor(Math.floor(v + divisor / 2) / divisor) * divisor);
  if (out < 0.9 * v) out += divisor;
  return out;
}

export interface ConvNormActOptions {
  stride?: number;
  groups?: number;
  dilation?: number;
  /** Batch-norm epsilon; torchvision's EfficientNetV2 uses 1e-3. */
  eps?: number;
  /** Batch-norm momentum; torchvision's MobileNetV3 uses 0.01. */
  momentum?: number;
  /** The activation's constructor, or null for none. Default ReLU, as in torchvision. */
  activation?: ActivationClass | null;
  /** Whether the activation overwrites the batch norm's output. Default true, as torchvision's Conv2dNormActivation. */
  inplace?: boolean;
}

/** Returns conv (no bias) → batch norm → activation as a Sequential named 0, 1, 2, padding (k-1)/2·d. */
export function convNormAct(inC: number, outC: number, kernel: number, o: ConvNormActOptions = {}): Sequential {
  const { stride = 1, groups = 1, dilation = 1, eps = 1e-5, momentum = 0.1, activation = ReLU, inplace = true } = o;
  const layers: Module[] = [
    new Conv2d(inC, outC, kernel, { stride, padding: ((kernel - 1) >> 1) * dilation, dilation, groups, bias: false }),
    new BatchNorm2d(outC, { eps, momentum }),
  ];
  if (activation) layers.push(new activation(inplace));
  return new Sequential(...layers);
}

/** Squeeze-and-excitation: x · σ(fc2(δ(fc1(avgpool(x))))), fc1/fc2 being 1×1 convs with bias. */
export class SqueezeExcitation extends Module {
  readonly avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
  readonly fc1: Conv2d;
  readonly fc2: Conv2d;
  readonly activation: Module;
  readonly scaleActivation: Module;

  constructor(channels: number, squeezeChannels: number, activation: ActivationClass = ReLU,
    scaleActivation: ActivationClass = Sigmoid) {
    super();
    this.fc1 = this.registerModule('fc1', new Conv2d(channels, squeezeChannels, 1));
    this.fc2 = this.registerModule('fc2', new Conv2d(squeezeChannels, channels, 1));
    this.activation = this.registerModule('activation', new activation());
    this.scaleActivation = this.registerModule('scale_activation', new scaleActivation());
  }

  forward(x: Tensor): Tensor {
    const pooled = this.avgpool.forward(x);
    const scale = this.scaleActivation.forward(this.fc2.forward(this.activation.forward(this.fc1.forward(pooled))));
    return scale.mul(x);
  }
}

/** What a learner needs from a zoo model to cut its body and put a new head on it. */
export interface Backbone extends Module {
  /** Channels of the body's output, the input of a new head. */
  readonly numFeatures: number;
  /** Returns the body's feature map [N, numFeatures, h, w], before pooling. */
  forwardFeatures(x: Tensor): Tensor;
  /**
   * The body's modules by their names in this model, in groups for discriminative learning
   * rates (fastai's splits: ResNet's stem to layer2, then layer3 and layer4; one group otherwise).
   * Everything not listed (the classifier) is what a learner replaces.
   */
  bodyGroups(): [string, Module][][];
}

/** torchvision's initialisation for EfficientNet and MobileNet: He-normal fan-out convs, unit BN, zero biases. */
export function initConvNet(model: Module, linear: 'efficientnet' | 'mobilenet'): void {
  for (const m of model.modules()) {
    const weight = m.getTensor('weight');
    const bias = m.getTensor('bias');
    if (m instanceof Conv2d) {
      init.kaimingNormal_(weight!, { mode: 'fan_out' });
      if (bias) init.zeros_(bias);
    } else if (m instanceof BatchNorm2d) {
      init.ones_(weight!);
      init.zeros_(bias!);
    } else if (m instanceof Linear) {
      const out = weight!.size(0);
      if (linear === 'efficientnet') init.uniform_(weight!, -1 / Math.sqrt(out), 1 / Math.sqrt(out));
      else init.normal_(weight!, 0, 0.01);
      init.zeros_(bias!);
    }
  }
}
