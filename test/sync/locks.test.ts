// Web Locks across processes (lib/sync/locks.ts): shared and exclusive locks
// held by separate node processes, the spec's queue order, ifAvailable,
// abort, steal, query() with other processes' pids, recovery from SIGKILL of
// exclusive and shared holders, a chaos test, and hostile files at the name.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IPCError, locks, Semaphore } from '../../lib/index.js';
import { lockSegmentPath } from '../../lib/core/names.js';
import { expectOk, FIXTURES, namesRemovedAfterEach, ROOT, run, sleep } from '../helpers/index.js';
import { join } from 'node:path';

const removeLockFile = (n: string): void => {
  rmSync(lockSegmentPath(n), { recursive: true, force: true });
};
const { name } = namesRemovedAfterEach('lk', removeLockFile);
const FIXTURE = join(FIXTURES, 'sync/locks.mjs');

interface Child {
  proc: ChildProcess;
  lines: string[];
  /** Resolves with the first line starting with `prefix` (already seen or to come). */
  line(prefix: string, timeout?: number): Promise<string>;
  release(): void;
  exited: Promise<void>;
}

function child(args: string[]): Child {
  const proc = spawn(process.execPath, [FIXTURE, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let rest = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const parts = (rest + d).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
    waiters.splice(0).forEach((w) => w());
  });
  const exited = new Promise<void>((r) => proc.once('close', () => r()));
  return {
    proc,
    lines,
    exited,
    line: (prefix, timeout = 10_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${prefix}" line; got ${JSON.stringify(lines)}`)), timeout);
        const look = (): void => {
          const found = lines.find((l) => l.startsWith(prefix));
          if (found !== undefined) {
            clearTimeout(timer);
            resolve(found);
          } else waiters.push(look);
        };
        look();
      }),
    release: () => proc.stdin!.write('release\n'),
  };
}

async function kill(c: Child): Promise<void> {
  c.proc.kill('SIGKILL');
  await c.exited;
}

async function holder(n: string, mode: 'shared' | 'exclusive'): Promise<Child> {
  const c = child(['hold', n, mode]);
  await c.line('held');
  return c;
}

