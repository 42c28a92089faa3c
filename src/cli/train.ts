// `visiontune train <data>`: the whole study from one command — data summary, optional lr_find,
// fineTune with the fastai table, over-training check, interpretation, export, history and JSON.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { zooEntry } from '../models/registry.js';
import { makeOutputDir, assertOutputDir } from '../data/folders.js';
import { lrFind, lrFindCsv, type LrFindResult } from '../learner/lr-find.js';
import { EarlyStopping, KeepBest, overTrainingEpoch } from '../learner/callbacks.js';
import { diagnose, TrainingError } from '../learner/diagnosis.js';
import { ProgressBar } from '../learner/progress.js';
import type { Callback } from '../learner/events.js';
import { rowsCsv, formatTime } from '../learner/recorder.js';
import type { Balance } from '../data/balance.js';
import { tidy, type Tensor } from '../torch/index.js';
import { fitTemperature, calibrate, expectedCalibrationError, nllAt, refusedShare } from '../learner/calibration.js';
import type { VisionLearner } from '../learner/vision.js';
import type { ImageLoader } from '../data/loader.js';
import { confidentLearning } from '../health/label-errors.js';
import { Interpretation } from '../interpret/interpret.js';
import { UsageError } from './errors.js';
import { prepare } from './prepare.js';
import { printInterpretation, printLabelSuspects } from './report.js';
import { labelCheck, type LabelSuspectFile } from '../health/label-check.js';

export interface TrainArgs {
  data: string;
  arch: string;
  /** 'imagenet', a file, or 'none'. */
  weights: string;
  epochs: number;
  freezeEpochs: number;
  /** 'auto' (lr_find's valley) or a number. */
  lr: number | 'auto';
  size: number;
  itemSize: number;
  bs: number;
  validPct: number;
  seed: number;
  /** Patience of early stopping (with keep-best); 0 for off. */
  earlyStop: number;
  precision: 'fp32' | 'bf16';
  memoryFormat: 'channels_last' | 'nchw';
  /** Leave out copies inside the training set and validation/test images copied in training. */
  dedupe?: boolean;
  /** Folds of the training images' label check before training (see labelCheck); 0 or absent: off. */
  labelCheck?: number;
  /** How training makes up for unbalanced classes (see Balance). Default none. */
  balance?: Balance;
  threads?: number;
  out: string;
  json?: string;
  /** Write nothing but the table and errors. */
  quiet?: boolean;
}

