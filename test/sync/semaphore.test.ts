// Semaphore, BoundedSemaphore and Lock within one process: API semantics,
// validation, errors, lifecycle. Cross-process behaviour: semaphore-processes.test.ts.
import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AbortError, BoundedSemaphore, IPCError, Lock, SEM_VALUE_MAX, Semaphore } from '../../lib/index.js';
import { FIXTURES, uniqueName, namesRemovedAfterEach } from '../helpers/index.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const { name, track } = namesRemovedAfterEach('sem', (n) => Semaphore.unlink(n));

describe('opening', () => {
  it('creates with initialValue and reopens the same object by name, with or without "/"', () => {
    const n = name();
    const a = new Semaphore(n, { initialValue: 3 });
    const b = new Semaphore('/' + n, { initialValue: 7 }); // existing: initialValue ignored
    expect(a.name).toBe('/' + n);
    expect(b.name).toBe('/' + n);
    expect(b.value).toBe(3);
    expect(a.tryAcquire()).toBe(true);
    expect(b.value).toBe(2);
    a.close();
    b.close();
  });

  it('defaults to crash-safe, initialValue 1 and mode 0o600', () => {
    const n = name();
    const s = new Semaphore(n);
    expect(s.value).toBe(1);
    expect(s.robust).toBe(true);
    expect(statSync(`/dev/shm/pipc.${n}.sem`).mode & 0o777).toBe(0o600);
    s.close();
    const p = new Semaphore(name(), { robust: false });
    expect(p.robust).toBe(false);
    expect(statSync(`/dev/shm/sem.${p.name.slice(1)}`).mode & 0o777).toBe(0o600);
    p.close();
  });

  it('honours an explicit mode (minus the umask), for both kinds', () => {
    const old = process.umask(0o022);
    try {
      for (const robust of [true, false]) {
        const n = name();
        const s = new Semaphore(n, { mode: 0o640, robust });
        expect(statSync(robust ? `/dev/shm/pipc.${n}.sem` : `/dev/shm/sem.${n}`).mode & 0o777).toBe(0o640);
        s.close();
      }
    } finally {
      process.umask(old);
    }
  });

  it('exclusive create of an existing name fails with EEXIST, for both kinds', () => {
    for (const [robust, syscall] of [[true, 'open'], [false, 'sem_open']] as const) {
      const n = name();
      const a = new Semaphore(n, { robust });
      let err: unknown;
      try {
        new Semaphore(n, { exclusive: true, robust });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(IPCError);
      expect(err).toMatchObject({ name: 'IPCError', code: 'EEXIST', errno: -17, syscall, path: '/' + n });
      expect((err as Error).message).toBe(`EEXIST: file already exists, ${syscall} '/${n}'`);
      a.close();
    }
  });

  it('open-only of a missing name fails with ENOENT', () => {
    const n = uniqueName('missing');
    expect(() => new Semaphore(n, { create: false })).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'open', path: '/' + n }),
    );
    expect(() => new Semaphore(n, { create: false, robust: false })).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'sem_open', path: '/' + n }),
    );
  });

  it('rejects bad names with TypeError / RangeError', () => {
    expect(() => new Semaphore('')).toThrow(TypeError);
    expect(() => new Semaphore('/')).toThrow(TypeError);
    expect(() => new Semaphore('a/b')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new Semaphore('//a')).toThrow(TypeError);
    expect(() => new Semaphore('a\0b')).toThrow(TypeError);
    expect(() => new Semaphore(42 as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new Semaphore(undefined as unknown as string)).toThrow(TypeError);
    expect(() => new Semaphore('x'.repeat(252), { robust: false })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Semaphore('x'.repeat(247))).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }));
    // 251 characters is the longest semaphore name glibc can store (sem. + 251 = 255);
    // 246 the longest crash-safe one (pipc. + 246 + .sem = 255)
    const longest = name('L') + 'x';
    const n = longest + 'y'.repeat(251 - longest.length);
    track(n);
    new Semaphore(n, { robust: false }).close();
    const r = longest + 'z'.repeat(246 - longest.length);
    track(r);
    new Semaphore(r).close();
  });

  it('rejects bad options', () => {
    const n = name();
    expect(() => new Semaphore(n, { initialValue: -1 })).toThrow(RangeError);
    expect(() => new Semaphore(n, { initialValue: 1.5 })).toThrow(RangeError);
    expect(() => new Semaphore(n, { initialValue: SEM_VALUE_MAX + 1 })).toThrow(RangeError);
    expect(() => new Semaphore(n, { initialValue: '1' as unknown as number })).toThrow(TypeError);
    expect(() => new Semaphore(n, { mode: 0o1777 })).toThrow(RangeError);
    expect(() => new Semaphore(n, { create: 'yes' as unknown as boolean })).toThrow(TypeError);
    expect(() => new Semaphore(n, 5 as unknown as object)).toThrow(TypeError);
    // nothing was created by the failed attempts
    expect(() => new Semaphore(n, { create: false })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    const s = new Semaphore(n, { initialValue: SEM_VALUE_MAX });
    expect(s.value).toBe(SEM_VALUE_MAX);
    expect(() => s.release()).toThrow(expect.objectContaining({ code: 'EOVERFLOW', syscall: 'sem_post' }));
    s.close();
  });
});