describe('locks.request across processes', () => {
  it('many shared holders at once, an exclusive one alone, in the order requested', async () => {
    const n = name('rw');
    const readers = await Promise.all([holder(n, 'shared'), holder(n, 'shared'), holder(n, 'shared')]);
    const snap = await locks.query();
    const held = snap.held.filter((h) => h.name === n);
    expect(held.map((h) => h.pid).sort()).toEqual(readers.map((r) => r.proc.pid).sort());
    expect(held.every((h) => h.mode === 'shared' && h.clientId === String(h.pid))).toBe(true);
    // an exclusive request waits behind them, and a later shared one waits behind it (spec queue)
    const writer = child(['hold', n, 'exclusive']);
    await writer.line('requested');
    await sleep(100);
    expect(writer.lines.some((l) => l.startsWith('held'))).toBe(false);
    const later = await locks.request(n, { mode: 'shared', ifAvailable: true }, (l) => l);
    expect(later).toBeNull();
    const order: string[] = [];
    const mine = locks.request(n, { mode: 'shared' }, () => order.push('reader after writer'));
    const q = await locks.query();
    expect(q.pending.filter((p) => p.name === n).map((p) => [p.mode, p.pid])).toEqual([
      ['exclusive', writer.proc.pid],
      ['shared', process.pid],
    ]);
    for (const r of readers) r.release();
    await writer.line('held');
    order.push('writer');
    await sleep(100);
    expect(order).toEqual(['writer']);
    writer.release();
    await mine;
    expect(order).toEqual(['writer', 'reader after writer']);
    await Promise.all([...readers.map((r) => r.exited), writer.exited]);
  }, 30_000);

  it('queue order across processes: our shared, their shared, our exclusive -> the two shared together, then ours', async () => {
    const n = name('order');
    const x = await holder(n, 'exclusive');
    const events: string[] = [];
    let releaseShared!: () => void;
    const ours = locks.request(n, { mode: 'shared' }, async () => {
      events.push('our shared');
      await new Promise<void>((r) => (releaseShared = r));
    });
    const d = child(['hold', n, 'shared']);
    await d.line('requested');
    const ourX = locks.request(n, () => events.push('our exclusive'));
    x.release();
    await d.line('held'); // granted with our shared request, before our exclusive queued behind it
    events.push('their shared');
    // Both shared requests are granted at the release; which process's
    // callback runs first is the scheduler's choice (our wake-up may come
    // after the child's line).
    for (let i = 0; i < 100 && !events.includes('our shared'); i++) await sleep(20);
    expect([...events].sort()).toEqual(['our shared', 'their shared']);
    releaseShared();
    await ours;
    await sleep(100);
    expect([...events].sort()).toEqual(['our shared', 'their shared']); // their shared lock still holds our exclusive off
    d.release();
    await ourX;
    expect(events.slice(2)).toEqual(['our exclusive']);
    await Promise.all([x.exited, d.exited]);
  }, 20_000);

  it('ifAvailable: null while another process holds it exclusively, the lock once it is free', async () => {
    const n = name('ifav');
    const x = await holder(n, 'exclusive');
    expect(await locks.request(n, { ifAvailable: true }, (l) => l)).toBeNull();
    expect(await locks.request(n, { mode: 'shared', ifAvailable: true }, (l) => l)).toBeNull();
    const other = child(['hold', n, 'shared', 'ifAvailable']);
    await other.line('null');
    x.release();
    await x.exited;
    const got = await locks.request(n, { ifAvailable: true }, (l) => l && { name: l.name, mode: l.mode });
    expect(got).toEqual({ name: n, mode: 'exclusive' });
    other.proc.kill();
    await other.exited;
  }, 20_000);

  it('abort while waiting: AbortError, the request leaves the queue, others go on', async () => {
    const n = name('abort');
    const x = await holder(n, 'exclusive');
    const ac = new AbortController();
    const p = locks.request(n, { signal: ac.signal }, () => 'granted');
    const w = child(['hold', n, 'exclusive']);
    await w.line('requested');
    expect((await locks.query()).pending.filter((e) => e.name === n).map((e) => e.pid)).toEqual([process.pid, w.proc.pid]);
    ac.abort(new Error('changed my mind'));
    const err = await p.catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'AbortError', cause: { message: 'changed my mind' } });
    expect((await locks.query()).pending.filter((e) => e.name === n).map((e) => e.pid)).toEqual([w.proc.pid]);
    x.release();
    await w.line('held'); // the aborted request was skipped, not granted
    w.release();
    await Promise.all([x.exited, w.exited]);
    // already aborted: rejected at once
    await expect(locks.request(n, { signal: AbortSignal.abort() }, () => 1)).rejects.toMatchObject({ name: 'AbortError' });
  }, 20_000);

  it('steal takes the lock from another process; its release is refused, our lock stays', async () => {
    const n = name('steal');
    const x = await holder(n, 'exclusive');
    const r = await locks.request(n, { steal: true }, async (l) => {
      const q = await locks.query();
      return [l?.mode, q.held.filter((h) => h.name === n).map((h) => h.pid)];
    });
    expect(r).toEqual(['exclusive', [process.pid]]);
    // its request() rejected with AbortError at the steal, before any release
    expect(await x.line('rejected')).toBe('rejected AbortError');
    await x.exited;
    expect(x.proc.exitCode).toBe(3);
    expect(await locks.request(n, { ifAvailable: true }, (l) => l?.mode)).toBe('exclusive');
  }, 20_000);

  it('a stolen holder\'s request() rejects with AbortError at the moment of the steal, in every robbed process', async () => {
    const n = name('steal-now');
    const victims = [child(['victim', n, 'shared']), child(['victim', n, 'shared'])];
    await Promise.all(victims.map((v) => v.line('held')));
    const seen = await locks.request(n, { steal: true }, async () => {
      const t0 = process.hrtime.bigint();
      // while we hold the stolen lock, and while the victims' callbacks still run
      const lines = await Promise.all(victims.map((v) => v.line('rejected', 5_000)));
      const dt = lines.map((l) => Number(BigInt(l.split(' ')[2]!) - t0) / 1e6);
      return { lines: lines.map((l) => l.split(' ')[1]), dt, ended: victims.map((v) => v.lines.includes('callback ended')) };
    });
    expect(seen.lines).toEqual(['AbortError', 'AbortError']);
    expect(seen.ended).toEqual([false, false]);
    for (const d of seen.dt) expect(d).toBeLessThan(500);
    for (const v of victims) v.release();
    await Promise.all(victims.map((v) => v.exited));
    for (const v of victims) {
      expect(v.proc.exitCode).toBe(0);
      expect(v.lines.filter((l) => l.startsWith('rejected') || l.startsWith('resolved'))).toHaveLength(1);
      expect(v.lines).toContain('callback ended');
    }
    // nothing is held any more: the victims' late releases changed nothing
    expect((await locks.query()).held.filter((h) => h.name === n)).toEqual([]);
  }, 20_000);

  it('a lock held while the callback never settles does not keep the process alive (the steal watch is unref\'d)', async () => {
    const n = name('unref');
    const code = `import { locks } from ${JSON.stringify(join(ROOT, 'dist/index.js'))};
      locks.request(${JSON.stringify(n)}, () => new Promise(() => {})); setTimeout(() => console.log('tick'), 50);`;
    const r = await run(process.execPath, ['--input-type=module', '-e', code], { timeoutMs: 10_000 });
    expect(r.stdout.trim()).toBe('tick');
    expect(r.code).toBe(0);
  }, 20_000);

  it('spec errors: NotSupportedError for "-" names and bad option mixes, TypeError for bad arguments', async () => {
    const n = name('err');
    const ns = { name: 'NotSupportedError', code: 'ERR_IPC_NOT_SUPPORTED' };
    await expect(locks.request('-x', () => 1)).rejects.toMatchObject(ns);
    await expect(locks.request(n, { steal: true, ifAvailable: true }, () => 1)).rejects.toMatchObject(ns);
    await expect(locks.request(n, { steal: true, mode: 'shared' }, () => 1)).rejects.toMatchObject(ns);
    await expect(locks.request(n, { ifAvailable: true, signal: new AbortController().signal }, () => 1)).rejects.toMatchObject(ns);
    await expect(locks.request(n, { steal: true, signal: new AbortController().signal }, () => 1)).rejects.toBeInstanceOf(TypeError);
    await expect(locks.request(n, {} as never)).rejects.toBeInstanceOf(TypeError);
    await expect(locks.request(n, { mode: 'read' as never }, () => 1)).rejects.toBeInstanceOf(TypeError);
    await expect(locks.request(n, { modes: 'shared' } as never, () => 1)).rejects.toBeInstanceOf(TypeError);
    await expect(locks.request(42 as never, () => 1)).rejects.toBeInstanceOf(TypeError);
    await expect(locks.request('x'.repeat(300), () => 1)).rejects.toBeInstanceOf(RangeError);
    // the callback's result and rejection pass through; the lock is free afterwards
    expect(await locks.request(n, async () => 7)).toBe(7);
    await expect(locks.request(n, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(locks.request(n, () => { throw new Error('sync boom'); })).rejects.toThrow('sync boom');
    expect(await locks.request(n, { ifAvailable: true }, (l) => l?.name)).toBe(n);
    // any string is a name: "/" and "%" are encoded in the file name
    const odd = `${n}/a%b`;
    try {
      expect(await locks.request(odd, (l) => l?.name)).toBe(odd);
      expect(existsSync(lockSegmentPath(odd))).toBe(true);
      expect(lockSegmentPath(odd).endsWith('/a%25b.lock')).toBe(false);
      expect(lockSegmentPath(odd)).toContain('%2Fa%25b.lock');
    } finally {
      removeLockFile(odd);
    }
  });
});

