// SiLU and ReLU6 on bfloat16 CPU tensors run in the addon (native/src/bf16_activations.cc).
// SiLU (visiontune::silu)
// widens each element once, computes in float32 and rounds once, as PyTorch 2.x's CPU kernel does.
// Checked element by element, on channels_last and contiguous tensors with the special values:
// within one bfloat16 ulp of libtorch's float32 silu and silu_backward on the same inputs rounded
// once (the two kernels' exp differ in float32's last bits, which can move a rounding tie). 1.13's
// own bfloat16 kernels round every intermediate (their gradient loses most of its digits where
// 1 + x·(1 − s) cancels): how often they differ is reported, not asserted.
import test from 'node:test';
import assert from 'node:assert/strict';
import { F, manualSeed, randn, tensor, type Tensor } from '../../src/torch/index.js';
import { t } from '../../src/torch/tensor.js';

/** bfloat16 bit patterns of a bfloat16 tensor's values (as sign-magnitude integers, −0 = +0). */
function bf16Bits(x: Tensor): number[] {
  const f = new Float32Array(x.float().contiguous().toArray());
  const u = new Uint32Array(f.buffer);
  return [...u].map((v) => ((v & 0x80000000) ? -((v >>> 16) & 0x7fff) : (v >>> 16)));
}

/** Asserts equal NaN positions and every other element within `ulps` bfloat16 ulps; returns how many differ at all. */
function assertWithinUlps(got: Tensor, want: Tensor, ulps: number, what: string): number {
  assert.equal(got.dtype, 'bfloat16', what);
  assert.deepEqual(got.shape, want.shape, what);
  const [a, b] = [got.float().contiguous().toArray(), want.float().contiguous().toArray()];
  const [p, q] = [bf16Bits(got), bf16Bits(want)];
  let differ = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(b[i]) || Number.isNaN(a[i])) {
      assert.ok(Number.isNaN(a[i]) && Number.isNaN(b[i]), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
      continue;
    }
    if (a[i] === b[i]) continue;
    differ++;
    assert.ok(Math.abs(p[i] - q[i]) <= ulps, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
  return differ;
}

const SPECIALS = [0, -0, Infinity, -Infinity, NaN, 100, -100, 88.5, -88.5, 87.5, -87.5, 20, -20, 1e-30, -1e-30, 1e-39];

function sample(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = randn([n]).mul(4).toArray();
  SPECIALS.forEach((v, i) => { if (i * 7 < n) values[i * 7] = v; });
  return tensor(values, { shape }).bfloat16();
}

/** The layouts each kernel is checked on: a channels_last 4-d tensor and a long contiguous one. */
const CASES = [['channels_last [4, 24, 9, 11]', [4, 24, 9, 11], true], ['contiguous [70001]', [70001], false]] as const;

/**
 * Runs `f` forward on `base` (in the case's layout) and backward from a sampled gradient; checks
 * that the output and the input's gradient keep the layout.
 */
function forwardBackward(f: (x: Tensor) => Tensor, base: Tensor, channelsLast: boolean): { y: Tensor; xs: Tensor; g: Tensor; grad: Tensor } {
  const x = (channelsLast ? base.channelsLast() : base).requiresGrad_();
  const g = channelsLast ? sample(base.shape).channelsLast() : sample(base.shape);
  const y = f(x);
  y.backward(g);
  if (channelsLast) assert.ok(y.isContiguous('channels_last') && x.grad!.isContiguous('channels_last'), 'the layout is kept');
  return { y, xs: x.detach(), g, grad: x.grad! };
}

for (const [name, shape, channelsLast] of CASES) {
  test(`silu on bfloat16 (${name}): values and gradient within one bfloat16 ulp of float32's rounded once`, (tt) => {
    manualSeed(11);
    const { y, xs, g, grad } = forwardBackward(F.silu, sample([...shape]), channelsLast);
    const dy = assertWithinUlps(y, t('aten::silu', xs.float().handle).bfloat16(), 1, 'silu');
    const dg = assertWithinUlps(grad, t('aten::silu_backward', g.float().handle, xs.float().handle).bfloat16(), 1, 'silu gradient');
    tt.diagnostic(`${xs.numel()} elements against float32 rounded once: ${dy} values and ${dg} gradients one ulp off`);
    assert.ok(dy <= xs.numel() / 100 && dg <= xs.numel() / 100, 'off by one ulp only at rare ties');
    const differ = (a: Tensor, b: Tensor): number => a.float().ne(b.float()).sum().item();
    tt.diagnostic(`libtorch's own bfloat16 kernels differ from ours in ${differ(y, t('aten::silu', xs.handle))} values and ` +
      `${differ(grad, t('aten::silu_backward', g.handle, xs.handle))} gradients`);
  });
}

test('silu on a bfloat16 view that is not dense, and on float32, is aten::silu itself', () => {
  manualSeed(12);
  const x = sample([6, 10]).transpose(0, 1);
  assert.ok(!x.isContiguous());
  assert.deepEqual(F.silu(x).toArray(), t('aten::silu', x.handle).toArray());
  const f = randn([5, 7]);
  assert.deepEqual(F.silu(f).toArray(), t('aten::silu', f.handle).toArray());
});

for (const [name, shape, channelsLast] of CASES) {
  test(`relu6 on bfloat16 (${name}): values and gradient equal float32 hardtanh's exactly, 0 and 6 included`, (tt) => {
    manualSeed(13);
    // Boundaries and their neighbours: 0 and 6 take no gradient, as in hardtanh_backward.
    const edges = [0, -0, 6, 5.96875, 6.03125, 0.0078125, -0.0078125];
    const flat = sample([...shape]).float().contiguous().toArray();
    edges.forEach((v, i) => { flat[3 + i * 11] = v; });
    const { y, xs, g, grad } = forwardBackward(F.relu6, tensor(flat, { shape: [...shape] }).bfloat16(), channelsLast);
    assert.equal(assertWithinUlps(y, t('aten::hardtanh', xs.float().handle, 0, 6).bfloat16(), 0, 'relu6'), 0);
    assert.equal(assertWithinUlps(grad, t('aten::hardtanh_backward', g.float().handle, xs.float().handle, 0, 6).bfloat16(), 0, 'relu6 gradient'), 0);
    // clamp's gradient (what bfloat16 ReLU6 was before) passes at exactly 0 and 6 too.
    const [ours, clamp] = [grad, F.where(t('aten::logical_and', xs.ge(0).handle, xs.le(6).handle), g, 0)].map((v) => v.float().toArray());
    const at = xs.float().toArray();
    const differ = ours.flatMap((v, i) => (Object.is(v, clamp[i]) || (v === clamp[i]) ? [] : [at[i]]));
    assert.ok(differ.length > 0 && differ.every((v) => v === 0 || v === 6), `clamp's gradient differs at x = ${differ}`);
    tt.diagnostic(`${xs.numel()} elements; clamp's gradient differs in ${differ.length}, at x = 0 or 6`);
  });
}

test('relu6 on a bfloat16 view that is not dense is clamp(x, 0, 6); on float32 it is hardtanh', () => {
  manualSeed(14);
  const x = sample([6, 10]).transpose(0, 1);
  assert.deepEqual(F.relu6(x).toArray(), t('aten::clamp', x.handle, 0, 6).toArray());
  const f = randn([5, 7]).mul(5);
  assert.deepEqual(F.relu6(f).toArray(), t('aten::hardtanh', f.handle, 0, 6).toArray());
});
