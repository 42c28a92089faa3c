// Reads torch.save files (the zip format, PyTorch ≥ 1.6) as data: a strict pickle reader that
// accepts only what a tensor state dict needs, storages checked against the zip's records.
import type { Tensor } from '../torch/index.js';
import { itemSize, type DType } from '../torch/dtype.js';
import type { StateDict } from '../nn/module.js';
import { CheckpointError, readSource, sourceName, type CheckpointErrorReason } from './errors.js';
import { readZipDirectory, readZipEntry, ZipError, type ZipEntry } from './zip.js';
import { unpickle, typeName, PickleError, PyDict, PyGlobal, PyOpaque, PyTuple, type Value } from './pickle.js';
import { gather, swapBytes, tensorFromBytes } from './tensor-bytes.js';

/** torch.<Name>Storage → dtype; complex and quantised storages are deliberately absent. */
const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool',
};
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
const REBUILD_PARAMETER = 'torch._utils._rebuild_parameter';
const ORDERED_DICT = 'collections.OrderedDict';

/** Every global a torch.save'd state dict references; the pickle reader refuses all others. */
export const ALLOWED_GLOBALS: ReadonlySet<string> = new Set([
  ORDERED_DICT, REBUILD_TENSOR, REBUILD_PARAMETER, ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
]);

type Fail = (reason: CheckpointErrorReason, detail: string) => never;

const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const SUPPORTED_VERSIONS = { min: 1, max: 6 };

/** The container torch.save (or something else) used, judged from the first bytes. */
export type TorchFormat = 'zip' | 'legacy' | 'tar' | 'pytorch1' | 'unknown';

/** Returns the container a file's leading bytes announce. */
export function sniffTorchFormat(bytes: Uint8Array): TorchFormat {
  const starts = (sig: number[], at = 0): boolean => bytes.length >= at + sig.length && sig.every((b, i) => bytes[at + i] === b);
  if (starts([0x50, 0x4b, 0x03, 0x04]) || starts([0x50, 0x4b, 0x05, 0x06])) return 'zip';
  if (starts(LEGACY_MAGIC)) return 'legacy';
  if (starts([...Buffer.from('ustar')], 257)) return 'tar';
  if (starts([...Buffer.from('PYTORCH1')])) return 'pytorch1';
  return 'unknown';
}

/** A storage named by a persistent id: its zip record and element type. */
class StorageRef extends PyOpaque {
  constructor(readonly key: string, readonly dtype: DType, readonly numel: number, readonly bytes: Uint8Array) { super(); }
  get typeName(): string { return 'storage'; }
}

/** A tensor as _rebuild_tensor_v2 describes it; turned into a Tensor only if it is part of the result. */
class TensorRecord extends PyOpaque {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly strides: number[]) { super(); }
  get typeName(): string { return 'tensor'; }
}

/**
 * Returns the state dict in a torch.save file (path or bytes), synchronously. A checkpoint whose
 * top level holds a dict under 'state_dict' or 'model' yields that dict. Tensors come on the CPU,
 * contiguous, in file order; they join the innermost open scope. Throws CheckpointError.
 */
export function loadTorchCheckpoint(source: string | Uint8Array): StateDict {
  const path = sourceName(source);
  return parseTorchCheckpoint(readSource(source, 'the checkpoint'), path);
}

/** Returns the state dict in a torch.save file's bytes; errors name `path`. */
export function parseTorchCheckpoint(bytes: Uint8Array, path: string): StateDict {
  const fail: Fail = (reason, detail) => { throw new CheckpointError(path, reason, detail); };
  if (bytes.length === 0) fail('empty', 'the file is empty');
  switch (sniffTorchFormat(bytes)) {
    case 'legacy': return fail('legacy-format',
      'legacy pre-1.6 torch.save format; re-save with a current PyTorch (torch.save(torch.load(f), f2)) or convert to safetensors');
    case 'tar': return fail('tar-format',
      'tar-based torch.save format (PyTorch < 0.4); re-save with a current PyTorch or convert to safetensors');
    case 'pytorch1': return fail('unsupported', 'old PYTORCH1 serialization format; re-save with torch.save from a current PyTorch');
    case 'unknown': return fail('unknown-format',
      `not a PyTorch checkpoint: a torch.save file is a zip starting with 'PK', this one starts with ${hex(bytes.subarray(0, 4))}`);
  }
  try {
    return readArchive(bytes, fail);
  } catch (e) {
    if (e instanceof ZipError || e instanceof PickleError) fail(e.reason, e.message);
    throw e;
  }
}

