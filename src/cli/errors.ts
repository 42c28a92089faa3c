// How the command line reports failure: one line, a non-zero exit, never a stack trace.

/** A bad command line: unknown command or flag, missing argument, bad value. Exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Returns `s` with its control characters escaped (\x1b → \\x1b), new lines and tabs kept: class
 * names and file names come from other people's files and folders, and must not drive the terminal.
 */
export function printable(s: string): string {
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Training stopped by a signal, its state saved: exit 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as a shell reports it. */
export class InterruptedError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
    this.name = 'InterruptedError';
  }
}

/** The command's processes (train --nproc's ranks) failed and each said why: exit with `exitCode`, adding no line. */
export class WorkersFailed extends Error {
  constructor(readonly exitCode: number) {
    super('');
    this.name = 'WorkersFailed';
  }
}

/** The line for a --bs that does not split evenly among the ranks of train --nproc. */
export const batchSplitError = (bs: number, world: number, resumed = false): string => (resumed
  ? `the run's --bs ${bs} does not split among ${world} processes: resume with a --nproc that divides ${bs}`
  : `--bs ${bs} does not split among ${world} processes: give a batch size divisible by ${world} (each process takes --bs/${world})`);

// Errors every rank meets alike (by name: this module loads nothing heavy).
const SAID_BY_RANK_0 = new Set(['UsageError', 'InterruptedError', 'DataError', 'TrainingError']);

/** Returns the exit code for an error after printing it as one line on stderr. */
export function report(e: unknown, stderr: { write(s: string): unknown } = process.stderr): number {
  if (e instanceof WorkersFailed) return e.exitCode;
  const err = e instanceof Error ? e : new Error(String(e));
  const code = err instanceof UsageError ? 2 : err instanceof InterruptedError ? err.exitCode : 1;
  // A rank of train --nproc other than 0: what every rank meets alike, rank 0 says.
  const rank = process.env.VISIONTUNE_WORKER ? Number(process.env.RANK ?? 0) : 0;
  if (rank > 0 && SAID_BY_RANK_0.has(err.name)) return code;
  const line = err.message.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
  stderr.write(`visiontune: ${rank > 0 && !line.startsWith('rank ') ? `rank ${rank}: ` : ''}${printable(line)}\n`);
  if (process.env.VISIONTUNE_DEBUG) stderr.write(`${err.stack}\n`);
  return code;
}
