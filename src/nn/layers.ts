// The layers the model zoo is built from, with torch.nn's names, defaults and initialisation.
import { F, empty, zeros, ones, tensor, noGrad, type Tensor } from '../torch/index.js';
import { callInPlace } from '../torch/dispatch.js';
import { TorchError } from '../torch/errors.js';
import { Module } from './module.js';
import { kaimingUniform_, uniform_, computeFans } from './init.js';

type Pair = number | [number, number];

// nn.Conv2d and nn.Linear's reset_parameters: Kaiming-uniform with a = √5, bias U(±1/√fan_in).
function resetAffine(weight: Tensor, bias: Tensor | null): void {
  kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias) {
    const [fanIn] = computeFans(weight);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, -bound, bound);
  }
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly options: Required<Omit<Conv2dOptions, 'bias'>>;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: Pair, o: Conv2dOptions = {}) {
    super();
    const groups = o.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new TorchError('Conv2d', `in_channels ${inChannels} and out_channels ${outChannels} must be divisible by groups ${groups}`, 'value');
    }
    const [kh, kw] = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    this.options = { stride: o.stride ?? 1, padding: o.padding ?? 0, dilation: o.dilation ?? 1, groups };
    this.weight = this.registerParameter('weight', empty([outChannels, inChannels / groups, kh, kw]));
    this.bias = this.registerParameter('bias', o.bias === false ? null : empty([outChannels]));
    resetAffine(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.getTensor('weight')!, this.getTensor('bias'), this.options);
  }
}

export class Linear extends Module {
  constructor(readonly inFeatures: number, readonly outFeatures: number, { bias = true } = {}) {
    super();
    const weight = this.registerParameter('weight', empty([outFeatures, inFeatures]));
    const b = this.registerParameter('bias', bias ? empty([outFeatures]) : null);
    resetAffine(weight, b);
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.getTensor('weight')!, this.getTensor('bias'));
  }
}

export interface BatchNormOptions {
  eps?: number;
  /** Running-statistics factor; null for a cumulative average, as in PyTorch. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/**
 * Normalises a training batch with statistics over more than this process's batch: x, the
 * weight and bias, the running mean and variance (updated in place), the momentum and eps; see
 * src/distributed/sync-batch-norm.ts (PyTorch's SyncBatchNorm).
 */
export type BatchNormSync = (x: Tensor, weight: Tensor | null, bias: Tensor | null, runningMean: Tensor | null, runningVar: Tensor | null,
  momentum: number, eps: number) => Tensor;

abstract class BatchNorm extends Module {
  readonly eps: number;
  /** When set, training batches are normalised by it (SyncBatchNorm's statistics over every rank); evaluation is unchanged. */
  sync: BatchNormSync | null = null;
  readonly momentum: number | null;
  readonly trackRunningStats: boolean;

  constructor(readonly numFeatures: number, o: BatchNormOptions, private readonly expectedDims: number[]) {
    super();
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum === undefined ? 0.1 : o.momentum;
    this.trackRunningStats = o.trackRunningStats ?? true;
    const affine = o.affine ?? true;
    this.registerParameter('weight', affine ? ones([numFeatures]) : null);
    this.registerParameter('bias', affine ? zeros([numFeatures]) : null);
    this.registerBuffer('running_mean', this.trackRunningStats ? zeros([numFeatures]) : null);
    this.registerBuffer('running_var', this.trackRunningStats ? ones([numFeatures]) : null);
    this.registerBuffer('num_batches_tracked', this.trackRunningStats ? tensor([0], { dtype: 'int64', shape: [] }) : null);
  }

