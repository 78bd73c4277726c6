// Pool: worker processes over this package's Pipe; results in order, a
// worker killed mid-task fails that task and is replaced, nothing hangs.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pipe, Pool, Value } from '../../lib/index.js';
import { FIXTURES, sleep } from '../helpers/index.js';
import { childPids, isRunning, noChildrenAfterEach, waitGone } from './children.js';

const TASKS = join(FIXTURES, 'process', 'tasks.mjs');
noChildrenAfterEach();

describe('Pool', () => {
  it('map over 1000 items returns the results in order, with an initializer; apply; starmap', async () => {
    await using pool = new Pool(TASKS, { processes: 2, initializer: 'init', initargs: [1] });
    expect(pool.processes).toBe(2);
    const items = Array.from({ length: 1000 }, (_, i) => i);
    expect(await pool.map('square', items)).toEqual(items.map((x) => x * x + 1));
    expect(await pool.map('square', items, { chunksize: 7 })).toEqual(items.map((x) => x * x + 1));
    expect(await pool.apply('square', [3])).toBe(10);
    expect(await pool.starmap('add', [[1, 2], [3, 4]])).toEqual([3, 7]);
    expect(await pool.map('square', [])).toEqual([]);
  });

  it('imap yields in order, imapUnordered as tasks complete; both give every result', async () => {
    await using pool = new Pool(TASKS, { processes: 2 });
    const items = [9, 1, 8, 2, 7, 3, 6, 4, 5, 0];
    const ordered = [];
    for await (const r of pool.imap('slowSquare', items)) ordered.push(r);
    expect(ordered).toEqual(items.map((x) => x * x));
    const unordered = [];
    for await (const r of pool.imapUnordered('slowSquare', items)) unordered.push(r);
    expect(unordered.sort((a, b) => (a as number) - (b as number))).toEqual(items.map((x) => x * x).sort((a, b) => a - b));
  });

  it('a task that throws rejects with its error and stack; the pool goes on', async () => {
    await using pool = new Pool(TASKS, { processes: 1 });
    await expect(pool.map('fail', [1, 2, 3, 4], { chunksize: 1 })).rejects.toMatchObject({ name: 'RangeError', message: 'bad item 3' });
    const it = pool.imap('fail', [1, 2, 3, 4]);
    expect((await it.next()).value).toBe(1);
    expect((await it.next()).value).toBe(2);
    await expect(it.next()).rejects.toThrow('bad item 3');
    await expect(pool.apply('noSuchExport')).rejects.toMatchObject({ code: 'ERR_IPC_NO_SUCH_EXPORT' });
    await expect(pool.apply('square', [() => 1])).rejects.toMatchObject({ code: 'ERR_IPC_ENCODE' });
    const [a, b] = Pipe();
    try {
      await expect(pool.map('square', [1, a])).rejects.toMatchObject({ code: 'ERR_IPC_UNCLONEABLE', message: expect.stringContaining('initargs') });
    } finally {
      a.close();
      b.close();
    }
    expect(await pool.apply('square', [2])).toBe(4);
  });

  it('a worker killed mid-task fails that task with a clear error and is replaced', async () => {
    await using pool = new Pool(TASKS, { processes: 2 });
    const before = pool.pids;
    const hung = pool.apply('hangAndSay', []);
    const pid = await pool.apply('pid');
    // hangAndSay runs on the other worker.
    const victim = before.find((p) => p !== pid)!;
    await sleep(100);
    process.kill(victim, 'SIGKILL');
    await expect(hung).rejects.toMatchObject({
      code: 'ERR_IPC_WORKER_DIED',
      message: expect.stringMatching(new RegExp(`pid ${victim}\\) was killed by signal 9 while running task 'hangAndSay'`)),
    });
    expect(await pool.map('square', [1, 2, 3, 4])).toEqual([1, 4, 9, 16]);
    await waitGone([victim], 1000);
    expect(pool.pids).toHaveLength(2);
    expect(pool.pids).not.toContain(victim);
  });

  it('initargs carry posix-ipc objects, reopened once in each worker', async () => {
    const n = `pipc-test-${process.pid}-poolv`;
    const v = new Value('i', 0, { name: n, lock: false });
    try {
      await using pool = new Pool(TASKS, { processes: 2, initializer: 'initShared', initargs: [v] });
      const after = await pool.map('bump', [1, 1, 1, 1, 1, 1], { chunksize: 1 });
      expect(v.load()).toBe(6);
      expect([...after].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      v.close();
      Value.unlink(n);
    }
  });

  it('maxTasksPerChild replaces a worker after that many tasks', async () => {
    await using pool = new Pool(TASKS, { processes: 1, maxTasksPerChild: 2 });
    const pids = [];
    for (let i = 0; i < 4; i++) pids.push(await pool.apply('pid'));
    expect(pids[0]).toBe(pids[1]);
    expect(pids[2]).toBe(pids[3]);
    expect(pids[1]).not.toBe(pids[2]);
  });

  it('close() lets queued tasks finish, then join() waits for the workers; terminate() rejects pending tasks', async () => {
    const pool = new Pool(TASKS, { processes: 2 });
    await expect(pool.join()).rejects.toMatchObject({ code: 'ERR_IPC_POOL_RUNNING' });
    const results = pool.map('slowSquare', [1, 2, 3, 4, 5], { chunksize: 1 });
    pool.close();
    await expect(pool.apply('square', [1])).rejects.toMatchObject({ code: 'ERR_IPC_POOL_CLOSED' });
    expect(await results).toEqual([1, 4, 9, 16, 25]);
    await pool.join();
    expect(childPids()).toEqual([]);

    const pool2 = new Pool(TASKS, { processes: 1 });
    const pending = [pool2.apply('hang'), pool2.apply('square', [2])];
    await sleep(50);
    pool2.terminate();
    for (const p of pending) await expect(p).rejects.toMatchObject({ code: 'ERR_IPC_POOL_TERMINATED' });
    await pool2.join();
  });

  it('bad input: missing module, bad options, a failing initializer breaks the pool instead of respawning', async () => {
    expect(() => new Pool(join(FIXTURES, 'process', 'nope.mjs'))).toThrow(expect.objectContaining({ code: 'ERR_MODULE_NOT_FOUND' }));
    expect(() => new Pool(TASKS, { processes: 0 })).toThrow(RangeError);
    expect(() => new Pool(TASKS, { initargs: [Symbol('x')] })).toThrow(expect.objectContaining({ code: 'ERR_IPC_UNCLONEABLE' }));
    expect(childPids()).toEqual([]);
    await using pool = new Pool(TASKS, { processes: 2, initializer: 'badInit' });
    await expect(pool.apply('square', [2])).rejects.toThrow(/initializer failed/);
    await sleep(300);
    await expect(pool.apply('square', [2])).rejects.toMatchObject({ code: 'ERR_IPC_POOL_BROKEN' });
    await expect(pool.map('square', 1 as never)).rejects.toThrow(TypeError);
  });
});
