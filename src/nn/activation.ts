// Activation modules (torch.nn's names). PyTorch's `inplace` flag is accepted for parity and
// ignored: the result is the same and autograd stays simple.
import { F, type Tensor } from '../torch/index.js';
import { Module } from './module.js';

export class ReLU extends Module { forward(x: Tensor): Tensor { return F.relu(x); } }
export class ReLU6 extends Module { forward(x: Tensor): Tensor { return F.relu6(x); } }
export class SiLU extends Module { forward(x: Tensor): Tensor { return F.silu(x); } }
export class Sigmoid extends Module { forward(x: Tensor): Tensor { return F.sigmoid(x); } }
export class Tanh extends Module { forward(x: Tensor): Tensor { return F.tanh(x); } }
export class Hardswish extends Module { forward(x: Tensor): Tensor { return F.hardswish(x); } }
export class Hardsigmoid extends Module { forward(x: Tensor): Tensor { return F.hardsigmoid(x); } }

export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') { super(); }
  forward(x: Tensor): Tensor { return F.gelu(x, this.approximate); }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) { super(); }
  forward(x: Tensor): Tensor { return F.leakyRelu(x, this.negativeSlope); }
}
