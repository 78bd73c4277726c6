// The pickle codec against Python's own pickle: vectors made by python3's
// pickle.dumps at test time (protocols 0-5) decode to the documented values;
// our encodings load in python3 as the documented values; every opcode that
// could name or call a Python object is refused, and nothing runs.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DecodeError, ErrorCode, pickleCodec, pickleDumps, pickleLoads, UnpicklingError } from '../../lib/index.js';
import type { PickleDecodeOptions } from '../../lib/index.js';
import { resolveCodec } from '../../lib/core/codec.js';
import { codecOption } from '../../lib/core/transfer.js';
import { expectOk, runPython, uniqueName, cleanupAfterEach } from '../helpers/index.js';
import { rmSync } from 'node:fs';

/** What pickle-vectors-tag.py's tag() makes of a Python value. */
type Tag =
  | { none: null }
  | { bool: boolean }
  | { int: string }
  | { float: string }
  | { str: string }
  | { bytes: string }
  | { bytearray: string }
  | { list: Tag[] }
  | { tuple: Tag[] }
  | { dict: Array<[Tag, Tag]> }
  | { set: Tag[] }
  | { frozenset: Tag[] };

interface Vector {
  name: string;
  group: 'all' | 'map';
  protocol: number;
  hex: string;
  value: Tag;
}

const SAFE = 9007199254740991n;
type Dicts = 'object' | 'null-prototype' | 'map';

/** The JavaScript value the decoder must give for a tagged Python value (the documented mapping). */
function expected(t: Tag, dicts: Dicts = 'object'): unknown {
  if ('none' in t) return null;
  if ('bool' in t) return t.bool;
  if ('int' in t) {
    const v = BigInt(t.int);
    return v >= -SAFE && v <= SAFE ? Number(v) : v;
  }
  if ('float' in t) return t.float === 'nan' ? NaN : t.float === 'inf' ? Infinity : t.float === '-inf' ? -Infinity : Number(t.float);
  if ('str' in t) return t.str;
  if ('bytes' in t) return Buffer.from(t.bytes, 'hex');
  if ('bytearray' in t) return Buffer.from(t.bytearray, 'hex');
  if ('list' in t) return t.list.map((x) => expected(x, dicts));
  if ('tuple' in t) return t.tuple.map((x) => expected(x, dicts));
  if ('set' in t) return new Set(t.set.map((x) => expected(x, dicts)));
  if ('frozenset' in t) return new Set(t.frozenset.map((x) => expected(x, dicts)));
  if (dicts === 'map') return new Map(t.dict.map(([k, v]) => [expected(k, dicts), expected(v, dicts)]));
  const o: Record<string, unknown> = dicts === 'null-prototype' ? Object.create(null) : {};
  for (const [k, v] of t.dict) Object.defineProperty(o, String(expected(k, dicts)), { value: expected(v, dicts), enumerable: true, writable: true, configurable: true });
  return o;
}

/** Whether Python's pickle of this value at this protocol needs a GLOBAL (so we must refuse it). */
function needsGlobal(t: Tag, protocol: number): boolean {
  if ('bytes' in t) return protocol < 3;
  if ('bytearray' in t) return protocol < 5;
  if ('set' in t || 'frozenset' in t) return protocol < 4 || ('set' in t ? t.set : t.frozenset).some((x) => needsGlobal(x, protocol));
  if ('list' in t) return t.list.some((x) => needsGlobal(x, protocol));
  if ('tuple' in t) return t.tuple.some((x) => needsGlobal(x, protocol));
  if ('dict' in t) return t.dict.some(([k, v]) => needsGlobal(k, protocol) || needsGlobal(v, protocol));
  return false;
}

/**
 * What a tagged Python value becomes after a trip through JavaScript and back
 * to Python: tuples are lists (but stay tuples as dict keys and set items,
 * where our encoder writes arrays as tuples), frozensets are sets, bytearrays
 * bytes, and an integral float within 2^53 is an int.
 */
