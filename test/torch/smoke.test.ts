import test from 'node:test';
import assert from 'node:assert/strict';
import { tensor, randn, manualSeed, F } from '../../src/torch/index.js';
import { python, enc, assertClose, type Encoded } from '../helpers/python.js';

test('harness: a conv2d and its gradients match PyTorch', () => {
  manualSeed(0);
  const x = randn([2, 3, 6, 6]).requiresGrad_();
  const w = randn([4, 3, 3, 3]).requiresGrad_();
  const y = F.conv2d(x, w, null, { padding: 1 });
  y.sum().backward();
  const ref = python<{ y: Encoded; gx: Encoded; gw: Encoded }>(`
x = T(inp['x'], True); w = T(inp['w'], True)
y = F.conv2d(x, w, None, padding=1); y.sum().backward()
out = {'y': J(y), 'gx': J(x.grad), 'gw': J(w.grad)}`, { x: enc(x), w: enc(w) });
  assertClose(y, ref.y, 'output');
  assertClose(x.grad!, ref.gx, 'grad x');
  assertClose(w.grad!, ref.gw, 'grad w');
  assert.deepEqual(tensor([1, 2]).shape, [2]);
});
