// --device and --precision fp16: what this machine can run is resolved once, and a device or a
// precision it lacks is one line (exit 2) before any data is read or any folder made.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cuda, libtorchVersion, resolveDevice, DeviceError } from '../../src/torch/index.js';
import { choosePrecision } from '../../src/learner/precision.js';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { visiontune, assertOneLineError } from '../helpers/cli.js';

const gpus = cuda.deviceCount();

test('resolveDevice: auto finds CUDA only where the build has it and a GPU is visible; the rest stand or are refused', () => {
  const auto = resolveDevice('auto');
  if (gpus > 0) {
    assert.deepEqual(auto, { device: 'cuda', reason: `auto: ${gpus} CUDA GPU${gpus > 1 ? 's' : ''} visible` });
    assert.equal(resolveDevice('cuda:0').device, 'cuda:0');
    assert.throws(() => resolveDevice(`cuda:${gpus}`), (e: Error) => e instanceof DeviceError && /there (is|are) \d GPU/.test(e.message));
  } else {
    assert.equal(auto.device, 'cpu');
    assert.match(auto.reason, libtorchVersion().cudaBuild ? /no GPU is visible/ : /this libtorch has no CUDA/);
    assert.throws(() => resolveDevice('cuda'), (e: Error) => e instanceof DeviceError && /cuda: this libtorch .* (has no CUDA|no GPU is visible)/.test(e.message));
  }
  assert.deepEqual(resolveDevice('cpu'), { device: 'cpu', reason: 'as asked' });
  for (const bad of ['gpu', 'cuda:', 'cuda:x', 'CPU', '']) {
    assert.throws(() => resolveDevice(bad), (e: Error) => e instanceof DeviceError && /not a device; give cpu, cuda, cuda:N or auto/.test(e.message), bad);
  }
});

test('choosePrecision: fp16 only with CUDA; auto is bf16 on CUDA', () => {
  assert.throws(() => choosePrecision('fp16', { cuda: false, flags: new Set() }), /fp16 needs a CUDA device/);
  assert.equal(choosePrecision('fp16', { cuda: true }).precision, 'fp16');
  assert.deepEqual(choosePrecision('auto', { cuda: true, flags: new Set() }), { precision: 'bf16', reason: 'auto: CUDA' });
});

test('train, predict and serve refuse a device this machine lacks, and train fp16 on the CPU, in one line', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-device-'));
  try {
    const data = path.join(dir, 'data');
    await writeSyntheticFolder(data, { perClass: 4, numClasses: 2 });
    const out = path.join(dir, 'run');
    const missing = gpus > 0 ? `cuda:${gpus}` : 'cuda';
    const says = gpus > 0 ? /--device cuda:\d+: there (is|are) \d GPU/ : /--device cuda: this libtorch \(.*\) (has no CUDA|has CUDA, but no GPU is visible)/;
    assertOneLineError(visiontune(['train', data, '--device', missing, '--out', out]), 2, says);
    assertOneLineError(visiontune(['train', data, '--device', 'tpu', '--out', out]), 2, /--device tpu: not a device; give cpu, cuda, cuda:N or auto/);
    assertOneLineError(visiontune(['train', data, '--device', 'cpu', '--precision', 'fp16', '--out', out]), 2,
      /--precision fp16 needs a CUDA device .* on the CPU use bf16 or auto/);
    assert.equal(existsSync(out), false, 'a refused run makes no folder');
    assertOneLineError(visiontune(['predict', 'resnet18', path.join(data, 'nothing.jpg'), '--device', missing]), 2, says);
    assertOneLineError(visiontune(['serve', path.join(dir, 'model.safetensors'), '--device', missing]), 2, says);
    assertOneLineError(visiontune(['lr-find', data, '--device', missing, '--out', out]), 2, says);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
