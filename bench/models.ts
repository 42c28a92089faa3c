// The zoo benchmark: eval and train-step throughput (img/s, batch 16, 224 px) of
// efficientnet_v2_s and mobilenet_v2 in visiontune and in torchvision, on the same libtorch
// family and thread count, in fp32 and bf16 autocast, NCHW and channels_last. Each round of a
// configuration starts a fresh node process and a fresh Python process (neither inherits another
// configuration's heap), warms both up, then times their batches in lockstep, one side's batch
// then the other's (the side that goes first alternating), so both see the machine as it is at
// that moment: a shared host's speed here drifts by 2× within seconds. Each row prints the median
// of the rounds' ratios with their spread (min–max), so that one noisy round neither passes nor
// fails it, and the header prints the CPU and its ISA flags. The last line is
// `ratio <the smallest median visiontune ÷ torchvision ratio>`.
// Environment: BENCH_ARCHS, BENCH_PRECISIONS (fp32,bf16; bf16 only where the CPU has bf16
// instructions unless named), BENCH_FORMATS (nchw,channels_last), BENCH_MODES (eval,train),
// BENCH_WARMUP (3 batches), BENCH_STEPS (8 timed batches), BENCH_ROUNDS (3), BENCH_PY_MALLOC:
// 'default' (the default) runs PyTorch with glibc's allocator as users get it; 'same' gives
// glibc what it takes at start to match visiontune's allocator (blocks up to 32 MiB kept in the
// heap, as the addon's mallopt; the heap and the larger blocks on huge pages, the nearest glibc
// has to the addon's heap advice and large-block cache: see native/src/large_blocks.cc), so the
// rows compare the engines more nearly alone.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { F, autocast, manualSeed, noGrad, rand, randint, tidy, getNumThreads, cpuCacheStats, type Tensor } from '../src/torch/index.js';
import { AdamW } from '../src/optim/index.js';
import { zooEntry } from '../src/models/registry.js';
import { cpuFlags, cpuInfo, BF16_CPU_FLAGS } from '../src/learner/precision.js';

const PYTHON = process.env.VISIONTUNE_PYTHON ?? '/usr/bin/python3';
const pyScript = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'models.py');

interface Config {
  arch: string;
  precision: 'fp32' | 'bf16';
  format: 'nchw' | 'channels_last';
  mode: 'eval' | 'train';
}

const common = {
  threads: getNumThreads(), batch: 16, size: 224, classes: 10,
  warmup: Number(process.env.BENCH_WARMUP ?? 3), steps: Number(process.env.BENCH_STEPS ?? 8),
};
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const archs = (process.env.BENCH_ARCHS ?? 'efficientnet_v2_s,mobilenet_v2').split(',');
const formats = (process.env.BENCH_FORMATS ?? 'nchw,channels_last').split(',') as Config['format'][];
const modes = (process.env.BENCH_MODES ?? 'eval,train').split(',') as Config['mode'][];

// Without bf16 instructions libtorch emulates bf16 arithmetic, at a tenth of fp32's speed or
// less: those runs would take an hour and measure only the emulation, so they are opt-in there.
const info = cpuInfo();
const flags = cpuFlags(info);
const nativeBf16 = BF16_CPU_FLAGS.some((f) => flags.has(f));
const precisions = (process.env.BENCH_PRECISIONS ?? (nativeBf16 ? 'fp32,bf16' : 'fp32')).split(',') as Config['precision'][];

/**
 * The visiontune side of one configuration, in a child process: after its warm-up batches it
 * prints {"ready":true}, then times one batch for each line read from stdin and prints
 * {"seconds":s} for it, until stdin closes (the protocol of bench/models.py).
 */
