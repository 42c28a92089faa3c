// visiontune on a CUDA GPU, against the same arithmetic on the CPU. Runs where this libtorch has
// CUDA and a GPU is visible (scripts/gpu-check.sh on a GPU machine); elsewhere every test is
// skipped, saying why. cuDNN's convolutions use TF32 on Ampere and later (as PyTorch's default
// torch.backends.cudnn.allow_tf32), so convolution results agree with the CPU's to about 1e-3 relative.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cuda, libtorchVersion, manualSeed, randn, tensor, noGrad, autocast, F, type Tensor } from '../../src/torch/index.js';
import { AdamW } from '../../src/optim/index.js';
import { zooEntry } from '../../src/models/registry.js';
import { SimpleCNN } from '../../src/models/simple-cnn.js';
import { unscaleGrads } from '../../src/learner/grad-scaler.js';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { tinyLearner } from '../helpers/tiny-learner.js';
import { visiontune } from '../helpers/cli.js';

const skip = cuda.isAvailable() ? false : `no CUDA here (libtorch ${libtorchVersion().torch}, CUDA build: ${libtorchVersion().cudaBuild})`;
const SEEDS = { torch: 3, train: 1, valid: 2, shuffle: 4 };

/** Largest |a − b| over max(1, |b|): relative where values are large, absolute near 0. */
function maxRelDiff(a: Tensor, b: Tensor): number {
  const x = a.float().cpu().toArray() as ArrayLike<number>;
  const y = b.float().cpu().toArray() as ArrayLike<number>;
  assert.equal(x.length, y.length);
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / Math.max(1, Math.abs(y[i])));
  return worst;
}

test('ops and their gradients on CUDA equal the CPU\'s: conv, batch norm, relu, pooling, linear, cross-entropy', { skip }, () => {
  manualSeed(0);
  const cpu = new SimpleCNN({ numClasses: 5, width: 8, dropout: 0 });
  const gpu = new SimpleCNN({ numClasses: 5, width: 8, dropout: 0 });
  gpu.loadStateDict(cpu.stateDict());
  gpu.to({ device: 'cuda' });
  const x = randn([6, 3, 32, 32]);
  const y = tensor(BigInt64Array.from([0, 1, 2, 3, 4, 0].map(BigInt)), { shape: [6] });
  const lossCpu = F.crossEntropy(cpu.forward(x), y);
  const lossGpu = F.crossEntropy(gpu.forward(x.to('cuda')), y.to('cuda'));
  lossCpu.backward();
  lossGpu.backward();
  assert.ok(lossGpu.device.startsWith('cuda'));
  assert.ok(maxRelDiff(lossGpu, lossCpu) < 1e-3, `loss ${lossGpu.item()} vs ${lossCpu.item()}`);
  const [pc, pg] = [cpu.parameters(), gpu.parameters()];
  pc.forEach((p, i) => assert.ok(maxRelDiff(pg[i].grad!, p.grad!) < 5e-3, `gradient ${i}: ${maxRelDiff(pg[i].grad!, p.grad!)}`));
  // Batch-norm running statistics moved alike.
  const [bc, bg] = [cpu.buffers(), gpu.buffers()];
  bc.forEach((b, i) => { if (b.dtype === 'float32') assert.ok(maxRelDiff(bg[i], b) < 1e-3, `buffer ${i}`); });
});

test('pinned memory and a non-blocking copy carry a batch to the GPU and back unchanged', { skip }, () => {
  const x = randn([4, 3, 8, 8]);
  const pinned = x.pinMemory();
  assert.equal(pinned.isPinned, true);
  assert.equal(x.isPinned, false);
  const onGpu = pinned.to({ device: 'cuda', nonBlocking: true });
  assert.equal(onGpu.device, 'cuda:0');
  cuda.synchronize();
  assert.deepEqual(onGpu.cpu().toArray(), x.toArray());
});

test('a zoo model\'s logits on CUDA equal the CPU\'s (resnet18, efficientnet_v2_s, eval mode)', { skip }, () => {
  for (const arch of ['resnet18', 'efficientnet_v2_s']) {
    manualSeed(1);
    const cpu = zooEntry(arch).build();
    const gpu = zooEntry(arch).build();
    gpu.loadStateDict(cpu.stateDict());
    gpu.to({ device: 'cuda', memoryFormat: 'channels_last' });
    cpu.eval();
    gpu.eval();
    const x = randn([2, 3, 96, 96]);
    const [a, b] = noGrad(() => [cpu.forward(x), gpu.forward(x.to('cuda').contiguous('channels_last'))]);
    assert.deepEqual(b.shape, [2, 1000]);
    // Relative to the largest logit: a randomly initialised efficientnet_v2_s gives logits near 1e-6.
    const scale = a.abs().max().item();
    const worst = b.float().cpu().sub(a).abs().max().item() / scale;
    assert.ok(scale > 0 && worst < 1e-2, `${arch}: largest difference ${worst} of the largest logit ${scale}`);
  }
});

