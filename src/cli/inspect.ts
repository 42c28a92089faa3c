// `visiontune lr-find <data>` and `visiontune interpret <model> <data>`.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { newRunDir, hasContent } from '../run/folder.js';
import { UsageError } from './errors.js';
import { writeLrFind } from '../run/pictures.js';
import { writeRunOutputs, type RunResults } from '../run/report.js';
import { manualSeed, setNumThreads } from '../torch/index.js';
import { DataLoaders } from '../data/dataloaders.js';
import { makeOutputDir, assertOutputDir } from '../data/folders.js';
import { DataError } from '../data/errors.js';
import { lrFind, type LrFindResult } from '../learner/lr-find.js';
import { loadModel } from '../learner/export.js';
import { Learner } from '../learner/learner.js';
import { modelFileOf } from './predict.js';
import { Interpretation } from '../interpret/interpret.js';
import { prepare } from './prepare.js';
import { printInterpretation } from './report.js';
import { DEFAULT_VALID_PCT, DEFAULT_SEED } from '../data/defaults.js';
import type { TrainArgs } from './train.js';
import { cliDevice, cliPrecision } from './device.js';
import { DEFAULT_DEVICE } from '../learner/defaults.js';

export type LrFindArgs = Pick<TrainArgs, 'data' | 'arch' | 'weights' | 'size' | 'itemSize' | 'bs' | 'validPct' | 'seed' | 'threads' | 'out' | 'device' | 'precision'>;

/** Runs lr_find (in --precision, as `train --lr auto` does); prints the suggestions; writes lr_find.csv and lr_find.png into `out` (default a new runs/lr_find, runs/lr_find2…). */
export async function lrFindCommand(a: LrFindArgs, out: (s: string) => void,
  onDownload?: (bytes: number, total: number | null) => void): Promise<LrFindResult> {
  if (a.out !== undefined) {
    await assertOutputDir(a.out, a.data);
    if (hasContent(a.out)) throw new UsageError(`--out ${a.out} already holds files: give a new or empty folder for the pictures and the report`);
  }
  // In the precision train would run in: `train --lr auto` runs this same sweep.
  const device = cliDevice(a.device ?? DEFAULT_DEVICE, out);
  const { learn } = await prepare({ ...a, precision: cliPrecision(a.precision, device, out), device }, out, [], onDownload);
  const r = await lrFind(learn);
  const dir = a.out ?? await newRunDir('lr_find');
  await makeOutputDir(dir);
  const { csv, png } = await writeLrFind(r, dir);
  for (const [name, lr] of Object.entries(r.suggestions)) out(`${name.padEnd(8)} ${lr.toExponential(2)}`);
  out(`(valley is the default choice) curve in ${csv}, plot in ${png}`);
  return r;
}

export interface InterpretArgs {
  model: string;
  data: string;
  /** Default: the split the model file records, else the training defaults. */
  validPct?: number;
  seed?: number;
  bs: number;
  threads?: number;
  /** Where the pictures and the report go; default a new runs/interpret, runs/interpret2… */
  out?: string;
  json?: string;
}

/**
 * Evaluates an exported model on the data's validation split (the split training used, same seed)
 * and interprets it; the images are made as the model's own validation images were (its size,
 * presizing and normalisation come from the file).
 */
export async function interpretCommand(a: InterpretArgs, out: (s: string) => void): Promise<Record<string, unknown>> {
  if (a.threads !== undefined) setNumThreads(a.threads);
  const exported = loadModel(modelFileOf(a.model));
  const { size, normalization } = exported.meta;
  // The images training held out, unless asked otherwise: another split would score images the model trained on.
  const trained = exported.meta.split;
  const validPct = a.validPct ?? trained?.validPct ?? DEFAULT_VALID_PCT;
  const seed = a.seed ?? trained?.seed ?? DEFAULT_SEED;
  if (trained && (validPct !== trained.validPct || seed !== trained.seed)) {
    out(`warning: the model was trained with --valid-pct ${trained.validPct} --seed ${trained.seed}; this split (--valid-pct ${validPct} ` +
      `--seed ${seed}) may hold out images it trained on, which flatters its accuracy`);
  }
  manualSeed(seed);
  // A file without presizing predates it: its predictions resize the shorter side to the size, as presizing to the size does.
  const presizing = { itemSize: exported.meta.itemSize ?? size, method: exported.meta.resizeMethod ?? 'crop' };
  const dls = await DataLoaders.fromFolder(a.data, { validPct, seed, ...presizing, size, bs: a.bs, stats: normalization, log: out });
  if (dls.valid.length === 0) {
    throw new DataError('no validation images to interpret', a.data, trained?.validPct === 0
      ? 'The model trained on every image (--valid-pct 0), so none is held out; interpret a folder of other labelled images'
      : 'Give --valid-pct > 0 (the share training held out) or a folder with a valid/ split');
  }
  const unknown = dls.vocab.filter((c) => !exported.classes.includes(c));
  if (unknown.length) throw new Error(`the data has classes the model does not know: ${unknown.join(', ')} (the model knows ${exported.classes.join(', ')})`);
  if (dls.vocab.join('\n') !== exported.classes.join('\n')) {
    throw new Error(`the data's classes (${dls.vocab.join(', ')}) differ from the model's (${exported.classes.join(', ')})`);
  }
  const learn = new Learner(dls, exported.model, { log: null });
  const interp = await Interpretation.fromLearner(learn);
  out(`${exported.meta.architecture} on ${interp.actual.length} validation images: accuracy ${(100 * interp.accuracy).toFixed(2)}%`);
  const results = { model: a.model, accuracy: interp.accuracy, ...printInterpretation(interp, out), skipped: dls.skipped };
  if (a.json) writeFileSync(a.json, `${JSON.stringify(results, null, 2)}\n`);
  // The pictures and the report of a run, for this model on these images.
  if (a.out !== undefined) {
    await assertOutputDir(a.out, a.data);
    if (hasContent(a.out)) throw new UsageError(`--out ${a.out} already holds files: give a new or empty folder for the pictures and the report`);
  }
  const dir = a.out ?? await newRunDir('interpret');
  await makeOutputDir(dir);
  const run: RunResults = {
    ...results, arch: exported.meta.architecture, weights: a.model, classes: [...dls.vocab], baseLr: null, batchSize: a.bs, epochs: [], data: dls.summary,
    final: { error_rate: 1 - interp.accuracy, accuracy: interp.accuracy },
    validation: interp.items(),
  };
  await writeRunOutputs(run, dir, null, `visiontune interpret: ${path.basename(a.model)} on ${path.basename(path.resolve(a.data))}`);
  out(`Pictures and report.html in ${dir}`);
  return results;
}
