// Running the `visiontune` command in tests, and the shape of its errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

/** Runs the CLI with a private cache; returns exit code, stdout and stderr. */
export function visiontune(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, VISIONTUNE_OFFLINE: '1', ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Asserts a failure printed exactly one line, matching `message`, and no stack trace. */
export function assertOneLineError(r: { code: number; stderr: string }, code: number, message: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], /^visiontune: /);
  assert.match(lines[0], message);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}


/** What a capped run of the CLI gave: its exit code and output, its peak resident memory and its time. */
export interface CappedRun {
  code: number;
  stdout: string;
  stderr: string;
  rssMb: number;
  ms: number;
}

/**
 * Runs the CLI under an address-space cap (`ulimit -v`, default 4 GiB: libtorch with its thread
 * pools alone maps 1.9 GB of address space here, little of it resident) and a time limit (default
 * 10 s); returns its exit code, output, peak RSS (the process's own maxRSS, printed at exit) and
 * wall time. A run killed by the time limit comes back with code −1.
 */
export function visiontuneCapped(args: string[], o: { memoryMb?: number; timeoutMs?: number; env?: Record<string, string>; unprivileged?: boolean } = {}): CappedRun {
  const script = `const { main } = await import(${JSON.stringify(new URL(`file://${BIN}`).href)});
process.on('exit', () => process.stderr.write('\\n@@RSS ' + process.resourceUsage().maxRSS + '\\n'));
process.exitCode = await main(process.argv.slice(1));`;
  const started = Date.now();
  // Permissions do not bind root: an unprivileged run drops to nobody (setpriv, util-linux) when the tests run as root.
  const drop = o.unprivileged && process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
  const r = spawnSync('bash', ['-c', `ulimit -v ${(o.memoryMb ?? 4096) * 1024}; exec "$0" "$@"`, ...drop, process.execPath, '--input-type=module', '-e', script, ...args], {
    encoding: 'utf8', timeout: o.timeoutMs ?? 10_000, env: { ...process.env, VISIONTUNE_OFFLINE: '1', ...o.env },
  });
  const ms = Date.now() - started;
  const m = /\n@@RSS (\d+)\n$/.exec(r.stderr ?? '');
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '').replace(/\n@@RSS \d+\n$/, ''), rssMb: m ? Number(m[1]) / 1024 : NaN, ms };
}

/** Asserts a capped run failed as a bad file should: one line naming `file` (and what), exit 1, under 600 MB and 10 s. */
export function assertRefused(r: CappedRun, file: string, message: RegExp): void {
  assertOneLineError(r, 1, message);
  assert.ok(r.stderr.includes(file), `the error names ${file}: ${r.stderr}`);
  assert.ok(r.rssMb < 600, `peak RSS ${r.rssMb.toFixed(0)} MB`);
  assert.ok(r.ms < 10_000, `${r.ms} ms`);
}
