// Crash safety of Semaphore, BoundedSemaphore and Lock (the default kind):
// holders that die by SIGKILL, in a PID namespace, or as a terminated worker
// give their units back within a second; stopped holders keep them; deaths at
// any instant lose or create nothing (the chaos tests).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { BoundedSemaphore, IPCError, Lock, SEM_VALUE_MAX, Semaphore } from '../../lib/index.js';
import { expectOk, FIXTURES, IS_ROOT, ROOT, runPython, namesRemovedAfterEach, sleep } from '../helpers/index.js';

const { name } = namesRemovedAfterEach('rob', (n) => Semaphore.unlink(n));
const FIXTURE = join(FIXTURES, 'sync/robust.mjs');

/** Starts `node robust.mjs hold NAME KIND` (or under `prefix`) and resolves once it holds. */
async function holder(n: string, kind: 'lock' | 'sem', prefix: string[] = []): Promise<ChildProcess> {
  const argv = [...prefix, process.execPath, FIXTURE, 'hold', n, kind];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code, sig) => reject(new Error(`holder exited with ${code ?? sig}`)));
  });
  return child;
}

/** Resolves once every thread of process `pid` is stopped (state T in /proc). */
async function stopped(pid: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const states = readdirSync(`/proc/${pid}/task`).map((t) => {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    });
    if (states.every((s) => s === 'T' || s === 't')) return;
    await sleep(2);
  }
  throw new Error(`process ${pid} did not stop`);
}

function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  return exited;
}

