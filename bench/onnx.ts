// The ONNX benchmark: eval throughput (img/s, 224 px) of efficientnet_v2_s and mobilenet_v2 in
// onnxruntime-node (the exported graph) and in visiontune (libtorch), batch 1 and 16, the same
// thread count, alternating rounds in the same run, best round of each. Figures only, no target.
// Environment: BENCH_ARCHS, BENCH_BATCHES (1,16), BENCH_STEPS (3), BENCH_ROUNDS (2).
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import { F, manualSeed, noGrad, randn, tidy, getNumThreads } from '../src/torch/index.js';
import { zooEntry } from '../src/models/registry.js';
import { VisionClassifier } from '../src/learner/model.js';
import { onnxModelBytes } from '../src/onnx/export.js';

const archs = (process.env.BENCH_ARCHS ?? 'efficientnet_v2_s,mobilenet_v2').split(',');
const batches = (process.env.BENCH_BATCHES ?? '1,16').split(',').map(Number);
const steps = Number(process.env.BENCH_STEPS ?? 3);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const threads = getNumThreads();
const SIZE = 224;

console.log(`bench:onnx  ${threads} threads (both sides), ${SIZE} px, ${steps} timed steps, best of ${rounds} rounds`);
console.log('arch                 batch  visiontune img/s  onnxruntime img/s  onnxruntime ÷ visiontune');
for (const arch of archs) {
  manualSeed(0);
  const model = new VisionClassifier(zooEntry(arch).build(), 10);
  model.eval();
  const session = await ort.InferenceSession.create(onnxModelBytes(model, SIZE), { intraOpNumThreads: threads, interOpNumThreads: 1 });
  model.to({ memoryFormat: 'channels_last' });
  for (const bs of batches) {
    const x = randn([bs, 3, SIZE, SIZE]);
    const input = new ort.Tensor('float32', x.toTypedArray() as Float32Array, [bs, 3, SIZE, SIZE]);
    const ours = (): void => noGrad(() => tidy(() => { F.softmax(model.forward(x), 1).toTypedArray(); }));
    const theirs = async (): Promise<void> => { await session.run({ input }); };
    let [best0, best1] = [0, 0];
    await theirs();
    ours();
    for (let r = 0; r < rounds; r++) {
      let t = performance.now();
      for (let s = 0; s < steps; s++) ours();
      best0 = Math.max(best0, (steps * bs) / ((performance.now() - t) / 1000));
      t = performance.now();
      for (let s = 0; s < steps; s++) await theirs();
      best1 = Math.max(best1, (steps * bs) / ((performance.now() - t) / 1000));
    }
    console.log(`${arch.padEnd(20)} ${String(bs).padStart(5)}  ${best0.toFixed(1).padStart(16)}  ${best1.toFixed(1).padStart(17)}  ${(best1 / best0).toFixed(3).padStart(24)}`);
    x.dispose();
  }
  await session.release();
  model.dispose();
}
