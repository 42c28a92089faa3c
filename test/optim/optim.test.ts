// The optimizers against torch.optim: same initial parameters, same gradient sequence, same
// hyper-parameters (some changed between steps, as a scheduler does) → same parameters; and
// torch's state_dict loads into ours and continues the same way.
import test from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, tidy, noGrad, type Tensor } from '../../src/torch/index.js';
import {
  SGD, Adam, AdamW, ADAMW_DEFAULTS, OptimError, type Optimizer, type OptimizerStateDict, type ParamState,
} from '../../src/optim/index.js';
import { python, enc, dec, assertClose, type Encoded } from '../helpers/python.js';
import { undisposed } from '../helpers/train.js';

const STEPS = 5;
/** The step before which `change` is applied (and torch's state_dict is taken). */
const CHANGE_AT = 3;

interface Case {
  name: string;
  /** The Python constructor call, given `groups` (two lists of parameters) and `allp` (all of them). */
  py: string;
  make(groups: Tensor[][]): Optimizer;
  /** Hyper-parameters of group 0 set before step CHANGE_AT, as a scheduler would (keys both languages share). */
  change?: { lr?: number; betas?: [number, number]; momentum?: number };
}

const all = (g: Tensor[][]): Tensor[] => g.flat();

const CASES: Case[] = [
  { name: 'SGD', py: 'torch.optim.SGD(allp, lr=0.1)', make: (g) => new SGD(all(g), { lr: 0.1 }) },
  { name: 'SGD momentum', py: 'torch.optim.SGD(allp, lr=0.05, momentum=0.9)', make: (g) => new SGD(all(g), { lr: 0.05, momentum: 0.9 }) },
  {
    name: 'SGD momentum, dampening, weight decay', py: 'torch.optim.SGD(allp, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)',
    make: (g) => new SGD(all(g), { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }),
  },
  {
    name: 'SGD Nesterov, weight decay', py: 'torch.optim.SGD(allp, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)',
    make: (g) => new SGD(all(g), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }),
  },
  {
    name: 'SGD maximize', py: 'torch.optim.SGD(allp, lr=0.01, momentum=0.5, maximize=True)',
    make: (g) => new SGD(all(g), { lr: 0.01, momentum: 0.5, maximize: true }),
  },
  {
    name: 'SGD with lr and momentum changed between steps', py: 'torch.optim.SGD(allp, lr=0.1, momentum=0.95)',
    make: (g) => new SGD(all(g), { lr: 0.1, momentum: 0.95 }), change: { lr: 0.02, momentum: 0.85 },
  },
  { name: 'AdamW defaults', py: 'torch.optim.AdamW(allp)', make: (g) => new AdamW(all(g)) },
  {
    name: 'AdamW with lr and betas changed between steps', py: 'torch.optim.AdamW(allp, lr=0.01, betas=(0.95, 0.99), weight_decay=0.1)',
    make: (g) => new AdamW(all(g), { lr: 0.01, betas: [0.95, 0.99], weightDecay: 0.1 }), change: { lr: 0.003, betas: [0.85, 0.99] },
  },
  {
    name: 'AdamW amsgrad', py: 'torch.optim.AdamW(allp, lr=0.01, amsgrad=True, eps=1e-5)',
    make: (g) => new AdamW(all(g), { lr: 0.01, amsgrad: true, eps: 1e-5 }),
  },
  { name: 'Adam defaults', py: 'torch.optim.Adam(allp)', make: (g) => new Adam(all(g)) },
  {
    name: 'Adam with L2 weight decay', py: 'torch.optim.Adam(allp, lr=0.01, weight_decay=0.05, eps=1e-6)',
    make: (g) => new Adam(all(g), { lr: 0.01, weightDecay: 0.05, eps: 1e-6 }),
  },
  {
    name: 'Adam amsgrad, maximize', py: 'torch.optim.Adam(allp, lr=0.02, amsgrad=True, maximize=True, weight_decay=0.01)',
    make: (g) => new Adam(all(g), { lr: 0.02, amsgrad: true, maximize: true, weightDecay: 0.01 }),
  },
  {
    name: 'AdamW with two parameter groups',
    py: `torch.optim.AdamW([{'params': groups[0]}, {'params': groups[1], 'lr': 0.02, 'betas': (0.5, 0.9), 'weight_decay': 0}],
        lr=0.005, weight_decay=0.2)`,
    make: (g) => new AdamW([{ params: g[0] }, { params: g[1], lr: 0.02, betas: [0.5, 0.9], weightDecay: 0 }], { lr: 0.005, weightDecay: 0.2 }),
    change: { lr: 0.001 },
  },
  {
    // One group whose parameters reach different step counts (the second sits out step 1): one foreach call per count.
    name: 'AdamW foreach, parameters at different step counts', py: 'torch.optim.AdamW(allp, lr=0.01, weight_decay=0.1, foreach=True)',
    make: (g) => new AdamW(all(g), { lr: 0.01, weightDecay: 0.1, foreach: true }), change: { lr: 0.003, betas: [0.85, 0.99] },
  },
  {
    name: 'AdamW foreach with two parameter groups',
    py: `torch.optim.AdamW([{'params': groups[0]}, {'params': groups[1], 'lr': 0.02, 'betas': (0.5, 0.9), 'weight_decay': 0}],
        lr=0.005, weight_decay=0.2, foreach=True)`,
    make: (g) => new AdamW([{ params: g[0] }, { params: g[1], lr: 0.02, betas: [0.5, 0.9], weightDecay: 0 }], { lr: 0.005, weightDecay: 0.2, foreach: true }),
    change: { lr: 0.001 },
  },
  {
    name: 'SGD with two parameter groups',
    py: `torch.optim.SGD([{'params': groups[0], 'weight_decay': 0.05}, {'params': groups[1], 'lr': 0.5, 'momentum': 0}],
        lr=0.1, momentum=0.9)`,
    make: (g) => new SGD([{ params: g[0], weightDecay: 0.05 }, { params: g[1], lr: 0.5, momentum: 0 }], { lr: 0.1, momentum: 0.9 }),
    change: { lr: 0.3 },
  },
];

