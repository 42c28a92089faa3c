// Acceptance (issue 14, ONNX): every zoo architecture, with fastai's head and bare, exports from
// its own layers and onnxruntime-node gives libtorch's probabilities (1e-4) and logits (1e-4 of
// their scale), with and without the preprocessing in the graph; a trained model's export, fed
// the pixels predict decodes, answers as predict does; the metadata carries what a user needs;
// an operator without a translation and a bad opset are clear errors; the command line writes
// and verifies.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { manualSeed, randn, noGrad, F, type Tensor } from '../../src/torch/index.js';
import { Module } from '../../src/nn/index.js';
import { ZOO } from '../../src/models/registry.js';
import { VisionClassifier } from '../../src/learner/model.js';
import { exportOnnx, onnxModelBytes, hwcOf, OnnxExportError, type OnnxSource } from '../../src/onnx/index.js';
import { loadModel } from '../../src/learner/export.js';
import { decodeImage } from '../../src/data/decode.js';
import { IMAGENET_STATS } from '../../src/torch/stats.js';
import { writeSyntheticFolder } from '../../src/data/synthetic-files.js';
import { visiontune, assertOneLineError } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'vt-onnx-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const SIZE = 64;
const transform = { itemSize: 72, method: 'crop' as const, cropSize: 64, size: SIZE, stats: IMAGENET_STATS };

