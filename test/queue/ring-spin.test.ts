// The shm ring's fast paths: a get that finds the ring empty spins on the
// event loop's thread watching the header words and takes an item put by
// another process meanwhile itself (no waiter); its timeout, abort and FIFO
// around the spin; several getters in other processes; the json codec's
// long strings, quoted and cut out natively; the raw codec's one-copy gets.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Queue } from '../../lib/index.js';
import { expectOk, ourShmEntries, queueExists, runNode, runPython, uniqueName } from '../helpers/index.js';

const made: string[] = [];
const opened: Queue<any>[] = [];

function fresh<T = unknown>(options: ConstructorParameters<typeof Queue<T>>[1] = {}, tag = 'rs'): Queue<T> {
  const name = uniqueName(tag);
  made.push(name);
  const q = new Queue<T>(name, { transport: 'shm', ...options } as ConstructorParameters<typeof Queue<T>>[1]);
  opened.push(q);
  return q;
}

afterEach(() => {
  for (const q of opened.splice(0)) q.close();
  for (const n of made.splice(0)) {
    try {
      Queue.unlink(n);
    } catch {
      // already gone
    }
    expect(queueExists(n)).toBe(false);
  }
  expect(ourShmEntries()).toEqual([]);
});

/** Runs ring-spin.mjs MODE with a spin of spinMs (POSIX_IPC_RING_SPIN_NS). */
async function spinCase(mode: string, spinMs: number): Promise<Record<string, any>> {
  const name = uniqueName('rsp');
  made.push(name);
  const r = expectOk(
    await runNode('queue/ring-spin.mjs', [mode, name], {
      env: { ...process.env, POSIX_IPC_RING_SPIN_NS: String(spinMs * 1e6) },
      timeoutMs: 30_000,
    }),
  );
  return JSON.parse(r.stdout) as Record<string, any>;
}

describe('shm: the spin of a get', () => {
  it('an item another process puts during the spin is taken by the spin itself: the get() call returns it settled', async () => {
    // A 3 s spin; the child puts about 100 ms (plus its start) after: the
    // call runs until the item is there, not for the whole spin, and what it
    // returns is already settled (no wait behind it).
    const r = await spinCase('hit', 3000);
    expect(r.value).toBe('late');
    expect(r.syncMs).toBeGreaterThan(50);
    expect(r.syncMs).toBeLessThan(2500);
    expect(r.totalMs - r.syncMs).toBeLessThan(50);
  }, 40_000);

  it('a timeout shorter than the spin bounds it, and the get rejects Empty naming the timeout given', async () => {
    const r = await spinCase('timeout', 3000);
    expect(r.name).toBe('Empty');
    expect(r.message).toMatch(/within 200 ms/);
    expect(r.syncMs).toBeGreaterThan(150);
    expect(r.syncMs).toBeLessThan(1000);
    expect(r.totalMs).toBeLessThan(1500);
  }, 40_000);

  it('an abort after the spin (while waiting) rejects AbortError and takes nothing; an aborted signal rejects without spinning', async () => {
    const r = await spinCase('abort', 100);
    expect(r.name).toBe('AbortError');
    expect(r.syncMs).toBeGreaterThan(80);
    expect(r.totalMs).toBeGreaterThan(250);
    expect(r.after).toBe('after');
    expect(r.size).toBe(0);
    const a = await spinCase('aborted', 3000);
    expect(a.name).toBe('AbortError');
    expect(a.syncMs).toBeLessThan(100);
  }, 40_000);

  it('FIFO around the spin: the first get spins, the later ones queue behind it, and items go in order of the calls', async () => {
    const r = await spinCase('fifo', 50);
    expect(r.values).toEqual(['a', 'b', ['c', 'd'], 'e']);
    expect(r.size).toBe(0);
  }, 40_000);

  it('FIFO in one process with the default spin: waiting gets and getMany are served in the order they came', async () => {
    const q = fresh<number>();
    const w = new Queue<number>(q.name, { create: false });
    opened.push(w);
    const waits = [q.get(), q.getMany(3), q.get({ timeout: 5000 }), q.get()];
    w.putMany([1, 2, 3, 4, 5, 6]);
    expect(await Promise.all(waits)).toEqual([1, [2, 3, 4], 5, 6]);
  });

  it('three getters waiting in other processes: three items put one at a time go once each, one to each', async () => {
    const q = fresh<Buffer>({ codec: 'raw' });
    const getters = [0, 1, 2].map(() => runNode('queue/get-one.mjs', [q.name, '20000'], { timeoutMs: 30_000 }));
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 3; i++) {
      q.putNowait(Buffer.from(String(100 + i)));
      await new Promise((r) => setTimeout(r, 100));
    }
    const got = (await Promise.all(getters)).map((r) => JSON.parse(expectOk(r).stdout) as { ok: boolean; text: string });
    expect(got.every((g) => g.ok)).toBe(true);
    expect(got.map((g) => Number(g.text)).sort()).toEqual([100, 101, 102]);
    expect(q.qsize()).toBe(0);
  }, 40_000);
});