/** torch's state_dict as JSON: tensors encoded, the rest as Python had it. */
interface PyStateDict {
  state: Record<string, Record<string, Encoded | number | null>>;
  param_groups: ({ params: number[] } & Record<string, unknown>)[];
}
interface PyResult {
  final: Encoded[][];
  params3: Encoded[][];
  sd3: PyStateDict;
}

// Sets each parameter's gradient for `step`; the second group gets none at step 1 (it must not move then).
function setGrads(groups: Tensor[][], grads: Tensor[][][], step: number): void {
  groups.forEach((g, i) => g.forEach((p, j) => {
    p.grad = step === 1 && i === 1 ? null : grads[step][i][j];
  }));
}

function applyChange(opt: Optimizer, change: Case['change']): void {
  if (change) Object.assign(opt.paramGroups[0], structuredClone(change));
}

// Tensors from torch's encoded state_dict; they live in the caller's scope.
function decodeStateDict(sd: PyStateDict): OptimizerStateDict {
  const state: Record<number, ParamState> = {};
  for (const [id, s] of Object.entries(sd.state)) {
    state[Number(id)] = Object.fromEntries(Object.entries(s).filter(([, v]) => v !== null)
      .map(([k, v]) => [k, typeof v === 'number' ? v : dec(v as Encoded)]));
  }
  return { state, param_groups: sd.param_groups };
}

function compareStateDicts(ours: OptimizerStateDict, torchs: PyStateDict, what: string): void {
  const state = ours.state as Record<number, ParamState>;
  // torch 1.13's SGD without momentum keeps momentum_buffer: None, which ours leaves out.
  const ref: PyStateDict = { ...torchs, state: {} };
  for (const [id, s] of Object.entries(torchs.state)) {
    const kept = Object.entries(s).filter(([, v]) => v !== null);
    if (kept.length > 0) ref.state[id] = Object.fromEntries(kept);
  }
  assert.deepEqual(Object.keys(state).sort(), Object.keys(ref.state).sort(), `${what}: parameters with state`);
  for (const [id, s] of Object.entries(ref.state)) {
    assert.deepEqual(Object.keys(state[Number(id)]).sort(), Object.keys(s).sort(), `${what}: state keys of parameter ${id}`);
    for (const [k, v] of Object.entries(s)) {
      const mine = state[Number(id)][k];
      if (k === 'step') assert.equal(mine, typeof v === 'number' ? v : v!.data[0], `${what}: step of parameter ${id}`);
      else assertClose(mine as Tensor, v as Encoded, `${what}: ${k} of parameter ${id}`);
    }
  }
  assert.equal(ours.param_groups.length, ref.param_groups.length);
  ours.param_groups.forEach((g, i) => {
    for (const [k, v] of Object.entries(g)) assert.deepEqual(v, ref.param_groups[i][k], `${what}: group ${i} ${k}`);
  });
}