/** The largest |logit| difference over the largest |logit|, running the bytes in onnxruntime on x. */
async function logitsGap(bytes: Uint8Array, module: Module, x: Tensor): Promise<{ gap: number; scale: number }> {
  const session = await ort.InferenceSession.create(bytes);
  const r = await session.run({ input: new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape) });
  await session.release();
  const ref = noGrad(() => module.forward(x)).toTypedArray() as Float32Array;
  const got = r.logits.data as Float32Array;
  let gap = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    gap = Math.max(gap, Math.abs(got[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return { gap, scale };
}

for (const entry of ZOO.values()) {
  test(`issue 14: ${entry.name} exports to ONNX, with fastai's head and bare; onnxruntime equals libtorch with and without preprocessing`, async (t) => {
    manualSeed(0);
    const headed = new VisionClassifier(entry.build(), 5);
    const bare = entry.build();
    try {
      for (const [what, module, classes] of [['head', headed, 5], ['bare', bare, 1000]] as const) {
        const source: OnnxSource = { module, architecture: entry.name, classes: Array.from({ length: classes }, (_, i) => `c${i}`), transform, temperature: what === 'head' ? 1.5 : undefined };
        for (const preprocess of [false, true]) {
          const file = path.join(dir, `${entry.name}-${what}-${preprocess}.onnx`);
          const r = await exportOnnx(source, file, { preprocess });
          t.diagnostic(`${what}${preprocess ? ' + preprocess' : ''}: ${(r.bytes / 1e6).toFixed(1)} MB, largest probability difference ${r.maxDifference.toExponential(2)}`);
          assert.ok(r.maxDifference <= 1e-4);
          rmSync(file);
        }
        const x = randn([2, 3, SIZE, SIZE]);
        const { gap, scale } = await logitsGap(onnxModelBytes(module, SIZE), module, x);
        t.diagnostic(`${what}: logits differ by ${gap.toExponential(2)} at a scale of ${scale.toExponential(2)}`);
        assert.ok(gap <= 1e-4 * Math.max(scale, 1e-3), `logits ${gap} vs scale ${scale}`);
        x.dispose();
      }
    } finally {
      headed.dispose();
      bare.dispose();
    }
  });
}

test('issue 14: a trained model exports with its metadata; the graph with preprocessing, fed the pixels predict decodes, answers as predict', async (t) => {
  const data = path.join(dir, 'photos');
  await writeSyntheticFolder(data, { perClass: 10, numClasses: 3, minSide: 48, maxSide: 72, seed: 2 });
  const run = path.join(dir, 'run');
  const r = visiontune(['train', data, '--arch', 'resnet18', '--weights', 'none', '--size', '32', '--item-size', '48', '--bs', '8', '--epochs', '1',
    '--threads', '2', '--out', run]);
  assert.equal(r.code, 0, r.stderr);
  const e = visiontune(['export', run, '--preprocess', '--data', data, '--out', path.join(dir, 'model.onnx')]);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /^Verified with onnxruntime on 8 of your images: largest probability difference from libtorch \d\.\d\de[-+]\d+ \(limit 0\.0001\)$/m);
  const plain = visiontune(['export', run, '--out', path.join(dir, 'plain.onnx')]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^Verified with onnxruntime on 4 generated images: largest probability difference from libtorch \d\.\d\de[-+]\d+ \(limit 0\.0001\)$/m);
  const bytes = readFileSync(path.join(dir, 'model.onnx'));
  const meta = Object.fromEntries(onnxProto.onnx.ModelProto.decode(bytes).metadataProps.map((p) => [p.key, p.value]));
  assert.deepEqual(JSON.parse(meta.classes), ['disc', 'horizontal', 'vertical']);
  assert.equal(meta.size, '32');
  assert.equal(meta.item_size, '48');
  assert.deepEqual(Object.keys(JSON.parse(meta.normalization)), ['mean', 'std']);
  assert.ok(meta.visiontune_version && meta.architecture === 'resnet18' && Number(meta.temperature) > 0);

  const model = loadModel(path.join(run, 'best.safetensors'));
  const session = await ort.InferenceSession.create(bytes);
  let worst = 0;
  for (const file of [path.join(data, 'disc', 'disc_0.jpg'), path.join(data, 'vertical', 'vertical_3.jpg')]) {
    const img = await decodeImage(file, { size: 48, method: 'crop' });
    assert.ok(img.ok);
    const out = await session.run({ pixels: new ort.Tensor('uint8', hwcOf(img.image), [1, img.image.height, img.image.width, 3]) });
    const p = await model.predict(file);
    const got = out.probabilities.data as Float32Array;
    p.probs.forEach((q, i) => { worst = Math.max(worst, Math.abs(q - got[i])); });
  }
  await session.release();
  t.diagnostic(`largest difference from predict: ${worst.toExponential(2)}`);
  assert.ok(worst <= 1e-4);
  model.model.dispose();

  assertOneLineError(visiontune(['export', run, '--opset', '12']), 2, /--opset expects an integer ≥ 14 and ≤ 17/);
  assertOneLineError(visiontune(['export', path.join(dir, 'none.safetensors')]), 1, /none\.safetensors/);
  assertOneLineError(visiontune(['export', run, '--format', 'tflite']), 2, /--format expects onnx/);
});

test('issue 14: an operator without a translation is one clear error; nothing is written', async () => {
  class Tanh extends Module {
    forward(x: Tensor): Tensor { return F.tanh(x).flatten(1); }
  }
  const file = path.join(dir, 'tanh.onnx');
  await assert.rejects(exportOnnx({ module: new Tanh(), architecture: 'tanh', classes: [], transform }, file),
    (e: unknown) => e instanceof OnnxExportError && /cannot export the operator tanh/.test(e.message));
  assert.ok(!existsSync(file));
  assert.throws(() => onnxModelBytes(new Tanh(), SIZE, { opset: 11 }), /opset 11 is not supported: give 14 to 17/);
  // In-place activations and add_ export as their functions (the zoo's blocks use them); other in-place operators do not.
  class Doubles extends Module {
    forward(x: Tensor): Tensor { return F.relu(x.flatten(1), true).mul_(2); }
  }
  assert.throws(() => onnxModelBytes(new Doubles(), SIZE), (e: unknown) => e instanceof OnnxExportError && /cannot export the in-place operator mul_/.test(e.message));
});
