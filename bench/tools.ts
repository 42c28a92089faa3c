// What the fine-tune and study benchmarks share: running a command to its end, and the seeded
// random torchvision weights both sides of a comparison start from.
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeSyntheticFolder } from '../src/data/synthetic-files.js';
import { splitByValidPct } from '../src/data/sources.js';

/** The Python that writes reference weights and runs the PyTorch side ($VISIONTUNE_PYTHON, else Debian's). */
export const PYTHON = process.env.VISIONTUNE_PYTHON ?? '/usr/bin/python3';

/** Runs `cmd args` offline and returns its stdout; throws naming the command and its last stderr line when it fails. */
export function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, VISIONTUNE_OFFLINE: '1' } });
  if (r.error || r.status !== 0) throw new Error(`${path.basename(cmd)} ${args[0]} failed: ${r.error?.message ?? r.stderr.trim().split('\n').pop()}`);
  return r.stdout;
}

/** Writes torchvision's `arch` with seed-0 random weights to `file` (a state dict, .pth). */
export function writeSeededWeights(arch: string, file: string): void {
  run(PYTHON, ['-c', `import torch, torchvision; torch.manual_seed(0); torch.save(torchvision.models.${arch}().state_dict(), ${JSON.stringify(file)})`]);
}

/**
 * Writes what a fine-tuning comparison trains on into `dir`: `images` generated photos (200–400
 * px, seed 1) in `classes` classes, split once into data/train/<class>/ and data/valid/<class>/
 * (visiontune's stratified 20% split, seed 0), so every side trains and is judged on the same
 * images; and `arch`'s seeded random weights.
 */
export async function writeStudyInputs(dir: string, arch: string, images: number, classes: number): Promise<{ data: string; weights: string }> {
  const all = path.join(dir, 'generated');
  const files = await writeSyntheticFolder(all, { perClass: Math.ceil(images / classes), numClasses: classes, minSide: 200, maxSide: 400, seed: 1 });
  const data = path.join(dir, 'data');
  const split = splitByValidPct(files.map((file) => ({ path: file, label: path.basename(path.dirname(file)) })), 0.2, 0);
  for (const [name, items] of [['train', split.train], ['valid', split.valid]] as const) {
    for (const it of items) {
      mkdirSync(path.join(data, name, it.label), { recursive: true });
      renameSync(it.path, path.join(data, name, it.label, path.basename(it.path)));
    }
  }
  rmSync(all, { recursive: true, force: true });
  const weights = path.join(dir, `${arch}.pth`);
  writeSeededWeights(arch, weights);
  return { data, weights };
}
