// The optimizers against torch.optim: same initial parameters, same gradient sequence, same
// hyper-parameters (including a learning rate changed between steps) → same parameters.
import test from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, memory, tidy, type Tensor } from '../../src/torch/index.js';
import { SGD, Adam, AdamW, OptimError, type Optimizer } from '../../src/optim/index.js';
import { python, enc, dec, assertClose, type Encoded } from '../helpers/python.js';

const STEPS = 5;

interface Case {
  name: string;
  /** The Python constructor call, given `groups` (a list of parameter lists). */
  py: string;
  make(groups: Tensor[][]): Optimizer;
  /** Learning rate of group 0 set before step 3, as a scheduler would. */
  lrAtStep3?: number;
}

const CASES: Case[] = [
  { name: 'SGD', py: 'torch.optim.SGD(groups[0], lr=0.1)', make: (g) => new SGD(g[0], { lr: 0.1 }) },
  {
    name: 'SGD momentum, dampening, weight decay', py: 'torch.optim.SGD(groups[0], lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)',
    make: (g) => new SGD(g[0], { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }),
  },
  {
    name: 'SGD Nesterov', py: 'torch.optim.SGD(groups[0], lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)',
    make: (g) => new SGD(g[0], { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }),
  },
  {
    name: 'SGD maximize', py: 'torch.optim.SGD(groups[0], lr=0.01, momentum=0.5, maximize=True)',
    make: (g) => new SGD(g[0], { lr: 0.01, momentum: 0.5, maximize: true }),
  },
  { name: 'AdamW defaults', py: 'torch.optim.AdamW(groups[0])', make: (g) => new AdamW(g[0]) },
  {
    name: 'AdamW with a learning rate changed between steps', py: 'torch.optim.AdamW(groups[0], lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)',
    make: (g) => new AdamW(g[0], { lr: 0.01, betas: [0.8, 0.99], weightDecay: 0.1 }), lrAtStep3: 0.003,
  },
  {
    name: 'AdamW amsgrad', py: 'torch.optim.AdamW(groups[0], lr=0.01, amsgrad=True)',
    make: (g) => new AdamW(g[0], { lr: 0.01, amsgrad: true }),
  },
  {
    name: 'Adam with L2 weight decay', py: 'torch.optim.Adam(groups[0], lr=0.01, weight_decay=0.05, eps=1e-6)',
    make: (g) => new Adam(g[0], { lr: 0.01, weightDecay: 0.05, eps: 1e-6 }),
  },
  {
    name: 'AdamW with two parameter groups',
    py: `torch.optim.AdamW([{'params': groups[0]}, {'params': groups[1], 'lr': 0.02, 'betas': (0.5, 0.9), 'weight_decay': 0}],
        lr=0.005, weight_decay=0.2)`,
    make: (g) => new AdamW([{ params: g[0] }, { params: g[1], lr: 0.02, betas: [0.5, 0.9], weightDecay: 0 }], { lr: 0.005, weightDecay: 0.2 }),
    lrAtStep3: 0.001,
  },
  {
    name: 'SGD with two parameter groups',
    py: "torch.optim.SGD([{'params': groups[0]}, {'params': groups[1], 'lr': 0.5, 'momentum': 0}], lr=0.1, momentum=0.9)",
    make: (g) => new SGD([{ params: g[0] }, { params: g[1], lr: 0.5, momentum: 0 }], { lr: 0.1, momentum: 0.9 }),
  },
];

