// The command line, declared once: every command with its arguments and flags (type, default
// from the library constant it names, range, help). Parsing (node's util.parseArgs, strict),
// validation before any work, and the help text all come from this table. Nothing here loads
// libtorch or sharp: a bad flag fails in the time node takes to start.
import { parseArgs } from 'node:util';
import { statSync, accessSync, constants } from 'node:fs';
import path from 'node:path';
import { UsageError } from './errors.js';
import * as dataDefaults from '../data/defaults.js';
import * as learnerDefaults from '../learner/defaults.js';
import * as modelDefaults from '../models/defaults.js';
import * as distDefaults from '../distributed/defaults.js';

/** What a flag's value is. */
export type FlagKind = 'int' | 'number' | 'string' | 'bool';

export interface Flag {
  /** The flag without its dashes, kebab-case. */
  name: string;
  kind: FlagKind;
  /** The value's name in the help: N, X, FILE… */
  arg?: string;
  help: string;
  /** The default and the library constant it is (`module.NAME` or `module.NAME.field`), for the help and the tests. */
  default?: { value: number | string; constant: string };
  min?: number;
  max?: number;
  /** Values inside [min, max] the flag still refuses (--label-check 1: one fold leaves nothing to fit on). */
  exclude?: readonly number[];
  /** An int flag also takes `+N` (N ≥ 1), returned as the string '+N'. */
  relative?: boolean;
  /** The values a string flag accepts. */
  choices?: readonly string[];
  /** Words a number flag accepts besides numbers (`auto` for --lr), or a file flag besides files (`imagenet`, `none`). */
  words?: readonly string[];
  /** The value names a file that must exist (unless it is one of `words`). */
  existingFile?: boolean;
  /** The value names a file to write: its folder must exist and be writable, and it must not be a folder. */
  writableFile?: boolean;
  /** The value names a folder to write into: it, or the nearest folder above it that exists, must be writable. */
  writableDir?: boolean;
  /** How the error says what the flag expects, when the generic wording would not do. */
  expects?: string;
}

export interface Command {
  name: string;
  /** Positional arguments: names for the usage line; the last may take many values. */
  args: readonly string[];
  variadic?: boolean;
  /** What the command does, a line or a few. */
  summary: readonly string[];
  flags: readonly Flag[];
  /** What to say when the positionals are wrong. */
  argsError: string;
  /** A flag whose presence makes the positionals optional (train's --resume). */
  argsOptionalWith?: string;
}

const libraryConstants: Record<string, Record<string, unknown>> = { data: dataDefaults, learner: learnerDefaults, models: modelDefaults, distributed: distDefaults };

/** Returns the value of a library constant by its declared name (`learner.FINE_TUNE_DEFAULTS.baseLr`). */
export function constantValue(name: string): unknown {
  const [module, ...keys] = name.split('.');
  let v: unknown = libraryConstants[module];
  for (const k of keys) v = (v as Record<string, unknown> | undefined)?.[k];
  return v;
}

// A default taken from a library constant, by name, so the declaration cannot drift from it.
const from = (constant: string): Flag['default'] => ({ value: constantValue(constant) as number | string, constant });

