// A strict pickle reader: the protocol-2 opcodes a torch.save state dict uses, and nothing that
// runs code. GLOBAL is checked against an allow-list the moment it is read, and REDUCE and
// BINPERSID are handed to the caller's hooks, which decide what an allowed callable means.

/** A Python tuple (arrays stand for lists). */
export class PyTuple {
  constructor(readonly items: Value[]) {}
}

/** A Python dict or OrderedDict; keys are restricted to plain scalars. */
export class PyDict {
  readonly map = new Map<DictKey, Value>();
  constructor(readonly ordered: boolean) {}
}

/** A reference to an allowed module-level name, e.g. torch._utils._rebuild_tensor_v2; never called. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualifiedName(): string { return `${this.module}.${this.name}`; }
}

/** A value the caller's hooks produce (a storage, a tensor record); the machine only moves it around. */
export abstract class PyOpaque {
  abstract get typeName(): string;
}

export type DictKey = string | number | bigint | boolean | null;
export type Value = DictKey | PyTuple | PyDict | PyGlobal | PyOpaque | Value[];

/** The pickle was refused; `reason` matches CheckpointErrorReason. */
export class PickleError extends Error {
  constructor(readonly reason: 'unsafe-global' | 'corrupt' | 'unsupported', message: string) {
    super(message);
    this.name = 'PickleError';
  }
}

export interface UnpickleOptions {
  /** 'module.name' strings GLOBAL may reference; anything else throws as soon as it is read. */
  allowedGlobals: ReadonlySet<string>;
  /** Interprets a persistent id (BINPERSID). */
  persistentLoad(pid: Value): Value;
  /** Interprets REDUCE on an allowed global with its argument tuple. */
  reduce(fn: PyGlobal, args: PyTuple): Value;
  maxMemo?: number;
  maxStack?: number;
  maxMarkDepth?: number;
  maxStringBytes?: number;
}

/** Default bounds: far above what a state dict needs, far below what exhausts memory. */
export const PICKLE_LIMITS = { maxMemo: 1_000_000, maxStack: 1_000_000, maxMarkDepth: 1_000, maxStringBytes: 1 << 20 };