describe('a dead holder gives its units back', () => {
  it('SIGKILL of 2 of 3 Semaphore holders: 2 units back within 1 s, the live one keeps its own', async () => {
    const n = name('sem3');
    const sem = new Semaphore(n, { initialValue: 3 });
    const dead: number[] = [];
    const s2 = new Semaphore(n, { onOwnerDead: (info) => dead.push(info.pid) });
    const kids = [await holder(n, 'sem'), await holder(n, 'sem'), await holder(n, 'sem')];
    try {
      expect(sem.value).toBe(0);
      const waits = [sem.hold({ timeout: 5000 }), s2.hold({ timeout: 5000 })];
      await sleep(30);
      const t0 = performance.now();
      await Promise.all([kill(kids[0]!), kill(kids[1]!)]);
      const held = await Promise.all(waits);
      expect(performance.now() - t0).toBeLessThan(1000);
      const pids = held.map((h) => h.recovered?.pid);
      expect(pids.every((p) => p === kids[0]!.pid || p === kids[1]!.pid)).toBe(true);
      expect(dead).toHaveLength(1);
      expect(await sem.acquire({ timeout: 400 })).toBe(false); // the live holder's unit stays with it
      held.forEach((h) => h.release());
      expect(sem.value).toBe(2);
      await kill(kids[2]!);
      // two units are free; the third comes back to whoever waits for it
      for (let i = 0; i < 3; i++) expect(await sem.acquire({ timeout: 1000 })).toBe(true);
      sem.release(3);
      expect(sem.value).toBe(3);
    } finally {
      kids.forEach((k) => k.kill('SIGKILL'));
      sem.close();
      s2.close();
    }
  });

  it('a holder that took its unit after the waiter last looked is still found when it dies', async () => {
    // The waiter (a child, so that it can be stopped) looks for dead holders
    // when it starts waiting, and finds none. Stopped, it sees neither the
    // release nor the acquire by a new holder; continued, it must still find
    // that holder's death (it remembers the holders it found only while no
    // acquire has happened since).
    const n = name('late');
    const sem = new Semaphore(n, { initialValue: 0 });
    const waiter = spawn(process.execPath, [FIXTURE, 'wait', n], { stdio: ['ignore', 'pipe', 'inherit'] });
    let h: ChildProcess | undefined;
    try {
      const lines: string[] = [];
      let notify = (): void => {};
      waiter.stdout!.setEncoding('utf8');
      waiter.stdout!.on('data', (d: string) => {
        lines.push(...d.split('\n').filter((l) => l !== ''));
        notify();
      });
      const line = (prefix: string, ms: number): Promise<string | undefined> =>
        new Promise((resolve) => {
          const t = setTimeout(() => resolve(undefined), ms);
          const look = (): void => {
            const l = lines.find((x) => x.startsWith(prefix));
            if (l !== undefined) {
              clearTimeout(t);
              resolve(l);
            }
          };
          notify = look;
          look();
        });
      expect(await line('waiting', 5000)).toBe('waiting');
      await sleep(100); // its first look for dead holders is done
      waiter.kill('SIGSTOP');
      await stopped(waiter.pid!); // every thread, or its engine thread could still take the unit
      sem.release();
      h = await holder(n, 'sem');
      expect(sem.value).toBe(0);
      waiter.kill('SIGCONT');
      expect(await line('held', 400)).toBeUndefined(); // the new holder has it
      const t0 = performance.now();
      await kill(h);
      expect(await line('held', 1000)).toBe(`held ${h.pid}`);
      expect(performance.now() - t0).toBeLessThan(1000);
    } finally {
      h?.kill('SIGKILL');
      waiter.kill('SIGKILL');
      sem.close();
    }
  });

  it('a SIGSTOPped holder keeps its Lock for 5 s; killed, it is recovered', async () => {
    const n = name('stop');
    const lock = new Lock(n);
    const child = await holder(n, 'lock');
    try {
      child.kill('SIGSTOP');
      const t0 = performance.now();
      expect(await lock.acquire({ timeout: 5000 })).toBe(false);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(4900);
      expect(lock.acquireSync({ timeout: 300 })).toBe(false);
      const waiting = lock.hold({ timeout: 3000 });
      await kill(child);
      const held = await waiting;
      expect(held.recovered?.pid).toBe(child.pid);
      held.release();
    } finally {
      child.kill('SIGKILL');
      lock.close();
    }
  });

  it('a holder in another PID namespace (unshare --pid) is not mistaken for dead, and is recovered when it dies', async () => {
    if (!IS_ROOT) return; // unshare --pid needs root here
    const n = name('pidns');
    const lock = new Lock(n);
    // Inside the namespace the holder is pid 1: a pid check here would see our own init, or nothing.
    const child = await holder(n, 'lock', ['unshare', '--pid', '--fork', '--kill-child']);
    try {
      expect(await lock.acquire({ timeout: 700 })).toBe(false);
      const waiting = lock.hold({ timeout: 3000 });
      const t0 = performance.now();
      await kill(child);
      const held = await waiting;
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(held.recovered?.pid).toBe(1);
      held.release();
    } finally {
      child.kill('SIGKILL');
      lock.close();
    }
  });

  it('a worker_thread terminated while holding gives its unit back', async () => {
    const n = name('worker');
    const lock = new Lock(n);
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))}).then(async ({ Lock }) => {
        const l = (globalThis.l = new Lock(workerData, { create: false }));
        await l.acquire();
        parentPort.postMessage('held');
        setInterval(() => {}, 1000); // (a worker that ends by itself gives them back too)
      });`;
    const w = new Worker(code, { eval: true, workerData: n });
    try {
      await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      expect(lock.tryAcquire()).toBe(false);
      const waiting = lock.hold({ timeout: 3000 });
      await w.terminate();
      const held = await waiting;
      expect(held.recovered?.pid).toBe(process.pid);
      held.release();
      expect(lock.value).toBe(1);
    } finally {
      await w.terminate();
      lock.close();
    }
  });

  it('a handle closed while holding gives its unit back; token increases across holders', () => {
    const n = name('closed');
    const a = new Lock(n);
    const b = new Lock(n);
    const h1 = a.holdSync();
    expect(typeof h1.token).toBe('bigint');
    a.close();
    const h2 = b.holdSync({ timeout: 1000 });
    expect(h2.recovered?.pid).toBe(process.pid);
    expect(h2.token! > h1.token!).toBe(true);
    h2.release();
    const h3 = b.holdSync();
    expect(h3.recovered).toBeUndefined();
    expect(h3.token).toBe(h2.token! + 1n);
    h3.release();
    b.close();
  });

  it('the fencing token carries into its high word (header words 10-11) and keeps increasing', () => {
    const n = name('carry');
    const lock = new Lock(n);
    // token lo = 0xfffffffe, hi = 7 (bytes 40-47, little-endian), as another process would leave them
    const fd = openSync(`/dev/shm/pipc.${n.replace(/^\//, '')}.sem`, 'r+');
    writeSync(fd, Buffer.from([0xfe, 0xff, 0xff, 0xff, 7, 0, 0, 0]), 0, 8, 40);
    closeSync(fd);
    const tokens: Array<bigint | undefined> = [];
    for (let i = 0; i < 3; i++) {
      const held = lock.holdSync({ timeout: 0 });
      tokens.push(held.token);
      held.release();
    }
    expect(tokens).toEqual([(7n << 32n) | 0xffffffffn, 8n << 32n, (8n << 32n) | 1n]);
    lock.close();
  });
});