function afterTrip(t: Tag, key = false): Tag {
  if ('float' in t) {
    const v = Number(t.float);
    if (!key && Number.isInteger(v) && Math.abs(v) <= Number(SAFE)) return { int: String(v === 0 ? 0 : v) };
    if (key && Number.isInteger(v) && Math.abs(v) <= Number(SAFE)) return { int: String(v) };
    return t;
  }
  if ('bytearray' in t) return { bytes: t.bytearray };
  if ('list' in t) return { list: t.list.map((x) => afterTrip(x)) };
  if ('tuple' in t) return key ? { tuple: t.tuple.map((x) => afterTrip(x, true)) } : { list: t.tuple.map((x) => afterTrip(x)) };
  if ('set' in t) return { set: sorted(t.set.map((x) => afterTrip(x, true))) };
  if ('frozenset' in t) return { set: sorted(t.frozenset.map((x) => afterTrip(x, true))) };
  if ('dict' in t) return { dict: t.dict.map(([k, v]) => [afterTrip(k, true), afterTrip(v)] as [Tag, Tag]) };
  return t;
}

/** Sets compare in one order whatever order each side listed them in. */
function sorted(items: Tag[]): Tag[] {
  return items.map(resort).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}
function resort(t: Tag): Tag {
  if ('set' in t) return { set: sorted(t.set) };
  if ('frozenset' in t) return { frozenset: sorted(t.frozenset) };
  if ('list' in t) return { list: t.list.map(resort) };
  if ('tuple' in t) return { tuple: t.tuple.map(resort) };
  if ('dict' in t) return { dict: t.dict.map(([k, v]) => [resort(k), resort(v)] as [Tag, Tag]) };
  return t;
}

let vectors: Vector[] = [];

beforeAll(async () => {
  const out = expectOk(await runPython('core/pickle-vectors.py', ['dump'], { timeoutMs: 40_000 }), 'pickle-vectors.py dump').stdout;
  vectors = JSON.parse(out) as Vector[];
}, 45_000);

function refusal(fn: () => unknown): UnpicklingError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UnpicklingError);
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as UnpicklingError).code).toBe(ErrorCode.DECODE);
    return err as UnpicklingError;
  }
  throw new Error('expected an UnpicklingError, got a value');
}

