// The large-block cache in front of libtorch's CPU allocator (native/src/large_blocks.cc): blocks of
// 32 MiB and up come back for the next request of their size instead of being mapped, faulted in
// and zeroed again, and go back to the kernel when stale, over the cap, or on emptyCpuCache().
// Smaller blocks come from glibc's heap, advised for transparent huge pages as it grows.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { F, cpuCacheStats, emptyCpuCache, full, manualSeed, randn, tidy, zeros } from '../../src/torch/index.js';
import { environmentProblems } from '../../src/torch/runtime.js';

const MB = 1 << 20;
const floats80MB = 20 * MB;  // 20 Mi float32s: an 80 MiB block, above glibc's largest mmap threshold

test('an 80 MiB tensor made and freed ten times faults its pages in once, not ten times', () => {
  zeros([floats80MB]).dispose();  // the first one maps and faults in
  const before = cpuCacheStats();
  const faults0 = process.resourceUsage().minorPageFault;
  const rss0 = process.memoryUsage.rss();
  for (let i = 0; i < 10; i++) zeros([floats80MB]).dispose();
  const faults = process.resourceUsage().minorPageFault - faults0;
  const grown = (process.memoryUsage.rss() - rss0) / MB;
  const after = cpuCacheStats();
  assert.equal(after.hits - before.hits, 10, 'every request after the first is served from the cache');
  // Without the cache each iteration faults its 20,480 pages in again (200,000 in all).
  assert.ok(faults < 2000, `${faults} minor page faults over ten 80 MiB tensors`);
  assert.ok(grown < 16, `RSS grew ${grown.toFixed(1)} MB`);
});

test('a block served again holds what the new op wrote, not what the freed tensor held', () => {
  tidy(() => {
    full([floats80MB], 7).dispose();
    const z = zeros([floats80MB]);
    assert.equal(z.sum().item(), 0);
    const o = full([floats80MB + 1000], 2);  // within an eighth of the freed block: reuses it
    assert.equal(o.sum().item(), 2 * (floats80MB + 1000));
  });
});

test('convolutions through oneDNN on blocks above 32 MiB match between memory formats', () => {
  // channels_last convolutions run in oneDNN (ideep), which takes and frees its own buffers through
  // the allocator's raw interface; the NCHW path runs libtorch's own kernels.
  manualSeed(0);
  tidy(() => {
    const x = randn([16, 32, 128, 128]);  // exactly 32 MiB, the smallest large block; the output 48 MiB
    const w = randn([48, 32, 3, 3]);
    const nchw = F.conv2d(x, w, null, { padding: 1 });
    const cl = F.conv2d(x.contiguous('channels_last'), w.contiguous('channels_last'), null, { padding: 1 });
    assert.ok(nchw.numel() * 4 > 32 * MB, 'the output is a large block');
    const diff = nchw.sub(cl).abs().max().item() as number;
    const scale = nchw.abs().max().item() as number;
    assert.ok(diff <= 1e-4 * scale, `channels_last differs by ${diff} (scale ${scale})`);
  });
});

test('idle blocks of a size nobody asks for any more go back to the kernel', () => {
  emptyCpuCache();
  const a = zeros([floats80MB]);
  a.dispose();
  assert.equal(cpuCacheStats().idleBytes, 80 * MB, 'the freed 80 MiB block waits for reuse');
  // A different size from here on (as when progressive resizing moves to a larger image): the
  // 80 MiB block is released after a few steps' worth of large requests (four times the most
  // blocks out at once, plus 16: fewer than 60 in this file).
  for (let i = 0; i < 100; i++) zeros([floats80MB * 2]).dispose();
  assert.equal(cpuCacheStats().idleBytes, 160 * MB, 'only the block in use is kept');
});

test('emptyCpuCache returns the idle blocks and says how many bytes', () => {
  zeros([floats80MB]).dispose();
  const idle = cpuCacheStats().idleBytes;
  assert.ok(idle >= 80 * MB);
  assert.equal(emptyCpuCache(), idle);
  assert.equal(cpuCacheStats().idleBytes, 0);
  assert.equal(cpuCacheStats().liveBytes, 0, 'no large tensor is alive here');
});

