// `visiontune train <data>`: the whole study from one command, into a run folder — data summary,
// optional label check and lr_find, fineTune with the fastai table, over-training check,
// interpretation, calibration; settings.json, results.csv/json, best/last models, a checkpoint at
// every epoch (and every --save-every batches), the pictures and report.html. Ctrl-C (SIGINT) or
// SIGTERM ends the current batch, saves, and exits 130/143 (before the fit it stops at once; see
// runTraining); `--resume RUN_DIR` goes on from the
// checkpoint, `--resume RUN_DIR --epochs +N` trains a finished run N epochs more.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { zooEntry } from '../models/registry.js';
import { assertOutputDir, makeOutputDir } from '../data/folders.js';
import { lrFind, type LrFindResult } from '../learner/lr-find.js';
import { EarlyStopping, KeepBest, overTrainingEpoch } from '../learner/callbacks.js';
import { diagnose, TrainingError } from '../learner/diagnosis.js';
import { ProgressBar } from '../learner/progress.js';
import type { Callback } from '../learner/events.js';
import { formatTime } from '../learner/recorder.js';
import { fineTunePlan } from '../learner/schedule.js';
import { ProgressiveResize } from '../learner/progressive.js';
import type { PrecisionChoice } from '../learner/precision.js';
import { SaveCheckpoint, readCheckpoint, resumeFrom, saveCheckpoint, type CheckpointPosition } from '../learner/checkpoint.js';
import type { Balance } from '../data/balance.js';
import { tidy, tensor, getNumThreads, libtorchVersion, type Tensor } from '../torch/index.js';
import { fitTemperature, calibrate, expectedCalibrationError, nllAt, refusedShare } from '../learner/calibration.js';
import type { VisionLearner } from '../learner/vision.js';
import type { ImageLoader } from '../data/loader.js';
import { showBatch } from '../data/show.js';
import { confidentLearning } from '../health/label-errors.js';
import type { DuplicateGroup } from '../health/duplicates.js';
import type { DatasetSummary } from '../data/summary.js';
import { DataError } from '../data/errors.js';
import { Interpretation } from '../interpret/interpret.js';
import { writeAtomic } from '../io/atomic.js';
import { RUN_FILES, newRunDir, hasContent, lockRunDir } from '../run/folder.js';
import { EpochExtras, resultsCsv } from '../run/results.js';
import { diagnosisSentences, writeRunOutputs, type RunResults } from '../run/report.js';
import { writeLrFind } from '../run/pictures.js';
import { VERSION } from '../version.js';
import { UsageError, InterruptedError, batchSplitError, report } from './errors.js';
import { cliDevice, cliPrecision } from './device.js';
import { DEFAULT_DEVICE } from '../learner/defaults.js';
import { prepare } from './prepare.js';
import { printInterpretation, printLabelSuspects } from './report.js';
import { labelCheck, type LabelSuspectFile } from '../health/label-check.js';
import { initProcessGroup, distEnv, DistributedDataParallel, DistributedSampler, watchLauncher, convertSyncBatchNorm, revertSyncBatchNorm,
  type ProcessGroup } from '../distributed/index.js';
import { CancelFitException, type BatchInfo } from '../learner/events.js';
import type { Learner } from '../learner/learner.js';

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
  /** fp32, bf16 autocast, or auto (bf16 where the CPU has bf16 instructions; see choosePrecision). */
  precision: PrecisionChoice;
  /** cpu, cuda, cuda:N or auto (see resolveDevice); absent: auto. */
  device?: string;
  memoryFormat: 'channels_last' | 'nchw';
  /** Leave out copies inside the training set and validation/test images copied in training. */
  dedupe?: boolean;
  /** How training makes up for unbalanced classes (see Balance). Default none. */
  balance?: Balance;
  /** Folds of the training images' label check before training (see labelCheck); 0 or absent: off. */
  labelCheck?: number;
  threads?: number;
  /** The run folder; absent: a new one, runs/train, runs/train2, … */
  out?: string;
  /** Write into a given --out that already holds files. */
  existOk?: boolean;
  /** Also checkpoint every this many training batches (0 or absent: at each epoch's end only). */
  saveEvery?: number;
  json?: string;
  /** Write nothing but the table and errors. */
  quiet?: boolean;
  /** Processes per machine and machines (train --nproc/--nnodes; the launcher starts them, see src/distributed/launch.ts). */
  nproc?: number;
  nnodes?: number;
  /** Seconds a collective may wait for the other ranks. */
  distTimeout?: number;
  /** Batch-norm statistics over all ranks' batches (SyncBatchNorm). */
  syncBn?: boolean;
  /** Freeze the body's batch norm too while frozen (fineTune's freezeBn). */
  frozenBn?: boolean;
  /** Progressive resizing from MIN to MAX px (MAX is `size`); see ProgressiveResize. */
  progressive?: [number, number];
}