const F = {
  arch: { name: 'arch', kind: 'string', arg: 'A', help: 'zoo architecture, one of visiontune models', default: from('models.DEFAULT_ARCH') },
  weights: {
    name: 'weights', kind: 'string', arg: 'W', help: 'imagenet (cached, or downloaded and verified), a .pth/.safetensors file (torchvision keys, or a model visiontune exported: its body), or none',
    default: from('models.DEFAULT_WEIGHTS'), words: ['imagenet', 'none'], existingFile: true,
  },
  predictWeights: {
    name: 'weights', kind: 'string', arg: 'W', help: "a zoo architecture's weights: imagenet (the default) or a .pth/.safetensors file",
    words: ['imagenet'], existingFile: true,
  },
  epochs: {
    name: 'epochs', kind: 'int', arg: 'N', help: 'unfrozen epochs; +N with --resume: N epochs more', default: from('learner.DEFAULT_EPOCHS'), min: 0,
    max: learnerDefaults.MAX_EPOCHS, relative: true,
  },
  freezeEpochs: { name: 'freeze-epochs', kind: 'int', arg: 'N', help: 'frozen epochs first', default: from('learner.FINE_TUNE_DEFAULTS.freezeEpochs'), min: 0, max: learnerDefaults.MAX_EPOCHS },
  lr: {
    name: 'lr', kind: 'number', arg: 'X', help: "base learning rate, or auto for lr_find's valley", default: from('learner.FINE_TUNE_DEFAULTS.baseLr'),
    min: 1e-12, words: ['auto'],
  },
  size: { name: 'size', kind: 'int', arg: 'N', help: 'training image size in pixels', default: from('data.DEFAULT_SIZE'), min: 16, max: dataDefaults.MAX_IMAGE_SIZE },
  itemSize: { name: 'item-size', kind: 'int', arg: 'N', help: 'presizing size in pixels', default: from('data.DEFAULT_ITEM_SIZE'), min: 16, max: dataDefaults.MAX_IMAGE_SIZE },
  bs: { name: 'bs', kind: 'int', arg: 'N', help: 'batch size', default: from('data.DEFAULT_BS'), min: 1, max: dataDefaults.MAX_BS },
  validPct: {
    name: 'valid-pct', kind: 'number', arg: 'X', help: 'share of each class held out for validation; 0 trains on everything', default: from('data.DEFAULT_VALID_PCT'), min: 0, max: 0.9,
  },
  seed: { name: 'seed', kind: 'int', arg: 'N', help: 'split, shuffling and augmentation seed', default: from('data.DEFAULT_SEED'), min: 0, max: 0xffffffff },
  earlyStop: {
    name: 'early-stop', kind: 'int', arg: 'N', help: 'stop after N epochs without a better valid loss, keeping the best weights; 0 is off',
    default: from('learner.DEFAULT_PATIENCE'), min: 0, max: learnerDefaults.MAX_EPOCHS,
  },
  precision: {
    name: 'precision', kind: 'string', arg: 'P',
    help: 'fp32, bf16 autocast (on a CPU fast only with bf16 instructions: avx512_bf16, AMX), fp16 autocast with loss scaling (CUDA), or auto: bf16 on CUDA and where the CPU has them',
    default: from('learner.DEFAULT_PRECISION'), choices: ['fp32', 'bf16', 'fp16', 'auto'],
  },
  device: {
    name: 'device', kind: 'string', arg: 'D', help: 'cpu, cuda, cuda:N, or auto: CUDA when this libtorch has it and a GPU is visible',
    default: from('learner.DEFAULT_DEVICE'),
  },
  memoryFormat: {
    name: 'memory-format', kind: 'string', arg: 'F', help: 'channels_last (faster CPU convolutions) or nchw',
    default: from('learner.DEFAULT_MEMORY_FORMAT'), choices: ['channels_last', 'nchw'],
  },
  balance: {
    name: 'balance', kind: 'string', arg: 'B', help: 'none, weights (inverse-frequency class weights in the loss) or sampler (every class drawn equally often)',
    default: from('data.DEFAULT_BALANCE'), choices: ['none', 'weights', 'sampler'],
  },
  threads: { name: 'threads', kind: 'int', arg: 'N', help: 'libtorch threads; default every core, or VISIONTUNE_THREADS', min: 1, max: learnerDefaults.MAX_THREADS },
  out: { name: 'out', kind: 'string', arg: 'DIR', help: 'the run folder; default a new one each run: runs/train, runs/train2, …', writableDir: true },
  lrFindOut: { name: 'out', kind: 'string', arg: 'DIR', help: 'the output folder; default a new one: runs/lr_find, runs/lr_find2, …', writableDir: true },
  interpretOut: { name: 'out', kind: 'string', arg: 'DIR', help: 'where the pictures go; default a new one: runs/interpret, runs/interpret2, …', writableDir: true },
  format: { name: 'format', kind: 'string', arg: 'F', help: 'the file format', default: from('models.DEFAULT_EXPORT_FORMAT'), choices: ['onnx'] },
  onnxOut: { name: 'out', kind: 'string', arg: 'FILE', help: 'the .onnx file; default beside the model file (or <arch>.onnx here)', writableFile: true },
  opset: { name: 'opset', kind: 'int', arg: 'N', help: 'ONNX opset', default: from('models.DEFAULT_OPSET'), min: modelDefaults.MIN_OPSET, max: modelDefaults.MAX_OPSET },
  preprocess: { name: 'preprocess', kind: 'bool', help: 'put the preprocessing in the graph: it then takes uint8 RGB pixels [N, H, W, 3]' },
  verifyData: { name: 'data', kind: 'string', arg: 'DIR', help: 'images (a folder, files or a glob) to verify the export on; default generated ones' },
  exportWeights: {
    name: 'weights', kind: 'string', arg: 'W', help: "a zoo architecture's weights: imagenet (the default), a .pth/.safetensors file, or none",
    words: ['imagenet', 'none'], existingFile: true,
  },
  web: { name: 'web', kind: 'string', arg: 'DIR', help: 'also write a page that runs the model in the browser (index.html, model.onnx, onnxruntime-web)', writableDir: true },
  host: { name: 'host', kind: 'string', arg: 'H', help: 'the address to listen on', default: from('models.DEFAULT_HOST') },
  port: { name: 'port', kind: 'int', arg: 'N', help: 'the port (0: any free one)', default: from('models.DEFAULT_PORT'), min: 0, max: 65535 },
  maxBatch: { name: 'max-batch', kind: 'int', arg: 'N', help: 'images in one forward pass at most (1: no batching)', default: from('models.SERVE_DEFAULTS.maxBatch'), min: 1, max: 1024 },
  maxWaitMs: { name: 'max-wait-ms', kind: 'number', arg: 'MS', help: 'how long a request waits for others to batch with', default: from('models.SERVE_DEFAULTS.maxWaitMs'), min: 0, max: 10_000 },
  maxQueue: { name: 'max-queue', kind: 'int', arg: 'N', help: 'requests waiting at most; more get 503', default: from('models.SERVE_DEFAULTS.maxQueue'), min: 1, max: 1_000_000 },
  maxBodyMb: { name: 'max-body-mb', kind: 'number', arg: 'MB', help: 'request body size at most; more gets 413', default: from('models.SERVE_DEFAULTS.maxBodyMb'), min: 0.001, max: 1024 },
  maxMegapixels: { name: 'max-megapixels', kind: 'number', arg: 'MP', help: 'image size at most (from its header); more gets 413', default: from('models.SERVE_DEFAULTS.maxMegapixels'), min: 0.001, max: 1000 },
  requestTimeoutMs: { name: 'request-timeout-ms', kind: 'int', arg: 'MS', help: 'time a request may take; more gets 503', default: from('models.SERVE_DEFAULTS.requestTimeoutMs'), min: 1, max: 3_600_000 },
  existOk: { name: 'exist-ok', kind: 'bool', help: 'write into a given --out that already holds files' },
  resume: {
    name: 'resume', kind: 'string', arg: 'RUN_DIR',
    help: 'go on from the run folder\'s checkpoint with its own settings (no data argument); with --epochs +N, train a finished run N epochs more',
  },
  saveEvery: {
    name: 'save-every', kind: 'int', arg: 'N', help: 'also checkpoint every N training batches (0: at each epoch\'s end only)',
    default: from('learner.DEFAULT_SAVE_EVERY'), min: 0, max: 1_000_000,
  },
  jsonFile: { name: 'json', kind: 'string', arg: 'FILE', help: 'machine-readable results', writableFile: true },
  jsonOut: { name: 'json', kind: 'bool', help: 'JSON on stdout instead of text' },
  labelCheck: {
    name: 'label-check', kind: 'int', arg: 'K',
    help: "check the labels with K-fold predictions of a linear head on the pretrained body's features (one pass per image); 0 is off",
    default: from('data.DEFAULT_LABEL_CHECK'), min: 0, max: dataDefaults.MAX_LABEL_FOLDS, exclude: [1], expects: `must be 0 (off) or a number of folds from 2 to ${dataDefaults.MAX_LABEL_FOLDS}`,
  },
  nproc: {
    name: 'nproc', kind: 'int', arg: 'N', help: 'training processes on this machine, data-parallel (DDP over Gloo; --bs is split among all of them)',
    default: from('distributed.DEFAULT_NPROC'), min: 1, max: distDefaults.MAX_NPROC,
  },
  nnodes: { name: 'nnodes', kind: 'int', arg: 'M', help: 'machines training together (the same command on each, with its --node-rank)', default: from('distributed.DEFAULT_NNODES'), min: 1, max: 65536 },
  nodeRank: { name: 'node-rank', kind: 'int', arg: 'R', help: "this machine's index, 0 … M−1 (0 runs rank 0 and the rendezvous)", default: from('distributed.DEFAULT_NODE_RANK'), min: 0, max: 65535 },
  masterAddr: { name: 'master-addr', kind: 'string', arg: 'H', help: "machine 0's address, which the others reach", default: from('distributed.DEFAULT_MASTER_ADDR') },
  masterPort: {
    name: 'master-port', kind: 'int', arg: 'P', help: `machine 0's rendezvous port (default: a free one on one machine, ${distDefaults.DEFAULT_MASTER_PORT} with --nnodes)`,
    min: 1, max: 65535,
  },
  frozenBn: {
    name: 'frozen-bn', kind: 'bool',
    help: "freeze the body's batch norm too in the frozen epochs (statistics and parameters): a frozen step costs a forward pass of the body (random weights' batch norm, with no statistics to freeze, trains as without it)",
  },
  progressive: {
    name: 'progressive', kind: 'string', arg: 'MIN:MAX',
    help: 'progressive resizing: training images grow from MIN to MAX px over the epochs, augmentation with them; validation at MAX (the --size)',
  },
  syncBn: { name: 'sync-bn', kind: 'bool', help: "with --nproc: batch-norm statistics over every process's batch (SyncBatchNorm), not each process's own" },
  distTimeout: {
    name: 'dist-timeout', kind: 'number', arg: 'S', help: 'seconds a rendezvous or a collective may wait for the other processes', default: from('distributed.DEFAULT_DIST_TIMEOUT_S'),
    min: 1, max: 86_400,
  },
  dedupe: { name: 'dedupe', kind: 'bool', help: 'leave out copies inside training and validation/test images copied in training (leaks)' },
  splitValidPct: { name: 'valid-pct', kind: 'number', arg: 'X', help: 'validation share; default the one the model file records', min: 0, max: 0.9 },
  splitSeed: { name: 'seed', kind: 'int', arg: 'N', help: 'split seed; default the one the model file records', min: 0, max: 0xffffffff },
  unknownBelow: {
    name: 'unknown-below', kind: 'number', arg: 'P', help: 'answer unknown when no class reaches this probability (after the model\'s calibration)', min: 0, max: 1,
  },
  topK: { name: 'top-k', kind: 'int', arg: 'K', help: 'classes per image', default: from('learner.DEFAULT_TOP_K'), min: 1, max: 1000, expects: 'must be a positive integer' },
  tta: {
    name: 'tta', kind: 'int', arg: 'N', help: "augmented passes averaged with the plain one, as fastai's tta", default: from('learner.DEFAULT_TTA'),
    min: 0, max: learnerDefaults.MAX_TTA, expects: `must be a whole number of passes from 0 (none) to ${learnerDefaults.MAX_TTA}`,
  },
} satisfies Record<string, Flag>;

