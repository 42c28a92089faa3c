// Network ops: conv2d, batch_norm, layer_norm, activations, pooling, dropout, losses,
// interpolate, affine_grid + grid_sample and one_hot, against PyTorch; float64 gradchecks.
import test from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, rand, randint, ones, tensor, F, type Tensor } from '../../src/torch/index.js';
import { parityTable, type Case } from '../helpers/parity.js';
import { gradcheck } from '../helpers/gradcheck.js';

manualSeed(2);
const r = (...shape: number[]): Tensor => randn(shape);
/** Uniform on [lo, hi). */
const uniform = (lo: number, hi: number, ...shape: number[]): Tensor => rand(shape).mul(hi - lo).add(lo);
const img = (): Tensor => r(2, 3, 7, 7);

const PY_DEFS = `
def bn(x, rm, rv, w, b, training, momentum=0.1, eps=1e-5):
    m, v = (rm.clone(), rv.clone()) if rm is not None else (None, None)
    y = F.batch_norm(x, m, v, w, b, training, momentum, eps)
    return (y, m, v) if m is not None else y
`;

/** Batch norm on copies of the running stats; returns the output and the updated stats. */
function bn(x: Tensor, rm: Tensor, rv: Tensor, w: Tensor | null, b: Tensor | null, training: boolean,
  momentum = 0.1, eps = 1e-5): Tensor[] {
  const m = rm.clone(), v = rv.clone();
  return [F.batchNorm(x, m, v, w, b, training, momentum, eps), m, v];
}
const bnInputs = (c: number, ...shape: number[]) => ({ x: r(...shape), rm: r(c).mul(0.1), rv: uniform(0.5, 1.5, c), w: r(c), b: r(c) });
const act = () => ({ a: r(4, 6).mul(4) });
// Class weights `cw` are constants: PyTorch does not differentiate with respect to them.
const logits = () => ({ x: r(6, 5), t: randint(0, 5, [6]), cw: uniform(0.2, 2, 5) });

