// One supervised training step, as the engine tests and benchmark run it.
import { F, tidy, type Tensor } from '../../src/torch/index.js';
import type { Module } from '../../src/nn/index.js';
import type { Optimizer } from '../../src/optim/index.js';

/** Returns the batch loss after one forward, backward and optimizer step; frees every temporary. */
export function trainStep(model: Module, opt: Optimizer, x: Tensor, y: Tensor): number {
  return tidy(() => {
    const loss = F.crossEntropy(model.forward(x), y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return loss.item();
  });
}