/** Every command, in the order the help lists them. */
export const COMMANDS: readonly Command[] = [
  {
    name: 'models', args: [], flags: [F.jsonOut], argsError: 'models takes no arguments',
    summary: ['the architectures, their size and ImageNet accuracy, and whether their weights are cached'],
  },
  {
    name: 'train', args: ['data'], argsError: 'train: give one data folder (class folders inside), or --resume RUN_DIR', argsOptionalWith: 'resume',
    summary: [
      'fine-tune on a folder of class folders: data/<class>/…, or split folders data/train/<class>/… with data/valid',
      '(or val, validation) and/or data/test (held out, evaluated at the end); prints the data summary, the fastai',
      'table per epoch, the interpretation; writes a run folder: settings.json, results.csv, best.safetensors,',
      'last.safetensors, checkpoint.safetensors, the pictures and report.html. Ctrl-C saves and stops (exit 130):',
      'visiontune train --resume RUN_DIR goes on; --resume RUN_DIR --epochs +N trains a finished run N epochs more',
    ],
    flags: [F.arch, F.weights, F.epochs, F.freezeEpochs, F.lr, F.size, F.itemSize, F.bs, F.validPct, F.seed, F.earlyStop, F.precision,
      F.memoryFormat, F.frozenBn, F.progressive, F.balance, F.dedupe, F.labelCheck, F.device, F.threads, F.out, F.existOk, F.resume, F.saveEvery, F.jsonFile,
      F.nproc, F.nnodes, F.nodeRank, F.masterAddr, F.masterPort, F.syncBn, F.distTimeout],
  },
  {
    name: 'lr-find', args: ['data'], argsError: 'lr-find: give one data folder (class folders inside)',
    summary: ["fastai's learning-rate finder: the four suggestions, lr_find.csv and lr_find.png in --out"],
    flags: [F.arch, F.weights, F.size, F.itemSize, F.bs, F.validPct, F.seed, F.precision, F.device, F.threads, F.lrFindOut],
  },
  {
    name: 'check', args: ['data'], argsError: 'check: give one data folder (class folders inside)',
    summary: [
      'the data checks alone, before training: the layout, the images per split and class, the files passed over',
      'or skipped and why, imbalance, the copies and leaks among the images (see train --dedupe), and with',
      '--label-check K the images whose labels look wrong (--arch and --weights give the body whose features it uses)',
    ],
    flags: [F.itemSize, F.validPct, F.seed, F.labelCheck, F.arch, F.weights, F.size, F.bs, F.threads, F.jsonFile],
  },
  {
    name: 'interpret', args: ['model', 'data'], argsError: 'interpret: give an exported model file and a data folder',
    summary: [
      "an exported model on the data's validation split (by default the split its training held out, as the file",
      "records it), its images made as the model's own were (size and presizing from the file): confusion matrix,",
      'most confused, top losses, per-class precision/recall/F1 with advice; the pictures of a run (confusion matrices,',
      'per class, top losses) and report.html in --out',
    ],
    flags: [F.splitValidPct, F.splitSeed, F.bs, F.threads, F.interpretOut, F.jsonFile],
  },
  {
    name: 'export', args: ['model'], argsError: 'export: give a model (an exported .safetensors file, a run folder, or a zoo architecture)',
    summary: [
      'the model as an ONNX file, written from its own layers, with its classes, size and normalisation in the',
      "metadata; onnxruntime runs it on a batch before it is written and its probabilities must equal libtorch's",
      'within 1e-4 (else exit 1, nothing written)',
    ],
    flags: [F.format, F.onnxOut, F.opset, F.preprocess, F.verifyData, F.web, F.exportWeights, F.threads],
  },
  {
    name: 'serve', args: ['model'], argsError: 'serve: give a model (an exported .safetensors file or a run folder)',
    summary: [
      'the model over HTTP until Ctrl-C or SIGTERM (requests in flight finish): POST /predict (the image as the body or a',
      'multipart file; ?top_k=N) answers {predictions: [{label, index, prob}]} as predict --json, GET /health, GET /model, a page',
      'at /; concurrent requests are batched; each limit is answered with a JSON error naming it',
    ],
    flags: [F.host, F.port, F.maxBatch, F.maxWaitMs, F.maxQueue, F.maxBodyMb, F.maxMegapixels, F.requestTimeoutMs, F.device, F.threads],
  },
  {
    name: 'report', args: ['run'], argsError: 'report: give one run folder (as train writes it)',
    summary: ['rebuilds report.html in a run folder from its settings.json and results.json'],
    flags: [],
  },
  {
    name: 'predict', args: ['model', 'images'], variadic: true,
    argsError: 'predict: give a model (a zoo architecture or an exported .safetensors file) and images',
    summary: [
      'the top classes of each image; <model> is a zoo architecture (ImageNet classes) or a model file visiontune',
      'exported (or a run folder: its best.safetensors); <images> are files, folders (searched recursively) or quoted',
      'glob patterns; a file that cannot be used gets a "skipped" line with the reason, and the exit code is 1 only',
      'when nothing could be predicted (--json: {predictions, skipped})',
    ],
    flags: [F.predictWeights, F.topK, F.tta, F.unknownBelow, F.device, F.jsonOut],
  },
];

