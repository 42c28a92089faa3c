// Pretrained weights: the local cache, the verified download into it, and loading a zoo model
// from it or from a file the user names.
//
// Environment:
//   VISIONTUNE_HOME               the cache root (default ~/.cache/visiontune); weights live in
//                                 <root>/weights/<file name from the URL>, e.g. resnet18-f37072fd.pth
//   VISIONTUNE_WEIGHTS_BASE_URL   replaces https://download.pytorch.org/models/ in the zoo's URLs
//                                 (a mirror, or a local server in tests); the cache file name and
//                                 the hash check stay those of the zoo
//   VISIONTUNE_OFFLINE=1          never download: only the cache or a file
import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import nodePath from 'node:path';
import { loadWeightsFile } from '../io/index.js';
import { download, DownloadError, type ProgressCallback } from '../io/download.js';
import { StateDictError, type StateDict } from '../nn/module.js';
import type { Tensor } from '../torch/index.js';
import type { Backbone } from './blocks.js';
import { zooEntry, TORCHVISION_BASE_URL, type ZooEntry } from './registry.js';

export { TORCHVISION_BASE_URL } from './registry.js';


/**
 * 'imagenet' for the zoo's published weights, else the path of a .pth or .safetensors file: the
 * architecture's torchvision state dict, or a model visiontune exported (its body is taken).
 */
export type WeightsSpec = 'imagenet' | (string & {});

/** Why weights could not be had; one value per kind of problem. */
export type WeightsErrorReason =
  | 'offline' // not cached, and the download could not connect (or downloads are off)
  | 'missing-file' // the named weights file does not exist
  | 'mismatch'; // the file's tensors do not fit the architecture

/** Pretrained weights could not be found, fetched or loaded; the message says what to do instead. */
export class WeightsError extends Error {
  /** The URL the weights come from, when a download was involved. */
  readonly url?: string;
  /** The weights file: the one named, or where the cache keeps (or would keep) it. */
  readonly path?: string;

  constructor(readonly reason: WeightsErrorReason, message: string, o: { url?: string; path?: string; cause?: unknown } = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = 'WeightsError';
    this.url = o.url;
    this.path = o.path;
  }
}

/** Returns the cache root: $VISIONTUNE_HOME, else ~/.cache/visiontune. */
export function cacheDir(): string {
  const home = process.env.VISIONTUNE_HOME;
  return home ? nodePath.resolve(home) : nodePath.join(homedir(), '.cache', 'visiontune');
}

/** Returns the URL `arch`'s ImageNet weights are downloaded from, after VISIONTUNE_WEIGHTS_BASE_URL. */
export function weightsUrl(arch: string | ZooEntry): string {
  const { url } = entryOf(arch).weights;
  const base = process.env.VISIONTUNE_WEIGHTS_BASE_URL;
  if (!base || !url.startsWith(TORCHVISION_BASE_URL)) return url;
  return (base.endsWith('/') ? base : `${base}/`) + url.slice(TORCHVISION_BASE_URL.length);
}

/** Returns the path `arch`'s ImageNet weights have in the cache, whether or not they are there. */
export function cachedWeightsPath(arch: string | ZooEntry): string {
  const { url } = entryOf(arch).weights;
  const file = decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
  if (!file || file === '.' || file === '..') throw new TypeError(`weights URL ${url} names no file`);
  return nodePath.join(cacheDir(), 'weights', file);
}

/**
 * Returns whether `arch`'s ImageNet weights are in the cache. A file under its final name was
 * verified before it was renamed there, so it is not hashed again (torch.hub does the same).
 */
export function isCached(arch: string | ZooEntry): boolean {
  return isFile(cachedWeightsPath(arch));
}

export interface ResolveOptions {
  /** Never download (also VISIONTUNE_OFFLINE=1): only the cache or a file. */
  offline?: boolean;
  onProgress?: ProgressCallback;
  /** Idle timeout of the download; see download(). */
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
}

/**
 * Returns the path of a weights file for `arch`: for 'imagenet' the cached file, downloading and
 * verifying it first if needed; otherwise `spec` itself, which must be an existing file. `arch` is
 * a zoo name, or a ZooEntry for a model outside the zoo. Throws WeightsError ('offline' also when
 * the server cannot be reached or goes silent), or DownloadError for a download that got an
 * answer but failed (HTTP status, broken connection, length or hash mismatch, disk).
 */
export async function resolveWeights(arch: string | ZooEntry, spec: WeightsSpec, o: ResolveOptions = {}): Promise<string> {
  const entry = entryOf(arch);
  if (spec !== 'imagenet') {
    const path = nodePath.resolve(spec);
    if (!isFile(path)) {
      throw new WeightsError('missing-file', `weights file not found: ${path} (expected 'imagenet' or an existing .pth or .safetensors file)`, { path });
    }
    return path;
  }
  const dest = cachedWeightsPath(entry);
  if (isFile(dest)) return dest;
  const url = weightsUrl(entry);
  const instead = `download it yourself to ${dest}, or pass --weights FILE (a local .pth or .safetensors file with ${entry.name}'s torchvision keys)`;
  if (o.offline || process.env.VISIONTUNE_OFFLINE === '1') {
    throw new WeightsError('offline', `${entry.name}'s ImageNet weights are not in the cache and downloads are off: ${instead}; the file is ${url}`,
      { url, path: dest });
  }
  try {
    await download(url, dest, { sha256Prefix: entry.weights.sha256Prefix, onProgress: o.onProgress, timeoutMs: o.timeoutMs, fetchImpl: o.fetchImpl });
  } catch (e) {
    // No connection, or one that went silent: the cure is the same as offline.
    if (e instanceof DownloadError && (e.reason === 'network' || e.reason === 'timeout')) {
      throw new WeightsError('offline',
        `cannot download ${entry.name}'s ImageNet weights from ${url} (${e.detail}): ${instead}`, { url, path: dest, cause: e });
    }
    throw e;
  }
  return dest;
}

