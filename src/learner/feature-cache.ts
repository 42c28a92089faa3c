// The frozen phase made cheap: while the body is frozen and in eval mode, its output for an item
// does not change between epochs when the item's input does not (no augmentation, no random crop),
// so it is computed once and kept; later frozen epochs run the head alone. Keras's
// "feature extraction" recipe (run the base model once, train the classifier on its features),
// done lazily inside fit so the loop, its callbacks and its table stay as they are.
import { keep, noGrad, stack, tensor, type Tensor, type Device } from '../torch/index.js';
import type { Module } from '../nn/index.js';
import type { Callback } from './events.js';
import type { Learner } from './learner.js';
import type { Loader } from './types.js';

/** A model the cache can split: its body's output is its head's input (VisionClassifier). */
export interface BodyHead {
  body: Module;
  head: Module;
}

/** Whether `model` has a body and a head module the cache can split it into. */
export function hasBodyAndHead(model: Module): model is Module & BodyHead {
  const m = model as Partial<BodyHead>;
  return typeof m.body?.forward === 'function' && typeof m.head?.forward === 'function';
}

/**
 * For one fit, replaces the model's forward pass with head(cached body(x)): the body runs without
 * a graph for the batch's items that have no features yet, and their features are kept, per loader
 * and item (Batch.items); a batch whose items all have them skips the body. Only loaders that say
 * they are `deterministic` are cached. Use it only while every body parameter is frozen and the
 * body is in eval mode (fitPlan adds it to frozen fits with freezeBn): then the head's inputs,
 * and so its gradients, are those of the uncached path. The features stay on the model's device
 * until the fit ends (efficientnet_v2_s at 224 px: 1,280 × 7 × 7 floats, 251 KB an image).
 */
export class FeatureCache implements Callback {
  /** Batches that skipped the body, and batches that ran it (for their items not seen before). */
  hits = 0;
  misses = 0;
  #store = new Map<Loader, Map<number, Tensor>>();

  constructor(readonly model: BodyHead) {}

  beforeFit(learn: Learner): void {
    learn.predictor = (x) => this.#forward(learn, x);
  }

  afterFit(learn: Learner): void {
    learn.predictor = null;
    for (const rows of this.#store.values()) for (const t of rows.values()) t.dispose();
    this.#store.clear();
  }

  #forward(learn: Learner, x: Tensor): Tensor {
    const { body, head } = this.model;
    const items = learn.batchItems;
    const dl = learn.dl;
    if (!items || !dl?.deterministic) return head.forward(body.forward(x));
    let rows = this.#store.get(dl);
    if (!rows) this.#store.set(dl, (rows = new Map()));
    // The body runs only for the batch's items it has not seen (a shuffled epoch after a first
    // that dropped its last partial batch mixes a few new ones into most batches); in eval mode an
    // item's features do not depend on its batch.
    const missing = items.flatMap((item, j) => (rows!.has(item) ? [] : [j]));
    if (missing.length === 0) {
      this.hits++;
    } else {
      this.misses++;
      const part = missing.length === items.length ? x : x.indexSelect(0, tensor(missing, { dtype: 'int64', device: x.device as Device }));
      const features = noGrad(() => body.forward(part));
      missing.forEach((j, k) => rows!.set(items[j], keep(features.select(0, k).clone())));
    }
    return head.forward(stack(items.map((i) => rows!.get(i)!)));
  }
}
