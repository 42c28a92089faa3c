// The run folder: where one `train` keeps everything it produced — settings, per-epoch results,
// best and last models, the checkpoint, the pictures and the report. A new numbered folder each
// run (runs/train, runs/train2, …), as Ultralytics does, so that no run overwrites another.
import { promises as fs, existsSync, readdirSync, openSync, writeSync, closeSync, readFileSync, unlinkSync } from 'node:fs';
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

/** The file a training run holds in its folder while it runs (its process id inside). */
export const LOCK_FILE = '.visiontune.lock';

/**
 * Claims an existing run folder for one training process: creates LOCK_FILE exclusively, or takes
 * over one whose process is gone. Returns the release function (run too if the process exits
 * first). Throws an Error naming the other process when a live one holds the folder.
 */
export function lockRunDir(dir: string): () => void {
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      // Released on return, and by a process.exit on the way (a second Ctrl-C, a stop before the fit).
      const release = (): void => {
        process.off('exit', release);
        try { unlinkSync(file); } catch { /* already gone */ }
      };
      process.once('exit', release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new Error(`another visiontune (process ${pid}) is training in ${dir}: wait for it, or stop it first`);
      }
      unlinkSync(file); // left by a process that died: take it over
    }
  }
  throw new Error(`cannot claim ${dir}: ${LOCK_FILE} keeps coming back`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
