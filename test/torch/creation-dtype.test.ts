// Creation (from data, filled, ranges, random under a seed) and every dtype's round trip through
// toTypedArray and item, against PyTorch.
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  tensor, zeros, ones, full, empty, rand, randn, randint, randperm, arange, linspace,
  zerosLike, onesLike, fullLike, randLike, randnLike, manualSeed, type DType, type Tensor,
} from '../../src/torch/index.js';
import { parityTable, type Case } from '../helpers/parity.js';

const py = (values: number[], dtype: string, shape = [values.length]): string =>
  `torch.tensor(${JSON.stringify(values)}, dtype=torch.float64).to(_DT['${dtype}']).reshape(${JSON.stringify(shape)})`;

// Values that round differently in each dtype: halfway cases, float16's largest, subnormal-ish.
const FLOATS = [0, 1, -2.5, 3.14159, 65504, 1e-3, 100.7, -0.1, 1 / 3, 2049, 6.1e-5];
const VALUES: Record<DType, number[]> = {
  float32: FLOATS, float64: FLOATS, float16: FLOATS, bfloat16: FLOATS,
  int64: [0, 1, -2, 2 ** 40, -(2 ** 31), 1000], int32: [0, 1, -2, 2 ** 31 - 1, -(2 ** 31), 1000],
  int16: [0, 1, -2, 32767, -32768], int8: [0, 1, -2, 127, -128], uint8: [0, 1, 200, 255, 7], bool: [0, 1, 2, -1, 0.5, 0],
};
const DTYPES = Object.keys(VALUES) as DType[];

/** A one-element float64 tensor holding x.item(), so item() is compared like any output. */
const itemOf = (x: Tensor): Tensor => tensor([x.item()], { dtype: 'float64' });