const cases: Case[] = [
  // conv2d
  { name: 'conv2d with bias', inputs: { x: img(), w: r(4, 3, 3, 3), b: r(4) }, js: ({ x, w, b }) => F.conv2d(x, w, b), py: 'F.conv2d(x, w, b)' },
  { name: 'conv2d stride 2 padding 1', inputs: { x: img(), w: r(4, 3, 3, 3), b: r(4) },
    js: ({ x, w, b }) => F.conv2d(x, w, b, { stride: 2, padding: 1 }), py: 'F.conv2d(x, w, b, stride=2, padding=1)' },
  { name: 'conv2d dilation 2', inputs: { x: img(), w: r(4, 3, 3, 3) },
    js: ({ x, w }) => F.conv2d(x, w, null, { dilation: 2, padding: 2 }), py: 'F.conv2d(x, w, None, dilation=2, padding=2)' },
  { name: 'conv2d groups 2', inputs: { x: r(2, 4, 6, 6), w: r(6, 2, 3, 3), b: r(6) },
    js: ({ x, w, b }) => F.conv2d(x, w, b, { groups: 2, padding: 1 }), py: 'F.conv2d(x, w, b, groups=2, padding=1)' },
  { name: 'conv2d depthwise', inputs: { x: r(2, 4, 6, 6), w: r(4, 1, 3, 3) },
    js: ({ x, w }) => F.conv2d(x, w, null, { groups: 4, padding: 1, stride: 2 }), py: 'F.conv2d(x, w, None, groups=4, padding=1, stride=2)' },
  { name: 'conv2d asymmetric stride and padding', inputs: { x: img(), w: r(2, 3, 3, 2), b: r(2) },
    js: ({ x, w, b }) => F.conv2d(x, w, b, { stride: [2, 1], padding: [1, 0], dilation: [1, 2] }),
    py: 'F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2))' },
  { name: 'conv2d padding same with an even kernel', inputs: { x: img(), w: r(4, 3, 4, 2) },
    js: ({ x, w }) => F.conv2d(x, w, null, { padding: 'same' }), py: "F.conv2d(x, w, None, padding='same')" },
  { name: 'conv2d padding valid', inputs: { x: img(), w: r(4, 3, 3, 3) },
    js: ({ x, w }) => F.conv2d(x, w, null, { padding: 'valid' }), py: "F.conv2d(x, w, None, padding='valid')" },
  { name: 'conv2d on channels_last keeps the layout', inputs: { x: img(), w: r(4, 3, 3, 3), b: r(4) }, strides: true,
    js: ({ x, w, b }) => F.conv2d(x.channelsLast(), w, b, { padding: 1 }),
    py: 'F.conv2d(x.contiguous(memory_format=torch.channels_last), w, b, padding=1)' },
  // batch_norm and layer_norm
  { name: 'batch_norm train updates running stats', inputs: bnInputs(3, 4, 3, 5, 5),
    js: ({ x, rm, rv, w, b }) => bn(x, rm, rv, w, b, true), py: 'bn(x, rm, rv, w, b, True)' },
  { name: 'batch_norm train, momentum 0.3, eps 1e-3, no affine', inputs: bnInputs(3, 4, 3, 5, 5),
    js: ({ x, rm, rv }) => bn(x, rm, rv, null, null, true, 0.3, 1e-3), py: 'bn(x, rm, rv, None, None, True, 0.3, 1e-3)' },
  { name: 'batch_norm train on [N, C]', inputs: bnInputs(5, 8, 5),
    js: ({ x, rm, rv, w, b }) => bn(x, rm, rv, w, b, true), py: 'bn(x, rm, rv, w, b, True)' },
  { name: 'batch_norm eval uses and keeps running stats', inputs: bnInputs(3, 4, 3, 5, 5),
    js: ({ x, rm, rv, w, b }) => bn(x, rm, rv, w, b, false), py: 'bn(x, rm, rv, w, b, False)' },
  { name: 'batch_norm train without running stats', inputs: { x: r(4, 3, 2, 2), w: r(3), b: r(3) },
    js: ({ x, w, b }) => F.batchNorm(x, null, null, w, b, true), py: 'bn(x, None, None, w, b, True)' },
  { name: 'layer_norm', inputs: { x: r(2, 3, 4), w: r(4), b: r(4) }, js: ({ x, w, b }) => F.layerNorm(x, [4], w, b), py: 'F.layer_norm(x, [4], w, b)' },
  { name: 'layer_norm over two dims, no affine', inputs: { x: r(2, 3, 4) },
    js: ({ x }) => F.layerNorm(x, [3, 4], null, null, 1e-3), py: 'F.layer_norm(x, [3, 4], None, None, 1e-3)' },
  // activations, on values spread over [-12, 12] so that relu6 and the hard ones saturate
  { name: 'relu', inputs: act(), js: ({ a }) => [F.relu(a), a.relu()], py: '(F.relu(a), a.relu())' },
  { name: 'relu6', inputs: act(), js: ({ a }) => F.relu6(a), py: 'F.relu6(a)' },
  { name: 'silu', inputs: act(), js: ({ a }) => F.silu(a), py: 'F.silu(a)' },
  { name: 'gelu', inputs: act(), js: ({ a }) => [F.gelu(a), F.gelu(a, 'tanh')], py: "(F.gelu(a), F.gelu(a, approximate='tanh'))" },
  { name: 'sigmoid', inputs: act(), js: ({ a }) => [F.sigmoid(a), a.sigmoid()], py: '(torch.sigmoid(a), a.sigmoid())' },
  { name: 'hardswish', inputs: act(), js: ({ a }) => F.hardswish(a), py: 'F.hardswish(a)' },
  { name: 'hardsigmoid', inputs: act(), js: ({ a }) => F.hardsigmoid(a), py: 'F.hardsigmoid(a)' },
  { name: 'tanh', inputs: act(), js: ({ a }) => [F.tanh(a), a.tanh()], py: '(torch.tanh(a), a.tanh())' },
  { name: 'leaky_relu', inputs: act(), js: ({ a }) => [F.leakyRelu(a), F.leakyRelu(a, 0.2)], py: '(F.leaky_relu(a), F.leaky_relu(a, 0.2))' },
  // pooling
  { name: 'max_pool2d', inputs: { x: r(2, 3, 8, 8) }, js: ({ x }) => F.maxPool2d(x, 2), py: 'F.max_pool2d(x, 2)' },
  { name: 'max_pool2d 3, stride 2, padding 1', inputs: { x: img() },
    js: ({ x }) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }), py: 'F.max_pool2d(x, 3, stride=2, padding=1)' },
  { name: 'max_pool2d ceil mode and dilation', inputs: { x: img() },
    js: ({ x }) => [F.maxPool2d(x, 2, { ceilMode: true }), F.maxPool2d(x, [2, 3], { dilation: 2, stride: 1 })],
    py: '(F.max_pool2d(x, 2, ceil_mode=True), F.max_pool2d(x, (2, 3), dilation=2, stride=1))' },
  { name: 'avg_pool2d', inputs: { x: r(2, 3, 8, 8) }, js: ({ x }) => F.avgPool2d(x, 2), py: 'F.avg_pool2d(x, 2)' },
  { name: 'avg_pool2d padding, with and without the padding counted', inputs: { x: img() },
    js: ({ x }) => [F.avgPool2d(x, 3, { stride: 2, padding: 1 }), F.avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false })],
    py: '(F.avg_pool2d(x, 3, stride=2, padding=1), F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False))' },
  { name: 'avg_pool2d ceil mode', inputs: { x: img() }, js: ({ x }) => F.avgPool2d(x, 2, { ceilMode: true }), py: 'F.avg_pool2d(x, 2, ceil_mode=True)' },
  { name: 'adaptive_avg_pool2d', inputs: { x: r(2, 3, 7, 5) }, js: ({ x }) => [F.adaptiveAvgPool2d(x, 1), F.adaptiveAvgPool2d(x, [3, 2])],
    py: '(F.adaptive_avg_pool2d(x, 1), F.adaptive_avg_pool2d(x, (3, 2)))' },
  { name: 'adaptive_max_pool2d', inputs: { x: r(2, 3, 7, 5) }, js: ({ x }) => [F.adaptiveMaxPool2d(x, 2), F.adaptiveMaxPool2d(x, [3, 1])],
    py: '(F.adaptive_max_pool2d(x, 2), F.adaptive_max_pool2d(x, (3, 1)))' },
  // dropout
  { name: 'dropout p=0 in training is the identity', inputs: act(), js: ({ a }) => F.dropout(a, 0, true), py: 'F.dropout(a, 0.0, True)' },
  { name: 'dropout in eval is the identity', inputs: act(), js: ({ a }) => F.dropout(a, 0.5, false), py: 'F.dropout(a, 0.5, False)' },
  { name: 'dropout in training draws the mask torch draws for the same seed', inputs: { a: r(16, 32) }, seed: 5,
    js: ({ a }) => F.dropout(a, 0.3), py: 'F.dropout(a, 0.3)' },
  // losses
  { name: 'cross_entropy mean', inputs: logits(), js: ({ x, t }) => F.crossEntropy(x, t), py: 'F.cross_entropy(x, t)' },
  { name: 'cross_entropy sum and none', inputs: logits(),
    js: ({ x, t }) => [F.crossEntropy(x, t, { reduction: 'sum' }), F.crossEntropy(x, t, { reduction: 'none' })],
    py: "(F.cross_entropy(x, t, reduction='sum'), F.cross_entropy(x, t, reduction='none'))" },
  { name: 'cross_entropy class weights', inputs: logits(),
    js: ({ x, t, cw }) => [F.crossEntropy(x, t, { weight: cw }), F.crossEntropy(x, t, { weight: cw, reduction: 'none' })],
    py: "(F.cross_entropy(x, t, weight=cw), F.cross_entropy(x, t, weight=cw, reduction='none'))" },
  { name: 'cross_entropy label smoothing', inputs: logits(),
    js: ({ x, t }) => [F.crossEntropy(x, t, { labelSmoothing: 0.1 }), F.crossEntropy(x, t, { labelSmoothing: 0.2, reduction: 'sum' })],
    py: "(F.cross_entropy(x, t, label_smoothing=0.1), F.cross_entropy(x, t, label_smoothing=0.2, reduction='sum'))" },
  { name: 'cross_entropy label smoothing with class weights', inputs: logits(),
    js: ({ x, t, cw }) => [F.crossEntropy(x, t, { weight: cw, labelSmoothing: 0.1 }), F.crossEntropy(x, t, { weight: cw, labelSmoothing: 0.1, reduction: 'none' })],
    py: "(F.cross_entropy(x, t, weight=cw, label_smoothing=0.1), F.cross_entropy(x, t, weight=cw, label_smoothing=0.1, reduction='none'))" },
  { name: 'cross_entropy ignore_index', inputs: logits(),
    js: ({ x, t }) => F.crossEntropy(x, t, { ignoreIndex: 2 }), py: 'F.cross_entropy(x, t, ignore_index=2)' },
  { name: 'cross_entropy probability targets', inputs: { x: r(6, 5), p: r(6, 5).softmax(1) },
    js: ({ x, p }) => [F.crossEntropy(x, p), F.crossEntropy(x, p, { labelSmoothing: 0.1, reduction: 'none' })],
    py: "(F.cross_entropy(x, p), F.cross_entropy(x, p, label_smoothing=0.1, reduction='none'))" },
  { name: 'cross_entropy on [N, C, H, W]', inputs: { x: r(2, 4, 3, 3), t: randint(0, 4, [2, 3, 3]) },
    js: ({ x, t }) => F.crossEntropy(x, t, { labelSmoothing: 0.05 }), py: 'F.cross_entropy(x, t, label_smoothing=0.05)' },
  { name: 'nll_loss and mse_loss', inputs: { ...logits(), y: r(6, 5) },
    js: ({ x, t, cw, y }) => [F.nllLoss(x.logSoftmax(1), t, { weight: cw }), F.mseLoss(x, y), F.mseLoss(x, y, 'sum'), F.mseLoss(x, y, 'none')],
    py: "(F.nll_loss(x.log_softmax(1), t, weight=cw), F.mse_loss(x, y), F.mse_loss(x, y, reduction='sum'), F.mse_loss(x, y, reduction='none'))" },
  // interpolate
  { name: 'interpolate bilinear to a size', inputs: { x: r(2, 2, 4, 5) },
    js: ({ x }) => [F.interpolate(x, { size: [7, 9], mode: 'bilinear' }), F.interpolate(x, { size: [7, 9], mode: 'bilinear', alignCorners: true })],
    py: "(F.interpolate(x, size=(7, 9), mode='bilinear'), F.interpolate(x, size=(7, 9), mode='bilinear', align_corners=True))" },
  { name: 'interpolate bilinear by a scale', inputs: { x: r(2, 2, 4, 5) },
    js: ({ x }) => [F.interpolate(x, { scaleFactor: 2, mode: 'bilinear' }), F.interpolate(x, { scaleFactor: [1.5, 0.5], mode: 'bilinear', alignCorners: true })],
    py: "(F.interpolate(x, scale_factor=2, mode='bilinear'), F.interpolate(x, scale_factor=(1.5, 0.5), mode='bilinear', align_corners=True))" },
  { name: 'interpolate bilinear downsampling', inputs: { x: r(1, 3, 9, 8) },
    js: ({ x }) => [F.interpolate(x, { size: 4, mode: 'bilinear' }), F.interpolate(x, { scaleFactor: 0.5, mode: 'bilinear' })],
    py: "(F.interpolate(x, size=4, mode='bilinear'), F.interpolate(x, scale_factor=0.5, mode='bilinear'))" },
  { name: 'interpolate nearest', inputs: { x: r(2, 2, 4, 5) },
    js: ({ x }) => [F.interpolate(x, { scaleFactor: 2 }), F.interpolate(x, { size: [7, 3], mode: 'nearest' })],
    py: "(F.interpolate(x, scale_factor=2), F.interpolate(x, size=(7, 3), mode='nearest'))" },
  // affine_grid and grid_sample
  { name: 'affine_grid', inputs: { theta: r(2, 2, 3) },
    js: ({ theta }) => [F.affineGrid(theta, [2, 3, 4, 5]), F.affineGrid(theta, [2, 3, 4, 5], true)],
    py: '(F.affine_grid(theta, [2, 3, 4, 5], align_corners=False), F.affine_grid(theta, [2, 3, 4, 5], align_corners=True))' },
  { name: 'grid_sample bilinear, zeros padding', inputs: { x: r(2, 3, 5, 6), g: uniform(-1.2, 1.2, 2, 4, 3, 2) },
    js: ({ x, g }) => [F.gridSample(x, g), F.gridSample(x, g, { alignCorners: true })],
    py: '(F.grid_sample(x, g, align_corners=False), F.grid_sample(x, g, align_corners=True))' },
  { name: 'grid_sample border and reflection padding', inputs: { x: r(2, 3, 5, 6), g: uniform(-1.5, 1.5, 2, 4, 3, 2) },
    js: ({ x, g }) => [F.gridSample(x, g, { paddingMode: 'border' }), F.gridSample(x, g, { paddingMode: 'reflection', alignCorners: true })],
    py: "(F.grid_sample(x, g, padding_mode='border', align_corners=False), F.grid_sample(x, g, padding_mode='reflection', align_corners=True))" },
  { name: 'grid_sample nearest and bicubic', inputs: { x: r(2, 3, 5, 6), g: uniform(-1, 1, 2, 4, 3, 2) },
    js: ({ x, g }) => [F.gridSample(x, g, { mode: 'nearest' }), F.gridSample(x, g, { mode: 'bicubic' })],
    py: "(F.grid_sample(x, g, mode='nearest', align_corners=False), F.grid_sample(x, g, mode='bicubic', align_corners=False))" },
  { name: 'affine_grid then grid_sample', inputs: { x: r(2, 3, 5, 6), theta: r(2, 2, 3).mul(0.3).add(tensor([[1, 0, 0], [0, 1, 0]])) },
    js: ({ x, theta }) => F.gridSample(x, F.affineGrid(theta, [2, 3, 4, 4])),
    py: 'F.grid_sample(x, F.affine_grid(theta, [2, 3, 4, 4], align_corners=False), align_corners=False)' },
  // one_hot and pad
  { name: 'one_hot', inputs: { i: randint(0, 4, [5]), j: randint(0, 3, [2, 3]) },
    js: ({ i, j }) => [F.oneHot(i, 6), F.oneHot(i), F.oneHot(j, 3)], py: '(F.one_hot(i, 6), F.one_hot(i), F.one_hot(j, 3))' },
  { name: 'pad', inputs: { x: r(1, 2, 3, 4) },
    js: ({ x }) => [F.pad(x, [1, 2]), F.pad(x, [1, 1, 2, 0], 'constant', 0.5), F.pad(x, [2, 1, 1, 2], 'reflect'), F.pad(x, [1, 1, 1, 1], 'replicate')],
    py: "(F.pad(x, [1, 2]), F.pad(x, [1, 1, 2, 0], value=0.5), F.pad(x, [2, 1, 1, 2], mode='reflect'), F.pad(x, [1, 1, 1, 1], mode='replicate'))" },
];
for (const c of cases) {
  c.grad ??= Object.entries(c.inputs ?? {}).filter(([k, v]) => v.dtype === 'float32' && !['rm', 'rv', 'cw'].includes(k)).map(([k]) => k);
}

