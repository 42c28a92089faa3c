// Contract tests of the `visiontune` command: output, exit codes, and one-line errors.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

test('visiontune models lists the zoo and what is cached', () => {
  const home = mkdtempSync(path.join(tmpdir(), 'vt-home-'));
  try {
    mkdirSync(path.join(home, 'weights'));
    writeFileSync(path.join(home, 'weights', 'resnet18-f37072fd.pth'), 'x');
    const r = visiontune(['models'], { VISIONTUNE_HOME: home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^efficientnet_v2_s\s+21\.5M\s+86 MB\s+84\.23%\s+384→384\s+not cached$/m);
    assert.match(r.stdout, /^resnet18\s+11\.7M.*\bcached$/m);
    const rows = JSON.parse(visiontune(['models', '--json'], { VISIONTUNE_HOME: home }).stdout) as { name: string; cached: boolean }[];
    assert.equal(rows.length, 10);
    assert.deepEqual(rows.filter((m) => m.cached).map((m) => m.name), ['resnet18']);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('help and version', () => {
  const help = visiontune(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: visiontune <command>/m);
  assert.match(visiontune(['--version']).stdout, /^\d+\.\d+\.\d+\n$/);
});

test('a bad command line is one line and exit code 2', () => {
  assertOneLineError(visiontune(['fly']), 2, /unknown command 'fly'/);
  assertOneLineError(visiontune(['models', '--colour']), 2, /Unknown option '--colour'/);
});
