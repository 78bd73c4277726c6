// A unit the native waiter took for a wait that then left (aborted, timed out)
// goes back to the semaphore: never kept, never doubled. The late completion
// is forced: another handle posts, the test spins (synchronously, so no
// callback can run) until the engine's thread has taken the unit, and only
// then aborts. Written against the public API so it holds whichever layer
// (the JavaScript wait list or the native engine) gives the unit back.
import { describe, expect, it } from 'vitest';
import { AbortError, Semaphore } from '../../lib/index.js';
import { namesRemovedAfterEach, sleep } from '../helpers/index.js';

const { name } = namesRemovedAfterEach('giveback', (n) => Semaphore.unlink(n));

/** Spins until the semaphore's value is `value` (the engine thread took a posted unit); no callback runs meanwhile. */
function spinUntilValue(s: Semaphore, value: number, ms = 5000): void {
  const end = Date.now() + ms;
  while (s.value !== value) {
    if (Date.now() > end) throw new Error(`value stayed ${s.value}, expected ${value}`);
  }
}

/** Waits (letting callbacks run) until the value is `value`, or returns what it is after `ms`. */
async function settleValue(s: Semaphore, value: number, ms = 1000): Promise<number> {
  const end = Date.now() + ms;
  while (s.value !== value && Date.now() < end) await sleep(5);
  return s.value;
}

describe('a unit taken for a waiter that left', () => {
  it('an acquire aborted after the engine took its unit gives the unit back', async () => {
    const n = name();
    const s = new Semaphore(n, { initialValue: 0 });
    const poster = new Semaphore(n, { create: false });
    try {
      const ac = new AbortController();
      const pending = s.acquire({ signal: ac.signal });
      await sleep(20); // the engine's thread is in sem_clockwait
      poster.release();
      spinUntilValue(s, 0); // taken by the thread; its completion is queued, not run
      ac.abort();
      await expect(pending).rejects.toBeInstanceOf(AbortError);
      expect(await settleValue(s, 1)).toBe(1);
      expect(s.tryAcquire()).toBe(true);
      expect(s.value).toBe(0);
    } finally {
      poster.close();
      s.close();
    }
  });

  it('when one of two waiters aborts after the take, the other gets the unit and nothing is given back', async () => {
    const n = name();
    const s = new Semaphore(n, { initialValue: 0 });
    const poster = new Semaphore(n, { create: false });
    try {
      const ac = new AbortController();
      const first = s.acquire({ signal: ac.signal });
      const second = s.acquire({ timeout: 5000 });
      await sleep(20);
      poster.release();
      spinUntilValue(s, 0);
      ac.abort();
      await expect(first).rejects.toBeInstanceOf(AbortError);
      expect(await second).toBe(true);
      await sleep(50);
      expect(s.value).toBe(0);
    } finally {
      poster.close();
      s.close();
    }
  });

  it('a timeout that falls due after the take gives the unit back', async () => {
    const n = name();
    const s = new Semaphore(n, { initialValue: 0 });
    const poster = new Semaphore(n, { create: false });
    try {
      const pending = s.acquire({ timeout: 30 });
      await sleep(10);
      // From the check phase, the next loop iteration runs due timers before
      // polling for the engine's completion: the timeout settles first.
      await new Promise((resolve) => setImmediate(resolve));
      poster.release();
      spinUntilValue(s, 0);
      const busyUntil = Date.now() + 40; // the timer falls due while the completion waits
      while (Date.now() < busyUntil);
      expect(await pending).toBe(false);
      expect(await settleValue(s, 1)).toBe(1);
    } finally {
      poster.close();
      s.close();
    }
  });

  it('closing the handle after the take rejects the waiter and gives the unit back', async () => {
    const n = name();
    const s = new Semaphore(n, { initialValue: 0 });
    const other = new Semaphore(n, { create: false });
    try {
      const pending = s.acquire();
      await sleep(20);
      other.release();
      spinUntilValue(other, 0);
      s.close();
      await expect(pending).rejects.toMatchObject({ code: expect.any(String) });
      expect(await settleValue(other, 1)).toBe(1);
    } finally {
      s.close();
      other.close();
    }
  });
});
