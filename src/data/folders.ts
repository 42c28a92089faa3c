// Class folders on disk: which layout a folder uses (classes at the root, or train/valid/test
// split folders as fastai, Keras, Ultralytics and Kaggle lay them out), the images in each class,
// and every file or folder passed over with its reason. Nothing visiontune wrote is read back.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { DataError, type Skipped } from './errors.js';
import { DEFAULT_OUT_DIR } from './defaults.js';
import {
  splitByValidPct, assertTrainable, vocabOf, DEFAULT_VALID_PCT, DEFAULT_SEED,
  type Dataset, type Item, type LabelRule, type PassedOver, type PassReason,
} from './sources.js';

/** File extensions read as images (lower case). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.bmp', '.dib',
]);

/** Image formats visiontune does not read: passed over as "unsupported format", not as "not an image". */
export const UNSUPPORTED_IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.heic', '.heif', '.jp2', '.j2k', '.jxl', '.psd', '.ico', '.svg', '.eps', '.tga', '.pcx', '.ppm', '.pgm', '.pbm',
  '.dng', '.cr2', '.cr3', '.nef', '.arw', '.orf', '.raf', '.rw2', '.raw', '.exr', '.hdr',
]);

/**
 * Folder names that mark a set already split: fastai's train/valid, Keras' train/validation,
 * Ultralytics' train/val/test, Kaggle's train/test and training_set/test_set. Names are compared
 * in lower case with a `_set`, `-set` or ` set` suffix removed (see splitRole).
 */
export const SPLIT_FOLDERS = {
  train: ['train', 'training'], valid: ['valid', 'val', 'validation'], test: ['test', 'testing'],
} as const;

/** Returns the split a folder name stands for ('Training_Set' → train), or null for a class name. */
export function splitRole(name: string): keyof typeof SPLIT_FOLDERS | null {
  const base = name.toLowerCase().replace(/[-_ ]?set$/, '');
  for (const [k, names] of Object.entries(SPLIT_FOLDERS)) if ((names as readonly string[]).includes(base)) return k as keyof typeof SPLIT_FOLDERS;
  return null;
}

/** The file visiontune leaves in every folder it writes, so that the folder is never read as data. */
export const OUTPUT_MARKER = '.visiontune';
export { DEFAULT_OUT_DIR } from './defaults.js';

export interface FolderOptions {
  /** Share of each class held out when the folder has no validation split. Default 0.2. */
  validPct?: number;
  seed?: number;
  labelFrom?: LabelRule;
}

/** Makes `dir` (and its parents) and marks it as visiontune's output, so no later run reads it as data. */
export async function makeOutputDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const marker = path.join(dir, OUTPUT_MARKER);
  const text = 'Written by visiontune: this folder is its output and is never read as training data.\n';
  try {
    if ((await fs.readFile(marker, 'utf8')) === text) return;
  } catch { /* not there yet */ }
  await fs.writeFile(marker, text);
}

const isHidden = (name: string): boolean => name.startsWith('.') || name === '__MACOSX' || name === 'Thumbs.db';

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

// Whether a safetensors file was exported by visiontune: its header's metadata has a "visiontune" entry.
async function isModelFile(file: string): Promise<boolean> {
  let fh: fs.FileHandle | null = null;
  try {
    fh = await fs.open(file, 'r');
    const len = Buffer.alloc(8);
    if ((await fh.read(len, 0, 8, 0)).bytesRead < 8) return false;
    const n = Number(len.readBigUInt64LE(0));
    if (n > 1 << 24) return false;
    const header = Buffer.alloc(n);
    await fh.read(header, 0, n, 8);
    const meta = (JSON.parse(header.toString('utf8')) as { __metadata__?: Record<string, unknown> }).__metadata__;
    return meta !== undefined && 'visiontune' in meta;
  } catch {
    return false;
  } finally {
    await fh?.close();
  }
}