/** A deterministic pseudo-random source (the items must be the same on every run). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('shm: json items with long strings', () => {
  const ALPHABET = ['a', 'é', '€', '😀', '"', '\\', '\n', '\t', '\u0001', '\u001f', '\u007f', '/', '\u2028', ' ', 'x'];

  it('long strings of every kind round-trip exactly, and the ring holds the bytes JSON.stringify would write', async () => {
    const q = fresh<unknown>();
    const raw = new Queue<Buffer>(q.name, { create: false, codec: 'raw' });
    opened.push(raw);
    const rnd = prng(7);
    const str = (len: number, mix: number) => {
      let s = '';
      for (let i = 0; i < len; i++) s += rnd() < mix ? ALPHABET[Math.floor(rnd() * ALPHABET.length)]! : 'x';
      return s;
    };
    let n = 0;
    for (let round = 0; round < 60; round++) {
      const mix = [0, 0.001, 0.05, 0.5][round % 4]!;
      const long = () => str(2048 + Math.floor(rnd() * 30_000), mix);
      const s = long();
      const items: unknown[] = [
        long(),
        { id: round, s: long(), t: [long(), 1, null, { u: long() }], k: 'short' },
        { [long()]: long(), a: [long(), long()] },
        { toJSON: () => s },
        { d: new Date(0), s: long(), f: () => 1, u: undefined },
        { a: '\u0000posix-ipc long string\u0000', b: long() },
      ];
      for (const item of items) {
        const want = JSON.stringify(item);
        // The first long item turns the long-string path on; every item goes twice.
        for (let k = 0; k < 2; k++) {
          await q.put(item as never);
          expect(raw.getNowait().toString('utf8')).toBe(want);
          await q.put(item as never);
          expect(await q.get()).toEqual(JSON.parse(want));
          n++;
        }
      }
    }
    expect(n).toBe(720);
  }, 60_000);

  it('items whose long strings are a small part of the text (many small values) round-trip exactly too', async () => {
    const q = fresh<unknown>();
    const raw = new Queue<Buffer>(q.name, { create: false, codec: 'raw' });
    opened.push(raw);
    const item = { n: Array.from({ length: 20_000 }, (_, i) => i % 97), s: 'k'.repeat(5000), t: `${'h'.repeat(9000)}"` };
    const big = { s: 'b'.repeat(20_000) };
    for (const it of [big, item, big, item, item]) {
      await q.put(it);
      expect(raw.getNowait().toString('utf8')).toBe(JSON.stringify(it));
      await q.put(it);
      expect(await q.get()).toEqual(it);
    }
  });

  it('lone surrogates and U+FFFD in a long string are written as JSON.stringify writes them', async () => {
    const q = fresh<unknown>();
    const raw = new Queue<Buffer>(q.name, { create: false, codec: 'raw' });
    opened.push(raw);
    // Texts past LONG_TEXT (8192), so that the long-string path is on from the second put.
    const cases = [
      'x'.repeat(10_000) + '\ud800',
      `\udc00${'y'.repeat(10_000)}`,
      `${'z'.repeat(10_000)}\ufffd`,
      `${'w'.repeat(5000)}😀${'w'.repeat(5000)}`,
    ];
    for (let k = 0; k < 2; k++) {
      for (const s of cases) {
        await q.put({ s });
        expect(raw.getNowait().toString('utf8')).toBe(JSON.stringify({ s }));
        await q.put({ s });
        expect(await q.get()).toEqual({ s });
      }
    }
  });

  it('putMany and putSync write items with long strings as JSON.stringify does, and getMany reads them back', async () => {
    const q = fresh<unknown>();
    const raw = new Queue<Buffer>(q.name, { create: false, codec: 'raw' });
    opened.push(raw);
    const items = [0, 1, 2, 3].map((i) => ({ i, s: `${'m'.repeat(9000 + i)}\n"${i}` }));
    for (let k = 0; k < 2; k++) {
      await q.putMany(items);
      for (const it of items) expect(raw.getNowait().toString('utf8')).toBe(JSON.stringify(it));
      q.putSync(items[1]);
      expect(raw.getNowait().toString('utf8')).toBe(JSON.stringify(items[1]));
      await q.putMany(items);
      expect(await q.getMany(10)).toEqual(items);
    }
  });

  it('an item with long strings that finds the ring full waits and goes in whole, in order', async () => {
    const q = fresh<{ i: number; s: string }>({ capacity: 64 * 1024 });
    const w = new Queue<{ i: number; s: string }>(q.name, { create: false });
    opened.push(w);
    const s = `${'q'.repeat(20_000)}"\n`;
    const puts: Promise<void>[] = [];
    for (let i = 0; i < 8; i++) puts.push(q.put({ i, s }, { timeout: 10_000 }));
    for (let i = 0; i < 8; i++) expect(await w.get({ timeout: 10_000 })).toEqual({ i, s });
    await Promise.all(puts);
    expect(() => q.putNowait({ i: 9, s: 'p'.repeat(70_000) })).toThrow(expect.objectContaining({ code: 'EMSGSIZE' }));
  });

  it('python reads what the long-string path put (the same JSON text) and its long strings come back', async () => {
    const q = fresh<string>({ capacity: 4 * 1024 * 1024 });
    const big = `${'0123456789'.repeat(1 << 16)}\t"é`;
    await q.put(big); // turns the long-string path on
    expect(await q.get()).toBe(big);
    await q.put(big);
    const text = JSON.stringify(big);
    const r = JSON.parse(expectOk(await runPython('python/ring_peer.py', ['get-big', q.name])).stdout);
    expect(r).toEqual({ length: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') });
    expectOk(await runPython('python/ring_peer.py', ['put-big', q.name, String(300_000)]));
    expect(await q.get({ timeout: 5000 })).toBe('0123456789'.repeat(30_000));
  }, 60_000);
});

describe('shm: raw items', () => {
  it('come out in Buffers of their own (a later get does not change an earlier one), from getMany too', async () => {
    const q = fresh<Buffer>({ codec: 'raw' });
    const items = [Buffer.alloc(0), Buffer.from('a'), Buffer.alloc(70_000, 7), Buffer.from('tail')];
    for (const b of items) q.putNowait(b);
    const first = await q.get();
    const second = q.getNowait();
    const rest = await q.getMany(10);
    expect([first, second, ...rest]).toEqual(items);
    q.putNowait(Buffer.from('zz'));
    expect(second.toString()).toBe('a');
    expect(q.getNowait().toString()).toBe('zz');
  });
});
