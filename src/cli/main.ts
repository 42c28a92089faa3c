#!/usr/bin/env node
// The `visiontune` command: parses the command line against the declarations in spec.ts, runs a
// command, turns errors into one line. A command's code (and libtorch with it) loads only after
// its arguments passed every check.
import { report, printable, UsageError, WorkersFailed } from './errors.js';
import { command, helpText, parseCommand, type Parsed } from './spec.js';
import { VERSION } from '../version.js';
import { DEFAULT_MASTER_PORT } from '../distributed/defaults.js';
import { batchSplitError } from './errors.js';
import type { PrecisionChoice } from '../learner/precision.js';

type Out = (s: string) => void;
type Values = Parsed['values'];

// How each command's parsed arguments reach its implementation.
const RUNNERS: Record<string, (p: Parsed, out: Out) => Promise<void>> = {
  models: async ({ values }, out) => {
    const { modelsCommand } = await import('./models.js');
    modelsCommand(Boolean(values.json), out);
  },
  train: async ({ values: v, positionals, given }, out) => {
    const { trainCommand, resumeCommand } = await import('./train.js');
    const epochs = v.epochs as number | string;
    if (v.resume !== undefined) {
      const allowed = new Set(['resume', 'epochs', 'threads', 'device', 'save-every', 'json', 'nproc', 'dist-timeout']);
      const other = [...given].filter((f) => !allowed.has(f));
      if (other.length) {
        throw new UsageError(`--resume goes on with the run's own settings: --${other[0]} cannot change; only --epochs +N, --threads, --device, --save-every, ` +
          '--json, --nproc and --dist-timeout can be given');
      }
      if (given.has('epochs') && typeof epochs !== 'string') throw new UsageError(`with --resume, --epochs takes +N (epochs more than the run had), got '${epochs}'`);
      // The batch is the step's over all processes, so a run goes on the same with any --nproc that splits it.
      if (num(v.nproc) > 1 && !process.env.VISIONTUNE_WORKER) {
        await launchRanks(v, given, num(v.nproc), null);
        return;
      }
      await resumeCommand({
        resume: str(v.resume), more: typeof epochs === 'string' ? Number(epochs.slice(1)) : undefined, threads: v.threads as number | undefined,
        device: given.has('device') ? str(v.device) : undefined,
        saveEvery: num(v['save-every']), json: v.json as string | undefined, distTimeout: num(v['dist-timeout']),
      }, out);
      return;
    }
    if (typeof epochs === 'string') throw new UsageError(`--epochs ${epochs} adds epochs to a run: give --resume RUN_DIR`);
    const progressive = v.progressive === undefined ? null : parseProgressive(str(v.progressive), given.has('size') ? num(v.size) : null, num(v['item-size']));
    const world = num(v.nproc) * num(v.nnodes);
    const distOnly = ['sync-bn', 'master-addr', 'master-port', 'node-rank', 'dist-timeout'].find((f) => given.has(f));
    if (world === 1 && distOnly) throw new UsageError(`--${distOnly} is for training on several processes: give --nproc N (N > 1) or --nnodes M`);
    if (world > 1 && !process.env.VISIONTUNE_WORKER) {
      await launchRanks(v, given, world, positionals[0]);
      return;
    }
    await withDownloadProgress((onProgress) => trainCommand({
      data: positionals[0], arch: str(v.arch), weights: str(v.weights), lr: v.lr as number | 'auto', json: v.json as string | undefined,
      precision: v.precision as PrecisionChoice, device: str(v.device), memoryFormat: v['memory-format'] as 'channels_last' | 'nchw', balance: v.balance as 'none' | 'weights' | 'sampler', dedupe: Boolean(v.dedupe),
      out: v.out as string | undefined, existOk: Boolean(v['exist-ok']), saveEvery: num(v['save-every']), labelCheck: num(v['label-check']),
      epochs, freezeEpochs: num(v['freeze-epochs']), size: progressive ? progressive[1] : num(v.size), earlyStop: num(v['early-stop']), ...dataArgs(v),
      frozenBn: Boolean(v['frozen-bn']), progressive: progressive ?? undefined,
      nproc: num(v.nproc), nnodes: num(v.nnodes), syncBn: Boolean(v['sync-bn']), distTimeout: num(v['dist-timeout']),
    }, out, onProgress));
  },
  'lr-find': async ({ values: v, positionals }, out) => {
    const { lrFindCommand } = await import('./inspect.js');
    await withDownloadProgress((onProgress) => lrFindCommand({
      data: positionals[0], arch: str(v.arch), weights: str(v.weights), out: v.out as string | undefined, size: num(v.size), device: str(v.device),
      precision: v.precision as PrecisionChoice, ...dataArgs(v),
    }, out, onProgress));
  },
  check: async ({ values: v, positionals }, out) => {
    const { checkCommand } = await import('./check.js');
    await withDownloadProgress((onProgress) => checkCommand({
      data: positionals[0], itemSize: num(v['item-size']), validPct: num(v['valid-pct']), seed: num(v.seed), labelCheck: num(v['label-check']),
      arch: str(v.arch), weights: str(v.weights), size: num(v.size), bs: num(v.bs), threads: v.threads as number | undefined, json: v.json as string | undefined,
    }, out, onProgress));
  },
  interpret: async ({ values: v, positionals }, out) => {
    const { interpretCommand } = await import('./inspect.js');
    // The split defaults to the one the model file records: only what was given overrides it.
    await interpretCommand({
      model: positionals[0], data: positionals[1], json: v.json as string | undefined, bs: num(v.bs), threads: v.threads as number | undefined,
      validPct: v['valid-pct'] as number | undefined, seed: v.seed as number | undefined, out: v.out as string | undefined,
    }, out);
  },
  export: async ({ values: v, positionals }, out) => {
    const { exportCommand } = await import('./export.js');
    await withDownloadProgress((onProgress) => exportCommand({
      model: positionals[0], format: 'onnx', out: v.out as string | undefined, opset: num(v.opset), preprocess: Boolean(v.preprocess),
      data: v.data as string | undefined, weights: v.weights as string | undefined, threads: v.threads as number | undefined, web: v.web as string | undefined,
    }, out, onProgress));
  },
  serve: async ({ values: v, positionals }, out) => {
    const { serveCommand } = await import('./serve.js');
    await serveCommand({
      model: positionals[0], host: str(v.host), port: num(v.port), threads: v.threads as number | undefined, device: str(v.device),
      maxBatch: num(v['max-batch']), maxWaitMs: num(v['max-wait-ms']), maxQueue: num(v['max-queue']),
      maxBodyBytes: Math.round(num(v['max-body-mb']) * 1024 * 1024), maxPixels: Math.round(num(v['max-megapixels']) * 1e6),
      requestTimeoutMs: num(v['request-timeout-ms']),
    }, out);
  },
  report: async ({ positionals }, out) => {
    const { buildReport } = await import('../run/report.js');
    out(`Wrote ${await buildReport(positionals[0])}`);
  },
  predict: async ({ values: v, positionals }, out) => {
    const { predictCommand } = await import('./predict.js');
    const [model, ...files] = positionals;
    await withDownloadProgress((onProgress) => predictCommand({
      model, files, weights: v.weights as string | undefined, topK: num(v['top-k']), tta: num(v.tta), json: Boolean(v.json),
      unknownBelow: v['unknown-below'] as number | undefined, device: str(v.device),
    }, out, onProgress));
  },
};

