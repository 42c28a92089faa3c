// The network a learner trains: a pretrained body cut from a zoo model, and fastai's head.
import { F, cat, type Tensor } from '../torch/index.js';
import {
  Module, Sequential, BatchNorm1d, Dropout, Linear, ReLU, Flatten, AdaptiveAvgPool2d, init,
} from '../nn/index.js';
import type { Backbone } from '../models/blocks.js';

/** Max and average pooling to 1×1, concatenated on channels (max first): 2·C features. */
export class AdaptiveConcatPool2d extends Module {
  forward(x: Tensor): Tensor {
    return cat([F.adaptiveMaxPool2d(x, 1), F.adaptiveAvgPool2d(x, 1)], 1);
  }
}

/** A zoo model's body: its feature modules under their own names, without the classifier. */
export class Body extends Module {
  /** Module names per parameter group, as the backbone splits them. */
  readonly groups: string[][];

  constructor(readonly backbone: Backbone) {
    super();
    const groups = backbone.bodyGroups();
    this.groups = groups.map((g) => g.map(([name]) => name));
    for (const [name, m] of groups.flat()) this.registerModule(name, m);
    // The backbone's own classifier is replaced: its weights are freed now, not whenever the
    // collector runs (5 MB a model for mobilenet_v2, 8 MB for efficientnet_v2_s).
    const kept = new Set(groups.flat().flatMap(([, m]) => [...m.parameters(), ...m.buffers()]));
    for (const t of [...backbone.parameters(), ...backbone.buffers()]) if (!kept.has(t)) t.dispose();
  }

  forward(x: Tensor): Tensor { return this.backbone.forwardFeatures(x); }
}

export interface HeadOptions {
  /** Dropout of the last layer; earlier ones get half. fastai's default 0.5. */
  ps?: number;
  /** Hidden widths between pooling and the output. Default [512]. */
  linFtrs?: number[];
  concatPool?: boolean;
  /** Batch norm before the first linear layer. Default true. */
  firstBn?: boolean;
  /** Batch norm after the last linear layer. Default false. */
  bnFinal?: boolean;
}

export const HEAD_DEFAULTS: Required<HeadOptions> = { ps: 0.5, linFtrs: [512], concatPool: true, firstBn: true, bnFinal: false };

/**
 * Returns fastai's classifier head for `nf` body channels: pool → flatten → per layer (BN,
 * dropout, linear without bias after a BN, ReLU but for the last) → optional final BN, initialised
 * as fastai does (Kaiming-normal linear weights, BN weight 1 and bias 1e-3).
 */
export function createHead(nf: number, nOut: number, o: HeadOptions = {}): Sequential {
  const { ps, linFtrs, concatPool, firstBn, bnFinal } = { ...HEAD_DEFAULTS, ...o };
  const widths = [concatPool ? 2 * nf : nf, ...linFtrs, nOut];
  const layers: Module[] = [concatPool ? new AdaptiveConcatPool2d() : new AdaptiveAvgPool2d(1), new Flatten()];
  for (let i = 0; i < widths.length - 1; i++) {
    const last = i === widths.length - 2;
    const bn = i === 0 ? firstBn : true;
    if (bn) layers.push(new BatchNorm1d(widths[i]));
    const p = last ? ps : ps / 2;
    if (p > 0) layers.push(new Dropout(p));
    layers.push(new Linear(widths[i], widths[i + 1], { bias: !bn }));
    if (!last) layers.push(new ReLU(true));
  }
  if (bnFinal) layers.push(new BatchNorm1d(nOut, { momentum: 0.01 }));
  const head = new Sequential(...layers);
  for (const m of head.modules()) {
    if (m instanceof Linear) {
      init.kaimingNormal_(m.getTensor('weight')!);
      const bias = m.getTensor('bias');
      if (bias) init.zeros_(bias);
    } else if (m instanceof BatchNorm1d) {
      init.ones_(m.getTensor('weight')!);
      init.constant_(m.getTensor('bias')!, 1e-3);
    }
  }
  return head;
}

/** body → head, with parameter groups for discriminative learning rates (body groups, then the head). */
export class VisionClassifier extends Module {
  readonly body: Body;
  readonly head: Sequential;

  constructor(backbone: Backbone, nOut: number, head: HeadOptions = {}) {
    super();
    this.body = this.registerModule('body', new Body(backbone));
    this.head = this.registerModule('head', createHead(backbone.numFeatures, nOut, head));
  }

  forward(x: Tensor): Tensor { return this.head.forward(this.body.forward(x)); }

  /** The modules of each parameter group: body groups first, the head last. */
  groupModules(): Module[][] {
    return [...this.body.groups.map((names) => names.map((n) => this.body.getSubmodule(n))), [this.head]];
  }
}
