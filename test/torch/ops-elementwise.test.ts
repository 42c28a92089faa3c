// Elementwise arithmetic (with in-place forms, broadcasting and scalars), comparisons, where,
// clamp, reductions and matmul/linear: outputs and gradients against PyTorch.
import test from 'node:test';
import { manualSeed, randn, rand, randint, where, F, type Tensor } from '../../src/torch/index.js';
import { parityTable, type Case } from '../helpers/parity.js';

manualSeed(0);
const r = (...shape: number[]): Tensor => randn(shape);
/** Values in [0.5, 1.5), safe as divisors, bases of pow and arguments of log. */
const pos = (...shape: number[]): Tensor => rand(shape).add(0.5);
/** Small whole numbers as float32, so equality comparisons and ties happen. */
const whole = (...shape: number[]): Tensor => randn(shape).mul(1.5).round();

const ab = () => ({ a: r(3, 4), b: r(3, 4) });
const bcast = () => ({ a: r(2, 3, 4), b: r(4) });

const cases: Case[] = [
  // arithmetic, out of place
  { name: 'add', inputs: ab(), grad: ['a', 'b'], js: ({ a, b }) => a.add(b), py: 'a + b' },
  { name: 'add with alpha', inputs: ab(), grad: ['a', 'b'], js: ({ a, b }) => a.add(b, 0.5), py: 'torch.add(a, b, alpha=0.5)' },
  { name: 'add broadcast', inputs: bcast(), grad: ['a', 'b'], js: ({ a, b }) => a.add(b), py: 'a + b' },
  { name: 'add scalar', inputs: ab(), grad: ['a'], js: ({ a }) => a.add(2.5), py: 'a + 2.5' },
  { name: 'sub', inputs: ab(), grad: ['a', 'b'], js: ({ a, b }) => a.sub(b, 2), py: 'torch.sub(a, b, alpha=2)' },
  { name: 'sub broadcast column', inputs: { a: r(3, 4), b: r(3, 1) }, grad: ['a', 'b'], js: ({ a, b }) => a.sub(b), py: 'a - b' },
  { name: 'sub scalar', inputs: ab(), grad: ['a'], js: ({ a }) => a.sub(1), py: 'a - 1' },
  { name: 'mul', inputs: ab(), grad: ['a', 'b'], js: ({ a, b }) => a.mul(b), py: 'a * b' },
  { name: 'mul broadcast both', inputs: { a: r(3, 1), b: r(1, 4) }, grad: ['a', 'b'], js: ({ a, b }) => a.mul(b), py: 'a * b' },
  { name: 'mul scalar', inputs: ab(), grad: ['a'], js: ({ a }) => a.mul(-3), py: 'a * -3' },
  { name: 'div', inputs: { a: r(3, 4), b: pos(3, 4) }, grad: ['a', 'b'], js: ({ a, b }) => a.div(b), py: 'a / b' },
  { name: 'div broadcast', inputs: { a: r(2, 3, 4), b: pos(3, 1) }, grad: ['a', 'b'], js: ({ a, b }) => a.div(b), py: 'a / b' },
  { name: 'div scalar', inputs: ab(), grad: ['a'], js: ({ a }) => a.div(4), py: 'a / 4' },
  { name: 'pow scalar', inputs: { a: pos(3, 4) }, grad: ['a'], js: ({ a }) => a.pow(2.5), py: 'a ** 2.5' },
  { name: 'pow integer scalar', inputs: ab(), grad: ['a'], js: ({ a }) => a.pow(3), py: 'a ** 3' },
  { name: 'pow tensor', inputs: { a: pos(3, 4), b: r(4) }, grad: ['a', 'b'], js: ({ a, b }) => a.pow(b), py: 'a ** b' },
  { name: 'neg abs exp log sqrt', inputs: { a: pos(5) }, grad: ['a'], js: ({ a }) => [a.neg(), a.sub(1).abs(), a.exp(), a.log(), a.sqrt(), a.rsqrt()],
    py: '(-a, (a - 1).abs(), a.exp(), a.log(), a.sqrt(), a.rsqrt())' },
  // integer tensors keep integer scalars integral; true division and float scalars promote
  { name: 'int64 with scalars', inputs: { i: randint(-5, 5, [6]) }, js: ({ i }) => [i.add(2), i.mul(3), i.div(2), i.mul(0.5), i.sub(1, 3)],
    py: '(i + 2, i * 3, i / 2, i * 0.5, torch.sub(i, 1, alpha=3))' },
  { name: 'int32 plus float32 promotes', inputs: { i: randint(-5, 5, [4], { dtype: 'int32' }), a: r(4) }, js: ({ i, a }) => i.add(a), py: 'i + a' },
  // in place: each result must equal the out-of-place op, and the gradient must flow through it
  { name: 'add_', inputs: bcast(), grad: ['a', 'b'], js: ({ a, b }) => a.clone().add_(b, 1.5), py: 'a.clone().add_(b, alpha=1.5)' },
  { name: 'add_ scalar', inputs: ab(), grad: ['a'], js: ({ a }) => a.clone().add_(3), py: 'a.clone().add_(3)' },
  { name: 'sub_', inputs: ab(), grad: ['a', 'b'], js: ({ a, b }) => a.clone().sub_(b), py: 'a.clone().sub_(b)' },
  { name: 'sub_ scalar with alpha', inputs: ab(), grad: ['a'], js: ({ a }) => a.clone().sub_(0.25, 2), py: 'a.clone().sub_(0.25, alpha=2)' },
  { name: 'mul_', inputs: { a: r(3, 4), b: r(3, 1) }, grad: ['a', 'b'], js: ({ a, b }) => a.clone().mul_(b), py: 'a.clone().mul_(b)' },
  { name: 'mul_ scalar', inputs: ab(), grad: ['a'], js: ({ a }) => a.clone().mul_(0.3), py: 'a.clone().mul_(0.3)' },
  { name: 'div_', inputs: { a: r(3, 4), b: pos(4) }, grad: ['a', 'b'], js: ({ a, b }) => a.clone().div_(b), py: 'a.clone().div_(b)' },
  { name: 'div_ scalar', inputs: ab(), grad: ['a'], js: ({ a }) => a.clone().div_(-7), py: 'a.clone().div_(-7)' },
  { name: 'in place on a non-leaf chain', inputs: ab(), grad: ['a', 'b'],
    js: ({ a, b }) => a.mul(2).add_(b).mul_(b).sub_(1).div_(3), py: '(a * 2).add_(b).mul_(b).sub_(1).div_(3)' },
  { name: 'addcmul_ addcdiv_ lerp_', inputs: { a: r(4), b: r(4), c: pos(4) },
    js: ({ a, b, c }) => [a.clone().addcmul_(b, c, 0.5), a.clone().addcdiv_(b, c, -2), a.clone().lerp_(b, 0.3)],
    py: '(a.clone().addcmul_(b, c, value=0.5), a.clone().addcdiv_(b, c, value=-2), a.clone().lerp_(b, 0.3))' },
  { name: 'maximum minimum', inputs: ab(), grad: ['a', 'b'], js: ({ a, b }) => [a.maximum(b), a.minimum(b)], py: '(torch.maximum(a, b), torch.minimum(a, b))' },
  // comparisons
  { name: 'comparisons with tensors', inputs: { a: whole(3, 4), b: whole(4) },
    js: ({ a, b }) => [a.eq(b), a.ne(b), a.lt(b), a.le(b), a.gt(b), a.ge(b)], py: '(a == b, a != b, a < b, a <= b, a > b, a >= b)' },
  { name: 'comparisons with scalars', inputs: { a: whole(3, 4) },
    js: ({ a }) => [a.eq(1), a.ne(0), a.lt(0.5), a.le(-1), a.gt(0), a.ge(2)], py: '(a == 1, a != 0, a < 0.5, a <= -1, a > 0, a >= 2)' },
  { name: 'logicalNot isnan', inputs: { a: whole(6) }, js: ({ a }) => [a.gt(0).logicalNot(), a.log().isnan()], py: '((a > 0).logical_not(), a.log().isnan())' },
  // where
  { name: 'where tensors', inputs: { c: r(3, 4), a: r(3, 4), b: r(4) }, grad: ['a', 'b'],
    js: ({ c, a, b }) => where(c.gt(0), a, b), py: 'torch.where(c > 0, a, b)' },
  { name: 'where scalar other', inputs: { c: r(3, 4), a: r(3, 4) }, grad: ['a'], js: ({ c, a }) => where(c.gt(0), a, 0.5), py: 'torch.where(c > 0, a, 0.5)' },
  { name: 'where scalar self', inputs: { c: r(3, 4), b: r(3, 4) }, grad: ['b'], js: ({ c, b }) => where(c.gt(0), -1.5, b), py: 'torch.where(c > 0, -1.5, b)' },
  { name: 'where scalars', inputs: { c: r(3, 4) }, js: ({ c }) => [where(c.gt(0), 1.5, -2.5), where(c.gt(0), 1, 0)],
    py: '(torch.where(c > 0, 1.5, -2.5), torch.where(c > 0, 1, 0))' },
  { name: 'maskedFill', inputs: { c: r(3, 4), a: r(3, 4) }, grad: ['a'], js: ({ c, a }) => a.maskedFill(c.lt(0), 9), py: 'a.masked_fill(c < 0, 9)' },
  // clamp
  { name: 'clamp', inputs: { a: r(4, 5) }, grad: ['a'], js: ({ a }) => a.clamp(-0.5, 0.7), py: 'a.clamp(-0.5, 0.7)' },
  { name: 'clamp min only', inputs: { a: r(4, 5) }, grad: ['a'], js: ({ a }) => a.clamp(0), py: 'a.clamp(min=0)' },
  { name: 'clamp max only', inputs: { a: r(4, 5) }, grad: ['a'], js: ({ a }) => a.clamp(null, 0.2), py: 'a.clamp(max=0.2)' },
  { name: 'clamp_', inputs: { a: r(4, 5) }, grad: ['a'], js: ({ a }) => a.mul(1).clamp_(-1, 1), py: '(a * 1).clamp_(-1, 1)' },
  // reductions
  { name: 'sum all', inputs: { a: r(3, 4, 5) }, grad: ['a'], js: ({ a }) => a.sum(), py: 'a.sum()' },
  { name: 'sum dim', inputs: { a: r(3, 4, 5) }, grad: ['a'], js: ({ a }) => [a.sum(1), a.sum(-1, true), a.sum([0, 2])],
    py: '(a.sum(1), a.sum(-1, keepdim=True), a.sum((0, 2)))' },
  { name: 'sum of int64 stays int64', inputs: { i: randint(0, 9, [3, 4]) }, js: ({ i }) => [i.sum(), i.sum(0)], py: '(i.sum(), i.sum(0))' },
  { name: 'mean', inputs: { a: r(3, 4, 5) }, grad: ['a'], js: ({ a }) => [a.mean(), a.mean(0), a.mean([1, 2], true)],
    py: '(a.mean(), a.mean(0), a.mean((1, 2), keepdim=True))' },
  { name: 'std var prod norm cumsum', inputs: { a: r(3, 4) }, grad: ['a'],
    js: ({ a }) => [a.std(1), a.var(0, false), a.std(), a.prod(), a.norm(), a.cumsum(1)],
    py: '(a.std(1), a.var(0, unbiased=False), a.std(), a.prod(), a.norm(), a.cumsum(1))' },
  { name: 'max min all', inputs: { a: r(4, 5) }, grad: ['a'], js: ({ a }) => [a.max(), a.min()], py: '(a.max(), a.min())' },
  { name: 'max dim', inputs: { a: r(4, 5) }, grad: ['a'], js: ({ a }) => { const m = a.max(1); return [m.values, m.indices]; },
    py: 'a.max(1)' },
  { name: 'min dim keepdim', inputs: { a: r(4, 5) }, grad: ['a'], js: ({ a }) => { const m = a.min(0, true); return [m.values, m.indices]; },
    py: 'a.min(0, keepdim=True)' },
  { name: 'argmax argmin', inputs: { a: r(4, 5) }, js: ({ a }) => [a.argmax(), a.argmax(1), a.argmax(0, true), a.argmin(1)],
    py: '(a.argmax(), a.argmax(1), a.argmax(0, keepdim=True), a.argmin(1))' },
  { name: 'topk', inputs: { a: r(4, 6) }, grad: ['a'], js: ({ a }) => { const k = a.topk(3); return [k.values, k.indices]; }, py: 'a.topk(3)' },
  { name: 'topk smallest along dim 0', inputs: { a: r(5, 3) }, grad: ['a'],
    js: ({ a }) => { const k = a.topk(2, 0, false); return [k.values, k.indices]; }, py: 'a.topk(2, 0, largest=False)' },
  { name: 'sort', inputs: { a: r(4, 6) }, grad: ['a'], js: ({ a }) => { const s = a.sort(); return [s.values, s.indices]; }, py: 'a.sort()' },
  { name: 'sort descending dim 0', inputs: { a: r(4, 6) }, grad: ['a'],
    js: ({ a }) => { const s = a.sort(0, true); return [s.values, s.indices]; }, py: 'a.sort(0, descending=True)' },
  { name: 'softmax', inputs: { a: r(3, 4, 5) }, grad: ['a'], js: ({ a }) => [a.softmax(-1), F.softmax(a, 1)], py: '(a.softmax(-1), F.softmax(a, 1))' },
  { name: 'log_softmax', inputs: { a: r(3, 4, 5) }, grad: ['a'], js: ({ a }) => [a.logSoftmax(-1), F.logSoftmax(a, 0)],
    py: '(a.log_softmax(-1), F.log_softmax(a, 0))' },
  // matmul and linear
  { name: 'matmul 2d', inputs: { a: r(3, 4), b: r(4, 5) }, grad: ['a', 'b'], js: ({ a, b }) => a.matmul(b), py: 'a @ b' },
  { name: 'matmul batched broadcast', inputs: { a: r(2, 3, 4), b: r(4, 5) }, grad: ['a', 'b'], js: ({ a, b }) => a.matmul(b), py: 'a @ b' },
  { name: 'matmul batch by batch', inputs: { a: r(2, 1, 3, 4), b: r(3, 4, 2) }, grad: ['a', 'b'], js: ({ a, b }) => a.matmul(b), py: 'a @ b' },
  { name: 'matmul vector', inputs: { a: r(4), b: r(4, 5) }, grad: ['a', 'b'], js: ({ a, b }) => [a.matmul(b), b.transpose(0, 1).matmul(a)],
    py: '(a @ b, b.t() @ a)' },
  { name: 'linear', inputs: { x: r(6, 4), w: r(3, 4), b: r(3) }, grad: ['x', 'w', 'b'], js: ({ x, w, b }) => F.linear(x, w, b), py: 'F.linear(x, w, b)' },
  { name: 'linear without bias, 3-d input', inputs: { x: r(2, 5, 4), w: r(3, 4) }, grad: ['x', 'w'], js: ({ x, w }) => F.linear(x, w), py: 'F.linear(x, w)' },
];

const check = parityTable(cases);
for (const c of cases) test(`${c.name} matches PyTorch`, () => check(c.name));
