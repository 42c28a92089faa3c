// Reference values from Python PyTorch (Debian's python3-torch), computed at test time.
// Tensors travel as JSON: a float32 value printed as a double reads back exactly.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { tensor, getNumThreads, type Tensor, type DType } from '../../src/torch/index.js';

/** The Python with torch: $VISIONTUNE_PYTHON, else Debian's /usr/bin/python3. */
export const PYTHON = process.env.VISIONTUNE_PYTHON ?? '/usr/bin/python3';

/** The source folder of the test helpers (Python twins such as simple_cnn.py live there). */
export const HELPERS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'helpers');

/** A tensor as JSON: shape, dtype and row-major data. */
export interface Encoded {
  shape: number[];
  dtype: DType;
  data: number[];
}

export function enc(x: Tensor): Encoded {
  return { shape: x.shape, dtype: x.dtype, data: x.toArray() };
}

export function dec(e: Encoded): Tensor {
  return tensor(e.data, { shape: e.shape, dtype: e.dtype });
}

// Available to every script: torch, F, nn, T(enc) -> tensor, J(tensor) -> enc, `inp` (the
// JSON input); the script sets `out`, which is printed back as JSON. PyTorch runs with this
// process's thread count, so both sides split their reductions alike.
const PRELUDE = `
import json, sys, math
import torch
import torch.nn as nn
import torch.nn.functional as F
torch.set_num_threads(${getNumThreads()})
_DT = {'float32': torch.float32, 'float64': torch.float64, 'float16': torch.float16, 'bfloat16': torch.bfloat16,
       'int64': torch.int64, 'int32': torch.int32, 'int16': torch.int16, 'int8': torch.int8, 'uint8': torch.uint8, 'bool': torch.bool}
_NAME = {v: k for k, v in _DT.items()}
sys.path.insert(0, ${JSON.stringify(HELPERS_DIR)})
def T(e, requires_grad=False):
    t = torch.tensor(e['data'], dtype=torch.float64).to(_DT[e['dtype']]).reshape(e['shape'])
    return t.requires_grad_(requires_grad) if requires_grad else t
def J(t):
    t = t.detach().cpu()
    data = t.to(torch.float64).reshape(-1).tolist() if t.dtype != torch.bool else t.to(torch.int64).reshape(-1).tolist()
    return {'shape': list(t.shape), 'dtype': _NAME[t.dtype], 'data': data}
inp = json.loads(sys.stdin.read())
out = None
`;

/** Runs `script` in Python with `input`; returns the JSON value it put in `out`. */
export function python<T>(script: string, input: unknown = null): T {
  const code = `${PRELUDE}\n${script}\nsys.stdout.write('\\n@@OUT@@' + json.dumps(out))\n`;
  const r = spawnSync(PYTHON, ['-c', code], { input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.error) throw new Error(`cannot run ${PYTHON}: ${r.error.message} (install python3-torch or set VISIONTUNE_PYTHON)`);
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}`);
  const at = r.stdout.lastIndexOf('\n@@OUT@@');
  if (at < 0) throw new Error(`python printed no result:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.slice(at + 8)) as T;
}

/** float32's unit roundoff, 2⁻²⁴. */
export const EPS32 = 2 ** -24;

/**
 * Returns the absolute slack a float32 result needs when it sums up to `n` terms: another
 * summation order (a CPU's vector width, oneDNN's kernel choice, the thread split) moves such a sum
 * by about ε·√n·|term| (rounding errors add as a random walk), and max|reference| stands in for
 * the largest term. 16× that still lies orders of magnitude below what a wrong argument, layout
 * or op gives (an error of the size of the values themselves). The relative bound alone fails on
 * elements that are small because their terms cancel: a 0.0106 conv weight gradient made of
 * hundreds of O(1) products moves by 2e-6 between a 1-thread and a 2-thread AVX-512 run.
 */
export function reductionSlack(reference: Encoded | number[], n: number): number {
  const data = Array.isArray(reference) ? reference : reference.data;
  let max = 0;
  for (const v of data) if (Number.isFinite(v) && Math.abs(v) > max) max = Math.abs(v);
  return 16 * EPS32 * Math.sqrt(n) * max;
}

/**
 * Asserts |a - b| <= atol + rtol * |b| elementwise (b is the reference); the message names the
 * worst element.
 */
export function assertClose(actual: Tensor | number[], expected: Encoded | number[], what: string,
  { rtol = 1e-5, atol = 1e-6 } = {}): void {
  const a = Array.isArray(actual) ? actual : actual.toArray();
  const b = Array.isArray(expected) ? expected : expected.data;
  if (!Array.isArray(actual) && !Array.isArray(expected)) {
    const sa = actual.shape.join(','), sb = expected.shape.join(',');
    if (sa !== sb) throw new Error(`${what}: shape [${sa}] != reference [${sb}]`);
  }
  if (a.length !== b.length) throw new Error(`${what}: ${a.length} elements != reference ${b.length}`);
  let worst = -1, worstExcess = 0;
  for (let i = 0; i < a.length; i++) {
    const excess = Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i]));
    if (excess > worstExcess || Number.isNaN(a[i]) !== Number.isNaN(b[i])) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst >= 0) {
    throw new Error(`${what}: element ${worst} is ${a[worst]}, reference ${b[worst]} (rtol ${rtol}, atol ${atol})`);
  }
}