const cases: Case[] = [
  // from typed arrays with a shape, and nested arrays
  ...([
    ['Float32Array', new Float32Array([1.5, -2, 3.25, 4, 5, 6]), 'float32'],
    ['Float64Array', new Float64Array([1 / 3, -2, 1e300, 4, 5, 6]), 'float64'],
    ['Int32Array', new Int32Array([1, -2, 3, 2 ** 31 - 1, 5, 6]), 'int32'],
    ['BigInt64Array', new BigInt64Array([1n, -2n, 3n, 2n ** 50n, 5n, 6n]), 'int64'],
    ['Uint8Array', new Uint8Array([1, 2, 3, 255, 5, 0]), 'uint8'],
  ] as const).map(([kind, data, dtype]): Case => ({
    name: `tensor from a ${kind} with a shape`, js: () => tensor(data, { shape: [2, 3] }),
    py: py(Array.from(data as ArrayLike<number | bigint>, Number), dtype, [2, 3]),
  })),
  { name: 'tensor from nested arrays', js: () => [tensor([[1, 2], [3, 4.5]]), tensor([[true, false]]), tensor(7)],
    py: '(torch.tensor([[1., 2.], [3., 4.5]]), torch.tensor([[True, False]]), torch.tensor(7.))' },
  // filled
  { name: 'zeros', js: () => [zeros([2, 3]), zeros([4], { dtype: 'int64' }), zeros([])], py: '(torch.zeros(2, 3), torch.zeros(4, dtype=torch.int64), torch.zeros([]))' },
  { name: 'ones', js: () => [ones([3, 1]), ones([2], { dtype: 'float64' }), ones([2], { dtype: 'bool' })],
    py: '(torch.ones(3, 1), torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.bool))' },
  { name: 'full', js: () => [full([2, 2], 7.5), full([3], 7, { dtype: 'int64' }), full([2], -1, { dtype: 'float16' })],
    py: '(torch.full((2, 2), 7.5), torch.full((3,), 7), torch.full((2,), -1., dtype=torch.float16))' },
  { name: 'zerosLike onesLike fullLike', inputs: { a: randn([2, 3], { dtype: 'float64' }) },
    js: ({ a }) => [zerosLike(a), onesLike(a), fullLike(a, 2.5)], py: '(torch.zeros_like(a), torch.ones_like(a), torch.full_like(a, 2.5))' },
  // ranges
  { name: 'arange of integers is int64', js: () => [arange(5), arange(2, 9, 3), arange(10, 0, -3)],
    py: '(torch.arange(5), torch.arange(2, 9, 3), torch.arange(10, 0, -3))' },
  { name: 'arange of fractions is float32', js: () => [arange(0, 1, 0.25), arange(-1, 1, 0.3), arange(1.5, 4)],
    py: '(torch.arange(0, 1, 0.25), torch.arange(-1, 1, 0.3), torch.arange(1.5, 4))' },
  { name: 'arange with a dtype', js: () => [arange(5, undefined, 1, { dtype: 'float64' }), arange(0, 6, 2, { dtype: 'int32' })],
    py: '(torch.arange(5, dtype=torch.float64), torch.arange(0, 6, 2, dtype=torch.int32))' },
  { name: 'linspace', js: () => [linspace(0, 1, 5), linspace(-2, 3, 7, { dtype: 'float64' })],
    py: '(torch.linspace(0, 1, 5), torch.linspace(-2, 3, 7, dtype=torch.float64))' },
  // random under manual_seed: bit-for-bit what torch draws
  { name: 'rand under a seed', seed: 42, js: () => [rand([3, 4]), rand([20], { dtype: 'float64' })],
    py: '(torch.rand(3, 4), torch.rand(20, dtype=torch.float64))', rtol: 0, atol: 0 },
  { name: 'randn under a seed, short and vectorised lengths', seed: 7, js: () => [randn([5]), randn([4, 25]), randn([17], { dtype: 'float64' })],
    py: '(torch.randn(5), torch.randn(4, 25), torch.randn(17, dtype=torch.float64))', rtol: 0, atol: 0 },
  { name: 'randint randperm under a seed', seed: 3, js: () => [randint(-3, 10, [12]), randperm(9)],
    py: '(torch.randint(-3, 10, (12,)), torch.randperm(9))' },
  { name: 'randLike randnLike under a seed', seed: 11, inputs: { a: zeros([3, 3]) }, js: ({ a }) => [randLike(a), randnLike(a)],
    py: '(torch.rand_like(a), torch.randn_like(a))', rtol: 0, atol: 0 },
  // every dtype: built from numbers, cast from float64, and item()
  ...DTYPES.map((dtype): Case => ({
    name: `${dtype} round trip`, rtol: 0, atol: 0,
    js: () => {
      const built = tensor(VALUES[dtype], { dtype });
      const cast = tensor(VALUES[dtype], { dtype: 'float64' }).to(dtype);
      return [built, cast, itemOf(built.select(0, 3)), itemOf(cast.select(0, 1))];
    },
    py: `(${py(VALUES[dtype], dtype)}, ${py(VALUES[dtype], dtype)}, torch.tensor([${py(VALUES[dtype], dtype)}[3].item()], dtype=torch.float64),
          torch.tensor([${py(VALUES[dtype], dtype)}[1].item()], dtype=torch.float64))`,
  })),
];

const check = parityTable(cases);
for (const c of cases) test(`${c.name} matches PyTorch`, () => check(c.name));

test('toTypedArray returns the natural array type for each dtype', () => {
  const expected: Record<DType, string> = {
    float32: 'Float32Array', float64: 'Float64Array', float16: 'Float32Array', bfloat16: 'Float32Array', int64: 'BigInt64Array',
    int32: 'Int32Array', int16: 'Int16Array', int8: 'Int8Array', uint8: 'Uint8Array', bool: 'Uint8Array',
  };
  for (const dtype of DTYPES) {
    const x = tensor([1, 0, 1], { dtype });
    assert.equal(x.dtype, dtype);
    assert.equal(x.toTypedArray().constructor.name, expected[dtype], dtype);
    assert.deepEqual(x.toArray(), [1, 0, 1], dtype);
    assert.equal(x.select(0, 0).item(), 1, `${dtype} item`);
  }
  const big = new BigInt64Array([2n ** 53n + 1n, -(2n ** 62n)]);
  assert.deepEqual(tensor(big).toTypedArray(), big, 'int64 beyond 2^53 survives exactly');
});

test('empty has the shape and dtype asked for', () => {
  const e = empty([2, 0, 3], { dtype: 'int32' });
  assert.deepEqual([e.shape, e.dtype, e.numel()], [[2, 0, 3], 'int32', 0]);
});

test('manualSeed makes rand and randn repeat, and different seeds differ', () => {
  const draw = (seed: number): number[] => {
    manualSeed(seed);
    return [...rand([8]).toArray(), ...randn([8]).toArray()];
  };
  assert.deepEqual(draw(5), draw(5));
  assert.notDeepEqual(draw(5), draw(6));
});