test('SGD, Adam and AdamW update parameters as torch.optim does, and load its state_dict', () => {
  manualSeed(7);
  // Two groups of parameters: a matrix and a vector, then a 4-d tensor.
  const initial = [[randn([3, 4]), randn([4])], [randn([2, 3, 2, 2])]];
  const grads = Array.from({ length: STEPS }, () => initial.map((g) => g.map((p) => randn(p.shape))));
  const ref = python<PyResult[]>(`
def packed(sd):
    return {'state': {str(k): {n: (J(v) if torch.is_tensor(v) else v) for n, v in s.items()} for k, s in sd['state'].items()},
            'param_groups': sd['param_groups']}
out = []
for case in inp['cases']:
    groups = [[T(p).requires_grad_() for p in g] for g in inp['initial']]
    allp = groups[0] + groups[1]
    opt = eval(case['py'])
    for step, gs in enumerate(inp['grads']):
        if step == ${CHANGE_AT}:
            sd3, params3 = packed(opt.state_dict()), [[J(p) for p in g] for g in groups]
            if case['change'] is not None:
                opt.param_groups[0].update(case['change'])
        for i, g in enumerate(groups):
            for j, p in enumerate(g):
                p.grad = None if (step == 1 and i == 1) else T(gs[i][j])
        opt.step()
    out.append({'final': [[J(p) for p in g] for g in groups], 'sd3': sd3, 'params3': params3})
`, {
    cases: CASES.map((c) => ({ py: c.py, change: c.change ?? null })),
    initial: initial.map((g) => g.map(enc)),
    grads: grads.map((s) => s.map((g) => g.map(enc))),
  });

  CASES.forEach((c, k) => {
    // From the start, comparing our state_dict with torch's on the way.
    const groups = initial.map((g) => g.map((p) => p.clone().requiresGrad_()));
    const opt = c.make(groups);
    for (let step = 0; step < STEPS; step++) {
      if (step === CHANGE_AT) {
        compareStateDicts(opt.stateDict(), ref[k].sd3, `${c.name}: state_dict before step ${CHANGE_AT}`);
        applyChange(opt, c.change);
      }
      setGrads(groups, grads, step);
      opt.step();
    }
    groups.forEach((g, i) => g.forEach((p, j) => assertClose(p, ref[k].final[i][j], `${c.name}: group ${i} parameter ${j}`)));
    opt.dispose();

    // From torch's parameters and state_dict before step CHANGE_AT.
    const resumed = ref[k].params3.map((g) => g.map((e) => dec(e).requiresGrad_()));
    const opt2 = c.make(resumed);
    tidy(() => opt2.loadStateDict(decodeStateDict(ref[k].sd3)));
    applyChange(opt2, c.change);
    for (let step = CHANGE_AT; step < STEPS; step++) {
      setGrads(resumed, grads, step);
      opt2.step();
    }
    resumed.forEach((g, i) => g.forEach((p, j) => assertClose(p, ref[k].final[i][j], `${c.name} resumed from torch's state_dict: group ${i} parameter ${j}`)));
    opt2.dispose();
  });
});

test('zeroGrad zeroes gradients in place (torch 1.13), or sets them to null', () => {
  const p = randn([3]).requiresGrad_();
  const opt = new SGD([p], { lr: 0.1, weightDecay: 0.5 });
  p.mul(2).sum().backward();
  opt.zeroGrad();
  assert.deepEqual(p.grad?.toArray(), [0, 0, 0]);
  // A zero gradient is still a gradient: weight decay moves the parameter, as in torch.
  const before = p.toArray();
  opt.step();
  p.toArray().forEach((v, i) => assert.ok(Math.abs(v - before[i] * 0.95) < 1e-6));
  opt.zeroGrad(true);
  assert.equal(p.grad, null);
  const after = p.toArray();
  opt.step();
  assert.deepEqual(p.toArray(), after);
});

test('zeroGrad cuts the history of a gradient made with createGraph', () => {
  const p = randn([3]).requiresGrad_();
  p.pow(3).sum().backward(undefined, { createGraph: true });
  assert.ok(p.grad?.requiresGrad);
  new SGD([p], { lr: 0.1 }).zeroGrad();
  assert.equal(p.grad?.requiresGrad, false);
  assert.deepEqual(p.grad?.toArray(), [0, 0, 0]);
});

