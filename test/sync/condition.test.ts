// Condition across processes: CPython's _TestCondition (notify wakes exactly
// one, notify_all, notify(n), wait timeouts, wait_for), and waiters SIGKILLed
// inside wait() neither eating a notification nor hanging notifyAll.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Condition, Lock, RLock } from '../../lib/index.js';
import { namesRemovedAfterEach, sleep } from '../helpers/index.js';
import { child, type Child } from './children.js';

const { name } = namesRemovedAfterEach('co', (n) => Condition.unlink(n), (n) => RLock.unlink(n), (n) => Lock.unlink(n));

/** Starts `count` cond-wait children one after the other and returns once all are inside wait(). */
async function waiters(c: Condition, count: number, timeout = -1, how = 'async'): Promise<Child[]> {
  const kids: Child[] = [];
  for (let i = 0; i < count; i++) {
    const k = child('cond-wait', c.name.slice(1), timeout, how);
    expect(await k.line()).toBe('ready');
    kids.push(k);
  }
  // Each child printed 'ready' holding the lock: holding it ourselves means the last one is waiting.
  await c.acquire();
  c.release();
  return kids;
}

const woken = (kids: Child[]): number => kids.filter((k) => k.seen().length > 1).length;

async function settle(kids: Child[], n: number): Promise<void> {
  for (let i = 0; i < 300 && woken(kids) < n; i++) await sleep(10);
  await sleep(200); // and no more than n
}

