// PyTorch's SyncBatchNorm (torch.nn.SyncBatchNorm.convert_sync_batchnorm): every batch-norm layer
// of a model normalises its training batches with the mean and variance of all ranks' batches
// together, and its gradient accounts for every rank's, so N ranks × batch B train as one process
// with batch N·B would. The arithmetic is the addon's (an autograd function whose forward and
// backward passes each all-reduce per-channel sums); evaluation uses the running statistics as
// before. Costs two small allreduces per layer and step.
import { Module, BatchNorm1d, BatchNorm2d } from '../nn/index.js';
import type { ProcessGroup } from './process-group.js';

/** Makes every BatchNorm1d/2d of `model` synchronise its training statistics over `group`; returns how many. */
export function convertSyncBatchNorm(model: Module, group: ProcessGroup): number {
  let n = 0;
  for (const m of model.modules()) {
    if (m instanceof BatchNorm1d || m instanceof BatchNorm2d) {
      m.sync = (x, weight, bias, mean, variance, momentum, eps) => group.syncBatchNorm(x, weight, bias, mean, variance, momentum, eps);
      n++;
    }
  }
  return n;
}

/** Undoes convertSyncBatchNorm: each layer's own batch statistics again. */
export function revertSyncBatchNorm(model: Module): void {
  for (const m of model.modules()) if (m instanceof BatchNorm1d || m instanceof BatchNorm2d) m.sync = null;
}
