// Checkpoints: everything a fit needs to go on where it stopped — the weights (with batch-norm
// statistics), the optimizer's moments and steps, the recorder (history, per-batch losses, the
// smoothed loss), the trackers' state, libtorch's random generator, and the position (which fit
// of the caller's plan, which epoch, how many of its batches, the training loader's epoch) — in
// one safetensors file: tensors under `model.`, `optim.<param>.<name>`, `callbacks.<name>.`
// and `rng`, the rest as JSON in its metadata. Written atomically, as every file visiontune writes.
import { tensor, getRngState, setRngState, type Tensor } from '../torch/index.js';
import { readSource, parseSafetensors, writeSafetensors } from '../io/index.js';
import { CheckpointError } from '../io/errors.js';
import type { ParamState } from '../optim/optimizer.js';
import { VERSION } from '../version.js';
import { CancelFitException, type BatchInfo, type Callback, type EpochRow } from './events.js';
import type { Learner } from './learner.js';
import type { FitStart } from './types.js';

/** Where a checkpoint stands: the fit of the caller's plan, the epoch in it, the training batches of that epoch done, the loader's epoch. */
export interface CheckpointPosition {
  fit: number;
  epoch: number;
  batch: number;
  loaderEpoch: number;
}

/** A callback whose state a checkpoint keeps: JSON, and tensors it owns (the checkpoint copies them). */
export interface StatefulCallback extends Callback {
  /** The name its state is kept under: unique among the learner's callbacks. */
  readonly stateName: string;
  stateDict(): { json: unknown; tensors?: Map<string, Tensor> };
  loadStateDict(json: unknown, tensors: Map<string, Tensor>): void;
}

/** Whether a callback has state to keep (see StatefulCallback). */
export const isStateful = (cb: Callback): cb is StatefulCallback => typeof (cb as Partial<StatefulCallback>).stateDict === 'function';

/** The JSON part of a checkpoint (`__metadata__.visiontune_checkpoint`). */
export interface CheckpointMeta {
  formatVersion: 1;
  visiontuneVersion: string;
  position: CheckpointPosition;
  recorder: {
    history: EpochRow[];
    losses: number[];
    smoothLosses: number[];
    smoothLoss: number;
    count: number;
    lrs: number[][];
    moms: number[][];
  };
  lrFactor: number;
  /** The optimizer's groups (torch's state_dict layout) and each parameter's number-valued state; its tensors are in the file. */
  optimizer: { param_groups: unknown[]; numbers: Record<string, Record<string, number>> } | null;
  callbacks: Record<string, unknown>;
  /** What the caller keeps beside (the command line's plan: learning rate, epochs…). */
  extra: Record<string, unknown>;
}

const META_KEY = 'visiontune_checkpoint';

/** Writes the learner's state at `position` to `path` (atomically). `extra` is kept as is for the caller. */
export function saveCheckpoint(learn: Learner, path: string, position: CheckpointPosition, extra: Record<string, unknown> = {}): void {
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of learn.model.stateDict()) tensors.set(`model.${k}`, t);
  let optimizer: CheckpointMeta['optimizer'] = null;
  if (learn.opt) {
    const dict = learn.opt.stateDict();
    const numbers: Record<string, Record<string, number>> = {};
    for (const [id, s] of Object.entries(dict.state)) {
      for (const [name, v] of Object.entries(s as ParamState)) {
        if (typeof v === 'number') (numbers[id] ??= {})[name] = v;
        else tensors.set(`optim.${id}.${name}`, v);
      }
    }
    optimizer = { param_groups: dict.param_groups, numbers };
  }
  const callbacks: Record<string, unknown> = {};
  const owned: Tensor[] = [];
  // The learner's own callbacks too: the fp16 loss scale is one of them.
  for (const cb of [...learn.coreCallbacks, ...learn.callbacks].filter(isStateful)) {
    const { json, tensors: cbTensors } = cb.stateDict();
    callbacks[cb.stateName] = json;
    for (const [k, t] of cbTensors ?? []) tensors.set(`callbacks.${cb.stateName}.${k}`, t);
  }
  const rng = tensor(getRngState(), { dtype: 'uint8' });
  owned.push(rng);
  tensors.set('rng', rng);
  const r = learn.recorder;
  const meta: CheckpointMeta = {
    formatVersion: 1, visiontuneVersion: VERSION, position,
    recorder: { history: r.history, losses: r.losses, smoothLosses: r.smoothLosses, smoothLoss: r.smoothLoss, count: r.count, lrs: r.lrs, moms: r.moms },
    lrFactor: learn.lrFactor, optimizer, callbacks, extra,
  };
  try {
    writeSafetensors(path, tensors, { [META_KEY]: JSON.stringify(meta) });
  } finally {
    for (const t of owned) t.dispose();
  }
}

/** A checkpoint read back: its JSON and its tensors (the caller disposes them, or hands them to resumeFrom). */
export interface Checkpoint {
  meta: CheckpointMeta;
  tensors: Map<string, Tensor>;
}

/** Reads a checkpoint file; throws CheckpointError for a file that is not a readable visiontune checkpoint. */
export function readCheckpoint(path: string): Checkpoint {
  const { tensors, metadata } = parseSafetensors(readSource(path, 'the checkpoint'), path);
  const text = metadata[META_KEY];
  let meta: CheckpointMeta | null = null;
  try {
    meta = text === undefined ? null : JSON.parse(text) as CheckpointMeta;
  } catch {
    meta = null;
  }
  if (!meta || meta.formatVersion !== 1 || typeof meta.position?.epoch !== 'number' || !Array.isArray(meta.recorder?.history)) {
    for (const t of tensors.values()) t.dispose();
    throw new CheckpointError(path, 'invalid-header', 'not a visiontune checkpoint (no readable visiontune_checkpoint metadata)');
  }
  return { meta, tensors };
}

