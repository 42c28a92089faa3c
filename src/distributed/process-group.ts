// A process group over PyTorch's c10d (torch.distributed's init_process_group): the rendezvous at
// MASTER_ADDR:MASTER_PORT (rank 0 serves a TCPStore), Gloo's collectives on CPU tensors, and when
// a collective fails, the rank that was lost named in one line.
import { CollectiveGroup, collectivesAvailable, TorchError, type ReduceOp, type Tensor } from '../torch/index.js';

import { DEFAULT_MASTER_ADDR, DEFAULT_MASTER_PORT, DEFAULT_DIST_TIMEOUT_S } from './defaults.js';

/** How often each rank's heartbeat counts up in the store; a lost rank is one whose count stood still for 3 beats. */
const HEARTBEAT_MS = 500;

export type Backend = 'gloo' | 'nccl';

export interface ProcessGroupOptions {
  /** 'gloo' (CPU, the default) or 'nccl' (CUDA; needs a libtorch built with it). */
  backend?: Backend;
  rank?: number;
  worldSize?: number;
  /** This rank's index on its machine. */
  localRank?: number;
  /** The address of rank 0's machine (MASTER_ADDR; default 127.0.0.1). */
  masterAddr?: string;
  /** The port rank 0 serves the rendezvous on (MASTER_PORT; default 29500). */
  masterPort?: number;
  /** Seconds a rendezvous or collective may wait. Default DEFAULT_DIST_TIMEOUT_S. */
  timeoutS?: number;
  /** The network interface Gloo uses between machines (GLOO_SOCKET_IFNAME); default the one this host's name resolves to. */
  iface?: string;
}

/** A collective failed: a rank was lost (`lost`), the timeout passed, or the rendezvous failed. The message is one line. */
export class DistributedError extends Error {
  constructor(message: string, readonly lost: readonly number[] = []) {
    super(message);
    this.name = 'DistributedError';
  }
}

/** What torchrun (and `visiontune train --nproc`) tells each process, or null when the variables are not all set. */
export function distEnv(env: NodeJS.ProcessEnv = process.env): Required<Omit<ProcessGroupOptions, 'backend' | 'timeoutS' | 'iface'>> | null {
  const { RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT } = env;
  if (RANK === undefined || WORLD_SIZE === undefined) return null;
  return {
    rank: Number(RANK), worldSize: Number(WORLD_SIZE), localRank: Number(LOCAL_RANK ?? RANK),
    masterAddr: MASTER_ADDR ?? DEFAULT_MASTER_ADDR, masterPort: Number(MASTER_PORT ?? DEFAULT_MASTER_PORT),
  };
}

/**
 * Joins (with rank 0: serves) the process group, as torch.distributed.init_process_group: what
 * is not given comes from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
 * MASTER_PORT, GLOO_SOCKET_IFNAME). Blocks until every rank has joined. Throws a RangeError for
 * a missing or impossible rank/world size, a DistributedError when the backend is missing or
 * the rendezvous fails (a port taken, a rank that never came within the timeout).
 */
