// The run folder: where one `train` keeps everything it produced — settings, per-epoch results,
// best and last models, the checkpoint, the pictures and the report. A new numbered folder each
// run (runs/train, runs/train2, …), as Ultralytics does, so that no run overwrites another.
import { promises as fs, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { OUTPUT_MARKER, makeOutputDir } from '../data/folders.js';
import { DEFAULT_RUNS_DIR } from '../data/defaults.js';

/** The files of a run folder, by what they hold. */
export const RUN_FILES = {
  settings: 'settings.json',
  results: 'results.csv',
  best: 'best.safetensors',
  last: 'last.safetensors',
  checkpoint: 'checkpoint.safetensors',
  report: 'report.html',
  curves: 'curves.png',
  lrFind: 'lr_find.png',
  lrFindCsv: 'lr_find.csv',
  confusion: 'confusion_matrix.png',
  confusionNormalized: 'confusion_matrix_normalized.png',
  perClass: 'per_class.png',
  topLosses: 'top_losses.jpg',
  trainBatch: 'train_batch.jpg',
  resultsJson: 'results.json',
} as const;

/**
 * Makes and returns a new run folder `<parent>/<name>`, or `<name>2`, `<name>3`… — the first that
 * does not exist, claimed with an exclusive mkdir so that two runs started together never share
 * one. The parent gets visiontune's marker too, so a `runs/` inside the data is never read as a class.
 */
export async function newRunDir(name: string, parent = DEFAULT_RUNS_DIR): Promise<string> {
  await makeOutputDir(parent);
  for (let k = 1; ; k++) {
    const dir = path.join(parent, k === 1 ? name : `${name}${k}`);
    try {
      await fs.mkdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw e;
    }
    await makeOutputDir(dir);
    return dir;
  }
}

/** Returns whether `dir` holds anything besides visiontune's marker (a missing folder is empty). */
export function hasContent(dir: string): boolean {
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some((n) => n !== OUTPUT_MARKER);
}