describe("decoding python3's pickle.dumps, protocols 0-5", () => {
  it('python3 made vectors for every case and protocol', () => {
    const names = new Set(vectors.map((v) => v.name));
    expect(names.size).toBeGreaterThanOrEqual(60);
    for (const p of [0, 1, 2, 3, 4, 5]) expect(vectors.filter((v) => v.protocol === p).length).toBe(names.size);
  });

  for (const protocol of [0, 1, 2, 3, 4, 5]) {
    it(`protocol ${protocol}: every supported value decodes exactly; what needs a GLOBAL is refused naming it`, () => {
      let decoded = 0;
      let refused = 0;
      for (const v of vectors.filter((x) => x.protocol === protocol)) {
        const bytes = Buffer.from(v.hex, 'hex');
        const modes: Dicts[] = v.group === 'map' ? ['map'] : ['object', 'null-prototype', 'map'];
        for (const dicts of modes) {
          const what = `${v.name} (protocol ${protocol}, dicts: ${dicts})`;
          if (needsGlobal(v.value, protocol)) {
            const err = refusal(() => pickleLoads(bytes, { dicts }));
            expect(['GLOBAL', 'STACK_GLOBAL'], what).toContain(err.opcode);
            expect(err.message, what).toContain(`${err.opcode} at offset ${err.offset}`);
            refused++;
            continue;
          }
          let got: unknown;
          try {
            got = pickleLoads(bytes, { dicts });
          } catch (err) {
            throw new Error(`${what}: ${(err as Error).message}`);
          }
          expect(got, what).toEqual(expected(v.value, dicts));
          decoded++;
        }
      }
      expect(decoded).toBeGreaterThan(60);
      if (protocol < 5) expect(refused).toBeGreaterThan(0);
      else expect(refused).toBe(0);
    });
  }

  it('dicts become plain objects (or null-prototype ones): a "__proto__" key is an own property and no prototype changes', () => {
    const v = vectors.find((x) => x.name === 'dict_proto' && x.protocol === 4)!;
    for (const dicts of ['object', 'null-prototype'] as const) {
      for (const hex of vectors.filter((x) => x.name === 'dict_proto').map((x) => x.hex)) {
        const got = pickleLoads(Buffer.from(hex, 'hex'), { dicts }) as Record<string, unknown>;
        expect(Object.getPrototypeOf(got)).toBe(dicts === 'object' ? Object.prototype : null);
        expect(Object.keys(got)).toEqual(['__proto__', 'constructor']);
        const inner = Object.getOwnPropertyDescriptor(got, '__proto__')!.value as Record<string, unknown>;
        expect(Object.getPrototypeOf(inner)).toBe(dicts === 'object' ? Object.prototype : null);
        expect(inner.polluted).toBe(true);
        expect(got.polluted).toBeUndefined();
        expect(got.constructor).toBe(1);
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    // Re-encoded, the key is a key again, not a prototype.
    const again = pickleLoads(pickleDumps(pickleLoads(Buffer.from(v.hex, 'hex')))) as Record<string, unknown>;
    expect(Object.keys(again)).toEqual(['__proto__', 'constructor']);
    const asMap = pickleLoads(Buffer.from(v.hex, 'hex'), { dicts: 'map' }) as Map<string, unknown>;
    expect([...asMap.keys()]).toEqual(['__proto__', 'constructor']);
  });

  it('shared parts stay shared (the memo), tuples and lists are arrays, ints past 2^53 are bigints', () => {
    const shared = pickleLoads(Buffer.from(vectors.find((x) => x.name === 'shared' && x.protocol === 4)!.hex, 'hex')) as unknown[][];
    expect(shared[0]).toBe(shared[1]);
    expect(shared[1]).toBe(shared[2]);
    const d = pickleLoads(Buffer.from(vectors.find((x) => x.name === 'dict' && x.protocol === 4)!.hex, 'hex')) as Record<string, unknown[]>;
    expect(d.b![5]).toBe(2n ** 70n);
    expect(typeof d.a).toBe('number');
  });

  it('object mode refuses dict keys that are neither str nor int, and says to use dicts: map', () => {
    const v = vectors.find((x) => x.name === 'dict_mixed_keys' && x.protocol === 4)!;
    const err = refusal(() => pickleLoads(Buffer.from(v.hex, 'hex')));
    expect(err.message).toMatch(/dicts: 'map'/);
  });
});

describe('encoding: python3 loads what we write', () => {
  /** Each case decoded here (dicts as Maps, so keys keep their types), encoded again, for python3 to load. */
  function ours(protocol: 4 | 5): { name: string; hex: string; want: Tag | 'encode-error' }[] {
    const out: { name: string; hex: string; want: Tag | 'encode-error' }[] = [];
    for (const v of vectors.filter((x) => x.protocol === 4)) {
      const value = expected(v.value, 'map');
      let hex: string;
      try {
        hex = pickleDumps(value, { protocol }).toString('hex');
      } catch (err) {
        expect((err as { code?: string }).code, v.name).toBe(ErrorCode.ENCODE);
        out.push({ name: v.name, hex: '', want: 'encode-error' });
        continue;
      }
      out.push({ name: v.name, hex, want: afterTrip(v.value) });
    }
    return out;
  }

  for (const protocol of [4, 5] as const) {
    it(`protocol ${protocol}: every case loads in python3 as the same value (tuples as lists, arrays as tuples in keys)`, async () => {
      const mine = ours(protocol);
      expect(mine.filter((m) => m.want === 'encode-error').map((m) => m.name)).toEqual([]);
      const input = JSON.stringify({ cases: mine.map(({ name, hex }) => ({ name, hex })) });
      const got = JSON.parse(expectOk(await runPython('core/pickle-vectors.py', ['check'], { input, timeoutMs: 40_000 }), 'check').stdout) as Array<{
        name: string;
        value?: Tag;
        error?: string;
      }>;
      expect(got.length).toBe(mine.length);
      for (let i = 0; i < mine.length; i++) {
        expect(got[i]!.error, mine[i]!.name).toBeUndefined();
        expect(resort(got[i]!.value!), mine[i]!.name).toEqual(resort(mine[i]!.want as Tag));
      }
      for (const m of mine) expect(Buffer.from(m.hex, 'hex')[1]).toBe(protocol);
    });
  }

  it('writes PROTO and one FRAME as Python does, MEMOIZE for containers, and the decoder reads it back', () => {
    expect(pickleDumps(null).toString('hex')).toBe('80044e2e'); // too small for a frame, as Python
    expect(pickleDumps(1).toString('hex')).toBe('80044b012e');
    const small = pickleDumps({ a: 1 });
    // Exactly Python's pickle.dumps({'a': 1}, 4) but for the key's MEMOIZE (a JS string has no identity).
    expect(small.toString('hex')).toBe('80049509000000000000007d948c01614b01732e');
    expect(pickleLoads(small)).toEqual({ a: 1 });
    const value = { n: [1, -1, 255, 256, 65535, 65536, -(2 ** 31), 2 ** 31, 2 ** 47, -(2 ** 47) - 1, 2 ** 53 - 1, 1.5, NaN, -Infinity], s: ['', 'é', '\u{1f600}', 'a\ud800'] };
    expect(pickleLoads(pickleDumps(value))).toEqual(value);
    expect(pickleLoads(pickleDumps(2n ** 64n))).toBe(2n ** 64n);
    expect(pickleLoads(pickleDumps(-(2n ** 2100n) - 1n))).toBe(-(2n ** 2100n) - 1n);
    expect(pickleLoads(pickleDumps(5n))).toBe(5);
    expect(pickleLoads(pickleDumps(2 ** 60))).toBe(2 ** 60); // an unsafe integer is a float, as it is in JavaScript
    expect(pickleLoads(pickleDumps(undefined))).toBeNull();
  });

  it('refuses what has no pickle form with ERR_IPC_ENCODE, saying where', () => {
    const cyclic: unknown[] = [1];
    cyclic.push({ back: cyclic });
    let deep: unknown = [];
    for (let i = 0; i < 1001; i++) deep = [deep];
    class Job {
      id = 1;
    }
    const cases: Array<[unknown, RegExp]> = [
      [() => 1, /function/],
      [{ a: [1, Symbol('s')] }, /symbol.*at value\.a\[1\]/],
      [new Job(), /instance of Job/],
      [{ when: new Date(0) }, /instance of Date.*at value\.when/],
      [new Float64Array(2), /Float64Array/],
      [cyclic, /cycle.*at value\[1\]\.back/],
      [deep, /maxDepth/],
      [new Map([[{ k: 1 }, 1]]), /dict key/],
      [new Map([[[1, [2, {}]], 1]]), /Python dict key.*at value\["<key 0>"\]\[1\]\[1\]/],
      [new Set([new Map()]), /set item/],
    ];
    for (const [value, message] of cases) {
      let err: unknown;
      try {
        pickleDumps(value);
      } catch (e) {
        err = e;
      }
      expect(err, String(message)).toBeInstanceOf(TypeError);
      expect((err as { code: string }).code).toBe(ErrorCode.ENCODE);
      expect((err as Error).message).toMatch(message);
    }
    // Shared, not cyclic: written once and referenced.
    const part = { x: [1, 2] };
    const twice = pickleLoads(pickleDumps([part, part])) as unknown[];
    expect(twice[0]).toBe(twice[1]);
  });

  it("resolveCodec('pickle') is the codec, and options are validated", () => {
    const c = resolveCodec('pickle');
    expect(c.decode(Buffer.from(c.encode({ a: [1n << 80n] })))).toEqual({ a: [1n << 80n] });
    expect(() => pickleCodec({ protocol: 3 as never })).toThrow(RangeError);
    expect(() => pickleCodec({ dicts: 'list' as never })).toThrow(TypeError);
    expect(() => pickleCodec({ maxDepth: 0 })).toThrow(RangeError);
    // A Queue or Connection with it can be an argument of a Process.
    expect(codecOption(c, 'Queue')).toBe('pickle');
    const m = pickleCodec({ dicts: 'map' });
    expect(m.decode(Buffer.from(m.encode(new Map([[1, 'x']]))))).toEqual(new Map([[1, 'x']]));
  });
});

/** Bytes from a picture of a pickle: strings are latin-1, numbers bytes. */
function bytes(...parts: Array<string | number | number[]>): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(typeof p === 'number' ? [p] : p))));
}