/** `--resume RUN_DIR [--epochs +N]`: what may change when a run goes on; the rest comes from its settings.json. */
export interface ResumeArgs {
  resume: string;
  /** Seconds a collective may wait for the other ranks (resumed with --nproc). */
  distTimeout?: number;
  /** Epochs to add to a finished run (--epochs +N); absent: finish an interrupted one. */
  more?: number;
  threads?: number;
  /** Another device than the run's own (a run started on a GPU may go on on the CPU, and the other way). */
  device?: string;
  saveEvery?: number;
  json?: string;
  quiet?: boolean;
}

/** settings.json: every option after defaults, the plan as it stands, the data, the versions and the machine. */
export interface RunSettings {
  command: 'train';
  visiontuneVersion: string;
  libtorchVersion: string;
  created: string;
  args: Omit<TrainArgs, 'json' | 'quiet' | 'existOk' | 'saveEvery'> & { out: string };
  /**
   * The learning rate used (lr_find's valley with --lr auto), the epochs added by --resume … --epochs +N, and with
   * --frozen-bn whether it freezes the body's batch norm (false where that has no statistics to freeze), as the first run decided.
   */
  plan: { baseLr: number | null; extend: number[]; frozenBn?: boolean };
  machine: { threads: number; cpus: number; cpu: string; platform: string; precision: string; device?: string };
  data?: unknown;
}

type Log = (s: string) => void;
type Signals = Pick<NodeJS.Process, 'on' | 'off'>;

