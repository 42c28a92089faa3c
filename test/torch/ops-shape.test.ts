// Shape ops, indexing, contiguity and channels_last: values, gradients and strides against PyTorch.
import test from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, tensor, cat, stack, type Tensor } from '../../src/torch/index.js';
import { parityTable, type Case } from '../helpers/parity.js';

manualSeed(1);
const r = (...shape: number[]): Tensor => randn(shape);
const long = (data: number[], shape: number[]): Tensor => tensor(data, { shape, dtype: 'int64' });

// Every case compares strides too: a view must be a view with torch's layout, not a copy.
const cases: Case[] = [
  { name: 'view', inputs: { a: r(2, 3, 4) }, js: ({ a }) => [a.view(6, 4), a.view(-1), a.view(2, -1, 2)], py: '(a.view(6, 4), a.view(-1), a.view(2, -1, 2))' },
  { name: 'reshape of a contiguous tensor', inputs: { a: r(2, 3, 4) }, js: ({ a }) => a.reshape(4, -1), py: 'a.reshape(4, -1)' },
  { name: 'reshape of a transposed tensor copies', inputs: { a: r(3, 4) }, js: ({ a }) => a.transpose(0, 1).reshape(12), py: 'a.t().reshape(12)' },
  { name: 'permute', inputs: { a: r(2, 3, 4) }, js: ({ a }) => [a.permute(2, 0, 1), a.permute(-1, -2, 0)], py: '(a.permute(2, 0, 1), a.permute(-1, -2, 0))' },
  { name: 'transpose', inputs: { a: r(2, 3, 4) }, js: ({ a }) => [a.transpose(0, 2), a.transpose(-1, 1)], py: '(a.transpose(0, 2), a.transpose(-1, 1))' },
  { name: 'flatten', inputs: { a: r(2, 3, 4, 5) }, js: ({ a }) => [a.flatten(), a.flatten(1), a.flatten(1, 2), a.flatten(0, -2)],
    py: '(a.flatten(), a.flatten(1), a.flatten(1, 2), a.flatten(0, -2))' },
  { name: 'squeeze unsqueeze', inputs: { a: r(2, 1, 3, 1) }, js: ({ a }) => [a.squeeze(), a.squeeze(1), a.squeeze(0), a.unsqueeze(0), a.unsqueeze(-1)],
    py: '(a.squeeze(), a.squeeze(1), a.squeeze(0), a.unsqueeze(0), a.unsqueeze(-1))' },
  { name: 'cat', inputs: { a: r(2, 3), b: r(4, 3), c: r(2, 5) }, js: ({ a, b, c }) => [cat([a, b]), cat([a, c], 1), cat([a, c], -1)],
    py: '(torch.cat([a, b]), torch.cat([a, c], 1), torch.cat([a, c], -1))' },
  { name: 'stack', inputs: { a: r(2, 3), b: r(2, 3) }, js: ({ a, b }) => [stack([a, b]), stack([a, b], 1), stack([a, b], -1)],
    py: '(torch.stack([a, b]), torch.stack([a, b], 1), torch.stack([a, b], -1))' },
  { name: 'split by size', inputs: { a: r(5, 4) }, js: ({ a }) => a.split(2), py: 'a.split(2)' },
  { name: 'split by sizes along dim 1', inputs: { a: r(3, 6) }, js: ({ a }) => a.split([1, 2, 3], 1), py: 'a.split([1, 2, 3], 1)' },
  { name: 'chunk', inputs: { a: r(3, 7) }, js: ({ a }) => a.chunk(3, 1), py: 'a.chunk(3, 1)' },
  { name: 'narrow', inputs: { a: r(4, 6) }, js: ({ a }) => [a.narrow(0, 1, 2), a.narrow(1, 2, 4), a.narrow(-1, 0, 1)],
    py: '(a.narrow(0, 1, 2), a.narrow(1, 2, 4), a.narrow(-1, 0, 1))' },
  { name: 'slice', inputs: { a: r(4, 7) }, js: ({ a }) => [a.slice(1, 1, 6, 2), a.slice(0, 2), a.slice(1, undefined, -2), a.slice(1, -3), a.slice(0, 0, 100)],
    py: '(a[:, 1:6:2], a[2:], a[:, :-2], a[:, -3:], a[0:100])' },
  { name: 'select', inputs: { a: r(3, 4, 5) }, js: ({ a }) => [a.select(0, 1), a.select(2, -1), a.select(1, 3)], py: '(a[1], a[:, :, -1], a[:, 3])' },
  { name: 'index_select', inputs: { a: r(4, 5), i: long([3, 0, 3], [3]) }, js: ({ a, i }) => [a.indexSelect(0, i), a.indexSelect(1, i)],
    py: '(a.index_select(0, i), a.index_select(1, i))' },
  { name: 'gather', inputs: { a: r(3, 4), i: long([0, 3, 3, 1, 2, 2], [3, 2]), j: long([2, 0, 1, 0], [1, 4]) },
    js: ({ a, i, j }) => [a.gather(1, i), a.gather(0, j)], py: '(a.gather(1, i), a.gather(0, j))' },
  { name: 'expand', inputs: { a: r(3, 1), b: r(2, 3, 4) }, js: ({ a, b }) => [a.expand(3, 4), a.expand(2, -1, 5), a.expandAs(b)],
    py: '(a.expand(3, 4), a.expand(2, -1, 5), a.expand_as(b))' },
  { name: 'repeat', inputs: { a: r(2, 3) }, js: ({ a }) => a.repeat(2, 1, 3), py: 'a.repeat(2, 1, 3)' },
  { name: 'contiguous of a permuted tensor', inputs: { a: r(2, 3, 4) }, js: ({ a }) => [a.permute(2, 0, 1).contiguous(), a.contiguous()],
    py: '(a.permute(2, 0, 1).contiguous(), a.contiguous())' },
  { name: 'channels_last', inputs: { a: r(2, 3, 4, 5) }, js: ({ a }) => [a.channelsLast(), a.contiguous('channels_last').contiguous()],
    py: '(a.contiguous(memory_format=torch.channels_last), a.contiguous(memory_format=torch.channels_last).contiguous())' },
  { name: 'clone preserves channels_last', inputs: { a: r(2, 3, 4, 5) }, js: ({ a }) => [a.channelsLast().clone(), a.channelsLast().clone('contiguous')],
    py: '(a.contiguous(memory_format=torch.channels_last).clone(), a.contiguous(memory_format=torch.channels_last).clone(memory_format=torch.contiguous_format))' },
  { name: 'elementwise on channels_last keeps the layout', inputs: { a: r(2, 3, 4, 5), b: r(3, 1, 1) }, js: ({ a, b }) => a.channelsLast().mul(b).relu(),
    py: '(a.contiguous(memory_format=torch.channels_last) * b).relu()' },
];
for (const c of cases) {
  c.strides = true;
  // Gradients flow back through every view and copy to all floating inputs.
  c.grad = Object.entries(c.inputs ?? {}).filter(([, v]) => v.dtype === 'float32').map(([k]) => k);
}

const check = parityTable(cases);
for (const c of cases) test(`${c.name} matches PyTorch, strides included`, () => check(c.name));

test('views share storage with their base; reshape of a transposed tensor does not', () => {
  const a = randn([3, 4]);
  const v = a.view(12);
  v.mul_(0).add_(1);
  assert.deepEqual(a.toArray(), new Array(12).fill(1));
  const copy = a.transpose(0, 1).reshape(12);
  copy.zero_();
  assert.deepEqual(a.toArray(), new Array(12).fill(1));
  assert.equal(a.transpose(0, 1).isContiguous(), false);
  assert.equal(a.transpose(0, 1).contiguous().isContiguous(), true);
  const x = randn([2, 3, 4, 5]).channelsLast();
  assert.equal(x.isContiguous('channels_last'), true);
  assert.equal(x.isContiguous(), false);
  assert.deepEqual(x.shape, [2, 3, 4, 5]);
});