describe('refused: every opcode that names or calls a Python object, and malformed data', () => {
  const later = cleanupAfterEach();
  const forbidden: Array<[string, Buffer, number]> = [
    ['GLOBAL', bytes(0x80, 2, 'cbuiltins\nprint\n)R.'), 2],
    ['STACK_GLOBAL', bytes(0x80, 4, 0x8c, 8, 'builtins', 0x8c, 5, 'print', 0x93, ')R.'), 19],
    ['REDUCE', bytes(0x80, 2, 'N)R.'), 4],
    ['BUILD', bytes(0x80, 2, '}Nb.'), 4],
    ['INST', bytes('(ibuiltins\nlist\n.'), 1],
    ['OBJ', bytes('(N)o.'), 3],
    ['NEWOBJ', bytes(0x80, 2, 'N)', 0x81, '.'), 4],
    ['NEWOBJ_EX', bytes(0x80, 4, 'N)}', 0x92, '.'), 5],
    ['EXT1', bytes(0x80, 2, 0x82, 1, '.'), 2],
    ['EXT2', bytes(0x80, 2, 0x83, [1, 0], '.'), 2],
    ['EXT4', bytes(0x80, 2, 0x84, [1, 0, 0, 0], '.'), 2],
    ['PERSID', bytes('Pid\n.'), 0],
    ['BINPERSID', bytes(0x80, 2, 'NQ.'), 3],
  ];
  for (const [name, data, offset] of forbidden) {
    it(`${name} is refused with its name and offset`, () => {
      const err = refusal(() => pickleLoads(data));
      expect(err.opcode).toBe(name);
      expect(err.offset).toBe(offset);
      expect(err.message).toContain(`${name} at offset ${offset}`);
      expect(err.message).toMatch(/names or calls a Python object/);
    });
  }

  it('also inside a valid frame, after memo entries, in a nested container', () => {
    const err = refusal(() => pickleLoads(bytes(0x80, 4, 0x95, [12, 0, 0, 0, 0, 0, 0, 0], ']', 0x94, '(K', 1, 0x8c, 1, 'x', 0x94, 0x93, 'e.')));
    expect(err.opcode).toBe('STACK_GLOBAL');
    expect(err.offset).toBe(20);
  });

  it("python3's os.system payloads and class instances are refused in every protocol, and nothing runs", async () => {
    for (const protocol of [0, 1, 2, 3, 4, 5]) {
      const path = join(tmpdir(), `${uniqueName('pickle-evil')}-${protocol}`);
      later(() => rmSync(path, { force: true }));
      const evil = JSON.parse(expectOk(await runPython('core/pickle-peer.py', ['evil', path, String(protocol)]), 'evil').stdout) as Record<string, string>;
      for (const [what, hex] of Object.entries(evil)) {
        for (const dicts of ['object', 'map'] as const) {
          const err = refusal(() => pickleLoads(Buffer.from(hex, 'hex'), { dicts }));
          expect(['GLOBAL', 'STACK_GLOBAL'], `${what} protocol ${protocol}`).toContain(err.opcode);
        }
        expect(() => resolveCodec('pickle').decode(Buffer.from(hex, 'hex'))).toThrow(UnpicklingError);
      }
      expect(existsSync(path)).toBe(false);
      // The payload is live: Python's own pickle.loads runs it.
      if (protocol === 4) {
        expectOk(await runPython('core/pickle-peer.py', ['loads', evil.system!]), 'python loads');
        expect(existsSync(path)).toBe(true);
      }
    }
    // The classic hand-written one.
    const path = join(tmpdir(), uniqueName('pickle-evil-classic'));
    later(() => rmSync(path, { force: true }));
    expect(refusal(() => pickleLoads(bytes(`cos\nsystem\n(S'touch ${path}'\ntR.`))).opcode).toBe('GLOBAL');
    expect(existsSync(path)).toBe(false);
  });

  it('out-of-band buffers and Python 2 STRING are not in the subset', () => {
    expect(refusal(() => pickleLoads(bytes(0x80, 5, 0x97, '.'))).opcode).toBe('NEXT_BUFFER');
    expect(refusal(() => pickleLoads(bytes(0x80, 5, 'C', 1, 'x', 0x98, '.'))).opcode).toBe('READONLY_BUFFER');
    expect(refusal(() => pickleLoads(bytes("S'abc'\n."))).opcode).toBe('STRING');
    expect(refusal(() => pickleLoads(bytes(0x80, 4, 0xff))).message).toMatch(/unknown opcode 0xff \(at offset 2\)/);
    expect(refusal(() => pickleLoads(bytes(0x80, 6, 'N.'))).message).toMatch(/unsupported pickle protocol 6/);
  });

  it('a declared length past the data is refused before anything is allocated', () => {
    const huge = [
      bytes(0x80, 4, 'X', [0xff, 0xff, 0xff, 0xff], 'abc'),
      bytes(0x80, 4, 0x8d, [0, 0, 0, 0, 0, 0, 0, 0x10], 'abc'),
      bytes(0x80, 4, 0x8e, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      bytes(0x80, 5, 0x96, [0, 0, 0, 0x40, 0, 0, 0, 0]),
      bytes(0x80, 4, 0x95, [0, 0, 0, 0, 1, 0, 0, 0], 'N.'),
      bytes(0x80, 4, 'B', [0, 0, 0, 0x7f]),
      bytes(0x80, 2, 0x8b, [0xff, 0xff, 0xff, 0x7f], 1),
      bytes(0x80, 2, 0x8b, [0xff, 0xff, 0xff, 0xff], 1),
      bytes(0x80, 2, 'T', [0, 0, 0, 0x40], 'x'),
      bytes(0x80, 4, 0x8c, 200, 'short'),
    ];
    for (const data of huge) {
      const before = process.memoryUsage().arrayBuffers;
      const err = refusal(() => pickleLoads(data));
      expect(err.message).toMatch(/declares \d+ bytes but \d+ remain|negative byte count/);
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
    }
  });

  it('malformed: truncation, trailing bytes, stack underflow, bad marks, mutating a tuple, unhashable keys, unknown memo', () => {
    const bad: Array<[Buffer, RegExp, PickleDecodeOptions?]> = [
      [bytes(0x80, 4, 'N'), /truncated/],
      [bytes(0x80, 4, 'J', [1, 2]), /truncated/],
      [bytes(0x80, 4, 'N.N'), /1 bytes follow STOP/],
      [bytes(0x80, 4, 'NN.'), /2 items at STOP/],
      [bytes(0x80, 4, '.'), /0 items at STOP/],
      [bytes(0x80, 4, 'a.'), /stack underflow/],
      [bytes(0x80, 4, ']N(a.'), /stack underflow/],
      [bytes(0x80, 4, 'e.'), /no MARK/],
      [bytes(0x80, 4, '(N.'), /MARK is still open/],
      [bytes(0x80, 4, ')Na.'), /a tuple, not a list/],
      [bytes(0x80, 4, '(N', 0x91, '(K', 1, 0x90, '.'), /a frozenset, not a set/],
      [bytes(0x80, 4, '}]Ns.'), /a list is unhashable/, { dicts: 'map' }],
      [bytes(0x80, 4, 0x8f, '(]', 0x90, '.'), /a list is unhashable/],
      [bytes(0x80, 4, '}NNs.'), /key of type None has no object-key form/],
      [bytes(0x80, 4, 'h', 3, '.'), /memo entry 3 is not defined/],
      [bytes(0x80, 4, 'Ns.'), /stack underflow/],
      [bytes(0x80, 4, 'NNNs.'), /not a dict/],
      [bytes(0x80, 4, '}(N', 'u.'), /odd number/],
      [bytes('I12x\n.'), /not a decimal integer/],
      [bytes('I', '9'.repeat(4400), '\n.'), /exceeds Python's limit/],
      [bytes('F1.2.3\n.'), /not a float/],
      [bytes('I12'), /no newline/],
      [bytes(0x80, 4, 0x8c, 2, [0xc3, 0x28], '.'), /not valid UTF-8/],
      [bytes(0x80, 2, 'U', 2, [0xc3, 0xa9], '.'), /not ASCII/],
    ];
    for (const [data, message, options] of bad) {
      const err = refusal(() => pickleLoads(data, options));
      expect(err.message, data.toString('latin1')).toMatch(message);
    }
    // The memo is a Map: an index of 2^32 - 1 is one entry.
    expect(pickleLoads(bytes(0x80, 4, 'N', 'r', [0xff, 0xff, 0xff, 0xff], '0j', [0xff, 0xff, 0xff, 0xff], '.'))).toBeNull();
  });

  it('nesting past maxDepth and cycles (which Python allows) are refused; shallower is fine', () => {
    const nested = (n: number) => bytes(0x80, 4, ']'.repeat(n), 'a'.repeat(n - 1), '.');
    expect(refusal(() => pickleLoads(nested(1001))).message).toMatch(/maxDepth \(1000\)/);
    expect(pickleLoads(nested(1000))).toBeInstanceOf(Array);
    expect(pickleLoads(nested(1500), { maxDepth: 2000 })).toBeInstanceOf(Array);
    // Deep through the memo with a stack of two: each list holds the previous one.
    const chain = [0x80, 4, 0x5d, 0x94, 0x30];
    for (let i = 0; i < 1100; i++) chain.push(0x5d, 0x6a, i & 0xff, i >> 8, 0, 0, 0x61, 0x94, 0x30);
    chain.push(0x6a, 1100 & 0xff, 1100 >> 8, 0, 0);
    expect(refusal(() => pickleLoads(bytes(chain, '.'))).message).toMatch(/maxDepth \(1000\)/);
    expect(pickleLoads(bytes(chain, '.'), { maxDepth: 1200 })).toBeInstanceOf(Array);
    // a list containing itself: EMPTY_LIST, MEMOIZE, BINGET 0, APPEND
    expect(refusal(() => pickleLoads(bytes(0x80, 4, ']', 0x94, 'h', 0, 'a.'))).message).toMatch(/cycle/);
    expect(refusal(() => pickleLoads(bytes(0x80, 4, ']2a.'))).message).toMatch(/cycle/);
    // Shared but acyclic is fine.
    const dag = pickleLoads(bytes(0x80, 4, ']', 0x94, '0](h', 0, 'h', 0, 'e.')) as unknown[];
    expect(dag[0]).toBe(dag[1]);
  });
});