/**
 * `train --nproc N [--nnodes M …]`: checks what every rank would refuse alike, then starts this
 * machine's ranks (this command again, in worker processes) and waits for them.
 */
async function launchRanks(v: Values, given: ReadonlySet<string>, world: number, data: string | null): Promise<void> {
  const nnodes = num(v.nnodes);
  const nodeRank = num(v['node-rank']);
  if (nodeRank >= nnodes) throw new UsageError(`--node-rank ${nodeRank} is not one of 0…${nnodes - 1} (--nnodes ${nnodes})`);
  if (nnodes > 1 && !given.has('master-addr')) throw new UsageError("--nnodes > 1 needs --master-addr: machine 0's address, which the other machines reach");
  // A resumed run (data null) has its batch size in its settings: the ranks check it.
  if (data !== null) {
    if (num(v.bs) % world !== 0) throw new UsageError(batchSplitError(num(v.bs), world));
    // Batch norm needs two values per channel: each rank's own batch, unless they are synchronised.
    if (num(v.bs) / world < 2 && !v['sync-bn']) {
      throw new UsageError(`--bs ${num(v.bs)} over ${world} processes leaves 1 image each, too few for batch norm's statistics: give --bs ≥ ${2 * world}, or --sync-bn`);
    }
    // Rank 0, on machine 0, writes the run folder: there alone must --out be free.
    const { checkTrainOut } = await import('./train.js');
    if (nodeRank === 0) await checkTrainOut(v.out as string | undefined, Boolean(v['exist-ok']), data);
  }
  const { launch, portFree } = await import('../distributed/launch.js');
  const masterPort = v['master-port'] as number | undefined;
  if (nodeRank === 0 && masterPort !== undefined && !await portFree(masterPort)) {
    throw new UsageError(`--master-port ${masterPort} is in use on this machine (rank 0 serves the rendezvous there): give a free port`);
  }
  const code = await launch({
    argv: process.argv.slice(1), nproc: num(v.nproc), nnodes, nodeRank, masterAddr: str(v['master-addr']),
    masterPort: masterPort ?? (nnodes > 1 ? DEFAULT_MASTER_PORT : undefined), threads: v.threads as number | undefined,
  });
  if (code !== 0) throw new WorkersFailed(code);
}

