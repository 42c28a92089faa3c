// ResNet 18, 34 and 50 exactly as torchvision builds them (torchvision/models/resnet.py, "V1.5":
// the bottleneck's stride sits on its 3×3 conv).
import type { Tensor } from '../torch/index.js';
import { Module, Sequential, Conv2d, BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, Linear, init } from '../nn/index.js';
import type { Backbone } from './blocks.js';

const conv3x3 = (inC: number, outC: number, stride = 1): Conv2d =>
  new Conv2d(inC, outC, 3, { stride, padding: 1, bias: false });
const conv1x1 = (inC: number, outC: number, stride = 1): Conv2d => new Conv2d(inC, outC, 1, { stride, bias: false });

class BasicBlock extends Module {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly relu: ReLU;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(inC: number, planes: number, stride: number, downsample: Sequential | null) {
    super();
    this.conv1 = this.registerModule('conv1', conv3x3(inC, planes, stride));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.relu = this.registerModule('relu', new ReLU(true));
    this.conv2 = this.registerModule('conv2', conv3x3(planes, planes));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.downsample = downsample && this.registerModule('downsample', downsample);
  }

  forward(x: Tensor): Tensor {
    const out = this.bn2.forward(this.conv2.forward(this.relu.forward(this.bn1.forward(this.conv1.forward(x)))));
    return this.relu.forward(out.add_(this.downsample ? this.downsample.forward(x) : x));
  }
}

class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly relu: ReLU;
  readonly downsample: Sequential | null;

  constructor(inC: number, planes: number, stride: number, downsample: Sequential | null) {
    super();
    this.conv1 = this.registerModule('conv1', conv1x1(inC, planes));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', conv3x3(planes, planes, stride));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.conv3 = this.registerModule('conv3', conv1x1(planes, planes * 4));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(planes * 4));
    this.relu = this.registerModule('relu', new ReLU(true));
    this.downsample = downsample && this.registerModule('downsample', downsample);
  }

  forward(x: Tensor): Tensor {
    let out = this.relu.forward(this.bn1.forward(this.conv1.forward(x)));
    out = this.relu.forward(this.bn2.forward(this.conv2.forward(out)));
    out = this.bn3.forward(this.conv3.forward(out));
    return this.relu.forward(out.add_(this.downsample ? this.downsample.forward(x) : x));
  }
}

type BlockClass = typeof BasicBlock | typeof Bottleneck;

export interface ResNetOptions {
  numClasses?: number;
}

export class ResNet extends Module implements Backbone {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly relu: ReLU;
  readonly maxpool: MaxPool2d;
  readonly layers: Sequential[];
  readonly avgpool: AdaptiveAvgPool2d;
  fc: Linear;
  readonly numFeatures: number;

  constructor(block: BlockClass, depths: [number, number, number, number], { numClasses = 1000 }: ResNetOptions = {}) {
    super();
    this.conv1 = this.registerModule('conv1', new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(64));
    this.relu = this.registerModule('relu', new ReLU(true));
    this.maxpool = this.registerModule('maxpool', new MaxPool2d(3, { stride: 2, padding: 1 }));
    let inC = 64;
    this.layers = depths.map((n, i) => {
      const planes = 64 << i;
      const stride = i === 0 ? 1 : 2;
      const downsample = stride !== 1 || inC !== planes * block.expansion
        ? new Sequential(conv1x1(inC, planes * block.expansion, stride), new BatchNorm2d(planes * block.expansion))
        : null;
      const blocks: Module[] = [new block(inC, planes, stride, downsample)];
      inC = planes * block.expansion;
      for (let j = 1; j < n; j++) blocks.push(new block(inC, planes, 1, null));
      return this.registerModule(`layer${i + 1}`, new Sequential(...blocks));
    });
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.numFeatures = 512 * block.expansion;
    this.fc = this.registerModule('fc', new Linear(this.numFeatures, numClasses));
    for (const m of this.modules()) {
      if (m instanceof Conv2d) init.kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
      else if (m instanceof BatchNorm2d) {
        init.ones_(m.getTensor('weight')!);
        init.zeros_(m.getTensor('bias')!);
      }
    }
  }

  forwardFeatures(x: Tensor): Tensor {
    let y = this.maxpool.forward(this.relu.forward(this.bn1.forward(this.conv1.forward(x))));
    for (const layer of this.layers) y = layer.forward(y);
    return y;
  }

  bodyGroups(): [string, Module][][] {
    const [l1, l2, l3, l4] = this.layers;
    return [[['conv1', this.conv1], ['bn1', this.bn1], ['layer1', l1], ['layer2', l2]], [['layer3', l3], ['layer4', l4]]];
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(this.avgpool.forward(this.forwardFeatures(x)).flatten(1));
  }
}

export const resnet18 = (o?: ResNetOptions): ResNet => new ResNet(BasicBlock, [2, 2, 2, 2], o);
export const resnet34 = (o?: ResNetOptions): ResNet => new ResNet(BasicBlock, [3, 4, 6, 3], o);
export const resnet50 = (o?: ResNetOptions): ResNet => new ResNet(Bottleneck, [3, 4, 6, 3], o);
