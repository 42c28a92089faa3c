// The Learner: fastai's training loop as events (fastai/learner.py) over a model with parameter
// groups — freeze/unfreeze, one-cycle fitting with discriminative learning rates, fine-tuning,
// validation and predictions. Everything else a fit does is a callback: the recorder and its
// table, the schedules, gradient accumulation, mixed precision, channels_last, divergence.
import { setImmediate } from 'node:timers/promises';
import { F, autocast, noGrad, tidy, cat, keep, zeros, tensor, type Tensor, type DType, type Device } from '../torch/index.js';
import { Module, BatchNorm1d, BatchNorm2d, LayerNorm } from '../nn/index.js';
import { AdamW } from '../optim/index.js';
import { oneCycle, groupLrs, type LearningRate, type OneCycleOptions } from './schedule.js';
import { errorRate, type Metric } from './metrics.js';
import { TerminateOnDivergence, TrainingError, type Divergence } from './diagnosis.js';
import { CancelException, type BatchInfo, type Callback, type EpochRow, type Part } from './events.js';
import { Recorder, GatherPreds } from './recorder.js';
import { defaultSplitter, type FitStart, type PlannedFit, type Splitter, type Loader, type DataLoadersLike, type LearnerOptions, type FitOptions, type FineTuneOptions } from './types.js';
import { LEARNER_DEFAULTS } from './defaults.js';
import { fineTunePlan } from './schedule.js';
import { saveCheckpoint, readCheckpoint, resumeFrom, type CheckpointPosition } from './checkpoint.js';
import { ParamScheduler, GradientAccumulation, MixedPrecision, ChannelsLast, FrozenEval, ToDevice, type Schedule } from './schedulers.js';
import { FeatureCache, hasBodyAndHead, type BodyHead } from './feature-cache.js';
import { GradScaler } from './grad-scaler.js';

export type { Callback, EpochRow, BatchInfo } from './events.js';
export { formatTime } from './recorder.js';
export { defaultSplitter, type Batch, type Loader, type DataLoadersLike, type GroupedModel, type Splitter, type LearnerOptions,
  type FitOptions, type FineTuneOptions } from './types.js';

const NORM_TYPES = [BatchNorm1d, BatchNorm2d, LayerNorm];
const isNorm = (m: Module): boolean => NORM_TYPES.some((T) => m instanceof T);

/** What a run says when freezeBn meets batch norm without statistics (see Learner.bodyNormStatsUntrained). */
export const UNTRAINED_NORMS_NOTE = 'Frozen batch norm: the body\'s batch norm has no running statistics yet (mean 0, variance 1 ' +
  'in every layer, as initialized), so there are none to freeze: the frozen epochs train it, as fastai does';

export { LEARNER_DEFAULTS, FINE_TUNE_DEFAULTS } from './defaults.js';

type EventName = Exclude<keyof Callback, 'order' | 'afterBatch' | 'afterEpoch'>;

export class Learner {
  readonly metrics: Metric[];
  readonly options: typeof LEARNER_DEFAULTS & LearnerOptions;
  /** The callbacks given (trackers, progress…); the learner's own are in `coreCallbacks`. */
  readonly callbacks: Callback[];
  /** What fits measured: the history, the smoothed loss, the lrs and moms (fastai's learn.recorder). */
  readonly recorder = new Recorder();
  /** The learner's own callbacks: the recorder, divergence, and the options' accumulation, precision and memory format. */
  readonly coreCallbacks: Callback[];
  readonly splitter: Splitter;
  /** Set by a callback to end fitting after the current epoch. */
  stopTraining = false;
  /** The fit of the plan fitPlan runs (0 for the first). */
  planFit = 0;
  /** Layer groups frozen by the last freezeTo (0: none, as after unfreeze). */
  frozenGroups = 0;
  /** Multiplies every scheduled learning rate (reduce-on-plateau lowers it). */
  lrFactor = 1;
  /** Where training diverged, if it did; fitting stops there (see TerminateOnDivergence). */
  divergence: Divergence | null = null;
  opt: AdamW | null = null;
  /** The dtype forward and loss run in under autocast, or null for float32 (MixedPrecision sets it). */
  autocastDtype: DType | null = null;
  /** Where the model trains (the device option). */
  readonly device: Device;
  /** Replaces model.forward for the batches of a fit while set (the feature cache sets it); null: the model's own. */
  predictor: ((x: Tensor) => Tensor) | null = null;

