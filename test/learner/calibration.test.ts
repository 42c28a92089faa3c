// Acceptance (issue 16, "none of these"): temperature scaling never raises the validation NLL and
// undoes overconfidence; --unknown-below answers unknown for a uniform-noise image and a class for
// a clear one.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { manualSeed, randn, randint, tensor, F, noGrad, tidy } from '../../src/torch/index.js';
import { fitTemperature, nllAt, expectedCalibrationError, calibrate, refusedShare } from '../../src/learner/calibration.js';
import { predictFiles } from '../../src/learner/predict.js';
import { seededRandom } from '../../src/data/random.js';
import { tinyLearner } from '../helpers/tiny-learner.js';
import type { TensorLoader } from '../../src/learner/tensor-loader.js';

test('issue 16: temperature scaling lowers the validation NLL of an overconfident model, and never raises it', () => {
  manualSeed(0);
  // Calibrated logits: targets drawn from softmax(z); then made overconfident ×4.
  const z = randn([2000, 5]);
  const p = noGrad(() => tidy(() => F.softmax(z, 1))).toArray();
  const rand = seededRandom(3);
  const targets = tensor(Array.from({ length: 2000 }, (_, i) => {
    let u = rand();
    for (let c = 0; c < 5; c++) if ((u -= p[5 * i + c]) < 0) return c;
    return 4;
  }), { dtype: 'int64' });
  const over = z.mul(4);
  const t = fitTemperature(over, targets);
  assert.ok(Math.abs(t - 4) < 0.5, `temperature ${t}`);
  assert.ok(nllAt(over, targets, t) < nllAt(over, targets, 1));
  const ece = [expectedCalibrationError(F.softmax(over, 1), targets), expectedCalibrationError(calibrate(F.softmax(over, 1), t), targets)];
  assert.ok(ece[1] < ece[0] / 2, `ECE ${ece[0]} → ${ece[1]}`);
  // Already calibrated: T stays near 1 and the NLL does not rise.
  const t1 = fitTemperature(z, targets);
  assert.ok(nllAt(z, targets, t1) <= nllAt(z, targets, 1) && Math.abs(t1 - 1) < 0.2, `temperature ${t1}`);
  // Random labels: nothing to gain from sharpening; the NLL still does not rise.
  const noise = randint(0, 5, [500]);
  assert.ok(nllAt(z.narrow(0, 0, 500), noise, fitTemperature(z.narrow(0, 0, 500), noise)) <= nllAt(z.narrow(0, 0, 500), noise, 1));
  assert.throws(() => fitTemperature(randn([0, 5]), randint(0, 5, [0])), RangeError);
  assert.ok(Math.abs(refusedShare(tensor([[0.9, 0.1], [0.55, 0.45], [0.4, 0.6]]), 0.58) - 1 / 3) < 1e-6);
});

test('issue 16: --unknown-below answers unknown for uniform noise and the class for a clear image', async (t2) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-unknown-'));
  try {
    const learn = tinyLearner({}, { torch: 1, train: 2, valid: 3, shuffle: 4 });
    await learn.fitOneCycle(12, 3e-2);
    const { probs, targets } = await learn.getPreds();
    const temperature = fitTemperature(tidy(() => probs.clamp(1e-12, 1).log()), targets);
    // A clear image: the validation image the model is surest of, written as a PNG.
    const p = probs.toArray();
    const y = targets.toArray();
    const best = y.map((c, i) => [p[4 * i + c], i]).sort((a, b) => b[0] - a[0])[0][1];
    const valid = learn.dls.valid as TensorLoader;
    const pixels = tidy(() => valid.x.select(0, best).mul(255).round().clamp(0, 255).to({ dtype: 'uint8' }).permute(1, 2, 0).contiguous());
    const clear = path.join(dir, 'clear.png');
    await sharp(Buffer.from(pixels.toArray()), { raw: { width: 24, height: 24, channels: 3 } }).png().toFile(clear);
    const noise = path.join(dir, 'noise.png');
    const rand = seededRandom(9);
    await sharp(Buffer.from(Array.from({ length: 24 * 24 * 3 }, () => Math.floor(rand() * 256))), { raw: { width: 24, height: 24, channels: 3 } })
      .png().toFile(noise);
    const t = { itemSize: 24, method: 'crop' as const, cropSize: 24, size: 24, stats: { mean: [0, 0, 0] as const, std: [1, 1, 1] as const } };
    const { predictions } = await predictFiles(learn.model, learn.dls.vocab, [clear, noise], t, 1, { temperature, unknownBelow: 0.9 });
    const [c, n] = predictions;
    t2.diagnostic(`clear image: ${c.predictions[0].label} ${c.predictions[0].prob.toFixed(3)}; noise: ${n.predictions[0].label} ${n.predictions[0].prob.toFixed(3)}`);
    assert.deepEqual([c.predictions[0].label, c.unknown ?? false], [learn.dls.vocab[y[best]], false], JSON.stringify(c));
    assert.equal(n.unknown, true, JSON.stringify(n));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

