// Value and SharedArray atomics are JavaScript's Atomics on the mapping (no
// call into the addon): exact across processes, untorn at 64 bits, refused on
// read-only mappings and float typecodes.
import { describe, expect, it } from 'vitest';
import { IPCError, SharedArray, SharedMemory, Value } from '../../lib/index.js';
import { expectOk, namesRemovedAfterEach, runNode } from '../helpers/index.js';

const { name, track } = namesRemovedAfterEach('shma', (n) => SharedMemory.unlink(n));

describe('atomics across processes', () => {
  it('a 64-bit load() never sees half of one store and half of another', async () => {
    const n = name('flip');
    const a = 0x0123456789abcdefn;
    const b = BigInt.asIntN(64, ~a);
    const v = new Value('q', a, { name: n, lock: false });
    try {
      // Read for as long as the child runs (not for a fixed second, which a
      // slow child start could leave without a single store to see).
      let running = true;
      const child = runNode('shm/atomics.mjs', ['flip', n, '1500']).finally(() => {
        running = false;
      });
      const seen = new Map<bigint, number>();
      const until = Date.now() + 30_000;
      let reads = 0;
      while (running && Date.now() < until) {
        for (let i = 0; i < 10_000; i++) {
          const x = v.load();
          seen.set(x, (seen.get(x) ?? 0) + 1);
        }
        reads += 10_000;
        await new Promise((resolve) => setImmediate(resolve));
      }
      const stores = Number(expectOk(await child, 'flipper').stdout.trim());
      expect(stores).toBeGreaterThan(0);
      expect(reads).toBeGreaterThan(0);
      expect([...seen.keys()].sort()).toEqual([b, a].sort());
    } finally {
      v.close();
    }
  });

  it('4 processes x 20000 rounds of SharedArray(\'h\').add on 4 elements and Value(\'q\').add(1n) are exact', async () => {
    const n = name('arr');
    track(`${n}-q`);
    track(`${n}-go`);
    const arr = new SharedArray('h', 4, { name: n, lock: false });
    const q = new Value('q', 0n, { name: `${n}-q`, lock: false });
    const go = new Value('i', 0, { name: `${n}-go`, lock: false });
    try {
      const runs = await Promise.all([0, 1, 2, 3].map(() => runNode('shm/atomics.mjs', ['add-array', n, '20000'])));
      runs.forEach((r, i) => expectOk(r, `adder ${i}`));
      expect(go.load()).toBe(4);
      // 80,000 adds wrap a 16-bit element: 80000 - 65536.
      expect([...arr]).toEqual([14464, 14464, 14464, 14464]);
      expect(q.load()).toBe(80000n);
    } finally {
      for (const x of [arr, q, go]) x.close();
    }
  });
});

describe('atomics in one process', () => {
  it('return the previous value and wrap at the type width, as the hardware does', () => {
    const n = name('ops');
    const v = new Value('B', 250, { name: n, lock: false });
    try {
      expect(v.add(10)).toBe(250);
      expect(v.value).toBe(4);
      expect(v.sub(5)).toBe(4);
      expect(v.value).toBe(255);
      expect(v.and(0x0f)).toBe(255);
      expect(v.or(0x30)).toBe(0x0f);
      expect(v.xor(0xff)).toBe(0x3f);
      expect(v.exchange(7)).toBe(0xc0);
      expect(v.compareExchange(6, 9)).toBe(7);
      expect(v.value).toBe(7);
      expect(v.compareExchange(7, 9)).toBe(7);
      expect(v.load()).toBe(9);
      expect(v.store(3)).toBe(3);
      expect(v.value).toBe(3);
    } finally {
      v.close();
    }
  });

  it('64-bit unsigned elements take and give bigint and wrap at 2^64', () => {
    const n = name('u64');
    const arr = new SharedArray('Q', [2n ** 64n - 1n, 5n], { name: n, lock: false });
    try {
      expect(arr.add(0, 2n)).toBe(2n ** 64n - 1n);
      expect(arr.load(0)).toBe(1n);
      expect(arr.compareExchange(1, 5n, 6n)).toBe(5n);
      expect(arr.get(1)).toBe(6n);
      expect(() => arr.add(0, 1 as never)).toThrow(TypeError);
      expect(() => arr.add(2, 1n)).toThrow(RangeError);
    } finally {
      arr.close();
    }
  });

  it('refuse writes on a read-only mapping (EACCES) but allow atomic loads', () => {
    const n = name('ro');
    const w = new Value('i', 41, { name: n, lock: false });
    const r = new Value('i', 0, { name: n, readOnly: true, lock: false });
    try {
      expect(r.load()).toBe(41);
      for (const op of [() => r.add(1), () => r.store(1), () => r.compareExchange(41, 1), () => r.exchange(1)]) {
        expect(op).toThrow(IPCError);
        try {
          op();
        } catch (e) {
          expect((e as IPCError).code).toBe('EACCES');
        }
      }
      w.add(1);
      expect(r.load()).toBe(42);
    } finally {
      r.close();
      w.close();
    }
  });

  it('refuse atomics on float typecodes with ERR_IPC_NOT_INTEGER, and every op after close with EBADF', () => {
    const n = name('f');
    const d = new Value('d', 1.5, { name: n, lock: false });
    expect(() => d.add(1)).toThrow(expect.objectContaining({ code: 'ERR_IPC_NOT_INTEGER' }));
    expect(() => d.load()).toThrow(expect.objectContaining({ code: 'ERR_IPC_NOT_INTEGER' }));
    d.close();
    const m = name('closed');
    const v = new Value('i', 1, { name: m, lock: false });
    v.close();
    for (const op of [() => v.add(1), () => v.load(), () => v.store(1), () => v.compareExchange(1, 2)]) {
      expect(op).toThrow(expect.objectContaining({ code: 'EBADF' }));
    }
  });
});
