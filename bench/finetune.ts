// The fine-tune benchmark: wall time of one frozen and one unfrozen epoch of `visiontune train`
// and of fastai's recipe written in PyTorch (bench/finetune.py), on the same generated folder of
// photos and the same initial weights, at the same thread count. Each side's epoch includes its
// batch preparation and validation. visiontune runs as a user gets it (channels_last) and with
// `--memory-format nchw`, PyTorch's layout in fastai's recipe: the like-for-like engine
// comparison. The sides run in rotating rounds (a shared machine's load swings between runs) and
// each phase keeps its best time. The last line is `ratio <the larger of the two phases'
// visiontune ÷ PyTorch time>` (target ≤ 1.0).
// Environment: BENCH_IMAGES (300), BENCH_ARCH (mobilenet_v2), BENCH_SIZE (160), BENCH_ITEM_SIZE (224), BENCH_BS (32),
// BENCH_ROUNDS (2).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getNumThreads } from '../src/torch/index.js';
import { PYTHON, run, writeStudyInputs } from './tools.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.resolve(here, '..', 'src', 'cli', 'main.js');
const pyScript = path.resolve(here, '..', '..', 'bench', 'finetune.py');
const env = (name: string, fallback: string): string => process.env[name] ?? fallback;

const c = {
  arch: env('BENCH_ARCH', 'mobilenet_v2'), images: Number(env('BENCH_IMAGES', '300')), size: Number(env('BENCH_SIZE', '160')),
  item_size: Number(env('BENCH_ITEM_SIZE', '224')), bs: Number(env('BENCH_BS', '32')), threads: getNumThreads(), seed: 0, lr: 2e-3,
};
const rounds = Number(env('BENCH_ROUNDS', '2'));

interface Phases { frozen: number; unfrozen: number }
const best = (a: Phases | null, b: Phases): Phases => (a ? { frozen: Math.min(a.frozen, b.frozen), unfrozen: Math.min(a.unfrozen, b.unfrozen) } : b);

const dir = mkdtempSync(path.join(tmpdir(), 'vt-bench-finetune-'));
try {
  const { data, weights } = await writeStudyInputs(dir, c.arch, c.images, 3);
  console.log(`fine-tune benchmark: ${c.arch}, ${c.images} generated photos in 3 classes, item ${c.item_size} px → ${c.size} px, ` +
    `batch ${c.bs}, ${c.threads} threads, same initial weights; one frozen and one unfrozen epoch each, best of ${rounds} rotating rounds`);

  const visiontune = (memoryFormat: string): Phases => {
    const json = path.join(dir, 'vt.json');
    run(process.execPath, [cli, 'train', data, '--arch', c.arch, '--weights', weights, '--epochs', '1', '--freeze-epochs', '1',
      '--memory-format', memoryFormat, '--device', 'cpu',
      '--size', String(c.size), '--item-size', String(c.item_size), '--bs', String(c.bs), '--lr', String(c.lr), '--seed', '0',
      '--threads', String(c.threads), '--out', path.join(dir, 'out'), '--exist-ok', '--json', json]);
    const vt = JSON.parse(readFileSync(json, 'utf8')) as { epochs: { seconds: number }[] };
    return { frozen: vt.epochs[0].seconds, unfrozen: vt.epochs[1].seconds };
  };
  const pytorch = (): Phases => {
    const py = JSON.parse(run(PYTHON, [pyScript, JSON.stringify({ ...c, data, weights })]).trim().split('\n').pop() as string);
    return { frozen: py.frozen_s as number, unfrozen: py.unfrozen_s as number };
  };
  const sides = [
    { name: 'visiontune', label: 'visiontune (channels_last)', time: () => visiontune('channels_last') },
    { name: 'nchw', label: 'visiontune --memory-format nchw', time: () => visiontune('nchw') },
    { name: 'pytorch', label: 'PyTorch (NCHW)', time: pytorch },
  ];
  const bests = new Map<string, Phases>();
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < sides.length; k++) {
      const side = sides[(k + r) % sides.length];
      const t = side.time();
      console.log(`round ${r + 1} ${side.label.padEnd(31)} frozen ${t.frozen.toFixed(1)} s, unfrozen ${t.unfrozen.toFixed(1)} s`);
      bests.set(side.name, best(bests.get(side.name) ?? null, t));
    }
  }
  const theirs = bests.get('pytorch');
  if (!theirs) throw new Error('BENCH_ROUNDS must be at least 1');
  const ratio = (side: string): number => {
    const ours = bests.get(side) as Phases;
    return Math.max(ours.frozen / theirs.frozen, ours.unfrozen / theirs.unfrozen);
  };

  console.log('best of the rounds                frozen   unfrozen   ratio to PyTorch');
  for (const side of sides) {
    const t = bests.get(side.name) as Phases;
    const vs = side.name === 'pytorch' ? '' : ratio(side.name).toFixed(3);
    console.log(`${side.label.padEnd(32)} ${t.frozen.toFixed(1).padStart(6)} s ${t.unfrozen.toFixed(1).padStart(8)} s   ${vs}`);
  }
  console.log(`ratio ${ratio('visiontune').toFixed(3)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
