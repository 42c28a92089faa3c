#!/usr/bin/env node
// The `visiontune` command: parses the command line, runs a command, turns errors into one line.
import { parseArgs } from 'node:util';
import { UsageError, report } from './errors.js';
import { modelsCommand } from './models.js';
import { predictCommand } from './predict.js';
import { trainCommand, numberFlag, TRAIN_DEFAULTS } from './train.js';
import { lrFindCommand, interpretCommand } from './inspect.js';
import { progressBar } from '../io/download.js';
import { VERSION } from '../version.js';

const HELP = `visiontune ${VERSION}: fine-tune a pretrained image classifier on your own images

usage: visiontune <command> [options]

commands:
  models [--json]     the architectures, their size and ImageNet accuracy, and whether their weights are cached
  train <data> [options]
                      fine-tune on a folder of class folders: data/<class>/…, or split folders data/train/<class>/…
                      with data/valid (or val, validation) and/or data/test (held out, evaluated at the end);
                      data summary, the fastai table per epoch, interpretation, exported model
      --arch A          zoo architecture (default efficientnet_v2_s; see visiontune models)
      --weights W       imagenet (default: cached or downloaded and verified), a .pth/.safetensors file, or none
      --epochs N        unfrozen epochs (default 4)      --freeze-epochs N   frozen epochs first (default 1)
      --lr X            base learning rate, or auto for lr_find's valley (default 2e-3)
      --size N          training image size (default 224) --item-size N       presizing size (default 460)
      --bs N            batch size (default 32)           --valid-pct X       validation share (default 0.2; 0: train on everything)
      --seed N          split, shuffling and weights seed (default 42)
      --early-stop N    stop after N epochs without a better valid loss, keep the best weights (default off)
      --precision P     fp32 (default) or bf16 (autocast; fast only on CPUs with bf16 instructions)
      --memory-format F channels_last (default; faster CPU convolutions) or nchw
      --threads N       libtorch threads (default: every core)
      --out DIR         model.safetensors, history.csv (default visiontune-out)
      --json FILE       machine-readable results
  lr-find <data> [--arch --weights --size --item-size --bs --valid-pct --seed --threads --out DIR]
                      fastai's learning-rate finder: the four suggestions, lr_find.csv and lr_find.png
  interpret <model> <data> [--valid-pct --seed --bs --threads --json FILE]
                      an exported model on the data's validation split (by default the split its training
                      held out, as the file records it), its images made as the model's own were (size and
                      presizing from the file): confusion matrix, most confused, top losses, per-class
                      precision/recall/F1 with advice
  predict <model> <images…> [--weights imagenet|FILE] [--top-k K] [--tta N] [--json]
                      the top classes of each image; <model> is a zoo architecture (ImageNet classes,
                      with its ImageNet weights or a weights file) or a model file visiontune exported
                      (or the --out folder that holds it);
                      <images> are files, folders (searched recursively) or quoted glob patterns; a file
                      that cannot be used gets a "skipped" line with the reason, and the exit code is
                      1 only when nothing could be predicted (--json: {predictions, skipped});
                      --tta N averages N augmented passes with the plain one, as fastai's tta

options for every command:
  -h, --help          this text
  --version           the version

Errors print one line and exit 1 (2 for a bad command line); VISIONTUNE_DEBUG=1 adds the stack.`;

