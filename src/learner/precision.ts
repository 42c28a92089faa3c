// Which arithmetic a training run uses: float32, or bfloat16 autocast (fastai's
// MixedPrecision for bf16) where the hardware has bf16 instructions — on CPU, AVX-512 BF16
// (avx512_bf16: Intel Cooper Lake and later, AMD Zen 4) or AMX (amx_bf16: Intel Sapphire
// Rapids); without them libtorch runs bf16 through slow reference kernels.
import { existsSync, readFileSync } from 'node:fs';

export type Precision = 'fp32' | 'bf16' | 'fp16';
export type PrecisionChoice = Precision | 'auto';

/** The CPU feature flags that make bf16 autocast fast. */
export const BF16_CPU_FLAGS = ['amx_bf16', 'avx512_bf16'] as const;

/** This CPU's feature flags, from /proc/cpuinfo (Linux); empty where it cannot be read. */
export function cpuFlags(): Set<string> {
  const text = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const line = /^flags\s*:\s*(.*)$/m.exec(text);
  return new Set(line ? line[1].trim().split(/\s+/) : []);
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
