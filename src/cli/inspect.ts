// `visiontune lr-find <data>` and `visiontune interpret <model> <data>`.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { manualSeed, setNumThreads } from '../torch/index.js';
import { DataLoaders } from '../data/dataloaders.js';
import { makeOutputDir, assertOutputDir } from '../data/folders.js';
import { DataError } from '../data/errors.js';
import { lrFind, lrFindCsv, type LrFindResult } from '../learner/lr-find.js';
import { loadModel } from '../learner/export.js';
import { Learner } from '../learner/learner.js';
import { modelFileOf } from './predict.js';
import { Interpretation } from '../interpret/interpret.js';
import { prepare } from './prepare.js';
import { printInterpretation } from './report.js';
import { DEFAULT_VALID_PCT, DEFAULT_SEED } from '../data/defaults.js';
import type { TrainArgs } from './train.js';

/** An SVG line chart of loss against learning rate (log axis) with the suggestions marked. */
export function lrFindSvg(r: LrFindResult, width = 640, height = 400): string {
  const pad = 50;
  const xs = r.lrs.map(Math.log10);
  const finite = r.losses.filter(Number.isFinite);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...finite), Math.min(Math.max(...finite), Math.min(...finite) * 4)];
  const px = (x: number): number => pad + ((x - x0) / Math.max(1e-12, x1 - x0)) * (width - 2 * pad);
  const py = (y: number): number => height - pad - ((Math.min(y, y1) - y0) / Math.max(1e-12, y1 - y0)) * (height - 2 * pad);
  const points = xs.map((x, i) => `${px(x).toFixed(1)},${py(r.losses[i]).toFixed(1)}`).join(' ');
  const colours: Record<string, string> = { valley: '#d62728', minimum: '#2ca02c', steep: '#ff7f0e', slide: '#9467bd' };
  const marks = Object.entries(r.suggestions).map(([name, lr], i) => {
    const x = px(Math.log10(lr));
    return `<line x1="${x}" y1="${pad}" x2="${x}" y2="${height - pad}" stroke="${colours[name]}" stroke-dasharray="4"/>` +
      `<text x="${width - pad - 150}" y="${pad + 16 * i}" fill="${colours[name]}" font-size="13">${name} ${lr.toExponential(2)}</text>`;
  }).join('');
  const ticks = Array.from({ length: Math.floor(x1) - Math.ceil(x0) + 1 }, (_, i) => Math.ceil(x0) + i)
    .map((e) => `<text x="${px(e)}" y="${height - pad + 18}" font-size="12" text-anchor="middle">1e${e}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>` +
    `<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${points}"/>${marks}${ticks}` +
    `<text x="${width / 2}" y="${height - 8}" font-size="13" text-anchor="middle">learning rate (log scale)</text>` +
    `<text x="14" y="${height / 2}" font-size="13" transform="rotate(-90 14 ${height / 2})" text-anchor="middle">smoothed loss</text></svg>`;
}

export type LrFindArgs = Pick<TrainArgs, 'data' | 'arch' | 'weights' | 'size' | 'itemSize' | 'bs' | 'validPct' | 'seed' | 'threads' | 'out'>;

/** Runs lr_find; prints the suggestions; writes lr_find.csv and lr_find.png into `out`. */
export async function lrFindCommand(a: LrFindArgs, out: (s: string) => void,
  onDownload?: (bytes: number, total: number | null) => void): Promise<LrFindResult> {
  await assertOutputDir(a.out, a.data);
  const { learn } = await prepare({ ...a, precision: 'fp32' }, out, [], onDownload);
  const r = await lrFind(learn);
  await makeOutputDir(a.out);
  writeFileSync(path.join(a.out, 'lr_find.csv'), lrFindCsv(r));
  await sharp(Buffer.from(lrFindSvg(r))).png().toFile(path.join(a.out, 'lr_find.png'));
  for (const [name, lr] of Object.entries(r.suggestions)) out(`${name.padEnd(8)} ${lr.toExponential(2)}`);
  out(`(valley is the default choice) curve in ${path.join(a.out, 'lr_find.csv')}, plot in ${path.join(a.out, 'lr_find.png')}`);
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
  return results;
}