async function visiontuneChild(c: Config): Promise<void> {
  manualSeed(0);
  const model = zooEntry(c.arch).build({ numClasses: common.classes });
  let x: Tensor = rand([common.batch, 3, common.size, common.size]);
  const y = randint(0, common.classes, [common.batch]);
  if (c.format === 'channels_last') {
    model.to({ memoryFormat: 'channels_last' });
    x = x.contiguous('channels_last');
  }
  const opt = new AdamW(model.parameters(), { lr: 1e-4 });
  const enabled = c.precision === 'bf16';
  model.train(c.mode === 'train');
  const step = (): number => tidy(() => {
    if (c.mode === 'eval') return noGrad(() => autocast(() => model.forward(x), { enabled }).float().sum().item());
    const loss = autocast(() => F.crossEntropy(model.forward(x), y), { enabled });
    opt.zeroGrad(true); // as models.py's zero_grad(set_to_none=True), and the learner's
    loss.backward();
    opt.step();
    return loss.item();
  });
  try {
    for (let i = 0; i < common.warmup; i++) step();
    console.log(JSON.stringify({ ready: true }));
    for await (const _ of readline.createInterface({ input: process.stdin })) {
      const start = performance.now();
      step();
      console.log(JSON.stringify({ seconds: (performance.now() - start) / 1000 }));
    }
  } finally {
    opt.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
  }
}

if (process.argv[2] === '--one') {
  await visiontuneChild(JSON.parse(process.argv[3]) as Config);
  process.exit(0);
}

const pyMalloc = process.env.BENCH_PY_MALLOC ?? 'default';
if (!['default', 'same'].includes(pyMalloc)) {
  console.error(`BENCH_PY_MALLOC must be default or same, not '${pyMalloc}'`);
  process.exit(2);
}
// glibc reads its tunables at start: the thresholds and top pad tuneAllocator() sets with mallopt
// in the addon, and huge pages for its heap and the blocks it maps.
const SAME_TUNABLES = `glibc.malloc.mmap_threshold=${32 << 20}:glibc.malloc.trim_threshold=${1 << 30}:glibc.malloc.top_pad=${64 << 20}:glibc.malloc.hugetlb=1`;
const pyEnv = pyMalloc === 'same' && !process.env.GLIBC_TUNABLES ? { ...process.env, GLIBC_TUNABLES: SAME_TUNABLES } : process.env;
const pyAllocator = process.env.GLIBC_TUNABLES ? `PyTorch and visiontune with GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES} (visiontune then leaves glibc's settings as they are)`
  : pyMalloc === 'same' ? `PyTorch with GLIBC_TUNABLES=${SAME_TUNABLES} (BENCH_PY_MALLOC=same)`
  : "PyTorch with glibc's default allocator (BENCH_PY_MALLOC=same changes it)";
const cache = cpuCacheStats();
const vtAllocator = cache.capBytes > 0 ? `visiontune with its large-block cache (up to ${(cache.capBytes / 2 ** 30).toFixed(1)} GiB idle)` : 'visiontune without its large-block cache';

/**
 * One side's child process for one configuration (bench/models.py, or this file with --one),
 * driven one timed batch at a time.
 */
class Side {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private readonly closed: Promise<unknown>;
  private stderr = '';

  constructor(private readonly name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(command, args, { env });
    this.child.stderr.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-4096); });
    this.child.stdin.on('error', () => {}); // a child that died has closed its stdin: its stderr says why
    this.closed = once(this.child, 'close');
    this.lines = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  /** The child's next JSON line; throws its last line of stderr if it ended instead. */
  private async next(): Promise<{ ready?: boolean; seconds?: number }> {
    for (;;) {
      const line = await this.lines.next();
      if (line.done) {
        await this.closed;
        throw new Error(`${this.name}: ${this.stderr.trim().split('\n').pop() || `exited with ${this.child.exitCode}`}`);
      }
      if (line.value.startsWith('{')) return JSON.parse(line.value);
    }
  }

  /** Resolves once the child has built its model and run its warm-up batches. */
  async ready(): Promise<void> {
    if (!(await this.next()).ready) throw new Error(`${this.name}: no ready line`);
  }

  /** Runs one batch in the child and returns the seconds it measured. */
  async time(): Promise<number> {
    this.child.stdin.write('step\n');
    return (await this.next()).seconds as number;
  }

  async close(): Promise<void> {
    this.child.stdin.end();
    await this.closed;
  }
}

