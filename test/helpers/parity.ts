// Op parity against PyTorch, table-driven: every case runs here and, in one Python process for
// the whole table, in PyTorch on the same inputs; outputs (values, dtype, shape, optionally
// strides) and input gradients of sum(out · w), w fixed random weights, must agree.
import assert from 'node:assert/strict';
import { manualSeed, randn, type Tensor } from '../../src/torch/index.js';
import { python, enc, assertClose, reductionSlack, type Encoded } from './python.js';

export interface Case {
  name: string;
  /** The op's tensor inputs, made before any case runs; both languages receive the same values. */
  inputs?: Record<string, Tensor>;
  /** Inputs whose gradients are compared; they become leaves that require grad. */
  grad?: string[];
  /** The op here: one tensor or several (values and indices, split pieces, updated buffers); finite values only, as JSON has no NaN. */
  js: (x: Record<string, Tensor>) => Tensor | Tensor[];
  /** The op in Python: an expression over the input names, torch, F and the table's `defs`. */
  py: string;
  /** Seeds both generators just before the op, for random ops. */
  seed?: number;
  /** Also compare strides (and channels_last contiguity of 4-d outputs). */
  strides?: boolean;
  rtol?: number;
  atol?: number;
}

interface RefOut extends Encoded {
  strides: number[];
  channelsLast: boolean;
}
interface Ref {
  outs?: RefOut[];
  grads?: Record<string, Encoded | null>;
  error?: string;
}
interface Run {
  outs: Tensor[];
  grads: Record<string, Tensor | null>;
  error?: unknown;
}

const RUNNER = `
res = {}
for c in inp:
    try:
        x = {k: T(e, k in c['grad']) for k, e in c['inputs'].items()}
        if c['seed'] is not None: torch.manual_seed(c['seed'])
        r = eval(c['py'], globals(), x)
        outs = list(r) if isinstance(r, (tuple, list)) else [r]
        loss = None
        for o, w in zip(outs, c['weights']):
            if w is not None:
                term = (o * T(w)).sum()
                loss = term if loss is None else loss + term
        if loss is not None: loss.backward()
        res[c['name']] = {
            'outs': [dict(J(o), strides=list(o.stride()),
                          channelsLast=o.dim() == 4 and o.is_contiguous(memory_format=torch.channels_last)) for o in outs],
            'grads': {k: None if x[k].grad is None else J(x[k].grad) for k in c['grad']}}
    except Exception as e:
        res[c['name']] = {'error': repr(e)}
out = res
`;

/** Returns check(name), which asserts that case's parity; everything runs on the first call. */
export function parityTable(cases: Case[], defs = ''): (name: string) => void {
  const names = new Set<string>();
  for (const c of cases) {
    if (names.has(c.name)) throw new Error(`duplicate case name '${c.name}'`);
    names.add(c.name);
  }
  let results: Map<string, [Run, Ref]> | null = null;

  const runAll = (): Map<string, [Run, Ref]> => {
    manualSeed(12345);
    const runs: Run[] = [];
    const payload = cases.map((c) => {
      const inputs = c.inputs ?? {};
      const grad = c.grad ?? [];
      const encoded = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, enc(v)]));
      const leaves = Object.fromEntries(Object.entries(inputs).map(([k, v]) =>
        [k, grad.includes(k) ? v.detach().requiresGrad_() : v]));
      const run: Run = { outs: [], grads: {} };
      const weights: (Encoded | null)[] = [];
      try {
        if (c.seed !== undefined) manualSeed(c.seed);
        const r = c.js(leaves);
        run.outs = Array.isArray(r) ? r : [r];
        let loss: Tensor | null = null;
        for (const o of run.outs) {
          if (!o.requiresGrad) {
            weights.push(null);
            continue;
          }
          const w = randn(o.shape, { dtype: o.dtype });
          const term = o.mul(w).sum();
          loss = loss === null ? term : loss.add(term);
          weights.push(enc(w));
        }
        if (loss !== null) loss.backward();
        for (const k of grad) run.grads[k] = leaves[k].grad;
      } catch (e) {
        run.error = e;
      }
      runs.push(run);
      return { name: c.name, inputs: encoded, grad, py: c.py, seed: c.seed ?? null, weights };
    });
    const refs = python<Record<string, Ref>>(`${defs}\n${RUNNER}`, payload);
    return new Map(cases.map((c, i) => [c.name, [runs[i], refs[c.name]]]));
  };

  return (name: string): void => {
    results ??= runAll();
    const c = cases.find((x) => x.name === name);
    const got = results.get(name);
    if (c === undefined || got === undefined) throw new Error(`no case '${name}'`);
    const [run, ref] = got;
    if (run.error !== undefined) throw run.error;
    if (ref.error !== undefined) throw new Error(`${name}: PyTorch raised ${ref.error}`);
    // float32 results also get the slack of a reduction as long as the largest input: no sum in
    // the case is longer, and its rounding must not depend on the kernels this CPU picks.
    const n = Math.max(1, ...Object.values(c.inputs ?? {}).map((t) => t.numel()));
    const tolFor = (dtype: string, ref: Encoded) => {
      const atol = c.atol ?? 1e-6;
      return { rtol: c.rtol ?? 1e-5, atol: dtype === 'float32' && c.atol !== 0 ? Math.max(atol, reductionSlack(ref, n)) : atol };
    };
    assert.equal(run.outs.length, ref.outs!.length, `${name}: number of outputs`);
    run.outs.forEach((o, i) => {
      const r = ref.outs![i];
      const what = `${name}: output ${i}`;
      assert.equal(o.dtype, r.dtype, `${what} dtype`);
      assert.deepEqual(o.shape, r.shape, `${what} shape`);
      if (o.dtype.startsWith('float') || o.dtype === 'bfloat16') assertClose(o, r, what, tolFor(o.dtype, r));
      else assert.deepEqual(o.toArray(), r.data, `${what} values`);
      if (c.strides) {
        assert.deepEqual(o.strides(), r.strides, `${what} strides`);
        if (o.ndim === 4) assert.equal(o.isContiguous('channels_last'), r.channelsLast, `${what} channels_last`);
      }
    });
    for (const k of c.grad ?? []) {
      const g = run.grads[k], rg = ref.grads![k];
      assert.equal(g === null, rg === null, `${name}: grad of ${k} is ${g === null ? 'missing' : 'present'}`);
      if (g !== null && rg !== null) assertClose(g, rg, `${name}: grad of ${k}`, tolFor(g.dtype, rg));
    }
  };
}
