// Activation modules (torch.nn's names). ReLU, ReLU6, SiLU and Hardswish take PyTorch's
// `inplace`: the module then overwrites its input and returns it, as torchvision's blocks ask for
// (Conv2dNormActivation, ResNet's blocks), which saves one activation-sized tensor per layer.
import { F, type Tensor } from '../torch/index.js';
import { Module } from './module.js';

/** An activation's constructor as blocks take it (torchvision's `activation_layer`). */
export type ActivationClass = new (inplace?: boolean) => Module;

export class ReLU extends Module {
  constructor(readonly inplace = false) { super(); }
  forward(x: Tensor): Tensor { return F.relu(x, this.inplace); }
}
export class ReLU6 extends Module {
  constructor(readonly inplace = false) { super(); }
  forward(x: Tensor): Tensor { return F.relu6(x, this.inplace); }
}
export class SiLU extends Module {
  constructor(readonly inplace = false) { super(); }
  forward(x: Tensor): Tensor { return F.silu(x, this.inplace); }
}
export class Hardswish extends Module {
  constructor(readonly inplace = false) { super(); }
  forward(x: Tensor): Tensor { return F.hardswish(x, this.inplace); }
}
export class Sigmoid extends Module { forward(x: Tensor): Tensor { return F.sigmoid(x); } }
export class Tanh extends Module { forward(x: Tensor): Tensor { return F.tanh(x); } }
export class Hardsigmoid extends Module { forward(x: Tensor): Tensor { return F.hardsigmoid(x); } }

export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') { super(); }
  forward(x: Tensor): Tensor { return F.gelu(x, this.approximate); }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) { super(); }
  forward(x: Tensor): Tensor { return F.leakyRelu(x, this.negativeSlope); }
}
