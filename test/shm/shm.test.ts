import { constants } from 'node:buffer';
import { readFileSync, statSync, truncateSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { IPCError, Lock, PAGE_SIZE, SharedArray, SharedMemory, Value } from '../../lib/index.js';
import type { Typecode } from '../../lib/index.js';
import { NAME_PREFIX, ROOT, expectOk, fdCount, run, runNode, shmEntries, namesRemovedAfterEach } from '../helpers/index.js';

/**
 * Entries of /dev/shm that appeared since `before`, leaving out what other
 * processes on the machine make meanwhile: glibc's sem.XXXXXX temporaries
 * (sem_open creates one, then links it under the real name) and other test
 * processes' names.
 */
function entriesAddedSince(before: string[]): string[] {
  return shmEntries().filter(
    (e) => !before.includes(e) && !/^sem\.[A-Za-z0-9]{6}$/.test(e) && !(e.includes('pipc-test-') && !e.includes(NAME_PREFIX)),
  );
}

const { name } = namesRemovedAfterEach('shm', (n) => SharedMemory.unlink(n), (n) => Lock.unlink(n));

/** Entries of /dev/shm this process mapped, from /proc/self/maps. */
function mappingsOf(n: string): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.endsWith(`/dev/shm/${n}`) || l.includes(`/dev/shm/${n} `)).length;
}

function expectIPC(fn: () => unknown, code: string, syscall?: string): IPCError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(IPCError);
  const e = caught as IPCError;
  expect(e.code).toBe(code);
  if (syscall) expect(e.syscall).toBe(syscall);
  return e;
}

type BadCall = [() => unknown, typeof TypeError | typeof RangeError, string];

/** Each call throws an error of its class, with its code. */
function expectEachToThrow(bad: BadCall[]): void {
  for (const [fn, type, code] of bad) {
    let caught: unknown;
    try {
      fn();
    } catch (err) {
      caught = err;
    }
    expect(caught, String(fn)).toBeInstanceOf(type);
    expect((caught as { code: string }).code, String(fn)).toBe(code);
  }
}

