// The run's pictures, from what a run recorded (results.json): the curves, the confusion matrix
// (counts and row shares), per-class precision/recall/F1 — Vega-Lite through vega to SVG, then
// PNG — and the top losses as an image grid (fastai's plot_top_losses). `train` and `interpret`
// write them; the report inlines the same SVG.
import path from 'node:path';
import sharp from 'sharp';
import { renderSvg, writePng, curvesSpec, confusionSpec, perClassSpec, lrFindSpec } from './charts.js';
import { writeGrid, type GridTile } from '../data/show.js';
import { RUN_FILES } from './folder.js';
import type { RunResults } from './report.js';
import { writeAtomic } from '../io/atomic.js';
import { lrFindCsv, type LrFindResult } from '../learner/lr-find.js';

/** Side of a top-loss picture in the grid, in pixels. */
export const TOP_LOSS_PX = 160;
/** Top losses shown in the grid (fastai's plot_top_losses default is 9). */
export const TOP_LOSSES_SHOWN = 9;

/** The SVG of each chart the results allow, by file name (curves, lr_find, confusion matrices, per class). */
export async function chartSvgs(r: RunResults): Promise<Map<string, string>> {
  const svgs = new Map<string, string>();
  if (r.epochs.length > 0 && r.curves) {
    const unfrozenAt = r.epochs.findIndex((e, i) => i > 0 && !e.frozen && r.epochs[i - 1].frozen);
    svgs.set(RUN_FILES.curves, await renderSvg(curvesSpec({
      ...r.curves, rows: r.epochs, unfrozenAt: unfrozenAt > 0 ? r.epochs[unfrozenAt].epoch : null, overTrainingAt: r.overTraining?.epoch ?? null,
    })));
  }
  if (r.lrFind) svgs.set(RUN_FILES.lrFind, await renderSvg(lrFindSpec(r.lrFind)));
  if (r.confusion) {
    svgs.set(RUN_FILES.confusion, await renderSvg(confusionSpec(r.confusion.classes, r.confusion.matrix, false)));
    svgs.set(RUN_FILES.confusionNormalized, await renderSvg(confusionSpec(r.confusion.classes, r.confusion.matrix, true)));
  }
  if (r.perClass) svgs.set(RUN_FILES.perClass, await renderSvg(perClassSpec(r.perClass)));
  return svgs;
}

/** Writes each chart's PNG into `dir`; returns the SVGs for the report. */
export async function writeCharts(r: RunResults, dir: string): Promise<Map<string, string>> {
  const svgs = await chartSvgs(r);
  for (const [file, svg] of svgs) await writePng(svg, path.join(dir, file));
  return svgs;
}

/** Writes lr_find.csv and lr_find.png into `dir`; returns their paths. */
export async function writeLrFind(r: LrFindResult, dir: string): Promise<{ csv: string; png: string }> {
  const [csv, png] = [path.join(dir, RUN_FILES.lrFindCsv), path.join(dir, RUN_FILES.lrFind)];
  writeAtomic(csv, [lrFindCsv(r)]);
  await writePng(await renderSvg(lrFindSpec(r)), png);
  return { csv, png };
}

/**
 * Returns a file's picture for a grid or a thumbnail: upright, the centre square, `side` pixels,
 * interleaved RGB; null when the file is gone or no longer decodes.
 */
export async function filePicture(file: string, side: number): Promise<Uint8Array | null> {
  try {
    const { data } = await sharp(file, { failOn: 'none' }).rotate().flatten({ background: '#ffffff' }).removeAlpha().toColourspace('srgb')
      .resize(side, side, { fit: 'cover' }).raw().toBuffer({ resolveWithObject: true });
    return new Uint8Array(data.buffer, data.byteOffset, data.length);
  } catch {
    return null;
  }
}

/**
 * Writes top_losses.jpg: the worst validation images, each captioned "predicted/actual" and
 * "loss / probability" as fastai's plot_top_losses; returns how many it shows (0: none written).
 */
export async function writeTopLosses(r: RunResults, dir: string): Promise<number> {
  const tiles: GridTile[] = [];
  for (const t of (r.topLosses ?? []).slice(0, TOP_LOSSES_SHOWN)) {
    const pixels = t.path ? await filePicture(t.path, TOP_LOSS_PX) : null;
    if (!pixels) continue;
    tiles.push({ pixels, width: TOP_LOSS_PX, height: TOP_LOSS_PX, caption: [`${t.predicted}/${t.actual}`, `${t.loss.toFixed(2)} / ${t.probability.toFixed(2)}`] });
  }
  if (tiles.length) await writeGrid(tiles, path.join(dir, RUN_FILES.topLosses), Math.min(3, tiles.length));
  return tiles.length;
}
