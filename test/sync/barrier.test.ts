// Barrier across processes: CPython's _TestBarrier (index uniqueness, action
// once per round, abort, reset, broken, timeouts), 8 processes x 1000 rounds
// with no lost round, and a party SIGKILLed mid-wait breaking the barrier for
// everyone within 1 s.
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Barrier, BrokenBarrierError } from '../../lib/index.js';
import { namesRemovedAfterEach, sleep } from '../helpers/index.js';
import { child, type Child } from './children.js';

const { name } = namesRemovedAfterEach('ba', (n) => Barrier.unlink(n));

/** Parses "done i,i,i actions" of barrier-rounds. */
function rounds(line: string): { idx: number[]; actions: number } {
  const [, list, actions] = line.split(' ');
  return { idx: list!.split(',').map(Number), actions: Number(actions) };
}

async function waiters(n: string, count: number, timeout = -1): Promise<Child[]> {
  const kids = Array.from({ length: count }, () => child('barrier-wait', n, timeout));
  for (const k of kids) expect(await k.line()).toBe('ready');
  return kids;
}

/** Waits until `b.nWaiting` is `n` (the children have arrived). */
async function arrived(b: Barrier, n: number): Promise<void> {
  for (let i = 0; i < 500 && b.nWaiting < n; i++) await sleep(10);
  expect(b.nWaiting).toBe(n);
}

