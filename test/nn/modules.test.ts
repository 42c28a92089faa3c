import test from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, tensor, tidy } from '../../src/torch/index.js';
import * as nn from '../../src/nn/index.js';
import { python, enc, assertClose, reductionSlack, type Encoded } from '../helpers/python.js';

// One module per layer type, built in the same order in both languages so that, with the same
// seed, their initial weights must be identical.
function buildJs(): nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d(3, 8, 3, { padding: 1 }),
    new nn.BatchNorm2d(8),
    new nn.SiLU(),
    new nn.Conv2d(8, 8, 3, { padding: 1, groups: 8, bias: false }),
    new nn.Sequential(new nn.Hardswish(), new nn.ReLU6()),
    new nn.AdaptiveAvgPool2d(1),
    new nn.Flatten(),
    new nn.LayerNorm(8),
    new nn.Dropout(0.2),
    new nn.Linear(8, 5),
    new nn.BatchNorm1d(5),
    new nn.GELU(),
    new nn.Linear(5, 3, { bias: false }),
  );
}

const PY_MODEL = `
def build():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.SiLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
        nn.Sequential(nn.Hardswish(), nn.ReLU6()),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LayerNorm(8), nn.Dropout(0.2),
        nn.Linear(8, 5), nn.BatchNorm1d(5), nn.GELU(), nn.Linear(5, 3, bias=False))
`;

function encodeState(m: nn.Module): Record<string, Encoded> {
  return Object.fromEntries([...m.stateDict()].map(([k, v]) => [k, enc(v)]));
}

test('initial weights, names and order match PyTorch for the same seed', () => {
  manualSeed(7);
  const model = buildJs();
  const ref = python<{ keys: string[]; state: Record<string, Encoded>; params: string[] }>(`${PY_MODEL}
torch.manual_seed(7)
m = build()
out = {'keys': list(m.state_dict().keys()), 'state': {k: J(v) for k, v in m.state_dict().items()},
       'params': [k for k, _ in m.named_parameters()]}`);
  assert.deepEqual([...model.stateDict().keys()], ref.keys);
  assert.deepEqual(model.namedParameters().map(([k]) => k), ref.params);
  for (const [k, v] of model.stateDict()) assertClose(v, ref.state[k], k, { rtol: 0, atol: 0 });
});

test('forward in train and eval mode, gradients and batch-norm buffers match PyTorch', () => {
  manualSeed(3);
  const model = buildJs();
  // Dropout draws random numbers, so it is off on both sides for the comparison.
  const dropout = model.at(8) as nn.Dropout;
  Object.assign(dropout, { p: 0 });
  const initialState = encodeState(model);
  const x = randn([4, 3, 6, 6]);
  const yTrain = model.train().forward(x);
  yTrain.mul(tensor([1, -2, 3])).sum().backward();
  const yEval = model.eval().forward(x);
  const ref = python<{ train: Encoded; eval: Encoded; grads: Record<string, Encoded>; state: Record<string, Encoded> }>(`${PY_MODEL}
m = build(); m[8].p = 0.0
m.load_state_dict({k: T(v) for k, v in inp['state'].items()})
x = T(inp['x'])
y = m.train()(x); (y * torch.tensor([1., -2., 3.])).sum().backward()
after = {k: J(v) for k, v in m.state_dict().items()}
out = {'train': J(y), 'eval': J(m.eval()(x)), 'grads': {k: J(p.grad) for k, p in m.named_parameters()}, 'state': after}`,
  { state: initialState, x: enc(x) });
  // No sum in this model is longer than the input: its float32 rounding may differ per CPU by that much.
  const slack = (r: Encoded): { rtol: number; atol: number } => ({ rtol: 1e-5, atol: Math.max(1e-6, reductionSlack(r, x.numel())) });
  assertClose(yTrain, ref.train, 'train-mode output', slack(ref.train));
  assertClose(yEval, ref.eval, 'eval-mode output', slack(ref.eval));
  for (const [k, p] of model.namedParameters()) assertClose(p.grad!, ref.grads[k], `grad ${k}`, { ...slack(ref.grads[k]), rtol: 1e-4 });
  for (const [k, v] of model.stateDict()) assertClose(v, ref.state[k], `after step: ${k}`, slack(ref.state[k]));
});

test('train() and eval() reach every submodule', () => {
  const model = buildJs();
  model.eval();
  assert.ok(model.modules().every((m) => !m.training));
  model.train();
  assert.ok(model.modules().every((m) => m.training));
});