describe('SharedMemory', () => {
  it('creates, opens by name with or without a slash, and shares bytes', () => {
    const n = name();
    const a = new SharedMemory(n, { create: true, size: 4096 });
    const b = new SharedMemory('/' + n);
    try {
      expect(a.name).toBe(n); // as Python reports it: no leading slash
      expect(b.name).toBe(n);
      expect(a.created).toBe(true);
      expect(b.created).toBe(false);
      expect(a.size).toBe(4096);
      expect(b.size).toBe(4096);
      expect(a.buffer.every((x) => x === 0)).toBe(true);
      a.buffer.write('hello', 100);
      expect(b.buffer.toString('utf8', 100, 105)).toBe('hello');
      expect(a.buffer).toBe(a.buffer); // one Buffer, not one per access
      expect(statSync(`/dev/shm/${n}`).size).toBe(4096);
    } finally {
      a.close();
      b.close();
      a.unlink();
    }
    expect(shmEntries()).not.toContain(n);
  });

  it('creates with mode 0600 by default and honours mode', () => {
    const n1 = name();
    const n2 = name();
    const prev = process.umask(0);
    try {
      const a = new SharedMemory(n1, { create: true, size: 10 });
      const b = new SharedMemory(n2, { create: true, size: 10, mode: 0o640 });
      expect(statSync(`/dev/shm/${n1}`).mode & 0o777).toBe(0o600);
      expect(statSync(`/dev/shm/${n2}`).mode & 0o777).toBe(0o640);
      a.close();
      b.close();
    } finally {
      process.umask(prev);
    }
  });

  it('makes a random Python-style name without one', () => {
    const before = new Set(shmEntries());
    const a = new SharedMemory({ size: 100 });
    const b = new SharedMemory(undefined, { size: 100 });
    try {
      expect(a.name).toMatch(/^psm_[0-9a-f]{8}$/);
      expect(b.name).toMatch(/^psm_[0-9a-f]{8}$/);
      expect(a.name).not.toBe(b.name);
      expect(before.has(a.name)).toBe(false);
      expect(shmEntries()).toContain(a.name);
      expect(a.created).toBe(true);
    } finally {
      a.close();
      b.close();
      a.unlink();
      b.unlink();
    }
    expect(shmEntries()).not.toContain(a.name);
  });

  it('open-only, exclusive and create-or-open behave like O_CREAT/O_EXCL', () => {
    const n = name();
    const e = expectIPC(() => new SharedMemory(n), 'ENOENT', 'shm_open');
    expect(e.path).toBe('/' + n);
    expect(e.errno).toBe(-2);
    expect(e.message).toBe(`ENOENT: no such file or directory, shm_open '/${n}'`);
    const a = new SharedMemory(n, { create: true, exclusive: true, size: 64 });
    expectIPC(() => new SharedMemory(n, { create: true, exclusive: true, size: 64 }), 'EEXIST', 'shm_open');
    // create without exclusive opens it, growing (never shrinking) to size.
    const b = new SharedMemory(n, { create: true, size: 32 });
    expect(b.created).toBe(false);
    expect(b.size).toBe(64);
    const c = new SharedMemory(n, { create: true, size: 8192 });
    expect(c.size).toBe(8192);
    expect(statSync(`/dev/shm/${n}`).size).toBe(8192);
    for (const s of [a, b, c]) s.close();
  });

  it('rejects bad sizes, names and options with specific errors', () => {
    const n = name();
    const cases: [() => unknown, string, string][] = [
      [() => new SharedMemory(n, { create: true, size: 0 }), 'RangeError', 'ERR_OUT_OF_RANGE'],
      [() => new SharedMemory(n, { create: true, size: -1 }), 'RangeError', 'ERR_OUT_OF_RANGE'],
      [() => new SharedMemory(n, { create: true, size: 1.5 }), 'RangeError', 'ERR_OUT_OF_RANGE'],
      [() => new SharedMemory(n, { create: true, size: NaN }), 'RangeError', 'ERR_OUT_OF_RANGE'],
      [() => new SharedMemory(n, { create: true, size: 2 ** 60 }), 'RangeError', 'ERR_OUT_OF_RANGE'],
      [() => new SharedMemory(n, { create: true, size: '10' as never }), 'TypeError', 'ERR_INVALID_ARG_TYPE'],
      [() => new SharedMemory(n, { create: true }), 'RangeError', 'ERR_OUT_OF_RANGE'],
      [() => new SharedMemory(), 'RangeError', 'ERR_OUT_OF_RANGE'],
      [() => new SharedMemory(n, { create: 1 as never, size: 10 }), 'TypeError', 'ERR_INVALID_ARG_TYPE'],
      [() => new SharedMemory(n, { create: true, size: 10, mode: 0o1777 }), 'RangeError', 'ERR_OUT_OF_RANGE'],
      [() => new SharedMemory(n, { create: true, size: 10, readOnly: true }), 'TypeError', 'ERR_INCOMPATIBLE_OPTION_PAIR'],
      [() => new SharedMemory(undefined, { create: false }), 'TypeError', 'ERR_INCOMPATIBLE_OPTION_PAIR'],
      [() => new SharedMemory('a/b', { create: true, size: 10 }), 'TypeError', 'ERR_INVALID_ARG_VALUE'],
      [() => new SharedMemory('', { create: true, size: 10 }), 'TypeError', 'ERR_INVALID_ARG_VALUE'],
      [() => new SharedMemory('x'.repeat(256), { create: true, size: 10 }), 'RangeError', 'ERR_OUT_OF_RANGE'],
      [() => new SharedMemory(42 as never), 'TypeError', 'ERR_INVALID_ARG_TYPE'],
      [() => new SharedMemory(n, 'big' as never), 'TypeError', 'ERR_INVALID_ARG_TYPE'],
    ];
    for (const [fn, type, code] of cases) {
      let caught: unknown;
      try {
        fn();
      } catch (err) {
        caught = err;
      }
      expect(caught, String(fn)).toBeInstanceOf(type === 'RangeError' ? RangeError : TypeError);
      expect((caught as { code: string }).code, String(fn)).toBe(code);
    }
    expect(shmEntries()).not.toContain(n);
  });

  it('refuses sizes past one Buffer up front, and a larger foreign segment only at .buffer', () => {
    const n = name();
    expect(() => new SharedMemory(n, { create: true, size: constants.MAX_LENGTH + 1 })).toThrow(
      expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }),
    );
    expect(() => new SharedArray('d', 2 ** 32 - 1, { name: n })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(shmEntries()).not.toContain(n);
    // Another program made a 5 GiB (sparse) segment: it maps, and asking for a
    // Buffer over it is a RangeError, not a crash.
    const s = new SharedMemory(n, { create: true, size: 4096 });
    truncateSync(`/dev/shm/${n}`, 5 * 2 ** 30);
    const big = new SharedMemory(n);
    try {
      expect(big.size).toBe(5 * 2 ** 30);
      expect(() => big.buffer).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_BUFFER_TOO_LARGE' }));
      expect(() => new Value('i', 0, { name: n })).not.toThrow();
    } finally {
      big.close();
      s.close();
      s.unlink();
    }
  });

  it('maps an empty existing segment as an error, not a crash', () => {
    const n = name();
    const a = new SharedMemory(n, { create: true, size: 16 });
    a.close();
    // An empty segment is what a creator leaves between its shm_open and its
    // ftruncate (Python's SharedMemory does the same two steps).
    truncateSync(`/dev/shm/${n}`, 0);
    expectIPC(() => new SharedMemory(n), 'EINVAL', 'mmap');
    expect(shmEntries()).toContain(n); // not ours to remove
  });

  it('close() detaches the buffer and every view, and is idempotent', () => {
    const n = name();
    const a = new SharedMemory(n, { create: true, size: 1024 });
    const buf = a.buffer;
    const view = new Uint32Array(buf.buffer);
    buf.fill(1);
    expect(mappingsOf(n)).toBe(1);
    a.close();
    a.close();
    expect(a.closed).toBe(true);
    expect(buf.length).toBe(0);
    expect(buf.buffer.byteLength).toBe(0);
    expect(view.length).toBe(0);
    expect(buf[0]).toBeUndefined();
    expect(() => buf.readUInt32LE(0)).toThrow(RangeError);
    expectIPC(() => a.buffer, 'EBADF');
    expect(mappingsOf(n)).toBe(0);
    a.unlink(); // works after close
    expectIPC(() => a.unlink(), 'ENOENT', 'shm_unlink');
    expectIPC(() => SharedMemory.unlink(n), 'ENOENT', 'shm_unlink');
  });

  it('a view used after close() in a child process reads empty or throws; the child survives', async () => {
    const r = expectOk(await runNode('shm/stale-view.mjs'), 'shm-stale-view');
    expect(r.signal).toBeNull();
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      bufLength: 0,
      bufByte: null,
      f64Length: 0,
      readUInt32LE: 'ERR_BUFFER_OUT_OF_BOUNDS',
      getter: 'EBADF',
      subarray: 'TypeError',
      arrayLength: 0,
      arrayElem: null,
      arrayAdd: 'EBADF',
      valueGet: 'EBADF',
    });
    expect(['TypeError', 'RangeError']).toContain(report.dataView);
  });

  it('a forgotten segment is unmapped by its finalizer, but not while a Buffer holds it', async () => {
    const r = expectOk(await run(process.execPath, ['--expose-gc', `${ROOT}/test/fixtures/shm/gc.mjs`]), 'shm-gc');
    const report = JSON.parse(r.stdout);
    expect(report.before).toEqual([1, 1]);
    expect(report.afterGc).toEqual([0, 1]);
    expect(report.keptReads).toBe('still here');
    expect(report.afterDrop).toBe(0);
  });

  it('read-only: sees others\' writes; raw writes stay private; typed writes throw EACCES', () => {
    const n = name();
    const w = new SharedMemory(n, { create: true, size: 2 * PAGE_SIZE });
    const r = new SharedMemory(n, { readOnly: true });
    try {
      expect(r.readOnly).toBe(true);
      w.buffer.write('abc', 0);
      expect(r.buffer.toString('utf8', 0, 3)).toBe('abc');
      // A stray write through the read-only Buffer: no SIGSEGV, and the segment
      // is unchanged for everyone else.
      r.buffer[PAGE_SIZE] = 42;
      expect(w.buffer[PAGE_SIZE]).toBe(0);
      const again = new SharedMemory(n, { readOnly: true });
      expect(again.buffer[PAGE_SIZE]).toBe(0);
      again.close();
      // The untouched first page still follows the writer.
      w.buffer.write('xyz', 0);
      expect(r.buffer.toString('utf8', 0, 3)).toBe('xyz');
    } finally {
      w.close();
      r.close();
    }
    const vn = name();
    const v = new Value('i', 7, { name: vn });
    const ro = new Value('i', 0, { name: vn, readOnly: true });
    expect(ro.value).toBe(7);
    expect(ro.load()).toBe(7);
    const e = expectIPC(() => {
      ro.value = 1;
    }, 'EACCES');
    expect(e.path).toBe('/' + vn);
    for (const op of [() => ro.add(1), () => ro.store(1), () => ro.exchange(1), () => ro.compareExchange(7, 1)]) {
      expectIPC(op, 'EACCES');
    }
    v.add(1);
    expect(ro.value).toBe(8);
    const arr = new SharedArray('B', 4, { name: name(), lock: false });
    const aro = new SharedArray('B', 4, { name: arr.name, readOnly: true });
    expectIPC(() => aro.set(0, 1), 'EACCES');
    expectIPC(() => aro.or(0, 1), 'EACCES');
    expect(() => new Value('i', 0, { name: vn, readOnly: true, create: true })).toThrow(
      expect.objectContaining({ code: 'ERR_INCOMPATIBLE_OPTION_PAIR' }),
    );
    for (const x of [v, ro, arr, aro]) x.close();
  });

  it('maps 1 GiB as cheaply as 4 KiB: sparse, last byte writable, RSS not inflated', () => {
    const n = name();
    const GiB = 1024 ** 3;
    const rss0 = process.memoryUsage().rss;
    const t0 = process.hrtime.bigint();
    const s = new SharedMemory(n, { create: true, size: GiB });
    try {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      expect(s.size).toBe(GiB);
      expect(s.buffer.length).toBe(GiB);
      expect(ms).toBeLessThan(1000); // generous: it is a few syscalls, no page is touched
      s.buffer[GiB - 1] = 0xab;
      s.buffer[0] = 0xcd;
      const other = new SharedMemory(n);
      expect(other.buffer[GiB - 1]).toBe(0xab);
      other.close();
      const st = statSync(`/dev/shm/${n}`);
      expect(st.size).toBe(GiB);
      expect(st.blocks * 512).toBeLessThan(1024 * 1024); // two pages allocated, not a gigabyte
      expect(process.memoryUsage().rss - rss0).toBeLessThan(64 * 1024 * 1024);
    } finally {
      s.close();
      s.unlink(); // promptly: the test machine's /dev/shm is shared
    }
  });

  it('leaks no descriptor, mapping or name over many open/close cycles', () => {
    const n = name();
    const fds = fdCount();
    const first = new SharedMemory(n, { create: true, size: 8192 });
    expect(fdCount()).toBe(fds); // the mapping holds the segment; no fd is kept
    for (let i = 0; i < 200; i++) {
      const s = new SharedMemory(n);
      s.buffer[i] = i & 0xff;
      s.close();
    }
    expect(mappingsOf(n)).toBe(1);
    first.close();
    expect(mappingsOf(n)).toBe(0);
    expect(fdCount()).toBe(fds);
  });

  it('its buffer cannot be transferred to a worker (close() must reach every view)', async () => {
    const n = name();
    const s = new SharedMemory(n, { create: true, size: 64 });
    const w = new Worker('require("worker_threads").parentPort.on("message", (m) => { require("worker_threads").parentPort.postMessage(m.byteLength); });', { eval: true });
    try {
      s.buffer.write('x');
      let transferError: unknown;
      try {
        // A mapping is never a SharedArrayBuffer; the cast only narrows Buffer's ArrayBufferLike.
        w.postMessage(s.buffer.buffer, [s.buffer.buffer as ArrayBuffer]);
      } catch (err) {
        transferError = err;
      }
      // Either refused, or copied: it must still be ours and attached.
      expect(s.buffer.length).toBe(64);
      expect(s.buffer.toString('utf8', 0, 1)).toBe('x');
      if (transferError === undefined) {
        const got = await new Promise((resolve) => w.once('message', resolve));
        expect(got).toBe(64);
      } else {
        expect((transferError as Error).name).toBe('DataCloneError');
      }
    } finally {
      await w.terminate();
      s.close();
    }
  });
});

