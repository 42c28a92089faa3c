// The Learner: fastai's training loop over a model with parameter groups — freeze/unfreeze,
// one-cycle fitting with discriminative learning rates, fine-tuning, validation and the table.
import { performance } from 'node:perf_hooks';
import { F, autocast, noGrad, tidy, cat, keep, zeros, type Tensor } from '../torch/index.js';
import { Module, BatchNorm1d, BatchNorm2d, LayerNorm } from '../nn/index.js';
import { AdamW } from '../optim/index.js';
import { oneCycle, groupLrs, type LearningRate, type OneCycleOptions } from './schedule.js';
import { errorRate, type Metric } from './metrics.js';
import { divergenceOf, TrainingError, type Divergence } from './diagnosis.js';

/** A batch of normalised images [N, 3, H, W] and class indices [N] (int64). */
export interface Batch {
  x: Tensor;
  y: Tensor;
}

/** Batches for one epoch each time it is iterated; `length` is the number of batches. */
export interface Loader extends AsyncIterable<Batch> {
  readonly length: number;
}

export interface DataLoadersLike {
  train: Loader;
  valid: Loader;
  vocab: readonly string[];
}

/** A model whose parameters split into groups (body groups, then the head). */
export interface GroupedModel extends Module {
  groupModules(): Module[][];
}

/** One row of the table: epoch, train_loss, valid_loss, each metric by name, time in seconds. */
export type EpochRow = { epoch: number; train_loss: number; valid_loss: number; time: number } & Record<string, number>;

/** Hooks into training; afterEpoch may ask the learner to stop. */
export interface Callback {
  beforeFit?(learn: Learner): void;
  /** After each training or validation batch: its index in the epoch's phase and the phase's batch count. */
  afterBatch?(learn: Learner, b: { phase: 'train' | 'valid'; index: number; of: number; loss: number }): void;
  afterEpoch?(learn: Learner, row: EpochRow): void;
  afterFit?(learn: Learner): void;
}

export interface LearnerOptions {
  metrics?: Metric[];
  /** Label smoothing of the cross-entropy loss (0 = none). */
  labelSmoothing?: number;
  /** Decoupled weight decay. fastai's default 0.01. */
  wd?: number;
  /** Whether biases and norm-layer parameters are decayed too. fastai's default false. */
  wdBnBias?: boolean;
  /** Whether norm layers keep training while their group is frozen. fastai's default true. */
  trainBn?: boolean;
  /** Adam's β2 and ε, fastai's defaults 0.99 and 1e-5. */
  beta2?: number;
  eps?: number;
  /** Batches whose gradients are summed before one optimizer step. Default 1. */
  gradAccum?: number;
  /** bf16 autocast for forward and loss (CPU: needs bf16 instructions to pay off). */
  bf16?: boolean;
  /** Weights and batches in channels_last memory format (NHWC), often faster for convolutions. */
  channelsLast?: boolean;
  callbacks?: Callback[];
  /** Where the table goes, a line at a time. Default console.log; null for silence. */
  log?: ((line: string) => void) | null;
}

const NORM_TYPES = [BatchNorm1d, BatchNorm2d, LayerNorm];
const isNorm = (m: Module): boolean => NORM_TYPES.some((T) => m instanceof T);

export const LEARNER_DEFAULTS = { wd: 0.01, wdBnBias: false, trainBn: true, beta2: 0.99, eps: 1e-5, gradAccum: 1, labelSmoothing: 0 };

/** Formats seconds as fastai does: mm:ss, or h:mm:ss from an hour. */
export function formatTime(seconds: number): string {
  const s = Math.round(seconds);
  const two = (n: number): string => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600);
  return h > 0 ? `${h}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}` : `${two(Math.floor(s / 60))}:${two(s % 60)}`;
}

