// `visiontune train <data>`: the whole study from one command — data summary, optional lr_find,
// fineTune with the fastai table, over-training check, interpretation, export, history and JSON.
import { writeFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { manualSeed, setNumThreads } from '../torch/index.js';
import { zooEntry } from '../models/registry.js';
import { DataLoaders } from '../data/dataloaders.js';
import { makeOutputDir, assertOutputDir, DEFAULT_OUT_DIR } from '../data/folders.js';
import { visionLearner, type VisionLearner } from '../learner/vision.js';
import { lrFind, lrFindCsv, type LrFindResult } from '../learner/lr-find.js';
import { EarlyStopping, KeepBest, overTrainingEpoch } from '../learner/callbacks.js';
import { diagnose, TrainingError } from '../learner/diagnosis.js';
import { ProgressBar } from '../learner/progress.js';
import { formatTime, type Callback, type Learner } from '../learner/learner.js';
import { rowsCsv } from '../learner/recorder.js';
import { Interpretation } from '../interpret/interpret.js';
import { UsageError } from './errors.js';

export interface TrainArgs {
  data: string;
  arch: string;
  /** 'imagenet', a file, or 'none'. */
  weights: string;
  epochs: number;
  freezeEpochs: number;
  /** 'auto' (lr_find's valley) or a number. */
  lr: string;
  size: number;
  itemSize: number;
  bs: number;
  validPct: number;
  seed: number;
  /** Patience of early stopping (with keep-best); 0 for off. */
  earlyStop: number;
  precision: 'fp32' | 'bf16';
  memoryFormat: 'channels_last' | 'nchw';
  threads?: number;
  out: string;
  json?: string;
  /** Write nothing but the table and errors. */
  quiet?: boolean;
}

export const TRAIN_DEFAULTS = {
  arch: 'efficientnet_v2_s', weights: 'imagenet', epochs: 4, freezeEpochs: 1, lr: '2e-3', size: 224, itemSize: 460,
  bs: 32, validPct: 0.2, seed: 42, earlyStop: 0, precision: 'fp32', memoryFormat: 'channels_last',
  out: DEFAULT_OUT_DIR,
} as const;

/** Returns the number in `value`, or throws a UsageError naming the flag. */
export function numberFlag(flag: string, value: string | undefined, o: { integer?: boolean; min?: number; max?: number } = {}): number {
  const n = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(n) || (o.integer && !Number.isInteger(n)) ||
    (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
    const range = [o.min !== undefined ? `≥ ${o.min}` : '', o.max !== undefined ? `≤ ${o.max}` : ''].filter(Boolean).join(' and ');
    throw new UsageError(`${flag} expects ${o.integer ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}, got '${value}'`);
  }
  return n;
}

/** Throws a UsageError unless `file` can be written: its folder exists and it is not a folder itself. */
export function assertFileTarget(flag: string, file: string): void {
  const stat = (p: string) => { try { return statSync(p); } catch { return null; } };
  if (stat(file)?.isDirectory()) throw new UsageError(`${flag} ${file} is a folder; give a file name`);
  const dir = path.dirname(path.resolve(file));
  if (!stat(dir)?.isDirectory()) throw new UsageError(`${flag} ${file}: the folder ${dir} does not exist`);
}

/** Loads the data and makes the learner, as train and lr-find share them. */
export async function prepare(a: Pick<TrainArgs, 'data' | 'arch' | 'weights' | 'size' | 'itemSize' | 'bs' | 'validPct' | 'seed' | 'precision' | 'threads'> & Partial<Pick<TrainArgs, 'memoryFormat'>>,
  log: (s: string) => void, callbacks: Callback[] = [], onDownload?: (bytes: number, total: number | null) => void):
  Promise<{ dls: DataLoaders; learn: VisionLearner }> {
  const entry = zooEntry(a.arch); // an unknown architecture fails before any data is read
  if (a.threads !== undefined) setNumThreads(a.threads);
  manualSeed(a.seed);
  const stats = { mean: entry.weights.transforms.mean, std: entry.weights.transforms.std };
  const dls = await DataLoaders.fromFolder(a.data, {
    validPct: a.validPct, seed: a.seed, itemSize: a.itemSize, size: a.size, bs: a.bs, stats, log,
  });
  const weights = a.weights === 'none' ? null : a.weights;
  if (weights === null) log('Starting from random weights (--weights none).');
  const learn = await visionLearner(dls, a.arch, {
    weights, size: a.size, normalization: stats, bf16: a.precision === 'bf16',
    channelsLast: (a.memoryFormat ?? TRAIN_DEFAULTS.memoryFormat) === 'channels_last', callbacks, log, download: { onProgress: onDownload },
  });
  return { dls, learn };
}

/**
 * Returns the interpretation of the learner's predictions on the validation set (with file
 * paths when they line up with the predictions) and the training images per class.
 */
export async function interpretValid(learn: Learner, dls: DataLoaders): Promise<{ interp: Interpretation; trainCounts: number[] }> {
  const preds = await learn.getPreds();
  // The valid loader yields its items in order, minus the files skipped.
  const skipped = new Set(dls.skipped.map((s) => s.path));
  const paths = dls.valid.items.map((it) => it.path).filter((p) => !skipped.has(p));
  const interp = new Interpretation(dls.vocab, preds, paths.length === preds.targets.size(0) ? paths : undefined);
  for (const t of Object.values(preds)) t.dispose();
  const trainCounts = dls.vocab.map((_, c) => dls.train.items.filter((it) => it.label === c).length);
  return { interp, trainCounts };
}

/** Prints the interpretation tables; returns them for JSON. */
export function printInterpretation(interp: Interpretation, trainCounts: number[], log: (s: string) => void) {
  const vocab = interp.vocab;
  const w = Math.max(8, ...vocab.map((v) => v.length)) + 2;
  log('\nConfusion matrix (rows: actual, columns: predicted)');
  log(' '.repeat(w) + vocab.map((v) => v.slice(0, 10).padStart(11)).join(''));
  interp.confusion.forEach((row, a) => log(vocab[a].padEnd(w) + row.map((c) => String(c).padStart(11)).join('')));
  const confused = interp.mostConfused();
  log('\nMost confused (actual → predicted, count)');
  if (confused.length === 0) log('  none');
  for (const [a, p, c] of confused.slice(0, 10)) log(`  ${a} → ${p}: ${c}`);
  const top = interp.topLosses(9);
  log('\nTop losses (predicted/actual, loss, probability of the prediction, file)');
  for (const t of top) log(`  ${t.predicted}/${t.actual}  ${t.loss.toFixed(2)}  ${t.probability.toFixed(2)}  ${t.path ?? `#${t.index}`}`);
  const perClass = interp.perClass(trainCounts);
  log('\nPer class, worst first');
  log(`  ${'class'.padEnd(w)}precision  recall  f1      support  train`);
  const cell = (x: number | null, width: number): string => (x === null ? '—' : x.toFixed(3)).padEnd(width);
  for (const r of perClass) {
    log(`  ${r.label.padEnd(w)}${cell(r.precision, 11)}${cell(r.recall, 8)}${cell(r.f1, 8)}` +
      `${String(r.support).padEnd(9)}${r.trainCount ?? ''}`);
    if (r.f1 === null) log('      not measured: no validation image of this class');
    for (const a of r.advice) log(`      advice: ${a}`);
  }
  const meanF1 = interp.meanF1();
  const unmeasured = perClass.filter((r) => r.f1 === null).length;
  if (meanF1 !== null) log(`  mean F1 ${meanF1.toFixed(3)}${unmeasured ? ` over the ${perClass.length - unmeasured} classes measured` : ''}`);
  return {
    confusion: { classes: vocab, matrix: interp.confusion },
    mostConfused: confused.map(([actual, predicted, count]) => ({ actual, predicted, count })), topLosses: top, perClass, meanF1,
  };
}

/** Runs the study; returns the JSON results it writes with --json. */
export async function trainCommand(a: TrainArgs, out: (s: string) => void, onDownload?: (bytes: number, total: number | null) => void):
  Promise<Record<string, unknown>> {
  const started = performance.now();
  const log = a.quiet ? () => undefined : out;
  const stop = a.earlyStop > 0 ? new EarlyStopping({ patience: a.earlyStop }) : null;
  const keep = stop ? new KeepBest() : null;
  const callbacks: Callback[] = [new ProgressBar(), ...(stop && keep ? [stop, keep] : [])];
  const lr = a.lr === 'auto' ? null : numberFlag('--lr', a.lr, { min: 1e-12 });
  if (a.json) assertFileTarget('--json', a.json);
  await assertOutputDir(a.out, a.data);
  const { dls, learn } = await prepare(a, log, callbacks, onDownload);
  const hasValidation = dls.valid.length > 0;
  if (stop && !hasValidation) {
    throw new UsageError('--early-stop watches the validation loss, and there are no validation images: give --valid-pct > 0 or a valid/ folder');
  }
  await makeOutputDir(a.out);
  const entry = zooEntry(a.arch);
  log(`${a.arch}: ${(entry.weights.numParams / 1e6).toFixed(1)}M parameters, ${a.weights === 'none' ? 'random' : a.weights} weights; ` +
    `${dls.train.length} training batch${dls.train.length === 1 ? '' : 'es'} of ${dls.train.bs} at ${a.size} px per epoch`);

  let found: LrFindResult | null = null;
  let baseLr: number;
  if (a.lr === 'auto') {
    log('Finding a learning rate (lr_find)…');
    found = await lrFind(learn);
    const s = found.suggestions;
    log(`lr_find: valley ${s.valley.toExponential(2)}, minimum ${s.minimum.toExponential(2)}, steep ${s.steep.toExponential(2)}, ` +
      `slide ${s.slide.toExponential(2)}; using the valley`);
    baseLr = s.valley;
    writeFileSync(path.join(a.out, 'lr_find.csv'), lrFindCsv(found));
  } else {
    baseLr = lr!;
  }

  const rows = await learn.fineTune(a.epochs, { baseLr, freezeEpochs: a.freezeEpochs });
  if (stop?.message) log(stop.message);
  const diagnosis = diagnose(rows, learn.divergence, { baseLr, hasValidation });
  log(diagnosis);
  // With keep-best, the model is the best epoch's, and so are the final numbers.
  const kept = keep && keep.bestEpoch >= 0 ? rows.find((r) => r.epoch === keep.bestEpoch) : undefined;
  if (kept && kept !== rows[rows.length - 1]) log(`Kept the weights of epoch ${kept.epoch}, the best valid loss (${kept.valid_loss.toFixed(6)}).`);
  const last = kept ?? rows[rows.length - 1];
  const results: Record<string, unknown> = {
    arch: a.arch, weights: a.weights, classes: dls.vocab, baseLr, batchSize: dls.train.bs,
    lrFind: found && { suggestions: found.suggestions },
    epochs: rows.map((r) => ({ ...r, time: formatTime(r.time), seconds: r.time })),
    final: { epoch: last?.epoch, valid_loss: last?.valid_loss, error_rate: last?.error_rate },
    divergence: learn.divergence,
    overTraining: { epoch: hasValidation && !learn.divergence ? overTrainingEpoch(rows) : null, summary: diagnosis },
    earlyStopping: stop?.message ?? null,
    data: dls.summary,
    skipped: dls.skipped,
    timings: { totalSeconds: (performance.now() - started) / 1000, epochSeconds: rows.map((r) => r.time) },
    model: null,
  };
  const writeJson = (): void => { if (a.json) writeFileSync(a.json, `${JSON.stringify(results, null, 2)}\n`); };
  if (learn.divergence) {
    // The weights are NaN or far off: nothing joins the output folder (a model or history there
    // stays a matching pair from an earlier run), and the run fails with the diagnosis.
    writeJson();
    learn.opt?.dispose();
    throw new TrainingError(`training diverged (${learn.divergence.reason}); no model written: lower the learning rate (--lr ${baseLr.toExponential(1)} ` +
      'is too high; run visiontune lr-find, or use --lr auto)');
  }

  if (hasValidation) {
    const { interp, trainCounts } = await interpretValid(learn, dls);
    Object.assign(results, printInterpretation(interp, trainCounts, log));
    (results.final as Record<string, unknown>).accuracy = interp.accuracy;
  } else {
    log('\nNo validation images, so no interpretation: every image was used for training.');
  }
  if (dls.test) {
    const test = await learn.validate(dls.test);
    const n = dls.test.items.length;
    log(`\nTest set (${n} held-out images): loss ${test.loss.toFixed(6)}, ` +
      Object.entries(test.metrics).map(([k, v]) => `${k} ${v.toFixed(6)}`).join(', '));
    results.test = { images: n, loss: test.loss, ...test.metrics };
  }

  const modelFile = path.join(a.out, 'model.safetensors');
  const historyFile = path.join(a.out, 'history.csv');
  learn.export(modelFile);
  writeFileSync(historyFile, rowsCsv(rows, learn.columns));
  results.model = modelFile;
  log(`\nExported ${modelFile}; history in ${historyFile}`);
  writeJson();
  learn.opt?.dispose();
  return results;
}
