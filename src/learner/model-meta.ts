// What an exported model file may say about itself, as a schema (zod): every field of its
// metadata checked, then checked against the tensor shapes of its header (which cost nothing to
// read), before any module is built from it. A file of a few hundred bytes cannot make visiontune
// build a million-way head.
import { z } from 'zod';
import { ZOO } from '../models/registry.js';
import { MAX_IMAGE_SIZE } from '../data/defaults.js';
import type { SafetensorsHeader } from '../io/index.js';
import { HEAD_DEFAULTS } from './model.js';

/** A model file that cannot be used: not one of ours, or inconsistent. */
export class ModelFileError extends Error {
  constructor(readonly path: string, detail: string) {
    super(`${path}: ${detail}`);
    this.name = 'ModelFileError';
  }
}

const finite = z.number().finite();
const positive = finite.positive();
const size = z.number().int().min(16).max(MAX_IMAGE_SIZE);

/** The schema of `__metadata__.visiontune` (format 1). */
export const MODEL_META_SCHEMA = z.object({
  formatVersion: z.literal(1),
  visiontuneVersion: z.string().max(64),
  architecture: z.string().refine((a) => ZOO.has(a), { message: 'not an architecture of the zoo' }),
  classes: z.array(z.string().min(1).max(1024)).min(2).max(1_000_000),
  size,
  normalization: z.object({ mean: z.tuple([finite, finite, finite]), std: z.tuple([positive, positive, positive]) }),
  head: z.object({
    ps: z.number().min(0).max(1).optional(),
    linFtrs: z.array(z.number().int().min(1).max(1 << 16)).max(8).optional(),
    concatPool: z.boolean().optional(),
    firstBn: z.boolean().optional(),
    bnFinal: z.boolean().optional(),
  }).strict(),
  itemSize: size.optional(),
  resizeMethod: z.enum(['crop', 'squish', 'pad']).optional(),
  split: z.object({ validPct: z.number().min(0).max(0.9), seed: z.number().int().min(0) }).optional(),
  temperature: z.number().positive().finite().max(100).optional(),
}).refine((m) => m.itemSize === undefined || m.itemSize >= m.size, { message: 'is smaller than size', path: ['itemSize'] });

export type ParsedModelMeta = z.infer<typeof MODEL_META_SCHEMA>;

/**
 * Returns the model file's metadata, validated, after checking it against the header's tensors:
 * the head's linear layers must have the widths the metadata gives (hidden widths, then one output
 * per class), and every weight must be float32 (num_batches_tracked int64). Throws ModelFileError
 * naming the file and the field.
 */
export function parseModelMeta(path: string, header: SafetensorsHeader): ParsedModelMeta {
  const text = header.metadata.visiontune;
  if (text === undefined) throw new ModelFileError(path, 'not a visiontune model: its safetensors metadata has no "visiontune" entry');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(path, `its visiontune metadata is not valid JSON: ${(e as Error).message}`);
  }
  const version = (raw as { formatVersion?: unknown } | null)?.formatVersion;
  if (typeof version === 'number' && version > 1) throw new ModelFileError(path, `model format ${version} is newer than this visiontune reads; upgrade visiontune`);
  const parsed = MODEL_META_SCHEMA.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ModelFileError(path, `its metadata field '${issue.path.join('.') || '(root)'}' ${issue.message.replace(/^./, (c) => c.toLowerCase())}`);
  }
  const meta = parsed.data;
  for (const t of header.tensors) {
    const want = t.name.endsWith('num_batches_tracked') ? 'int64' : 'float32';
    if (t.dtype !== want) throw new ModelFileError(path, `tensor '${t.name}' is ${t.dtype}, where a visiontune model has ${want}`);
  }
  // The head's linear weights, in layer order: [width_i+1, width_i] each.
  const index = (name: string): number => Number(/^head\.(\d+)\./.exec(name)?.[1] ?? -1);
  const linears = header.tensors.filter((t) => t.name.startsWith('head.') && t.name.endsWith('.weight') && t.shape.length === 2)
    .sort((a, b) => index(a.name) - index(b.name));
  const outs = [...(meta.head.linFtrs ?? HEAD_DEFAULTS.linFtrs), meta.classes.length];
  if (linears.length !== outs.length || linears.some((t, i) => t.shape[0] !== outs[i] || (i > 0 && t.shape[1] !== outs[i - 1]))) {
    throw new ModelFileError(path, `its metadata (${meta.classes.length} classes, head widths [${outs.slice(0, -1)}]) does not match `
      + `its head's weights (${linears.map((t) => `[${t.shape}]`).join(', ') || 'none'})`);
  }
  return meta;
}
