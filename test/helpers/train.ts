// One supervised training step, as the engine tests and benchmark run it, and the count of
// tensors never disposed that the leak tests read.
import { F, memory, tidy, type Tensor } from '../../src/torch/index.js';
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

/**
 * Returns the handles never disposed, live or already released by the garbage collector: a
 * collection between two reads moves a forgotten handle from one count to the other, never out
 * of the sum, so the sum is flat over code that disposes everything it makes (see memory()).
 */
export function undisposed(): number {
  const m = memory();
  return m.tensors + m.collected;
}
