// Errors raised by the tensor engine.

/** What went wrong inside an op, as libtorch classified it. */
export type TorchErrorKind = 'index' | 'type' | 'value' | 'oom' | 'disposed' | 'error';

/** An op failed: `op` names it, the message is libtorch's (or ours for checks made before the call). */
export class TorchError extends Error {
  readonly op: string;
  readonly kind: TorchErrorKind;

  constructor(op: string, message: string, kind: TorchErrorKind = 'error') {
    super(`${op}: ${message}`);
    this.name = 'TorchError';
    this.op = op;
    this.kind = kind;
  }
}

/** Returns `e` as a TorchError naming `op` (errors from the addon carry a `kind`). */
export function asTorchError(op: string, e: unknown): Error {
  if (e instanceof TorchError) return e;
  if (e instanceof Error) {
    const kind = (e as Error & { kind?: TorchErrorKind }).kind;
    return new TorchError(op, e.message, kind ?? 'error');
  }
  return new TorchError(op, String(e));
}