/** Returns the command declared under `name`, or throws the usage error that names the commands. */
export function command(name: string): Command {
  const c = COMMANDS.find((x) => x.name === name);
  if (!c) throw new UsageError(`unknown command '${name}'; run visiontune --help for the commands`);
  return c;
}

const show = (v: number | string): string => (typeof v === 'number' && v !== 0 && Math.abs(v) < 0.01 ? v.toExponential() : String(v));

/** Returns the help text: every command, or only `only`, generated from the declarations. */
export function helpText(version: string, only?: Command): string {
  const lines: string[] = [];
  if (!only) lines.push(`visiontune ${version}: fine-tune a pretrained image classifier on your own images`, '');
  lines.push('usage: visiontune <command> [options]', '', only ? 'command:' : 'commands:');
  for (const c of only ? [only] : COMMANDS) {
    const usage = [c.name, ...c.args.map((a, i) => `<${a}>${c.variadic && i === c.args.length - 1 ? '…' : ''}`)].join(' ');
    lines.push(`  ${usage}`, ...c.summary.map((s) => `      ${s}`));
    for (const f of c.flags) {
      const name = `--${f.name}${f.arg ? ` ${f.arg}` : ''}`;
      const extra = f.choices && !f.help.includes(f.choices[0]) ? ` (${f.choices.join(', ')})` : '';
      const dflt = f.default && f.default.value !== '' ? ` (default ${show(f.default.value)})` : '';
      lines.push(`    ${name.padEnd(22)}${f.help}${extra}${dflt}`);
    }
  }
  lines.push('', 'options for every command:', `    ${'-h, --help'.padEnd(22)}this text`, `    ${'--version'.padEnd(22)}the version`, '',
    'Errors print one line and exit 1 (2 for a bad command line); VISIONTUNE_DEBUG=1 adds the stack.');
  return lines.join('\n');
}

