// JoinableQueue across processes: CPython's _TestQueue.test_task_done, too
// many taskDone() calls, and a consumer SIGKILLed with unfinished tasks
// making join() reject with EOWNERDEAD (within 1 s) instead of hanging.
import { describe, expect, it } from 'vitest';
import { JoinableQueue } from '../../lib/index.js';
import { namesRemovedAfterEach, sleep } from '../helpers/index.js';
import { child } from './children.js';

const { name } = namesRemovedAfterEach('jq', (n) => JoinableQueue.unlink(n));

describe('JoinableQueue', () => {
  it('test_task_done: 4 worker processes, 10 items, join() returns when all are done', async () => {
    const n = name();
    const q = new JoinableQueue<number | null>(n);
    const workers = Array.from({ length: 4 }, () => child('jq-worker', n));
    try {
      for (const w of workers) expect(await w.line()).toBe('ready');
      for (let i = 0; i < 10; i++) await q.put(i);
      expect(await q.join({ timeout: 20_000 })).toBe(true);
      expect(q.unfinishedTasks).toBe(0);
      for (let i = 0; i < workers.length; i++) await q.put(null);
      const done = await Promise.all(workers.map((w) => w.exited));
      expect(done.reduce((s, d) => s + Number(d.lines[1]!.split(' ')[1]), 0)).toBe(10);
      // The 4 nulls were got and never marked done: each worker's close() wrote its one off.
      expect(q.unfinishedTasks).toBe(0);
      expect(q.lostTasks).toBe(4);
      expect(q.joinSync({ timeout: 0 })).toBe(true);
      q.putNowait(7);
      expect(q.joinSync({ timeout: 100 })).toBe(false);
      q.getNowait();
      q.taskDone();
      expect(q.joinSync({ timeout: 0 })).toBe(true);
    } finally {
      await Promise.all(workers.map((w) => w.kill()));
      q.close();
    }
  });

  it('taskDone() more times than items put: RangeError ERR_IPC_TASK_DONE (Python ValueError); counts in this process', async () => {
    const q = new JoinableQueue<string>(name());
    try {
      expect(() => q.taskDone()).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_IPC_TASK_DONE' }));
      q.putNowait('a');
      q.putSync('b');
      await q.putMany(['c', 'd']);
      expect(q.unfinishedTasks).toBe(4);
      expect(await q.get()).toBe('a');
      expect(q.getNowait()).toBe('b');
      expect(await q.getMany(5)).toEqual(['c', 'd']);
      const joined = q.join();
      for (let i = 0; i < 4; i++) q.taskDone();
      expect(await joined).toBe(true);
      expect(() => q.taskDone()).toThrow(RangeError);
      // a put that fails (Full at once) is not counted
      const small = new JoinableQueue<number>(name(), { maxsize: 1 });
      small.putNowait(1);
      expect(() => small.putNowait(2)).toThrow(expect.objectContaining({ name: 'Full' }));
      expect(small.unfinishedTasks).toBe(1);
      small.getNowait();
      small.taskDone();
      small.close();
    } finally {
      q.close();
    }
  });

  it('a consumer SIGKILLed with 2 unfinished tasks: join() rejects with EOWNERDEAD within 1 s, then the rest can be joined', async () => {
    const n = name();
    const q = new JoinableQueue<number>(n);
    const victim = child('jq-die', n, 2);
    try {
      for (let i = 0; i < 3; i++) await q.put(i);
      expect(await victim.line()).toBe('got');
      const joined = q.join();
      await sleep(50);
      const t0 = performance.now();
      await victim.kill();
      const err = await joined.then(
        () => null,
        (e: unknown) => e,
      );
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(err).toMatchObject({ code: 'EOWNERDEAD', lost: 2, pid: victim.proc.pid });
      expect(q.unfinishedTasks).toBe(1);
      expect(q.lostTasks).toBe(2);
      await q.get();
      q.taskDone();
      expect(await q.join({ timeout: 1000 })).toBe(true);
    } finally {
      await victim.kill();
      q.close();
    }
  });

  it('abort and close: join() rejects with AbortError / EBADF; use after close throws', async () => {
    const q = new JoinableQueue<number>(name());
    await q.put(1);
    const ac = new AbortController();
    const a = q.join({ signal: ac.signal });
    ac.abort();
    await expect(a).rejects.toMatchObject({ name: 'AbortError' });
    const b = q.join();
    q.close();
    await expect(b).rejects.toMatchObject({ code: 'EBADF' });
    expect(() => q.taskDone()).toThrow(/closed/);
    await expect(q.put(2)).rejects.toMatchObject({ code: 'EBADF' });
  });
});