test('step runs the closure with autograd on and returns its result', () => {
  const p = randn([2]).requiresGrad_();
  const opt = new SGD([p], { lr: 0.5 });
  const before = p.toArray();
  const loss = noGrad(() => opt.step(() => tidy(() => {
    const l = p.pow(2).sum();
    l.backward();
    return l.item();
  })));
  assert.ok(Math.abs(loss! - (before[0] ** 2 + before[1] ** 2)) < 1e-5);
  assert.deepEqual(p.toArray(), [0, 0]); // p − 0.5·2p
});

test('a step with no gradient leaves the parameter as it was', () => {
  const p = randn([3]).requiresGrad_();
  const before = p.toArray();
  new AdamW([p], { lr: 0.1 }).step();
  assert.deepEqual(p.toArray(), before);
});

test('groups take the defaults they leave out, and own their hyper-parameters', () => {
  const [a, b] = [randn([2]).requiresGrad_(), randn([2]).requiresGrad_()];
  const opt = new AdamW([{ params: [a] }, { params: b, lr: 0.1 }], { eps: 1e-5 });
  assert.deepEqual(opt.paramGroups.map((g) => [g.lr, g.eps, g.weightDecay, g.params.length]), [[1e-3, 1e-5, 0.01, 1], [0.1, 1e-5, 0.01, 1]]);
  opt.paramGroups[0].betas[0] = 0.5;
  assert.deepEqual(opt.paramGroups[1].betas, [0.9, 0.999]);
  assert.deepEqual(ADAMW_DEFAULTS.betas, [0.9, 0.999]);
  const c = randn([2]).requiresGrad_();
  opt.addParamGroup({ params: [c], weightDecay: 0 });
  assert.equal(opt.paramGroups[2].weightDecay, 0);
  c.grad = randn([2]);
  const before = c.toArray();
  opt.step();
  assert.notDeepEqual(c.toArray(), before);
  assert.throws(() => opt.addParamGroup({ params: [a] }), /some parameters appear in more than one parameter group/);
});