/**
 * Puts a checkpoint's weights and history into the learner now, and returns where its fit goes
 * on: a FitStart whose restore (run by fit after its beforeFit events, once the caller has frozen
 * or unfrozen as the plan says) puts back the optimizer, the recorder's running values, the
 * trackers, the learning-rate factor and the random generator. The checkpoint's tensors are
 * consumed (disposed once restored). Throws StateDictError when the weights do not fit the model.
 */
export function resumeFrom(learn: Learner, ckpt: Checkpoint): FitStart {
  const { meta, tensors } = ckpt;
  const prefixed = (prefix: string): Map<string, Tensor> =>
    new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
  learn.model.loadStateDict(prefixed('model.'));
  const r = learn.recorder;
  r.history.length = 0;
  r.history.push(...meta.recorder.history);
  r.losses.length = 0;
  r.losses.push(...meta.recorder.losses);
  r.smoothLosses.length = 0;
  r.smoothLosses.push(...meta.recorder.smoothLosses);
  const { epoch, batch, loaderEpoch } = meta.position;
  return {
    epoch, batch, loaderEpoch,
    restore: (l) => {
      try {
        Object.assign(l.recorder, { smoothLoss: meta.recorder.smoothLoss, count: meta.recorder.count });
        l.recorder.lrs.push(...meta.recorder.lrs);
        l.recorder.moms.push(...meta.recorder.moms);
        l.lrFactor = meta.lrFactor;
        if (meta.optimizer && l.opt) {
          const state: Record<number, ParamState> = {};
          for (const [k, t] of tensors) {
            const m = /^optim\.(\d+)\.(.+)$/.exec(k);
            if (m) (state[Number(m[1])] ??= {})[m[2]] = t;
          }
          for (const [id, nums] of Object.entries(meta.optimizer.numbers)) Object.assign(state[Number(id)] ??= {}, nums);
          l.opt.loadStateDict({ state, param_groups: meta.optimizer.param_groups as { params: number[] }[] });
        }
        for (const cb of [...l.coreCallbacks, ...l.callbacks].filter(isStateful)) {
          if (cb.stateName in meta.callbacks) cb.loadStateDict(meta.callbacks[cb.stateName], prefixed(`callbacks.${cb.stateName}.`));
        }
        const rng = tensors.get('rng');
        if (rng) setRngState(rng.toTypedArray() as Uint8Array);
      } finally {
        for (const t of tensors.values()) t.dispose();
      }
    },
  };
}

export interface SaveCheckpointOptions {
  /** Also save every this many training batches (mid-epoch); 0: only at each epoch's end. */
  every?: number;
  /** Which fit of the caller's plan is running (0 for the first). */
  fit: () => number;
  /** Kept in the checkpoint for the caller (see CheckpointMeta.extra). */
  extra?: () => Record<string, unknown>;
  /** Runs after each save, with the position saved and whether a stop was asked (the command line writes last.safetensors and results.csv there). */
  onSave?: (position: CheckpointPosition, stopping: boolean) => void;
}

/**
 * Saves a checkpoint at each epoch's end (after the trackers), every `every` training batches,
 * and when asked to stop (`requestStop`, as Ctrl-C does): then at the end of the current batch,
 * after which the fit is cancelled (the learner's stopTraining is set, so fineTune stops too).
 */
export class SaveCheckpoint implements Callback {
  /** After the trackers, so that their state at an epoch's end is the one saved. */
  readonly order = 100;
  /** Set once a requested stop has saved and cancelled the fit. */
  stopped = false;
  /** Where the last save stood, if any. */
  lastPosition: CheckpointPosition | null = null;
  #stopRequested = false;

  constructor(readonly path: string, readonly o: SaveCheckpointOptions) {}

  /** Asks the fit to save and stop at the end of the current batch. */
  requestStop(): void { this.#stopRequested = true; }

  afterBatch(learn: Learner, b: BatchInfo): void {
    const loaderEpoch = (learn.dls.train.epochsStarted ?? 1) - 1;
    if (b.phase === 'train') {
      const every = this.o.every ?? 0;
      const done = b.index + 1;
      if (this.#stopRequested || (every > 0 && done % every === 0 && done < b.of)) this.#save(learn, { fit: this.o.fit(), epoch: learn.epoch, batch: done, loaderEpoch });
    } else if (this.#stopRequested) {
      // Mid-validation: the epoch's training is done; its validation runs again on resume.
      this.#save(learn, { fit: this.o.fit(), epoch: learn.epoch, batch: learn.dls.train.length, loaderEpoch });
    }
    if (this.#stopRequested) this.#stop(learn);
  }

  afterEpoch(learn: Learner): void {
    // lr_find's rows are not kept; a diverged epoch's weights are not worth keeping.
    if (learn.recorder.silent || learn.divergence) return;
    this.#save(learn, { fit: this.o.fit(), epoch: learn.epoch + 1, batch: 0, loaderEpoch: learn.dls.train.epochsStarted ?? 0 });
    if (this.#stopRequested) this.#stop(learn);
  }

  #save(learn: Learner, position: CheckpointPosition): void {
    saveCheckpoint(learn, this.path, position, this.o.extra?.() ?? {});
    this.lastPosition = position;
    this.o.onSave?.(position, this.#stopRequested);
  }

  #stop(learn: Learner): never {
    this.stopped = true;
    learn.stopTraining = true;
    throw new CancelFitException('stop requested');
  }
}
