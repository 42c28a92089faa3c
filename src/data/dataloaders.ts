// DataLoaders: a source (class folders or a CSV), presized once, as a training and a validation
// loader with the class names and the list of skipped files — fastai's ImageDataLoaders.
import { csvDataset, assertTrainable, DEFAULT_VALID_PCT, DEFAULT_SEED, type Dataset, type CsvOptions, type Item } from './sources.js';
import { folderDataset, type FolderOptions } from './folders.js';
import { presize, type PresizeOptions, type PresizedSet } from './presize.js';
import { ImageLoader, DEFAULT_BS, type LoaderOptions } from './loader.js';
import { summarize, passedOverLines, type DatasetSummary } from './summary.js';
import type { Skipped } from './errors.js';

export interface DataLoadersOptions extends Omit<FolderOptions, 'validPct'>, PresizeOptions,
  Omit<LoaderOptions, 'train' | 'shuffle' | 'dropLast'> {
  validPct?: number;
  /** Where progress and warnings go; null for silence. Default console.log. */
  log?: ((line: string) => void) | null;
}

/** The training and validation loaders of one dataset, with its classes and skipped files. */
export class DataLoaders {
  constructor(
    readonly train: ImageLoader,
    readonly valid: ImageLoader,
    readonly vocab: readonly string[],
    /** Files left out of the run, each with its reason; loaders add files that fail later. */
    readonly skipped: Skipped[],
    readonly summary: DatasetSummary,
    readonly test: ImageLoader | null = null,
  ) {}

  /**
   * The share held out and the seed that chose it, when the loaders split the images themselves
   * (fromFolder, fromCsv): an exported model records them, so its interpretation holds out the same images.
   */
  split: { validPct: number; seed: number } | null = null;

  /** Class folders: `root/<class>/…` (split by validPct, stratified, seeded) or `root/{train,valid[,test]}/<class>/…`. */
  static async fromFolder(root: string, o: DataLoadersOptions = {}): Promise<DataLoaders> {
    return DataLoaders.#withSplit(await DataLoaders.fromDataset(await folderDataset(root, o), o), o);
  }

  /** A CSV of `path,label[,is_valid]`, paths relative to the CSV's folder (or `root`). */
  static async fromCsv(csvPath: string, o: DataLoadersOptions & Pick<CsvOptions, 'root'> = {}): Promise<DataLoaders> {
    return DataLoaders.#withSplit(await DataLoaders.fromDataset(await csvDataset(csvPath, o), o), o);
  }

  /**
   * Leaves the given files out of every split (in place); returns how many went. For checks that
   * run on the presized items, such as --dedupe.
   */
  drop(paths: ReadonlySet<string>): number {
    let n = 0;
    for (const loader of [this.train, this.valid, this.test]) {
      if (!loader) continue;
      const items = loader.set.items;
      for (let i = items.length - 1; i >= 0; i--) {
        if (!paths.has(items[i].path)) continue;
        items.splice(i, 1);
        n++;
      }
    }
    return n;
  }

  static #withSplit(dls: DataLoaders, o: DataLoadersOptions): DataLoaders {
    dls.split = { validPct: o.validPct ?? DEFAULT_VALID_PCT, seed: o.seed ?? DEFAULT_SEED };
    return dls;
  }

  /**
   * Presizes every image once and returns the loaders; throws a DataError when the files left
   * after skipping leave a class with no training image, or fewer than two classes.
   */
  static async fromDataset(ds: Dataset, o: DataLoadersOptions = {}): Promise<DataLoaders> {
    const log = o.log === undefined ? console.log : o.log;
    const all = [...ds.train, ...ds.valid, ...ds.test];
    const set = await presize(all, ds.vocab, o);
    const skipped = [...ds.skipped, ...set.skipped];
    const gone = new Set(set.skipped.map((s) => s.path));
    const keep = (items: Item[]): Item[] => items.filter((it) => !gone.has(it.path));
    const usable: Dataset = { ...ds, train: keep(ds.train), valid: keep(ds.valid), test: keep(ds.test), skipped };
    assertTrainable(usable);
    const part = (items: Item[]): PresizedSet => {
      const paths = new Set(items.map((it) => it.path));
      return { ...set, items: set.items.filter((it) => paths.has(it.path)) };
    };
    // Training drops the last partial batch, so a split smaller than a batch would give none.
    const bs = o.bs ?? DEFAULT_BS;
    const fitted = Math.min(bs, usable.train.length);
    const common = { ...o, bs: fitted, seed: o.seed ?? DEFAULT_SEED };
    const train = new ImageLoader(part(usable.train), ds.vocab, skipped, { ...common, train: true });
    const valid = new ImageLoader(part(usable.valid), ds.vocab, skipped, { ...common, bs, train: false });
    const test = usable.test.length > 0 ? new ImageLoader(part(usable.test), ds.vocab, skipped, { ...common, bs, train: false }) : null;
    const summary = summarize(usable, skipped);
    log?.(`Found ${all.length - set.skipped.length} images in ${ds.vocab.length} classes ` +
      `(train ${usable.train.length}, valid ${usable.valid.length}${test ? `, test ${usable.test.length}` : ''})` +
      `${set.cached ? '' : '; too large to keep in memory, decoded per batch'}`);
    if (summary.layout !== 'class folders' && summary.layout !== 'CSV') {
      log?.(`Split folders: ${summary.layout}${test ? '; the test images are held out and evaluated after training' : ''}`);
    }
    if (fitted < bs) {
      summary.warnings.push(`batch size lowered from ${bs} to ${fitted}: the training split has only ${fitted} images ` +
        '(a training epoch drops the last partial batch, so a larger batch would give none)');
    }
    for (const w of summary.warnings) log?.(`warning: ${w}`);
    for (const p of passedOverLines(summary.passedOver)) log?.(`passed over: ${p}`);
    for (const s of skipped) log?.(`skipped ${s.path}: ${s.reason} (${s.detail})`);
    return new DataLoaders(train, valid, ds.vocab, skipped, summary, test);
  }
}