export class Learner {
  readonly metrics: Metric[];
  readonly options: typeof LEARNER_DEFAULTS & LearnerOptions;
  readonly callbacks: Callback[];
  /** Every epoch's row since the learner was made. */
  readonly history: EpochRow[] = [];
  /** The smoothed training loss (fastai's AvgSmoothLoss, β 0.98), reset at each fit. */
  smoothLoss = 0;
  /** Set by a callback to end fitting after the current epoch. */
  stopTraining = false;
  /** Multiplies every scheduled learning rate (reduce-on-plateau lowers it). */
  lrFactor = 1;
  /** Where training diverged, if it did; fitting stops there (see DIVERGENCE_FACTOR). */
  divergence: Divergence | null = null;
  /** The first training loss since the learner was made: with ln(classes), the level divergence is measured from. */
  #startLoss: number | null = null;
  opt: AdamW | null = null;
  /** For each layer group, the optimizer groups holding its decayed and undecayed parameters. */
  #optGroupsOf: number[][] = [];
  #epoch = 0;

  constructor(readonly dls: DataLoadersLike, readonly model: GroupedModel, options: LearnerOptions = {}) {
    this.options = { ...LEARNER_DEFAULTS, ...options };
    this.metrics = options.metrics ?? [errorRate];
    this.callbacks = options.callbacks ?? [];
    if (options.channelsLast) model.to({ memoryFormat: 'channels_last' });
  }

  get nGroups(): number { return this.model.groupModules().length; }

