/**
 * A pickle codec for plain data, so that Python's `multiprocessing.connection`
 * `send()`/`recv()` (which pickle) talk to our Connection, Listener/Client and
 * Queue.
 *
 * Encoding writes protocol 4 (Python's default since 3.8, and what
 * multiprocessing sends) or 5, with one FRAME as Python's pickler writes for
 * small objects: `None`, `True`/`False`, `int` (BININT1/BININT2/BININT,
 * LONG1/LONG4), `float` (BINFLOAT), `str` (SHORT_BINUNICODE/BINUNICODE/
 * BINUNICODE8, UTF-8 with `surrogatepass` as Python), `bytes`, `list`, `dict`
 * and `set`. Shared containers are written once and referenced (MEMOIZE and
 * BINGET), as Python does; a cycle is refused.
 *
 * Decoding reads protocols 0 to 5 of that subset plus tuples, frozensets and
 * bytearrays. It is a stack machine over the bytes that never calls anything:
 * every opcode that names or calls a Python object (GLOBAL, STACK_GLOBAL,
 * REDUCE, BUILD, INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT1/2/4, PERSID, BINPERSID)
 * and the out-of-band buffer opcodes are refused with an
 * {@link UnpicklingError} naming the opcode and its offset. Lengths are
 * checked against the bytes that are there before anything is allocated, the
 * memo is a Map (an index of 2^32 - 1 costs one entry), and the result's
 * nesting is bounded (`maxDepth`).
 * @module
 */
import { isUtf8 } from 'node:buffer';
import { DecodeError, encodeError } from './errors.js';
import type { Codec } from './codec.js';

/** Options of the pickle encoder. */
export interface PickleEncodeOptions {
  /** 4 (default: Python's default protocol since 3.8; Python 3.4+ reads it) or 5 (Python 3.8+). */
  protocol?: 4 | 5;
  /** The deepest nesting of arrays, objects, Maps and Sets written (default 1000, as Python's recursion limit). */
  maxDepth?: number;
}

/** Options of the pickle decoder. */
export interface PickleDecodeOptions {
  /**
   * What a Python `dict` becomes:
   * - `'object'` (default): a plain object, as `JSON.parse` makes, whose
   *   keys are the dict's `str` keys (and `int` keys as their decimal text;
   *   other key types are refused). A `'__proto__'` key is an own property
   *   (defined, never assigned), so no prototype changes.
   * - `'null-prototype'`: the same keys on an object with a null prototype
   *   (no inherited `toString`, `hasOwnProperty`...; slower to build).
   * - `'map'`: a Map keyed by the decoded keys (any hashable type), in the
   *   dict's order.
   */
  dicts?: 'object' | 'null-prototype' | 'map';
  /** The deepest nesting of containers accepted (default 1000). A cycle is refused. */
  maxDepth?: number;
}

/** Options of {@link pickleCodec}: both sides'. */
export interface PickleOptions extends PickleEncodeOptions, PickleDecodeOptions {}

/**
 * A pickle that this decoder refuses or cannot read: a forbidden or unknown
 * opcode, truncated or malformed data, a limit exceeded. `code` is
 * `'ERR_IPC_DECODE'` (it is a {@link DecodeError}; `queue` is `''` and
 * `priority` 0 when it comes straight from the codec, and a Queue wraps it
 * in its own DecodeError as the `cause`). `offset` is the byte offset of the
 * opcode in the pickle, `opcode` its name when it has one.
 */
export class UnpicklingError extends DecodeError {
  /** The byte offset of the opcode (or of the end of the data when it was cut short). */
  readonly offset: number;
  /** The opcode's name (`'GLOBAL'`, `'REDUCE'`...), or undefined for an unknown byte or missing data. */
  readonly opcode: string | undefined;
  constructor(message: string, offset: number, opcode: string | undefined, bytes: Buffer) {
    super(message, { queue: '', priority: 0, bytes });
    this.offset = offset;
    this.opcode = opcode;
  }
  override get name(): string {
    return 'UnpicklingError';
  }
}

// Opcodes (CPython's Lib/pickle.py names).
const MARK = 0x28; // (
const STOP = 0x2e; // .
const POP = 0x30; // 0
const POP_MARK = 0x31; // 1
const DUP = 0x32; // 2
const FLOAT = 0x46; // F
const INT = 0x49; // I
const BININT = 0x4a; // J
const BININT1 = 0x4b; // K
const LONG = 0x4c; // L
const BININT2 = 0x4d; // M
const NONE = 0x4e; // N
const PERSID = 0x50; // P
const BINPERSID = 0x51; // Q
const REDUCE = 0x52; // R
const STRING = 0x53; // S
const BINSTRING = 0x54; // T
const SHORT_BINSTRING = 0x55; // U
const UNICODE = 0x56; // V
const BINUNICODE = 0x58; // X
const APPEND = 0x61; // a
const BUILD = 0x62; // b
const GLOBAL = 0x63; // c
const DICT = 0x64; // d
const EMPTY_DICT = 0x7d; // }
const APPENDS = 0x65; // e
const GET = 0x67; // g
const BINGET = 0x68; // h
const INST = 0x69; // i
const LONG_BINGET = 0x6a; // j
const LIST = 0x6c; // l
const EMPTY_LIST = 0x5d; // ]
const OBJ = 0x6f; // o
const PUT = 0x70; // p
const BINPUT = 0x71; // q
const LONG_BINPUT = 0x72; // r
const SETITEM = 0x73; // s
const TUPLE = 0x74; // t
const EMPTY_TUPLE = 0x29; // )
const SETITEMS = 0x75; // u
const BINFLOAT = 0x47; // G
const PROTO = 0x80;
const NEWOBJ = 0x81;
const EXT1 = 0x82;
const EXT2 = 0x83;
const EXT4 = 0x84;
const TUPLE1 = 0x85;
const TUPLE2 = 0x86;
const TUPLE3 = 0x87;
const NEWTRUE = 0x88;
const NEWFALSE = 0x89;
const LONG1 = 0x8a;
const LONG4 = 0x8b;
const BINBYTES = 0x42; // B
const SHORT_BINBYTES = 0x43; // C
const SHORT_BINUNICODE = 0x8c;
const BINUNICODE8 = 0x8d;
const BINBYTES8 = 0x8e;
const EMPTY_SET = 0x8f;
const ADDITEMS = 0x90;
const FROZENSET = 0x91;
const NEWOBJ_EX = 0x92;
const STACK_GLOBAL = 0x93;
const MEMOIZE = 0x94;
const FRAME = 0x95;
const BYTEARRAY8 = 0x96;
const NEXT_BUFFER = 0x97;
const READONLY_BUFFER = 0x98;