describe('a dead holder loses its lock within a second', () => {
  it('SIGKILL of an exclusive holder: the waiting request is granted within 1 s', async () => {
    const n = name('killx');
    const x = await holder(n, 'exclusive');
    const p = locks.request(n, () => performance.now());
    await sleep(50);
    const t0 = performance.now();
    await kill(x);
    const t1 = await p;
    expect(t1 - t0).toBeLessThan(1000);
    expect((await locks.query()).held.filter((h) => h.name === n)).toEqual([]);
  }, 20_000);

  it('SIGKILL of shared holders: counted per holder, the writer gets in when the last one dies', async () => {
    const n = name('kills');
    const a = await holder(n, 'shared');
    const b = await holder(n, 'shared');
    let granted = 0;
    const p = locks.request(n, () => {
      granted = performance.now();
    });
    await sleep(50);
    await kill(a);
    await sleep(700); // a's lock is gone, b's stays
    expect(granted).toBe(0);
    expect((await locks.query()).held.filter((h) => h.name === n).map((h) => h.pid)).toEqual([b.proc.pid]);
    const t0 = performance.now();
    await kill(b);
    await p;
    expect(granted - t0).toBeLessThan(1000);
  }, 20_000);

  it('a SIGKILLed waiter leaves the queue: the request behind it is granted', async () => {
    const n = name('killw');
    const x = await holder(n, 'exclusive');
    const w = child(['hold', n, 'exclusive']);
    await w.line('requested');
    const p = locks.request(n, { mode: 'shared' }, () => 'mine');
    await kill(w);
    x.release();
    await x.exited;
    expect(await p).toBe('mine');
  }, 20_000);
});