// Opcodes outside the supported set, named so the error says which one was met.
const KNOWN_UNSUPPORTED: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x82: 'EXT1', 0x83: 'EXT2',
  0x84: 'EXT4', 0x50: 'PERSID', 0x95: 'FRAME', 0x94: 'MEMOIZE', 0x8c: 'SHORT_BINUNICODE', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x49: 'INT', 0x4c: 'LONG', 0x46: 'FLOAT', 0x53: 'STRING', 0x56: 'UNICODE', 0x30: 'POP',
  0x31: 'DUP', 0x32: 'POP_MARK', 0x8b: 'LONG4', 0x54: 'BINSTRING', 0x70: 'PUT', 0x67: 'GET',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Returns the value a pickle stream builds, executing nothing. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions): Value {
  const limits = { ...PICKLE_LIMITS, ...opts };
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const memo = new Map<number, Value>();
  const marks: Value[][] = [];
  let stack: Value[] = [];
  let pos = 0;

  const fail = (message: string): never => { throw new PickleError('corrupt', `data.pkl, byte ${pos}: ${message}`); };
  const need = (n: number): number => {
    if (pos + n > data.length) fail('the pickle ends in the middle of an instruction');
    const at = pos;
    pos += n;
    return at;
  };
  const push = (v: Value): void => {
    if (stack.length >= limits.maxStack) fail(`more than ${limits.maxStack} values on the stack`);
    stack.push(v);
  };
  const pop = (): Value => (stack.length ? stack.pop() as Value : fail('pop from an empty stack'));
  const top = (): Value => (stack.length ? stack[stack.length - 1] : fail('the stack is empty'));
  const popMark = (): Value[] => {
    const items = stack;
    stack = marks.pop() ?? fail('no MARK to pop to');
    return items;
  };
  const line = (): string => {
    const stop = data.indexOf(0x0a, pos);
    if (stop < 0 || stop - pos > 256) fail('a GLOBAL name is unterminated or too long');
    const s = new TextDecoder('latin1').decode(data.subarray(pos, stop));
    pos = stop + 1;
    return s;
  };
  const text = (n: number, decode: (b: Uint8Array) => string): string => {
    if (n > limits.maxStringBytes) fail(`a ${n}-byte string exceeds the ${limits.maxStringBytes}-byte limit`);
    const at = need(n);
    try { return decode(data.subarray(at, at + n)); } catch { return fail('a string is not valid UTF-8'); }
  };
  const put = (index: number): void => {
    if (!memo.has(index) && memo.size >= limits.maxMemo) fail(`more than ${limits.maxMemo} memo entries`);
    memo.set(index, top());
  };
  const get = (index: number): void => {
    if (!memo.has(index)) fail(`memo entry ${index} was never stored`);
    push(memo.get(index) as Value);
  };
  const setItems = (dict: Value, items: Value[]): void => {
    if (!(dict instanceof PyDict)) fail(`SETITEM(S) on a ${typeName(dict)}, not a dict`);
    if (items.length % 2) fail('SETITEMS with an odd number of values');
    for (let i = 0; i < items.length; i += 2) (dict as PyDict).map.set(dictKey(items[i], fail), items[i + 1]);
  };
  const appendTo = (list: Value, items: Value[]): void => {
    if (!Array.isArray(list)) fail(`APPEND(S) on a ${typeName(list)}, not a list`);
    (list as Value[]).push(...items);
  };

  while (pos < data.length) {
    const op = data[need(1)];
    switch (op) {
      case 0x80: { // PROTO
        const proto = data[need(1)];
        if (proto > 3) throw new PickleError('unsupported', `pickle protocol ${proto} is not supported (torch.save writes protocol 2; re-save without pickle_protocol)`);
        break;
      }
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) fail('STOP with a malformed stack');
        return stack[0];
      case 0x63: { // GLOBAL
        const g = new PyGlobal(line(), line());
        if (!opts.allowedGlobals.has(g.qualifiedName)) {
          throw new PickleError('unsafe-global', `the pickle references ${g.qualifiedName}, which a tensor state dict never needs; `
            + 'refusing to load it (nothing was executed). The file may be malicious, or it pickles a whole object '
            + '(torch.save(model)): re-save model.state_dict() instead');
        }
        push(g);
        break;
      }
      case 0x28: // MARK
        if (marks.length >= limits.maxMarkDepth) fail(`MARKs nested deeper than ${limits.maxMarkDepth}`);
        marks.push(stack);
        stack = [];
        break;
      case 0x29: push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x74: push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: case 0x86: case 0x87: { // TUPLE1..3
        const n = op - 0x84;
        if (stack.length < n) fail(`TUPLE${n} needs ${n} values`);
        push(new PyTuple(stack.splice(stack.length - n, n)));
        break;
      }
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x7d: push(new PyDict(false)); break; // EMPTY_DICT
      case 0x61: { const v = pop(); appendTo(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendTo(top(), items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: push(view.getInt32(need(4), true)); break; // BININT
      case 0x4b: push(data[need(1)]); break; // BININT1
      case 0x4d: push(view.getUint16(need(2), true)); break; // BININT2
      case 0x8a: { // LONG1: little-endian two's complement
        const n = data[need(1)];
        const at = need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[at + i]);
        if (n > 0 && data[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: push(view.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x58: push(text(view.getUint32(need(4), true), (b) => utf8.decode(b))); break; // BINUNICODE
      case 0x55: push(text(data[need(1)], (b) => new TextDecoder('latin1').decode(b))); break; // SHORT_BINSTRING
      case 0x71: put(data[need(1)]); break; // BINPUT
      case 0x72: put(view.getUint32(need(4), true)); break; // LONG_BINPUT
      case 0x68: get(data[need(1)]); break; // BINGET
      case 0x6a: get(view.getUint32(need(4), true)); break; // LONG_BINGET
      case 0x51: { const pid = pop(); push(opts.persistentLoad(pid)); break; } // BINPERSID
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PyGlobal)) return fail(`REDUCE on a ${typeName(fn)}, which is not callable`);
        if (!(args instanceof PyTuple)) return fail(`REDUCE on ${fn.qualifiedName} with a ${typeName(args)} instead of a tuple`);
        push(opts.reduce(fn, args));
        break;
      }
      case 0x62: { // BUILD: only the attribute dict of a (Ordered)Dict, e.g. state_dict's _metadata; ignored
        const state = pop();
        const target = top();
        if (!(target instanceof PyDict)) {
          throw new PickleError('unsupported', `data.pkl, byte ${pos}: BUILD on a ${typeName(target)} is not allowed (only on dicts)`);
        }
        if (state !== null && !(state instanceof PyDict)) fail(`BUILD with a ${typeName(state)} state`);
        break;
      }
      default: {
        const name = KNOWN_UNSUPPORTED[op] ?? `0x${op.toString(16).padStart(2, '0')}`;
        throw new PickleError('unsupported', `data.pkl, byte ${pos - 1}: pickle opcode ${name} is not allowed in a state dict`);
      }
    }
  }
  return fail('the pickle has no STOP');
}

/** Returns Python's name for a value's type, for error messages. */
export function typeName(v: Value): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyDict) return v.ordered ? 'OrderedDict' : 'dict';
  if (v instanceof PyGlobal) return v.qualifiedName;
  if (v instanceof PyOpaque) return v.typeName;
  switch (typeof v) {
    case 'boolean': return 'bool';
    case 'number': return Number.isInteger(v) ? 'int' : 'float';
    case 'bigint': return 'int';
    default: return 'str';
  }
}

function dictKey(k: Value, fail: (m: string) => never): DictKey {
  if (k === null || typeof k !== 'object') return k;
  return fail(`a dict key is a ${typeName(k)}; only strings and numbers are accepted`);
}