test('SGD, Adam and AdamW update parameters as torch.optim does', () => {
  manualSeed(7);
  // Two groups of parameters: a matrix and a vector, then a 4-d tensor.
  const initial = [[randn([3, 4]), randn([4])], [randn([2, 3, 2, 2])]];
  // A gradient per parameter per step; the last parameter gets none at step 1 (it must not move then).
  const grads = Array.from({ length: STEPS }, () => initial.map((g) => g.map((p) => randn(p.shape))));
  const ours: Encoded[][][] = [];
  for (const c of CASES) {
    const groups = initial.map((g) => g.map((p) => p.clone().requiresGrad_()));
    const opt = c.make(groups);
    for (let step = 0; step < STEPS; step++) {
      if (step === 3 && c.lrAtStep3 !== undefined) opt.paramGroups[0].lr = c.lrAtStep3;
      groups.forEach((g, i) => g.forEach((p, j) => {
        p.grad = step === 1 && i === 1 ? null : grads[step][i][j];
      }));
      opt.step();
    }
    ours.push(groups.map((g) => g.map(enc)));
    opt.dispose();
  }
  const ref = python<Encoded[][][]>(`
out = []
for spec, lr3 in zip(inp['cases'], inp['lr3']):
    groups = [[T(p).requires_grad_() for p in g] for g in inp['initial']]
    opt = eval(spec)
    for step, gs in enumerate(inp['grads']):
        if step == 3 and lr3 is not None:
            opt.param_groups[0]['lr'] = lr3
        for i, g in enumerate(groups):
            for j, p in enumerate(g):
                p.grad = None if (step == 1 and i == 1) else T(gs[i][j])
        opt.step()
    out.append([[J(p) for p in g] for g in groups])
`, {
    cases: CASES.map((c) => c.py),
    lr3: CASES.map((c) => c.lrAtStep3 ?? null),
    initial: initial.map((g) => g.map(enc)),
    grads: grads.map((s) => s.map((g) => g.map(enc))),
  });
  CASES.forEach((c, k) => ours[k].forEach((g, i) => g.forEach((p, j) => {
    assertClose(dec(p), ref[k][i][j], `${c.name}: group ${i} parameter ${j}`);
  })));
});

test('zeroGrad clears gradients to null, or to zeros in place', () => {
  const p = randn([3]).requiresGrad_();
  const opt = new SGD([p], { lr: 0.1 });
  p.mul(2).sum().backward();
  opt.zeroGrad(false);
  assert.deepEqual(p.grad?.toArray(), [0, 0, 0]);
  opt.zeroGrad();
  assert.equal(p.grad, null);
});

test('a step with no gradient leaves the parameter as it was', () => {
  const p = randn([3]).requiresGrad_();
  const before = p.toArray();
  new AdamW([p], { lr: 0.1 }).step();
  assert.deepEqual(p.toArray(), before);
});

test('bad options throw OptimError naming the option', () => {
  const p = () => [randn([2]).requiresGrad_()];
  const cases: [() => unknown, RegExp][] = [
    [() => new SGD(p(), { lr: -0.1 }), /Invalid learning rate value: -0.1/],
    [() => new SGD(p(), { lr: 0.1, momentum: -1 }), /Invalid momentum value: -1/],
    [() => new SGD(p(), { lr: 0.1, nesterov: true }), /Nesterov momentum requires a momentum and zero dampening/],
    [() => new SGD(p(), { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), /Nesterov/],
    [() => new AdamW(p(), { betas: [1, 0.999] }), /Invalid beta parameter at index 0: 1/],
    [() => new AdamW(p(), { betas: [0.9, -0.1] }), /beta parameter at index 1/],
    [() => new Adam(p(), { eps: -1 }), /Invalid epsilon value: -1/],
    [() => new AdamW(p(), { weightDecay: -0.1 }), /Invalid weight_decay value: -0.1/],
    [() => new AdamW([]), /empty parameter list/],
    [() => { const q = p(); return new AdamW([{ params: q }, { params: q }]); }, /more than one parameter group/],
    [() => new AdamW([{ params: p() }, { params: p(), lr: Number.NaN }]), /Invalid learning rate value: NaN/],
  ];
  for (const [make, message] of cases) {
    assert.throws(make, (e: unknown) => e instanceof OptimError && message.test((e as Error).message), String(message));
  }
});

test('steps free their temporaries: the live tensor count stays flat', () => {
  manualSeed(1);
  const params = [randn([16, 16]).requiresGrad_(), randn([16]).requiresGrad_()];
  const opts = [new AdamW(params, { amsgrad: true }), new SGD(params, { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 0.1 })];
  for (const opt of opts) {
    const run = () => {
      opt.zeroGrad();
      tidy(() => params[0].matmul(params[1]).pow(2).sum().backward());
      opt.step();
    };
    run();
    const live = memory().tensors;
    for (let i = 0; i < 100; i++) run();
    assert.equal(memory().tensors, live);
    opt.dispose();
  }
});
