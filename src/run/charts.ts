// The run's charts as Vega-Lite specs, rendered headless by vega in Node (its 'none' renderer
// writes SVG: no browser, no canvas) and to PNG by sharp (librsvg). The same SVG goes inline in
// the report. Specs follow fastai's plots: plot_loss (per batch, smoothed), the table's losses and
// error per epoch, plot_lr_find, plot_confusion_matrix, and per-class precision/recall/F1.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import sharp from 'sharp';
import { writeAtomic } from '../io/atomic.js';
import type { EpochRow } from '../learner/learner.js';
import type { LrFindResult } from '../learner/lr-find.js';
import type { ClassReport } from '../interpret/interpret.js';

const FONT = 'DejaVu Sans, sans-serif';
const CONFIG = { font: FONT, view: { stroke: '#ddd' }, axis: { labelFontSize: 11, titleFontSize: 12 }, title: { fontSize: 14 } };

/** Returns a Vega-Lite spec rendered to SVG text (white background). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile({ background: 'white', config: CONFIG, ...spec } as TopLevelSpec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Writes SVG text as a PNG file at twice its size (atomically); returns the PNG's bytes. */
export async function writePng(svg: string, file: string): Promise<Buffer> {
  const png = await sharp(Buffer.from(svg), { density: 144 }).flatten({ background: '#ffffff' }).png().toBuffer();
  writeAtomic(file, [png]);
  return png;
}

/** What the training curves show: the per-batch losses, the epoch rows, and the marks. */
export interface CurvesData {
  /** Every training batch's loss and the smoothed loss after it (Recorder.losses, smoothLosses). */
  losses: readonly number[];
  smoothLosses: readonly number[];
  /** Training batches per epoch, to place epoch boundaries on the batch axis. */
  batchesPerEpoch: number;
  rows: readonly EpochRow[];
  /** The first unfrozen epoch, when a frozen phase came before; null otherwise. */
  unfrozenAt: number | null;
  /** The epoch where over-training set in (overTrainingEpoch), or null. */
  overTrainingAt: number | null;
}

const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);

/**
 * The curves: train loss per batch (raw, faint, and smoothed), then train and valid loss per
 * epoch, then error rate per epoch; a dashed rule where the body was unfrozen and a red one
 * where over-training began.
 */