describe('Condition (CPython _TestCondition)', () => {
  it('test_notify: notify() wakes exactly one waiter (oldest first), which holds the lock again', async () => {
    const c = new Condition(name());
    const kids = await waiters(c, 2);
    try {
      expect(c.nWaiting).toBe(2);
      await c.acquire();
      expect(c.notify()).toBe(1);
      c.release();
      await settle(kids, 1);
      expect(woken(kids)).toBe(1);
      expect(kids[0]!.seen()[1]).toMatch(/^woke true true \d+$/);
      await c.acquire();
      expect(c.notify()).toBe(1);
      c.release();
      await settle(kids, 2);
      expect(woken(kids)).toBe(2);
      for (const k of kids) expect((await k.exited).code).toBe(0);
      await c.acquire();
      expect(c.notify()).toBe(0);
      c.release();
    } finally {
      await Promise.all(kids.map((k) => k.kill()));
      c.close();
    }
  });

  it('test_notify_all: 3 waiters with a timeout time out (false), notifyAll wakes the other 3 (true)', async () => {
    const c = new Condition(name());
    const timed = await waiters(c, 3, 300);
    const patient = await waiters(c, 3);
    try {
      for (const k of timed) expect((await k.line())).toMatch(/^woke false true \d+$/);
      expect(woken(patient)).toBe(0);
      await c.acquire();
      expect(c.notifyAll()).toBe(3);
      c.release();
      for (const k of patient) expect(await k.line()).toMatch(/^woke true true/);
    } finally {
      await Promise.all([...timed, ...patient].map((k) => k.kill()));
      c.close();
    }
  });

  it('test_notify_n: notify(2) wakes 2 of 5, notify(4) the other 3', async () => {
    const c = new Condition(name());
    const kids = await waiters(c, 5);
    try {
      await c.acquire();
      expect(c.notify(2)).toBe(2);
      c.release();
      await settle(kids, 2);
      expect(woken(kids)).toBe(2);
      await c.acquire();
      expect(c.notify(4)).toBe(3);
      c.release();
      await settle(kids, 5);
      expect(woken(kids)).toBe(5);
    } finally {
      await Promise.all(kids.map((k) => k.kill()));
      c.close();
    }
  });

  it('test_timeout / wait result: wait() is false after its timeout, true when notified (waitSync too)', async () => {
    const c = new Condition(name());
    try {
      await c.acquire();
      let t0 = performance.now();
      expect(await c.wait({ timeout: 200 })).toBe(false);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
      expect(c.lock instanceof RLock && c.lock.isOwned()).toBe(true);
      t0 = performance.now();
      expect(c.waitSync({ timeout: 150 })).toBe(false);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
      c.release();
      const [k] = await waiters(c, 1, -1, 'sync');
      await c.acquire();
      expect(c.notify()).toBe(1);
      c.release();
      expect(await k!.line()).toMatch(/^woke true true/);
    } finally {
      c.close();
    }
  });

  it('test_waitfor: a waiter in another process waits for a state set step by step; test_waitfor_timeout', async () => {
    const c = new Condition(name());
    const dir = mkdtempSync(join(tmpdir(), 'pipc-cond-'));
    const file = join(dir, 'state');
    writeFileSync(file, '0');
    try {
      const k = child('cond-waitfor', c.name.slice(1), file, '4', -1);
      expect(await k.line()).toBe('ready');
      for (let i = 1; i <= 4; i++) {
        await sleep(30);
        await c.acquire();
        writeFileSync(file, String(i));
        c.notify();
        c.release();
      }
      expect(await k.line()).toMatch(/^true \d+$/);
      const t = child('cond-waitfor', c.name.slice(1), file, '99', 300);
      expect(await t.line()).toBe('ready');
      const [r, ms] = (await t.line()).split(' ');
      expect(r).toBe('false');
      expect(Number(ms)).toBeGreaterThanOrEqual(290);
      await c.acquire();
      expect(await c.waitFor(() => 0, { timeout: 100 })).toBe(0);
      expect(c.waitForSync(() => 'x')).toBe('x');
      c.release();
    } finally {
      c.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a waiter SIGKILLed inside wait(): notify() skips it (no lost notification), notifyAll() does not hang', async () => {
    const c = new Condition(name());
    const kids = await waiters(c, 4);
    try {
      // The oldest waiter dies: notify() must reach a live one.
      await kids[0]!.kill();
      await c.acquire();
      expect(c.nWaiting).toBe(3);
      expect(c.notify()).toBe(1);
      c.release();
      expect(await kids[1]!.line()).toMatch(/^woke true/);
      await kids[2]!.kill();
      const t0 = performance.now();
      await c.acquire();
      expect(c.notifyAll()).toBe(1);
      c.release();
      expect(await kids[3]!.line()).toMatch(/^woke true/);
      expect(performance.now() - t0).toBeLessThan(2000);
      expect(c.nWaiting).toBe(0);
    } finally {
      await Promise.all(kids.map((k) => k.kill()));
      c.close();
    }
  });

  it('a waiter SIGKILLed while holding the lock (re-acquired after notify): the RLock comes back', async () => {
    const n = name();
    const c = new Condition(n);
    try {
      const k = child('rlock-hold', n, 1);
      expect(await k.line()).toBe('held 1');
      expect(c.tryAcquire()).toBe(false);
      await k.kill();
      expect(await c.acquire({ timeout: 2000 })).toBe(true);
      c.release();
    } finally {
      c.close();
    }
  });

  it('lock held is required (EPERM); one wait per handle (EBUSY); abort and close; a Lock as the lock', async () => {
    const n = name();
    const c = new Condition(n);
    try {
      await expect(c.wait()).rejects.toMatchObject({ code: 'EPERM' });
      expect(() => c.notify()).toThrow(expect.objectContaining({ code: 'EPERM' }));
      expect(() => c.notify(-1)).toThrow(RangeError);
      await c.acquire();
      const ac = new AbortController();
      const w = c.wait({ signal: ac.signal });
      await c.acquire(); // the wait released it
      await expect(c.wait()).rejects.toMatchObject({ code: 'EBUSY' });
      c.release();
      ac.abort();
      await expect(w).rejects.toMatchObject({ name: 'AbortError' });
      expect((c.lock as RLock).isOwned()).toBe(true); // held again, as Python
      c.release();
      await c.acquire();
      const pending = c.wait();
      c.close();
      await expect(pending).rejects.toMatchObject({ code: 'EBADF' });
    } finally {
      c.close();
    }
    const lock = new Lock(`${n}-l`);
    const d = new Condition(`${n}-c`, { lock });
    try {
      await d.acquire();
      expect(await d.wait({ timeout: 50 })).toBe(false);
      expect(lock.locked()).toBe(true);
      d.release();
      expect(() => new Condition(n, { lock: {} as never })).toThrow(TypeError);
    } finally {
      d.close();
      lock.close();
      Condition.unlink(`${n}-c`);
      Lock.unlink(`${n}-l`);
    }
  });
});