// Whether an image file lies in dir or its subfolders (down to `depth` levels); stops at the first.
async function holdsImages(dir: string, depth: number): Promise<boolean> {
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  for (const e of entries) if (e.isFile() && IMAGE_EXTENSIONS.has(extOf(e.name))) return true;
  if (depth === 0) return false;
  for (const e of entries) if (e.isDirectory() && !isHidden(e.name) && await holdsImages(path.join(dir, e.name), depth - 1)) return true;
  return false;
}

/**
 * Throws a DataError when writing visiontune's output into `out` would hide images: `out` is the
 * data folder, or an existing folder (not already visiontune's) with images in it, such as a
 * class folder. The marker an output folder gets would make every later run pass it over.
 */
export async function assertOutputDir(out: string, data: string): Promise<void> {
  const [o, d] = [path.resolve(out), path.resolve(data)];
  const hint = 'Give --out a new or empty folder, or one visiontune wrote before';
  if (o === d) throw new DataError('the output folder is the data folder', o, hint);
  if (await isDir(o) && !await isOutputDir(o) && await holdsImages(o, 3)) {
    throw new DataError('the output folder holds images (a class or split of the data?); visiontune would pass it over as output from then on', o, hint);
  }
}

/** Returns whether `dir` is a folder visiontune wrote: the default output name, its marker, or an exported model inside. */
export async function isOutputDir(dir: string): Promise<boolean> {
  if (path.basename(dir) === DEFAULT_OUT_DIR) return true;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return false;
  }
  if (names.includes(OUTPUT_MARKER)) return true;
  for (const n of names) if (n.endsWith('.safetensors') && await isModelFile(path.join(dir, n))) return true;
  return false;
}

/** What a walk passed over, grouped by reason and extension. */
class PassedOverList {
  readonly #groups = new Map<string, PassedOver>();

  add(reason: PassReason, p: string, what: string): void {
    const key = `${reason}\0${what}`;
    const g = this.#groups.get(key) ?? { reason, what, count: 0, paths: [] };
    g.count++;
    g.paths.push(p);
    this.#groups.set(key, g);
  }

