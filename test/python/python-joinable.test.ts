// JoinableQueue across languages through the pipc Python module, on both
// transports: Node producers with Python consumers calling task_done() and
// the reverse (join resolves exactly when the last task is done, counted
// across processes), and a consumer SIGKILLed with unfinished tasks making
// the other language's join report them (EOWNERDEAD, lost, pid).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JoinableQueue, type QueueOptions } from '../../lib/index.js';
import { FIXTURES, namesRemovedAfterEach, sleep } from '../helpers/index.js';
import { child, type Child } from './children.js';

const { name } = namesRemovedAfterEach('pyjq', (n) => JoinableQueue.unlink(n));
const NODE_WORKER = join(FIXTURES, 'python/jq-node.mjs');
const NODE_DIE = join(FIXTURES, 'sync/sync11.mjs');
const TRANSPORTS: Array<[string, QueueOptions<any>]> = [
  ['shm', { transport: 'shm' }],
  ['mq', { transport: 'mq', maxsize: 10, maxMessageSize: 256 }],
];

/** The workers' task_done times and their "done N" counts, once each exits. */
async function results(workers: Child[]): Promise<{ times: bigint[]; done: number }> {
  let done = 0;
  for (const w of workers) {
    done += Number((await w.line('done')).split(' ')[1]);
    expect(await w.exited).toBe(0);
  }
  const times = workers.flatMap((w) => w.lines.filter((l) => l.startsWith('t ')).map((l) => BigInt(l.split(' ')[1]!)));
  return { times, done };
}

/** The latest of some hrtime stamps (bigints: no Math.max). */
function max(xs: bigint[]): bigint {
  let m = xs[0]!;
  for (const x of xs) if (x > m) m = x;
  return m;
}

describe.each(TRANSPORTS)('JoinableQueue, Node and Python (%s)', (transport, options) => {
  it('a Node producer, 3 Python consumers calling task_done: join() resolves when, and only when, all 12 are done', async () => {
    const n = name(transport);
    const q = new JoinableQueue<number | null>(n, options);
    const workers = [0, 1, 2].map(() => child('python', ['jq-worker', n]));
    try {
      for (const w of workers) await w.line('ready');
      for (let i = 0; i < 12; i++) await q.put(i, { timeout: 10_000 });
      let joinedAt: bigint | undefined;
      const joined = q.join({ timeout: 30_000 }).then((r) => {
        joinedAt = process.hrtime.bigint();
        return r;
      });
      // Each item takes a worker 20 ms: 4 rounds at least.
      await sleep(20);
      expect(q.unfinishedTasks).toBeGreaterThan(0);
      expect(joinedAt).toBeUndefined();
      expect(await joined).toBe(true);
      expect(q.unfinishedTasks).toBe(0);
      for (let i = 0; i < 3; i++) await q.put(null);
      const { times, done } = await results(workers);
      expect(done).toBe(12);
      expect(times).toHaveLength(12);
      const last = max(times);
      expect(joinedAt! >= last).toBe(true); // never before the last task_done
      expect(Number(joinedAt! - last) / 1e6).toBeLessThan(1000); // and woken by it, not by a poll far later
      expect(q.unfinishedTasks).toBe(0); // the sentinels, got and never done, written off at the workers' close
      expect(q.lostTasks).toBe(3);
    } finally {
      await Promise.all(workers.map((w) => w.kill()));
      q.close();
    }
  });

  it('a Python producer joins while 3 Node consumers call taskDone(): it returns when, and only when, all 12 are done', async () => {
    const n = name(transport);
    const q = new JoinableQueue<number | null>(n, options);
    const workers = [0, 1, 2].map(() => child('node', [NODE_WORKER, 'worker', n]));
    try {
      for (const w of workers) await w.line('ready');
      const producer = child('python', ['jq-produce', n, '12', '3']);
      await producer.line('put');
      const joined = (await producer.line('joined')).split(' ');
      expect(await producer.exited).toBe(0);
      const { times, done } = await results(workers);
      expect(done).toBe(12);
      expect(times).toHaveLength(12);
      const joinedAt = BigInt(joined[1]!);
      expect(joined[2]).toBe('0');
      const last = max(times);
      expect(joinedAt >= last).toBe(true);
      expect(Number(joinedAt - last) / 1e6).toBeLessThan(1000);
      expect(q.unfinishedTasks).toBe(0);
    } finally {
      await Promise.all(workers.map((w) => w.kill()));
      q.close();
    }
  });

  it('a Python consumer SIGKILLed with 2 unfinished tasks: Node join() rejects with EOWNERDEAD within 1 s (lost 2, its pid)', async () => {
    const n = name(transport);
    const q = new JoinableQueue<number>(n, options);
    const victim = child('python', ['jq-die', n, '2']);
    try {
      for (let i = 0; i < 3; i++) await q.put(i);
      await victim.line('got');
      const joined = q.join();
      await sleep(50);
      const t0 = performance.now();
      await victim.kill();
      const err = await joined.then(
        () => null,
        (e: unknown) => e,
      );
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(err).toMatchObject({ code: 'EOWNERDEAD', lost: 2, pid: victim.pid });
      expect(q.unfinishedTasks).toBe(1);
      await q.get();
      q.taskDone();
      expect(await q.join({ timeout: 1000 })).toBe(true);
    } finally {
      await victim.kill();
      q.close();
    }
  });

  it('a Node consumer SIGKILLed with 2 unfinished tasks: the Python join() raises TasksLostError within 1 s (lost 2, its pid)', async () => {
    const n = name(transport);
    const q = new JoinableQueue<number>(n, options);
    for (let i = 0; i < 3; i++) await q.put(i);
    const victim = child('node', [NODE_DIE, 'jq-die', n, '2']);
    const joiner = child('python', ['jq-join', n, '20']);
    try {
      await victim.line('got');
      await joiner.line('joining');
      await sleep(100);
      const t0 = performance.now();
      await victim.kill();
      expect(await joiner.line('lost')).toBe(`lost 2 ${victim.pid}`);
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(await joiner.exited).toBe(0);
      expect(q.unfinishedTasks).toBe(1);
      expect(q.lostTasks).toBe(2);
    } finally {
      await victim.kill();
      await joiner.kill();
      q.close();
    }
  });
});