export function initProcessGroup(o: ProcessGroupOptions = {}): ProcessGroup {
  const env = distEnv();
  const rank = o.rank ?? env?.rank;
  const worldSize = o.worldSize ?? env?.worldSize;
  if (rank === undefined || worldSize === undefined) {
    throw new RangeError('initProcessGroup: give rank and worldSize, or set RANK and WORLD_SIZE (as torchrun and visiontune train --nproc do)');
  }
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new RangeError(`initProcessGroup: the world size must be a whole number ≥ 1, got ${worldSize}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new RangeError(`initProcessGroup: rank ${rank} is not one of 0…${worldSize - 1}`);
  const backend = o.backend ?? 'gloo';
  if (backend === 'nccl') {
    throw new DistributedError('the nccl backend needs a CUDA libtorch built with NCCL; this build has Gloo only: use backend gloo');
  }
  if (!collectivesAvailable()) {
    throw new DistributedError('this build of visiontune has no c10d/Gloo: install libgloo-dev (Debian/Ubuntu) and run scripts/setup.sh again');
  }
  const masterAddr = o.masterAddr ?? env?.masterAddr ?? DEFAULT_MASTER_ADDR;
  const masterPort = o.masterPort ?? env?.masterPort ?? DEFAULT_MASTER_PORT;
  const timeoutS = o.timeoutS ?? DEFAULT_DIST_TIMEOUT_S;
  try {
    const group = new CollectiveGroup({
      rank, worldSize, host: masterAddr, port: masterPort, timeoutMs: Math.round(timeoutS * 1000), heartbeatMs: HEARTBEAT_MS,
      iface: o.iface ?? process.env.GLOO_SOCKET_IFNAME,
    });
    return new ProcessGroup(group, rank, worldSize, o.localRank ?? env?.localRank ?? rank, timeoutS);
  } catch (e) {
    throw new DistributedError(`rank ${rank}: could not join the process group at ${masterAddr}:${masterPort} within ${timeoutS} s ` +
      `(${firstLine(e)}); check that every rank started, with the same --master-addr and --master-port, and that the port is free`);
  }
}

/** A joined process group (torch.distributed's default group): its rank, its size and its collectives. */
export class ProcessGroup {
  #closed = false;

  constructor(readonly group: CollectiveGroup, readonly rank: number, readonly worldSize: number, readonly localRank: number, readonly timeoutS: number) {}

  /**
   * Reduces each tensor over the ranks in place: 'sum', 'max', 'min', 'product', or 'avg' (the
   * sum divided by the world size, as Gloo has no average). CPU tensors, contiguous. Throws a
   * DistributedError naming the lost rank when a peer died, or after the timeout.
   */
  allreduce(tensors: readonly Tensor[], op: ReduceOp | 'avg' = 'sum'): void {
    this.#run('allreduce', () => this.group.allreduce(tensors, op === 'avg' ? 'sum' : op));
    if (op === 'avg') for (const t of tensors) t.div_(this.worldSize);
  }

  /** Sets each tensor, in place, to rank `root`'s. Throws as allreduce. */
  broadcast(tensors: readonly Tensor[], root = 0): void { this.#run('broadcast', () => this.group.broadcast(tensors, root)); }

  /** Returns every rank's `t` (the same shape on each), in rank order; the caller disposes them. Throws as allreduce. */
  allgather(t: Tensor): Tensor[] { return this.#run('allgather', () => this.group.allgather(t)); }

  /** Returns once every rank called it. Throws as allreduce. */
  barrier(): void { this.#run('barrier', () => this.group.barrier()); }

  /** SyncBatchNorm's training-mode normalisation over every rank's batch (see CollectiveGroup.syncBatchNorm). Throws as allreduce. */
  syncBatchNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, runningMean: Tensor | null, runningVar: Tensor | null, momentum: number, eps: number): Tensor {
    return this.#run('syncBatchNorm', () => this.group.syncBatchNorm(x, weight, bias, runningMean, runningVar, momentum, eps));
  }

  /**
   * Returns the error a failed collective `op` (one run outside these methods: SyncBatchNorm's
   * in the backward pass) becomes: a DistributedError naming the rank that was lost, found from
   * the heartbeats; other errors come back unchanged.
   */
  explain(op: string, e: unknown): unknown {
    if (!(e instanceof TorchError) || e instanceof DistributedError) return e;
    const lost = this.group.lostRanks(3 * HEARTBEAT_MS);
    const who = lost.length === 0 ? `no rank answered in ${this.timeoutS} s or a rank failed` : `lost rank ${lost.join(', ')}`;
    return new DistributedError(`rank ${this.rank}: ${op} failed: ${who} (${firstLine(e)})`, lost);
  }

  /** Leaves the group (torch.distributed.destroy_process_group). Rank 0 serves the store: it should leave last. */
  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.group.shutdown();
  }

  #run<T>(op: string, fn: () => T): T {
    if (this.#closed) throw new DistributedError(`rank ${this.rank}: ${op} after the process group was destroyed`);
    try {
      return fn();
    } catch (e) {
      throw this.explain(op, e);
    }
  }
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0].replace(/^\S+: /, '').trim();
}