/**
 * The most bytes of tensors a checkpoint may give, as a multiple of its own size (plus 1 MiB):
 * tied weights and expanded views repeat storage, a 759-byte file must not become gigabytes.
 */
export const VIEW_BUDGET = 4;

function readArchive(buf: Uint8Array, fail: Fail): StateDict {
  const entries = readZipDirectory(buf);
  const first = entries.keys().next().value ?? fail('not-a-state-dict', 'the zip is empty, not a torch.save archive');
  const slash = first.indexOf('/');
  const root = slash < 0 ? fail('corrupt', `zip entry '${first}' is not inside an archive folder`) : first.slice(0, slash + 1);
  const entry = (name: string): ZipEntry | undefined => entries.get(root + name);
  const read = (e: ZipEntry): Uint8Array => readZipEntry(buf, e);

  if (entry('constants.pkl')) {
    fail('torchscript', 'this is a TorchScript archive (torch.jit.save), not a state dict; in Python, '
      + 'torch.save(torch.jit.load(f).state_dict(), out) or export safetensors, then load that');
  }
  const pkl = entry('data.pkl') ?? fail('not-a-state-dict', `the zip has no ${root}data.pkl: not a torch.save archive`);
  const versionEntry = entry('.data/version') ?? entry('version');
  if (versionEntry) {
    const text = new TextDecoder().decode(read(versionEntry)).trim();
    const v = Number(text);
    if (!Number.isInteger(v) || v < SUPPORTED_VERSIONS.min || v > SUPPORTED_VERSIONS.max) {
      fail('unsupported', `torch.save archive version '${text.slice(0, 16)}' is not supported (${SUPPORTED_VERSIONS.min}–${SUPPORTED_VERSIONS.max})`);
    }
  }
  const orderEntry = entry('byteorder');
  const order = orderEntry ? new TextDecoder().decode(read(orderEntry)).trim() : 'little';
  if (order !== 'little' && order !== 'big') fail('corrupt', `unknown byteorder '${order.slice(0, 16)}'`);

  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: Value): Value => {
    const items = pid instanceof PyTuple ? pid.items : [];
    const [tag, cls, key, location, numel] = items;
    if (items.length !== 5 || tag !== 'storage' || !(cls instanceof PyGlobal) || typeof key !== 'string'
      || typeof location !== 'string' || !isCount(numel)) {
      return fail('corrupt', 'a persistent id is not (\'storage\', type, key, location, numel)');
    }
    const dtype = STORAGE_DTYPES[cls.name];
    if (cls.module !== 'torch' || !dtype) return fail('unsupported', `${cls.qualifiedName} is not a storage type`);
    const known = storages.get(key);
    if (known) {
      if (known.dtype !== dtype || known.numel !== numel) fail('corrupt', `storage '${key}' is described two different ways`);
      return known;
    }
    const record = entry(`data/${key}`) ?? fail('missing-storage', `storage '${key}' is referenced but ${root}data/${key} is not in the zip`);
    let bytes = read(record);
    const needed = numel * itemSize(dtype);
    if (bytes.length < needed) {
      fail('out-of-bounds', `storage '${key}' holds ${bytes.length} bytes, but ${numel} ${dtype} elements need ${needed}`);
    }
    bytes = bytes.subarray(0, needed);
    if (order === 'big' && itemSize(dtype) > 1) bytes = swapBytes(bytes, itemSize(dtype));
    const ref = new StorageRef(key, dtype, numel, bytes);
    storages.set(key, ref);
    return ref;
  };

  const value = unpickle(read(pkl), { allowedGlobals: ALLOWED_GLOBALS, persistentLoad, reduce: (fn, args) => reduce(fn, args, fail) });
  return materialize(pickStateDict(value, fail), buf.length, fail);
}

