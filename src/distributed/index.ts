// Data-parallel training over c10d: the process group, DDP as a callback, the sampler, the launcher.
export { initProcessGroup, distEnv, ProcessGroup, DistributedError, type Backend, type ProcessGroupOptions } from './process-group.js';
export * from './defaults.js';
export { launch, freePort, watchLauncher, WORKER_ENV, type LaunchOptions } from './launch.js';
export { DistributedDataParallel, bucketsOf, bucketed, DEFAULT_BUCKET_CAP_MB, type DdpOptions } from './ddp.js';
export { DistributedSampler, type DistributedSamplerOptions } from './sampler.js';
export { convertSyncBatchNorm, revertSyncBatchNorm } from './sync-batch-norm.js';
