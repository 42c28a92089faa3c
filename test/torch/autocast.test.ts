// bf16 autocast on CPU: the same ops run in bfloat16 as under torch.autocast('cpu'), with the
// same values and gradients; relu6 trains in bfloat16 (libtorch 1.13 has no bfloat16 hardtanh
// backward on CPU: visiontune has its own kernel, the Python twin clamps), and so does layer
// norm over bfloat16 activations with float32 parameters (1.13 throws for that mix).
import test from 'node:test';
import assert from 'node:assert/strict';
import { F, autocast, manualSeed, randn, zeros, ones, tensor } from '../../src/torch/index.js';
import { zooEntry } from '../../src/models/registry.js';
import { python, enc, assertClose, type Encoded } from '../helpers/python.js';

test('autocast(bf16) matches torch.autocast on CPU: conv, batch norm, relu6, mean, linear; values and fp32 gradients', () => {
  manualSeed(3);
  const x = randn([2, 3, 8, 8]);
  const w = randn([4, 3, 3, 3]).mul(0.3).requiresGrad_();
  const g = ones([4]).mul(4).requiresGrad_(); // wide enough to reach 6
  const b = zeros([4]).requiresGrad_();
  const lw = randn([5, 4]).mul(0.5).requiresGrad_();
  const y = tensor([0, 3], { dtype: 'int64' });
  const [h, logits, loss] = autocast(() => {
    const hh = F.relu6(F.batchNorm(F.conv2d(x, w, null, { padding: 1 }).mul(3), null, null, g, b, true));
    const ll = F.linear(hh.mean([2, 3]), lw);
    return [hh, ll, F.crossEntropy(ll, y)];
  });
  loss.backward();
  assert.deepEqual([h.dtype, logits.dtype, loss.dtype], ['bfloat16', 'bfloat16', 'float32']);
  assert.ok(h.toArray().some((v) => v === 6) && h.toArray().some((v) => v === 0), 'relu6 saturates on both sides');
  assert.equal(w.grad!.dtype, 'float32');
  const ref = python<Record<string, Encoded>>(`
x = T(inp['x']); w = T(inp['w'], True); g = T(inp['g'], True); b = T(inp['b'], True); lw = T(inp['lw'], True); y = T(inp['y'])
with torch.autocast('cpu', dtype=torch.bfloat16):
    h = F.batch_norm(F.conv2d(x, w, None, padding=1) * 3, None, None, g, b, training=True).clamp(0, 6)
    logits = F.linear(h.mean([2, 3]), lw)
    loss = F.cross_entropy(logits, y)
loss.backward()
out = {'h': J(h), 'logits': J(logits), 'loss': J(loss), 'gw': J(w.grad), 'gg': J(g.grad), 'glw': J(lw.grad)}`,
  { x: enc(x), w: enc(w), g: enc(g), b: enc(b), lw: enc(lw), y: enc(y) });
  assertClose(h, ref.h, 'activations');
  assertClose(logits, ref.logits, 'logits');
  assertClose(loss, ref.loss, 'loss');
  assertClose(w.grad!, ref.gw, 'conv weight gradient');
  assertClose(g.grad!, ref.gg, 'batch-norm weight gradient');
  assertClose(lw.grad!, ref.glw, 'linear weight gradient');
});

test('relu6 on bfloat16: values of hardtanh(0, 6), gradient 1 inside and 0 outside', () => {
  const x = tensor([-2, 0.5, 3, 5.5, 9], { dtype: 'bfloat16' }).requiresGrad_();
  const r = F.relu6(x);
  r.sum().backward();
  assert.equal(r.dtype, 'bfloat16');
  assert.deepEqual(r.toArray(), [0, 0.5, 3, 5.5, 6]);
  assert.deepEqual(x.grad!.toArray(), [0, 1, 1, 1, 0]);
});

test('layer norm over bfloat16 activations with float32 weight and bias: float32 arithmetic rounded once, gradients to all three; convnext_tiny trains under bf16 autocast', () => {
  manualSeed(4);
  const x = randn([2, 5, 5, 16]).mul(3).add(1).bfloat16().requiresGrad_();
  const w = randn([16]).requiresGrad_();
  const b = randn([16]).requiresGrad_();
  const y = F.layerNorm(x, [16], w, b);
  assert.equal(y.dtype, 'bfloat16');
  const want = F.layerNorm(x.detach().float(), [16], w.detach(), b.detach()).bfloat16();
  assert.deepEqual(y.toArray(), want.toArray(), 'normalised in float32, rounded to bfloat16 once');
  y.float().sum().backward();
  assert.deepEqual([x.grad!.dtype, w.grad!.dtype, b.grad!.dtype], ['bfloat16', 'float32', 'float32']);
  assert.ok([x.grad!, w.grad!, b.grad!].every((g) => g.toArray().every(Number.isFinite)));

  // ConvNeXt's LayerNorm2d is this case under autocast: it threw in libtorch 1.13 before.
  const model = zooEntry('convnext_tiny').build({ numClasses: 3 });
  model.train();
  const loss = autocast(() => F.crossEntropy(model.forward(randn([2, 3, 32, 32])).float(), tensor([0, 2], { dtype: 'int64' })));
  loss.backward();
  assert.ok(Number.isFinite(loss.item()));
  assert.ok(model.parameters().every((p) => p.grad !== null && p.grad.dtype === 'float32'));
});
