// Event across processes: CPython's _TestEvent, every waiter in every process
// woken by one set(), sequence wrap-around, abort/close, worker threads, and a
// setter SIGKILLed at any instant leaving a working Event.
import { openSync, statSync, writeSync, closeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Event, IPCError } from '../../lib/index.js';
import { namesRemovedAfterEach, sleep } from '../helpers/index.js';
import { child } from './children.js';

const { name } = namesRemovedAfterEach('ev', (n) => Event.unlink(n));
const path = (n: string): string => `/dev/shm/pipc.${n}.event`;

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, performance.now() - t0];
}

describe('Event (CPython _TestEvent)', () => {
  it('test_event: clear/wait timeouts, set, a set from another process wakes wait()', async () => {
    const n = name();
    const event = new Event(n);
    try {
      event.clear();
      expect(event.isSet()).toBe(false);
      let [r, t] = await timed(() => event.wait({ timeout: 0 }));
      expect(r).toBe(false);
      expect(t).toBeLessThan(50);
      [r, t] = await timed(() => event.wait({ timeout: 200 }));
      expect(r).toBe(false);
      expect(t).toBeGreaterThanOrEqual(195);
      expect(t).toBeLessThan(1000);
      event.set();
      expect(event.isSet()).toBe(true);
      [r, t] = await timed(() => event.wait());
      expect(r).toBe(true);
      expect(t).toBeLessThan(50);
      [r, t] = await timed(() => event.wait({ timeout: 200 }));
      expect(r).toBe(true);
      expect(t).toBeLessThan(50);
      expect(event.waitSync({ timeout: 100 })).toBe(true);
      event.clear();
      expect(event.isSet()).toBe(false);
      expect(event.waitSync({ timeout: 100 })).toBe(false);
      const setter = child('event-set-after', n, 300);
      [r, t] = await timed(() => event.wait());
      expect(r).toBe(true);
      expect(t).toBeGreaterThan(200);
      expect((await setter.exited).code).toBe(0);
      expect(event.isSet()).toBe(true);
    } finally {
      event.close();
    }
  });

  it('one set() wakes every waiter in 4 processes and in this one; the new file is mode 0600', async () => {
    const n = name();
    const event = new Event(n);
    expect(statSync(path(n)).mode & 0o777).toBe(0o600);
    const kids = Array.from({ length: 4 }, () => child('event-wait', n, 10_000));
    try {
      for (const k of kids) expect(await k.line()).toBe('ready');
      const mine = [event.wait(), event.wait({ timeout: 10_000 })];
      await sleep(100);
      event.set();
      expect(await Promise.all(mine)).toEqual([true, true]);
      for (const k of kids) {
        const e = await k.exited;
        expect(e.code).toBe(0);
        expect(e.lines[1]).toMatch(/^true \d+$/);
      }
    } finally {
      await Promise.all(kids.map((k) => k.kill()));
      event.close();
    }
  });

  it('waitSync across processes, and a child whose wait times out says false', async () => {
    const n = name();
    const event = new Event(n);
    try {
      const waiter = child('event-wait', n, 300);
      expect(await waiter.line()).toBe('ready');
      const e = await waiter.exited;
      expect(e.lines[1]).toMatch(/^false \d+$/);
      expect(Number(e.lines[1]!.split(' ')[1])).toBeGreaterThanOrEqual(290);
      const setter = child('event-set-after', n, 200);
      const t0 = performance.now();
      expect(event.waitSync({ timeout: 5000 })).toBe(true);
      expect(performance.now() - t0).toBeLessThan(4000);
      await setter.exited;
    } finally {
      event.close();
    }
  });

  it('a waiter wakes across the 32-bit sequence wrap-around (compares with != only)', async () => {
    const n = name();
    const event = new Event(n);
    try {
      // seq (header word 7, byte 28) = 0xffffffff: the next set() wraps it to 0.
      const fd = openSync(path(n), 'r+');
      writeSync(fd, Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4, 28);
      closeSync(fd);
      const w = event.wait({ timeout: 5000 });
      await sleep(50);
      const setter = child('event-set-after', n, 0);
      expect(await w).toBe(true);
      await setter.exited;
    } finally {
      event.close();
    }
  });

  it('a wait that was set and cleared again before the waiter looked still resolves true', async () => {
    const n = name();
    const a = new Event(n);
    const b = new Event(n);
    try {
      const w = a.wait({ timeout: 2000 });
      b.set();
      b.clear();
      expect(await w).toBe(true);
    } finally {
      a.close();
      b.close();
    }
  });

  it('abort rejects with AbortError, close rejects pending waits with EBADF, use after close throws', async () => {
    const n = name();
    const event = new Event(n);
    const ac = new AbortController();
    const aborted = event.wait({ signal: ac.signal });
    const pending = event.wait();
    ac.abort();
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    await expect(event.wait({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    event.close();
    await expect(pending).rejects.toMatchObject({ code: 'EBADF' });
    expect(() => event.set()).toThrow(IPCError);
    expect(() => event.isSet()).toThrow(/closed/);
    event.close();
    await expect(event.wait()).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('bad arguments: TypeError / RangeError; create: false on a missing name: ENOENT', () => {
    expect(() => new Event(42 as unknown as string)).toThrow(TypeError);
    expect(() => new Event('a/b')).toThrow(TypeError);
    expect(() => new Event('x'.repeat(250))).toThrow(RangeError);
    expect(() => new Event(name(), { create: false })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => new Event(name(), { bogus: 1 } as never)).toThrow(TypeError);
    const n = name();
    const e = new Event(n);
    expect(() => e.waitSync({ timeout: -1 })).toThrow(RangeError);
    expect(() => new Event(n, { exclusive: true })).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    e.close();
  });

  it('works in worker_threads: a worker waits, this thread sets; the worker ending gives its slot up', async () => {
    const n = name();
    const event = new Event(n);
    const url = new URL('../../dist/index.js', import.meta.url).href;
    const w = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       import(workerData.url).then(async ({ Event }) => {
         const e = new Event(workerData.n, { create: false });
         parentPort.postMessage('ready');
         parentPort.postMessage(await e.wait({ timeout: 10000 }));
       });`,
      { eval: true, workerData: { n, url } },
    );
    try {
      const msgs: unknown[] = [];
      const got = new Promise<void>((resolve) => w.on('message', (m) => (msgs.push(m), msgs.length === 2 && resolve())));
      while (msgs.length === 0) await sleep(10);
      event.set();
      await got;
      expect(msgs).toEqual(['ready', true]);
    } finally {
      await w.terminate();
      event.close();
    }
  });

  it('chaos: setters SIGKILLed at random instants leave a working Event (10 kills)', async () => {
    const n = name();
    const event = new Event(n);
    try {
      for (let i = 0; i < 10; i++) {
        const k = child('event-chaos', n);
        expect(await k.line()).toBe('ready');
        await sleep(5 + Math.random() * 30);
        await k.kill();
        // Whatever instant it died at, the Event still clears, sets and wakes.
        event.clear();
        const w = event.wait({ timeout: 2000 });
        setTimeout(() => {
          using e = new Event(n);
          e.set();
        }, 10);
        expect(await w).toBe(true);
      }
    } finally {
      event.close();
    }
  });
});