/** Runs the command line `argv` (without node and the script); returns the exit code. */
export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<number> {
  try {
    const [command, ...rest] = argv;
    // `visiontune train --help` is help too, whatever else the line holds.
    if (command === undefined || command === '-h' || command === '--help' || command === 'help' || rest.includes('--help') || rest.includes('-h')) {
      out(HELP);
      return 0;
    }
    if (command === '--version') {
      out(VERSION);
      return 0;
    }
    switch (command) {
      case 'models': {
        const { values } = parse(rest, { json: { type: 'boolean' } });
        modelsCommand(Boolean(values.json), out);
        return 0;
      }
      case 'train': {
        const { values, positionals } = parse(rest, {
          ...DATA_OPTIONS, ...MODEL_OPTIONS,
          epochs: { type: 'string', default: String(TRAIN_DEFAULTS.epochs) },
          'freeze-epochs': { type: 'string', default: String(TRAIN_DEFAULTS.freezeEpochs) },
          lr: { type: 'string', default: TRAIN_DEFAULTS.lr }, 'early-stop': { type: 'string', default: String(TRAIN_DEFAULTS.earlyStop) },
          precision: { type: 'string', default: TRAIN_DEFAULTS.precision },
          'memory-format': { type: 'string', default: TRAIN_DEFAULTS.memoryFormat },
          out: { type: 'string', default: TRAIN_DEFAULTS.out }, json: { type: 'string' },
        }, true);
        if (positionals.length !== 1) throw new UsageError('train: give one data folder (class folders inside)');
        const v = values as Record<string, string | undefined>;
        if (v.precision !== 'fp32' && v.precision !== 'bf16') throw new UsageError(`--precision expects fp32 or bf16, got '${v.precision}'`);
        const memoryFormat = v['memory-format'];
        if (memoryFormat !== 'channels_last' && memoryFormat !== 'nchw') {
          throw new UsageError(`--memory-format expects channels_last or nchw, got '${memoryFormat}'`);
        }
        const download = downloadProgress();
        try {
          await trainCommand({
            data: positionals[0], arch: v.arch!, weights: v.weights!, lr: v.lr!, precision: v.precision, memoryFormat, out: v.out!, json: v.json,
            epochs: numberFlag('--epochs', v.epochs, { integer: true, min: 0 }),
            freezeEpochs: numberFlag('--freeze-epochs', v['freeze-epochs'], { integer: true, min: 0 }),
            size: numberFlag('--size', v.size, { integer: true, min: 16 }),
            earlyStop: numberFlag('--early-stop', v['early-stop'], { integer: true, min: 0 }),
            ...dataFlags(v),
          }, out, download.onProgress);
        } finally {
          download.end();
        }
        return 0;
      }
      case 'lr-find': {
        const { values, positionals } = parse(rest, { ...DATA_OPTIONS, ...MODEL_OPTIONS, out: { type: 'string', default: TRAIN_DEFAULTS.out } }, true);
        if (positionals.length !== 1) throw new UsageError('lr-find: give one data folder (class folders inside)');
        const v = values as Record<string, string | undefined>;
        const download = downloadProgress();
        try {
          await lrFindCommand({ data: positionals[0], arch: v.arch!, weights: v.weights!, out: v.out!, ...dataFlags(v),
            size: numberFlag('--size', v.size, { integer: true, min: 16 }) }, out, download.onProgress);
        } finally {
          download.end();
        }
        return 0;
      }
      case 'interpret': {
        // No --item-size: the model file says how its images were presized.
        const { values, positionals } = parse(rest, { ...SPLIT_OPTIONS, json: { type: 'string' } }, true);
        if (positionals.length !== 2) throw new UsageError('interpret: give an exported model file and a data folder');
        const v = values as Record<string, string | undefined>;
        // The split defaults to the one the model file records: only what was given here overrides it.
        const given = (flag: string): boolean => rest.some((r) => r === flag || r.startsWith(`${flag}=`));
        const { validPct, seed, ...flags } = splitFlags(v);
        await interpretCommand({ model: positionals[0], data: positionals[1], json: v.json, ...flags,
          ...(given('--valid-pct') ? { validPct } : {}), ...(given('--seed') ? { seed } : {}) }, out);
        return 0;
      }
      case 'predict': {
        const { values, positionals } = parse(rest, {
          weights: { type: 'string' }, 'top-k': { type: 'string', default: '5' }, tta: { type: 'string', default: '0' }, json: { type: 'boolean' },
        }, true);
        const [model, ...files] = positionals;
        if (!model) throw new UsageError('predict: give a model (a zoo architecture or an exported .safetensors file) and images');
        const download = downloadProgress();
        try {
          await predictCommand({ model, files, weights: values.weights as string | undefined, topK: Number(values['top-k']), tta: Number(values.tta), json: Boolean(values.json) },
            out, download.onProgress);
        } finally {
          download.end();
        }
        return 0;
      }
      default:
        throw new UsageError(`unknown command '${command}'; run visiontune --help for the commands`);
    }
  } catch (e) {
    return report(e);
  }
}

// Flags every data-reading command shares: the split, the batch, the threads.
const SPLIT_OPTIONS = {
  bs: { type: 'string', default: String(TRAIN_DEFAULTS.bs) },
  'valid-pct': { type: 'string', default: String(TRAIN_DEFAULTS.validPct) }, seed: { type: 'string', default: String(TRAIN_DEFAULTS.seed) },
  threads: { type: 'string' },
} as const;

// ...and, for commands that presize the images themselves, the item size.
const DATA_OPTIONS = { ...SPLIT_OPTIONS, 'item-size': { type: 'string', default: String(TRAIN_DEFAULTS.itemSize) } } as const;

const MODEL_OPTIONS = {
  arch: { type: 'string', default: TRAIN_DEFAULTS.arch }, weights: { type: 'string', default: TRAIN_DEFAULTS.weights },
  size: { type: 'string', default: String(TRAIN_DEFAULTS.size) },
} as const;

function splitFlags(v: Record<string, string | undefined>): { bs: number; validPct: number; seed: number; threads?: number } {
  return {
    bs: numberFlag('--bs', v.bs, { integer: true, min: 1 }),
    validPct: numberFlag('--valid-pct', v['valid-pct'], { min: 0, max: 0.9 }),
    seed: numberFlag('--seed', v.seed, { integer: true, min: 0 }),
    threads: v.threads === undefined ? undefined : numberFlag('--threads', v.threads, { integer: true, min: 1 }),
  };
}

function dataFlags(v: Record<string, string | undefined>): ReturnType<typeof splitFlags> & { itemSize: number } {
  return { itemSize: numberFlag('--item-size', v['item-size'], { integer: true, min: 16 }), ...splitFlags(v) };
}

/** A download progress bar that shows only if a download happens. */
function downloadProgress(): { onProgress: (bytes: number, total: number | null) => void; end(): void } {
  const bar = progressBar('downloading weights');
  let started = false;
  return {
    onProgress: (bytes, total) => {
      started = true;
      bar(bytes, total);
    },
    end: () => { if (started) bar.end(); },
  };
}

type Options = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

/** parseArgs with its errors as UsageError and no stray positionals unless allowed. */
function parse<O extends Options>(args: string[], options: O, positionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals: positionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

// Run when executed as the package's bin, not when imported by tests.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  // A reader that stops early (`visiontune train … | head`) is not an error worth a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(process.exitCode ?? 0);
  });
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
