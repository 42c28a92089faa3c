// report.html: one self-contained page per run — the data summary, the fastai table, the curves
// with the diagnosis in words, the confusion matrix, the worst classes with their confusions as
// thumbnails, the top losses, the per-class table with advice, the likely label errors, the
// settings. Charts are inline SVG, pictures data URIs: the page makes no request and works
// offline. Built from the run folder alone (settings.json, results.json), so `visiontune report`
// can rebuild it.
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { writeAtomic } from '../io/atomic.js';
import { jpegDataUri } from '../data/show.js';
import type { DatasetSummary } from '../data/summary.js';
import { passedOverLines } from '../data/summary.js';
import type { ClassReport, ItemOutcome, TopLoss } from '../interpret/interpret.js';
import type { EpochRow } from '../learner/learner.js';
import type { LrFindResult } from '../learner/lr-find.js';
import type { DuplicateGroup } from '../health/duplicates.js';
import type { LabelSuspectFile } from '../health/label-check.js';
import { chartSvgs, filePicture, writeCharts, writeTopLosses } from './pictures.js';
import { RUN_FILES } from './folder.js';

/** Thumbnails in the report, in pixels. */
export const THUMB_PX = 96;
/** Worst classes the report details, and the images shown per confusion. */
export const WORST_CLASSES = 3;
export const IMAGES_PER_CONFUSION = 6;

/** One validation image's outcome. */
export type ValidationItem = ItemOutcome;

/** What a run recorded (results.json, also --json): everything the report and the pictures are drawn from. */
export interface RunResults {
  arch: string;
  weights: string;
  classes: string[];
  baseLr: number | null;
  batchSize: number;
  /** Per epoch: the table's columns, `frozen`, `lr_<i>`, and the time as text and seconds. */
  epochs: (EpochRow & { seconds?: number })[];
  curves?: { losses: number[]; smoothLosses: number[]; batchesPerEpoch: number };
  lrFind?: LrFindResult | null;
  final?: { epoch?: number; valid_loss?: number; error_rate?: number; accuracy?: number };
  divergence?: { reason: string } | null;
  overTraining?: { epoch: number | null; summary: string };
  earlyStopping?: string | null;
  /** The diagnosis in words (see diagnosisSentences). */
  diagnosis?: string[];
  data?: DatasetSummary;
  duplicates?: DuplicateGroup[] | null;
  /** Validation error counting the leaked images and without them (leaks: validation images with a copy in training). */
  leaks?: { leaked: number; errorRate: number; errorRateWithout: number | null } | null;
  labelSuspects?: LabelSuspectFile[];
  calibration?: Record<string, number>;
  confusion?: { classes: readonly string[]; matrix: number[][] };
  mostConfused?: { actual: string; predicted: string; count: number }[];
  topLosses?: TopLoss[];
  perClass?: ClassReport[];
  meanF1?: number | null;
  validation?: ValidationItem[];
  test?: Record<string, number>;
  /** The run folder, for the advice that names it. */
  runDir?: string;
  /** Set when a signal stopped the run: which, and where (the checkpoint's position). */
  interrupted?: { signal: string; epoch: number; batch: number } | null;
  timings?: { totalSeconds: number };
  [key: string]: unknown;
}

/**
 * Returns the diagnosis in words: divergence; over-training at epoch N; still improving at the end
 * (train more); an error rate no better than always answering the largest class.
 */
export function diagnosisSentences(r: RunResults): string[] {
  const out: string[] = [];
  if (r.divergence) out.push(`Training diverged (${r.divergence.reason}): lower the learning rate.`);
  const rows = r.epochs.filter((e) => Number.isFinite(e.valid_loss));
  if (!r.divergence && r.overTraining?.epoch != null) {
    out.push(`Over-training began at epoch ${r.overTraining.epoch}: the valid loss rose while the train loss went on falling. ` +
      'Keep the best epoch (--early-stop), add data or augmentation, or train fewer epochs.');
  }
  if (!r.divergence && rows.length >= 2) {
    const last = rows[rows.length - 1];
    const best = Math.min(...rows.map((e) => e.valid_loss));
    const before = rows[rows.length - 2].valid_loss;
    if (last.valid_loss <= best && last.valid_loss < before * 0.99) {
      out.push(`Still improving at the end (valid loss ${before.toFixed(4)} → ${last.valid_loss.toFixed(4)} in the last epoch): train more, ` +
        `for instance visiontune train --resume ${r.runDir ?? 'RUN_DIR'} --epochs +3.`);
    }
  }
  const valid = r.data?.counts.valid;
  const error = r.final?.error_rate;
  if (valid && error !== undefined && Number.isFinite(error)) {
    const counts = Object.values(valid);
    const total = counts.reduce((a, b) => a + b, 0);
    const majority = total ? Math.max(...counts) / total : 0;
    if (total && error >= 1 - majority - 1e-9) {
      out.push(`The error rate (${error.toFixed(3)}) is no better than always answering the largest class (${(1 - majority).toFixed(3)}): ` +
        'the model has learned nothing useful yet. Train longer, check the labels, or try --lr auto.');
    }
  }
  if (r.overTraining?.summary && !out.some((s) => s.startsWith('Over-training'))) out.push(r.overTraining.summary);
  return out;
}

