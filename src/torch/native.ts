// The compiled addon and the types of what it exports. Only src/torch/ talks to it.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** An opaque reference to one libtorch tensor, owned by the addon. */
export type Handle = { readonly __handle: unique symbol };

/** The addon's tensor accounting (see memory() in runtime.ts). */
export interface MemoryInfo { tensors: number; bytes: number; collected: number; unscopedBytes: number }

/** The large-block cache's state (see cpuCacheStats() in runtime.ts). */
export interface CpuCacheStats { idleBytes: number; liveBytes: number; capBytes: number; hits: number; misses: number }

export interface NativeAddon {
  fromBuffer(data: ArrayBufferView, shape: number[], dtype: number): Handle;
  toBuffer(h: Handle): ArrayBuffer;
  item(h: Handle): number | boolean;
  dispose(h: Handle): boolean;
  isDisposed(h: Handle): boolean;
  /** Reports the tensor's bytes to V8 as external memory (once), for a handle outside every scope. */
  reportToGc(h: Handle): void;
  meta(h: Handle): [number[], number, string, boolean];
  strides(h: Handle): number[];
  isContiguous(h: Handle, memoryFormat: number): boolean;
  setRequiresGrad(h: Handle, on: boolean): void;
  grad(h: Handle): Handle | null;
  setGrad(h: Handle, g: Handle | null): void;
  backward(h: Handle, grad: Handle | null, retainGraph: boolean, createGraph: boolean): void;
  autogradInfo(h: Handle): [boolean, string | null];
  sameStorage(a: Handle, b: Handle): boolean;
  memory(): MemoryInfo;
  resolveOp(name: string, overload: string): number;
  schema(id: number): string;
  callOp(id: number, ...args: unknown[]): unknown;
  callOpInPlace(id: number, ...args: unknown[]): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  rngState(): Buffer;
  setRngState(state: Buffer): void;
  setGradEnabled(on: boolean): void;
  isGradEnabled(): boolean;
  autocastState(device: string): [boolean, number];
  setAutocast(device: string, enabled: boolean, dtype: number): void;
  autocastEnter(): number;
  autocastExit(): number;
  cudaDeviceCount(): number;
  cudaSynchronize(device: number): void;
  version(): { torch: string; cudaBuild: boolean };
  tinyOpMicros(n: number): number;
  cpuCache(): CpuCacheStats;
  emptyCpuCache(): number;
  distributedAvailable(): boolean;
  ProcessGroup?: new (o: NativeProcessGroupOptions) => NativeProcessGroup;
  /** For the tests: throws std::system_error (ECONNRESET) on a new thread, as a store thread does when rank 0's socket is reset. */
  throwOffThread?(): void;
}

export interface NativeProcessGroupOptions {
  rank: number;
  worldSize: number;
  host: string;
  port: number;
  timeoutMs: number;
  heartbeatMs: number;
  iface?: string;
}

export interface NativeProcessGroup {
  allreduce(tensors: Handle[], op: string): void;
  broadcast(tensors: Handle[], root: number): void;
  allgather(tensor: Handle): Handle[];
  barrier(): void;
  lostRanks(waitMs: number): number[];
  syncBatchNorm(x: Handle, weight: Handle | null, bias: Handle | null, runningMean: Handle | null, runningVar: Handle | null, momentum: number, eps: number): Handle;
  shutdown(): void;
}

function addonPath(): string {
  if (process.env.VISIONTUNE_ADDON) return process.env.VISIONTUNE_ADDON;
  // build/src/torch/native.js and src/torch/native.ts both sit a fixed depth below the root.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'native/build/Release/visiontune.node');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(
    'visiontune: the native addon is not built. Run `make setup` (or `npm run build:native` with libtorch installed).',
  );
}

// libtorch logs through glog, which reads its settings from the environment when the library
// loads: without this, c10d writes its own lines (a socket timeout, a peer gone) to stderr beside
// the one-line error visiontune gives. GLOG_minloglevel set by the user is kept.
process.env.GLOG_minloglevel ??= '3';

export const native: NativeAddon = createRequire(import.meta.url)(addonPath());