export function curvesSpec(d: CurvesData): TopLevelSpec {
  const batches = d.losses.map((loss, i) => ({ batch: i + 1, loss: finite(loss), smoothed: finite(d.smoothLosses[i]) }));
  const epochs = d.rows.flatMap((r) => [
    { epoch: r.epoch, series: 'train_loss', value: finite(r.train_loss) },
    { epoch: r.epoch, series: 'valid_loss', value: finite(r.valid_loss) },
  ]);
  const errors = d.rows.map((r) => ({ epoch: r.epoch, error_rate: finite(r.error_rate) }));
  const marks = [
    ...(d.unfrozenAt !== null ? [{ epoch: d.unfrozenAt - 0.5, batch: d.unfrozenAt * d.batchesPerEpoch + 0.5, what: 'unfrozen' }] : []),
    ...(d.overTrainingAt !== null ? [{ epoch: d.overTrainingAt, batch: d.overTrainingAt * d.batchesPerEpoch + 0.5, what: 'over-training' }] : []),
  ];
  // Each mark a dashed rule in its own colour, named by a label at its top.
  const rules = (x: 'epoch' | 'batch') => marks.flatMap((m) => [
    { data: { values: [m] }, mark: { type: 'rule', strokeDash: [5, 4], strokeWidth: 1.5, color: m.what === 'unfrozen' ? '#7f7f7f' : '#d62728' }, encoding: { x: { field: x, type: 'quantitative' } } },
    {
      data: { values: [m] }, mark: { type: 'text', align: 'left', dx: 3, dy: 6, fontSize: 10, color: m.what === 'unfrozen' ? '#555' : '#d62728' },
      encoding: { x: { field: x, type: 'quantitative' }, y: { value: 0 }, text: { field: 'what' } },
    },
  ]);
  const epochAxis = { field: 'epoch', type: 'quantitative' as const, axis: { tickMinStep: 1, format: 'd' }, title: 'epoch' };
  return {
    vconcat: [
      {
        title: 'Train loss per batch', width: 560, height: 180,
        layer: [
          { data: { values: batches }, mark: { type: 'line', color: '#aec7e8', strokeWidth: 1 }, encoding: { x: { field: 'batch', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' } }, y: { field: 'loss', type: 'quantitative', title: 'loss' } } },
          { data: { values: batches }, mark: { type: 'line', color: '#1f77b4', strokeWidth: 2 }, encoding: { x: { field: 'batch', type: 'quantitative' }, y: { field: 'smoothed', type: 'quantitative' } } },
          ...rules('batch'),
        ],
      },
      {
        hconcat: [
          {
            title: 'Loss per epoch', width: 250, height: 170,
            layer: [
              { data: { values: epochs }, mark: { type: 'line', point: true }, encoding: { x: epochAxis, y: { field: 'value', type: 'quantitative', title: 'loss' }, color: { field: 'series', type: 'nominal', title: null, scale: { domain: ['train_loss', 'valid_loss'], range: ['#1f77b4', '#ff7f0e'] } } } },
              ...rules('epoch'),
            ],
          },
          {
            title: 'Error rate per epoch', width: 250, height: 170,
            layer: [
              { data: { values: errors }, mark: { type: 'line', point: true, color: '#2ca02c' }, encoding: { x: epochAxis, y: { field: 'error_rate', type: 'quantitative', title: 'error rate' } } },
              ...rules('epoch'),
            ],
          },
        ],
      },
    ],
  } as TopLevelSpec;
}

/** fastai's plot_lr_find: smoothed loss against learning rate (log axis), the suggestions as rules. */
export function lrFindSpec(r: LrFindResult): TopLevelSpec {
  const values = r.lrs.map((lr, i) => ({ lr, loss: finite(r.losses[i]) }));
  const low = Math.min(...r.losses.filter(Number.isFinite));
  // As fastai: the curve until the loss passes four times its minimum (the rest is divergence).
  const shown = values.filter((v) => v.loss !== null && v.loss <= 4 * Math.max(low, 1e-8));
  const suggestions = Object.entries(r.suggestions).map(([name, lr]) => ({ name: `${name} ${lr.toExponential(2)}`, lr }));
  return {
    title: 'Learning rate finder', width: 520, height: 300,
    layer: [
      { data: { values: shown }, mark: { type: 'line', color: '#1f77b4', strokeWidth: 2 }, encoding: { x: { field: 'lr', type: 'quantitative', scale: { type: 'log' }, title: 'learning rate (log scale)' }, y: { field: 'loss', type: 'quantitative', title: 'smoothed loss', scale: { zero: false } } } },
      { data: { values: suggestions }, mark: { type: 'rule', strokeDash: [4, 3], strokeWidth: 1.5 }, encoding: { x: { field: 'lr', type: 'quantitative' }, color: { field: 'name', type: 'nominal', title: 'suggestions' } } },
    ],
  } as TopLevelSpec;
}

/** fastai's plot_confusion_matrix: actual classes down, predicted across, counts (or row shares) in the cells. */
export function confusionSpec(vocab: readonly string[], matrix: readonly (readonly number[])[], normalized: boolean): TopLevelSpec {
  const values = matrix.flatMap((row, a) => {
    const total = row.reduce((x, y) => x + y, 0);
    return row.map((count, p) => ({ actual: vocab[a], predicted: vocab[p], count, value: normalized ? (total ? count / total : 0) : count }));
  });
  const side = Math.min(640, Math.max(220, 46 * vocab.length));
  const format = normalized ? '.2f' : 'd';
  const max = Math.max(1e-9, ...values.map((v) => v.value));
  return {
    title: normalized ? 'Confusion matrix (each row divided by its count)' : 'Confusion matrix',
    width: side, height: side,
    data: { values },
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: [...vocab], axis: { labelAngle: -40 } },
      y: { field: 'actual', type: 'nominal', sort: [...vocab] },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'value', type: 'quantitative', scale: { scheme: 'blues', domain: [0, max] }, title: normalized ? 'share' : 'count' } } },
      {
        mark: { type: 'text', fontSize: vocab.length > 12 ? 9 : 12 },
        encoding: {
          text: { field: 'value', type: 'quantitative', format },
          color: { condition: { test: `datum.value > ${max / 2}`, value: 'white' }, value: 'black' },
        },
      },
    ],
  } as TopLevelSpec;
}

/** Precision, recall and F1 of each class, worst F1 first (unmeasured values left out). */
export function perClassSpec(rows: readonly ClassReport[]): TopLevelSpec {
  const order = rows.map((r) => r.label);
  const values = rows.flatMap((r) => (['precision', 'recall', 'f1'] as const).flatMap((m) => (r[m] === null ? [] : [{ class: r.label, metric: m, value: r[m] }])));
  return {
    title: 'Per class, worst F1 first', width: Math.min(900, Math.max(260, 60 * rows.length)), height: 220,
    data: { values },
    mark: 'bar',
    encoding: {
      x: { field: 'class', type: 'nominal', sort: order, axis: { labelAngle: -40 }, title: null },
      xOffset: { field: 'metric', sort: ['precision', 'recall', 'f1'] },
      y: { field: 'value', type: 'quantitative', scale: { domain: [0, 1] }, title: null },
      color: { field: 'metric', type: 'nominal', sort: ['precision', 'recall', 'f1'], scale: { range: ['#1f77b4', '#ff7f0e', '#2ca02c'] }, title: null },
    },
  } as TopLevelSpec;
}
