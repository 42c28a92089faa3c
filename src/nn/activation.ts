// Activation modules (torch.nn's names). ReLU, ReLU6, SiLU and Hardswish take PyTorch's
// `inplace`: the module then overwrites its input and returns it, as torchvision's blocks ask for
// (Conv2dNormActivation, ResNet's blocks), which saves one activation-sized tensor per layer.
import { F, type Tensor } from '../torch/index.js';
import { Module } from './module.js';

/** An activation's constructor as blocks take it (torchvision's `activation_layer`). */
export type ActivationClass = new (inplace?: boolean) => Module;

/** The module of an elementwise activation `fn(x, inplace)`, `inplace` its constructor's argument. */
function withInplace(fn: (x: Tensor, inplace: boolean) => Tensor) {
  return class extends Module {
    constructor(readonly inplace = false) { super(); }
    forward(x: Tensor): Tensor { return fn(x, this.inplace); }
  };
}

export class ReLU extends withInplace(F.relu) {}
export class ReLU6 extends withInplace(F.relu6) {}
export class SiLU extends withInplace(F.silu) {}
export class Hardswish extends withInplace(F.hardswish) {}
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
