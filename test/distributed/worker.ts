// A process of the distributed tests (not a test itself): `node worker.js MODE OUT`, with RANK and
// WORLD_SIZE (and MASTER_PORT) set for a rank of a group, unset for one process alone.
//   fit   a small CNN without batch norm, 10 AdamW steps (batch 16 over all ranks), seed 0;
//         rank 0 (or the lone process) writes per-step losses and final weights to OUT as JSON
//   fit-bn  the same with batch norm after the convolution: SyncBatchNorm over the ranks
//   loop  allreduces a scalar until killed or failed; a failure prints its message and exits 3
//   store-reset  throws what a store thread throws when rank 0's socket is reset, off the main
//         thread while the group lives, allreduces, prints 'survived' and leaves the group; with
//         OUT 'after' it throws once more after leaving
import { writeFileSync } from 'node:fs';
import { manualSeed, randn, randint, setNumThreads, tensor } from '../../src/torch/index.js';
import { native } from '../../src/torch/native.js';
import { Sequential, Conv2d, ReLU, MaxPool2d, Flatten, Linear, BatchNorm2d } from '../../src/nn/index.js';
import { Learner } from '../../src/learner/learner.js';
import { TensorLoader } from '../../src/learner/tensor-loader.js';
import { DistributedDataParallel, DistributedSampler, DistributedError, initProcessGroup, convertSyncBatchNorm, type ProcessGroup } from '../../src/distributed/index.js';

const [mode, out] = process.argv.slice(2);
setNumThreads(1);
const group: ProcessGroup | null = process.env.WORLD_SIZE ? initProcessGroup({ timeoutS: Number(process.env.DIST_TIMEOUT_S ?? 30) }) : null;
const world = group?.worldSize ?? 1;

if (mode === 'fit' || mode === 'fit-bn') {
  manualSeed(0);
  const x = randn([160, 3, 12, 12]);
  const y = randint(0, 4, [160]);
  // Each rank starts from other random weights: DDP's broadcast must make them rank 0's.
  manualSeed(100 + (group?.rank ?? 0));
  // Before batch norm the convolution has no bias, as in torchvision: a bias's gradient there is
  // rounding noise alone, which Adam would scale up to whole steps.
  const bn = mode === 'fit-bn';
  const model = new Sequential(new Conv2d(3, 8, 3, { padding: 1, bias: !bn }), ...(bn ? [new BatchNorm2d(8)] : []), new ReLU(), new MaxPool2d(2),
    new Flatten(), new Linear(8 * 6 * 6, 4));
  if (group?.rank) manualSeed(100);
  if (group && bn) convertSyncBatchNorm(model, group);
  const train = new TensorLoader(x, y, { bs: 16 / world, shuffle: true, seed: 1, dropLast: true });
  const valid = new TensorLoader(x.narrow(0, 0, 40), y.narrow(0, 0, 40), { bs: 7 });
  if (group) {
    train.shard = new DistributedSampler(group.rank, world);
    valid.shard = new DistributedSampler(group.rank, world, { pad: false });
  }
  const learn = new Learner({ train, valid, vocab: ['a', 'b', 'c', 'd'] }, model, {
    log: null, callbacks: group ? [new DistributedDataParallel(group, { bucketCapMb: 0.004 })] : [],
  });
  await learn.fit(1, () => ({ lrs: [3e-3], mom: 0.9 }));
  if (!group || group.rank === 0) {
    const weights = Object.fromEntries([...model.namedParameters(), ...model.namedBuffers()].map(([k, p]) => [k, p.toArray()]));
    writeFileSync(out, JSON.stringify({ losses: learn.recorder.losses, valid: learn.history[0], weights, steps: train.length }));
  }
  group?.barrier();
  group?.destroy();
} else if (mode === 'loop') {
  try {
    for (let i = 0; ; i++) {
      const t = tensor([1]);
      group!.allreduce([t]);
      t.dispose();
      if (i === 10) process.stdout.write('running\n');
      await new Promise((r) => setTimeout(r, 2));
    }
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(e instanceof DistributedError ? 3 : 4);
  }
} else if (mode === 'store-reset') {
  const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 300));
  native.throwOffThread!();
  await pause();
  const t = tensor([1]);
  group!.allreduce([t]);
  process.stdout.write(`survived ${t.item()}\n`);
  group!.destroy();
  if (out === 'after') {
    native.throwOffThread!();
    await pause();
  }
}