const check = parityTable(cases, PY_DEFS);
for (const c of cases) test(`${c.name} matches PyTorch`, () => check(c.name));

test('dropout in training zeroes a fraction p and scales survivors by 1/(1-p)', () => {
  const n = 100_000;
  for (const p of [0.1, 0.5, 0.8]) {
    const x = ones([n]).requiresGrad_();
    const y = F.dropout(x, p);
    const values = y.toArray();
    const zeroed = values.filter((v) => v === 0).length / n;
    // Binomial standard deviation is at most 0.0016 here; 0.01 is over six of them.
    assert.ok(Math.abs(zeroed - p) < 0.01, `p=${p}: ${zeroed} zeroed`);
    const scale = Math.fround(1 / (1 - p));
    assert.ok(values.every((v) => v === 0 || v === scale), `p=${p}: survivors are 1/(1-p)`);
    y.sum().backward();
    assert.deepEqual(x.grad!.toArray(), values, `p=${p}: the gradient is the mask times 1/(1-p)`);
  }
  assert.ok(F.dropout(ones([100]), 1).toArray().every((v) => v === 0), 'p=1 zeroes everything');
  assert.throws(() => F.dropout(ones([2]), 1.5), /dropout/);
});

test('float64 finite-difference gradient checks', () => {
  manualSeed(9);
  const d = (...shape: number[]): Tensor => randn(shape, { dtype: 'float64' });
  const x = d(2, 4, 5, 5);
  gradcheck((x, w, b) => F.conv2d(x, w, b, { stride: 2, padding: 1, dilation: [1, 2], groups: 2 }), [x, d(4, 2, 3, 3), d(4)], 'conv2d');
  gradcheck((x, w, b) => bn(x, d(4).mul(0), d(4).abs(), w, b, true)[0], [x, d(4), d(4)], 'batch_norm train');
  gradcheck((x, w, b) => F.layerNorm(x, [5, 5], w, b), [x, d(5, 5), d(5, 5)], 'layer_norm');
  gradcheck((x) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }), [x], 'max_pool2d');
  gradcheck((x) => F.adaptiveAvgPool2d(x, [3, 2]), [x], 'adaptive_avg_pool2d');
  gradcheck((x) => F.interpolate(x, { size: [7, 3], mode: 'bilinear' }), [x], 'interpolate bilinear');
  const t = randint(0, 4, [6]);
  const cw = d(4).abs();
  gradcheck((z) => F.crossEntropy(z, t, { weight: cw, labelSmoothing: 0.1 }), [d(6, 4)], 'cross_entropy');
  gradcheck((x, g) => F.gridSample(x, g.tanh()), [x, d(2, 3, 4, 2)], 'grid_sample', { atol: 1e-4 });
  gradcheck((th) => F.affineGrid(th, [2, 1, 3, 4]), [d(2, 2, 3)], 'affine_grid');
  gradcheck((a) => F.gelu(a).add(F.silu(a)).add(F.hardswish(a.mul(3))).add(a.softmax(1)), [d(3, 5)], 'activations');
});

