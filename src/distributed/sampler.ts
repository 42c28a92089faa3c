// torch.utils.data.DistributedSampler's sharding for visiontune's loaders (their `shard`): every
// rank draws the same epoch order from the shared seed and takes every worldSize-th item from its
// rank on. For training the order is first padded with its own first items to a multiple of the
// world size, so every rank has as many batches (a rank with fewer would wait in a collective
// for ever); for validation it is not padded, so the ranks' metric sums add up to exactly the
// whole set's.

export interface DistributedSamplerOptions {
  /** Pad to equal shards (training). Default true. */
  pad?: boolean;
}

/**
 * Rank `rank`'s shard of each epoch's order, with `worldSize` ranks. With the same seed, rank
 * r's k-th batch of B items is the items k·B·W + r, + W, … of the order: the W ranks' k-th
 * batches together are the k-th batch of B·W items one process would take. Throws a RangeError
 * for an impossible rank or world size.
 */
export class DistributedSampler {
  readonly pad: boolean;
  /** Each rank augments its batches from its own seeds; rank 0 as a single process would. */
  readonly seedSalt: number;

  constructor(readonly rank: number, readonly worldSize: number, o: DistributedSamplerOptions = {}) {
    if (!Number.isInteger(worldSize) || worldSize < 1) throw new RangeError(`DistributedSampler: world size ${worldSize} is not a whole number ≥ 1`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new RangeError(`DistributedSampler: rank ${rank} is not one of 0…${worldSize - 1}`);
    this.pad = o.pad ?? true;
    this.seedSalt = Math.imul(rank, 0x9e3779b1) >>> 0;
  }

  /** How many of n items this rank takes. */
  count(n: number): number {
    const w = this.worldSize;
    return this.pad ? Math.ceil(n / w) : Math.floor(n / w) + (this.rank < n % w ? 1 : 0);
  }

  /** This rank's items of `order`. */
  take(order: readonly number[]): number[] {
    const w = this.worldSize;
    let all = order;
    if (this.pad && order.length % w !== 0 && order.length > 0) {
      const total = Math.ceil(order.length / w) * w;
      all = Array.from({ length: total }, (_, i) => order[i % order.length]);
    }
    return all.filter((_, i) => i % w === this.rank);
  }
}
