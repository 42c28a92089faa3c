// The fuzz test's worker (run capped by fuzz.test.ts, not a test itself): loads seeded mutations
// of a valid .pth, .safetensors and exported model, and prints what each load gave as JSON.
import { writeFileSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { loadTorchCheckpoint, readSafetensors, CheckpointError } from '../../src/io/index.js';
import { loadModel, ModelFileError } from '../../src/learner/export.js';
import { seededRandom } from '../../src/data/random.js';

type Kind = 'pth' | 'safetensors' | 'model';
interface Tally { loaded: number; checkpointError: number; modelFileError: number; other: string[]; reasons: Record<string, number> }

// The byte where the interesting structure lives: a safetensors header, or a zip's central directory and local headers.
function structureEnd(kind: Kind, bytes: Buffer): number {
  if (kind === 'pth') return bytes.length;
  return Math.min(bytes.length, 8 + Number(bytes.readBigUInt64LE(0)));
}

/** Returns one seeded mutation of `bytes`: a bit flip, a truncation, a size-field edit or an overwritten span, mostly in the structure. */
function mutate(bytes: Buffer, kind: Kind, rand: () => number): Buffer {
  const out = Buffer.from(bytes);
  const end = structureEnd(kind, bytes);
  const at = (): number => Math.floor((rand() < 0.8 ? end : out.length) * rand());
  switch (Math.floor(rand() * 5)) {
    case 0: { const p = at(); out[p] ^= 1 << Math.floor(rand() * 8); return out; }
    case 1: return out.subarray(0, Math.floor(rand() * out.length));
    case 2: { // a size field: the safetensors header length, or a 32-bit zip field
      if (kind !== 'pth') out.writeBigUInt64LE(BigInt(Math.floor(rand() * 2 ** 40)), 0);
      else { const p = Math.min(out.length - 4, at()); out.writeUInt32LE(Math.floor(rand() * 2 ** 32), p); }
      return out;
    }
    case 3: { // a number in the JSON header replaced by a large or negative one
      const text = out.subarray(8, end).toString('latin1');
      const numbers = [...text.matchAll(/\d+/g)];
      if (kind === 'pth' || numbers.length === 0) { const p = at(); out[p] = Math.floor(rand() * 256); return out; }
      const m = numbers[Math.floor(rand() * numbers.length)];
      const value = [String(2 ** 53), '-1', '4294967297', '1e308', '0'][Math.floor(rand() * 5)];
      const edited = text.slice(0, m.index) + value + text.slice(m.index! + m[0].length);
      const header = Buffer.from(edited, 'latin1');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(header.length));
      return Buffer.concat([len, header, out.subarray(end)]);
    }
    default: { const p = at(); for (let i = 0; i < 16 && p + i < out.length; i++) out[p + i] = Math.floor(rand() * 256); return out; }
  }
}

const [, , dir, countArg, seedArg] = process.argv;
const count = Number(countArg);
const result: Record<Kind, Tally> = {} as Record<Kind, Tally>;
for (const kind of ['pth', 'safetensors', 'model'] as Kind[]) {
  const valid = readFileSync(path.join(dir, `valid.${kind === 'model' ? 'model.safetensors' : kind}`));
  const rand = seededRandom(Number(seedArg) + kind.length);
  const tally: Tally = { loaded: 0, checkpointError: 0, modelFileError: 0, other: [], reasons: {} };
  const scratch = path.join(dir, 'mutant.safetensors');
  for (let i = 0; i < count; i++) {
    const bytes = mutate(valid, kind, rand);
    if (process.env.FUZZ_TRACE && i % 100 === 0) process.stderr.write(`${kind} ${i} rss ${Math.round(process.memoryUsage.rss() / 1e6)} MB\n`);
    try {
      if (kind === 'pth') for (const t of loadTorchCheckpoint(bytes).values()) t.dispose();
      else if (kind === 'safetensors') for (const t of readSafetensors(bytes).tensors.values()) t.dispose();
      else {
        writeFileSync(scratch, bytes);
        loadModel(scratch).model.dispose();
      }
      tally.loaded++;
    } catch (e) {
      const msg = (e as Error).message;
      const clean = !msg.includes('\n') && msg.length < 600 && !/undefined|\[object /.test(msg);
      if (e instanceof CheckpointError && clean) {
        tally.checkpointError++;
        tally.reasons[e.reason] = (tally.reasons[e.reason] ?? 0) + 1;
      } else if (e instanceof ModelFileError && clean) {
        tally.modelFileError++;
      } else {
        tally.other.push(`${(e as Error).name}: ${msg.slice(0, 300)}`);
      }
    }
  }
  rmSync(scratch, { force: true });
  result[kind] = tally;
}
process.stdout.write(`${JSON.stringify(result)}\n`);