export interface LoadPretrainedOptions extends ResolveOptions {
  /**
   * Classes of the model's classifier. When the file's classifier has another size, the body
   * is still loaded strictly and the classifier keeps its fresh initialisation.
   */
  numClasses?: number;
}

/**
 * Returns `arch` built as the zoo builds it, with the weights `spec` names loaded (strictly:
 * every key present, none extra, every shape equal). Throws WeightsError ('mismatch') naming the
 * file and StateDictError's details (also its `cause`), CheckpointError for an unreadable file.
 */
export async function loadPretrained(arch: string | ZooEntry, spec: WeightsSpec, o: LoadPretrainedOptions = {}): Promise<Backbone> {
  const entry = entryOf(arch);
  const path = await resolveWeights(entry, spec, o);
  const { tensors, metadata } = loadWeightsFile(path);
  const exported = exportedArchitecture(metadata);
  if (exported !== null && exported !== entry.name) {
    for (const t of tensors.values()) t.dispose();
    throw new WeightsError('mismatch', `${path} is a visiontune model of ${exported}, not ${entry.name}: give --arch ${exported}`, { path });
  }
  const model = entry.build(o.numClasses === undefined ? undefined : { numClasses: o.numClasses });
  try {
    if (exported !== null) loadBody(model, tensors);
    else loadInto(model, tensors, o.numClasses !== undefined);
  } catch (e) {
    model.dispose();
    if (!(e instanceof StateDictError)) throw e;
    throw new WeightsError('mismatch', `${path}: its weights do not fit ${entry.name}: ${summarize(e)}`, { path, cause: e });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return model;
}

// The architecture a visiontune-exported model file records, or null for any other weights file.
function exportedArchitecture(metadata: Record<string, string>): string | null {
  if (metadata.visiontune === undefined) return null;
  try {
    const arch = (JSON.parse(metadata.visiontune) as { architecture?: unknown }).architecture;
    return typeof arch === 'string' ? arch : null;
  } catch {
    return null;
  }
}

// A visiontune model's body (its `body.` keys) into the backbone, strictly; the backbone's own
// classifier keeps its initialisation, as the model's head is not the zoo's classifier.
function loadBody(model: Backbone, tensors: StateDict): void {
  const own = model.stateDict();
  const bodyKeys = new Set(model.bodyGroups().flat().flatMap(([name]) => [...own.keys()].filter((k) => k.startsWith(`${name}.`))));
  const body = new Map([...tensors].filter(([k]) => k.startsWith('body.')).map(([k, t]) => [k.slice('body.'.length), t] as const));
  const missing = [...bodyKeys].filter((k) => !body.has(k));
  const unexpected = [...body.keys()].filter((k) => !bodyKeys.has(k));
  const shapes = [...body].filter(([k, t]) => own.has(k) && own.get(k)!.shape.join(',') !== t.shape.join(','))
    .map(([key, t]) => ({ key, expected: own.get(key)!.shape, got: t.shape }));
  if (missing.length || unexpected.length || shapes.length) throw new StateDictError(missing, unexpected, shapes);
  model.loadStateDict(body, { strict: false });
}

// Strict load. With a new classifier size, the file's keys outside the body are left out when
// the classifier's shapes differ, and only the classifier's keys may then be missing. Throws
// StateDictError before copying anything.
function loadInto(model: Backbone, tensors: StateDict, newHead: boolean): void {
  const own = model.stateDict();
  const bodyPrefixes = model.bodyGroups().flat().map(([name]) => `${name}.`);
  const isHead = (key: string): boolean => !bodyPrefixes.some((p) => key.startsWith(p));
  const sameShape = (key: string, t: Tensor): boolean => tensors.get(key)?.shape.join(',') === t.shape.join(',');
  const headFits = [...own].every(([k, t]) => !isHead(k) || sameShape(k, t));
  if (!newHead || headFits) {
    model.loadStateDict(tensors);
    return;
  }
  const body = new Map([...tensors].filter(([k]) => !isHead(k)));
  const missing = [...own.keys()].filter((k) => !isHead(k) && !body.has(k));
  const unexpected = [...body.keys()].filter((k) => !own.has(k));
  if (missing.length || unexpected.length) {
    const shapes = [...own].filter(([k, t]) => body.has(k) && !sameShape(k, t))
      .map(([key, t]) => ({ key, expected: t.shape, got: body.get(key)!.shape }));
    throw new StateDictError(missing, unexpected, shapes);
  }
  model.loadStateDict(body, { strict: false });
}

// StateDictError's message lists every key; a wrong file can have hundreds, so show a few of each.
function summarize(e: StateDictError): string {
  const few = (what: string, keys: string[]): string[] => keys.length === 0 ? [] :
    [`${keys.length} ${what} (${keys.slice(0, 4).join(', ')}${keys.length > 4 ? `, … ${keys.length - 4} more` : ''})`];
  const shapes = e.shapeMismatches.slice(0, 4).map((m) => `${m.key}: file has [${m.got}], model has [${m.expected}]`);
  if (e.shapeMismatches.length > 4) shapes.push(`… ${e.shapeMismatches.length - 4} more size mismatches`);
  return [...few('missing keys', e.missingKeys), ...few('unexpected keys', e.unexpectedKeys), ...shapes].join('; ');
}

function entryOf(arch: string | ZooEntry): ZooEntry {
  return typeof arch === 'string' ? zooEntry(arch) : arch;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