test('AdamW\'s foreach update on CUDA equals its per-parameter update on the CPU', { skip }, () => {
  manualSeed(2);
  const initial = [randn([8, 4]), randn([4]), randn([3, 3, 2, 2])];
  const cpuParams = initial.map((p) => p.clone().requiresGrad_());
  const gpuParams = initial.map((p) => p.to('cuda').requiresGrad_());
  const cpuOpt = new AdamW(cpuParams, { lr: 0.01, weightDecay: 0.1, foreach: false });
  const gpuOpt = new AdamW(gpuParams, { lr: 0.01, weightDecay: 0.1 }); // foreach by default on CUDA
  for (let step = 0; step < 5; step++) {
    const grads = initial.map((p) => randn(p.shape));
    cpuParams.forEach((p, i) => { p.grad = grads[i]; });
    gpuParams.forEach((p, i) => { p.grad = grads[i].to('cuda'); });
    cpuOpt.step();
    gpuOpt.step();
  }
  gpuParams.forEach((p, i) => assert.ok(maxRelDiff(p, cpuParams[i]) < 1e-5, `parameter ${i}: ${maxRelDiff(p, cpuParams[i])}`));
});

test('autocast on CUDA runs convolutions in bf16 and fp16; the fused unscale finds an overflow as the CPU path does', { skip }, () => {
  manualSeed(3);
  const w = randn([4, 3, 3, 3], { device: 'cuda' });
  const x = randn([2, 3, 8, 8], { device: 'cuda' });
  for (const dtype of ['bfloat16', 'float16'] as const) {
    const out = autocast(() => F.conv2d(x, w), { device: 'cuda', dtype });
    assert.equal(out.dtype, dtype);
  }
  const grads = [tensor([2, 4], { device: 'cuda' }), tensor([8], { device: 'cuda' })];
  assert.equal(unscaleGrads(grads, 2), false);
  assert.deepEqual(Array.from(grads[0].cpu().toArray() as ArrayLike<number>), [1, 2]);
  assert.equal(unscaleGrads([tensor([1, Infinity], { device: 'cuda' })], 2), true);
});

test('a learner trains on CUDA in fp32, bf16 and fp16 (with loss scaling), its loss falling as on the CPU', { skip }, async () => {
  const plan = (): { lrs: number[]; mom: number } => ({ lrs: [1e-2, 1e-2], mom: 0.9 });
  const cpu = tinyLearner({}, SEEDS);
  const cpuRows = await cpu.fit(3, plan);
  for (const o of [{}, { bf16: true }, { fp16: true }]) {
    const learn = tinyLearner({ device: 'cuda', ...o }, SEEDS);
    assert.ok(learn.model.parameters().every((p) => p.device.startsWith('cuda')));
    const rows = await learn.fit(3, plan);
    const what = JSON.stringify(o);
    assert.ok(rows[2].train_loss < rows[0].train_loss, `${what}: ${rows.map((r) => r.train_loss)}`);
    assert.ok(Math.abs(rows[2].valid_loss - cpuRows[2].valid_loss) < 0.15, `${what}: valid loss ${rows[2].valid_loss} vs the CPU's ${cpuRows[2].valid_loss}`);
  }
});

test('train, predict and serve\'s model path run on CUDA from the command line, predicting as the CPU does', { skip, timeout: 300_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-cuda-'));
  try {
    const data = path.join(dir, 'data');
    await writeSyntheticFolder(data, { perClass: 24, numClasses: 3, seed: 5 });
    const out = path.join(dir, 'run');
    const json = path.join(dir, 'results.json');
    const r = visiontune(['train', data, '--arch', 'resnet18', '--weights', 'none', '--size', '64', '--item-size', '80', '--bs', '16',
      '--epochs', '2', '--freeze-epochs', '0', '--device', 'cuda', '--precision', 'auto', '--out', out, '--json', json]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Device: cuda \(as asked\)/);
    assert.match(r.stdout, /Precision: bf16 autocast \(auto: CUDA\)/);
    const results = JSON.parse(readFileSync(json, 'utf8')) as { epochs: { train_loss: number }[] };
    assert.equal(results.epochs.length, 2);
    assert.ok(results.epochs.every((e) => Number.isFinite(e.train_loss)));
    const settings = JSON.parse(readFileSync(path.join(out, 'settings.json'), 'utf8')) as { machine: { device: string; precision: string } };
    assert.deepEqual([settings.machine.device, settings.machine.precision], ['cuda', 'bf16']);
    // The saved model predicts every image alike on the GPU and on the CPU (the serve command batches through the same path).
    const model = path.join(out, 'best.safetensors');
    const onGpu = visiontune(['predict', model, data, '--device', 'cuda', '--json']);
    const onCpu = visiontune(['predict', model, data, '--device', 'cpu', '--json']);
    assert.equal(onGpu.code, 0, onGpu.stderr);
    assert.equal(onCpu.code, 0, onCpu.stderr);
    type P = { predictions: { file: string; predictions: { index: number; prob: number }[] }[] };
    const [g, c] = [JSON.parse(onGpu.stdout) as P, JSON.parse(onCpu.stdout) as P];
    assert.equal(g.predictions.length, 72);
    g.predictions.forEach((p, i) => {
      assert.equal(p.file, c.predictions[i].file);
      assert.ok(Math.abs(p.predictions[0].prob - c.predictions[i].predictions[0].prob) < 5e-3, `${p.file}`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