const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (v: number | null | undefined, d = 4): string => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(d));

async function thumb(file: string): Promise<string | null> {
  const px = await filePicture(file, THUMB_PX);
  return px ? jpegDataUri(px, THUMB_PX, THUMB_PX) : null;
}

function table(head: readonly string[], rows: readonly (readonly string[])[], cls = ''): string {
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function dataSection(d: DatasetSummary | undefined, r: RunResults): string {
  if (!d) return '';
  const splits = (['train', 'valid', 'test'] as const).filter((s) => Object.values(d.counts[s] ?? {}).some((n) => n > 0));
  const rows = d.vocab.map((c) => [esc(c), ...splits.map((s) => String(d.counts[s]?.[c] ?? 0))]);
  const skipped = d.skipped.length
    ? `<p>${d.skipped.length} file${d.skipped.length === 1 ? '' : 's'} skipped:</p><ul>${d.skipped.slice(0, 50).map((s) => `<li><code>${esc(s.path)}</code>: ${esc(s.reason)}${s.detail ? ` (${esc(s.detail)})` : ''}</li>`).join('')}</ul>`
    : '<p>No file skipped.</p>';
  const passed = passedOverLines(d.passedOver);
  const dups = r.duplicates?.length ? `<p>${r.duplicates.length} group${r.duplicates.length === 1 ? '' : 's'} of copies:</p><ul>${r.duplicates.slice(0, 20)
    .map((g) => `<li>${esc(g.kinds.join(', '))}: ${g.items.map((it) => `<code>${esc(path.basename(it.path))}</code> (${esc(it.label)}, ${esc(it.split)})`).join(', ')}</li>`).join('')}</ul>` : '';
  const leaks = r.leaks && r.leaks.leaked > 0
    ? `<p class="warn">${r.leaks.leaked} validation image${r.leaks.leaked === 1 ? ' has' : 's have'} a copy in training: the error rate is ${num(r.leaks.errorRate, 3)} with ` +
      `${r.leaks.leaked === 1 ? 'it' : 'them'} and ${num(r.leaks.errorRateWithout, 3)} without (train --dedupe leaves them out).</p>` : '';
  return `<section id="data"><h2>Data</h2><p>Layout: ${esc(d.layout)}</p>${table(['class', ...splits], rows)}` +
    `${d.warnings.map((w) => `<p class="warn">${esc(w)}</p>`).join('')}${leaks}${dups}${skipped}` +
    `${passed.length ? `<p>Passed over:</p><ul>${passed.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>` : ''}</section>`;
}

function epochTable(r: RunResults): string {
  const lrCols = Object.keys(r.epochs[0] ?? {}).filter((k) => /^lr_\d+$/.test(k));
  const head = ['epoch', 'phase', 'train_loss', 'valid_loss', 'error_rate', ...lrCols, 'time'];
  const rows = r.epochs.map((e) => [String(e.epoch), e.frozen ? 'frozen' : 'unfrozen', num(e.train_loss, 6), num(e.valid_loss, 6), num(e.error_rate, 6),
    ...lrCols.map((c) => (Number.isFinite(e[c]) ? e[c].toExponential(2) : '—')), esc(typeof e.time === 'string' ? e.time : num(e.seconds ?? e.time, 1))]);
  return table(head, rows, 'epochs');
}

async function worstClasses(r: RunResults): Promise<string> {
  if (!r.perClass || !r.validation) return '';
  const worst = r.perClass.filter((c) => c.f1 !== null && c.f1 < 1).slice(0, WORST_CLASSES);
  if (!worst.length) return '<section id="worst"><h2>Worst classes</h2><p>Every measured class is perfect on the validation set.</p></section>';
  const parts: string[] = [];
  for (const c of worst) {
    const wrong = r.validation.filter((v) => v.actual === c.label && v.predicted !== c.label);
    const byPredicted = new Map<string, ValidationItem[]>();
    for (const v of wrong) byPredicted.set(v.predicted, [...(byPredicted.get(v.predicted) ?? []), v]);
    const groups = [...byPredicted].sort((a, b) => b[1].length - a[1].length).slice(0, 3);
    const rows: string[] = [];
    for (const [predicted, items] of groups) {
      const pics: string[] = [];
      for (const v of items.slice(0, IMAGES_PER_CONFUSION)) {
        const uri = await thumb(v.path);
        if (uri) pics.push(`<figure><img src="${uri}" width="${THUMB_PX}" height="${THUMB_PX}" alt="${esc(path.basename(v.path))}"><figcaption>${esc(path.basename(v.path))} ${num(v.probability, 2)}</figcaption></figure>`);
      }
      rows.push(`<p>taken for <b>${esc(predicted)}</b>: ${items.length} image${items.length === 1 ? '' : 's'}</p><div class="thumbs">${pics.join('')}</div>`);
    }
    parts.push(`<h3>${esc(c.label)}: F1 ${num(c.f1, 3)}, precision ${num(c.precision, 3)}, recall ${num(c.recall, 3)}</h3>` +
      `${c.advice.map((a) => `<p class="advice">${esc(a)}</p>`).join('')}${rows.join('') || '<p>No image of this class was taken for another (its precision suffers from others taken for it).</p>'}`);
  }
  return `<section id="worst"><h2>Worst classes</h2>${parts.join('')}</section>`;
}

async function topLossesSection(r: RunResults): Promise<string> {
  if (!r.topLosses?.length) return '';
  const figs: string[] = [];
  for (const t of r.topLosses) {
    const uri = t.path ? await thumb(t.path) : null;
    figs.push(`<figure>${uri ? `<img src="${uri}" width="${THUMB_PX}" height="${THUMB_PX}" alt="${esc(t.path ? path.basename(t.path) : `#${t.index}`)}">` : ''}` +
      `<figcaption>${esc(t.predicted)}/${esc(t.actual)}<br>${num(t.loss, 2)} / ${num(t.probability, 2)}</figcaption></figure>`);
  }
  return `<section id="top-losses"><h2>Top losses</h2><p>predicted/actual, loss / probability of the prediction</p><div class="thumbs">${figs.join('')}</div></section>`;
}

function perClassSection(r: RunResults, svg: string | undefined): string {
  if (!r.perClass) return '';
  const rows = r.perClass.map((c) => [esc(c.label), num(c.precision, 3), num(c.recall, 3), num(c.f1, 3), String(c.support), String(c.trainCount ?? ''),
    c.advice.map(esc).join('<br>')]);
  return `<section id="per-class"><h2>Per class, worst first</h2>${svg ?? ''}${table(['class', 'precision', 'recall', 'F1', 'support', 'train', 'advice'], rows)}` +
    `${r.meanF1 != null ? `<p>Mean F1 ${num(r.meanF1, 3)}</p>` : ''}</section>`;
}

function suspectsSection(r: RunResults): string {
  if (!r.labelSuspects?.length) return '';
  const rows = r.labelSuspects.slice(0, 100).map((s) => [`<code>${esc(s.file)}</code>`, esc(s.split), esc(s.given), esc(s.suggested), num(s.confidence, 3)]);
  return `<section id="labels"><h2>Likely label errors</h2><p>Confident learning: look at these before relabelling.</p>${table(['file', 'split', 'labelled', 'looks like', 'confidence'], rows)}</section>`;
}

const STYLE = `body{font-family:"DejaVu Sans",sans-serif;margin:24px auto;max-width:1100px;color:#222;line-height:1.4}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}.warn{color:#a33}.advice{color:#555;font-style:italic}.diagnosis li{margin:4px 0}
.thumbs{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;font-size:11px;text-align:center;width:${THUMB_PX + 24}px}
svg{max-width:100%;height:auto}#per-class td:last-child,#labels td{text-align:left}pre{background:#f7f7f7;padding:8px;font-size:12px;overflow:auto}code{font-size:12px}`;

/** Returns the report's HTML for a run's results and settings; `charts`: the SVGs by file name when already rendered (see chartSvgs). */
export async function reportHtml(r: RunResults, settings: Record<string, unknown> | null, title: string,
  charts?: ReadonlyMap<string, string>): Promise<string> {
  const svgs = charts ?? await chartSvgs(r);
  const diagnosis = r.diagnosis ?? diagnosisSentences(r);
  const final = r.final ?? {};
  const header = `<h1>${esc(title)}</h1><p>${esc(r.arch)} (${r.weights === 'none' ? 'random' : esc(r.weights)}${r.epochs.length ? ' weights' : ''}), ${r.classes.length} classes` +
    `${r.epochs.length ? `, ${r.epochs.length} epoch${r.epochs.length === 1 ? '' : 's'}` : ''}` +
    `${final.epoch !== undefined ? `; final (epoch ${final.epoch}): valid loss ${num(final.valid_loss)}, error rate ${num(final.error_rate)}` : ''}</p>` +
    `${r.interrupted ? `<p class="warn">Interrupted by ${esc(r.interrupted.signal)} at epoch ${r.interrupted.epoch}, batch ${r.interrupted.batch}: resume with ` +
      `<code>visiontune train --resume ${esc(r.runDir ?? 'RUN_DIR')}</code>.</p>` : ''}`;
  const sections = [
    header,
    dataSection(r.data, r),
    !r.epochs.length ? '' : `<section id="training"><h2>Training</h2>${epochTable(r)}<ul class="diagnosis">${diagnosis.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>` +
      `${svgs.get(RUN_FILES.curves) ?? ''}${svgs.get(RUN_FILES.lrFind) ?? ''}</section>`,
    r.confusion ? `<section id="confusion"><h2>Confusion matrix</h2>${svgs.get(RUN_FILES.confusion) ?? ''}${svgs.get(RUN_FILES.confusionNormalized) ?? ''}</section>` : '',
    await worstClasses(r),
    await topLossesSection(r),
    perClassSection(r, svgs.get(RUN_FILES.perClass)),
    suspectsSection(r),
    r.calibration ? `<section id="calibration"><h2>Calibration</h2><p>temperature ${num(r.calibration.temperature, 3)}; validation NLL ${num(r.calibration.nllBefore)} → ` +
      `${num(r.calibration.nllAfter)}; expected calibration error ${num(r.calibration.eceBefore)} → ${num(r.calibration.eceAfter)}</p></section>` : '',
    r.test ? `<section id="test"><h2>Test set</h2><p>${Object.entries(r.test).map(([k, v]) => `${esc(k)} ${num(v)}`).join(', ')}</p></section>` : '',
    settings ? `<section id="settings"><h2>Settings</h2><pre>${esc(JSON.stringify({ ...settings, data: undefined }, null, 2))}</pre></section>` : '',
  ];
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>` +
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">` +
    `<style>${STYLE}</style></head><body>${sections.join('\n')}</body></html>\n`;
}

/**
 * Writes a run's outputs into `dir`: results.json, each chart's PNG, top_losses.jpg and
 * report.html, the charts rendered once for both; returns results.json's text.
 */
export async function writeRunOutputs(r: RunResults, dir: string, settings: Record<string, unknown> | null, title: string): Promise<string> {
  const text = `${JSON.stringify(r, null, 2)}\n`;
  writeAtomic(path.join(dir, RUN_FILES.resultsJson), [text]);
  const charts = await writeCharts(r, dir);
  await writeTopLosses(r, dir);
  writeAtomic(path.join(dir, RUN_FILES.report), [await reportHtml(r, settings, title, charts)]);
  return text;
}

/**
 * Builds `report.html` in a run folder from its results.json and settings.json; returns its path.
 * Throws an Error naming the missing file when the folder is not a run folder.
 */
export async function buildReport(runDir: string): Promise<string> {
  const resultsFile = path.join(runDir, RUN_FILES.resultsJson);
  if (!existsSync(resultsFile)) throw new Error(`${runDir} is not a visiontune run folder: it has no ${RUN_FILES.resultsJson}`);
  const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as RunResults;
  const settingsFile = path.join(runDir, RUN_FILES.settings);
  const settings = existsSync(settingsFile) ? JSON.parse(readFileSync(settingsFile, 'utf8')) as Record<string, unknown> : null;
  const file = path.join(runDir, RUN_FILES.report);
  writeAtomic(file, [await reportHtml(results, settings, `visiontune run ${path.basename(path.resolve(runDir))}`)]);
  return file;
}
