// --precision: auto picks bf16 only where the CPU has bf16 instructions (the flag reader is given
// here, as a mock); and a bf16 fine-tune reaches the fp32 one's error within a stated bound.
import test from 'node:test';
import assert from 'node:assert/strict';
import { choosePrecision, cpuFlags } from '../../src/learner/precision.js';
import { tinyLearner } from '../helpers/tiny-learner.js';

const SAPPHIRE_RAPIDS = new Set(['avx2', 'avx512f', 'avx512_bf16', 'amx_tile', 'amx_bf16', 'amx_int8']);
const ZEN_4 = new Set(['avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16']);
const ZEN_3 = new Set(['avx2', 'fma', 'sse4_2']);
const ICE_LAKE = new Set(['avx2', 'avx512f', 'avx512_vnni']);

test('--precision auto: bf16 with avx512_bf16 or amx_bf16 (or CUDA), fp32 without; the reason says which', () => {
  assert.deepEqual(choosePrecision('auto', { flags: SAPPHIRE_RAPIDS }), { precision: 'bf16', reason: 'auto: this CPU has amx_bf16 and avx512_bf16' });
  assert.deepEqual(choosePrecision('auto', { flags: ZEN_4 }), { precision: 'bf16', reason: 'auto: this CPU has avx512_bf16' });
  for (const flags of [ZEN_3, ICE_LAKE, new Set<string>()]) {
    assert.deepEqual(choosePrecision('auto', { flags }), { precision: 'fp32', reason: 'auto: this CPU has no bf16 instructions (avx512_bf16, amx_bf16)' });
  }
  assert.equal(choosePrecision('auto', { flags: ZEN_3, cuda: true }).precision, 'bf16');
  // Explicit choices stand; bf16 without the instructions says what it costs.
  assert.equal(choosePrecision('fp32', { flags: SAPPHIRE_RAPIDS }).precision, 'fp32');
  const slow = choosePrecision('bf16', { flags: ZEN_3 });
  assert.equal(slow.precision, 'bf16');
  assert.match(slow.reason, /no bf16 instructions .* slow reference kernels/);
  // This machine's flags are read from /proc/cpuinfo.
  const here = cpuFlags();
  assert.ok(here.size === 0 || here.has('sse2') || here.has('fp'), 'a real flag list');
});

test('a bf16 autocast fine-tune reaches the fp32 error within 0.1 on the same data and seed', async (t) => {
  const errors: Record<string, number> = {};
  for (const bf16 of [false, true]) {
    const learn = tinyLearner({ bf16 }, { torch: 1, train: 2, valid: 3, shuffle: 4 });
    await learn.fitOneCycle(12, 3e-2);
    errors[bf16 ? 'bf16' : 'fp32'] = learn.history[learn.history.length - 1].error_rate;
  }
  assert.ok(errors.fp32 < 0.3, `the fp32 run learns (${errors.fp32})`);
  assert.ok(Math.abs(errors.bf16 - errors.fp32) <= 0.1, `bf16 error ${errors.bf16}, fp32 ${errors.fp32}`);
  t.diagnostic(`error fp32 ${errors.fp32}, bf16 ${errors.bf16}`);
});
