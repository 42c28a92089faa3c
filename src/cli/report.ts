// The interpretation as a person reads it in a terminal, and as --json carries it.
import type { Interpretation } from '../interpret/interpret.js';
import type { LabelSuspectFile } from '../health/label-check.js';

/** Prints the images whose labels confident learning doubts, the first ten of them; `where` says among which images. */
export function printLabelSuspects(suspects: readonly LabelSuspectFile[], where: string, log: (s: string) => void): void {
  log(`\nLikely label errors among ${where} (confident learning; look at them before relabelling): ${suspects.length || 'none'}`);
  for (const s of suspects.slice(0, 10)) log(`  ${s.file}: labelled ${s.given}, looks like ${s.suggested} (${(100 * s.confidence).toFixed(1)}%)`);
  if (suspects.length > 10) log(`  … and ${suspects.length - 10} more (--json lists them all)`);
}

/** Prints the interpretation tables; returns them for JSON. */
export function printInterpretation(interp: Interpretation, log: (s: string) => void) {
  const vocab = interp.vocab;
  const w = Math.max(8, ...vocab.map((v) => v.length)) + 2;
  log('\nConfusion matrix (rows: actual, columns: predicted)');
  log(' '.repeat(w) + vocab.map((v) => v.slice(0, 10).padStart(11)).join(''));
  interp.confusion.forEach((row, a) => log(vocab[a].padEnd(w) + row.map((c) => String(c).padStart(11)).join('')));
  const confused = interp.mostConfused();
  log('\nMost confused (actual → predicted, count)');
  if (confused.length === 0) log('  none');
  for (const [a, p, c] of confused.slice(0, 10)) log(`  ${a} → ${p}: ${c}`);
  const top = interp.topLosses(9);
  log('\nTop losses (predicted/actual, loss, probability of the prediction, file)');
  for (const t of top) log(`  ${t.predicted}/${t.actual}  ${t.loss.toFixed(2)}  ${t.probability.toFixed(2)}  ${t.path ?? `#${t.index}`}`);
  const perClass = interp.perClass();
  log('\nPer class, worst first');
  log(`  ${'class'.padEnd(w)}precision  recall  f1      support  train`);
  const cell = (x: number | null, width: number): string => (x === null ? '—' : x.toFixed(3)).padEnd(width);
  for (const r of perClass) {
    log(`  ${r.label.padEnd(w)}${cell(r.precision, 11)}${cell(r.recall, 8)}${cell(r.f1, 8)}` +
      `${String(r.support).padEnd(9)}${r.trainCount ?? ''}`);
    if (r.f1 === null) log('      not measured: no validation image of this class');
    for (const a of r.advice) log(`      advice: ${a}`);
  }
  const meanF1 = interp.meanF1();
  const unmeasured = perClass.filter((r) => r.f1 === null).length;
  if (meanF1 !== null) log(`  mean F1 ${meanF1.toFixed(3)}${unmeasured ? ` over the ${perClass.length - unmeasured} classes measured` : ''}`);
  return {
    confusion: { classes: vocab, matrix: interp.confusion },
    mostConfused: confused.map(([actual, predicted, count]) => ({ actual, predicted, count })), topLosses: top, perClass, meanF1,
  };
}