/** A parsed command line: each flag's value (defaults filled in; absent flags without one are undefined) and the positionals. */
export interface Parsed {
  values: Record<string, number | string | boolean | undefined>;
  /** The flags given on the command line, as opposed to defaults. */
  given: Set<string>;
  positionals: string[];
}

/** Returns the command's arguments parsed and checked: types, ranges, choices, files. Throws a UsageError on the first bad one. */
export function parseCommand(c: Command, argv: readonly string[]): Parsed {
  const options = Object.fromEntries(c.flags.map((f) => [f.name, { type: f.kind === 'bool' ? 'boolean' : 'string' } as const]));
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: c.args.length > 0, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const given = new Set(Object.keys(parsed.values));
  const values: Parsed['values'] = {};
  for (const f of c.flags) {
    const raw = parsed.values[f.name] as string | boolean | undefined;
    values[f.name] = raw === undefined ? f.default?.value : typeof raw === 'boolean' ? raw : checkValue(f, raw);
  }
  const n = parsed.positionals.length;
  const optional = c.argsOptionalWith !== undefined && given.has(c.argsOptionalWith);
  if (optional ? n !== 0 : c.variadic ? n < c.args.length - 1 : n !== c.args.length) {
    throw new UsageError(optional ? `--${c.argsOptionalWith} takes the data folder from the run's settings: give no data argument` : c.argsError);
  }
  return { values, given, positionals: parsed.positionals };
}