/** Runs the study; returns the JSON results it writes with --json. */
export async function trainCommand(a: TrainArgs, out: (s: string) => void, onDownload?: (bytes: number, total: number | null) => void):
  Promise<Record<string, unknown>> {
  const started = performance.now();
  const log = a.quiet ? () => undefined : out;
  const stop = a.earlyStop > 0 ? new EarlyStopping({ patience: a.earlyStop }) : null;
  const keep = stop ? new KeepBest() : null;
  const callbacks: Callback[] = [new ProgressBar(), ...(stop && keep ? [stop, keep] : [])];
  await assertOutputDir(a.out, a.data);
  const { dls, learn, duplicates } = await prepare(a, log, callbacks, onDownload);
  const hasValidation = dls.valid.length > 0;
  if (stop && !hasValidation) {
    throw new UsageError('--early-stop watches the validation loss, and there are no validation images: give --valid-pct > 0 or a valid/ folder');
  }
  await makeOutputDir(a.out);
  const entry = zooEntry(a.arch);
  log(`${a.arch}: ${(entry.weights.numParams / 1e6).toFixed(1)}M parameters, ${a.weights === 'none' ? 'random' : a.weights} weights; ` +
    `${dls.train.length} training batch${dls.train.length === 1 ? '' : 'es'} of ${dls.train.bs} at ${a.size} px per epoch`);

  const trainingSuspects = a.labelCheck ? await checkTrainingLabels(learn, a.labelCheck, a.seed, log) : null;

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
    baseLr = a.lr;
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
    duplicates,
    labelCheck: trainingSuspects && { folds: a.labelCheck, outOfFoldAccuracy: trainingSuspects.accuracy },
    labelSuspects: trainingSuspects?.suspects ?? [],
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
    // One pass over the validation set serves the interpretation, the calibration and the label check.
    const preds = await learn.getPreds();
    try {
      const interp = await Interpretation.fromLearner(learn, dls.valid, preds);
      Object.assign(results, printInterpretation(interp, log));
      (results.final as Record<string, unknown>).accuracy = interp.accuracy;
      const checked = calibrateAndCheckLabels(learn, preds, interp.paths ?? [], log);
      Object.assign(results, checked, { labelSuspects: [...(trainingSuspects?.suspects ?? []), ...checked.labelSuspects] });
    } finally {
      for (const t of Object.values(preds)) t.dispose();
    }
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

/**
 * From one pass over the validation set: fits the temperature and records it for the export, and
 * lists the validation images whose labels confident learning doubts; prints both; returns the
 * figures for --json (calibration, labelSuspects).
 */
function calibrateAndCheckLabels(learn: VisionLearner, { probs, targets }: { probs: Tensor; targets: Tensor }, paths: readonly string[],
  log: (s: string) => void): { calibration: Record<string, number>; labelSuspects: LabelSuspectFile[] } {
  const logits = tidy(() => probs.clamp(1e-12, 1).log());
  const temperature = fitTemperature(logits, targets);
  const calibrated = calibrate(probs, temperature);
  const figures = {
    temperature, nllBefore: nllAt(logits, targets, 1), nllAfter: nllAt(logits, targets, temperature),
    eceBefore: expectedCalibrationError(probs, targets), eceAfter: expectedCalibrationError(calibrated, targets),
    refusedAtHalf: refusedShare(calibrated, 0.5),
  };
  for (const t of [logits, calibrated]) t.dispose();
  learn.temperature = temperature;
  log(`\nCalibration: temperature ${temperature.toFixed(3)} (validation NLL ${figures.nllBefore.toFixed(4)} → ${figures.nllAfter.toFixed(4)}, ` +
    `expected calibration error ${figures.eceBefore.toFixed(4)} → ${figures.eceAfter.toFixed(4)}); ` +
    `predict --unknown-below 0.5 would answer unknown for ${(100 * figures.refusedAtHalf).toFixed(1)}% of the validation images`);
  const vocab = learn.dls.vocab;
  const { suspects } = confidentLearning(probs.toArray(), targets.toArray(), vocab.length);
  const labelSuspects: LabelSuspectFile[] = suspects.map((s) => ({
    file: paths[s.index] ?? `#${s.index}`, split: 'valid', given: vocab[s.given], suggested: vocab[s.suggested], confidence: s.confidence,
  }));
  printLabelSuspects(labelSuspects, 'the validation images', log);
  return { calibration: figures, labelSuspects };
}

/**
 * The training images' label check, before training: K-fold out-of-fold predictions of a linear
 * head on the pretrained body's features, read by confident learning; prints the suspects.
 */
async function checkTrainingLabels(learn: VisionLearner, k: number, seed: number, log: (s: string) => void):
  Promise<{ suspects: LabelSuspectFile[]; accuracy: number }> {
  const train = learn.dls.train as ImageLoader;
  log(`Checking the training images' labels (${k}-fold linear head on the body's features)…`);
  const checked = await labelCheck(learn.model.body, train.set, learn.dls.vocab, () => 'train',
    { k, seed, size: train.size, stats: train.evalTransform.stats, bs: train.bs });
  log(`  out-of-fold accuracy of the linear head: ${(100 * checked.accuracy).toFixed(1)}%${learn.pretrained ? '' : ' (random weights: the check means little)'}`);
  printLabelSuspects(checked.suspects, 'the training images', log);
  return checked;
}