test('bad options throw OptimError naming the option as torch does', () => {
  const p = () => [randn([2]).requiresGrad_()];
  const cases: [() => unknown, RegExp][] = [
    [() => new SGD(p(), { lr: -0.1 }), /^Invalid learning rate: -0.1$/],
    [() => new AdamW(p(), { lr: -1e-3 }), /^Invalid learning rate: -0.001$/],
    [() => new SGD(p(), {}), /didn't specify a value of required optimization parameter lr/],
    [() => new SGD(p(), { lr: 0.1, momentum: -1 }), /^Invalid momentum value: -1$/],
    [() => new SGD(p(), { lr: 0.1, weightDecay: -1 }), /^Invalid weight_decay value: -1$/],
    [() => new SGD(p(), { lr: 0.1, nesterov: true }), /^Nesterov momentum requires a momentum and zero dampening$/],
    [() => new SGD(p(), { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), /Nesterov momentum requires a momentum and zero dampening/],
    [() => new AdamW(p(), { betas: [1, 0.999] }), /^Invalid beta parameter at index 0: 1$/],
    [() => new Adam(p(), { betas: [-0.1, 0.999] }), /^Invalid beta parameter at index 0: -0.1$/],
    [() => new AdamW(p(), { betas: [0.9, 1] }), /^Invalid beta parameter at index 1: 1$/],
    [() => new AdamW(p(), { betas: [0.9, -0.1] }), /^Invalid beta parameter at index 1: -0.1$/],
    [() => new Adam(p(), { eps: -1 }), /^Invalid epsilon value: -1$/],
    [() => new AdamW(p(), { weightDecay: -0.1 }), /^Invalid weight_decay value: -0.1$/],
    [() => new AdamW([]), /^optimizer got an empty parameter list$/],
    [() => new SGD(randn([2]) as unknown as Tensor[], { lr: 0.1 }), /should be an array of Tensors or groups/],
    [() => { const q = p(); return new AdamW([{ params: q }, { params: q }]); }, /^some parameters appear in more than one parameter group$/],
    [() => { const q = p()[0]; return new AdamW([q, q]); }, /duplicate parameters/],
    [() => new AdamW([randn([2]).requiresGrad_().mul(2)]), /^can't optimize a non-leaf Tensor$/],
    [() => new AdamW([{ params: [3 as unknown as Tensor] }]), /optimizer can only optimize Tensors, but one of the params is 3/],
    // Unlike torch, a group's own values are checked too.
    [() => new AdamW([{ params: p() }, { params: p(), lr: Number.NaN }]), /^Invalid learning rate: NaN$/],
    [() => new SGD([{ params: p(), lr: 0.1, nesterov: true }], { lr: 0.1, momentum: 0 }), /Nesterov/],
  ];
  for (const [make, message] of cases) {
    assert.throws(make, (e: unknown) => e instanceof OptimError && message.test((e as Error).message), String(message));
  }
});

test('loadStateDict refuses a state dict that does not fit, changing nothing', () => {
  const [a, b] = [randn([2, 2]).requiresGrad_(), randn([3]).requiresGrad_()];
  const opt = new AdamW([{ params: [a] }, { params: [b], lr: 0.1 }]);
  a.grad = randn([2, 2]);
  b.grad = randn([3]);
  opt.step();
  const good = opt.stateDict();
  const cases: [OptimizerStateDict, RegExp][] = [
    [{ state: {}, param_groups: [good.param_groups[0]] }, /^loaded state dict has a different number of parameter groups$/],
    [{ state: {}, param_groups: [good.param_groups[0], { ...good.param_groups[1], params: [1, 2] }] },
      /^loaded state dict contains a parameter group that doesn't match the size of optimizer's group$/],
    [{ state: { 0: good.state[1], 1: good.state[0] }, param_groups: good.param_groups }, /exp_avg of shape \[3\] for parameter 0 of shape \[2,2\]/],
    [{ state: {}, param_groups: [good.param_groups[0], { ...good.param_groups[1], betas: [0.9, 2] }] }, /Invalid beta parameter at index 1: 2/],
  ];
  const expAvg = good.state[0].exp_avg as Tensor;
  const kept = expAvg.toArray();
  for (const [dict, message] of cases) {
    assert.throws(() => opt.loadStateDict(dict), (e: unknown) => e instanceof OptimError && message.test((e as Error).message), String(message));
  }
  assert.deepEqual((opt.stateDict().state[0].exp_avg as Tensor).toArray(), kept);
  assert.equal(opt.paramGroups[1].lr, 0.1);
  opt.dispose();
});

test('saveState and restoreState put back the state and the hyper-parameters', () => {
  manualSeed(3);
  const p = randn([4]).requiresGrad_();
  const gs = Array.from({ length: 4 }, () => randn([4]));
  const opt = new AdamW([p], { lr: 0.01 });
  const run = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      p.grad = gs[i];
      opt.step();
    }
  };
  run(0, 2);
  const weights = p.detach().clone();
  const saved = opt.saveState();
  run(2, 4);
  const expected = p.toArray();
  opt.paramGroups[0].lr = 5;
  opt.clearState();
  noGrad(() => p.copy_(weights));
  opt.restoreState(saved);
  assert.equal(opt.paramGroups[0].lr, 0.01);
  run(2, 4);
  assert.deepEqual(p.toArray(), expected);
  opt.dispose();
});

test('steps free their temporaries and dispose frees the state: live tensor counts stay flat', () => {
  manualSeed(1);
  const params = [randn([16, 16]).requiresGrad_(), randn([16]).requiresGrad_()];
  const makers = [
    () => new AdamW(params, { amsgrad: true }),
    () => new AdamW(params, { foreach: true, weightDecay: 0.1 }),
    () => new Adam([{ params: [params[0]], weightDecay: 0.1 }, { params: [params[1]], maximize: true }]),
    () => new SGD(params, { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 0.1 }),
    () => new SGD(params, { lr: 0.01, maximize: true }),
  ];
  for (const make of makers) {
    const baseline = undisposed();
    const opt = make();
    const run = (i: number) => {
      opt.zeroGrad(i % 2 === 0);
      tidy(() => params[0].matmul(params[1]).pow(2).sum().backward());
      opt.step();
      opt.paramGroups[0].lr *= 0.99;
    };
    run(0);
    const live = undisposed();
    for (let i = 1; i <= 200; i++) run(i);
    opt.restoreState(opt.saveState());
    opt.loadStateDict(opt.stateDict());
    assert.equal(undisposed(), live, opt.constructor.name);
    opt.zeroGrad(true);
    opt.dispose();
    assert.equal(undisposed(), baseline, `${opt.constructor.name} after dispose`);
  }
});
