// The wait engine under load: pending waits never stall the event loop or
// libuv's pool, threads stay bounded and go away, worker_threads work.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
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

  it('2,000 pending acquires on 2,000 distinct semaphores (crash-safe and plain) share few threads and each wakes within 500 ms of a release in another process', async () => {
    // Before futex_waitv multiplexing, jobs past the 64th thread took 50 ms
    // turns: a release among 2,000 waits was noticed after up to 1.5 s.
    const nRobust = 1500;
    const nPlain = 500;
    const prefix = uniqueName('mw');
    const sems = [
      ...Array.from({ length: nRobust }, (_, i) => new Semaphore(`${prefix}r${i}`, { initialValue: 0 })),
      ...Array.from({ length: nPlain }, (_, i) => new Semaphore(`${prefix}p${i}`, { initialValue: 0, robust: false })),
    ];
    made.push(...sems);
    const woke = new Map<number, bigint>();
    let notify: (() => void) | null = null;
    const pending = sems.map((s, i) =>
      s.acquire().then((ok) => {
        woke.set(i, process.hrtime.bigint());
        notify?.();
        return ok;
      }),
    );
    const child = spawn(process.execPath, [join(FIXTURES, 'sync/releaser.mjs'), prefix, String(nRobust), String(nPlain)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const exited = new Promise((r) => child.once('exit', r));
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async (): Promise<string> => (await lines.next()).value as string;
    expect(await next()).toBe('ready');
    await sleep(300); // every wait submitted and asleep
    const stats = binding.engineStats();
    expect(stats.pending).toBe(2000);
    // 127 futex words per multiplexing thread: 16 threads hold 2,000 waits
    expect(stats.muxJobs).toBe(2000);
    expect(stats.threads).toBeLessThanOrEqual(Math.ceil(2000 / 127) + 2);
    const latenciesMs: number[] = [];
    const sampled = new Set<number>();
    for (const i of [0, nRobust - 1, nRobust, nRobust + nPlain - 1]) sampled.add(i);
    while (sampled.size < 24) sampled.add(Math.floor(Math.random() * (nRobust + nPlain)));
    for (const i of sampled) {
      child.stdin!.write(`${i}\n`);
      const t0 = BigInt(await next());
      while (!woke.has(i)) await new Promise<void>((r) => (notify = r));
      latenciesMs.push(Number(woke.get(i)! - t0) / 1e6);
    }
    expect(Math.max(...latenciesMs)).toBeLessThan(500);
    const rest = sems.map((_, i) => i).filter((i) => !sampled.has(i));
    child.stdin!.write(`all ${rest.join(' ')}\n`);
    expect(await next()).toBe('done');
    child.stdin!.end('end\n');
    const results = await Promise.all(pending);
    expect(results.every((r) => r === true)).toBe(true);
    for (const s of sems) expect(s.value).toBe(0);
    expect(await exited).toBe(0);
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