/** Returns the flag's value as its kind, or throws a UsageError that names the flag, what it expects and what it got. */
export function checkValue(f: Flag, raw: string): number | string {
  const flag = `--${f.name}`;
  if (f.words?.includes(raw)) return raw;
  if (f.relative && /^\+\d+$/.test(raw)) {
    const n = Number(raw.slice(1));
    if (n < 1 || (f.max !== undefined && n > f.max)) throw new UsageError(`${flag} ${raw}: N in +N must be from 1 to ${f.max}`);
    return raw;
  }
  if (f.kind === 'int' || f.kind === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || (f.kind === 'int' && !Number.isInteger(n)) ||
      (f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max) || f.exclude?.includes(n)) {
      const range = [f.min !== undefined ? `≥ ${f.min}` : '', f.max !== undefined ? `≤ ${f.max}` : ''].filter(Boolean).join(' and ');
      const words = f.words ? ` or ${f.words.join(' or ')}` : '';
      throw new UsageError(`${flag} ${f.expects ?? `expects ${f.kind === 'int' ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}${words}`}, got '${raw}'`);
    }
    return n;
  }
  if (f.choices && !f.choices.includes(raw)) throw new UsageError(`${flag} expects ${f.choices.join(' or ')}, got '${raw}'`);
  const stat = (p: string) => { try { return statSync(p); } catch { return null; } };
  if (f.existingFile && !stat(raw)?.isFile()) {
    const what = stat(raw) ? 'not a regular file' : 'no such file';
    throw new UsageError(`${flag} ${raw}: ${what}${f.words ? ` (or give ${f.words.join(' or ')})` : ''}`);
  }
  if (f.writableFile) {
    if (stat(raw)?.isDirectory()) throw new UsageError(`${flag} ${raw} is a folder; give a file name`);
    const dir = path.dirname(path.resolve(raw));
    if (!stat(dir)?.isDirectory()) throw new UsageError(`${flag} ${raw}: the folder ${dir} does not exist`);
    if (!writable(dir)) throw new UsageError(`${flag} ${raw}: the folder ${dir} is not writable`);
  }
  if (f.writableDir) {
    let dir = path.resolve(raw);
    while (!stat(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    if (!stat(dir)?.isDirectory()) throw new UsageError(`${flag} ${raw}: ${dir} is not a folder`);
    if (!writable(dir)) throw new UsageError(`${flag} ${raw}: the folder ${dir} is not writable`);
  }
  return raw;
}

const writable = (dir: string): boolean => {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
};