/** Intervals per mode from the rw fixtures' logs: at no instant a writer with anyone else. */
function overlaps(events: Array<[bigint, number, 'shared' | 'exclusive']>): { maxReaders: number; writerWithOthers: number } {
  events.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  let readers = 0;
  let writers = 0;
  let maxReaders = 0;
  let bad = 0;
  for (const [, d, m] of events) {
    if (m === 'shared') readers += d;
    else writers += d;
    if (writers > 1 || (writers === 1 && readers > 0)) bad++;
    maxReaders = Math.max(maxReaders, readers);
  }
  return { maxReaders, writerWithOthers: bad };
}

describe('chaos: readers and writers SIGKILLed at random', () => {
  it('8 s: never a writer with anyone else inside, readers together, no deadlock', async () => {
    const n = name('chaos');
    const events: Array<[bigint, number, 'shared' | 'exclusive']> = [];
    const live = new Set<Child & { open?: 'shared' | 'exclusive'; ready?: boolean }>();
    const closing: Promise<void>[] = [];
    let kills = 0;
    let sections = 0;
    const start = (): void => {
      const c: Child & { open?: 'shared' | 'exclusive'; ready?: boolean } = child(['rw', n, '0', '4']);
      c.proc.stdout!.on('data', () => {
        for (const line of c.lines.splice(0)) {
          const [kind, m, t] = line.split(' ') as [string, 'shared' | 'exclusive', string];
          if (kind === 'ready') c.ready = true;
          else if (kind === 'enter') {
            events.push([BigInt(t), +1, m]);
            c.open = m;
          } else if (kind === 'exit') {
            events.push([BigInt(t), -1, m]);
            c.open = undefined;
            sections++;
          }
        }
      });
      live.add(c);
      closing.push(c.exited);
    };
    for (let i = 0; i < 6; i++) start();
    const end = performance.now() + 8000;
    while (performance.now() < end) {
      await sleep(150);
      const ready = [...live].filter((c) => c.ready);
      if (ready.length === 0) continue;
      const victim = ready[Math.floor(Math.random() * ready.length)]!;
      live.delete(victim);
      const at = process.hrtime.bigint();
      victim.proc.kill('SIGKILL');
      await victim.exited;
      if (victim.open !== undefined) events.push([at, -1, victim.open]);
      kills++;
      start();
    }
    for (const c of live) {
      const at = process.hrtime.bigint();
      c.proc.kill('SIGKILL');
      await c.exited;
      if (c.open !== undefined) events.push([at, -1, c.open]);
    }
    await Promise.all(closing);
    const { maxReaders, writerWithOthers } = overlaps(events);
    const summary = `${sections} sections, ${kills} kills, max ${maxReaders} readers`;
    console.log(`chaos: ${summary}`);
    // (progress floors only: node start-ups load two cores fully)
    expect(kills, summary).toBeGreaterThan(10);
    expect(sections, summary).toBeGreaterThan(50);
    expect(writerWithOthers, summary).toBe(0);
    expect(maxReaders, summary).toBeGreaterThan(1);
    // nothing left held or waiting by the dead: an exclusive lock comes within a second
    const t0 = performance.now();
    expect(await locks.request(n, () => performance.now() - t0)).toBeLessThan(1000);
    expect((await locks.query()).pending.filter((p) => p.name === n)).toEqual([]);
  }, 60_000);
});

