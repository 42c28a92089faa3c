#!/usr/bin/env node
// The `visiontune` command: parses the command line, runs a command, turns errors into one line.
import { parseArgs } from 'node:util';
import { UsageError, report } from './errors.js';
import { modelsCommand } from './models.js';
import { predictCommand } from './predict.js';
import { progressBar } from '../io/download.js';
import { VERSION } from '../version.js';

const HELP = `visiontune ${VERSION}: fine-tune a pretrained image classifier on your own images

usage: visiontune <command> [options]

commands:
  models [--json]     the architectures, their size and ImageNet accuracy, and whether their weights are cached
  predict <model> <images…> [--weights imagenet|FILE] [--top-k K] [--json]
                      the top classes of each image; <model> is a zoo architecture (ImageNet classes,
                      with its ImageNet weights or a weights file) or a model file visiontune exported

options for every command:
  -h, --help          this text
  --version           the version

Errors print one line and exit 1 (2 for a bad command line); VISIONTUNE_DEBUG=1 adds the stack.`;

/** Runs the command line `argv` (without node and the script); returns the exit code. */
export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
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
      case 'predict': {
        const { values, positionals } = parse(rest, {
          weights: { type: 'string' }, 'top-k': { type: 'string', default: '5' }, json: { type: 'boolean' },
        }, true);
        const [model, ...files] = positionals;
        if (!model) throw new UsageError('predict: give a model (a zoo architecture or an exported .safetensors file) and images');
        const download = downloadProgress();
        try {
          await predictCommand({ model, files, weights: values.weights as string | undefined, topK: Number(values['top-k']), json: Boolean(values.json) },
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
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