// As glibc.malloc.hugetlb=1 would: 4 KiB pages cost efficientnet_v2_s's training step 3-4 % on a
// Zen 5 EPYC in TLB misses over its 2.5 GB heap.
test('blocks under 32 MiB come from a heap on transparent huge pages, in a few mappings', (t) => {
  const thp = /\[(\w+)\]/.exec(readFileSafe('/sys/kernel/mm/transparent_hugepage/enabled'))?.[1];
  if (thp !== 'madvise' && thp !== 'always') return t.skip(`transparent huge pages are '${thp ?? 'absent'}' here`);
  const index = new URL('../../src/torch/index.js', import.meta.url).href;
  // 100 tensors of 3 MiB, kept alive, grow the heap by 300 MiB.
  const script = `import fs from 'node:fs';
import { zeros } from '${index}';
const huge = () => Number(/AnonHugePages:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'))[1]) / 1024;
const mappings = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').length;
zeros([1]);
const huge0 = huge(), mappings0 = mappings();
const kept = [];
for (let i = 0; i < 100; i++) kept.push(zeros([3 * 2 ** 18]));
console.log(JSON.stringify({ hugeMB: huge() - huge0, mappings: mappings() - mappings0 }));`;
  const run = (env: Record<string, string>): { hugeMB: number; mappings: number } => runModule(script, env).last as { hugeMB: number; mappings: number };
  const tuned = run({});
  t.diagnostic(`300 MiB of 3 MiB blocks: ${tuned.hugeMB} MiB on huge pages, ${tuned.mappings} more mappings`);
  assert.ok(tuned.hugeMB >= 200, `${tuned.hugeMB} MiB of 300 on huge pages`);
  // The heap grows 64 MiB at a time (M_TOP_PAD), each stretch one mapping.
  assert.ok(tuned.mappings <= 12, `${tuned.mappings} more mappings`);
  if (thp === 'madvise') {
    const plain = run({ VISIONTUNE_MALLOC: 'default' });
    assert.ok(plain.hugeMB < 50, `glibc as it is: ${plain.hugeMB} MiB on huge pages`);
  }
});

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Runs the ES module `script` in a child process with `env` added; the JSON of its last stdout line, and its stderr. */
function runModule(script: string, env: Record<string, string>): { last: unknown; stderr: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(r.status, 0, r.stderr);
  return { last: JSON.parse(r.stdout.trim().split('\n').pop()!), stderr: r.stderr };
}

/** The cache's stats after three 80 MiB tensors in a child process with `env`, and its stderr. */
function childWith(env: Record<string, string>): { stats: ReturnType<typeof cpuCacheStats>; stderr: string } {
  const index = new URL('../../src/torch/index.js', import.meta.url).href;
  const script = `import { zeros, cpuCacheStats } from '${index}';
for (let i = 0; i < 3; i++) zeros([${floats80MB}]).dispose();
console.log(JSON.stringify(cpuCacheStats()));`;
  const { last, stderr } = runModule(script, env);
  return { stats: last as ReturnType<typeof cpuCacheStats>, stderr };
}
const statsIn = (env: Record<string, string>): ReturnType<typeof cpuCacheStats> => childWith(env).stats;

test('VISIONTUNE_CPU_CACHE_MB sets the cap, 0 or VISIONTUNE_MALLOC=default turns the cache off', () => {
  assert.deepEqual(statsIn({ VISIONTUNE_CPU_CACHE_MB: '100' }), { idleBytes: 80 * MB, liveBytes: 0, capBytes: 100 * MB, hits: 2, misses: 1 });
  // Under a cap smaller than the block, a freed block goes straight back: every request maps anew.
  assert.deepEqual(statsIn({ VISIONTUNE_CPU_CACHE_MB: '50' }), { idleBytes: 0, liveBytes: 0, capBytes: 50 * MB, hits: 0, misses: 3 });
  for (const env of [{ VISIONTUNE_CPU_CACHE_MB: '0' }, { VISIONTUNE_MALLOC: 'default' }] as Record<string, string>[]) {
    assert.deepEqual(statsIn(env), { idleBytes: 0, liveBytes: 0, capBytes: 0, hits: 0, misses: 0 }, JSON.stringify(env));
  }
});

test('an unusable VISIONTUNE_* value is one line on stderr, and the default applies', () => {
  const defaultCap = cpuCacheStats().capBytes;
  for (const value of ['lots', '-8', '1e3', ' 8']) {
    const { stats, stderr } = childWith({ VISIONTUNE_CPU_CACHE_MB: value });
    assert.equal(stats.capBytes, defaultCap, `VISIONTUNE_CPU_CACHE_MB='${value}'`);
    assert.deepEqual(stderr.trim().split('\n'), [
      `visiontune: VISIONTUNE_CPU_CACHE_MB must be a whole number of MiB (0 turns the cache off), not '${value}'; using the default`,
    ]);
  }
  assert.equal(childWith({ VISIONTUNE_CPU_CACHE_MB: '100' }).stderr, '', 'a usable value says nothing');
  assert.deepEqual(environmentProblems({ VISIONTUNE_THREADS: '4', VISIONTUNE_MALLOC: 'default', VISIONTUNE_CPU_CACHE_MB: '0' }), []);
  assert.deepEqual(environmentProblems({ VISIONTUNE_THREADS: 'two', VISIONTUNE_MALLOC: 'jemalloc' }).map((p) => p.split(',')[0].split(' (')[0]), [
    'VISIONTUNE_THREADS must be a whole number of threads above 0',
    "VISIONTUNE_MALLOC takes only 'default'",
  ]);
});
