// Bad calls throw a JavaScript Error naming the op, and the process carries on.
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  tensor, randn, zeros, ones, cat, stack, where, tidy, F, TorchError, type Tensor, type TorchErrorKind, type DType,
} from '../../src/torch/index.js';

interface BadCall {
  name: string;
  /** The op the error must name, in `.op` and at the head of the message. */
  op: string;
  kind?: TorchErrorKind;
  /** A fragment of the message that says what was wrong. */
  says?: RegExp;
  call: () => unknown;
}

const x = randn([2, 3]);
const long = (data: number[]): Tensor => tensor(data, { dtype: 'int64' });
const disposed = (): Tensor => {
  const d = randn([2, 3]).requiresGrad_();
  void d.shape; // metadata read before dispose must not outlive it
  d.dispose();
  return d;
};

const shapeMismatch: BadCall[] = [
  { name: 'add of [2, 3] and [4, 5]', op: 'add', says: /size of tensor a \(3\) must match/, call: () => x.add(randn([4, 5])) },
  { name: 'in-place add_ that would have to grow self', op: 'add_', says: /doesn't match the broadcast shape/, call: () => randn([3]).add_(x) },
  { name: 'mul of [2, 3] and [2]', op: 'mul', call: () => x.mul(randn([2])) },
  { name: 'matmul [2, 3] @ [4, 5]', op: 'matmul', says: /2x3 and 4x5/, call: () => x.matmul(randn([4, 5])) },
  { name: 'linear with a weight of the wrong width', op: 'linear', call: () => F.linear(x, randn([4, 5])) },
  { name: 'conv2d with 3 input channels for a 2-channel weight', op: 'conv2d', says: /to have 2 channels, but got 3/,
    call: () => F.conv2d(randn([1, 3, 5, 5]), randn([4, 2, 3, 3])) },
  { name: 'conv2d with channels not divisible by groups', op: 'conv2d', call: () => F.conv2d(randn([1, 3, 5, 5]), randn([4, 1, 3, 3]), null, { groups: 2 }) },
  { name: 'conv2d with a kernel larger than the padded input', op: 'conv2d', call: () => F.conv2d(randn([1, 1, 2, 2]), randn([1, 1, 3, 3])) },
  { name: 'cat of tensors that differ off the cat dim', op: 'cat', call: () => cat([x, randn([2, 4])]) },
  { name: 'stack of different shapes', op: 'stack', call: () => stack([x, randn([3, 2])]) },
  { name: 'view to a size of another element count', op: 'view', says: /invalid for input of size 6/, call: () => x.view(4, 2) },
  { name: 'view of a transposed tensor', op: 'view', call: () => randn([3, 4]).transpose(0, 1).view(12) },
  { name: 'reshape to a size of another element count', op: 'reshape', call: () => x.reshape(5) },
  { name: 'expand of a non-singleton dim', op: 'expand', call: () => x.expand(4, 3, 4) },
  { name: 'batch_norm with running stats for 4 channels on 3', op: 'batch_norm',
    call: () => F.batchNorm(randn([2, 3, 4, 4]), zeros([4]), ones([4]), null, null, true) },
  { name: 'layer_norm over a shape the input does not end in', op: 'layer_norm', call: () => F.layerNorm(x, [2]) },
  { name: 'cross_entropy with 4 targets for 2 rows', op: 'cross_entropy_loss', says: /batch_size/, call: () => F.crossEntropy(x, long([0, 1, 2, 0])) },
  { name: 'where with unbroadcastable branches', op: 'where', call: () => where(x.gt(0), x, randn([4])) },
  { name: 'tensor() with data that does not fill the shape', op: 'tensor', kind: 'value', says: /needs 6 elements, data has 4/,
    call: () => tensor(new Float32Array(4), { shape: [2, 3] }) },
  { name: 'grid_sample with a grid of the wrong batch', op: 'grid_sampler', call: () => F.gridSample(randn([2, 1, 4, 4]), randn([3, 2, 2, 2])) },
];

const wrongDtype: BadCall[] = [
  { name: 'index_select with a float index', op: 'index_select', says: /Expected dtype int32 or int64 for index/,
    call: () => x.indexSelect(0, tensor([0, 1])) },
  { name: 'gather with a float index', op: 'gather', call: () => x.gather(1, tensor([[0], [1]])) },
  { name: 'cross_entropy with float targets of the wrong shape', op: 'cross_entropy_loss', call: () => F.crossEntropy(x, randn([2])) },
  { name: 'cross_entropy with int32 class indices', op: 'cross_entropy_loss', call: () => F.crossEntropy(x, tensor([0, 1], { dtype: 'int32' })) },
  { name: 'matmul of float32 and float64', op: 'matmul', says: /Float but found Double|float != double/ /* libtorch 1.13 | 2.x */, call: () => x.matmul(randn([3, 2], { dtype: 'float64' })) },
  { name: 'conv2d of an int64 input', op: 'conv2d', call: () => F.conv2d(zeros([1, 1, 3, 3], { dtype: 'int64' }), randn([1, 1, 3, 3])) },
  { name: 'one_hot of a float tensor', op: 'one_hot', call: () => F.oneHot(tensor([0, 1])) },
  { name: 'masked_fill with a float mask', op: 'masked_fill', call: () => x.maskedFill(randn([2, 3]), 0) },
  { name: 'in-place add_ of a float into an int64 tensor', op: 'add_', says: /can't be cast/, call: () => long([1, 2]).add_(0.5) },
  { name: 'backward of a tensor that does not require grad', op: 'backward', call: () => x.sum().backward() },
  { name: 'a fractional size', op: 'view', kind: 'type', says: /must be an integer/, call: () => x.view(2.5, 2) },
  { name: 'an unknown dtype name', op: 'zeros', says: /unknown dtype 'complex64'/, call: () => zeros([2], { dtype: 'complex64' as DType }) },
  { name: 'a cast to an unknown dtype', op: 'to', kind: 'type', call: () => x.to({ dtype: 'int4' as DType }) },
];

const usedAfterDispose: BadCall[] = [
  { name: 'an op on a disposed tensor', op: 'add', kind: 'disposed', says: /disposed/, call: () => disposed().add(1) },
  { name: 'a disposed tensor as the other operand', op: 'mul', kind: 'disposed', call: () => x.mul(disposed()) },
  { name: 'a disposed weight in conv2d', op: 'conv2d', kind: 'disposed', call: () => {
    const w = randn([1, 1, 3, 3]);
    w.dispose();
    return F.conv2d(randn([1, 1, 3, 3]), w);
  } },
  { name: 'shape of a disposed tensor', op: 'shape', kind: 'disposed', call: () => disposed().shape },
  { name: 'item of a disposed tensor', op: 'item', kind: 'disposed', call: () => disposed().item() },
  { name: 'toTypedArray of a disposed tensor', op: 'toTypedArray', kind: 'disposed', call: () => disposed().toTypedArray() },
  { name: 'grad of a disposed tensor', op: 'grad', kind: 'disposed', call: () => disposed().grad },
  { name: 'requiresGrad of a disposed tensor', op: 'requiresGrad', kind: 'disposed', call: () => disposed().requiresGrad },
  { name: 'gradFn of a disposed tensor', op: 'gradFn', kind: 'disposed', call: () => disposed().gradFn },
  { name: 'backward from a disposed tensor', op: 'backward', kind: 'disposed', call: () => disposed().backward() },
  { name: 'a tensor a tidy scope has released', op: 'sum', kind: 'disposed', call: () => {
    let inner: Tensor | null = null;
    tidy(() => { inner = randn([3]); });
    return inner!.sum();
  } },
];

const outOfRange: BadCall[] = [
  { name: 'select index 5 of 2', op: 'select', kind: 'index', says: /index 5 out of range/, call: () => x.select(0, 5) },
  { name: 'select dim 2 of a 2-d tensor', op: 'select', kind: 'index', call: () => x.select(2, 0) },
  { name: 'narrow past the end', op: 'narrow', says: /exceeds dimension size/, call: () => x.narrow(1, 2, 5) },
  { name: 'slice on a missing dim', op: 'slice', kind: 'index', call: () => x.slice(3, 0, 1) },
  { name: 'index_select of row 5 of 2', op: 'index_select', kind: 'index', says: /out of range/, call: () => x.indexSelect(0, long([0, 5])) },
  { name: 'index_select of a negative row', op: 'index_select', kind: 'index', call: () => x.indexSelect(0, long([-1])) },
  { name: 'gather of column 7 of 3', op: 'gather', says: /index 7 is out of bounds/, call: () => x.gather(1, long([0, 7]).view(1, 2)) },
  { name: 'cat along dim 3 of 2-d tensors', op: 'cat', kind: 'index', says: /Dimension out of range/, call: () => cat([x, x], 3) },
  { name: 'size of dim 5', op: 'size', kind: 'index', call: () => x.size(5) },
  { name: 'transpose of dim 4', op: 'transpose', kind: 'index', call: () => x.transpose(0, 4) },
  { name: 'sum over dim -3', op: 'sum', kind: 'index', call: () => x.sum(-3) },
  { name: 'softmax over dim 2', op: 'softmax', kind: 'index', call: () => x.softmax(2) },
  { name: 'topk of 4 from 3', op: 'topk', call: () => x.topk(4) },
  { name: 'one_hot of class 5 with 3 classes', op: 'one_hot', says: /Class values must be smaller than num_classes/, call: () => F.oneHot(long([5]), 3) },
  { name: 'cross_entropy with target 7 of 3 classes', op: 'cross_entropy_loss', says: /out of bounds/, call: () => F.crossEntropy(x, long([0, 7])) },
  { name: 'dropout with p = 1.5', op: 'dropout', kind: 'value', call: () => F.dropout(x, 1.5) },
];

const groups: [string, BadCall[]][] = [
  ['shape mismatch', shapeMismatch], ['wrong dtype', wrongDtype], ['disposed tensor', usedAfterDispose], ['out-of-range index', outOfRange],
];

for (const [group, calls] of groups) {
  for (const c of calls) {
    test(`${group}: ${c.name} throws an Error naming ${c.op}`, () => {
      assert.throws(c.call, (e: unknown) => {
        assert.ok(e instanceof Error, 'an Error');
        assert.ok(e instanceof TorchError, `a TorchError, not ${(e as Error).name}: ${(e as Error).message}`);
        assert.equal(e.op, c.op, `.op of "${e.message}"`);
        assert.ok(e.message.startsWith(`${c.op}: `), `the message names the op: "${e.message}"`);
        if (c.kind) assert.equal(e.kind, c.kind, `.kind of "${e.message}"`);
        if (c.says) assert.match(e.message, c.says);
        return true;
      });
    });
  }
}

test('after every bad call the engine still computes, and dispose twice is harmless', () => {
  for (const [, calls] of groups) for (const c of calls) assert.throws(c.call);
  const a = tensor([[1, 2], [3, 4]]);
  assert.deepEqual(a.matmul(a).add(1).toArray(), [8, 11, 16, 23]);
  const d = disposed();
  d.dispose();
  assert.equal(d.isDisposed, true);
  assert.equal(String(d), 'Tensor(disposed)');
});