  // The loop's state, under fastai's names, for callbacks to read and change.
  /** The batch's input [N, 3, H, W] and targets [N] (int64). */
  xb: Tensor | null = null;
  yb: Tensor | null = null;
  /** The loader of the phase running (fastai's learn.dl), and the batch's item indices in it when it says (Batch.items). */
  dl: Loader | null = null;
  batchItems: readonly number[] | null = null;
  /** The model's output [N, C], the loss recorded, and the loss the backward pass starts from (a callback may scale it). */
  pred: Tensor | null = null;
  loss: Tensor | null = null;
  lossGrad: Tensor | null = null;
  /** The batch's loss as a number (before any scaling). */
  lossValue = NaN;
  /** Whether the current phase trains (false in validation). */
  training = false;
  /** Whether a fit is running. */
  fitting = false;
  /** Epoch within the fit and their number; batch within the phase and their number. */
  epoch = 0;
  nEpoch = 0;
  iter = 0;
  nIter = 0;
  /** Training batches of this fit done so far, over all it will do: a schedule's position in [0, 1). */
  pctTrain = 0;
  #trainDone = 0;
  #trainTotal = 1;
  #extraCbs: Callback[] = [];
  /** For each layer group, the optimizer groups holding its decayed and undecayed parameters. */
  #optGroupsOf: number[][] = [];

  constructor(readonly dls: DataLoadersLike, readonly model: Module, options: LearnerOptions = {}) {
    if (options.bf16 && options.fp16) throw new TypeError('Learner: bf16 and fp16 are two kinds of mixed precision; choose one');
    if (options.fp16 && !(options.device ?? 'cpu').startsWith('cuda')) {
      throw new TypeError('Learner: fp16 autocast needs a CUDA device (libtorch\'s CPU autocast has no float16); on the CPU use bf16');
    }
    this.options = { ...LEARNER_DEFAULTS, ...options };
    this.device = options.device ?? 'cpu';
    if (this.device !== 'cpu') model.to({ device: this.device });
    this.metrics = options.metrics ?? [errorRate];
    this.callbacks = [...(options.callbacks ?? [])];
    this.splitter = options.splitter ?? defaultSplitter;
    this.coreCallbacks = [
      this.recorder, new TerminateOnDivergence(),
      ...(this.options.gradAccum > 1 ? [new GradientAccumulation(this.options.gradAccum)] : []),
      ...(this.device !== 'cpu' ? [new ToDevice()] : []),
      ...(options.bf16 ? [new MixedPrecision()] : []),
      ...(options.fp16 ? [new MixedPrecision('float16'), new GradScaler()] : []),
      ...(options.channelsLast ? [new ChannelsLast()] : []),
    ];
    for (const cb of [...this.coreCallbacks, ...this.callbacks]) cb.afterCreate?.(this);
  }

  /** Every epoch's row since the learner was made. */
  get history(): EpochRow[] { return this.recorder.history; }
  /** The smoothed training loss (fastai's AvgSmoothLoss, β 0.98, not debiased), reset at each fit. */
  get smoothLoss(): number { return this.recorder.smoothLoss; }
  get nGroups(): number { return this.splitter(this.model).length; }

  /** Adds a callback for every later fit (fastai's add_cb). */
  addCallback(cb: Callback): this {
    this.callbacks.push(cb);
    cb.afterCreate?.(this);
    return this;
  }

  /** Removes a callback added before (fastai's remove_cb). */
  removeCallback(cb: Callback): this {
    const i = this.callbacks.indexOf(cb);
    if (i >= 0) this.callbacks.splice(i, 1);
    return this;
  }

  /** Returns fn's result with the given callbacks left out while it runs (fastai's removed_cbs). */
  async withoutCallbacks<T>(cbs: readonly Callback[], fn: () => Promise<T>): Promise<T> {
    const removed = cbs.filter((cb) => this.callbacks.includes(cb));
    for (const cb of removed) this.removeCallback(cb);
    try {
      return await fn();
    } finally {
      this.callbacks.push(...removed);
    }
  }