/** Runs the study in a new run folder; returns the results it writes to results.json (and --json). */
export async function trainCommand(args: TrainArgs, out: Log, onDownload?: (bytes: number, total: number | null) => void, signals: Signals = process):
  Promise<RunResults> {
  let a = args;
  if (a.epochs === 0 && a.freezeEpochs === 0) throw new UsageError('--epochs 0 with --freeze-epochs 0 trains nothing: give at least one epoch');
  // Only rank 0 writes the run folder (another machine's ranks may not even see it).
  if ((distEnv()?.rank ?? 0) === 0) await checkTrainOut(a.out, Boolean(a.existOk), a.data);
  // Paths as absolute: a run resumed from another folder finds its data.
  a = { ...a, data: path.resolve(a.data), ...(a.out !== undefined ? { out: path.resolve(a.out) } : {}) };
  const settings: RunSettings = {
    command: 'train', visiontuneVersion: VERSION, libtorchVersion: libtorchVersion().torch, created: new Date().toISOString(),
    args: { ...withoutRunFlags(a), out: a.out ?? '' }, plan: { baseLr: typeof a.lr === 'number' ? a.lr : null, extend: [] },
    machine: { threads: 0, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', platform: `${os.platform()} ${os.arch()}`, precision: a.precision },
  };
  // A rank of train --nproc joins its group first: the rendezvous waits for every rank.
  const dist = joinGroup(a.distTimeout);
  let unlock = (!dist || dist.rank === 0) && a.out !== undefined && existsSync(a.out) ? lockRunDir(a.out) : null;
  // A run folder made by this run is claimed as soon as it exists.
  const claim = (dir: string): void => { unlock ??= lockRunDir(dir); };
  try {
    return await runTraining(settings, a.out ?? null, null, a, out, onDownload, signals, dist, claim);
  } finally {
    unlock?.();
    dist?.destroy();
  }
}

/** Throws a UsageError when --out cannot take a new run: a folder of the data, one not writable, or one holding files without --exist-ok. */
export async function checkTrainOut(out: string | undefined, existOk: boolean, data: string): Promise<void> {
  if (out === undefined) return;
  await assertOutputDir(out, data);
  if (hasContent(out) && !existOk) {
    const isRun = existsSync(path.join(out, RUN_FILES.settings));
    throw new UsageError(`--out ${out} already holds files: give --exist-ok to write into it${isRun ? `, --resume ${out} to continue the run there` : ''}, or another --out`);
  }
}

/** In a rank started by train --nproc (or torchrun's variables with WORLD_SIZE > 1): the joined process group; else null. */
function joinGroup(timeoutS: number | undefined): ProcessGroup | null {
  const env = distEnv();
  if (!env || env.worldSize <= 1) return null;
  return initProcessGroup({ timeoutS });
}

/** Goes on with the run in `a.resume` from its checkpoint: an interrupted run to its end, or a finished one `more` epochs further. */
export async function resumeCommand(a: ResumeArgs, out: Log, signals: Signals = process): Promise<RunResults> {
  const dir = a.resume;
  const settingsFile = path.join(dir, RUN_FILES.settings);
  const ckptFile = path.join(dir, RUN_FILES.checkpoint);
  if (!existsSync(settingsFile)) throw new UsageError(`--resume ${dir}: not a run folder (no ${RUN_FILES.settings})`);
  if (!existsSync(ckptFile)) {
    throw new UsageError(`--resume ${dir}: there is no ${RUN_FILES.checkpoint} (removed, or the run stopped before its first epoch ended); start the run again`);
  }
  let settings: RunSettings;
  try {
    settings = JSON.parse(readFileSync(settingsFile, 'utf8')) as RunSettings;
    if (typeof settings?.args?.data !== 'string' || !Array.isArray(settings.plan?.extend)) throw new Error('it lacks args.data or plan.extend');
  } catch (e) {
    throw new UsageError(`--resume ${dir}: ${settingsFile} is not a readable run settings file (${(e as Error).message})`);
  }
  const ckpt = readCheckpoint(ckptFile);
  const finished = Boolean(ckpt.meta.extra.finished);
  const refuse = (why: string): never => {
    for (const t of ckpt.tensors.values()) t.dispose();
    throw new UsageError(`--resume ${dir}: ${why}`);
  };
  if (finished && !a.more) refuse('the run is finished; give --epochs +N to train it N epochs more');
  if (!finished && a.more) refuse(`the run is not finished: resume it first (visiontune train --resume ${dir}), then add epochs with --epochs +N`);
  const args: TrainArgs & { out: string } = { ...settings.args, out: dir, threads: a.threads ?? settings.args.threads,
    device: a.device ?? settings.args.device, saveEvery: a.saveEvery, json: a.json, quiet: a.quiet };
  let unlock: (() => void) | null = null;
  let dist: ProcessGroup | null = null;
  try {
    dist = joinGroup(a.distTimeout);
    unlock = !dist || dist.rank === 0 ? lockRunDir(dir) : () => undefined;
    return await runTraining(settings, dir, { ckpt, finished, more: a.more }, args, out, undefined, signals, dist);
  } catch (e) {
    if (!unlock) for (const t of ckpt.tensors.values()) t.dispose();
    throw e;
  } finally {
    unlock?.();
    dist?.destroy();
  }
}

const withoutRunFlags = (a: TrainArgs): Omit<TrainArgs, 'json' | 'quiet' | 'existOk' | 'saveEvery'> => {
  const { json: _j, quiet: _q, existOk: _e, saveEvery: _s, ...rest } = a;
  return rest;
};

/**
 * The line an interrupted run resumes with: `done` epochs in its table, `batch` training batches of
 * the next one done (of `nBatches`; all of them when it stopped before or during its validation),
 * `total` epochs planned.
 */
export function resumingLine(done: number, batch: number, nBatches: number, total: number): string {
  if (done >= total) return `Resuming after the last epoch (${done} of ${total}), to write the results:`;
  const where = batch >= nBatches ? `, at its validation (its ${nBatches} training batches done)` : batch > 0 ? `, batch ${batch + 1} of ${nBatches}` : '';
  return `Resuming at epoch ${done}${where}:`;
}

type Resumed = { ckpt: ReturnType<typeof readCheckpoint>; finished: boolean; more?: number };

/** What Ctrl-C or SIGTERM does at the run's present stage: the run sets it as it goes (see runTraining). */
interface Interrupts { on: (sig: NodeJS.Signals) => void }

/** The exit code a shell reports for a process stopped by `sig`: 128 + its number. */
const signalExit = (sig: NodeJS.Signals): number => (sig === 'SIGTERM' ? 143 : 130);

/** Exits at once for `sig`, saying `stopped by <sig><how>` in one line (rank 0 alone prints). */
function exitOnSignal(sig: NodeJS.Signals, how: string): never {
  process.exit(report(new InterruptedError(`stopped by ${sig}${how}`, signalExit(sig))));
}

/** Exits at once for a signal that came before the fit began (`left`: what the run folder holds). */
const stopBeforeFit = (sig: NodeJS.Signals, left: string): never => exitOnSignal(sig, ` before training began; nothing was trained: ${left}`);

const asItWas = (dir: string, resumed: Resumed): string =>
  `${dir} is as it was: resume it again with visiontune train --resume ${dir}${resumed.more ? ` --epochs +${resumed.more}` : ''}`;

// The study itself, new or resumed, in `dir`. One handler takes SIGINT and SIGTERM for the whole
// run and does what its stage says: before the fit (loading the data, the label check, lr_find)
// nothing is trained, so the run stops at once; during the fit it saves at the end of the batch;
// while the report is written, it stops and says how to write it.
async function runTraining(settings: RunSettings, outDir: string | null, resumed: Resumed | null,
  a: TrainArgs, out: Log, onDownload: ((bytes: number, total: number | null) => void) | undefined, signals: Signals,
  dist: ProcessGroup | null = null, claim: (dir: string) => void = () => undefined): Promise<RunResults> {
  const interrupts: Interrupts = {
    on: (sig) => stopBeforeFit(sig, resumed && outDir ? asItWas(outDir, resumed) : 'nothing was saved'),
  };
  const handler = (sig: NodeJS.Signals): void => interrupts.on(sig);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) signals.on(sig, handler);
  try {
    return await trainAndReport(settings, outDir, resumed, a, out, onDownload, interrupts, dist, claim);
  } finally {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) signals.off(sig, handler);
  }
}

