// Batches from tensors already in memory: for tests, examples and cached features.
import { randperm, arange, manualSeed, tensor, type Tensor } from '../torch/index.js';
import type { Batch, Loader } from './learner.js';
import type { OrderShard } from '../data/loader.js';

export interface TensorLoaderOptions {
  bs?: number;
  shuffle?: boolean;
  dropLast?: boolean;
  /** Seeds libtorch's generator before each epoch's shuffle, so epochs repeat run to run. */
  seed?: number;
}

/** Iterates over (x[i], y[i]) in batches; each batch's tensors belong to the consumer. */
export class TensorLoader implements Loader {
  readonly bs: number;
  /** This process's part of each epoch (distributed training), or null for all of it. */
  shard: OrderShard | null = null;
  /** Its items give the same input every epoch (no augmentation). */
  readonly deterministic = true;
  #epoch = 0;
  #startBatch = 0;

  constructor(readonly x: Tensor, readonly y: Tensor, readonly o: TensorLoaderOptions = {}) {
    this.bs = o.bs ?? 64;
  }

  get length(): number {
    const n = this.shard ? this.shard.count(this.y.size(0)) : this.y.size(0);
    return this.o.dropLast ? Math.floor(n / this.bs) : Math.ceil(n / this.bs);
  }

  /** Epochs iterated so far. */
  get epochsStarted(): number { return this.#epoch; }

  /** Makes the next iteration run epoch `epoch` from batch `batch` on (a resumed fit). */
  resumeAt(epoch: number, batch = 0): void {
    this.#epoch = epoch;
    this.#startBatch = batch;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    if (this.o.seed !== undefined) manualSeed(this.o.seed + this.#epoch);
    this.#epoch++;
    const from = this.#startBatch;
    this.#startBatch = 0;
    let order = this.o.shuffle ? randperm(this.y.size(0)) : arange(this.y.size(0));
    if (this.shard) {
      const mine = this.shard.take(order.toArray());
      order.dispose();
      order = tensor(BigInt64Array.from(mine, BigInt), { shape: [mine.length] });
    }
    const n = order.size(0);
    try {
      for (let i = from; i < this.length; i++) {
        const idx = order.narrow(0, i * this.bs, Math.min(this.bs, n - i * this.bs));
        yield { x: this.x.indexSelect(0, idx), y: this.y.indexSelect(0, idx), items: Array.from(idx.toArray() as ArrayLike<number | bigint>, Number) };
        idx.dispose();
      }
    } finally {
      order.dispose();
    }
  }
}
