// Acceptance (issue 12, the command line declared once): the help comes from the declarations,
// every declared default is the library constant it names and the library uses that constant,
// and every flag's bad value fails in one line with exit 2 before any data is read.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { COMMANDS, constantValue, helpText, type Flag } from '../../src/cli/spec.js';
import { DEFAULT_BS, DEFAULT_SIZE, DEFAULT_SEED, DEFAULT_VALID_PCT, DEFAULT_ITEM_SIZE } from '../../src/data/defaults.js';
import { ImageLoader } from '../../src/data/loader.js';
import { presize } from '../../src/data/presize.js';
import { splitByValidPct } from '../../src/data/sources.js';
import { VERSION } from '../../src/version.js';
import { visiontune, assertOneLineError } from '../helpers/cli.js';

test('issue 12: every declared default is the library constant it names, and the help shows it', () => {
  const help = helpText(VERSION);
  for (const c of COMMANDS) {
    assert.ok(help.includes(`  ${c.name}`), `${c.name} is in the help`);
    for (const f of c.flags) {
      assert.match(help, new RegExp(`--${f.name}\\b`), `--${f.name} is in the help`);
      if (!f.default) continue;
      const value = constantValue(f.default.constant);
      assert.notEqual(value, undefined, `${c.name} --${f.name}: no library constant ${f.default.constant}`);
      assert.equal(f.default.value, value, `${c.name} --${f.name} defaults to ${f.default.constant}`);
      const shown = typeof value === 'number' && value !== 0 && value < 0.01 ? value.toExponential() : String(value);
      assert.ok(helpText(VERSION, c).includes(`(default ${shown})`), `${c.name} --${f.name}'s help shows ${shown}`);
    }
  }
});

test('issue 12: the library itself defaults to the constants the flags name', async () => {
  const loader = new ImageLoader(await presize([], []), [], []);
  assert.deepEqual([loader.bs, loader.size], [DEFAULT_BS, DEFAULT_SIZE]);
  assert.equal((await presize([], [])).itemSize, DEFAULT_ITEM_SIZE);
  const items = Array.from({ length: 20 }, (_, i) => ({ path: `/x/${i % 2 ? 'a' : 'b'}/${i}.jpg`, label: i % 2 ? 'a' : 'b' }));
  assert.deepEqual(splitByValidPct(items, DEFAULT_VALID_PCT, DEFAULT_SEED).valid.length, 4);
});

// A value of the wrong kind, or out of range, for every flag that takes one.
function badValues(f: Flag): string[] {
  if (f.kind === 'int') return ['many', '1.5', String((f.min ?? 0) - 1)];
  if (f.kind === 'number') return ['lots', ...(f.min !== undefined ? [String(f.min - 1)] : []), ...(f.max !== undefined ? [String(f.max + 1)] : [])];
  if (f.choices) return ['nonsense'];
  if (f.existingFile) return ['/no/such/file.pth'];
  if (f.writableFile) return ['/no/such/folder/out.json'];
  return [];
}

test('issue 12: every flag\'s bad value is one line and exit 2, under a second, before any data is read', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-spec-'));
  try {
    // The data folder does not exist: reaching it would be exit 1 with its name, not exit 2.
    const nowhere = path.join(dir, 'no-data');
    mkdirSync(path.join(dir, 'a-folder'));
    const positionals: Record<string, string[]> = {
      models: [], train: [nowhere], 'lr-find': [nowhere], check: [nowhere], interpret: [path.join(dir, 'no-model.safetensors'), nowhere],
      predict: ['resnet18', path.join(dir, 'no-image.jpg')], export: [path.join(dir, 'no-model.safetensors')], report: [nowhere], serve: [path.join(dir, 'no-model.safetensors')],
    };
    let cases = 0;
    for (const c of COMMANDS) {
      for (const f of c.flags) {
        for (const bad of badValues(f)) {
          const started = performance.now();
          const r = visiontune([c.name, ...positionals[c.name], `--${f.name}`, bad]);
          const ms = performance.now() - started;
          assertOneLineError(r, 2, new RegExp(`--${f.name}`));
          assert.ok(ms < 1000, `${c.name} --${f.name} ${bad}: ${ms.toFixed(0)} ms`);
          cases++;
        }
      }
    }
    assert.ok(cases > 40, `${cases} cases`);
    assertOneLineError(visiontune(['train', nowhere, '--json', path.join(dir, 'a-folder')]), 2, /--json .* is a folder/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