const self = fileURLToPath(import.meta.url);
const sides = {
  visiontune: (c: Config) => new Side('visiontune', process.execPath, [...process.execArgv, self, '--one', JSON.stringify(c)]),
  torchvision: (c: Config) => new Side('torchvision', PYTHON, [pyScript, JSON.stringify({ ...common, ...c })], pyEnv),
};

/**
 * One round of a configuration: a fresh process per side, warmed up one after the other, then
 * `steps` batches each in lockstep, one side's batch then the other's (ABBA, so neither is
 * always first), so that both see the machine as it is at that moment. Returns each side's
 * images/s over its timed batches.
 */
async function round(c: Config, first: 'visiontune' | 'torchvision'): Promise<{ ours: number; theirs: number }> {
  const order = first === 'visiontune' ? ['visiontune', 'torchvision'] as const : ['torchvision', 'visiontune'] as const;
  const started: Side[] = [];
  const seconds = [0, 0];
  try {
    for (const name of order) {
      started.push(sides[name](c));
      await started[started.length - 1].ready();
    }
    for (let i = 0; i < common.steps; i++) {
      for (const k of i % 2 === 0 ? [0, 1] : [1, 0]) seconds[k] += await started[k].time();
    }
  } finally {
    await Promise.all(started.map((s) => s.close()));
  }
  const imgs = common.batch * common.steps;
  const [ours, theirs] = first === 'visiontune' ? seconds : [seconds[1], seconds[0]];
  return { ours: imgs / ours, theirs: imgs / theirs };
}

/** The median of numbers (the mean of the middle two for an even count). */
const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

// The family and model tell two CPUs of one brand name apart (AMD EPYC: family 25 is Zen 3/4, 26 is Zen 5).
const family = info.get('cpu family');
const cpuModel = `${os.cpus()[0]?.model ?? 'unknown CPU'}${family ? `, family ${family} model ${info.get('model')}` : ''}`;

const isa = ['avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16', 'amx_int8'].filter((f) => flags.has(f));
console.log(`zoo benchmark on ${cpuModel} (${isa.join(' ') || 'no AVX2'}): batch ${common.batch}, ${common.size} px, ${common.threads} threads, ` +
  `${common.steps} timed batches after ${common.warmup} warm-up, ${rounds} interleaved rounds, AdamW for training; ` +
  `${pyAllocator}; ${vtAllocator}`);
if (!nativeBf16 && !precisions.includes('bf16')) {
  console.log('bf16 autocast skipped: this CPU has no bf16 instructions (avx512_bf16, amx_bf16); BENCH_PRECISIONS=fp32,bf16 runs it anyway');
}
console.log('arch                precision  format         mode   visiontune  torchvision  ratio (median, min–max over rounds)');
let smallest = Infinity;
for (const arch of archs) {
  for (const precision of precisions) {
    for (const format of formats) {
      for (const mode of modes) {
        const c = { arch, precision, format, mode };
        // Each round runs both sides in lockstep, the side that goes first alternating; a round's ratio compares like with like.
        const ours: number[] = [];
        const theirs: number[] = [];
        let failed: string | null = null;
        for (let r = 0; r < rounds && !failed; r++) {
          try {
            const got = await round(c, r % 2 === 0 ? 'visiontune' : 'torchvision');
            ours.push(got.ours);
            theirs.push(got.theirs);
          } catch (e) {
            failed = (e as Error).message.split('\n').find((l) => l.trim()) ?? String(e);
          }
        }
        const row = `${arch.padEnd(18)}  ${precision.padEnd(9)}  ${format.padEnd(13)}  ${mode.padEnd(5)}  `;
        if (!failed) {
          const ratios = ours.map((o, i) => o / theirs[i]);
          const mid = median(ratios);
          smallest = Math.min(smallest, mid);
          console.log(`${row}${median(ours).toFixed(2).padStart(10)}  ${median(theirs).toFixed(2).padStart(11)}  ${mid.toFixed(3)} ` +
            `(${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)})`);
        } else {
          // A configuration libtorch cannot run (e.g. a bf16 backward kernel missing in 1.13) has no ratio.
          console.log(`${row}failed: ${failed}`);
        }
      }
    }
  }
}
console.log(`ratio ${smallest.toFixed(3)}`);