describe('one name, one object', () => {
  it('opening a name as the other kind is an IPCError naming the kind that is there', () => {
    const n = name('kind');
    const r = new Semaphore(n);
    expect(() => new Semaphore(n, { robust: false })).toThrow(
      expect.objectContaining({ name: 'IPCError', code: 'EEXIST', message: expect.stringContaining('a crash-safe semaphore (robust: true)') }),
    );
    r.close();
    Semaphore.unlink(n);
    const p = new Semaphore(n, { robust: false });
    expect(() => new Lock(n)).toThrow(expect.objectContaining({ code: 'EEXIST', message: expect.stringContaining('a plain POSIX semaphore (robust: false)') }));
    expect(() => new Semaphore(n, { create: false })).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    p.close();
  });

  it('a posix_ipc-made semaphore of value 3 opened as a Lock is an error at open, not lost units later', async () => {
    const n = name('py3');
    expectOk(await runPython('sync/sem_ctypes.py', ['create', n, '3']));
    expect(() => new Lock(n)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(() => new Lock(n, { robust: false })).toThrow(
      expect.objectContaining({ name: 'IPCError', code: 'EINVAL', message: expect.stringContaining('has value 3, more than the bound 1') }),
    );
    const s = new Semaphore(n, { robust: false });
    expect(s.value).toBe(3);
    s.close();
  });

  it('a crash-safe object keeps its bound: a Lock or a different maxValue on it is an error', () => {
    const n = name('bound');
    const b = new BoundedSemaphore(n, { initialValue: 3 });
    expect(() => new Lock(n)).toThrow(expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('bounded at 3') }));
    expect(() => new BoundedSemaphore(n, { maxValue: 2 })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    const same = new BoundedSemaphore(n, { maxValue: 3 });
    const adopted = new BoundedSemaphore(n); // no bound given: the stored one
    expect(adopted.maxValue).toBe(3);
    adopted.close();
    const plain = new Semaphore(n); // opens it, and the bound still holds
    expect(() => plain.release()).toThrow(expect.objectContaining({ code: 'ERR_IPC_OVER_RELEASE' }));
    expect(plain.value).toBe(3);
    same.close();
    plain.close();
    b.close();
  });

  it('release(n) past SEM_VALUE_MAX changes nothing, for both kinds', () => {
    for (const robust of [true, false]) {
      const s = new Semaphore(name('max'), { initialValue: SEM_VALUE_MAX - 10, robust });
      expect(() => s.release(11)).toThrow(expect.objectContaining({ code: 'EOVERFLOW' }));
      expect(s.value).toBe(SEM_VALUE_MAX - 10);
      s.release(10);
      expect(s.value).toBe(SEM_VALUE_MAX);
      s.close();
    }
  });

  it('unlink() removes every part; Semaphore.unlink removes either kind', () => {
    const n = name('unlink');
    const s = new Semaphore(n);
    s.unlink();
    expect(() => Semaphore.unlink(n)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    s.close();
    new Semaphore(n, { robust: false }).close();
    Semaphore.unlink(n);
    expect(() => new Semaphore(n, { create: false, robust: false })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('a bad file at the name is an IPCError, never a crash', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pipc-'));
    const cases: Array<[string, () => void]> = [
      ['short', () => writeFileSync(`/dev/shm/pipc.${n('short')}.sem`, 'x'.repeat(100))],
      ['zeros', () => writeFileSync(`/dev/shm/pipc.${n('zeros')}.sem`, Buffer.alloc(256 + 512 * 128))],
      ['dir', () => mkdirSync(`/dev/shm/pipc.${n('dir')}.sem`)],
      ['link', () => symlinkSync(join(dir, 'target'), `/dev/shm/pipc.${n('link')}.sem`)],
    ];
    const names = new Map<string, string>();
    function n(tag: string): string {
      if (!names.has(tag)) names.set(tag, name(tag));
      return names.get(tag)!;
    }
    try {
      writeFileSync(join(dir, 'target'), Buffer.alloc(256 + 512 * 128));
      for (const [tag, make] of cases) {
        make();
        let err: unknown;
        try {
          new Semaphore(n(tag)).close();
        } catch (e) {
          err = e;
        }
        expect(err, tag).toBeInstanceOf(IPCError);
        expect((err as IPCError).code, tag).toMatch(/^(EINVAL|EISDIR|ELOOP)$/);
      }
    } finally {
      for (const tag of names.keys()) rmSync(`/dev/shm/pipc.${names.get(tag)}.sem`, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Largest number of intervals open at once; killed children's intervals end at their kill time. */
function maxInside(events: Array<[bigint, number]>): number {
  events.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  let inside = 0;
  let max = 0;
  for (const [, d] of events) {
    inside += d;
    max = Math.max(max, inside);
  }
  return max;
}

interface ChaosResult {
  events: Array<[bigint, number]>;
  reported: number[];
  kills: number;
}

/**
 * Runs `procs` children of `mode` for `ms` while SIGKILLing a random one every
 * 50 ms (a new one replaces it; only children past start-up are killed, so
 * that a loaded machine still runs critical sections). A child's "enter" opens an interval that its
 * "exit" closes, or, if it is killed inside, the instant just before the kill:
 * a subset of the time it really held the unit, so the overlap count can only
 * be under-estimated.
 */
async function chaos(mode: string, args: string[], procs: number, ms: number): Promise<ChaosResult> {
  const events: Array<[bigint, number]> = [];
  const reported: number[] = [];
  const live = new Set<ChildProcess>();
  let kills = 0;
  const exits: Promise<void>[] = [];
  function start(): void {
    const child = spawn(process.execPath, [FIXTURE, mode, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let open = false;
    let rest = '';
    const state = { child, killedAt: 0n, open: () => open, ready: false };
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const lines = (rest + d).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        const [kind, v] = line.split(' ');
        if (kind === 'enter') {
          events.push([BigInt(v!), +1]);
          open = true;
        } else if (kind === 'exit') {
          events.push([BigInt(v!), -1]);
          open = false;
        } else if (kind === 'done') reported.push(Number(v));
        else if (kind === 'ready') state.ready = true;
      }
    });
    exits.push(
      new Promise<void>((resolve) => {
        child.once('close', () => {
          if (open) events.push([state.killedAt, -1]);
          resolve();
        });
      }),
    );
    (child as ChildProcess & { state?: typeof state }).state = state;
    live.add(child);
  }
  for (let i = 0; i < procs; i++) start();
  const end = performance.now() + ms;
  while (performance.now() < end) {
    await sleep(50);
    const all = [...live].filter((c) => (c as ChildProcess & { state: { ready: boolean } }).state.ready);
    if (all.length === 0) continue;
    const victim = all[Math.floor(Math.random() * all.length)]!;
    live.delete(victim);
    (victim as ChildProcess & { state: { killedAt: bigint } }).state.killedAt = process.hrtime.bigint();
    victim.kill('SIGKILL');
    kills++;
    start();
  }
  for (const child of live) {
    (child as ChildProcess & { state: { killedAt: bigint } }).state.killedAt = process.hrtime.bigint();
    child.kill('SIGKILL');
  }
  await Promise.all(exits);
  return { events, reported, kills };
}

describe('chaos: SIGKILL at any instant loses or creates nothing', () => {
  it('8 processes increment a file under a Lock while one is killed every 50 ms for 10 s', async () => {
    const n = name('chaos-lock');
    const dir = mkdtempSync(join(tmpdir(), 'pipc-'));
    const file = join(dir, 'log');
    writeFileSync(file, '');
    const lock = new Lock(n);
    try {
      const { events, reported, kills } = await chaos('chaos-lock', [n, file], 8, 10_000);
      // The log is the counter: values 1..K, each appended in one write by a
      // holder that read K - 1 (a completed critical section is one whose
      // append happened). Two holders at once would append a value twice.
      const values = readFileSync(file, 'latin1').split('\n').filter(Boolean).map((l) => Number(l.trim()));
      // (progress floors only: 20 node start-ups a second load two cores fully)
      const summary = `${values.length} sections, ${reported.length} reported, ${kills} kills`;
      expect(values.length, summary).toBeGreaterThan(5);
      const wrong = values.findIndex((v, i) => v !== i + 1);
      expect(wrong, `${summary}: record ${wrong} is ${values[wrong]}`).toBe(-1);
      // Every reported value is in the log; only killed children's last sections go unreported.
      const inLog = new Set(values);
      expect(reported.every((v) => inLog.has(v)), summary).toBe(true);
      expect(new Set(reported).size, summary).toBe(reported.length);
      expect(values.length - reported.length, summary).toBeLessThanOrEqual(kills + 8);
      expect(maxInside(events), summary).toBe(1);
      expect(kills, summary).toBeGreaterThan(10);
      // never deadlocked: the last holder's unit comes back
      expect(await lock.acquire({ timeout: 3000 }), summary).toBe(true);
      lock.release();
      expect(lock.value).toBe(1);
    } finally {
      lock.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 40_000);

  it('the same with Semaphore(3): never more than 3 inside, and all 3 units survive', async () => {
    const n = name('chaos-sem');
    const sem = new Semaphore(n, { initialValue: 3 });
    try {
      const { events, kills } = await chaos('chaos-sem', [n], 8, 10_000);
      const summary = `${events.length / 2} sections, ${kills} kills`;
      expect(events.length, summary).toBeGreaterThan(10);
      expect(kills, summary).toBeGreaterThan(10);
      expect(maxInside(events), summary).toBeLessThanOrEqual(3);
      for (let i = 0; i < 3; i++) expect(await sem.acquire({ timeout: 3000 }), summary).toBe(true);
      expect(sem.tryAcquire()).toBe(false);
      sem.release(3);
      expect(sem.value).toBe(3);
    } finally {
      sem.close();
    }
  }, 40_000);
});
