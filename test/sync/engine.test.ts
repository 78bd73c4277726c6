// The wait engine under load: pending waits never stall the event loop or
// libuv's pool, threads stay bounded and go away, worker_threads work.
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { binding } from '../../lib/core/binding.js';
import { Semaphore } from '../../lib/index.js';
import { FIXTURES, sleep, uniqueName } from '../helpers/index.js';

const made: Semaphore[] = [];
function open(tag: string, initialValue = 0): Semaphore {
  const s = new Semaphore(uniqueName(tag), { initialValue });
  made.push(s);
  return s;
}
afterEach(() => {
  for (const s of made.splice(0)) {
    const n = s.name;
    s.close();
    Semaphore.unlink(n);
  }
});

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}

describe('wait engine', () => {
  it('96 pending acquires on 96 semaphores leave fs and timers responsive', async () => {
    const sems = Array.from({ length: 96 }, (_, i) => open(`many${i}`));
    const pending = sems.map((s) => s.acquire());
    await sleep(50);
    // libuv's pool (fs) and timers are not affected by the waits
    const t0 = performance.now();
    const text = await readFile(join(FIXTURES, 'sync/worker.mjs'), 'utf8');
    const fsMs = performance.now() - t0;
    expect(text).toContain('Lock');
    expect(fsMs).toBeLessThan(1000);
    const t1 = performance.now();
    await sleep(10);
    expect(performance.now() - t1).toBeLessThan(1000);
    // threads are bounded by the engine's cap however many objects wait
    expect(binding.engineStats().threads).toBeLessThanOrEqual(64);
    for (const s of sems) s.release();
    const results = await Promise.all(pending);
    expect(results.every((r) => r === true)).toBe(true);
    for (const s of sems) expect(s.value).toBe(0);
  });

  it('10,000 pending acquires on one semaphore use one engine thread and all complete', async () => {
    const s = open('tenk');
    const before = binding.engineStats().threads;
    const pending = Array.from({ length: 10_000 }, () => s.acquire());
    await sleep(30);
    expect(binding.engineStats().pending).toBe(1);
    expect(binding.engineStats().threads).toBeLessThanOrEqual(before + 1);
    s.release(10_000);
    const results = await Promise.all(pending);
    expect(results).toHaveLength(10_000);
    expect(results.every((r) => r === true)).toBe(true);
    expect(s.value).toBe(0);
  });

  it('timed-out and aborted waits leave no pending job, and idle threads exit', async () => {
    const s = open('idle');
    const ac = new AbortController();
    const waits = [s.acquire({ timeout: 30 }), s.acquire({ signal: ac.signal }), s.acquire({ timeout: 60 })];
    ac.abort();
    const outcomes = await Promise.allSettled(waits);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await until(() => binding.engineStats().pending === 0, 2000)).toBe(true);
    expect(await until(() => binding.engineStats().threads === 0, 8000)).toBe(true);
    s.release();
    expect(s.value).toBe(1);
  });

  it('works in worker_threads: ping-pong with the main thread', async () => {
    const a = open('wt-a');
    const b = open('wt-b');
    const w = new Worker(join(FIXTURES, 'sync/thread.mjs'), { workerData: { name: a.name, back: b.name, mode: 'pingpong', rounds: 200 } });
    const done = new Promise((resolve, reject) => {
      w.on('message', resolve);
      w.on('error', reject);
    });
    for (let i = 0; i < 200; i++) {
      a.release();
      expect(await b.acquire({ timeout: 10_000 })).toBe(true);
    }
    expect(await done).toBe('done');
    await w.terminate();
  });

  it('terminating a worker with a pending acquire consumes nothing', async () => {
    const s = open('wt-term');
    const w = new Worker(join(FIXTURES, 'sync/thread.mjs'), { workerData: { name: s.name, mode: 'pending' } });
    await new Promise((resolve) => w.once('message', resolve));
    await sleep(50);
    await w.terminate();
    s.release();
    await sleep(100);
    expect(s.value).toBe(1);
  });
});
