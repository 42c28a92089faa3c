// The GPU benchmark: one training epoch of efficientnet_v2_s at 224 px on 1,840 generated photos
// (2,300 in 10 classes, 20% held out for validation, which the epoch includes), visiontune
// against fastai's recipe written in PyTorch (bench/finetune.py), on the same CUDA GPU, folder and
// initial weights, in fp32 and in bf16 autocast, channels_last. visiontune should be built
// against the libtorch of the PyTorch it is compared with (scripts/gpu-check.sh does that).
// Each side trains 3 unfrozen epochs and keeps its fastest after the first (cuDNN's and the
// allocators' warm-up); the sides alternate. Prints each precision's epoch times and the ratio
// visiontune ÷ PyTorch (target ≤ 1.05), then `ratio <the larger of the two>`; --json FILE also
// writes the figures. Environment: BENCH_IMAGES (2300), BENCH_SIZE (224), BENCH_BS (64),
// BENCH_EPOCHS (3), BENCH_PRECISIONS (fp32,bf16).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cuda, libtorchVersion } from '../src/torch/index.js';
import { PYTHON, run, writeStudyInputs } from './tools.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.resolve(here, '..', 'src', 'cli', 'main.js');
const pyScript = path.resolve(here, '..', '..', 'bench', 'finetune.py');
const env = (name: string, fallback: string): string => process.env[name] ?? fallback;
const jsonOut = process.argv.indexOf('--json') > 0 ? process.argv[process.argv.indexOf('--json') + 1] : null;

const ARCH = 'efficientnet_v2_s';
const CLASSES = 10;
const c = {
  arch: ARCH, images: Number(env('BENCH_IMAGES', '2300')), size: Number(env('BENCH_SIZE', '224')), bs: Number(env('BENCH_BS', '64')),
  epochs: Number(env('BENCH_EPOCHS', '3')), seed: 0, lr: 2e-3, threads: 4,
};
const itemSize = Math.round(c.size * 1.25);
const precisions = env('BENCH_PRECISIONS', 'fp32,bf16').split(',') as ('fp32' | 'bf16' | 'fp16')[];

if (!(Number.isInteger(c.epochs) && c.epochs >= 2)) {
  console.error(`BENCH_EPOCHS must be 2 or more: the first epoch (cuDNN's and the allocators' warm-up) is not timed; got ${process.env.BENCH_EPOCHS}`);
  process.exit(2);
}
if (!cuda.isAvailable()) {
  console.error(`bench:gpu needs a CUDA GPU and visiontune built against a CUDA libtorch (this one: ${libtorchVersion().torch}, CUDA build ${libtorchVersion().cudaBuild})`);
  process.exit(1);
}

/** An epoch's time: the fastest after the first. */
const steady = (epochs: number[]): number => Math.min(...epochs.slice(1));

const dir = mkdtempSync(path.join(tmpdir(), 'vt-bench-gpu-'));
try {
  const { data, weights } = await writeStudyInputs(dir, ARCH, c.images, CLASSES);
  const train = Math.round(c.images * 0.8);
  console.log(`GPU benchmark: ${ARCH} from seeded random weights, ${c.images} generated photos in ${CLASSES} classes (${train} train), ` +
    `item ${itemSize} px → ${c.size} px, batch ${c.bs}, channels_last, ${c.epochs} unfrozen epochs a side, the fastest after the first kept`);

  const pytorch = (precision: string): { epochs: number[]; error: number; torch: string; device: string } => {
    const cfg = { ...c, freeze_epochs: 0, item_size: itemSize, data, weights, device: 'cuda', channels_last: true, amp: precision === 'fp32' ? null : precision };
    const out = JSON.parse(run(PYTHON, [pyScript, JSON.stringify(cfg)]).trim().split('\n').pop() as string);
    return { epochs: out.epochs_s as number[], error: out.error as number, torch: out.torch as string, device: out.device as string };
  };
  const visiontune = (precision: string): { epochs: number[]; error: number } => {
    const json = path.join(dir, `vt-${precision}.json`);
    run(process.execPath, [cli, 'train', data, '--arch', ARCH, '--weights', weights, '--epochs', String(c.epochs), '--freeze-epochs', '0',
      '--size', String(c.size), '--item-size', String(itemSize), '--bs', String(c.bs), '--lr', String(c.lr), '--seed', '0',
      '--device', 'cuda', '--precision', precision, '--memory-format', 'channels_last', '--threads', String(c.threads),
      '--out', path.join(dir, `run-${precision}`), '--json', json]);
    const res = JSON.parse(readFileSync(json, 'utf8')) as { epochs: { seconds: number; error_rate: number }[] };
    return { epochs: res.epochs.map((e) => e.seconds), error: res.epochs[res.epochs.length - 1].error_rate };
  };

  const figures: Record<string, unknown> = { arch: ARCH, images: c.images, train, size: c.size, bs: c.bs, libtorch: libtorchVersion().torch, precisions: {} };
  const ratios: number[] = [];
  for (const [k, precision] of precisions.entries()) {
    // Alternate which side goes first.
    const [first, second] = k % 2 === 0 ? ['visiontune', 'pytorch'] : ['pytorch', 'visiontune'];
    const results: Record<string, { epochs: number[]; error: number; torch?: string; device?: string }> = {};
    for (const side of [first, second]) results[side] = side === 'pytorch' ? pytorch(precision) : visiontune(precision);
    const [vt, py] = [results.visiontune, results.pytorch];
    const ratio = steady(vt.epochs) / steady(py.epochs);
    ratios.push(ratio);
    figures.device = py.device;
    figures.torch = py.torch;
    (figures.precisions as Record<string, unknown>)[precision] = {
      visiontune: { epochs_s: vt.epochs, epoch_s: steady(vt.epochs), error: vt.error },
      pytorch: { epochs_s: py.epochs, epoch_s: steady(py.epochs), error: py.error },
      ratio,
    };
    console.log(`${precision.padEnd(5)} visiontune ${steady(vt.epochs).toFixed(2)} s an epoch (${vt.epochs.map((s) => s.toFixed(2)).join(', ')}), ` +
      `PyTorch ${py.torch} ${steady(py.epochs).toFixed(2)} s (${py.epochs.map((s) => s.toFixed(2)).join(', ')}) on ${py.device}: ratio ${ratio.toFixed(3)}`);
  }
  figures.ratio = Math.max(...ratios);
  if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(figures, null, 2)}\n`);
  console.log(`ratio ${Math.max(...ratios).toFixed(3)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
