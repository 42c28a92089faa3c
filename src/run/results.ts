// results.csv: one row per epoch of a run — epoch, phase (frozen or unfrozen), train_loss,
// valid_loss, error_rate, accuracy, the learning rate of each layer group at the epoch's last
// batch, and the epoch's seconds.
import type { Callback, EpochRow, Learner } from '../learner/learner.js';

/**
 * Adds to each epoch's row what results.csv shows beyond the table: `frozen` (1 while the body
 * was frozen, else 0) and `lr_<i>`, each layer group's learning rate at the epoch's last batch.
 */
export class EpochExtras implements Callback {
  /** After the recorder made the row, before the checkpoint keeps it. */
  readonly order = 50;

  afterEpoch(learn: Learner, row: EpochRow): void {
    if (learn.recorder.silent) return;
    row.frozen = learn.frozenGroups > 0 ? 1 : 0;
    learn.groupLrs().forEach((lr, i) => { row[`lr_${i}`] = lr; });
  }
}

const number = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '' : String(v));

/** Returns results.csv's text for the rows (see EpochExtras); an unmeasured value is an empty cell. */
export function resultsCsv(rows: readonly EpochRow[]): string {
  const groups = Math.max(0, ...rows.map((r) => Object.keys(r).filter((k) => /^lr_\d+$/.test(k)).length));
  const lrCols = Array.from({ length: groups }, (_, i) => `lr_${i}`);
  const header = ['epoch', 'phase', 'train_loss', 'valid_loss', 'error_rate', 'accuracy', ...lrCols, 'time'];
  const lines = rows.map((r) => [
    String(r.epoch), r.frozen ? 'frozen' : 'unfrozen', number(r.train_loss), number(r.valid_loss), number(r.error_rate),
    number(r.error_rate === undefined || Number.isNaN(r.error_rate) ? NaN : 1 - r.error_rate), ...lrCols.map((c) => number(r[c])), r.time.toFixed(3),
  ].join(','));
  return `${[header.join(','), ...lines].join('\n')}\n`;
}