describe('hostile files at a lock name', () => {
  const cases: Array<[string, (path: string) => void]> = [
    ['a directory', (p) => mkdirSync(p)],
    ['a short file', (p) => writeFileSync(p, 'x')],
    ['a file of the right size and no header', (p) => writeFileSync(p, Buffer.alloc(65_792))],
    ['a symlink', (p) => symlinkSync('/etc/passwd', p)],
  ];
  for (const [what, make] of cases) {
    it(`${what}: IPCError, nothing created or followed`, async () => {
      const n = name('bad');
      const path = lockSegmentPath(n);
      make(path);
      const err = await locks.request(n, () => 1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IPCError);
      expect((err as IPCError).code).toMatch(/^(EINVAL|ELOOP|EISDIR)$/);
      // query skips it
      await expect(locks.query()).resolves.toBeDefined();
    });
  }

  it("a crash-safe semaphore's segment at the lock's file: EINVAL (not a lock)", async () => {
    const n = name('semkind');
    const sem = new Semaphore(`${n}-s`);
    try {
      writeFileSync(lockSegmentPath(n), readFileSync(`/dev/shm/pipc.${n}-s.sem`));
    } finally {
      sem.close();
      Semaphore.unlink(`${n}-s`);
    }
    await expect(locks.request(n, () => 1)).rejects.toMatchObject({ code: 'EINVAL' });
  });
});

describe('the command-line tool sees lock segments', () => {
  it('ls --json: kind lock with holders and waiting requests; rm removes it', async () => {
    const n = name('cli');
    const cli = join(ROOT, 'dist/cli/main.js');
    const w = child(['hold', n, 'shared']);
    try {
      await locks.request(n, async () => {
        await w.line('requested');
        const r = expectOk(await run(process.execPath, [cli, 'ls', n, '--json'], { timeoutMs: 50_000 }));
        const entries = (JSON.parse(r.stdout) as { entries: Array<{ kind: string; name: string; state: Record<string, unknown> }> }).entries;
        expect(entries.find((e) => e.name === n)).toMatchObject({ kind: 'lock', state: { exclusive: 1, pending: 1, holders: [process.pid] } });
      });
      await w.line('held');
      w.release();
      await w.exited;
    } finally {
      w.proc.kill('SIGKILL');
      await w.exited;
    }
    expectOk(await run(process.execPath, [cli, 'rm', n], { timeoutMs: 50_000 }));
    expect(existsSync(lockSegmentPath(n))).toBe(false);
  }, 120_000);
});
