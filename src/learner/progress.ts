// A batch progress bar on a terminal (stderr), erased before each table row; silent otherwise.
import type { Callback, Learner } from './learner.js';

export class ProgressBar implements Callback {
  #shown = false;

  constructor(readonly stream: NodeJS.WriteStream = process.stderr, readonly width = 30) {}

  get enabled(): boolean { return Boolean(this.stream.isTTY); }

  afterBatch(_learn: Learner, b: { phase: 'train' | 'valid'; index: number; of: number; loss: number }): void {
    if (!this.enabled) return;
    const done = Math.round(((b.index + 1) / Math.max(1, b.of)) * this.width);
    const bar = '█'.repeat(done) + '░'.repeat(this.width - done);
    this.stream.write(`\r${b.phase.padEnd(5)} ${bar} ${b.index + 1}/${b.of}  loss ${b.loss.toFixed(4)}\x1b[K`);
    this.#shown = true;
    // Validation ends the epoch: leave a clean line for the table row.
    if (b.phase === 'valid' && b.index + 1 >= b.of) this.clear();
  }

  /** Erases the bar. */
  clear(): void {
    if (this.#shown) this.stream.write('\r\x1b[K');
    this.#shown = false;
  }

  afterEpoch(): void { this.clear(); }
  afterFit(): void { this.clear(); }
}