const INT_CODES: [Typecode, number | bigint, number | bigint][] = [
  ['b', -128, 127],
  ['B', 0, 255],
  ['h', -32768, 32767],
  ['H', 0, 65535],
  ['i', -(2 ** 31), 2 ** 31 - 1],
  ['I', 0, 2 ** 32 - 1],
  ['l', -(2n ** 63n), 2n ** 63n - 1n],
  ['L', 0n, 2n ** 64n - 1n],
  ['q', -(2n ** 63n), 2n ** 63n - 1n],
  ['Q', 0n, 2n ** 64n - 1n],
];
const SIZES: Record<Typecode, number> = { b: 1, B: 1, h: 2, H: 2, i: 4, I: 4, l: 8, L: 8, q: 8, Q: 8, f: 4, d: 8 };

describe('Value', () => {
  it('stores every typecode at offset 0 with Python\'s item sizes', () => {
    for (const code of Object.keys(SIZES) as Typecode[]) {
      const n = name('val');
      const big = 'lLqQ'.includes(code);
      const v = new Value(code, (big ? 5n : 5) as never, { name: n });
      expect(v.typecode).toBe(code);
      expect(v.itemsize).toBe(SIZES[code]);
      expect(statSync(`/dev/shm/${n}`).size).toBe(SIZES[code]);
      expect(v.value).toBe(big ? 5n : 5);
      v.value = (big ? 7n : 7) as never;
      const raw = new SharedMemory(n);
      const expected = Buffer.alloc(SIZES[code]);
      ({
        b: () => expected.writeInt8(7),
        B: () => expected.writeUInt8(7),
        h: () => expected.writeInt16LE(7),
        H: () => expected.writeUInt16LE(7),
        i: () => expected.writeInt32LE(7),
        I: () => expected.writeUInt32LE(7),
        l: () => expected.writeBigInt64LE(7n),
        L: () => expected.writeBigUInt64LE(7n),
        q: () => expected.writeBigInt64LE(7n),
        Q: () => expected.writeBigUInt64LE(7n),
        f: () => expected.writeFloatLE(7),
        d: () => expected.writeDoubleLE(7),
      })[code]();
      expect(raw.buffer.subarray(0, SIZES[code])).toEqual(expected);
      raw.close();
      v.close();
    }
  });

  it('defaults to 0 (0n), and only the creator writes the initial value', () => {
    const n = name('val');
    expect(new Value('d', undefined, { name: n }).value).toBe(0);
    const q = new Value('q', undefined, { name: name('val') });
    expect(q.value).toBe(0n);
    const a = new Value('i', 41, { name: name('val') });
    expect(a.created).toBe(true);
    a.add(1);
    const b = new Value('i', 1000, { name: a.name });
    expect(b.created).toBe(false);
    expect(b.value).toBe(42);
    for (const x of [q, a, b]) x.close();
    expectIPC(() => new Value('i', 0, { name: name('val'), create: false }), 'ENOENT', 'shm_open');
    expectIPC(() => new Value('i', 0, { name: a.name, exclusive: true }), 'EEXIST', 'shm_open');
  });

  it('makes a random name without one', () => {
    const v = new Value('I', 3);
    try {
      expect(v.name).toMatch(/^psm_[0-9a-f]{8}$/);
      expect(new Value('I', 0, { name: v.name }).value).toBe(3);
    } finally {
      v.close();
      v.unlink();
    }
    expect(shmEntries()).not.toContain(v.name);
  });

  it('rejects unknown typecodes and wrong initial values', () => {
    const bad: BadCall[] = [
      [() => new Value('x' as Typecode, 0), TypeError, 'ERR_INVALID_ARG_VALUE'],
      [() => new Value('u' as Typecode, 0), TypeError, 'ERR_INVALID_ARG_VALUE'],
      [() => new Value('toString' as Typecode, 0), TypeError, 'ERR_INVALID_ARG_VALUE'],
      [() => new Value(4 as unknown as Typecode, 0), TypeError, 'ERR_INVALID_ARG_TYPE'],
      [() => new Value('i', 1.5), RangeError, 'ERR_OUT_OF_RANGE'],
      [() => new Value('i', 2 ** 31), RangeError, 'ERR_OUT_OF_RANGE'],
      [() => new Value('B', -1), RangeError, 'ERR_OUT_OF_RANGE'],
      [() => new Value('b', 128), RangeError, 'ERR_OUT_OF_RANGE'],
      [() => new Value('i', NaN), RangeError, 'ERR_OUT_OF_RANGE'],
      [() => new Value('i', '1' as never), TypeError, 'ERR_INVALID_ARG_TYPE'],
      [() => new Value('q', 1 as never), TypeError, 'ERR_INVALID_ARG_TYPE'],
      [() => new Value('Q', -1n), RangeError, 'ERR_OUT_OF_RANGE'],
      [() => new Value('q', 2n ** 63n), RangeError, 'ERR_OUT_OF_RANGE'],
      [() => new Value('d', 1n as never), TypeError, 'ERR_INVALID_ARG_TYPE'],
      [() => new Value('i', 0, { lock: 'yes' as never }), TypeError, 'ERR_INVALID_ARG_TYPE'],
      [() => new Value('i', 0, { name: 'x'.repeat(252) }), RangeError, 'ERR_OUT_OF_RANGE'],
    ];
    const before = shmEntries();
    expectEachToThrow(bad);
    expect(entriesAddedSince(before)).toEqual([]);
    const v = new Value('h', 0, { name: name('val') });
    expect(() => {
      v.value = 40000;
    }).toThrow(RangeError);
    expect(() => v.add(1.5)).toThrow(RangeError);
    expect(() => v.add('1' as never)).toThrow(TypeError);
    expect(v.value).toBe(0);
    v.close();
  });

  it('refuses to open a segment smaller than one element', () => {
    const n = name('val');
    const small = new SharedMemory(n, { create: true, size: 4 });
    const t0 = Date.now();
    const e = expectIPC(() => new Value('q', 0n, { name: n }), 'EINVAL');
    expect(e.message).toMatch(/4 bytes, smaller than the 8 bytes/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    small.close();
    expect(shmEntries()).toContain(n); // not ours to remove
  });

  it('implements every atomic operation with Atomics semantics, for every integer typecode', () => {
    for (const [code, min, max] of INT_CODES) {
      const big = typeof min === 'bigint';
      const N = (x: number) => (big ? BigInt(x) : x) as never;
      const v = new Value(code, N(10), { name: name('atom'), lock: false });
      expect(v.load()).toBe(N(10));
      expect(v.add(N(5))).toBe(N(10));
      expect(v.sub(N(3))).toBe(N(15));
      expect(v.value).toBe(N(12));
      expect(v.and(N(6))).toBe(N(12));
      expect(v.value).toBe(N(4));
      expect(v.or(N(3))).toBe(N(4));
      expect(v.xor(N(1))).toBe(N(7));
      expect(v.value).toBe(N(6));
      expect(v.exchange(N(9))).toBe(N(6));
      expect(v.compareExchange(N(1), N(2))).toBe(N(9)); // no swap
      expect(v.value).toBe(N(9));
      expect(v.compareExchange(N(9), N(2))).toBe(N(9)); // swap
      expect(v.value).toBe(N(2));
      expect(v.store(max as never)).toBe(max);
      expect(v.add(N(1))).toBe(max); // wraps around like the C type
      expect(v.value).toBe(min);
      expect(v.sub(N(1))).toBe(min);
      expect(v.value).toBe(max);
      v.close();
    }
  });

  it('floating-point Values have no atomics', () => {
    const v = new Value('d', 1.5, { name: name('val') });
    expect(() => v.add(1)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_IPC_NOT_INTEGER' }));
    expect(() => v.load()).toThrow(TypeError);
    v.value = 2.25;
    expect(v.value).toBe(2.25);
    v.close();
    expectIPC(() => v.add(1), 'EBADF');
  });

  it('after close(): every access throws EBADF', () => {
    const v = new Value('i', 1, { name: name('val') });
    v.close();
    v.close();
    expect(v.closed).toBe(true);
    for (const fn of [() => v.value, () => v.add(1), () => v.load(), () => v.getLock(), () => { v.value = 2; }]) {
      expectIPC(fn, 'EBADF');
    }
  });

  it('getLock() returns the Lock of the same name; unlink() removes it too', async () => {
    const n = name('lock');
    const v = new Value('i', 0, { name: n });
    const w = new Value('i', 0, { name: n });
    const lock = v.getLock();
    expect(lock).toBeInstanceOf(Lock);
    expect(v.getLock()).toBe(lock);
    expect(lock.name).toBe('/' + n);
    expect(shmEntries()).toContain(`pipc.${n}.sem`);
    expect(lock.tryAcquire()).toBe(true);
    expect(w.getLock().locked()).toBe(true); // the same semaphore, found by name
    expect(await w.getLock().acquire({ timeout: 20 })).toBe(false);
    lock.release();
    v.close();
    expect(lock.closed).toBe(true);
    w.unlink();
    expect(shmEntries()).not.toContain(n);
    expect(shmEntries()).not.toContain(`pipc.${n}.sem`);
    w.close();
  });

  it('lock: false has no lock; lock: a Lock uses it and leaves it alone', () => {
    const own = new Lock(name('own'));
    const v = new Value('i', 0, { name: name('val'), lock: false });
    const u = new Value('i', 0, { name: name('val'), lock: own });
    expect(() => v.getLock()).toThrow(expect.objectContaining({ code: 'ERR_IPC_NO_LOCK' }));
    expect(u.getLock()).toBe(own);
    u.close();
    expect(own.closed).toBe(false);
    u.unlink();
    expect(shmEntries()).toContain(`pipc.${own.name.slice(1)}.sem`);
    v.close();
    own.close();
  });

  it('static unlink removes the segment and its lock; ENOENT when missing', () => {
    const n = name('val');
    const v = new Value('i', 0, { name: n });
    v.getLock();
    v.close();
    Value.unlink(n);
    expect(shmEntries().filter((e) => e.endsWith(n))).toEqual([]);
    expectIPC(() => Value.unlink(n), 'ENOENT', 'shm_unlink');
    // Without a lock ever made, only the segment goes.
    const a = new SharedArray('i', 2, { name: name('arr') });
    a.close();
    SharedArray.unlink(a.name);
    expect(shmEntries()).not.toContain(a.name);
  });

  it('works from a worker thread on the same name', async () => {
    const n = name('val');
    const v = new Value('i', 0, { name: n });
    const url = new URL('../../dist/index.js', import.meta.url).href;
    const src = `import { Value } from ${JSON.stringify(url)};
      import { workerData, parentPort } from 'node:worker_threads';
      const v = new Value('i', 0, { name: workerData, create: false });
      for (let i = 0; i < 1000; i++) v.add(1);
      v.close();
      parentPort.postMessage('done');`;
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(src)}`), { workerData: n });
    for (let i = 0; i < 1000; i++) v.add(1);
    await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    expect(v.value).toBe(2000);
    v.close();
  });
});

describe('SharedArray', () => {
  it('creates zero-filled from a length, or from values, with Python\'s layout', () => {
    const a = new SharedArray('d', 1000, { name: name('arr') });
    expect(a.length).toBe(1000);
    expect(a.array).toBeInstanceOf(Float64Array);
    expect(a.array.length).toBe(1000);
    expect(a.array.every((x) => x === 0)).toBe(true);
    expect(statSync(`/dev/shm/${a.name}`).size).toBe(8000);
    const b = new SharedArray('h', [1, -2, 3], { name: name('arr') });
    expect([...b]).toEqual([1, -2, 3]);
    const raw = new SharedMemory(b.name);
    expect([raw.buffer.readInt16LE(0), raw.buffer.readInt16LE(2), raw.buffer.readInt16LE(4)]).toEqual([1, -2, 3]);
    raw.close();
    const c = new SharedArray('Q', new Set([1n, 2n ** 64n - 1n]), { name: name('arr') });
    expect(c.array).toBeInstanceOf(BigUint64Array);
    expect([...c.array]).toEqual([1n, 2n ** 64n - 1n]);
    const d = new SharedArray('f', new Float32Array([0.5, 1.5]), { name: name('arr') });
    expect(d.get(1)).toBe(1.5);
    d.set(0, 2.5);
    expect(d.array[0]).toBe(2.5);
    // Opening by name takes the existing contents and views `length` elements.
    const e = new SharedArray('d', 10, { name: a.name });
    a.array[9] = 9.5;
    expect(e.array[9]).toBe(9.5);
    expect(e.length).toBe(10);
    for (const x of [a, b, c, d, e]) x.close();
  });

  it('rejects bad lengths, values and indexes', () => {
    // Each call would make a random psm_ segment if it got that far; other
    // processes' names come and go meanwhile, so look only at those.
    const randomSegments = (): string[] => shmEntries().filter((e) => e.startsWith('psm_'));
    const before = randomSegments();
    const bad: BadCall[] = [
      [() => new SharedArray('i', 0), RangeError, 'ERR_OUT_OF_RANGE'],
      [() => new SharedArray('i', -3), RangeError, 'ERR_OUT_OF_RANGE'],
      [() => new SharedArray('i', 2.5), RangeError, 'ERR_OUT_OF_RANGE'],
      [() => new SharedArray('i', []), RangeError, 'ERR_OUT_OF_RANGE'],
      [() => new SharedArray('i', [1, 'two'] as never), TypeError, 'ERR_INVALID_ARG_TYPE'],
      [() => new SharedArray('B', [1, 256]), RangeError, 'ERR_OUT_OF_RANGE'],
      [() => new SharedArray('q', [1, 2] as never), TypeError, 'ERR_INVALID_ARG_TYPE'],
      [() => new SharedArray('i', '12' as never), TypeError, 'ERR_INVALID_ARG_TYPE'],
      [() => new SharedArray('i', null as never), TypeError, 'ERR_INVALID_ARG_TYPE'],
      [() => new SharedArray('z' as never, 4), TypeError, 'ERR_INVALID_ARG_VALUE'],
    ];
    expectEachToThrow(bad);
    expect(randomSegments()).toEqual(before);
    const a = new SharedArray('i', 4, { name: name('arr') });
    for (const fn of [() => a.add(4, 1), () => a.add(-1, 1), () => a.get(1.5), () => a.set(10, 1), () => a.load(4)]) {
      expect(fn).toThrow(RangeError);
    }
    expect(() => a.add('1' as never, 1)).toThrow(TypeError);
    a.close();
  });

  it('atomics act on the indexed element only', () => {
    const a = new SharedArray('I', 8, { name: name('arr') });
    expect(a.add(3, 5)).toBe(0);
    expect(a.or(7, 0x80000000)).toBe(0);
    expect(a.compareExchange(3, 5, 6)).toBe(5);
    expect(a.exchange(0, 1)).toBe(0);
    expect(a.store(1, 4294967295)).toBe(4294967295);
    expect(a.add(1, 2)).toBe(4294967295);
    expect([...a.array]).toEqual([1, 1, 0, 6, 0, 0, 0, 0x80000000]);
    expect(a.load(7)).toBe(0x80000000);
    a.close();
  });
});

describe('native guards', () => {
  it('rejects a foreign handle with "Illegal invocation" instead of reinterpreting it', async () => {
    const { binding } = await import('../../lib/core/binding.js');
    const sem = binding.semOpen('/' + name('g'), true, false, 0o600, 1, -1);
    try {
      expect(() => binding.shmBuffer(sem, 64)).toThrow(/Illegal invocation/);
      expect(() => binding.shmClose({} as never)).toThrow(TypeError);
    } finally {
      binding.semClose(sem);
    }
    const s = new SharedMemory(name('g'), { create: true, size: 8 });
    const h = binding.shmOpen('/' + s.name, false, false, false, 0, 0, null, 0, 0, -1)[0];
    try {
      // A buffer longer than the mapping is refused; after close the handle is closed.
      expect(() => binding.shmBuffer(h, 4)).toThrow(RangeError);
      expect(new Uint8Array(binding.shmBuffer(h, 8)).length).toBe(8);
      binding.shmClose(h);
      expect(() => binding.shmBuffer(h, 8)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    } finally {
      binding.shmClose(h);
      s.close();
    }
  });
});
