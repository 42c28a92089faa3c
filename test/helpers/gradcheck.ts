// Float64 finite-difference gradient check, as torch.autograd.gradcheck does it: autograd's
// gradient of sum(fn(inputs) · w), w fixed random weights, against central differences.
import { getNumThreads, noGrad, randn, setNumThreads, tensor, tidy, type Tensor } from '../../src/torch/index.js';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
}

/** Throws, naming the input and element, where autograd and central differences disagree. */
export function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], what: string,
  { eps = 1e-6, atol = 1e-5, rtol = 1e-3 }: GradcheckOptions = {}): void {
  for (const x of inputs) {
    if (x.dtype !== 'float64') throw new Error(`${what}: gradcheck needs float64 inputs, got ${x.dtype}`);
  }
  // Thousands of tiny ops: on one thread no op waits for a worker another process has descheduled.
  const threads = getNumThreads();
  setNumThreads(1);
  try {
    check(fn, inputs, what, eps, atol, rtol);
  } finally {
    setNumThreads(threads);
  }
}

function check(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], what: string, eps: number, atol: number, rtol: number): void {
  const leaves = inputs.map((x) => x.detach().clone().requiresGrad_());
  const y = fn(...leaves);
  const w = randn(y.shape, { dtype: 'float64' });
  y.mul(w).sum().backward();

  const values = inputs.map((x) => x.toTypedArray() as Float64Array);
  const loss = (i: number, data: Float64Array): number => tidy(() => noGrad(() => {
    const args = inputs.map((x, k) => (k === i ? tensor(data, { shape: x.shape }) : x));
    return fn(...args).mul(w).sum().item();
  }));
  inputs.forEach((x, i) => {
    const analytic = leaves[i].grad?.toArray() ?? new Array<number>(x.numel()).fill(0);
    const data = Float64Array.from(values[i]);
    for (let j = 0; j < data.length; j++) {
      const v = data[j];
      data[j] = v + eps;
      const up = loss(i, data);
      data[j] = v - eps;
      const down = loss(i, data);
      data[j] = v;
      const numeric = (up - down) / (2 * eps);
      if (!(Math.abs(analytic[j] - numeric) <= atol + rtol * Math.abs(numeric))) {
        throw new Error(`${what}: d/d input ${i}[${j}] is ${analytic[j]} by autograd, ${numeric} by finite differences`);
      }
    }
  });
}