test('gradcheck catches a wrong gradient', () => {
  // x.detach() * x has gradient x by autograd but 2x in truth.
  assert.throws(() => gradcheck((x) => x.detach().mul(x), [randn([4], { dtype: 'float64' })], 'detached'), /finite differences/);
});

test('in-place activations give the out-of-place values and gradients through a batch norm, and return their input', () => {
  manualSeed(4);
  const x0 = randn([4, 3, 5, 5]);
  const w0 = rand([3]).add(0.5);
  const run = (act: (y: Tensor) => Tensor): { y: number[]; gx: number[]; gw: number[]; same: boolean } => {
    const x = x0.clone().requiresGrad_();
    const w = w0.clone().requiresGrad_();
    const normed = F.batchNorm(x.mul(3), null, null, w, null, true);
    const y = act(normed);
    y.mul(y).sum().backward();
    return { y: y.toArray(), gx: x.grad!.toArray(), gw: w.grad!.toArray(), same: y === normed };
  };
  const pairs: [string, (y: Tensor, inplace: boolean) => Tensor][] = [
    ['relu', (y, i) => F.relu(y, i)], ['relu6', (y, i) => F.relu6(y, i)], ['silu', (y, i) => F.silu(y, i)], ['hardswish', (y, i) => F.hardswish(y, i)],
  ];
  for (const [name, act] of pairs) {
    const fresh = run((y) => act(y, false));
    const inPlace = run((y) => act(y, true));
    assert.ok(!fresh.same && inPlace.same, `${name}: inplace returns the tensor it overwrote, out-of-place a new one`);
    assert.deepEqual(inPlace.y, fresh.y, `${name}: values`);
    assert.deepEqual(inPlace.gx, fresh.gx, `${name}: input gradient`);
    assert.deepEqual(inPlace.gw, fresh.gw, `${name}: batch-norm weight gradient`);
  }
  // As in PyTorch: a leaf that requires grad cannot be overwritten.
  const leaf = randn([3]).requiresGrad_();
  assert.throws(() => F.relu(leaf, true), (e: unknown) => e instanceof Error && /relu_/.test(e.message) && /in-place/.test(e.message) && !e.message.includes('\n'));
});
