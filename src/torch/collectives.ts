// The addon's c10d process group (a TCPStore rendezvous and Gloo collectives) on Tensors. The
// group's logic — reading torchrun's variables, naming a lost rank, averaging gradients — is in
// src/distributed/.
import { native, type NativeProcessGroup, type NativeProcessGroupOptions } from './native.js';
import { Tensor } from './tensor.js';
import { asTorchError } from './errors.js';

export type ReduceOp = 'sum' | 'max' | 'min' | 'product';
export type { NativeProcessGroupOptions as CollectiveGroupOptions } from './native.js';

/** Whether this addon was built with c10d and Gloo (Debian's libtorch-dev with libgloo-dev, or a libtorch folder with Gloo's headers). */
export function collectivesAvailable(): boolean { return native.distributedAvailable() && native.ProcessGroup !== undefined; }

/**
 * One rank's membership of a Gloo process group: c10d::TCPStore (served by rank 0, which waits
 * up to the timeout for every rank) and c10d::ProcessGroupGloo. Every collective blocks until
 * done and throws a TorchError when a peer fails or `timeoutMs` passes; tensors must be CPU
 * and contiguous. Throws a TorchError when the rendezvous fails (port taken, a rank missing).
 */
export class CollectiveGroup {
  readonly #g: NativeProcessGroup;

  constructor(readonly o: NativeProcessGroupOptions) {
    if (!collectivesAvailable()) throw new Error('this build of visiontune has no c10d/Gloo: install libgloo-dev and rebuild (scripts/setup.sh)');
    try {
      this.#g = new native.ProcessGroup!(o);
    } catch (e) {
      throw asTorchError('rendezvous', e);
    }
  }

  /** Reduces each tensor over the ranks, in place (c10d allreduce). */
  allreduce(tensors: readonly Tensor[], op: ReduceOp = 'sum'): void {
    this.#call('allreduce', () => this.#g.allreduce(tensors.map((t) => t.handle), op));
  }

  /** Sets each tensor to the root rank's, in place (c10d broadcast). */
  broadcast(tensors: readonly Tensor[], root = 0): void {
    this.#call('broadcast', () => this.#g.broadcast(tensors.map((t) => t.handle), root));
  }

  /** Returns every rank's copy of `t` (same shape on each rank), in rank order (c10d allgather). */
  allgather(t: Tensor): Tensor[] {
    return this.#call('allgather', () => this.#g.allgather(t.handle).map((h) => new Tensor(h)));
  }

  /** Returns once every rank has called it. */
  barrier(): void { this.#call('barrier', () => this.#g.barrier()); }

  /**
   * Training-mode batch norm of x [N, C, …] with the statistics of every rank's batch (PyTorch's
   * SyncBatchNorm): per-channel sums all-reduced in the forward pass, the gradient's in the
   * backward pass; the running statistics (float32, updated in place with `momentum`, the
   * variance unbiased over all ranks' values) when given. Returns y in x's dtype.
   */
  syncBatchNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, runningMean: Tensor | null, runningVar: Tensor | null, momentum: number, eps: number): Tensor {
    return this.#call('syncBatchNorm', () => new Tensor(this.#g.syncBatchNorm(x.handle, weight?.handle ?? null, bias?.handle ?? null,
      runningMean?.handle ?? null, runningVar?.handle ?? null, momentum, eps)));
  }

  /** The other ranks whose heartbeat in the store stood still for `waitMs` ([0] when the store, rank 0's, is gone). */
  lostRanks(waitMs: number): number[] { return this.#g.lostRanks(waitMs); }

  /** Leaves the group: stops the heartbeat, closes the sockets (the store's server with rank 0). */
  shutdown(): void { this.#g.shutdown(); }

  #call<T>(op: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw asTorchError(op, e);
    }
  }
}
