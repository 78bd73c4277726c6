// Issue 16.6: a timeout of 2^31 ms or more used to fire after about 1 ms
// (Node clamps setTimeout). Every JavaScript-side wait now chains timers.
import { createServer } from 'node:net';
import { existsSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortError, Client, Listener, Pipe, Queue, Semaphore } from '../../lib/index.js';
import { MAX_TIMER_DELAY, WaitList, deadline, sleep as waitSleep } from '../../lib/core/waitlist.js';
import { cleanupAfterEach, sleep, uniqueName } from '../helpers/index.js';

const later = cleanupAfterEach();
const LONG = 2 ** 31;

/** Asserts `p` is still pending after 100 ms, then aborts it and expects AbortError. */
async function pendingThenAbort(start: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
  const ac = new AbortController();
  let settled: unknown = 'pending';
  const p = start(ac.signal).then(
    (v) => (settled = { value: v }),
    (e: unknown) => (settled = { error: e }),
  );
  await sleep(100);
  expect(settled).toBe('pending');
  ac.abort();
  await p;
  expect((settled as { error: unknown }).error).toBeInstanceOf(AbortError);
}

describe('timeouts of 2^31 ms and more are honoured', () => {
  it('Semaphore.acquire', async () => {
    const name = uniqueName('long');
    const sem = new Semaphore(name, { initialValue: 0 });
    later(() => {
      sem.close();
      Semaphore.unlink(name);
    });
    await pendingThenAbort((signal) => sem.acquire({ timeout: LONG, signal }));
    await pendingThenAbort((signal) => sem.acquire({ timeout: Number.MAX_SAFE_INTEGER, signal }));
  });

  it('Queue.get and Queue.put', async () => {
    const name = uniqueName('long');
    const q = new Queue<number>(name, { maxsize: 1, maxMessageSize: 64 });
    later(() => {
      q.close();
      Queue.unlink(name);
    });
    await pendingThenAbort((signal) => q.get({ timeout: LONG, signal }));
    await pendingThenAbort((signal) => q.getMany(4, { timeout: LONG, signal }));
    q.putNowait(1);
    await pendingThenAbort((signal) => q.put(2, { timeout: LONG, signal }));
    expect(q.qsize()).toBe(1);
  });

  it('Connection.recv and Connection.poll', async () => {
    const [a, b] = Pipe();
    later(() => {
      a.close();
      b.close();
    });
    await pendingThenAbort((signal) => a.recv({ timeout: LONG, signal }));
    await pendingThenAbort((signal) => a.poll(LONG, { signal }));
  });

  it('Listener.accept and the Client handshake', async () => {
    const path = join(tmpdir(), uniqueName('long') + '.sock');
    const l = new Listener(path);
    later(() => l.close());
    await pendingThenAbort((signal) => l.accept({ timeout: LONG, signal }));
    // A server that never answers: the client waits in its handshake.
    const mute = join(tmpdir(), uniqueName('mute') + '.sock');
    const server = createServer(() => {}).listen(mute);
    await new Promise((r) => server.once('listening', r));
    later(() => {
      server.close();
      if (existsSync(mute)) unlinkSync(mute);
    });
    await pendingThenAbort((signal) => Client(mute, { authkey: 'k', timeout: LONG, signal }));
  });
});

describe('WaitList', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('chains timers: a wait longer than one timer fires at its time, not before', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const list = new WaitList<string>({ onTimeout: (_d, ms) => ({ value: `timed out after ${ms}` }) });
    let out: string | undefined;
    void list.wait(undefined, 3 * MAX_TIMER_DELAY + 5, undefined).then((v) => (out = v));
    await vi.advanceTimersByTimeAsync(3 * MAX_TIMER_DELAY);
    expect(out).toBeUndefined();
    expect(list.size).toBe(1);
    await vi.advanceTimersByTimeAsync(5);
    expect(out).toBe(`timed out after ${3 * MAX_TIMER_DELAY + 5}`);
    expect(list.size).toBe(0);
  });

  it('settles each wait once and cleans up however it ends', async () => {
    const left: number[] = [];
    let changes = 0;
    const list = new WaitList<number, number>({
      onTimeout: () => ({ error: new Error('timeout') }),
      onLeave: (d) => left.push(d),
      onChange: () => changes++,
    });
    const ac = new AbortController();
    const served = list.wait(1, -1, undefined);
    const aborted = list.wait(2, -1, ac.signal);
    const timed = list.wait(3, 5, undefined);
    const closed = list.wait(4, -1, undefined);
    expect(list.size).toBe(4);
    expect(list.first()!.data).toBe(1);
    expect(list.resolve(list.first()!, 10)).toBe(true);
    ac.abort();
    await expect(aborted).rejects.toBeInstanceOf(AbortError);
    await expect(timed).rejects.toThrow('timeout');
    const w = list.first()!;
    list.rejectAll(new Error('closed'));
    expect(list.reject(w, new Error('again'))).toBe(false);
    expect(list.resolve(w, 1)).toBe(false);
    await expect(closed).rejects.toThrow('closed');
    expect(await served).toBe(10);
    expect(left).toEqual([2, 3, 4]);
    expect(list.size).toBe(0);
    expect(changes).toBe(4 + 4);
  });

  it('sleep and deadline take any length and an AbortSignal', async () => {
    const ac = new AbortController();
    const s = waitSleep(LONG, ac.signal);
    ac.abort();
    await expect(s).rejects.toBeInstanceOf(AbortError);
    await waitSleep(1);
    const d = deadline(5, undefined);
    await new Promise((r) => d.signal.addEventListener('abort', r));
    expect(d.timedOut).toBe(true);
    const parent = new AbortController();
    const e = deadline(LONG, parent.signal);
    parent.abort('why');
    expect(e.signal.aborted).toBe(true);
    expect(e.timedOut).toBe(false);
    const f = deadline(LONG, undefined);
    f.dispose();
    expect(f.signal.aborted).toBe(false);
  });
});
