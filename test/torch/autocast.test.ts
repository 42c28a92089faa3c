// bf16 autocast on CPU: the same ops run in bfloat16 as under torch.autocast('cpu'), with the
// same values and gradients; relu6 trains in bfloat16 (libtorch 1.13 has no bfloat16 hardtanh
// backward on CPU, so it is a clamp there, in the Python twin too).
import test from 'node:test';
import assert from 'node:assert/strict';
import { F, autocast, manualSeed, randn, zeros, ones, tensor } from '../../src/torch/index.js';
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