  /** Makes the optimizer: per layer group, one AdamW group with weight decay and one without. */
  createOpt(): AdamW {
    this.opt?.dispose();
    const groups: { params: Tensor[]; weightDecay: number }[] = [];
    this.#optGroupsOf = this.model.groupModules().map((modules) => {
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

  /** Freezes the groups before `n` (negative counts from the end); norm layers stay trainable if trainBn. */
  freezeTo(n: number): void {
    const groups = this.model.groupModules();
    const from = n < 0 ? groups.length + n : n;
    groups.forEach((modules, i) => {
      for (const root of modules) {
        for (const m of root.modules()) {
          const train = i >= from || (this.options.trainBn && isNorm(m));
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

  #loss(logits: Tensor, y: Tensor, reduction: 'mean' | 'sum' | 'none' = 'mean'): Tensor {
    return F.crossEntropy(logits, y, { labelSmoothing: this.options.labelSmoothing, reduction });
  }

  /** The model's output for a batch, with the learner's precision and memory format. */
  forward(batch: Tensor): Tensor {
    const x = this.options.channelsLast ? batch.contiguous('channels_last') : batch;
    return this.options.bf16 ? autocast(() => this.model.forward(x)).float() : this.model.forward(x);
  }

  /**
   * Trains nEpoch epochs; before every batch, `schedule(pos)` (pos: share of the fit done) gives
   * each group's learning rate and the momentum. Logs the table, runs the callbacks.
   */
  async fit(nEpoch: number, schedule: (pos: number) => { lrs: number[]; mom: number }): Promise<EpochRow[]> {
    assertBatches(this.dls.train);
    const opt = this.opt ?? this.createOpt();
    this.smoothLoss = 0;
    this.stopTraining = false;
    this.divergence = null;
    const reference = (): number => Math.max(this.#startLoss ?? 0, Math.log(Math.max(2, this.dls.vocab.length)));
    let count = 0;
    const total = nEpoch * this.dls.train.length;
    const rows: EpochRow[] = [];
    for (const cb of this.callbacks) cb.beforeFit?.(this);
    if (this.history.length === 0) this.#logHeader();
    for (let e = 0; e < nEpoch && !this.stopTraining; e++) {
      const start = performance.now();
      this.model.train();
      let sinceStep = 0;
      // Gradients go to null, not zero, so parameters frozen since their last gradient are not
      // stepped (no weight decay or momentum on a frozen body).
      opt.zeroGrad(true);
      for await (const { x, y } of this.dls.train) {
        const { lrs, mom } = schedule(count / total);
        this.setHypers(lrs, mom);
        const loss = tidy(() => {
          const l = this.#loss(this.forward(x), y);
          const scaled = this.options.gradAccum > 1 ? l.div(this.options.gradAccum) : l;
          scaled.backward();
          return l.item();
        });
        x.dispose();
        y.dispose();
        if (++sinceStep >= this.options.gradAccum) {
          opt.step();
          opt.zeroGrad(true);
          sinceStep = 0;
        }
        this.smoothLoss = 0.98 * this.smoothLoss + 0.02 * loss;
        if (this.#startLoss === null && Number.isFinite(loss)) this.#startLoss = loss;
        const index = count++ - e * this.dls.train.length;
        for (const cb of this.callbacks) cb.afterBatch?.(this, { phase: 'train', index, of: this.dls.train.length, loss });
        const smoothed = this.smoothLoss / (1 - 0.98 ** count);
        const diverged = divergenceOf(loss, smoothed, reference());
        if (diverged) {
          this.divergence = { epoch: this.#epoch, batch: index, loss: Number.isFinite(loss) ? smoothed : loss, reason: diverged };
          break;
        }
      }
      const trainLoss = this.smoothLoss / (1 - 0.98 ** count);
      // A diverged model's validation says nothing more; its loss would only be NaN or worse.
      const valid: { loss: number; metrics: Record<string, number> } = this.divergence ? { loss: NaN, metrics: Object.fromEntries(this.metrics.map((m) => [m.name, NaN])) } : await this.validate();
      if (!this.divergence && this.dls.valid.length > 0 && !Number.isFinite(valid.loss)) {
        this.divergence = { epoch: this.#epoch, batch: -1, loss: valid.loss, reason: 'non-finite validation loss' };
      }
      if (this.divergence) this.stopTraining = true;
      const row = {
        epoch: this.#epoch++, train_loss: trainLoss, valid_loss: valid.loss, ...valid.metrics,
        time: (performance.now() - start) / 1000,
      } as EpochRow;
      rows.push(row);
      this.history.push(row);
      this.#logRow(row);
      for (const cb of this.callbacks) cb.afterEpoch?.(this, row);
    }
    for (const cb of this.callbacks) cb.afterFit?.(this);
    return rows;
  }

  /** fastai's fit_one_cycle: cosine warm-up to lrMax over pctStart of the batches, then down. */
  fitOneCycle(nEpoch: number, lrMax: LearningRate = 1e-3, o: OneCycleOptions = {}): Promise<EpochRow[]> {
    const peaks = groupLrs(lrMax, this.nGroups);
    return this.fit(nEpoch, (pos) => {
      const mom = oneCycle(1, pos, o).mom;
      return { lrs: peaks.map((peak) => oneCycle(peak, pos, o).lr), mom };
    });
  }

  /**
   * fastai's fine_tune: freezeEpochs of one-cycle on the head (peak slice(baseLr), pctStart 0.99),
   * then unfreeze and `epochs` of one-cycle at slice(baseLr/2/lrMult, baseLr/2) (pctStart, div).
   */
  async fineTune(epochs: number, o: FineTuneOptions = {}): Promise<EpochRow[]> {
    const { baseLr, freezeEpochs, lrMult, pctStart, div } = { ...FINE_TUNE_DEFAULTS, ...o };
    this.freeze();
    const rows = freezeEpochs > 0 ? await this.fitOneCycle(freezeEpochs, { slice: [baseLr] }, { pctStart: 0.99 }) : [];
    if (this.stopTraining) return rows;
    const lr = baseLr / 2;
    this.unfreeze();
    return [...rows, ...await this.fitOneCycle(epochs, { slice: [lr / lrMult, lr] }, { pctStart, div })];
  }

  /** Returns the mean loss and metrics over the validation set (weighted by batch size), in eval mode; NaN for an empty set. */
  async validate(loader: Loader = this.dls.valid): Promise<{ loss: number; metrics: Record<string, number> }> {
    this.model.eval();
    let n = 0;
    let lossSum = 0;
    let index = 0;
    const sums = this.metrics.map(() => 0);
    for await (const { x, y } of loader) {
      const loss = noGrad(() => tidy(() => {
        const logits = this.forward(x);
        const bs = y.size(0);
        const l = this.#loss(logits, y).item();
        lossSum += l * bs;
        this.metrics.forEach((m, i) => { sums[i] += m.batch(logits, y) * bs; });
        n += bs;
        return l;
      }));
      for (const cb of this.callbacks) cb.afterBatch?.(this, { phase: 'valid', index: index++, of: loader.length, loss });
      x.dispose();
      y.dispose();
    }
    this.model.train();
    return { loss: lossSum / n, metrics: Object.fromEntries(this.metrics.map((m, i) => [m.name, sums[i] / n])) };
  }

  /** Returns probabilities [N, C], targets [N] and per-item losses [N] over a loader, in eval mode. */
  async getPreds(loader: Loader = this.dls.valid): Promise<{ probs: Tensor; targets: Tensor; losses: Tensor }> {
    this.model.eval();
    const probs: Tensor[] = [];
    const targets: Tensor[] = [];
    const losses: Tensor[] = [];
    for await (const { x, y } of loader) {
      noGrad(() => tidy(() => {
        const logits = this.forward(x);
        probs.push(keep(logits.softmax(1)));
        losses.push(keep(this.#loss(logits, y, 'none')));
        targets.push(keep(y.clone()));
      }));
      x.dispose();
      y.dispose();
    }
    this.model.train();
    if (probs.length === 0) {
      const c = this.dls.vocab.length;
      return { probs: zeros([0, c]), targets: zeros([0], { dtype: 'int64' }), losses: zeros([0]) };
    }
    const out = { probs: keep(cat(probs)), targets: keep(cat(targets)), losses: keep(cat(losses)) };
    for (const t of [...probs, ...targets, ...losses]) t.dispose();
    return out;
  }

  get columns(): string[] { return ['epoch', 'train_loss', 'valid_loss', ...this.metrics.map((m) => m.name), 'time']; }

  #emit(line: string): void {
    const log = this.options.log === undefined ? console.log : this.options.log;
    log?.(line);
  }

  #logHeader(): void {
    this.#emit(this.columns.map((c) => c.padEnd(Math.max(c.length, 8))).join('  ').trimEnd());
  }

  #logRow(row: EpochRow): void {
    const cells = this.columns.map((c) => {
      const width = Math.max(c.length, 8);
      if (c === 'epoch') return String(row.epoch).padEnd(width);
      if (c === 'time') return formatTime(row.time);
      // fastai's mark for a value that was not measured: no validation set.
      if (Number.isNaN(row[c]) && c !== 'train_loss' && this.dls.valid.length === 0) return '#na#'.padEnd(width);
      return row[c].toFixed(6).padEnd(width);
    });
    this.#emit(cells.join('  ').trimEnd());
  }
}

/** Throws a TrainingError unless the loader yields at least one batch: a loop over none would not end, or train nothing. */
export function assertBatches(loader: Pick<Loader, 'length'>): void {
  if (loader.length === 0) {
    throw new TrainingError('the training loader has no batch: fewer training images than one batch (with the last partial batch dropped); ' +
      'lower the batch size (--bs) or add images');
  }
}

export interface FineTuneOptions {
  baseLr?: number;
  freezeEpochs?: number;
  lrMult?: number;
  pctStart?: number;
  div?: number;
}

export const FINE_TUNE_DEFAULTS: Required<FineTuneOptions> = { baseLr: 2e-3, freezeEpochs: 1, lrMult: 100, pctStart: 0.3, div: 5 };
