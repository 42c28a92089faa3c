// The study benchmark: the seed's study — efficientnet_v2_s fine-tuned on ten classes of
// generated photos, one frozen epoch then unfrozen ones — three ways, on the same folder, split
// (the same 20% of each class to validation) and initial weights (seeded random ones: no
// downloads), at the same thread count:
//   (a) fastai's recipe written in PyTorch (bench/finetune.py), as the reference;
//   (b) `visiontune train` with its defaults;
//   (c) `visiontune train --precision auto --frozen-bn --progressive MIN:SIZE` (the fast options).
// Each side's line gives the wall time of the whole command (presizing, every epoch, validation;
// (b) and (c) also their run folder) and the last epoch's validation error, the two lines below it
// every epoch's time and error. The last line is `ratio <(c) time ÷ (a) time>` (target ≤ 0.5,
// with (c)'s error within 0.02 of (a)'s).
// Default: a small study (400 images, 1 + 2 epochs, 160 px) that runs in minutes; BENCH_FULL=1
// runs the full one (2,300 images: 1,840 train / 460 valid, 1 + 5 epochs, 224 px). Environment:
// BENCH_IMAGES, BENCH_EPOCHS, BENCH_SIZE, BENCH_BS (32) override either; BENCH_SIDES (a,b,c)
// chooses the sides to run; BENCH_SEED (0) seeds every side's head, batch order and augmentation.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { getNumThreads } from '../src/torch/index.js';
import { PYTHON, run, writeStudyInputs } from './tools.js';
import { PROGRESSIVE_MULTIPLE } from '../src/learner/progressive.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.resolve(here, '..', 'src', 'cli', 'main.js');
const pyScript = path.resolve(here, '..', '..', 'bench', 'finetune.py');
const full = process.env.BENCH_FULL === '1';
const env = (name: string, small: string, big: string): number => Number(process.env[name] ?? (full ? big : small));

const ARCH = 'efficientnet_v2_s';
const CLASSES = 10;
const c = {
  arch: ARCH, images: env('BENCH_IMAGES', '400', '2300'), size: env('BENCH_SIZE', '160', '224'), bs: env('BENCH_BS', '32', '32'),
  freeze_epochs: 1, epochs: env('BENCH_EPOCHS', '2', '5'), threads: getNumThreads(), seed: Number(process.env.BENCH_SEED ?? '0'), lr: 2e-3,
};
// The EfficientNetV2 paper's progression for this model starts at 128 of 300 px; here 128 of 224, scaled for other sizes.
const minSize = Math.max(PROGRESSIVE_MULTIPLE, Math.round((c.size * 128) / 224 / PROGRESSIVE_MULTIPLE) * PROGRESSIVE_MULTIPLE);
const itemSize = Math.round(c.size * 1.25);

// Each epoch's seconds and validation error; the study's error is the last epoch's.
interface Result { seconds: number; epochs: number[]; errors: number[] }
const lastError = (r: Result): number => r.errors[r.errors.length - 1];

const dir = mkdtempSync(path.join(tmpdir(), 'vt-bench-study-'));
try {
  const { data, weights } = await writeStudyInputs(dir, ARCH, c.images, CLASSES);
  console.log(`study benchmark${full ? '' : ' (small; BENCH_FULL=1 for the full study)'}: ${ARCH} from seeded random weights, ` +
    `${c.images} generated photos in ${CLASSES} classes (80% train), item ${itemSize} px → ${c.size} px, batch ${c.bs}, ` +
    `${c.freeze_epochs} frozen + ${c.epochs} unfrozen epochs, ${c.threads} threads, seed ${c.seed}`);

  const python = (): Result => {
    const started = performance.now();
    const out = JSON.parse(run(PYTHON, [pyScript, JSON.stringify({ ...c, item_size: itemSize, data, weights })]).trim().split('\n').pop() as string);
    return { seconds: (performance.now() - started) / 1000, epochs: out.epochs_s as number[], errors: out.errors as number[] };
  };
  const visiontune = (name: string, extra: string[]): Result => {
    const json = path.join(dir, `${name}.json`);
    const started = performance.now();
    run(process.execPath, [cli, 'train', data, '--arch', ARCH, '--weights', weights, '--epochs', String(c.epochs), '--freeze-epochs', String(c.freeze_epochs),
      '--size', String(c.size), '--item-size', String(itemSize), '--bs', String(c.bs), '--lr', String(c.lr), '--seed', String(c.seed),
      '--threads', String(c.threads), '--device', 'cpu', '--out', path.join(dir, name), '--json', json, ...extra]);
    const seconds = (performance.now() - started) / 1000;
    const res = JSON.parse(readFileSync(json, 'utf8')) as { epochs: { error_rate: number; seconds: number }[] };
    return { seconds, epochs: res.epochs.map((e) => e.seconds), errors: res.epochs.map((e) => e.error_rate) };
  };
  const fast = ['--precision', 'auto', '--frozen-bn', '--progressive', `${minSize}:${c.size}`];
  const sides: [string, string, () => Result][] = [
    ['a', 'PyTorch, fastai\'s recipe', python],
    ['b', 'visiontune defaults', () => visiontune('defaults', [])],
    ['c', `visiontune ${fast.join(' ')}`, () => visiontune('fast', fast)],
  ];
  // BENCH_SIDES=a,c (say) runs some sides only; the ratios need (a) and the side they compare.
  const chosen = (process.env.BENCH_SIDES ?? 'a,b,c').split(',').map((x) => x.trim());
  const results = sides.map(([side, what, time]): Result | null => {
    if (!chosen.includes(side)) return null;
    const label = `(${side}) ${what}`;
    const r = time();
    console.log(`${label.padEnd(76)} ${r.seconds.toFixed(1).padStart(7)} s   valid error ${lastError(r).toFixed(4)}`);
    console.log(`    epochs (training and validation), s: ${r.epochs.map((e) => e.toFixed(1)).join(', ')}`);
    // One epoch's error moves by several hundredths from the next here: the curve says more than its last point.
    console.log(`    valid error by epoch: ${r.errors.map((e) => e.toFixed(4)).join(', ')}`);
    return r;
  });
  const [a, b, f] = results;
  if (a && b) console.log(`(b) ÷ (a) time ${(b.seconds / a.seconds).toFixed(3)}`);
  if (a && f) {
    console.log(`(c) − (a) error ${(lastError(f) - lastError(a)).toFixed(4)}`);
    console.log(`ratio ${(f.seconds / a.seconds).toFixed(3)}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
