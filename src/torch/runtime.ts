// Threads, seeds, CUDA presence and live-memory counters.
import os from 'node:os';
import { native } from './native.js';
import { asTorchError } from './errors.js';

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

/** The tensors the addon holds now and their bytes; tests use it to find leaks. */
export function memory(): { tensors: number; bytes: number } { return native.memory(); }

export const cuda = {
  isAvailable: (): boolean => native.cudaDeviceCount() > 0,
  deviceCount: (): number => native.cudaDeviceCount(),
  synchronize: (device = 0): void => native.cudaSynchronize(device),
};

/** libtorch's version and whether this build links CUDA. */
export function libtorchVersion(): { torch: string; cudaBuild: boolean } { return native.version(); }

/** Microseconds one 1-element add takes when C++ calls libtorch directly: the floor under any binding. */
export function nativeTinyOpMicros(n = 100_000): number { return native.tinyOpMicros(n); }

/** The thread count visiontune starts with: $VISIONTUNE_THREADS, else every core. */
export function defaultThreads(): number {
  const env = Number(process.env.VISIONTUNE_THREADS);
  return Number.isInteger(env) && env > 0 ? env : os.availableParallelism();
}

setNumThreads(defaultThreads());
