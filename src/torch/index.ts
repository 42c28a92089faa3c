// The tensor engine's public surface.
export { Tensor, type ValuesIndices } from './tensor.js';
export * from './creation.js';
export * as F from './functional.js';
export { cat, stack, where } from './functional.js';
export { noGrad, enableGrad, isGradEnabled } from './autograd.js';
export { autocast, type AutocastOptions } from './autocast.js';
export { tidy, keep, dispose } from './scope.js';
export type { MemoryInfo } from './native.js';
export { setNumThreads, getNumThreads, manualSeed, getRngState, setRngState, memory, cpuCacheStats, emptyCpuCache, cuda, libtorchVersion, resolveDevice, DeviceError } from './runtime.js';
export { TorchError, type TorchErrorKind } from './errors.js';
export type { DType, Device, MemoryFormat, TypedArray } from './dtype.js';
export { schemaOf } from './dispatch.js';
export { IMAGENET_STATS, type Stats } from './stats.js';
export { CollectiveGroup, collectivesAvailable, type ReduceOp, type CollectiveGroupOptions } from './collectives.js';
