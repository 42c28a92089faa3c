// Which arithmetic a training run uses: float32, or bfloat16 autocast (fastai's
// MixedPrecision for bf16) where the hardware has bf16 instructions — on CPU, AVX-512 BF16
// (avx512_bf16: Intel Cooper Lake and later, AMD Zen 4) or AMX (amx_bf16: Intel Sapphire
// Rapids); without them libtorch runs bf16 through slow reference kernels.
import { existsSync, readFileSync } from 'node:fs';

export type Precision = 'fp32' | 'bf16' | 'fp16';
export type PrecisionChoice = Precision | 'auto';

/** The CPU feature flags that make bf16 autocast fast. */
export const BF16_CPU_FLAGS = ['amx_bf16', 'avx512_bf16'] as const;

/**
 * Returns the first processor's fields in /proc/cpuinfo (Linux): 'flags', 'cpu family', 'model',
 * 'model name', … as written there; empty where it cannot be read.
 */
export function cpuInfo(): Map<string, string> {
  const text = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '' && fields.size > 0) break;  // a blank line ends the first processor
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return fields;
}

/** This CPU's feature flags, from cpuInfo() (or the fields given); empty where they cannot be read. */
export function cpuFlags(info: ReadonlyMap<string, string> = cpuInfo()): Set<string> {
  const line = info.get('flags');
  return new Set(line !== undefined ? line.split(/\s+/) : []);
}

/**
 * Resolves --precision: 'auto' takes bf16 on CUDA or where the CPU has one of BF16_CPU_FLAGS,
 * fp32 elsewhere; an explicit choice stands. Returns the precision and the reason, in words, for
 * the run's log. `flags` defaults to this CPU's (tests pass their own). Throws a TypeError for
 * fp16 without CUDA (libtorch's CPU autocast has no float16).
 */
export function choosePrecision(requested: PrecisionChoice, o: { cuda?: boolean; flags?: ReadonlySet<string> } = {}): { precision: Precision; reason: string } {
  const flags = o.flags ?? cpuFlags();
  const has = BF16_CPU_FLAGS.filter((f) => flags.has(f));
  if (requested === 'fp32') return { precision: 'fp32', reason: 'as asked (--precision fp32)' };
  if (requested === 'fp16') {
    if (!o.cuda) throw new TypeError('--precision fp16 needs a CUDA device (libtorch\'s CPU autocast has no float16): on the CPU use bf16 or auto');
    return { precision: 'fp16', reason: 'as asked (--precision fp16), with loss scaling' };
  }
  if (requested === 'bf16') {
    return { precision: 'bf16', reason: o.cuda || has.length ? 'as asked (--precision bf16)'
      : 'as asked, though this CPU has no bf16 instructions (avx512_bf16, amx_bf16): libtorch runs it through slow reference kernels' };
  }
  if (o.cuda) return { precision: 'bf16', reason: 'auto: CUDA' };
  return has.length
    ? { precision: 'bf16', reason: `auto: this CPU has ${has.join(' and ')}` }
    : { precision: 'fp32', reason: 'auto: this CPU has no bf16 instructions (avx512_bf16, amx_bf16)' };
}
