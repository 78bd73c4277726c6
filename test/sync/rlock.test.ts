// RLock across processes: re-entry by its owner (process + thread), release
// by a non-owner refused, and crash safety like Lock's.
import { Worker } from 'node:worker_threads';
import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Lock, RLock } from '../../lib/index.js';
import { namesRemovedAfterEach } from '../helpers/index.js';
import { child } from './children.js';

const { name } = namesRemovedAfterEach('rl', (n) => RLock.unlink(n));

describe('RLock', () => {
  it('re-entry: acquired 3 times, other processes wait until the third release', async () => {
    const n = name();
    const r = new RLock(n);
    try {
      expect(statSync(`/dev/shm/pipc.${n}.rlock`).mode & 0o777).toBe(0o600);
      expect(await r.acquire()).toBe(true);
      expect(r.tryAcquire()).toBe(true);
      expect(r.acquireSync({ timeout: 0 })).toBe(true);
      expect(r.count).toBe(3);
      expect(r.isOwned()).toBe(true);
      expect((await child('rlock-probe', n).exited).lines[0]).toBe('EPERM false true');
      r.release();
      r.release();
      expect(r.count).toBe(1);
      expect((await child('rlock-probe', n).exited).lines[0]).toBe('EPERM false true');
      r.release();
      expect(r.isOwned()).toBe(false);
      expect(r.locked()).toBe(false);
      // free now: the probe takes it (and gives it back by exiting)
      expect((await child('rlock-probe', n).exited).lines[0]).toBe('EPERM true true');
      expect(await r.acquire({ timeout: 2000 })).toBe(true);
      r.release();
    } finally {
      r.close();
    }
  });

  it('release by a non-owner throws EPERM: nobody holds it, another process holds it, another thread holds it', async () => {
    const n = name();
    const r = new RLock(n);
    const other = new RLock(n);
    try {
      expect(() => r.release()).toThrow(expect.objectContaining({ code: 'EPERM' }));
      const holder = child('rlock-hold', n, 2);
      try {
        expect(await holder.line()).toBe('held 2');
        expect(() => r.release()).toThrow(expect.objectContaining({ code: 'EPERM' }));
        expect(r.tryAcquire()).toBe(false);
      } finally {
        await holder.kill();
      }
      // Two handles of one name in one thread are one lock with one count.
      expect(await r.acquire({ timeout: 2000 })).toBe(true);
      expect(other.tryAcquire()).toBe(true);
      expect(other.count).toBe(2);
      other.release();
      r.release();
      expect(r.locked()).toBe(false);
      // A worker thread is another owner.
      await r.acquire();
      const url = new URL('../../dist/index.js', import.meta.url).href;
      const w = new Worker(
        `const { parentPort, workerData } = require('node:worker_threads');
         import(workerData.url).then(({ RLock }) => {
           const r = new RLock(workerData.n);
           let code = 'released';
           try { r.release(); } catch (e) { code = e.code; }
           parentPort.postMessage([code, r.tryAcquire()]);
           r.close();
         });`,
        { eval: true, workerData: { n, url } },
      );
      expect(await new Promise((res) => w.once('message', res))).toEqual(['EPERM', false]);
      await w.terminate();
      r.release();
    } finally {
      r.close();
      other.close();
    }
  });

  it('an owner SIGKILLed while holding 2 levels: the lock comes back within 1 s, onOwnerDead says who', async () => {
    const n = name();
    const dead: number[] = [];
    const r = new RLock(n, { onOwnerDead: (i) => dead.push(i.pid) });
    const holder = child('rlock-hold', n, 2);
    try {
      expect(await holder.line()).toBe('held 2');
      const waiting = r.acquire({ timeout: 5000 });
      const t0 = performance.now();
      await holder.kill();
      expect(await waiting).toBe(true);
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(dead).toEqual([holder.proc.pid]);
      expect(r.count).toBe(1);
      r.release();
    } finally {
      await holder.kill();
      r.close();
    }
  });

  it('hold() / using releases one level; closed handles throw; RLock and Lock of one name are different objects', async () => {
    const n = name();
    const r = new RLock(n);
    {
      using _a = await r.hold();
      {
        using _b = r.holdSync();
        expect(r.count).toBe(2);
      }
      expect(r.count).toBe(1);
    }
    expect(r.count).toBe(0);
    const l = new Lock(n);
    await r.acquire();
    expect(l.tryAcquire()).toBe(true); // another object: /dev/shm/pipc.NAME.sem
    l.release();
    l.close();
    Lock.unlink(n);
    r.release();
    r.close();
    expect(() => r.tryAcquire()).toThrow(expect.objectContaining({ code: 'EBADF' }));
    await expect(r.acquire()).rejects.toMatchObject({ code: 'EBADF' });
  });
});