describe('Barrier (CPython _TestBarrier)', () => {
  it('8 processes x 1000 rounds: every round has indices 0..7 once each, the action runs once per round', async () => {
    const n = name();
    new Barrier(n, { parties: 8 }).close();
    const kids = Array.from({ length: 8 }, () => child('barrier-rounds', n, 8, 1000, 'async'));
    try {
      const done = await Promise.all(kids.map((k) => k.exited));
      const res = done.map((d) => {
        expect(d.code, d.stderr).toBe(0);
        return rounds(d.lines[1]!);
      });
      for (let r = 0; r < 1000; r++) {
        const seen = res.map((x) => x.idx[r]!).sort((a, b) => a - b);
        expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      }
      expect(res.reduce((s, x) => s + x.actions, 0)).toBe(1000);
    } finally {
      await Promise.all(kids.map((k) => k.kill()));
    }
  });

  it('waitSync: 4 processes x 200 rounds, unique indices, one action per round', async () => {
    const n = name();
    new Barrier(n, { parties: 4 }).close();
    const kids = Array.from({ length: 4 }, () => child('barrier-rounds', n, 4, 200, 'sync'));
    const res = (await Promise.all(kids.map((k) => k.exited))).map((d) => rounds(d.lines[1]!));
    for (let r = 0; r < 200; r++) expect(res.map((x) => x.idx[r]!).sort()).toEqual([0, 1, 2, 3]);
    expect(res.reduce((s, x) => s + x.actions, 0)).toBe(200);
  });

  it('test_single_thread: a Barrier of 1 returns 0 at once, every time', async () => {
    const b = new Barrier(name(), { parties: 1 });
    expect(await b.wait()).toBe(0);
    expect(b.waitSync()).toBe(0);
    expect(await b.wait()).toBe(0);
    b.close();
  });

  it('test_abort: abort() breaks the waiting parties of other processes; later waits throw; reset() makes it usable', async () => {
    const n = name();
    const b = new Barrier(n, { parties: 4 });
    try {
      const kids = await waiters(n, 3);
      await arrived(b, 3);
      b.abort();
      for (const k of kids) expect((await k.line()).split(' ')[0]).toBe('broken');
      expect(b.broken).toBe(true);
      expect(b.nWaiting).toBe(0);
      await expect(b.wait()).rejects.toBeInstanceOf(BrokenBarrierError);
      expect(() => b.waitSync()).toThrow(BrokenBarrierError);
      b.reset();
      expect(b.broken).toBe(false);
      const again = await waiters(n, 3);
      const mine = await b.wait({ timeout: 10_000 });
      const idx = [mine, ...(await Promise.all(again.map((k) => k.line()))).map((l) => Number(l.split(' ')[1]))];
      expect(idx.sort()).toEqual([0, 1, 2, 3]);
    } finally {
      b.close();
    }
  });

  it('test_reset: reset() while parties wait rejects them with BrokenBarrierError and leaves it unbroken', async () => {
    const n = name();
    const b = new Barrier(n, { parties: 3 });
    try {
      const kids = await waiters(n, 2);
      await arrived(b, 2);
      b.reset();
      for (const k of kids) expect((await k.line()).split(' ')[0]).toBe('broken');
      expect(b.broken).toBe(false);
      expect(b.nWaiting).toBe(0);
      const again = await waiters(n, 2);
      const mine = await b.wait({ timeout: 10_000 });
      const idx = [mine, ...(await Promise.all(again.map((k) => k.line()))).map((l) => Number(l.split(' ')[1]))];
      expect(idx.sort()).toEqual([0, 1, 2]);
    } finally {
      b.close();
    }
  });

  it('test_timeout: a party whose wait times out breaks the barrier for the others too', async () => {
    const n = name();
    const b = new Barrier(n, { parties: 3 });
    try {
      const [patient] = await waiters(n, 1);
      const [hasty] = await waiters(n, 1, 300);
      const h = (await hasty!.line()).split(' ');
      expect(h[0]).toBe('broken');
      expect(Number(h[1])).toBeGreaterThanOrEqual(290);
      expect((await patient!.line()).split(' ')[0]).toBe('broken');
      expect(b.broken).toBe(true);
    } finally {
      b.close();
    }
  });

  it('test_default_timeout: the timeout option is every wait\'s default', async () => {
    const b = new Barrier(name(), { parties: 2, timeout: 200 });
    const t0 = performance.now();
    await expect(b.wait()).rejects.toBeInstanceOf(BrokenBarrierError);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
    expect(b.broken).toBe(true);
    b.reset();
    expect(() => b.waitSync({ timeout: 100 })).toThrow(BrokenBarrierError);
    b.close();
  });

  it('an action that throws: the releasing party gets its error, the others BrokenBarrierError', async () => {
    const n = name();
    const b = new Barrier(n, {
      parties: 2,
      action: () => {
        throw new Error('action failed');
      },
    });
    try {
      const [k] = await waiters(n, 1);
      await arrived(b, 1);
      await expect(b.wait()).rejects.toThrow('action failed');
      expect((await k!.line()).split(' ')[0]).toBe('broken');
      expect(b.broken).toBe(true);
    } finally {
      b.close();
    }
  });

  it('a party SIGKILLed mid-wait breaks the barrier for the others within 1 s', async () => {
    const n = name();
    const b = new Barrier(n, { parties: 4 });
    try {
      const [victim, other] = await waiters(n, 2);
      await arrived(b, 2);
      const mine = b.wait();
      await sleep(50);
      const t0 = performance.now();
      await victim!.kill();
      await expect(mine).rejects.toBeInstanceOf(BrokenBarrierError);
      expect(performance.now() - t0).toBeLessThan(1000);
      expect((await other!.line()).split(' ')[0]).toBe('broken');
      expect(performance.now() - t0).toBeLessThan(1500);
      expect(b.broken).toBe(true);
      b.reset();
      expect(b.nWaiting).toBe(0);
    } finally {
      b.close();
    }
  });

  it('abort signal: the wait rejects with AbortError and breaks the barrier; close rejects with EBADF', async () => {
    const n = name();
    const b = new Barrier(n, { parties: 2 });
    const ac = new AbortController();
    const w = b.wait({ signal: ac.signal });
    await expect(b.wait()).rejects.toMatchObject({ code: 'EBUSY' });
    ac.abort();
    await expect(w).rejects.toMatchObject({ name: 'AbortError' });
    expect(b.broken).toBe(true);
    b.reset();
    const pending = b.wait();
    b.close();
    await expect(pending).rejects.toMatchObject({ code: 'EBADF' });
    expect(() => b.nWaiting).toThrow(/closed/);
  });

  it('options: parties required to create, checked against an existing one, in range', () => {
    const n = name();
    expect(() => new Barrier(n)).toThrow(TypeError);
    expect(() => new Barrier(n, { parties: 0 })).toThrow(RangeError);
    expect(() => new Barrier(n, { parties: 257 })).toThrow(RangeError);
    expect(() => new Barrier(n, { parties: 2, action: 5 as never })).toThrow(TypeError);
    const b = new Barrier(n, { parties: 3 });
    expect(() => new Barrier(n, { parties: 2 })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    const c = new Barrier(n);
    expect(c.parties).toBe(3);
    c.close();
    b.close();
  });

  it('close() gives the slot up at once (its OFD lock), although the mapping lives until collected', () => {
    const n = name();
    const path = `/dev/shm/pipc.${n}.barrier`;
    const first = (process.pid % 256) + 1;
    const a = new Barrier(n, { parties: 2 });
    expect(readFileSync(path).readInt32LE(256 + 64 * (first - 1))).toBe(process.pid);
    a.close();
    const b = new Barrier(n, { parties: 2 });
    const second = (first % 256) + 1;
    // b claims the freed first slot again, not the next one
    const buf = readFileSync(path);
    expect(buf.readInt32LE(256 + 64 * (second - 1))).toBe(0);
    b.close();
  });

  it('an opener whose slot number a dead holder left in the internal lock takes it over (breaks, unlocks) instead of spinning forever', () => {
    const n = name();
    const path = `/dev/shm/pipc.${n}.barrier`;
    const a = new Barrier(n, { parties: 2 }); // claims slot pid % 256 + 1
    const next = (((process.pid % 256) + 1) % 256) + 1; // the slot the next handle claims
    // As if that slot's previous owner had died holding the internal lock (header word 6).
    const fd = openSync(path, 'r+');
    const w = Buffer.alloc(4);
    w.writeInt32LE(next);
    writeSync(fd, w, 0, 4, 24);
    closeSync(fd);
    const b = new Barrier(n, { parties: 2 });
    expect(readFileSync(path).readInt32LE(256 + 64 * (next - 1))).toBe(process.pid); // b has that slot
    expect(readFileSync(path).readInt32LE(24)).toBe(0);
    expect(b.broken).toBe(true); // its holder may have half-updated the round
    a.reset(); // would spin forever on the lock word without the take-over
    expect(b.broken).toBe(false);
    b.close();
    a.close();
  });

  it('worker_threads: two workers and this thread are the 3 parties of a round', async () => {
    const n = name();
    const b = new Barrier(n, { parties: 3 });
    const url = new URL('../../dist/index.js', import.meta.url).href;
    const code = `const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.url).then(async ({ Barrier }) => {
        const b = new Barrier(workerData.n);
        parentPort.postMessage(await b.wait({ timeout: 10000 }));
        b.close();
      });`;
    const ws = [0, 1].map(() => new Worker(code, { eval: true, workerData: { n, url } }));
    try {
      const got = ws.map((w) => new Promise<number>((r) => w.once('message', r)));
      const mine = await b.wait({ timeout: 10_000 });
      expect([mine, ...(await Promise.all(got))].sort()).toEqual([0, 1, 2]);
    } finally {
      await Promise.all(ws.map((w) => w.terminate()));
      b.close();
    }
  });
});