  /** Writes a line where the learner's table goes (the log option; default console.log). */
  log(line: string): void {
    const log = this.options.log === undefined ? console.log : this.options.log;
    log?.(line);
  }

  /** Makes the optimizer: per layer group, one AdamW group with weight decay and one without. */
  createOpt(): AdamW {
    this.opt?.dispose();
    const groups: { params: Tensor[]; weightDecay: number }[] = [];
    this.#optGroupsOf = this.splitter(this.model).map((modules) => {
      const decay: Tensor[] = [];
      const noDecay: Tensor[] = [];
      for (const root of modules) {
        for (const m of root.modules()) {
          for (const [name, p] of m.namedParameters()) {
            if (name.includes('.')) continue; // a submodule's: visited on its own
            (!this.options.wdBnBias && (isNorm(m) || name === 'bias') ? noDecay : decay).push(p);
          }
        }
      }
      const ids: number[] = [];
      for (const [params, weightDecay] of [[decay, this.options.wd], [noDecay, 0]] as const) {
        if (params.length === 0) continue;
        ids.push(groups.length);
        groups.push({ params: [...params], weightDecay });
      }
      return ids;
    });
    this.opt = new AdamW(groups, { lr: 1e-3, betas: [0.9, this.options.beta2], eps: this.options.eps });
    return this.opt;
  }

  /** Freezes the groups before `n` (negative counts from the end); norm layers stay trainable if `trainBn` (default the learner's option). */
  freezeTo(n: number, trainBn = this.options.trainBn): void {
    const groups = this.splitter(this.model);
    const from = n < 0 ? groups.length + n : n;
    this.frozenGroups = from;
    groups.forEach((modules, i) => {
      for (const root of modules) {
        for (const m of root.modules()) {
          const train = i >= from || (trainBn && isNorm(m));
          for (const [name, p] of m.namedParameters()) if (!name.includes('.')) p.requiresGrad_(train);
        }
      }
    });
    if (!this.opt) this.createOpt();
    this.opt!.clearState();
  }

  /** Trains only the last group (the head) and the norm layers. */
  freeze(): void { this.freezeTo(-1); }
  unfreeze(): void { this.freezeTo(0); }

  /** Sets each layer group's learning rate and Adam β1. */
  setHypers(lrs: number[], mom: number): void {
    const opt = this.opt ?? this.createOpt();
    this.#optGroupsOf.forEach((ids, i) => {
      for (const id of ids) {
        const g = opt.paramGroups[id];
        g.lr = lrs[i] * this.lrFactor;
        g.betas = [mom, g.betas[1]];
      }
    });
  }

  /**
   * Saves everything needed to go on training to `path` (a checkpoint: weights, optimizer,
   * recorder, trackers, random generator; see saveCheckpoint), as fastai's learn.save keeps the
   * model and optimizer. Atomic.
   */
  save(path: string): void {
    saveCheckpoint(this, path, { fit: this.planFit, epoch: this.nEpoch, batch: 0, loaderEpoch: this.dls.train.epochsStarted ?? 0 });
  }

  /**
   * Loads a checkpoint `save` (or a run) wrote: the weights, optimizer state, history, trackers
   * and random generator, as fastai's learn.load. Returns where it was saved. Throws
   * CheckpointError for a file that is not a checkpoint, StateDictError when it does not fit.
   */
  load(path: string): CheckpointPosition {
    const ckpt = readCheckpoint(path);
    const start = resumeFrom(this, ckpt);
    if (!this.opt) this.createOpt();
    start.restore?.(this);
    return ckpt.meta.position;
  }

  /** Returns each layer group's learning rate now (that of its first optimizer group); empty before the optimizer exists. */
  groupLrs(): number[] {
    const opt = this.opt;
    return opt ? this.#optGroupsOf.map((ids) => opt.paramGroups[ids[0]]?.lr ?? NaN) : [];
  }

  /** Returns the loss of logits [N, C] against targets [N]: cross-entropy with the learner's label smoothing. */
  lossFunc(pred: Tensor, y: Tensor, reduction: 'mean' | 'sum' | 'none' = 'mean'): Tensor {
    const weight = this.options.classWeights ? tensor([...this.options.classWeights], { device: pred.device as Device }) : undefined;
    return F.crossEntropy(pred, y, { labelSmoothing: this.options.labelSmoothing, reduction, weight });
  }

  /** The model's output for a batch, under autocast when a callback set autocastDtype (output in float32). */
  forward(batch: Tensor): Tensor {
    const run = (): Tensor => (this.predictor ? this.predictor(batch) : this.model.forward(batch));
    if (!this.autocastDtype) return run();
    const device = batch.device.startsWith('cuda') ? 'cuda' : 'cpu';
    return autocast(run, { device, dtype: this.autocastDtype }).float();
  }

  /**
   * Trains nEpoch epochs through the loop's events (see Callback); with `schedule`, a
   * ParamScheduler sets each group's learning rate and the momentum before every batch.
   * Returns the fit's rows. Throws a TrainingError when the training loader has no batch.
   */
  async fit(nEpoch: number, schedule?: Schedule | null, o: FitOptions = {}): Promise<EpochRow[]> {
    assertBatches(this.dls.train);
    if (!this.opt) this.createOpt();
    const start = o.start;
    if (start && (start.batch > 0 || start.epoch > 0) && !this.dls.train.resumeAt) {
      throw new TypeError('fit: this training loader cannot resume (it has no resumeAt)');
    }
    this.#extraCbs = [...(schedule ? [new ParamScheduler(schedule)] : []), ...(o.cbs ?? [])];
    this.stopTraining = false;
    this.divergence = null;
    this.nEpoch = nEpoch;
    this.#trainDone = start ? start.epoch * this.dls.train.length + start.batch : 0;
    this.#trainTotal = Math.max(1, nEpoch * this.dls.train.length);
    const first = this.history.length - (start ? start.epoch : 0);
    this.fitting = true;
    try {
      await this.#withEvents('Fit', async () => {
        if (start) {
          start.restore?.(this);
          this.dls.train.resumeAt?.(start.loaderEpoch, start.batch);
        }
        for (this.epoch = start?.epoch ?? 0; this.epoch < nEpoch && !this.stopTraining; this.epoch++) {
          const from = start && this.epoch === start.epoch ? start.batch : 0;
          await this.#withEvents('Epoch', async () => {
            await this.#phase(this.dls.train, true, from);
            await this.#phase(this.dls.valid, false);
          });
        }
      });
    } finally {
      this.fitting = false;
      this.#extraCbs = [];
    }
    return this.history.slice(first);
  }

  /** fastai's fit_one_cycle: cosine warm-up to lrMax over pctStart of the batches, then down. */
  fitOneCycle(nEpoch: number, lrMax: LearningRate = 1e-3, o: OneCycleOptions = {}, fit: FitOptions = {}): Promise<EpochRow[]> {
    const peaks = groupLrs(lrMax, this.nGroups);
    return this.fit(nEpoch, (pos) => {
      const mom = oneCycle(1, pos, o).mom;
      return { lrs: peaks.map((peak) => oneCycle(peak, pos, o).lr), mom };
    }, fit);
  }

  /**
   * fastai's fine_tune: freezeEpochs of one-cycle on the head (peak slice(baseLr), pctStart 0.99),
   * then unfreeze and `epochs` of one-cycle at slice(baseLr/2/lrMult, baseLr/2) (pctStart, div).
   */
  async fineTune(epochs: number, o: FineTuneOptions = {}): Promise<EpochRow[]> {
    return this.fitPlan(fineTunePlan(epochs, o), o.resume);
  }

  /**
   * Runs the fits of a plan in turn, each one-cycle with the body frozen or not, until one stops
   * training; with `resume`, from that fit and position (see FitStart). `planFit` says which fit
   * runs. Returns the rows of the fits run.
   */
  async fitPlan(plan: readonly PlannedFit[], resume?: { fit: number; start: FitStart }): Promise<EpochRow[]> {
    const rows: EpochRow[] = [];
    for (let i = resume?.fit ?? 0; i < plan.length; i++) {
      const p = plan[i];
      this.planFit = i;
      // Batch norm whose statistics were never estimated has none to freeze (see bodyNormStatsUntrained).
      const freezeBn = Boolean(p.freezeBn) && (i === resume?.fit || this.hasNormStatsToFreeze());
      if (p.frozen) this.freezeTo(-1, this.options.trainBn && !freezeBn);
      else this.unfreeze();
      const cbs: Callback[] = [];
      if (p.frozen && freezeBn) {
        cbs.push(new FrozenEval());
        const cache = p.cacheFeatures !== false && hasBodyAndHead(this.model) && this.dls.train.deterministic;
        if (cache) {
          cbs.push(new FeatureCache(this.model as Module & BodyHead));
          this.log('Frozen epochs: the body runs once per image and its features are kept (inputs without augmentation)');
        }
      }
      rows.push(...await this.fitOneCycle(p.nEpoch, p.lrMax, p.oneCycle, { start: i === resume?.fit ? resume.start : undefined, cbs }));
      if (this.stopTraining) break;
    }
    return rows;
  }

  /**
   * True when the body (every layer group but the last) has batch norm and none of it has
   * running statistics yet: each layer's running mean is 0 and running variance 1, as
   * initialized (random or from-scratch weights). In eval mode such a layer scales nothing, so
   * a frozen-bn phase over it trains a head on features no trained network gives; fitPlan then
   * trains the body's batch norm during the frozen epochs instead, as fastai does (train_bn).
   */
  bodyNormStatsUntrained(): boolean {
    const norms = this.splitter(this.model).slice(0, -1).flat().flatMap((root) => root.modules())
      .filter((m): m is BatchNorm1d | BatchNorm2d => (m instanceof BatchNorm1d || m instanceof BatchNorm2d) && m.trackRunningStats);
    return norms.length > 0 && tidy(() => norms.every((m) => m.getTensor('running_mean')!.abs().max().item() === 0
      && m.getTensor('running_var')!.sub(1).abs().max().item() === 0));
  }

  /** Whether freezeBn has batch-norm statistics to freeze: false, saying UNTRAINED_NORMS_NOTE in the log, where bodyNormStatsUntrained. */
  hasNormStatsToFreeze(): boolean {
    if (!this.bodyNormStatsUntrained()) return true;
    this.log(UNTRAINED_NORMS_NOTE);
    return false;
  }

  /** Returns the mean loss and metrics over a loader (weighted by batch size), in eval mode, through the validation events; NaN for an empty one. */
  async validate(loader: Loader = this.dls.valid): Promise<{ loss: number; metrics: Record<string, number> }> {
    await this.#phase(loader, false);
    return this.recorder.valid;
  }

  /** Returns probabilities [N, C], targets [N] and per-item losses [N] over a loader, in eval mode. */
  async getPreds(loader: Loader = this.dls.valid): Promise<{ probs: Tensor; targets: Tensor; losses: Tensor }> {
    const gather = new GatherPreds();
    const before = this.#extraCbs;
    this.#extraCbs = [...before, gather];
    try {
      await this.#phase(loader, false);
    } finally {
      this.#extraCbs = before;
    }
    const { probs, targets, losses } = gather;
    if (probs.length === 0) {
      return { probs: zeros([0, this.dls.vocab.length]), targets: zeros([0], { dtype: 'int64' }), losses: zeros([0]) };
    }
    const out = { probs: keep(cat(probs)), targets: keep(cat(targets)), losses: keep(cat(losses)) };
    for (const t of [...probs, ...targets, ...losses]) t.dispose();
    return out;
  }

  get columns(): string[] { return ['epoch', 'train_loss', 'valid_loss', ...this.metrics.map((m) => m.name), 'time']; }

  // Callbacks in the order they run: ascending `order`, then core, given, this fit's.
  #callbacks(): Callback[] {
    return [...this.coreCallbacks, ...this.callbacks, ...this.#extraCbs]
      .map((cb, i) => [cb, i] as const).sort((a, b) => (a[0].order ?? 0) - (b[0].order ?? 0) || a[1] - b[1]).map(([cb]) => cb);
  }

  #event(name: EventName): void {
    for (const cb of this.#callbacks()) (cb[name] as ((l: Learner) => void) | undefined)?.call(cb, this);
  }

  // fastai's _with_events: before<part>, the part, after<part>; a cancel of this part skips to afterCancel<part>.
  async #withEvents(part: Exclude<Part, 'Batch' | 'Step'>, fn: () => Promise<void>): Promise<void> {
    try {
      this.#event(`before${part}`);
      await fn();
    } catch (e) {
      if (!(e instanceof CancelException && e.part === part)) throw e;
      this.#event(`afterCancel${part}`);
    }
    if (part === 'Epoch') {
      for (const cb of this.#callbacks()) cb.afterEpoch?.(this, this.recorder.lastRow as EpochRow);
    } else {
      this.#event(`after${part}`);
    }
  }

  // One pass over a loader: training (train mode, gradients, steps) or validation (eval mode, no gradients).
  async #phase(loader: Loader, train: boolean, from = 0): Promise<void> {
    this.training = train;
    if (train) {
      this.model.train();
      // Gradients go to null, not zero, so parameters frozen since their last gradient are not
      // stepped (no weight decay or momentum on a frozen body).
      this.opt!.zeroGrad(true);
    } else {
      this.model.eval();
    }
    try {
      await this.#withEvents(train ? 'Train' : 'Validate', async () => {
        this.nIter = loader.length;
        this.iter = from;
        this.dl = loader;
        for await (const { x, y, items } of loader) {
          this.batchItems = items ?? null;
          try {
            this.#oneBatch(x, y, train);
          } finally {
            x.dispose();
            y.dispose();
          }
          this.iter++;
          // A turn of the event loop between batches: with images in memory the loop would run on
          // microtasks alone, and a signal (Ctrl-C), a timer or I/O would wait for the fit to end.
          await setImmediate();
        }
      });
    } finally {
      this.training = false;
      this.dl = null;
      this.batchItems = null;
      if (!train) this.model.train();
    }
  }

  // fastai's one_batch, with its events; the batch's tensors are freed when it ends.
  #oneBatch(x: Tensor, y: Tensor, train: boolean): void {
    this.xb = x;
    this.yb = y;
    if (train) this.pctTrain = this.#trainDone / this.#trainTotal;
    try {
      const forward = (): void => {
        this.#event('beforeBatch');
        this.pred = this.forward(this.xb!);
        this.#event('afterPred');
        this.loss = this.lossFunc(this.pred, this.yb!);
        this.lossGrad = this.loss;
        this.lossValue = this.loss.item();
        this.#event('afterLoss');
        if (!train) return;
        this.#event('beforeBackward');
        this.lossGrad!.backward();
        this.#event('afterBackward');
      };
      if (train) tidy(forward);
      else noGrad(() => tidy(forward));
      this.pred = this.loss = this.lossGrad = null; // freed by tidy
      if (train) {
        try {
          this.#event('beforeStep');
          this.opt!.step();
        } catch (e) {
          if (!(e instanceof CancelException && e.part === 'Step')) throw e;
          this.#event('afterCancelStep');
        }
        this.#event('afterStep');
        this.opt!.zeroGrad(true);
      }
    } catch (e) {
      if (!(e instanceof CancelException && e.part === 'Batch')) throw e;
      this.#event('afterCancelBatch');
    } finally {
      this.pred = this.loss = this.lossGrad = null;
      this.xb = this.yb = null;
    }
    const info: BatchInfo = { phase: train ? 'train' : 'valid', index: this.iter, of: this.nIter, loss: this.lossValue };
    if (train) this.#trainDone++;
    for (const cb of this.#callbacks()) cb.afterBatch?.(this, info);
  }
}

/** Throws a TrainingError unless the loader yields at least one batch: a loop over none would not end, or train nothing. */
export function assertBatches(loader: Pick<Loader, 'length'>): void {
  if (loader.length === 0) {
    throw new TrainingError('the training loader has no batch: fewer training images than one batch (with the last partial batch dropped); ' +
      'lower the batch size (--bs) or add images');
  }
}