async function trainAndReport(settings: RunSettings, outDir: string | null, resumed: Resumed | null,
  a: TrainArgs, out: Log, onDownload: ((bytes: number, total: number | null) => void) | undefined, interrupts: Interrupts,
  dist: ProcessGroup | null, claim: (dir: string) => void): Promise<RunResults> {
  const started = performance.now();
  // With several ranks, rank 0 alone prints and writes; all train in step (see DistributedDataParallel).
  const writer = !dist || dist.rank === 0;
  const world = dist?.worldSize ?? 1;
  const log = a.quiet || !writer ? () => undefined : out;
  if (a.bs % world !== 0) throw new UsageError(batchSplitError(a.bs, world, resumed !== null));
  if (dist) settings.args.nproc = Number(process.env.LOCAL_WORLD_SIZE ?? world);
  let dir = outDir ?? '';
  const file = (name: string): string => path.join(dir, name);
  const stop = a.earlyStop > 0 ? new EarlyStopping({ patience: a.earlyStop }) : null;
  const keep = stop ? new KeepBest() : null;
  let bestLoss = Infinity;
  let pendingMore = resumed?.more ?? 0;
  const writeSettings = (): void => writeAtomic(file(RUN_FILES.settings), [`${JSON.stringify(settings, null, 2)}\n`]);
  const callbacks: Callback[] = [...(writer ? [new ProgressBar()] : []), new EpochExtras(), ...(stop && keep ? [stop, keep] : [])];
  // Several processes train on the CPU (Gloo): there auto means the CPU, and a GPU is refused.
  const deviceSpec = a.device ?? DEFAULT_DEVICE;
  const device = dist && deviceSpec === 'auto' ? 'cpu' : cliDevice(deviceSpec, log);
  if (dist && device !== 'cpu') throw new UsageError('--nproc trains on the CPU (Gloo); several GPUs (NCCL) are not built yet: give --device cpu or leave out --nproc');
  settings.machine.device = device;
  const precision = cliPrecision(a.precision, device, log);
  settings.machine.precision = precision;
  const { dls, learn, duplicates } = await prepare({ ...a, precision, device, bs: a.bs / world, weights: resumed ? 'none' : a.weights }, log, callbacks, onDownload,
    { weightsFromCheckpoint: Boolean(resumed) });
  const ddp = dist ? shardAndSync(learn, dist, Boolean(a.syncBn), a.data, dls) : null;
  const hasValidation = dls.valid.length > 0;
  if (stop && !hasValidation) {
    throw new UsageError('--early-stop watches the validation loss, and there are no validation images: give --valid-pct > 0 or a valid/ folder');
  }
  if (resumed) checkSameData(settings.data as DatasetSummary | undefined, dls.summary, a.data, log);
  // --frozen-bn over batch norm that never saw data trains it instead; the first run decides, for its resumes too.
  if (a.frozenBn && a.freezeEpochs > 0 && !resumed) settings.plan.frozenBn = learn.hasNormStatsToFreeze();
  // Every rank checks (rank 0 alone prints): the others would otherwise wait in their first collective, past its timeout on a large set.
  const trainingSuspects = a.labelCheck && !resumed ? await checkTrainingLabels(learn, a.labelCheck, a.seed, log) : null;
  // The run folder is made once the data and the model are ready: a run that cannot start leaves none.
  if (writer) {
    const made = outDir === null || !existsSync(outDir);
    dir = outDir ?? await newRunDir('train');
    await makeOutputDir(dir);
    claim(dir);
    // Until the fit begins, a stop takes back what this run wrote: a folder it made goes.
    interrupts.on = (sig) => {
      if (made) rmSync(dir, { recursive: true, force: true });
      stopBeforeFit(sig, resumed ? asItWas(dir, resumed) : made ? `removed the run folder ${dir}` : `${dir} holds this run's settings only`);
    };
    // --exist-ok into an earlier run's folder: its models, checkpoint and pictures go, so none is taken for this run's.
    if (!resumed) for (const name of Object.values(RUN_FILES)) rmSync(file(name), { force: true });
    settings.args.out = dir;
    settings.machine.threads = getNumThreads();
    settings.data = dls.summary;
    writeSettings();
  }
  const entry = zooEntry(a.arch);
  log(`${a.arch}: ${(entry.weights.numParams / 1e6).toFixed(1)}M parameters, ${resumed ? 'weights from the checkpoint' : a.weights === 'none' ? 'random weights' : `${a.weights} weights`}; ` +
    `${dls.train.length} training batch${dls.train.length === 1 ? '' : 'es'} of ${dist ? `${world} × ${dls.train.bs} (${world} processes)` : dls.train.bs} ` +
    `at ${a.size} px per epoch; run folder ${dir}`);

  let found: LrFindResult | null = null;
  if (settings.plan.baseLr === null) {
    log('Finding a learning rate (lr_find)…');
    found = await lrFind(learn);
    const s = found.suggestions;
    log(`lr_find: valley ${s.valley.toExponential(2)}, minimum ${s.minimum.toExponential(2)}, steep ${s.steep.toExponential(2)}, ` +
      `slide ${s.slide.toExponential(2)}; using the valley`);
    settings.plan.baseLr = s.valley;
    if (writer) {
      await writeLrFind(found, dir);
      writeSettings();
    }
  }
  const baseLr = settings.plan.baseLr;
  if (!resumed && writer) await showBatch(dls.train, file(RUN_FILES.trainBatch), { maxN: 16 });

  const plan = fineTunePlan(a.epochs, { baseLr, freezeEpochs: a.freezeEpochs, freezeBn: a.frozenBn && settings.plan.frozenBn !== false },
    [...settings.plan.extend, ...(resumed?.more ? [resumed.more] : [])]);
  if (a.progressive) {
    // The schedule spans the first run's epochs; epochs added by --epochs +N train at MAX.
    const [min, max] = a.progressive;
    const resize = new ProgressiveResize(dls.train, min, max, a.freezeEpochs + a.epochs);
    learn.addCallback(resize);
    const added = plan.reduce((n, p) => n + p.nEpoch, 0) - resize.epochs;
    log(`Progressive resizing: training at ${resize.sizes.join(', ')} px${added > 0 ? `, then ${max} px in the ${added} epoch${added === 1 ? '' : 's'} added` : ''}, ` +
      `validation at ${max} px`);
  }
  let resume: { fit: number; start: ReturnType<typeof resumeFrom> } | undefined;
  if (resumed) {
    const pos = resumed.ckpt.meta.position;
    // A finished run goes on with the fit just added; an interrupted one where it stopped.
    const fit = resumed.finished ? plan.length - 1 : pos.fit;
    const start = resumeFrom(learn, resumed.ckpt);
    resume = { fit, start: resumed.finished ? { ...start, epoch: 0, batch: 0 } : start };
    bestLoss = Math.min(...learn.history.map((r) => (Number.isFinite(r.valid_loss) ? r.valid_loss : Infinity)));
    log(resumed.finished ? `Training ${resumed.more} epoch${resumed.more === 1 ? '' : 's'} more (a new one-cycle), from epoch ${learn.history.length}:`
      : resumingLine(learn.history.length, pos.batch, dls.train.length, plan.reduce((n, p) => n + p.nEpoch, 0)));
    learn.recorder.logTable(learn);
  }

  const writeResultsCsv = (): void => writeAtomic(file(RUN_FILES.results), [resultsCsv(learn.history)]);
  // Added for the fits alone (lr_find's batches are no checkpoint's). At each save: the table so
  // far; at an epoch's end or a stop, the last model; at a better valid loss, the best.
  const checkpoint = new SaveCheckpoint(file(RUN_FILES.checkpoint), {
    every: a.saveEvery ?? 0, fit: () => learn.planFit, extra: () => ({ baseLr: settings.plan.baseLr, finished: false }),
    onSave: (pos, stopping) => {
      writeResultsCsv();
      // The epochs --epochs +N adds join the settings once the first of them is saved.
      if (pendingMore) {
        settings.plan.extend.push(pendingMore);
        pendingMore = 0;
        writeSettings();
      }
      if (stopping || pos.batch === 0) learn.export(file(RUN_FILES.last));
      if (pos.batch !== 0) return;
      const row = learn.recorder.lastRow;
      const loss = row && Number.isFinite(row.valid_loss) ? row.valid_loss : NaN;
      if (loss < bestLoss || (Number.isNaN(loss) && !existsSync(file(RUN_FILES.best))) || Number.isNaN(bestLoss)) {
        bestLoss = Number.isNaN(loss) ? NaN : loss;
        learn.export(file(RUN_FILES.best));
      }
    },
  });
  // Rank 0 saves; the other ranks only stop with it.
  const stopper = writer ? checkpoint : new StopAfterBatch();
  learn.addCallback(stopper);
  if (ddp) ddp.o.onStop = () => stopper.requestStop();

  // Ctrl-C or SIGTERM: the current batch ends (on every rank), everything is saved; a second one stops at once.
  let signalled: NodeJS.Signals | null = null;
  interrupts.on = (sig) => {
    if (signalled) {
      if (writer) process.stderr.write(`\n${sig} again: stopping now; ${checkpoint.lastPosition ? 'the last checkpoint saved stays, for --resume' : 'no checkpoint was saved yet'}\n`);
      process.exit(signalExit(sig));
    }
    signalled = sig;
    if (writer) process.stderr.write(`\n${sig}: stopping at the end of this batch and saving (again to stop at once)…\n`);
    if (ddp) ddp.requestStop();
    else checkpoint.requestStop();
  };
  // A rank whose launcher is gone stops as if told to.
  watchLauncher(() => interrupts.on('SIGTERM'));
  try {
    await learn.fitPlan(plan, resume);
  } catch (e) {
    // SyncBatchNorm's collectives run inside the backward pass: a lost rank surfaces there.
    throw dist ? dist.explain('backward', e) : e;
  }
  // The fit is over: a stop from here exits at once. When every planned epoch ran and was saved, a
  // --resume writes the results and report (after early stopping it would train on).
  if (!stopper.stopped) {
    const complete = !learn.divergence && !stop?.message;
    interrupts.on = (sig) => exitOnSignal(sig, ' while writing the run\'s results' +
      (complete ? `; every epoch is trained and saved in ${dir}: visiontune train --resume ${dir} writes the results and report` : ''));
  }
  const rows = learn.history;
  if (dist && ddp) {
    // The fit is over on every rank at once; from here rank 0 alone goes on, over whole splits.
    learn.removeCallback(ddp);
    revertSyncBatchNorm(learn.model);
    for (const loader of [dls.train, dls.valid]) loader.shard = null;
    dist.barrier();
    if (!writer) {
      if (stopper.stopped) throw new InterruptedError(`stopped by ${signalled ?? 'rank 0'}`, signalExit(signalled ?? 'SIGINT'));
      if (learn.divergence) throw new TrainingError(`training diverged (${learn.divergence.reason})`);
      learn.opt?.dispose();
      return { arch: a.arch, weights: a.weights, classes: [...dls.vocab], baseLr, batchSize: a.bs, runDir: '', epochs: [], model: null } as unknown as RunResults;
    }
  }

  const results: RunResults = {
    arch: a.arch, weights: a.weights, classes: [...dls.vocab], baseLr, batchSize: a.bs, runDir: dir,
    lrFind: found ?? readLrFind(file(RUN_FILES.lrFindCsv)),
    epochs: rows.map((r) => ({ ...r, time: formatTime(r.time) as unknown as number, seconds: r.time })),
    curves: { losses: learn.recorder.losses, smoothLosses: learn.recorder.smoothLosses, batchesPerEpoch: dls.train.length },
    divergence: learn.divergence,
    data: dls.summary,
    duplicates,
    labelCheck: trainingSuspects && { folds: a.labelCheck, outOfFoldAccuracy: trainingSuspects.accuracy },
    labelSuspects: trainingSuspects?.suspects ?? [],
    skipped: dls.skipped,
    timings: { totalSeconds: (performance.now() - started) / 1000 },
    model: null,
  };
  const writeResults = async (): Promise<void> => {
    results.diagnosis = diagnosisSentences(results);
    const text = await writeRunOutputs(results, dir, settings as unknown as Record<string, unknown>, `visiontune run ${path.basename(path.resolve(dir))}`);
    if (a.json) writeAtomic(a.json, [text]);
  };

  if (checkpoint.stopped) {
    const pos = checkpoint.lastPosition;
    results.interrupted = { signal: signalled ?? 'stop', epoch: rows.length, batch: pos?.batch ?? 0 };
    writeResultsCsv();
    await writeResults();
    learn.opt?.dispose();
    throw new InterruptedError(`stopped by ${signalled ?? 'another rank (a signal to it, or its launcher gone)'}; saved ${file(RUN_FILES.checkpoint)}, ${RUN_FILES.last}, ${RUN_FILES.results} and ${RUN_FILES.report}: ` +
      `resume with visiontune train --resume ${dir}${world > 1 ? ` --nproc ${a.nproc ?? world}` : ''}`, signalExit(signalled ?? 'SIGINT'));
  }

  if (stop?.message) log(stop.message);
  const diagnosis = diagnose(rows, learn.divergence, { baseLr, hasValidation });
  log(diagnosis);
  // With keep-best, the model is the best epoch's, and so are the final numbers.
  const kept = keep && keep.bestEpoch >= 0 ? rows.find((r) => r.epoch === keep.bestEpoch) : undefined;
  if (kept && kept !== rows[rows.length - 1]) log(`Kept the weights of epoch ${kept.epoch}, the best valid loss (${kept.valid_loss.toFixed(6)}).`);
  const last = kept ?? rows[rows.length - 1];
  results.final = { epoch: last?.epoch, valid_loss: last?.valid_loss, error_rate: last?.error_rate };
  results.overTraining = { epoch: hasValidation && !learn.divergence ? overTrainingEpoch(rows) : null, summary: diagnosis };
  results.earlyStopping = stop?.message ?? null;
  if (learn.divergence) {
    // The weights are NaN or far off: no model joins the run folder (best and last, if any, are
    // from the epochs before), and the run fails with the diagnosis.
    writeResultsCsv();
    await writeResults();
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
      results.final.accuracy = interp.accuracy;
      results.validation = interp.items();
      results.leaks = leakErrors(results.validation, duplicates);
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

  // The model in memory (the best epoch's with keep-best, else the last) gets the temperature;
  // the finished checkpoint lets --epochs +N go on from it.
  learn.export(file(kept ? RUN_FILES.best : RUN_FILES.last));
  if (!kept && rows.length && bestLoss === rows[rows.length - 1].valid_loss) learn.export(file(RUN_FILES.best));
  const end: CheckpointPosition = { fit: plan.length - 1, epoch: plan[plan.length - 1].nEpoch, batch: 0, loaderEpoch: dls.train.epochsStarted };
  saveCheckpoint(learn, file(RUN_FILES.checkpoint), end, { baseLr, finished: true });
  writeResultsCsv();
  results.model = file(RUN_FILES.best);
  results.timings = { totalSeconds: (performance.now() - started) / 1000 };
  await writeResults();
  log(`\nRun folder ${dir}: best.safetensors, last.safetensors, results.csv, report.html and the pictures`);
  learn.opt?.dispose();
  return results;
}

/** The validation error rate with the leaked images (a copy in training) and without them; null without leaks. */
function leakErrors(items: readonly { path: string; actual: string; predicted: string }[], groups: readonly DuplicateGroup[] | null): RunResults['leaks'] {
  const leaked = new Set((groups ?? []).filter((g) => g.kinds.includes('leak')).flatMap((g) => g.items.filter((it) => it.split !== 'train').map((it) => it.path)));
  if (leaked.size === 0) return null;
  const error = (xs: readonly { actual: string; predicted: string }[]): number | null => (xs.length ? xs.filter((v) => v.actual !== v.predicted).length / xs.length : null);
  const rest = items.filter((v) => !leaked.has(v.path));
  return { leaked: items.length - rest.length, errorRate: error(items) ?? NaN, errorRateWithout: error(rest) };
}

/** Reads lr_find.csv back (a resumed run's report shows the curve its start measured); null when there is none. */
function readLrFind(csv: string): LrFindResult | null {
  if (!existsSync(csv)) return null;
  const rows = readFileSync(csv, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
  return rows.length ? { lrs: rows.map((r) => r[0]), losses: rows.map((r) => r[1]), suggestions: {} as LrFindResult['suggestions'] } : null;
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

/** Throws a DataError when a resumed run's classes changed; warns when its images per split did. */
function checkSameData(before: DatasetSummary | undefined, now: DatasetSummary, data: string, log: (s: string) => void): void {
  if (!before) return;
  const [was, is] = [before.vocab.join(', '), now.vocab.join(', ')];
  if (was !== is) {
    throw new DataError(`the classes changed since the run started (${was} then, ${is} now)`, data, 'A checkpoint holds a head for its classes: start a new run');
  }
  const count = (s: DatasetSummary, split: 'train' | 'valid'): number => Object.values(s.counts[split] ?? {}).reduce((x, y) => x + y, 0);
  for (const split of ['train', 'valid'] as const) {
    if (count(before, split) !== count(now, split)) {
      log(`warning: the ${split} split has ${count(now, split)} images now, ${count(before, split)} when the run started: the resumed run sees other images`);
    }
  }
}

/**
 * Makes this rank's loaders take their shard (training padded to equal shards, validation not)
 * and adds DistributedDataParallel to the learner (with SyncBatchNorm if `syncBn`): every fit
 * from here, lr_find's included, runs in step on all ranks. Returns the callback.
 */
function shardAndSync(learn: VisionLearner, dist: ProcessGroup, syncBn: boolean, data: string, dls: SplitFiles): DistributedDataParallel {
  checkSameEverywhere(learn, dist, data, dls);
  learn.dls.train.shard = new DistributedSampler(dist.rank, dist.worldSize);
  learn.dls.valid.shard = new DistributedSampler(dist.rank, dist.worldSize, { pad: false });
  if (syncBn) convertSyncBatchNorm(learn.model, dist);
  const ddp = new DistributedDataParallel(dist);
  learn.addCallback(ddp);
  return ddp;
}

/** The files of the training and validation splits. */
type SplitFiles = Record<'train' | 'valid', { readonly items: readonly { path: string }[] }>;

/**
 * Throws a UsageError on every rank unless all ranks read the same data (classes, the files of
 * each split by their path inside the data folder) and built the same model (parameter count):
 * machines with different copies of a folder would train on different splits, or fail inside a
 * collective on tensors of different sizes.
 */
function checkSameEverywhere(learn: VisionLearner, dist: ProcessGroup, data: string, { train, valid }: SplitFiles): void {
  const names = (items: readonly { path: string }[]): string => items.map((it) => path.relative(data, it.path)).join('\n');
  const mine = [fingerprint(learn.dls.vocab.join('\n')), train.items.length, valid.items.length, fingerprint(names(train.items)), fingerprint(names(valid.items)),
    learn.model.parameters().reduce((n, p) => n + p.numel(), 0)];
  const local = tensor(mine, { dtype: 'float64' });
  const all = dist.allgather(local);
  const rows = all.map((t) => t.toArray());
  for (const t of [local, ...all]) t.dispose();
  const other = rows.findIndex((r) => r.some((v, i) => v !== rows[0][i]));
  if (other < 0) return;
  const [, n0, v0, , , p0] = rows[0];
  const [, n1, v1, , , p1] = rows[other];
  const what = p1 !== p0 ? `a model of ${p1} parameters against ${p0}`
    : n1 !== n0 || v1 !== v0 ? `${n1} training and ${v1} validation images against ${n0} and ${v0}` : 'other classes or files';
  throw new UsageError(`rank ${other} read other data or built another model than rank 0 (${what}): every machine needs the same data folder and options`);
}

/** The first 32 bits of a text's SHA-1: a fingerprint that a float64 holds exactly. */
const fingerprint = (text: string): number => createHash('sha1').update(text).digest().readUInt32BE(0);

/** On ranks other than 0 (which save with SaveCheckpoint): ends the fit after the batch at which a stop was asked. */
class StopAfterBatch implements Callback {
  readonly order = 100;
  stopped = false;
  #requested = false;

  requestStop(): void { this.#requested = true; }

  afterBatch(learn: Learner, b: BatchInfo): void {
    if (!this.#requested || b.phase !== 'train') return;
    this.stopped = true;
    learn.stopTraining = true;
    throw new CancelFitException('stop requested');
  }
}
