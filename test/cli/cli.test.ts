// Contract tests of the `visiontune` command: output, exit codes, and one-line errors.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { visiontune, assertOneLineError } from '../helpers/cli.js';

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