  forward(x: Tensor): Tensor {
    if (!this.expectedDims.includes(x.ndim)) {
      throw new TorchError(this.constructor.name, `expected ${this.expectedDims.join(' or ')}D input (got ${x.ndim}D input)`, 'value');
    }
    let factor = this.momentum ?? 0;
    const tracked = this.getTensor('num_batches_tracked');
    if (this.training && tracked) {
      noGrad(() => callInPlace('aten::add_.Scalar', [tracked.handle, 1]));
      if (this.momentum === null) factor = 1 / tracked.item();
    }
    if (this.training && this.sync) {
      return this.sync(x, this.getTensor('weight'), this.getTensor('bias'), this.getTensor('running_mean'), this.getTensor('running_var'), factor, this.eps);
    }
    // Batch statistics when training, or when there are no running ones to use.
    const useBatchStats = this.training || !tracked;
    const stats = this.training && !tracked ? [null, null] : [this.getTensor('running_mean'), this.getTensor('running_var')];
    return F.batchNorm(x, stats[0], stats[1], this.getTensor('weight'), this.getTensor('bias'), useBatchStats, factor, this.eps);
  }
}

export class BatchNorm1d extends BatchNorm {
  constructor(numFeatures: number, o: BatchNormOptions = {}) { super(numFeatures, o, [2, 3]); }
}

export class BatchNorm2d extends BatchNorm {
  constructor(numFeatures: number, o: BatchNormOptions = {}) { super(numFeatures, o, [4]); }
}

export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  constructor(normalizedShape: number | number[], readonly eps = 1e-5, elementwiseAffine = true) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    this.registerParameter('weight', elementwiseAffine ? ones(this.normalizedShape) : null);
    this.registerParameter('bias', elementwiseAffine ? zeros(this.normalizedShape) : null);
  }

  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, this.getTensor('weight'), this.getTensor('bias'), this.eps);
  }
}

export class Dropout extends Module {
  constructor(public p = 0.5) {
    super();
    if (p < 0 || p > 1) throw new TorchError('Dropout', `probability has to be between 0 and 1, but got ${p}`, 'value');
  }
  forward(x: Tensor): Tensor { return F.dropout(x, this.p, this.training); }
}

/**
 * Drops whole residual branches (torchvision.ops.StochasticDepth): per sample ('row') or for the
 * whole batch ('batch'), with probability p when training; survivors are scaled by 1/(1-p).
 */
export class StochasticDepth extends Module {
  constructor(public p: number, readonly mode: 'row' | 'batch' = 'row') {
    super();
    if (p < 0 || p > 1) throw new TorchError('StochasticDepth', `drop probability has to be between 0 and 1, but got ${p}`, 'value');
  }

  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    const survival = 1 - this.p;
    const shape = this.mode === 'row' ? [x.size(0), ...Array(x.ndim - 1).fill(1)] : Array(x.ndim).fill(1);
    const noise = empty(shape, { dtype: x.dtype, device: x.device as 'cpu' });
    callInPlace('aten::bernoulli_.float', [noise.handle, survival]);
    if (survival > 0) noise.div_(survival);
    const out = x.mul(noise);
    noise.dispose();
    return out;
  }
}

export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Pair) { super(); }
  forward(x: Tensor): Tensor { return F.adaptiveAvgPool2d(x, this.outputSize); }
}

export class AdaptiveMaxPool2d extends Module {
  constructor(readonly outputSize: Pair) { super(); }
  forward(x: Tensor): Tensor { return F.adaptiveMaxPool2d(x, this.outputSize); }
}

export class MaxPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly options: F.Pool2dOptions & { dilation?: Pair } = {}) { super(); }
  forward(x: Tensor): Tensor { return F.maxPool2d(x, this.kernelSize, this.options); }
}

export class AvgPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly options: F.Pool2dOptions & { countIncludePad?: boolean } = {}) { super(); }
  forward(x: Tensor): Tensor { return F.avgPool2d(x, this.kernelSize, this.options); }
}

export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) { super(); }
  forward(x: Tensor): Tensor { return x.flatten(this.startDim, this.endDim); }
}

/** Passes its input through unchanged. */
export class Identity extends Module {
  forward(x: Tensor): Tensor { return x; }
}
