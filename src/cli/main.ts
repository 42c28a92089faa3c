#!/usr/bin/env node
// The `visiontune` command: parses the command line, runs a command, turns errors into one line.
import { parseArgs } from 'node:util';
import { UsageError, report } from './errors.js';
import { modelsCommand } from './models.js';
import { VERSION } from '../version.js';

const HELP = `visiontune ${VERSION}: fine-tune a pretrained image classifier on your own images

usage: visiontune <command> [options]

commands:
  models [--json]     the architectures, their size and ImageNet accuracy, and whether their weights are cached

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
      default:
        throw new UsageError(`unknown command '${command}'; run visiontune --help for the commands`);
    }
  } catch (e) {
    return report(e);
  }
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