  get list(): PassedOver[] { return [...this.#groups.values()].sort((a, b) => b.count - a.count || a.what.localeCompare(b.what)); }
  get total(): number { return this.list.reduce((s, g) => s + g.count, 0); }
}

const extOf = (name: string): string => path.extname(name).toLowerCase();

// Whether `p` (a real path) lies in the folder `root` (a real path).
const inside = (p: string, root: string): boolean => p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);

// Image files under dir (recursively, following links once and only when they stay inside `root`,
// the data folder's real path), as paths; records what it passes over, unreadable folders included.
async function walk(dir: string, out: string[], seen: Set<string>, passed: PassedOverList, root: string): Promise<void> {
  let entries;
  try {
    const real = await fs.realpath(dir);
    if (seen.has(real)) return;
    seen.add(real);
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (e) {
    passed.add('unreadable', dir, `folders that cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = path.join(dir, e.name);
    const ext = extOf(e.name);
    if (isHidden(e.name)) {
      passed.add('hidden', p, 'hidden files');
      continue;
    }
    if (e.isSymbolicLink()) {
      const target = await fs.realpath(p).catch(() => null);
      if (target !== null && !inside(target, root)) {
        passed.add('outside the data folder', p, 'links leading out of the data folder');
        continue;
      }
    }
    if (e.isDirectory() || (e.isSymbolicLink() && await isDir(p))) {
      if (await isOutputDir(p)) passed.add('visiontune output', p, 'folders visiontune wrote');
      else await walk(p, out, seen, passed, root);
    } else if (IMAGE_EXTENSIONS.has(ext)) {
      out.push(p);
    } else if (UNSUPPORTED_IMAGE_EXTENSIONS.has(ext)) {
      passed.add('unsupported format', p, `${ext} files`);
    } else {
      passed.add('not an image', p, ext ? `${ext} files` : 'files without an extension');
    }
  }
}

// Labelled items under one split folder (or the root of an unsplit set).
async function classFolders(base: string, rule: LabelRule, passed: PassedOverList, origin: Record<string, string>, root: string): Promise<Item[]> {
  const files: string[] = [];
  await walk(base, files, new Set(), passed, root);
  const items: Item[] = [];
  for (const file of files) {
    const rel = path.relative(base, file).split(path.sep);
    if (rel.length < 2) {
      passed.add('outside any class folder', file, `images directly in ${base}`);
      continue;
    }
    const label = rule === 'top' ? rel[0] : rel[rel.length - 2];
    origin[label] ??= rule === 'top' ? path.join(base, rel[0]) : path.dirname(file);
    items.push({ path: file, label });
  }
  // A class folder with no image in it is a class with nothing to learn from.
  if (rule === 'top') {
    for (const e of await fs.readdir(base, { withFileTypes: true })) {
      const p = path.join(base, e.name);
      if (!isHidden(e.name) && (e.isDirectory() || await isDir(p)) && !await isOutputDir(p)) origin[e.name] ??= p;
    }
  }
  return items;
}

async function requireFolder(root: string): Promise<void> {
  let st;
  try {
    st = await fs.stat(root);
  } catch {
    throw new DataError('folder not found', root, 'Check the path: it should hold one folder per class (root/<class>/<image>.jpg)');
  }
  if (!st.isDirectory()) {
    throw new DataError('not a folder', root, 'Give the folder that holds one folder per class, or use a CSV source for a list of files');
  }
}

const LAYOUTS = 'root/<class>/…, or split folders root/train/<class>/… with root/valid (or val, validation) and/or root/test';

/** The split folders at the root, by role; null when the root holds class folders. Throws on a layout that fits none. */
async function splitFolders(root: string): Promise<{ train: string; valid: string | null; test: string | null } | null> {
  const dirs: string[] = [];
  for (const e of await fs.readdir(root, { withFileTypes: true })) {
    const p = path.join(root, e.name);
    if (!isHidden(e.name) && (e.isDirectory() || await isDir(p)) && !await isOutputDir(p)) dirs.push(e.name);
  }
  const role = splitRole;
  const splits = dirs.filter((d) => role(d) !== null);
  if (splits.length === 0) return null;
  const list = (names: string[]): string => names.map((n) => `'${n}'`).join(', ');
  const others = dirs.filter((d) => role(d) === null);
  if (others.length > 0) {
    throw new DataError(`the folder mixes split folders (${list(splits)}) with other folders (${list(others)})`, root,
      `Use one layout: ${LAYOUTS}`);
  }
  const found: Record<string, string[]> = { train: [], valid: [], test: [] };
  for (const d of splits) found[role(d)!].push(d);
  for (const [k, names] of Object.entries(found)) {
    if (names.length > 1) throw new DataError(`two ${k} folders (${list(names)})`, root, 'Keep one of them, or merge them');
  }
  if (found.train.length === 0) {
    throw new DataError(`split folders (${list(splits)}) but no train folder`, root, `Add root/train/<class>/…: the layouts read are ${LAYOUTS}`);
  }
  const at = (names: string[]): string | null => (names.length ? path.join(root, names[0]) : null);
  return { train: at(found.train)!, valid: at(found.valid), test: at(found.test) };
}

/**
 * Returns the items of a class-folder set: `root/<class>/…` (split by validPct), or split folders
 * `root/train/<class>/…` with `valid`/`val`/`validation` as the validation split and `test` held
 * out; without a validation folder, validation is split from train by validPct. Files and folders
 * passed over are in `passedOver`. Throws a DataError for a missing folder, a layout that fits
 * none of these, or data that cannot be trained on.
 */
export async function folderDataset(root: string, o: FolderOptions = {}): Promise<Dataset> {
  const abs = path.resolve(root);
  await requireFolder(abs);
  const rule = o.labelFrom ?? 'top';
  const passed = new PassedOverList();
  const origin: Record<string, string> = {};
  const validPct = o.validPct ?? DEFAULT_VALID_PCT;
  const seed = o.seed ?? DEFAULT_SEED;
  const real = await fs.realpath(abs);
  const splits = await splitFolders(abs);
  let parts: Pick<Dataset, 'train' | 'valid' | 'test' | 'layout'>;
  if (splits) {
    const train = await classFolders(splits.train, rule, passed, origin, real);
    const test = splits.test ? await classFolders(splits.test, rule, passed, {}, real) : [];
    // A test folder without class folders (Kaggle's unlabelled test images) is no test split.
    const named = [splits.train, splits.valid, test.length > 0 ? splits.test : null].filter((d) => d !== null).map((d) => path.basename(d!));
    const layout = named.join('/');
    if (splits.valid) {
      parts = { train, valid: await classFolders(splits.valid, rule, passed, {}, real), test, layout };
    } else {
      const how = validPct > 0 ? `valid split from ${named[0]}` : 'no validation: valid-pct 0';
      parts = { ...splitByValidPct(train, validPct, seed), test, layout: `${layout} (${how})` };
    }
  } else {
    parts = { ...splitByValidPct(await classFolders(abs, rule, passed, origin, real), validPct, seed), test: [], layout: 'class folders' };
  }
  const ds: Dataset = {
    root: abs, vocab: vocabOf(Object.keys(origin), parts.train, parts.valid, parts.test), ...parts, origin,
    skipped: [], ignored: passed.total, passedOver: passed.list,
  };
  assertTrainable(ds);
  return ds;
}

/**
 * Returns the image files that command-line arguments name: files as given, folders searched
 * recursively for images (hidden files and visiontune's output passed over), and glob patterns
 * (`'photos/*.jpg'`, quoted so that visiontune expands it, not the shell) expanded, in argument order without repeats. An argument that names
 * nothing, and a file of an unsupported format inside a folder, come back in `skipped`.
 */
export async function expandImageArgs(args: readonly string[]): Promise<{ files: string[]; skipped: Skipped[]; passedOver: PassedOver[] }> {
  const files: string[] = [];
  const skipped: Skipped[] = [];
  const passed = new PassedOverList();
  const seen = new Set<string>();
  const add = (f: string): void => {
    if (!seen.has(f)) files.push(f);
    seen.add(f);
  };
  for (const arg of args) {
    if (await isDir(arg)) {
      const found: string[] = [];
      await walk(arg, found, new Set(), passed, await fs.realpath(arg));
      found.forEach(add);
      if (found.length === 0) skipped.push({ path: arg, reason: 'missing', detail: 'the folder holds no image' });
    } else if (isDynamicPattern(arg) && !await exists(arg)) {
      const found = (await glob(arg, { onlyFiles: true, expandDirectories: false })).sort();
      if (found.length === 0) skipped.push({ path: arg, reason: 'missing', detail: 'the pattern matches no file' });
      // As in a folder: only images, and nothing from a folder visiontune wrote.
      const output = new Map<string, boolean>();
      for (const f of found) {
        const dir = path.dirname(f);
        if (!output.has(dir)) output.set(dir, await isOutputDir(dir));
        const ext = extOf(f);
        if (output.get(dir)) passed.add('visiontune output', f, 'files in folders visiontune wrote');
        else if (IMAGE_EXTENSIONS.has(ext)) add(f);
        else if (UNSUPPORTED_IMAGE_EXTENSIONS.has(ext)) passed.add('unsupported format', f, `${ext} files`);
        else passed.add('not an image', f, ext ? `${ext} files` : 'files without an extension');
      }
    } else {
      add(arg);
    }
  }
  for (const g of passed.list) {
    if (g.reason === 'unsupported format') for (const p of g.paths) skipped.push({ path: p, reason: 'unsupported format', detail: `${extOf(p)} files are not read` });
  }
  return { files, skipped, passedOver: passed.list.filter((g) => g.reason !== 'unsupported format') };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.stat(p);
    return true;
  } catch {
    return false;
  }
}
