// How the command line reports failure: one line, a non-zero exit, never a stack trace.

/** A bad command line: unknown command or flag, missing argument, bad value. Exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Returns the exit code for an error after printing it as one line on stderr. */
export function report(e: unknown, stderr: { write(s: string): unknown } = process.stderr): number {
  const err = e instanceof Error ? e : new Error(String(e));
  const line = err.message.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
  stderr.write(`visiontune: ${line}\n`);
  if (process.env.VISIONTUNE_DEBUG) stderr.write(`${err.stack}\n`);
  return err instanceof UsageError ? 2 : 1;
}
