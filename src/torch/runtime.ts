// Threads, seeds, CUDA presence and live-memory counters.
import os from 'node:os';
import { native, type MemoryInfo, type CpuCacheStats } from './native.js';
import { asTorchError } from './errors.js';
import type { Device } from './dtype.js';

/** Sets libtorch's intra-op thread count (it defaults to 1 on some builds; we default to all cores). */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setNumThreads: expected a positive integer, got ${n}`);
  native.setNumThreads(n);
}

export function getNumThreads(): number { return native.getNumThreads(); }

/** Seeds libtorch's generators (CPU and CUDA) so random ops repeat. */
export function manualSeed(seed: number): void { native.manualSeed(seed); }

/** Returns the default CPU generator's state as bytes (torch.get_rng_state()): what dropout and rand draw from next. */
export function getRngState(): Buffer { return native.rngState(); }

/** Puts back a state getRngState returned (torch.set_rng_state()); throws a TorchError for bytes that are not one. */
export function setRngState(state: Uint8Array): void {
  try { native.setRngState(Buffer.from(state.buffer, state.byteOffset, state.byteLength)); } catch (e) { throw asTorchError('setRngState', e); }
}

/**
 * What the addon holds: `tensors` live handles and their `bytes` now, and `collected`, the handles
 * the garbage collector has released so far because nobody disposed them. A collection may run
 * between any two calls and move a forgotten handle from `tensors` to `collected`, so
 * `tensors + collected` (the handles never disposed, live or collected) is the count that finds a
 * leak: it stays flat over a loop that disposes everything it makes. `unscopedBytes` is the part of
 * `bytes` outside every tidy() scope: what V8 is told as external memory, so that its collections
 * come when forgotten handles pile up (a scope's tensors are freed by the scope, and telling V8
 * of them would start full collections with nothing to find).
 */
export function memory(): MemoryInfo { return native.memory(); }

/**
 * The cache that keeps freed CPU blocks of 32 MiB and up for the next request of their size, so
 * that a step's large activations are not mapped, faulted in and zeroed again every batch (what
 * glibc does above its mmap threshold). `liveBytes` are handed out now, `idleBytes` wait for reuse
 * (at most `capBytes`: `VISIONTUNE_CPU_CACHE_MB`, default a quarter of physical memory up to
 * 4 GiB); `hits` and `misses` count large requests served from the cache and by a fresh mapping.
 * All zero when the cache is off (`VISIONTUNE_CPU_CACHE_MB=0` or `VISIONTUNE_MALLOC=default`).
 * The CPU counterpart of `torch.cuda.memory_stats()`.
 */
export function cpuCacheStats(): CpuCacheStats { return native.cpuCache(); }

/**
 * Returns the cache's idle blocks to the kernel (`torch.cuda.empty_cache()` on the CPU), for a
 * process that has finished training and goes on with less memory; the bytes released.
 */
export function emptyCpuCache(): number { return native.emptyCpuCache(); }

export const cuda = {
  isAvailable: (): boolean => native.cudaDeviceCount() > 0,
  deviceCount: (): number => native.cudaDeviceCount(),
  synchronize: (device = 0): void => native.cudaSynchronize(device),
};

/** A device that cannot be had here: no CUDA in this libtorch, no GPU visible, or a GPU index past the last. */
export class DeviceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceError';
  }
}

/**
 * Resolves a device request: 'auto' is 'cuda' where this libtorch has CUDA and a GPU is visible,
 * else 'cpu'; 'cpu', 'cuda' and 'cuda:N' stand when they can be had. Returns the device and the
 * reason in words (for a run's log). Throws DeviceError for a CUDA device this build or machine
 * lacks, and for anything else that is not a device.
 */
export function resolveDevice(spec: string): { device: Device; reason: string } {
  const count = native.cudaDeviceCount();
  const { cudaBuild: build, torch } = native.version();
  if (spec === 'auto') {
    return count > 0 ? { device: 'cuda', reason: `auto: ${count} CUDA GPU${count > 1 ? 's' : ''} visible` }
      : { device: 'cpu', reason: build ? 'auto: this libtorch has CUDA, but no GPU is visible' : 'auto: this libtorch has no CUDA' };
  }
  if (spec === 'cpu') return { device: 'cpu', reason: 'as asked' };
  const m = /^cuda(?::(\d+))?$/.exec(spec);
  if (!m) throw new DeviceError(`${spec}: not a device; give cpu, cuda, cuda:N or auto`);
  if (!build) {
    throw new DeviceError(`${spec}: this libtorch (${torch}) has no CUDA; build visiontune against a CUDA libtorch ` +
      '(LIBTORCH=<folder with include/ and lib/>, such as a CUDA PyTorch\'s torch folder) or use --device cpu');
  }
  if (count === 0) throw new DeviceError(`${spec}: this libtorch has CUDA, but no GPU is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)`);
  const index = m[1] === undefined ? 0 : Number(m[1]);
  if (index >= count) throw new DeviceError(`${spec}: there ${count === 1 ? 'is 1 GPU' : `are ${count} GPUs`} (cuda:0${count > 1 ? `…cuda:${count - 1}` : ''})`);
  return { device: spec as Device, reason: 'as asked' };
}

/** libtorch's version and whether this build links CUDA. */
export function libtorchVersion(): { torch: string; cudaBuild: boolean } { return native.version(); }

/** Microseconds one 1-element add takes when C++ calls libtorch directly: the floor under any binding. */
export function nativeTinyOpMicros(n = 100_000): number { return native.tinyOpMicros(n); }

/** A thread count from an environment value: a whole number above 0, else null. */
function threadsFrom(value: string | undefined): number | null {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/** The thread count visiontune starts with: $VISIONTUNE_THREADS, else every core. */
export function defaultThreads(): number {
  return threadsFrom(process.env.VISIONTUNE_THREADS) ?? os.availableParallelism();
}

/**
 * One line for each visiontune environment variable set to a value it cannot use, saying what
 * applies instead (the default); empty when all are usable. The addon and defaultThreads() fall
 * back silently, so this is what tells a user of a typo.
 */
export function environmentProblems(env: NodeJS.ProcessEnv = process.env): string[] {
  const problems: string[] = [];
  const { VISIONTUNE_THREADS: threads, VISIONTUNE_CPU_CACHE_MB: cacheMb, VISIONTUNE_MALLOC: malloc } = env;
  if (threads && threadsFrom(threads) === null) {
    problems.push(`VISIONTUNE_THREADS must be a whole number of threads above 0, not '${threads}'; using every core (${os.availableParallelism()})`);
  }
  if (cacheMb && !/^[0-9]+$/.test(cacheMb)) {
    problems.push(`VISIONTUNE_CPU_CACHE_MB must be a whole number of MiB (0 turns the cache off), not '${cacheMb}'; using the default`);
  }
  if (malloc && malloc !== 'default') {
    problems.push(`VISIONTUNE_MALLOC takes only 'default' (glibc's and libtorch's allocators as they are), not '${malloc}'; keeping visiontune's allocator settings`);
  }
  return problems;
}

for (const problem of environmentProblems()) process.stderr.write(`visiontune: ${problem}\n`);
setNumThreads(defaultThreads());