/** Parses --progressive MIN:MAX; MAX is the validation size, so a --size given must equal it; both within the item size. */
function parseProgressive(text: string, size: number | null, itemSize: number): [number, number] {
  const m = /^(\d+):(\d+)$/.exec(text);
  const [min, max] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!m || min < 16 || min > max) throw new UsageError(`--progressive takes MIN:MAX in pixels with 16 ≤ MIN ≤ MAX, e.g. 128:224; got '${text}'`);
  if (size !== null && size !== max) throw new UsageError(`--progressive ${text} validates at ${max} px: --size ${size} says otherwise; drop --size or give it ${max}`);
  if (max > itemSize) throw new UsageError(`--progressive ${text}: MAX ${max} is larger than the presized images (--item-size ${itemSize}); give --item-size ≥ ${max}`);
  return [min, max];
}

const str = (v: Values[string]): string => String(v);
const num = (v: Values[string]): number => v as number;
const dataArgs = (v: Values) => ({ itemSize: num(v['item-size']), bs: num(v.bs), validPct: num(v['valid-pct']), seed: num(v.seed), threads: v.threads as number | undefined });

/** Runs `fn` with a download progress bar that shows only if a download happens. */
async function withDownloadProgress<T>(fn: (onProgress: (bytes: number, total: number | null) => void) => Promise<T>): Promise<T> {
  const { progressBar } = await import('../io/download.js');
  const bar = progressBar('downloading weights');
  let started = false;
  try {
    return await fn((bytes, total) => {
      started = true;
      bar(bytes, total);
    });
  } finally {
    if (started) bar.end();
  }
}

/** Runs the command line `argv` (without node and the script); returns the exit code. */
export async function main(argv: string[], out: Out = (s) => process.stdout.write(`${printable(s)}\n`)): Promise<number> {
  try {
    const [name, ...rest] = argv;
    if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
      out(helpText(VERSION));
      return 0;
    }
    if (name === '--version') {
      out(VERSION);
      return 0;
    }
    const c = command(name);
    // `visiontune train --help` is that command's help, whatever else the line holds.
    if (rest.includes('--help') || rest.includes('-h')) {
      out(helpText(VERSION, c));
      return 0;
    }
    await RUNNERS[c.name](parseCommand(c, rest), out);
    return 0;
  } catch (e) {
    return report(e);
  }
}

// Run when executed as the package's bin, not when imported by tests.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  // A reader that stops early (`visiontune train … | head`) is not an error worth a stack trace,
  // nor a reason to drop a training run: the output stops, the work goes on.
  let closed = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    closed = true;
  });
  main(process.argv.slice(2), (s) => { if (!closed) process.stdout.write(`${printable(s)}\n`); }).then((code) => { process.exitCode = code; });
}

