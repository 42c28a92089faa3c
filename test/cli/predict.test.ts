// Contract tests of `visiontune predict`: a zoo architecture with a weights file, an exported
// model, JSON and text output agreeing with the model run in-process, and one-line errors.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { manualSeed, noGrad, stack } from '../../src/torch/index.js';
import { writeSafetensors } from '../../src/io/index.js';
import { zooEntry } from '../../src/models/registry.js';
import { VisionClassifier } from '../../src/learner/model.js';
import { exportModel } from '../../src/learner/export.js';
import { loadImage } from '../../src/learner/predict.js';
import { visiontune, assertOneLineError } from '../helpers/cli.js';

interface Out { file: string; predictions: { label: string; index: number; prob: number }[] }

async function fixture(): Promise<{ dir: string; images: string[]; weights: string; exported: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-predict-'));
  const rgba = Buffer.alloc(300 * 200 * 4);
  for (let i = 0; i < 300 * 200; i++) rgba.set([(i * 7) % 256, (i >> 5) % 256, 90, i % 300 < 150 ? 255 : 80], i * 4);
  const images = [path.join(dir, 'a.png'), path.join(dir, 'b.jpg')];
  await sharp(rgba, { raw: { width: 300, height: 200, channels: 4 } }).png().toFile(images[0]);
  await sharp(rgba, { raw: { width: 300, height: 200, channels: 4 } }).rotate(90).jpeg().toFile(images[1]);
  manualSeed(0);
  const weights = path.join(dir, 'mobilenet_v2.safetensors');
  const mobilenet = zooEntry('mobilenet_v2').build();
  writeSafetensors(weights, mobilenet.stateDict());
  mobilenet.dispose();
  const exported = path.join(dir, 'shapes.safetensors');
  const model = new VisionClassifier(zooEntry('resnet18').build(), 3);
  exportModel(exported, model, {
    architecture: 'resnet18', classes: ['disc', 'stripes', 'checker'], size: 64,
    normalization: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, head: {},
  });
  return { dir, images, weights, exported };
}

test('predict with a zoo architecture and a weights file gives the top-k ImageNet classes the model computes', async () => {
  const f = await fixture();
  try {
    const r = visiontune(['predict', 'mobilenet_v2', '--weights', f.weights, ...f.images, '--top-k', '3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = (JSON.parse(r.stdout) as { predictions: Out[] }).predictions;
    assert.deepEqual(out.map((o) => o.file), f.images);
    // The same model, weights and preprocessing in-process.
    const model = zooEntry('mobilenet_v2').build();
    manualSeed(0);
    const fresh = zooEntry('mobilenet_v2').build();
    model.loadStateDict(fresh.stateDict());
    model.eval();
    const t = zooEntry('mobilenet_v2').weights.transforms;
    const x = stack(await Promise.all(f.images.map((p) => loadImage(p, { ...t }))));
    const probs = noGrad(() => model.forward(x).softmax(1));
    out.forEach((o, i) => {
      assert.equal(o.predictions.length, 3);
      const { values, indices } = probs.select(0, i).topk(3);
      assert.deepEqual(o.predictions.map((p) => p.index), indices.toArray());
      o.predictions.forEach((p, k) => assert.ok(Math.abs(p.prob - values.toArray()[k]) < 1e-6));
      assert.match(o.predictions[0].label, /\S/);
    });
    const text = visiontune(['predict', 'mobilenet_v2', '--weights', f.weights, f.images[0], '--top-k', '2']);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout.split('\n')[0], f.images[0]);
    assert.match(text.stdout.split('\n')[1], /^\s+\d+\.\d\d%\s+.+ \(\d+\)$/);
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('predict with an exported model uses its classes, size and normalisation', async () => {
  const f = await fixture();
  try {
    const r = visiontune(['predict', f.exported, f.images[0], '--json']);
    assert.equal(r.code, 0, r.stderr);
    const [o] = (JSON.parse(r.stdout) as { predictions: Out[] }).predictions;
    assert.deepEqual(o.predictions.map((p) => p.label).sort(), ['checker', 'disc', 'stripes']);
    const total = o.predictions.reduce((s, p) => s + p.prob, 0);
    assert.ok(Math.abs(total - 1) < 1e-5, `probabilities sum to ${total}`);
    const withTta = visiontune(['predict', f.exported, f.images[0], '--tta', '2', '--top-k', '2', '--json']);
    assert.equal(withTta.code, 0, withTta.stderr);
    const [t] = (JSON.parse(withTta.stdout) as { predictions: Out[] }).predictions;
    assert.equal(t.predictions.length, 2);
    assert.ok(t.predictions[0].prob >= t.predictions[1].prob);
    assert.notDeepEqual(t.predictions.map((p) => p.prob), o.predictions.slice(0, 2).map((p) => p.prob), 'augmented passes change the probabilities');
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('predict errors are one line: unknown arch, missing image, bad weights file, offline, no images, bad --tta', async () => {
  const f = await fixture();
  try {
    const junk = path.join(f.dir, 'junk.pth');
    writeFileSync(junk, 'not a checkpoint at all');
    assertOneLineError(visiontune(['predict', 'vgg99', f.images[0]]), 1, /unknown architecture 'vgg99'; the zoo has: efficientnet_v2_s/);
    assertOneLineError(visiontune(['predict', 'mobilenet_v2', '--weights', f.weights, path.join(f.dir, 'nope.jpg')]), 1, /nope\.jpg/);
    assertOneLineError(visiontune(['predict', 'mobilenet_v2', '--weights', junk, f.images[0]]), 1, /junk\.pth/);
    assertOneLineError(visiontune(['predict', 'mobilenet_v2', f.images[0]], { VISIONTUNE_HOME: f.dir }), 1, /--weights FILE/);
    assertOneLineError(visiontune(['predict', 'mobilenet_v2']), 2, /at least one image/);
    assertOneLineError(visiontune(['predict', f.exported, f.images[0], '--tta', 'many']), 2, /--tta must be a whole number/);
    assertOneLineError(visiontune(['predict', f.exported, f.images[0], '--weights', f.weights]), 2, /--weights goes with a zoo architecture/);
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});