describe('acquire and release', () => {
  it('tryAcquire never waits; release(n) posts n', () => {
    const s = new Semaphore(name(), { initialValue: 2 });
    expect(s.tryAcquire()).toBe(true);
    expect(s.tryAcquire()).toBe(true);
    expect(s.tryAcquire()).toBe(false);
    s.release(2);
    expect(s.value).toBe(2);
    expect(() => s.release(0)).toThrow(RangeError);
    expect(() => s.release(1.5)).toThrow(RangeError);
    s.close();
  });

  it('acquire resolves true at once when free, and when released later', async () => {
    const s = new Semaphore(name(), { initialValue: 1 });
    await expect(s.acquire()).resolves.toBe(true);
    const t0 = performance.now();
    setTimeout(() => s.release(), 40);
    await expect(s.acquire()).resolves.toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(30);
    s.close();
  });

  it('acquire with a timeout resolves false after about the timeout', async () => {
    const s = new Semaphore(name(), { initialValue: 0 });
    const t0 = performance.now();
    await expect(s.acquire({ timeout: 80 })).resolves.toBe(false);
    const dt = performance.now() - t0;
    expect(dt).toBeGreaterThanOrEqual(75);
    expect(dt).toBeLessThan(2000);
    await expect(s.acquire({ timeout: 0 })).resolves.toBe(false);
    // the timed-out waits took nothing: a release is there to take
    s.release();
    expect(s.value).toBe(1);
    s.close();
  });

  it('an AbortSignal rejects with AbortError and does not eat a later release', async () => {
    const s = new Semaphore(name(), { initialValue: 0 });
    const ac = new AbortController();
    const p = s.acquire({ signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop')), 30);
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect((err as AbortError).cause).toEqual(new Error('stop'));
    s.release();
    // give the engine thread time to notice the cancellation; it must not keep the unit
    await new Promise((r) => setTimeout(r, 150));
    expect(s.value).toBe(1);
    expect(s.tryAcquire()).toBe(true);
    // an already-aborted signal rejects at once
    await expect(s.acquire({ signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
    s.close();
  });

  it('serves waiters in one process in FIFO order', async () => {
    const s = new Semaphore(name(), { initialValue: 0 });
    const order: number[] = [];
    const ps = [0, 1, 2, 3, 4].map((i) => s.acquire().then(() => order.push(i)));
    for (let i = 0; i < 5; i++) {
      s.release();
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(ps);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    s.close();
  });

  it('acquireSync blocks the thread and honours its timeout', () => {
    const s = new Semaphore(name(), { initialValue: 1 });
    expect(s.acquireSync()).toBe(true);
    const t0 = performance.now();
    expect(s.acquireSync({ timeout: 60 })).toBe(false);
    const dt = performance.now() - t0;
    expect(dt).toBeGreaterThanOrEqual(55);
    expect(dt).toBeLessThan(2000);
    expect(s.acquireSync({ timeout: 0 })).toBe(false);
    s.release();
    expect(s.acquireSync({ timeout: 0 })).toBe(true);
    s.close();
  });

  it('rejects bad wait options', async () => {
    const s = new Semaphore(name());
    await expect(s.acquire({ timeout: -1 })).rejects.toThrow(RangeError);
    await expect(s.acquire({ timeout: NaN })).rejects.toThrow(RangeError);
    await expect(s.acquire({ timeout: '5' as unknown as number })).rejects.toThrow(TypeError);
    await expect(s.acquire({ signal: {} as AbortSignal })).rejects.toThrow(TypeError);
    expect(() => s.acquireSync({ timeout: -5 })).toThrow(RangeError);
    expect(s.value).toBe(1);
    s.close();
  });
});

describe('hold, withAcquired, dispose', () => {
  it('hold() returns a disposable that releases once at block exit', async () => {
    const s = new Semaphore(name(), { initialValue: 1 });
    {
      using held = await s.hold();
      expect(s.value).toBe(0);
      held.release();
      held.release(); // idempotent
      expect(s.value).toBe(1);
      expect(s.tryAcquire()).toBe(true);
      s.release();
    }
    expect(s.value).toBe(1);
    {
      using _held = await s.hold();
      expect(s.value).toBe(0);
    }
    expect(s.value).toBe(1);
    s.close();
  });

  it('hold() with a timeout rejects ETIMEDOUT; holdSync works', async () => {
    const s = new Semaphore(name(), { initialValue: 0 });
    await expect(s.hold({ timeout: 20 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    s.release();
    {
      using _h = s.holdSync();
      expect(s.value).toBe(0);
    }
    expect(s.value).toBe(1);
    s.close();
  });

  it('withAcquired releases when the callback throws, and returns its value', async () => {
    const s = new Semaphore(name(), { initialValue: 1 });
    await expect(
      s.withAcquired(async () => {
        expect(s.value).toBe(0);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(s.value).toBe(1);
    await expect(s.withAcquired(() => 42)).resolves.toBe(42);
    expect(s.value).toBe(1);
    await expect(s.withAcquired('nope' as unknown as () => void)).rejects.toThrow(TypeError);
    s.close();
  });

  it('using a Semaphore closes it', () => {
    const n = name();
    let outer: Semaphore;
    {
      using s = new Semaphore(n);
      outer = s;
      expect(s.closed).toBe(false);
    }
    expect(outer.closed).toBe(true);
  });
});

describe('after close', () => {
  it('every call throws IPCError EBADF; close is idempotent', async () => {
    const s = new Semaphore(name());
    s.close();
    s.close();
    expect(() => s.tryAcquire()).toThrow(expect.objectContaining({ name: 'IPCError', code: 'EBADF', syscall: 'sem_trywait' }));
    expect(() => s.release()).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'sem_post' }));
    expect(() => s.value).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => s.acquireSync()).toThrow(expect.objectContaining({ code: 'EBADF' }));
    await expect(s.acquire()).rejects.toMatchObject({ code: 'EBADF' });
    await expect(s.acquire({ timeout: 10 })).rejects.toMatchObject({ code: 'EBADF' });
    await expect(s.hold()).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('close() rejects pending waits in this process with EBADF', async () => {
    const n = name();
    const s = new Semaphore(n, { initialValue: 0 });
    const p1 = s.acquire();
    const p2 = s.acquire({ timeout: 5000 });
    s.close();
    await expect(p1).rejects.toMatchObject({ code: 'EBADF' });
    await expect(p2).rejects.toMatchObject({ code: 'EBADF' });
    // the semaphore itself is untouched
    const again = new Semaphore(n);
    again.release();
    await new Promise((r) => setTimeout(r, 120));
    expect(again.value).toBe(1);
    again.close();
  });

  it('unlink removes the name; the open handle keeps working', () => {
    const n = name();
    const s = new Semaphore(n);
    s.unlink();
    expect(() => new Semaphore(n, { create: false })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(s.tryAcquire()).toBe(true);
    s.release();
    s.close();
    expect(() => Semaphore.unlink(n)).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'sem_unlink' }));
    expect(() => Semaphore.unlink('bad/name')).toThrow(TypeError);
  });
});

describe('BoundedSemaphore and Lock', () => {
  it('BoundedSemaphore refuses release past its bound', () => {
    const s = new BoundedSemaphore(name(), { initialValue: 2 });
    expect(s.maxValue).toBe(2);
    expect(() => s.release()).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_IPC_OVER_RELEASE' }));
    expect(s.value).toBe(2);
    s.tryAcquire();
    expect(() => s.release(2)).toThrow(RangeError);
    s.release();
    expect(s.value).toBe(2);
    expect(() => new BoundedSemaphore(name(), { initialValue: 3, maxValue: 2 })).toThrow(RangeError);
    s.close();
  });

  it('Lock is bounded at 1 and reports locked()', async () => {
    const l = new Lock(name());
    expect(l.locked()).toBe(false);
    expect(l.value).toBe(1);
    await l.acquire();
    expect(l.locked()).toBe(true);
    await expect(l.acquire({ timeout: 20 })).resolves.toBe(false);
    l.release();
    expect(() => l.release()).toThrow(expect.objectContaining({ code: 'ERR_IPC_OVER_RELEASE' }));
    expect(l.locked()).toBe(false);
    l.close();
  });
});

describe('acquireSync spins before it sleeps', () => {
  for (const kind of ['robust', 'plain'] as const) {
    it(`${kind}: a unit another process gives back during the spin is taken without a kernel wait`, async () => {
      const n = name(`spinsync-${kind}`);
      const s = new Semaphore(n, { initialValue: 0, robust: kind === 'robust' });
      // a 3 s spin in the child; its kernel waits are made to throw
      const child = spawn(process.execPath, [join(FIXTURES, 'sync/spin-sync.mjs'), n, kind], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, POSIX_IPC_WAIT_SPIN_US: '3000000' },
      });
      let out = '';
      let err = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
      const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
      for (let i = 0; i < 200 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 25));
      expect(out).toContain('ready');
      await new Promise((r) => setTimeout(r, 100));
      s.release();
      expect(await exited, err).toBe(0);
      const m = /took (\w+) ([\d.]+) (\d+)/.exec(out);
      expect(m?.[1]).toBe('true');
      expect(Number(m?.[2])).toBeLessThan(2500); // within the spin, not at its end
      expect(m?.[3]).toBe('0'); // the one unit, taken
      s.close();
    }, 20_000);
  }
});