/** Opcodes refused because they name, import or call a Python object (or a persistent id). */
const FORBIDDEN: ReadonlyMap<number, string> = new Map([
  [GLOBAL, 'GLOBAL'],
  [STACK_GLOBAL, 'STACK_GLOBAL'],
  [REDUCE, 'REDUCE'],
  [BUILD, 'BUILD'],
  [INST, 'INST'],
  [OBJ, 'OBJ'],
  [NEWOBJ, 'NEWOBJ'],
  [NEWOBJ_EX, 'NEWOBJ_EX'],
  [EXT1, 'EXT1'],
  [EXT2, 'EXT2'],
  [EXT4, 'EXT4'],
  [PERSID, 'PERSID'],
  [BINPERSID, 'BINPERSID'],
]);

/** Opcodes that are pickle but not this subset. */
const UNSUPPORTED: ReadonlyMap<number, string> = new Map([
  [STRING, 'STRING'],
  [NEXT_BUFFER, 'NEXT_BUFFER'],
  [READONLY_BUFFER, 'READONLY_BUFFER'],
]);

/** The highest protocol Python knows (PROTO with a higher number is refused, as Python does). */
const HIGHEST_PROTOCOL = 5;
/** Python's int/str conversion limit (sys.int_info.default_max_str_digits): text INT/LONG longer than this are refused. */
const MAX_STR_DIGITS = 4300;
const DEFAULT_MAX_DEPTH = 1000;
/** Python's pickler batches APPENDS/SETITEMS/ADDITEMS by 1000. */
const BATCH = 1000;
/** Frames below this size are not written (Python's FRAME_SIZE_MIN). */
const FRAME_SIZE_MIN = 4;

// ---------------------------------------------------------------------------
// Decoder

const TWO_32 = 2 ** 32;

/** Bookkeeping of one decode: which arrays are tuples and which Sets frozensets (Python forbids mutating them). */
interface Kinds {
  tuples: Set<unknown[]> | null;
  frozen: Set<Set<unknown>> | null;
}

function isTuple(k: Kinds, v: unknown[]): boolean {
  return k.tuples?.has(v) === true;
}

class Decoder {
  readonly b: Buffer;
  pos = 0;
  /** Offset of the opcode being run. */
  at = 0;
  op = 0;
  readonly maps: boolean;
  readonly nullProto: boolean;
  readonly maxDepth: number;
  readonly stack: unknown[] = [];
  readonly marks: number[] = [];
  readonly memo = new Map<number, unknown>();
  readonly kinds: Kinds = { tuples: null, frozen: null };
  /** Whether a container was pushed a second time (GET, DUP): the result may share or cycle. */
  shared = false;

  constructor(b: Buffer, o: PickleDecodeOptions | undefined) {
    this.b = b;
    this.maps = o?.dicts === 'map';
    this.nullProto = o?.dicts === 'null-prototype';
    this.maxDepth = o?.maxDepth ?? DEFAULT_MAX_DEPTH;
  }

  fail(why: string, name: string | undefined = opcodeName(this.op)): never {
    const where = name === undefined ? `at offset ${this.at}` : `${name} at offset ${this.at}`;
    throw new UnpicklingError(`Cannot unpickle: ${why} (${where})`, this.at, name, this.b);
  }

  /** Checks that a declared `n` more bytes are there (before anything of that size is made). */
  need(n: number): void {
    if (n > this.b.length - this.pos) {
      this.fail(`it declares ${n} bytes but ${this.b.length - this.pos} remain`);
    }
  }
  /** Checks that a fixed-size argument of `n` bytes is there. */
  arg(n: number): void {
    if (n > this.b.length - this.pos) this.fail('the data ends inside the opcode (truncated)');
  }

