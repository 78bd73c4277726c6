// Named semaphores across real, separately started processes: node children
// and a python3 process using libc's sem_* through ctypes.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Lock, Semaphore, Value } from '../../lib/index.js';
import { expectOk, FIXTURES, runNode, runPython, type RunResult, namesRemovedAfterEach, sleep } from '../helpers/index.js';

const { name } = namesRemovedAfterEach('x', (n) => Semaphore.unlink(n));
/** The environment that makes test/fixtures/sync/worker.mjs open plain POSIX semaphores. */
const PLAIN = { ...process.env, PIPC_ROBUST: '0' };

/** Largest number of [enter, exit] intervals open at once, from "enter T"/"exit T" lines. */
function maxInside(outputs: string[]): { max: number; intervals: number } {
  const events: Array<[bigint, number]> = [];
  for (const out of outputs) {
    for (const line of out.split('\n')) {
      const [kind, t] = line.split(' ');
      if (kind === 'enter') events.push([BigInt(t!), +1]);
      if (kind === 'exit') events.push([BigInt(t!), -1]);
    }
  }
  // exits sort before enters at the same instant
  events.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  let inside = 0;
  let max = 0;
  for (const [, d] of events) {
    inside += d;
    max = Math.max(max, inside);
  }
  return { max, intervals: events.length / 2 };
}