test('loadStateDict copies values and reports missing, unexpected and mismatched keys', () => {
  const a = buildJs(), b = buildJs();
  b.loadStateDict(a.stateDict());
  for (const [k, v] of b.stateDict()) assert.ok(v.allclose(a.stateDict().get(k)!, 0, 0), k);

  const sd = new Map(a.stateDict());
  sd.delete('0.bias');
  sd.set('extra.weight', randn([2]));
  sd.set('9.weight', randn([4, 8]));
  assert.throws(() => b.loadStateDict(sd), (e: unknown) => {
    assert.ok(e instanceof nn.StateDictError);
    assert.deepEqual(e.missingKeys, ['0.bias']);
    assert.deepEqual(e.unexpectedKeys, ['extra.weight']);
    assert.deepEqual(e.shapeMismatches, [{ key: '9.weight', expected: [5, 8], got: [4, 8] }]);
    assert.match(e.message, /missing keys: 0\.bias; unexpected keys: extra\.weight; size mismatch for 9\.weight/);
    return true;
  });
  sd.set('9.weight', randn([5, 8]));
  const r = b.loadStateDict(sd, { strict: false });
  assert.deepEqual(r, { missingKeys: ['0.bias'], unexpectedKeys: ['extra.weight'] });
  assert.ok(b.getSubmodule('9').getTensor('weight')!.allclose(sd.get('9.weight')!, 0, 0));
});

test('parameters are owned by the module: a tidy scope around construction does not free them', () => {
  const model = tidy(() => buildJs());
  assert.ok(model.parameters().every((p) => !p.isDisposed && p.requiresGrad));
  assert.equal(model.numParameters(), model.parameters().reduce((n, p) => n + p.numel(), 0));
});

test('BatchNorm with momentum null keeps a cumulative average, as PyTorch does', () => {
  const bn = new nn.BatchNorm1d(3, { momentum: null });
  const xs = [randn([8, 3]), randn([8, 3]).add(2)];
  for (const x of xs) bn.forward(x);
  const ref = python<{ mean: Encoded; var: Encoded }>(`
bn = nn.BatchNorm1d(3, momentum=None)
for x in inp: bn(T(x))
out = {'mean': J(bn.running_mean), 'var': J(bn.running_var)}`, xs.map(enc));
  assertClose(bn.getTensor('running_mean')!, ref.mean, 'running_mean');
  assertClose(bn.getTensor('running_var')!, ref.var, 'running_var');
  assert.equal(bn.getTensor('num_batches_tracked')!.item(), 2);
});

test('StochasticDepth drops whole rows in training and passes through in eval', () => {
  const sd = new nn.StochasticDepth(0.5, 'row');
  manualSeed(1);
  const y = sd.forward(randn([64, 4]).abs().add(1));
  const rows = y.toArray();
  for (let r = 0; r < 64; r++) {
    const row = rows.slice(r * 4, r * 4 + 4);
    assert.ok(row.every((v) => v === 0) || row.every((v) => v >= 2), `row ${r} is all dropped or all scaled`);
  }
  const x = randn([2, 4]);
  assert.equal(sd.eval().forward(x), x);
});

test('to() converts dtype and memory format, keeping integer buffers', () => {
  const model = buildJs();
  model.to({ dtype: 'float64' });
  assert.ok(model.parameters().every((p) => p.dtype === 'float64' && p.requiresGrad));
  assert.equal(model.getSubmodule('1').getTensor('num_batches_tracked')!.dtype, 'int64');
  model.to({ memoryFormat: 'channels_last' });
  assert.ok((model.at(0) as nn.Conv2d).getTensor('weight')!.isContiguous('channels_last'));
  const y = model.eval().forward(randn([2, 3, 6, 6], { dtype: 'float64' }));
  assert.deepEqual(y.shape, [2, 3]);
});

test('bad module inputs throw errors that name the layer', () => {
  assert.throws(() => new nn.Conv2d(3, 8, 3, { groups: 2 }), /Conv2d: in_channels 3 .* divisible by groups 2/);
  assert.throws(() => new nn.BatchNorm2d(3).forward(randn([2, 3])), /BatchNorm2d: expected 4D input \(got 2D input\)/);
  assert.throws(() => new nn.Linear(4, 2).forward(randn([3, 5])), /linear: /);
  assert.throws(() => new nn.Sequential().at(0), /Sequential: index 0 is out of range/);
  assert.throws(() => new nn.Dropout(1.5), /Dropout: probability/);
});