  u8(): number {
    this.arg(1);
    return this.b[this.pos++]!;
  }
  u16(): number {
    this.arg(2);
    const v = this.b.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.arg(4);
    const v = this.b.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  /** An 8-byte little-endian length; past 2^53 it cannot be in the data anyway. */
  u64(): number {
    this.arg(8);
    const lo = this.b.readUInt32LE(this.pos);
    const hi = this.b.readUInt32LE(this.pos + 4);
    this.pos += 8;
    if (hi >= 0x200000) this.fail(`it declares ${hi * TWO_32 + lo} bytes but ${this.b.length - this.pos} remain`);
    return hi * TWO_32 + lo;
  }
  /** The bytes of a declared length, checked first; a view of the input. */
  take(n: number): Buffer {
    this.need(n);
    const s = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  /** A text line (protocol 0), without its newline. */
  line(): string {
    const end = this.b.indexOf(0x0a, this.pos);
    if (end < 0) this.fail('the line has no newline before the end of the data');
    const s = this.b.toString('latin1', this.pos, end);
    this.pos = end + 1;
    return s;
  }

  push(v: unknown): void {
    this.stack.push(v);
  }
  /** The bottom of the items above the innermost mark (C pickle's "fence"). */
  fence(): number {
    const m = this.marks.length;
    return m === 0 ? 0 : this.marks[m - 1]!;
  }
  pop(): unknown {
    if (this.stack.length <= this.fence()) this.fail('the stack is empty (stack underflow)');
    return this.stack.pop();
  }
  top(): unknown {
    if (this.stack.length <= this.fence()) this.fail('the stack is empty (stack underflow)');
    return this.stack[this.stack.length - 1];
  }
  /** Pops everything down to the innermost mark, and the mark. */
  popMark(): unknown[] {
    const m = this.marks.pop();
    if (m === undefined) this.fail('there is no MARK to close');
    const items = this.stack.splice(m);
    return items;
  }
  /** Pops the innermost mark and returns where its items start; the caller truncates the stack. */
  popMarkAt(): number {
    const m = this.marks.pop();
    if (m === undefined) this.fail('there is no MARK to close');
    return m;
  }
  /** The item just below the mark's items at `m` (the container they go into). */
  below(m: number): unknown {
    if (m <= this.fence()) this.fail('the stack is empty (stack underflow)');
    return this.stack[m - 1];
  }
  pushContainer(v: unknown): void {
    if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) this.shared = true;
    this.stack.push(v);
  }

  list(v: unknown): unknown[] {
    if (!Array.isArray(v) || isTuple(this.kinds, v)) this.fail(`the target is ${describe(v, this.kinds)}, not a list`);
    return v;
  }
  tuple(items: unknown[]): unknown[] {
    (this.kinds.tuples ??= new Set()).add(items);
    return items;
  }
  newDict(): unknown {
    return this.maps ? new Map() : this.nullProto ? Object.create(null) : {};
  }
  isDict(v: unknown): boolean {
    if (this.maps) return v instanceof Map;
    // Only dicts are made with these prototypes here (lists are arrays, bytes Buffers).
    return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === (this.nullProto ? null : Object.prototype);
  }
  setItem(d: unknown, k: unknown, v: unknown): void {
    if (this.maps) {
      this.hashable(k);
      (d as Map<unknown, unknown>).set(k, v);
      return;
    }
    let key: string;
    if (typeof k === 'string') key = k;
    else if (typeof k === 'bigint' || (typeof k === 'number' && Number.isInteger(k) && !Object.is(k, -0) && isIntKey(k))) key = String(k);
    else this.fail(`a dict key of type ${describe(k, this.kinds)} has no object-key form; decode with { dicts: 'map' }`);
    // Assigning '__proto__' to a plain object would set its prototype: define it instead.
    if (key === '__proto__') Object.defineProperty(d, key, { value: v, writable: true, enumerable: true, configurable: true });
    else (d as Record<string, unknown>)[key] = v;
  }
  hashable(k: unknown): void {
    if (k === null || typeof k !== 'object' || Buffer.isBuffer(k)) return;
    if (Array.isArray(k) ? isTuple(this.kinds, k) : k instanceof Set && this.kinds.frozen?.has(k) === true) return;
    this.fail(`${describe(k, this.kinds)} is unhashable: it cannot be a dict key or a set item`);
  }
  /** The UTF-8 text of the next `n` bytes (checked to be there first). */
  str(n: number): string {
    this.need(n);
    const start = this.pos;
    const end = start + n;
    this.pos = end;
    return utf8Surrogatepass(this.b, start, end) ?? this.fail('the text is not valid UTF-8');
  }
  ascii(bytes: Buffer): string {
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i]! > 0x7f) this.fail("a Python 2 str is not ASCII (Python's default encoding='ASCII' refuses it too)");
    }
    return bytes.toString('latin1', 0, bytes.length);
  }
  memoIndex(n: number): unknown {
    if (!this.memo.has(n)) this.fail(`memo entry ${n} is not defined`);
    return this.memo.get(n);
  }
  textInt(s: string): bigint {
    if (!/^[+-]?\d+$/.test(s)) this.fail(`'${s.slice(0, 40)}' is not a decimal integer`);
    if (s.length > MAX_STR_DIGITS + 1) this.fail(`an integer of ${s.length} digits exceeds Python's limit of ${MAX_STR_DIGITS}`);
    return BigInt(s);
  }

  run(): unknown {
    const b = this.b;
    const stack = this.stack;
    for (;;) {
      this.at = this.pos;
      if (this.pos >= b.length) {
        this.op = -1;
        this.fail('the data ends before STOP (truncated)', undefined);
      }
      const op = b[this.pos++]!;
      this.op = op;
      switch (op) {
        case PROTO: {
          const p = this.u8();
          if (p > HIGHEST_PROTOCOL) this.fail(`unsupported pickle protocol ${p}`);
          break;
        }
        case FRAME: {
          // The data is all here: a frame is only a length to check.
          const n = this.u64();
          this.need(n);
          break;
        }
        case STOP: {
          if (this.marks.length !== 0) this.fail('a MARK is still open at STOP');
          if (stack.length !== 1) this.fail(`the stack holds ${stack.length} items at STOP, not 1`);
          if (this.pos !== b.length) this.fail(`${b.length - this.pos} bytes follow STOP`);
          return stack[0];
        }
        case MARK:
          this.marks.push(stack.length);
          break;
        case POP:
          // As CPython: a mark with nothing above it is what POP removes.
          if (this.marks.length > 0 && this.marks[this.marks.length - 1] === stack.length) this.marks.pop();
          else this.pop();
          break;
        case POP_MARK:
          this.popMark();
          break;
        case DUP:
          this.pushContainer(this.top());
          break;
        case NONE:
          stack.push(null);
          break;
        case NEWTRUE:
          stack.push(true);
          break;
        case NEWFALSE:
          stack.push(false);
          break;
        case BININT1:
          stack.push(this.u8());
          break;
        case BININT2:
          stack.push(this.u16());
          break;
        case BININT: {
          this.arg(4);
          stack.push(b.readInt32LE(this.pos));
          this.pos += 4;
          break;
        }
        case LONG1: {
          const n = this.u8();
          stack.push(readLong(this.take(n)));
          break;
        }
        case LONG4: {
          this.arg(4);
          const n = b.readInt32LE(this.pos);
          this.pos += 4;
          if (n < 0) this.fail('negative byte count');
          stack.push(readLong(this.take(n)));
          break;
        }
        case INT: {
          const s = this.line();
          if (s === '00') stack.push(false);
          else if (s === '01') stack.push(true);
          else stack.push(narrow(this.textInt(s)));
          break;
        }
        case LONG: {
          const s = this.line();
          stack.push(narrow(this.textInt(s.endsWith('L') ? s.slice(0, -1) : s)));
          break;
        }
        case BINFLOAT: {
          this.arg(8);
          stack.push(b.readDoubleBE(this.pos));
          this.pos += 8;
          break;
        }
        case FLOAT: {
          const s = this.line();
          const v = parseFloatText(s);
          if (v === undefined) this.fail(`'${s.slice(0, 40)}' is not a float`);
          stack.push(v);
          break;
        }
        case SHORT_BINUNICODE:
          stack.push(this.str(this.u8()));
          break;
        case BINUNICODE:
          stack.push(this.str(this.u32()));
          break;
        case BINUNICODE8:
          stack.push(this.str(this.u64()));
          break;
        case UNICODE:
          stack.push(rawUnicodeEscape(this.line()));
          break;
        case SHORT_BINSTRING:
          stack.push(this.ascii(this.take(this.u8())));
          break;
        case BINSTRING: {
          this.arg(4);
          const n = b.readInt32LE(this.pos);
          this.pos += 4;
          if (n < 0) this.fail('negative byte count');
          stack.push(this.ascii(this.take(n)));
          break;
        }
        case SHORT_BINBYTES:
          stack.push(Buffer.from(this.take(this.u8())));
          break;
        case BINBYTES:
          stack.push(Buffer.from(this.take(this.u32())));
          break;
        case BINBYTES8:
        case BYTEARRAY8:
          stack.push(Buffer.from(this.take(this.u64())));
          break;
        case EMPTY_LIST:
          stack.push([]);
          break;
        case EMPTY_TUPLE:
          stack.push(this.tuple([]));
          break;
        case EMPTY_DICT:
          stack.push(this.newDict());
          break;
        case EMPTY_SET:
          stack.push(new Set());
          break;
        case LIST:
          stack.push(this.popMark());
          break;
        case TUPLE:
          stack.push(this.tuple(this.popMark()));
          break;
        case TUPLE1: {
          const a = this.pop();
          stack.push(this.tuple([a]));
          break;
        }
        case TUPLE2: {
          const bb = this.pop();
          const a = this.pop();
          stack.push(this.tuple([a, bb]));
          break;
        }
        case TUPLE3: {
          const c = this.pop();
          const bb = this.pop();
          const a = this.pop();
          stack.push(this.tuple([a, bb, c]));
          break;
        }
        case DICT: {
          const items = this.popMark();
          if (items.length % 2 !== 0) this.fail('odd number of items for a dict');
          const d = this.newDict();
          for (let i = 0; i < items.length; i += 2) this.setItem(d, items[i], items[i + 1]);
          stack.push(d);
          break;
        }
        case FROZENSET: {
          const items = this.popMark();
          const s = new Set<unknown>();
          for (const it of items) {
            this.hashable(it);
            s.add(it);
          }
          (this.kinds.frozen ??= new Set()).add(s);
          stack.push(s);
          break;
        }
        case APPEND: {
          const v = this.pop();
          this.list(this.top()).push(v);
          break;
        }
        case APPENDS: {
          const m = this.popMarkAt();
          const l = this.list(this.below(m));
          for (let i = m; i < stack.length; i++) l.push(stack[i]);
          stack.length = m;
          break;
        }
        case SETITEM: {
          const v = this.pop();
          const k = this.pop();
          const d = this.top();
          if (!this.isDict(d)) this.fail(`the target is ${describe(d, this.kinds)}, not a dict`);
          this.setItem(d, k, v);
          break;
        }
        case SETITEMS: {
          const m = this.popMarkAt();
          if ((stack.length - m) % 2 !== 0) this.fail('odd number of items for SETITEMS');
          const d = this.below(m);
          if (!this.isDict(d)) this.fail(`the target is ${describe(d, this.kinds)}, not a dict`);
          for (let i = m; i < stack.length; i += 2) this.setItem(d, stack[i], stack[i + 1]);
          stack.length = m;
          break;
        }
        case ADDITEMS: {
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof Set) || this.kinds.frozen?.has(s) === true) {
            this.fail(`the target is ${describe(s, this.kinds)}, not a set`);
          }
          for (const it of items) {
            this.hashable(it);
            s.add(it);
          }
          break;
        }
        case MEMOIZE:
          this.memo.set(this.memo.size, this.top());
          break;
        case BINPUT:
          this.memo.set(this.u8(), this.top());
          break;
        case LONG_BINPUT:
          this.memo.set(this.u32(), this.top());
          break;
        case PUT: {
          const s = this.line();
          if (!/^\d{1,10}$/.test(s)) this.fail(`'${s.slice(0, 40)}' is not a memo index`);
          this.memo.set(Number(s), this.top());
          break;
        }
        case BINGET:
          this.pushContainer(this.memoIndex(this.u8()));
          break;
        case LONG_BINGET:
          this.pushContainer(this.memoIndex(this.u32()));
          break;
        case GET: {
          const s = this.line();
          if (!/^\d{1,10}$/.test(s)) this.fail(`'${s.slice(0, 40)}' is not a memo index`);
          this.pushContainer(this.memoIndex(Number(s)));
          break;
        }
        default: {
          const forbidden = FORBIDDEN.get(op);
          if (forbidden !== undefined) {
            this.fail('this opcode names or calls a Python object, which the pickle codec never does', forbidden);
          }
          const unsupported = UNSUPPORTED.get(op);
          if (unsupported !== undefined) this.fail('this opcode is not part of the supported subset', unsupported);
          this.fail(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`, undefined);
        }
      }
    }
  }
}

/** Opcode names for messages (the decoder's own opcodes). */
const NAMES: ReadonlyMap<number, string> = new Map([
  ...FORBIDDEN,
  ...UNSUPPORTED,
  ...(Object.entries({
    MARK, STOP, POP, POP_MARK, DUP, FLOAT, INT, BININT, BININT1, LONG, BININT2, NONE, BINSTRING, SHORT_BINSTRING, UNICODE, BINUNICODE,
    APPEND, DICT, EMPTY_DICT, APPENDS, GET, BINGET, LONG_BINGET, LIST, EMPTY_LIST, PUT, BINPUT, LONG_BINPUT, SETITEM, TUPLE,
    EMPTY_TUPLE, SETITEMS, BINFLOAT, PROTO, TUPLE1, TUPLE2, TUPLE3, NEWTRUE, NEWFALSE, LONG1, LONG4, BINBYTES, SHORT_BINBYTES,
    SHORT_BINUNICODE, BINUNICODE8, BINBYTES8, EMPTY_SET, ADDITEMS, FROZENSET, MEMOIZE, FRAME, BYTEARRAY8,
  }).map(([k, v]) => [v, k] as [number, string])),
]);

function opcodeName(op: number): string | undefined {
  return NAMES.get(op);
}

function describe(v: unknown, kinds: Kinds): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return isTuple(kinds, v) ? 'a tuple' : 'a list';
  if (Buffer.isBuffer(v)) return 'bytes';
  if (v instanceof Set) return kinds.frozen?.has(v) ? 'a frozenset' : 'a set';
  if (v instanceof Map || (typeof v === 'object' && (Object.getPrototypeOf(v) === null || Object.getPrototypeOf(v) === Object.prototype))) return 'a dict';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'str';
  return typeof v;
}

function isIntKey(n: number): boolean {
  return Number.isSafeInteger(n);
}

/** A Python int: a number when it is safe, else a bigint. */
function narrow(v: bigint): number | bigint {
  return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
}

/** LONG1/LONG4's little-endian two's complement. */
function readLong(bytes: Buffer): number | bigint {
  const n = bytes.length;
  if (n === 0) return 0;
  if (n <= 6) return bytes.readIntLE(0, n);
  let hex = '';
  for (let i = n - 1; i >= 0; i--) hex += HEX[bytes[i]!];
  let v = BigInt(`0x${hex}`);
  if (bytes[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
  return narrow(v);
}

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

const FLOAT_TEXT = /^\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)\s*$/i;

/** Python's float() of a protocol 0 FLOAT line. */
function parseFloatText(s: string): number | undefined {
  if (!FLOAT_TEXT.test(s)) return undefined;
  const t = s.trim().toLowerCase();
  const sign = t.startsWith('-') ? -1 : 1;
  const body = t.replace(/^[+-]/, '');
  if (body === 'inf' || body === 'infinity') return sign * Infinity;
  if (body === 'nan') return NaN;
  return Number(t);
}

/** Python's raw-unicode-escape decoding of a latin-1 line (protocol 0 UNICODE). */
function rawUnicodeEscape(s: string): string {
  if (!s.includes('\\')) return s;
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (all, u: string | undefined, U: string | undefined) => {
    if (u !== undefined) return String.fromCharCode(Number.parseInt(u, 16));
    const cp = Number.parseInt(U!, 16);
    return cp <= 0x10ffff ? String.fromCodePoint(cp) : all;
  });
}

/**
 * The UTF-8 of b[start..end] as Python's pickle writes it ('surrogatepass':
 * a lone surrogate is its 3-byte form); undefined for anything else that is
 * not UTF-8 (Python would raise UnicodeDecodeError).
 */
function utf8Surrogatepass(b: Buffer, start: number, end: number): string | undefined {
  if (end - start < 32) {
    // Short ASCII (most dict keys) is cheaper in JavaScript than a native call.
    let i = start;
    while (i < end && b[i]! < 0x80) i++;
    if (i === end) return asciiText(b, start, end);
  }
  const text = b.toString('utf8', start, end);
  // U+FFFD in the result is either in the data or a replacement: look closer only then.
  if (!text.includes('\ufffd')) return text;
  const bytes = b.subarray(start, end);
  if (isUtf8(bytes)) return text;
  const n = bytes.length;
  let out = '';
  let i = 0;
  let from = 0;
  while (i < n) {
    const c = bytes[i]!;
    if (c === 0xed && i + 2 < n && (bytes[i + 1]! & 0xe0) === 0xa0 && (bytes[i + 2]! & 0xc0) === 0x80) {
      const piece = bytes.subarray(from, i);
      if (!isUtf8(piece)) return undefined;
      out += piece.toString('utf8');
      out += String.fromCharCode(0xd000 | ((bytes[i + 1]! & 0x3f) << 6) | (bytes[i + 2]! & 0x3f));
      i += 3;
      from = i;
    } else {
      i++;
    }
  }
  const rest = bytes.subarray(from, n);
  if (!isUtf8(rest)) return undefined;
  return out + rest.toString('utf8');
}

/** Short ASCII text without a native call. */
function asciiText(b: Buffer, start: number, end: number): string {
  switch (end - start) {
    case 0:
      return '';
    case 1:
      return String.fromCharCode(b[start]!);
    case 2:
      return String.fromCharCode(b[start]!, b[start + 1]!);
    case 3:
      return String.fromCharCode(b[start]!, b[start + 1]!, b[start + 2]!);
    case 4:
      return String.fromCharCode(b[start]!, b[start + 1]!, b[start + 2]!, b[start + 3]!);
    default:
      return b.toString('latin1', start, end);
  }
}

/** Refuses a cycle or nesting deeper than `max`, walking the result once (shared parts once). */
function checkShape(root: unknown, max: number, fail: (why: string) => never): void {
  const height = new Map<object, number>();
  const onPath = new Set<object>();
  interface Frame {
    node: object;
    kids: unknown[];
    i: number;
    h: number;
  }
  const frames: Frame[] = [];
  const enter = (node: object): void => {
    if (onPath.has(node)) fail('the data contains a cycle, which the pickle codec refuses (as JSON would)');
    if (frames.length >= max) fail(`the data nests deeper than maxDepth (${max})`);
    onPath.add(node);
    frames.push({ node, kids: children(node), i: 0, h: 0 });
  };
  if (!isContainer(root)) return;
  enter(root);
  while (frames.length > 0) {
    const f = frames[frames.length - 1]!;
    if (f.i < f.kids.length) {
      const k = f.kids[f.i++];
      if (!isContainer(k)) continue;
      const known = height.get(k);
      if (known !== undefined) {
        if (frames.length + known > max) fail(`the data nests deeper than maxDepth (${max})`);
        if (known + 1 > f.h) f.h = known + 1;
        continue;
      }
      enter(k);
      continue;
    }
    frames.pop();
    onPath.delete(f.node);
    const h = f.h + 1;
    height.set(f.node, h);
    const parent = frames[frames.length - 1];
    if (parent !== undefined && h + 1 > parent.h) parent.h = h;
  }
}

function isContainer(v: unknown): v is object {
  return typeof v === 'object' && v !== null && !Buffer.isBuffer(v);
}

function children(node: object): unknown[] {
  if (Array.isArray(node)) return node;
  if (node instanceof Set) return [...node];
  if (node instanceof Map) {
    const out: unknown[] = [];
    for (const [k, v] of node) out.push(k, v);
    return out;
  }
  return Object.values(node);
}

/**
 * Refuses a tree (nothing shared, so no cycle) nesting deeper than `max`.
 * Recursion is safe: it stops at `max` levels.
 */
function checkTreeDepth(v: object, depth: number, max: number, fail: (why: string) => never): void {
  if (depth > max) fail(`the data nests deeper than maxDepth (${max})`);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (typeof x === 'object' && x !== null && !Buffer.isBuffer(x)) checkTreeDepth(x, depth + 1, max, fail);
    }
  } else if (v instanceof Map) {
    for (const [k, x] of v) {
      if (isContainer(k)) checkTreeDepth(k, depth + 1, max, fail);
      if (isContainer(x)) checkTreeDepth(x, depth + 1, max, fail);
    }
  } else if (v instanceof Set) {
    for (const x of v) if (isContainer(x)) checkTreeDepth(x, depth + 1, max, fail);
  } else {
    for (const k in v) {
      const x = (v as Record<string, unknown>)[k];
      if (typeof x === 'object' && x !== null && !Buffer.isBuffer(x)) checkTreeDepth(x, depth + 1, max, fail);
    }
  }
}

/**
 * Decodes one pickle (the whole buffer: bytes after STOP are refused).
 * @throws UnpicklingError (code `'ERR_IPC_DECODE'`) for anything outside the subset, malformed or over a limit.
 */
export function pickleLoads(bytes: Uint8Array, options?: PickleDecodeOptions): unknown {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const d = new Decoder(b, options);
  const v = d.run();
  if (isContainer(v)) {
    const fail = (why: string): never => {
      throw new UnpicklingError(`Cannot unpickle: ${why}`, b.length - 1, 'STOP', b);
    };
    // Without a second reference to any container the result is a tree.
    if (d.shared) checkShape(v, d.maxDepth, fail);
    else checkTreeDepth(v, 1, d.maxDepth, fail);
  }
  return v;
}

// ---------------------------------------------------------------------------
// Encoder

class EncodeFailure extends Error {
  readonly path: string[] = [];
}

class Encoder {
  buf: Buffer;
  pos = 0;
  /** Containers written (memo index), and those being written (-1): a second sight of one of those is a cycle. */
  readonly memo = new Map<object, number>();
  memoCount = 0;
  depth = 0;
  readonly maxDepth: number;

  constructor(o: PickleEncodeOptions | undefined) {
    this.buf = Buffer.allocUnsafe(256);
    this.maxDepth = o?.maxDepth ?? DEFAULT_MAX_DEPTH;
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  byte(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  value(v: unknown): void {
    switch (typeof v) {
      case 'number':
        this.number(v);
        return;
      case 'string':
        this.string(v);
        return;
      case 'boolean':
        this.byte(v ? NEWTRUE : NEWFALSE);
        return;
      case 'bigint':
        this.bigint(v);
        return;
      case 'undefined':
        this.byte(NONE);
        return;
      case 'object':
        if (v === null) this.byte(NONE);
        else this.object(v);
        return;
      default:
        throw new EncodeFailure(`a ${typeof v} has no pickle form`);
    }
  }

  number(v: number): void {
    if (Number.isInteger(v) && v >= -9007199254740991 && v <= 9007199254740991) {
      this.int(v);
      return;
    }
    this.ensure(9);
    this.buf[this.pos] = BINFLOAT;
    this.buf.writeDoubleBE(v, this.pos + 1);
    this.pos += 9;
  }

  int(v: number): void {
    this.ensure(9);
    if (v >= 0 && v < 256) {
      this.buf[this.pos] = BININT1;
      this.buf[this.pos + 1] = v;
      this.pos += 2;
    } else if (v >= 0 && v < 65536) {
      this.buf[this.pos] = BININT2;
      this.buf.writeUInt16LE(v, this.pos + 1);
      this.pos += 3;
    } else if (v >= -0x80000000 && v <= 0x7fffffff) {
      this.buf[this.pos] = BININT;
      this.buf.writeInt32LE(v, this.pos + 1);
      this.pos += 5;
    } else if (v >= -(2 ** 47) && v < 2 ** 47) {
      // Python's minimal two's complement, 5 or 6 bytes.
      const n = v >= -(2 ** 39) && v < 2 ** 39 ? 5 : 6;
      this.buf[this.pos] = LONG1;
      this.buf[this.pos + 1] = n;
      this.buf.writeIntLE(v, this.pos + 2, n);
      this.pos += 2 + n;
    } else {
      this.bigint(BigInt(v));
    }
  }

  bigint(v: bigint): void {
    if (v >= -0x80000000n && v <= 0x7fffffffn) {
      this.int(Number(v));
      return;
    }
    const bytes = longBytes(v);
    const n = bytes.length;
    this.ensure(5 + n);
    if (n < 256) {
      this.buf[this.pos] = LONG1;
      this.buf[this.pos + 1] = n;
      this.pos += 2;
    } else {
      this.buf[this.pos] = LONG4;
      this.buf.writeInt32LE(n, this.pos + 1);
      this.pos += 5;
    }
    bytes.copy(this.buf, this.pos);
    this.pos += n;
  }

  string(s: string): void {
    if (!isWellFormed(s)) {
      this.sized(surrogatepassBytes(s), SHORT_BINUNICODE, BINUNICODE, BINUNICODE8);
      return;
    }
    const len = s.length;
    if (len < 86) {
      // At most 255 bytes of UTF-8: one length byte.
      this.ensure(2 + len * 3);
      const b = this.buf;
      const at = this.pos + 2;
      if (len < 32) {
        // Short ASCII (most keys) is cheaper in JavaScript than a native call.
        let i = 0;
        for (; i < len; i++) {
          const c = s.charCodeAt(i);
          if (c >= 0x80) break;
          b[at + i] = c;
        }
        if (i === len) {
          b[this.pos] = SHORT_BINUNICODE;
          b[this.pos + 1] = len;
          this.pos = at + len;
          return;
        }
      }
      const n = len === 0 ? 0 : b.write(s, at, 'utf8');
      this.buf[this.pos] = SHORT_BINUNICODE;
      this.buf[this.pos + 1] = n;
      if (n > 255) throw new Error('unreachable');
      this.pos += 2 + n;
      return;
    }
    const n = Buffer.byteLength(s, 'utf8');
    const head = n < 256 ? 2 : n < TWO_32 ? 5 : 9;
    this.ensure(head + n);
    this.header(n, SHORT_BINUNICODE, BINUNICODE, BINUNICODE8);
    this.buf.write(s, this.pos, n, 'utf8');
    this.pos += n;
  }

  /** An opcode with a 1-, 4- or 8-byte length, as Python picks them. */
  header(n: number, short: number, long: number, huge: number): void {
    this.ensure(9);
    const b = this.buf;
    if (n < 256) {
      b[this.pos] = short;
      b[this.pos + 1] = n;
      this.pos += 2;
    } else if (n < TWO_32) {
      b[this.pos] = long;
      b.writeUInt32LE(n, this.pos + 1);
      this.pos += 5;
    } else {
      b[this.pos] = huge;
      b.writeUInt32LE(n % TWO_32, this.pos + 1);
      b.writeUInt32LE(Math.floor(n / TWO_32), this.pos + 5);
      this.pos += 9;
    }
  }

  sized(bytes: Uint8Array, short: number, long: number, huge: number): void {
    this.header(bytes.length, short, long, huge);
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  object(v: object): void {
    const seen = this.memo.get(v);
    if (seen !== undefined) {
      if (seen < 0) throw new EncodeFailure('the value contains a cycle, which the pickle codec refuses');
      this.get(seen);
      return;
    }
    if (v instanceof Uint8Array) {
      if (v.constructor !== Uint8Array && !Buffer.isBuffer(v)) {
        throw new EncodeFailure(`an instance of ${v.constructor?.name ?? 'Object'} has no pickle form (Buffer and Uint8Array are bytes)`);
      }
      this.sized(v, SHORT_BINBYTES, BINBYTES, BINBYTES8);
      this.memoize(v, false);
      return;
    }
    if (++this.depth > this.maxDepth) throw new EncodeFailure(`the value nests deeper than maxDepth (${this.maxDepth})`);
    if (Array.isArray(v)) {
      this.byte(EMPTY_LIST);
      this.memoize(v, true);
      this.items(v);
    } else if (v instanceof Map) {
      this.byte(EMPTY_DICT);
      this.memoize(v, true);
      this.mapItems(v);
    } else if (v instanceof Set) {
      this.byte(EMPTY_SET);
      this.memoize(v, true);
      this.setItems(v);
    } else {
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        throw new EncodeFailure(`an instance of ${v.constructor?.name ?? 'Object'} has no pickle form (plain objects, arrays, Maps, Sets, Buffers and primitives do)`);
      }
      this.byte(EMPTY_DICT);
      this.memoize(v, true);
      this.objectItems(v as Record<string, unknown>);
    }
    this.memo.set(v, ~this.memo.get(v)!);
    this.depth--;
  }

  /** MEMOIZE: the object gets the next memo index (kept as ~index while it is being written). */
  memoize(v: object, open: boolean): void {
    this.byte(MEMOIZE);
    const i = this.memoCount++;
    this.memo.set(v, open ? ~i : i);
  }

  get(i: number): void {
    this.ensure(5);
    if (i < 256) {
      this.buf[this.pos] = BINGET;
      this.buf[this.pos + 1] = i;
      this.pos += 2;
    } else {
      this.buf[this.pos] = LONG_BINGET;
      this.buf.writeUInt32LE(i, this.pos + 1);
      this.pos += 5;
    }
  }

  /** A list's items: APPEND for one, else MARK ... APPENDS by batches, as Python. */
  items(v: unknown[]): void {
    const n = v.length;
    for (let i = 0; i < n; i++) {
      if (n > 1 && i % BATCH === 0) this.byte(MARK);
      try {
        this.value(v[i]);
      } catch (err) {
        throw where(err, i);
      }
      if (n > 1 && ((i + 1) % BATCH === 0 || i + 1 === n)) this.byte(APPENDS);
    }
    if (n === 1) this.byte(APPEND);
  }

  /** A plain object's own enumerable string keys, as the list's items. */
  objectItems(v: Record<string, unknown>): void {
    const keys = Object.keys(v);
    const n = keys.length;
    for (let i = 0; i < n; i++) {
      if (n > 1 && i % BATCH === 0) this.byte(MARK);
      const k = keys[i]!;
      this.string(k);
      try {
        this.value(v[k]);
      } catch (err) {
        throw where(err, k);
      }
      if (n > 1 && ((i + 1) % BATCH === 0 || i + 1 === n)) this.byte(SETITEMS);
    }
    if (n === 1) this.byte(SETITEM);
  }

  mapItems(m: Map<unknown, unknown>): void {
    const n = m.size;
    let i = 0;
    for (const [k, val] of m) {
      if (i % BATCH === 0 && n > 1) this.byte(MARK);
      try {
        this.key(k);
      } catch (err) {
        throw where(err, `<key ${i}>`);
      }
      try {
        this.value(val);
      } catch (err) {
        throw where(err, typeof k === 'string' ? k : `<${describeKey(k)} key ${i}>`);
      }
      i++;
      if (n > 1 && (i % BATCH === 0 || i === n)) this.byte(SETITEMS);
    }
    if (n === 1) this.byte(SETITEM);
  }

  setItems(s: Set<unknown>): void {
    let i = 0;
    const n = s.size;
    for (const item of s) {
      if (i % BATCH === 0) this.byte(MARK);
      try {
        this.key(item);
      } catch (err) {
        throw where(err, i);
      }
      i++;
      if (i % BATCH === 0 || i === n) this.byte(ADDITEMS);
    }
  }

  /**
   * A dict key or set item: Python needs it hashable, so an array is written
   * as a tuple (of hashable items), and an object, Map or Set is refused.
   */
  key(k: unknown): void {
    if (typeof k !== 'object' || k === null || k instanceof Uint8Array) {
      this.value(k);
      return;
    }
    if (!Array.isArray(k)) {
      throw new EncodeFailure(`${k instanceof Map || k instanceof Set ? `a ${k.constructor.name}` : 'an object'} cannot be a Python dict key or set item (it would be unhashable)`);
    }
    if (++this.depth > this.maxDepth) throw new EncodeFailure(`the value nests deeper than maxDepth (${this.maxDepth})`);
    const n = k.length;
    if (n > 3) this.byte(MARK);
    for (let i = 0; i < n; i++) {
      try {
        this.key(k[i]);
      } catch (err) {
        throw where(err, i);
      }
    }
    this.byte(n === 0 ? EMPTY_TUPLE : n === 1 ? TUPLE1 : n === 2 ? TUPLE2 : n === 3 ? TUPLE3 : TUPLE);
    this.depth--;
  }
}

/** Records in a failure where it happened (the path is built on the way out). */
function where(err: unknown, at: string | number): unknown {
  if (err instanceof EncodeFailure) {
    err.path.push(typeof at === 'number' ? `[${at}]` : /^[A-Za-z_$][\w$]*$/.test(at) ? `.${at}` : `[${JSON.stringify(at)}]`);
  }
  return err;
}

function describeKey(k: unknown): string {
  return k === null ? 'null' : typeof k;
}

/** The minimal little-endian two's complement of `v` (Python's encode_long). */
function longBytes(v: bigint): Buffer {
  if (v === 0n) return Buffer.alloc(0);
  const m = v < 0n ? -v - 1n : v;
  const bits = m === 0n ? 0 : m.toString(2).length;
  const n = Math.floor(bits / 8) + 1;
  const u = v < 0n ? (1n << BigInt(8 * n)) + v : v;
  const hex = u.toString(16).padStart(2 * n, '0');
  return Buffer.from(hex, 'hex').reverse();
}

const isWellFormedImpl = (String.prototype as { isWellFormed?: () => boolean }).isWellFormed;

function isWellFormed(s: string): boolean {
  if (isWellFormedImpl !== undefined) return isWellFormedImpl.call(s);
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

/** Python's str.encode('utf-8', 'surrogatepass') for a string with lone surrogates. */
function surrogatepassBytes(s: string): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      parts.push(Buffer.from(s.slice(start, i), 'utf8'), Buffer.from([0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]));
      start = i + 1;
    }
  }
  parts.push(Buffer.from(s.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/**
 * Encodes `value` as a pickle (protocol 4 by default) that Python's
 * `pickle.loads` reads. See the module for the type mapping.
 * @throws TypeError with code `'ERR_IPC_ENCODE'` for what has no pickle form
 *   (functions, symbols, class instances, typed arrays other than Uint8Array,
 *   cycles, unhashable Map keys or Set items, nesting past `maxDepth`).
 */
export function pickleDumps(value: unknown, options?: PickleEncodeOptions): Buffer {
  const protocol = options?.protocol ?? 4;
  const e = new Encoder(options);
  // PROTO, then room for a FRAME header, filled in (or dropped) at the end.
  e.ensure(11);
  e.buf[0] = PROTO;
  e.buf[1] = protocol;
  e.pos = 11;
  try {
    e.value(value);
  } catch (err) {
    if (err instanceof EncodeFailure) {
      const where = err.path.length === 0 ? '' : ` (at value${err.path.reverse().join('')})`;
      throw encodeError(`Cannot encode item as pickle: ${err.message}${where}`);
    }
    if (err instanceof RangeError && /call stack/i.test(err.message)) {
      throw encodeError('Cannot encode item as pickle: the value nests too deeply', err);
    }
    throw err;
  }
  e.byte(STOP);
  const body = e.pos - 11;
  if (body < FRAME_SIZE_MIN) {
    e.buf.copy(e.buf, 2, 11, e.pos);
    return e.buf.subarray(0, 2 + body);
  }
  e.buf[2] = FRAME;
  e.buf.writeUInt32LE(body % TWO_32, 3);
  e.buf.writeUInt32LE(Math.floor(body / TWO_32), 7);
  return e.buf.subarray(0, e.pos);
}

function validateOptions(o: PickleOptions | undefined): void {
  if (o === undefined) return;
  if (o === null || typeof o !== 'object') throw new TypeError('The pickle options must be an object');
  if (o.protocol !== undefined && o.protocol !== 4 && o.protocol !== 5) {
    throw Object.assign(new RangeError(`The "protocol" option must be 4 or 5. Received ${String(o.protocol)}`), { code: 'ERR_OUT_OF_RANGE' });
  }
  if (o.dicts !== undefined && o.dicts !== 'object' && o.dicts !== 'null-prototype' && o.dicts !== 'map') {
    throw Object.assign(new TypeError(`The "dicts" option must be 'object', 'null-prototype' or 'map'. Received ${String(o.dicts)}`), { code: 'ERR_INVALID_ARG_VALUE' });
  }
  if (o.maxDepth !== undefined && (!Number.isSafeInteger(o.maxDepth) || o.maxDepth < 1)) {
    throw Object.assign(new RangeError(`The "maxDepth" option must be a positive integer. Received ${String(o.maxDepth)}`), { code: 'ERR_OUT_OF_RANGE' });
  }
}

/**
 * A pickle codec with options (`codec: pickleCodec({ dicts: 'map' })`);
 * `codec: 'pickle'` is `pickleCodec()`. A codec made with options is a
 * custom codec: an object using it cannot be handed to a `Process`.
 */
export function pickleCodec(options?: PickleOptions): Codec {
  validateOptions(options);
  const o = options === undefined ? undefined : { ...options };
  return {
    encode: (item) => pickleDumps(item, o),
    decode: (bytes) => pickleLoads(bytes, o),
  };
}