describe('across processes', () => {
  it('6 processes x 300 read-modify-write increments under one Lock: the total is exact', async () => {
    const lockName = name('lock');
    const dir = mkdtempSync(join(tmpdir(), 'pipc-'));
    const file = join(dir, 'counter');
    writeFileSync(file, '0');
    const lock = new Lock(lockName);
    try {
      const results = await Promise.all(Array.from({ length: 6 }, () => runNode('sync/worker.mjs', ['increment', lockName, file, '300'])));
      results.forEach((r) => expectOk(r, 'increment worker'));
      expect(Number(readFileSync(file, 'utf8'))).toBe(1800);
      expect(lock.value).toBe(1);
    } finally {
      lock.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Semaphore(3) with 8 processes: never more than 3 inside, and at least 2 at once', async () => {
    const n = name('limit');
    const sem = new Semaphore(n, { initialValue: 3 });
    try {
      const results = await Promise.all(Array.from({ length: 8 }, () => runNode('sync/worker.mjs', ['limit', n, '4', '25'])));
      results.forEach((r) => expectOk(r, 'limit worker'));
      const { max, intervals } = maxInside(results.map((r) => r.stdout));
      expect(intervals).toBe(32);
      expect(max).toBeLessThanOrEqual(3);
      expect(max).toBeGreaterThanOrEqual(2);
      expect(sem.value).toBe(3);
    } finally {
      sem.close();
    }
  });

  it('node and python3 (ctypes sem_open/sem_wait/sem_post) share one plain limit', async () => {
    const n = name('mixed');
    const sem = new Semaphore(n, { initialValue: 2, robust: false });
    try {
      const results = await Promise.all([
        runNode('sync/worker.mjs', ['limit', n, '5', '20'], { env: PLAIN }),
        runNode('sync/worker.mjs', ['limit', n, '5', '20'], { env: PLAIN }),
        runPython('sync/sem_ctypes.py', ['limit', n, '5', '20']),
        runPython('sync/sem_ctypes.py', ['limit', n, '5', '20']),
      ]);
      results.forEach((r) => expectOk(r, 'limit worker'));
      const { max, intervals } = maxInside(results.map((r) => r.stdout));
      expect(intervals).toBe(20);
      expect(max).toBeLessThanOrEqual(2);
      expect(sem.value).toBe(2);
    } finally {
      sem.close();
    }
  });

  it('python3 and node hand a semaphore pair back and forth 500 times', async () => {
    const ping = name('ping');
    const pong = name('pong');
    const a = new Semaphore(ping, { initialValue: 0, robust: false });
    const b = new Semaphore(pong, { initialValue: 0, robust: false });
    try {
      const child = runPython('sync/sem_ctypes.py', ['pingpong', ping, pong, '500']);
      for (let i = 0; i < 500; i++) {
        a.release();
        expect(await b.acquire({ timeout: 10_000 })).toBe(true);
      }
      const r = expectOk(await child, 'python pingpong');
      expect(r.stdout.trim()).toBe('done 500');
      expect(a.value).toBe(0);
      expect(b.value).toBe(0);
    } finally {
      a.close();
      b.close();
    }
  });

  it('a semaphore created by python3 is opened by node with its value', async () => {
    const n = name('pycreated');
    const r = expectOk(await runPython('sync/sem_ctypes.py', ['create', n, '5']));
    expect(r.stdout.trim()).toBe('5');
    const s = new Semaphore(n, { create: false, robust: false });
    expect(s.value).toBe(5);
    s.close();
  });

  it('node children ping-pong with the parent through two semaphores', async () => {
    const ping = name('ping');
    const pong = name('pong');
    const a = new Semaphore(ping, { initialValue: 0 });
    const b = new Semaphore(pong, { initialValue: 0 });
    try {
      const child = runNode('sync/worker.mjs', ['pingpong', ping, pong, '300']);
      for (let i = 0; i < 300; i++) {
        a.release();
        expect(await b.acquire({ timeout: 10_000 })).toBe(true);
      }
      expect(expectOk(await child).stdout.trim()).toBe('done');
    } finally {
      a.close();
      b.close();
    }
  });

  it('a Lock held via `using hold()` serialises critical sections of 3 processes', async () => {
    const n = name('log');
    const dir = mkdtempSync(join(tmpdir(), 'pipc-'));
    const file = join(dir, 'log');
    writeFileSync(file, '');
    const lock = new Lock(n);
    try {
      const rs = await Promise.all(['a', 'b', 'c'].map((id) => runNode('sync/worker.mjs', ['log', n, file, id, '50'])));
      rs.forEach((r) => expectOk(r));
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(300);
      for (let i = 0; i < lines.length; i += 2) {
        const [id, what] = lines[i]!.split(' ');
        expect(what).toBe('start');
        expect(lines[i + 1]).toBe(`${id} end`);
      }
    } finally {
      lock.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // (This replaces "a process killed while waiting consumes nothing": the
  // kernel guarantees that, whatever our code does.)
  it('a process that aborts a wait after its thread took the unit gives it back while it lives on', async () => {
    const n = name('abort-take');
    const flag = `${n}-posted`;
    const s = new Semaphore(n, { initialValue: 0 });
    const posted = new Value('i', 0, { name: flag, lock: false });
    try {
      const child = spawn(process.execPath, [join(FIXTURES, 'sync/worker.mjs'), 'abort-after-take', n, flag], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      const exited = new Promise((r) => child.once('exit', (code) => r(code)));
      while (!out.includes('waiting') && child.exitCode === null) await sleep(5);
      s.release();
      posted.store(1);
      while (!out.includes('AbortError') && !out.includes('acquired') && child.exitCode === null) await sleep(5);
      expect(out.trim().split('\n')).toEqual(['waiting', 'AbortError']);
      // The child is alive and idle: the unit is back only if its own code posted it.
      expect(child.exitCode).toBeNull();
      expect(await s.acquire({ timeout: 2000 })).toBe(true);
      child.stdin.end();
      expect(await exited).toBe(0);
      expect(s.value).toBe(0);
    } finally {
      posted.close();
      posted.unlink();
      s.close();
    }
  });

  it('a holder killed inside its critical section: a crash-safe Lock comes back within 1 s, the next holder is told', async () => {
    const n = name('holder');
    const lock = new Lock(n);
    try {
      const first = await lock.hold();
      const before = first.token!;
      first.release();
      const child = spawn(process.execPath, [join(FIXTURES, 'sync/worker.mjs'), 'hold-forever', n], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      expect(lock.locked()).toBe(true);
      const waiting = lock.hold({ timeout: 5000 });
      await new Promise((r) => setTimeout(r, 50));
      const exited = new Promise((r) => child.once('exit', (_code, signal) => r(signal)));
      const t0 = performance.now();
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      const held = await waiting;
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(held.recovered).toMatchObject({ pid: child.pid });
      expect(Math.abs(held.recovered!.at - Date.now())).toBeLessThan(5000);
      expect(held.token! >= before + 2n).toBe(true); // the dead holder's acquire counted too
      held.release();
      // a later holder is not told again
      const again = await lock.hold();
      expect(again.recovered).toBeUndefined();
      expect(again.token! > held.token!).toBe(true);
      again.release();
      expect(lock.value).toBe(1);
    } finally {
      lock.close();
    }
  });

  it('a holder killed inside its critical section leaves a plain (robust: false) Lock held: waiters time out', async () => {
    const n = name('holder');
    const lock = new Lock(n, { robust: false });
    try {
      const child = spawn(process.execPath, [join(FIXTURES, 'sync/worker.mjs'), 'hold-forever', n], { stdio: ['ignore', 'pipe', 'inherit'], env: PLAIN });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      expect(lock.locked()).toBe(true);
      const exited = new Promise((r) => child.once('exit', (_code, signal) => r(signal)));
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      // POSIX semaphores have no owner: the kernel does not undo the dead holder's wait.
      expect(await lock.acquire({ timeout: 100 })).toBe(false);
      expect(lock.locked()).toBe(true);
      // Recovery is explicit: whoever knows the holder is gone releases it.
      lock.release();
      expect(await lock.acquire({ timeout: 1000 })).toBe(true);
      lock.release();
    } finally {
      lock.close();
    }
  });

  it('a process whose only wait was aborted exits promptly (no handle or thread keeps it alive)', async () => {
    const n = name('abort-exit');
    const s = new Semaphore(n, { initialValue: 0 });
    try {
      const t0 = performance.now();
      const r: RunResult = expectOk(await runNode('sync/worker.mjs', ['abort-then-exit', n], { timeoutMs: 15_000 }));
      expect(r.stdout.trim()).toBe('AbortError');
      expect(performance.now() - t0).toBeLessThan(10_000);
      s.release();
      await new Promise((r2) => setTimeout(r2, 50));
      expect(s.value).toBe(1);
    } finally {
      s.close();
    }
  });
});
