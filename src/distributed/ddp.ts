// Data-parallel training as PyTorch's DistributedDataParallel does it, as a learner callback: the
// parameters and buffers broadcast from rank 0 when a fit starts, the buffers (batch-norm
// statistics) again before each training batch and each validation (DDP's broadcast_buffers, at
// every forward pass in train and eval mode), the gradients
// averaged over the ranks in ~25 MB buckets after each backward pass (DDP's bucket_cap_mb,
// filled in reverse parameter order as DDP's reducer does). Beside DDP: the training loss each
// rank records is the ranks' mean (so every rank's smoothed loss, divergence check and lr_find
// agree), a stop any rank asks for (Ctrl-C) happens on all after the same batch, and the
// validation loss and metrics are summed over the ranks' shards (as a DistributedSampler with
// all_reduce of the metric sums).
import { tidy, cat, noGrad, tensor, type Tensor } from '../torch/index.js';
import type { Callback } from '../learner/events.js';
import type { Learner } from '../learner/learner.js';
import type { ProcessGroup } from './process-group.js';

/** DDP's default bucket size (bucket_cap_mb). */
export const DEFAULT_BUCKET_CAP_MB = 25;

export interface DdpOptions {
  /** Gradient bucket size in MiB. Default DEFAULT_BUCKET_CAP_MB. */
  bucketCapMb?: number;
  /** Broadcast rank 0's buffers (batch-norm running statistics) before every training batch, as DDP's broadcast_buffers. Default true. */
  broadcastBuffers?: boolean;
  /** Called on every rank, once, when some rank has asked to stop (see requestStop), after the batch all ranks ended together. */
  onStop?: () => void;
}

/**
 * Splits tensors into consecutive buckets of at most `capBytes` (a tensor larger than the cap is
 * a bucket of its own), in the order given. Returns the index lists.
 */
export function bucketsOf(tensors: readonly Tensor[], capBytes: number): number[][] {
  const buckets: number[][] = [];
  let bytes = 0;
  tensors.forEach((t, i) => {
    const size = t.numel() * 4;
    if (buckets.length === 0 || bytes + size > capBytes) {
      buckets.push([]);
      bytes = 0;
    }
    buckets[buckets.length - 1].push(i);
    bytes += size;
  });
  return buckets;
}

/**
 * Runs `op` on the tensors flattened into buckets of `capBytes` (one contiguous float32 copy
 * each), then copies the results back into the tensors, in place. What DDP's reducer does with
 * its buckets; here for gradients (allreduce) and for parameters and buffers (broadcast).
 */
export function bucketed(tensors: readonly Tensor[], capBytes: number, op: (flat: Tensor) => void): void {
  for (const bucket of bucketsOf(tensors, capBytes)) {
    noGrad(() => tidy(() => {
      const members = bucket.map((i) => tensors[i]);
      const flat = cat(members.map((t) => t.float().reshape(-1)));
      op(flat);
      let at = 0;
      for (const t of members) {
        const n = t.numel();
        t.copy_(flat.narrow(0, at, n).view(...t.shape));
        at += n;
      }
    }));
  }
}

// The model's float buffers (batch-norm running statistics; num_batches_tracked, int64, stays each rank's count, equal on all).
const floatBuffers = (learn: Learner): Tensor[] => learn.model.namedBuffers().map(([, b]) => b).filter((b) => b.dtype === 'float32');

/** PyTorch's DistributedDataParallel as a callback: add it to a learner on every rank (see the file's head). */
export class DistributedDataParallel implements Callback {
  /** After the recorder (whose validation sums it completes), before the divergence check and the trackers that read them. */
  readonly order = -95;
  readonly capBytes: number;
  #stopAsked = false;
  #stopAgreed = false;

  constructor(readonly group: ProcessGroup, readonly o: DdpOptions = {}) {
    this.capBytes = (o.bucketCapMb ?? DEFAULT_BUCKET_CAP_MB) * 2 ** 20;
  }

  /** Asks every rank to stop after the current training batch (this rank's Ctrl-C); onStop runs on each. */
  requestStop(): void { this.#stopAsked = true; }

  /** Whether the ranks agreed to stop. */
  get stopping(): boolean { return this.#stopAgreed; }

  /** Makes every rank start from rank 0's weights and buffers, as DDP's constructor does. */
  beforeFit(learn: Learner): void {
    bucketed([...learn.model.parameters(), ...floatBuffers(learn)], this.capBytes, (flat) => this.group.broadcast([flat], 0));
  }

  beforeBatch(learn: Learner): void {
    if (learn.training) this.#syncBuffers(learn);
  }

  /** Every rank validates with rank 0's buffers: those of the model rank 0 saves, so the table's figures are that model's. */
  beforeValidate(learn: Learner): void { this.#syncBuffers(learn); }

  #syncBuffers(learn: Learner): void {
    if (this.o.broadcastBuffers === false) return;
    const buffers = floatBuffers(learn);
    if (buffers.length) bucketed(buffers, this.capBytes, (flat) => this.group.broadcast([flat], 0));
  }

  /** The training loss recorded becomes the ranks' mean; any rank's stop request joins the same allreduce. */
  afterLoss(learn: Learner): void {
    if (!learn.training) return;
    const both = tensor([learn.lossValue, this.#stopAsked ? 1 : 0], { dtype: 'float64' });
    try {
      this.group.allreduce([both], 'sum');
      const [loss, stops] = both.toArray();
      learn.lossValue = loss / this.group.worldSize;
      if (stops > 0) this.#stopAgreed = true;
    } finally {
      both.dispose();
    }
  }

  /** Averages the gradients over the ranks, in buckets filled from the last parameter to the first. */
  afterBackward(learn: Learner): void {
    const grads = learn.model.parameters().map((p) => p.grad).filter((g): g is Tensor => g !== null).reverse();
    bucketed(grads, this.capBytes, (flat) => this.group.allreduce([flat], 'avg'));
    for (const g of grads) g.dispose();
  }

  afterBatch(learn: Learner): void {
    if (!this.#stopAgreed || !learn.training) return;
    const onStop = this.o.onStop;
    if (onStop) {
      this.o.onStop = undefined;
      onStop();
    }
  }

  /** The validation loss and metrics over every rank's shard: item-weighted sums, all-reduced. */
  afterValidate(learn: Learner): void {
    const rec = learn.recorder;
    const names = Object.keys(rec.valid.metrics);
    const n = rec.validItems;
    const weighted = (v: number): number => (n > 0 ? v * n : 0);
    const sums = tensor([weighted(rec.valid.loss), ...names.map((k) => weighted(rec.valid.metrics[k])), n], { dtype: 'float64' });
    try {
      this.group.allreduce([sums], 'sum');
      const v = sums.toArray();
      const total = v[v.length - 1];
      rec.validItems = total;
      rec.valid = { loss: v[0] / total, metrics: Object.fromEntries(names.map((k, i) => [k, v[i + 1] / total])) };
    } finally {
      sums.dispose();
    }
  }
}