// What REDUCE means for each allowed callable; no Python is involved.
function reduce(fn: PyGlobal, args: PyTuple, fail: Fail): Value {
  const a = args.items;
  switch (fn.qualifiedName) {
    case ORDERED_DICT:
      if (a.length) fail('unsupported', 'OrderedDict(...) with arguments is not expected in a state dict');
      return new PyDict(true);
    case REBUILD_PARAMETER:
      if (!(a[0] instanceof TensorRecord)) return fail('corrupt', `_rebuild_parameter of a ${typeName(a[0] ?? null)}`);
      return a[0];
    case REBUILD_TENSOR: {
      const [storage, offset, size, stride] = a;
      if ((a.length !== 6 && a.length !== 7) || !(storage instanceof StorageRef) || !isCount(offset)) {
        return fail('corrupt', '_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, requires_grad, hooks)');
      }
      const shape = counts(size) ?? fail('corrupt', 'a tensor size is not a tuple of non-negative integers');
      const strides = counts(stride) ?? fail('corrupt', 'a tensor stride is not a tuple of non-negative integers');
      if (shape.length !== strides.length) fail('corrupt', `a tensor has ${shape.length} sizes but ${strides.length} strides`);
      // The element furthest into the storage: offset + Σ (size_k − 1)·stride_k, for a non-empty tensor.
      if (!shape.includes(0)) {
        const last = shape.reduce((acc, n, k) => acc + (n - 1) * strides[k], offset);
        if (!Number.isSafeInteger(last) || last >= storage.numel) {
          fail('out-of-bounds', `a tensor of shape [${shape}] (stride [${strides}], offset ${offset}) reaches element ${last} `
            + `of storage '${storage.key}', which has ${storage.numel}`);
        }
      }
      return new TensorRecord(storage, offset, shape, strides);
    }
    default:
      return fail('unsafe-global', `REDUCE on ${fn.qualifiedName} is not allowed (it is not a callable a state dict uses)`);
  }
}

// The dict of tensors: the top level, or its 'state_dict' / 'model' entry when that is a plain dict.
function pickStateDict(top: Value, fail: Fail): Map<string, TensorRecord> {
  if (!(top instanceof PyDict)) return fail('not-a-state-dict', `the checkpoint holds a ${typeName(top)}, not a dict of tensors`);
  let dict = top;
  for (const key of ['state_dict', 'model']) {
    const inner = top.map.get(key);
    if (inner instanceof PyDict) {
      dict = inner;
      break;
    }
  }
  const out = new Map<string, TensorRecord>();
  for (const [k, v] of dict.map) {
    if (typeof k !== 'string') fail('not-a-state-dict', `a key is a ${typeName(k)}, not a parameter name`);
    if (!(v instanceof TensorRecord)) fail('not-a-state-dict', `entry '${String(k)}' is a ${typeName(v)}, not a tensor`);
    out.set(k as string, v as TensorRecord);
  }
  return out;
}

// Builds the tensors, one storage tensor per key, released once every view of it is copied out.
function materialize(records: Map<string, TensorRecord>, fileBytes: number, fail: Fail): StateDict {
  // Every view lies inside its storage, but a view may repeat elements (stride 0: torch.save keeps
  // expand()ed tensors so) and several views may share a storage (tied weights): what they copy
  // out is held to VIEW_BUDGET × the file's size before anything is allocated.
  let total = 0;
  for (const r of records.values()) total += r.shape.reduce((p, n) => p * n, 1) * itemSize(r.storage.dtype);
  if (total > VIEW_BUDGET * fileBytes + (1 << 20)) {
    fail('out-of-bounds', `the tensors would take ${total} bytes from a ${fileBytes}-byte file (more than ${VIEW_BUDGET}× it): views that repeat a storage`);
  }
  const storageTensors = new Map<StorageRef, Tensor>();
  const out: StateDict = new Map();
  try {
    for (const [name, r] of records) {
      let storage = storageTensors.get(r.storage);
      if (!storage) {
        storage = tensorFromBytes(r.storage.bytes, r.storage.dtype);
        storageTensors.set(r.storage, storage);
      }
      out.set(name, gather(storage, r.shape, r.strides, r.offset));
    }
  } catch (e) {
    for (const x of out.values()) x.dispose();
    return fail('corrupt', `cannot build the tensors: ${(e as Error).message}`);
  } finally {
    for (const s of storageTensors.values()) s.dispose();
  }
  return out;
}

function isCount(v: Value | undefined): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function counts(v: Value | undefined): number[] | null {
  if (!(v instanceof PyTuple) || !v.items.every(isCount)) return null;
  return v.items as number[];
}

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}
