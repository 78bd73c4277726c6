// Event, Barrier, Condition and RLock across languages through the pipc
// Python module (python/pipc/sync.py): each made by Node and opened by Python
// and the reverse, mixed Node + Python parties with exact outcomes, and
// SIGKILLed Python (and Node) processes recovered by the other language.
// python3 children run test/python/sync_peer.py; Node children
// test/fixtures/sync/sync11.mjs. A missing python3 fails these tests.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { Barrier, BrokenBarrierError, Condition, Event, IPCError, RLock } from '../../lib/index.js';
import { namesRemovedAfterEach, PYTHON, ROOT, sleep } from '../helpers/index.js';
import { child, lineChild, type Child } from '../sync/children.js';

/** Removes whatever of the four kinds a test left at the name (a name already removed is fine). */
function removeAll(n: string): void {
  for (const unlink of [Event.unlink, Barrier.unlink, Condition.unlink, RLock.unlink]) {
    try {
      unlink(n);
    } catch {
      // not there
    }
  }
}
const { name } = namesRemovedAfterEach('pyso', removeAll);
const PEER = join(ROOT, 'test/python/sync_peer.py');

const kids: Child[] = [];
afterEach(async () => {
  await Promise.all(kids.splice(0).map((k) => k.kill()));
});

/** A python3 sync_peer.py child. */
function py(mode: string, ...args: Array<string | number>): Child {
  const c = lineChild(PYTHON, [PEER, mode, ...args.map(String)], `python ${mode}`);
  kids.push(c);
  return c;
}

/** A node sync11.mjs child. */
function node(mode: string, ...args: Array<string | number>): Child {
  const c = child(mode, ...args);
  kids.push(c);
  return c;
}

async function ready(...cs: Child[]): Promise<void> {
  for (const c of cs) expect(await c.line()).toBe('ready');
}

async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!pred() && performance.now() < end) await sleep(10);
  expect(pred()).toBe(true);
}

/** The next line of `c` if one comes within `ms`, else undefined (the line is not lost). */
async function lineWithin(c: Child, ms: number): Promise<string | undefined> {
  const before = c.seen().length;
  const end = performance.now() + ms;
  while (c.seen().length === before && performance.now() < end) await sleep(10);
  return c.seen().length > before ? c.line() : undefined;
}

async function made(kind: string, n: string, ...extra: number[]): Promise<void> {
  const c = py('make', kind, n, ...extra);
  expect(await c.line()).toBe('made');
  expect((await c.exited).code).toBe(0);
}

/** "done i,i,i actions" of barrier-rounds (both languages print it). */
function rounds(line: string): { idx: number[]; actions: number } {
  const [word, list, actions] = line.split(' ');
  expect(word).toBe('done');
  return { idx: list!.split(',').map(Number), actions: Number(actions) };
}

describe('the segment layout is the same bytes from either language', () => {
  it('Python creates an Event, a Barrier of 5 and a Condition: Node reads the documented header words', async () => {
    const n = name();
    await made('event', n);
    await made('barrier', n, 5);
    await made('condition', n);
    for (const [suffix, kind] of [
      ['event', 2],
      ['barrier', 3],
      ['cond', 4],
    ] as const) {
      const b = readFileSync(`/dev/shm/pipc.${n}.${suffix}`);
      expect(b.length).toBe(16640);
      const w = (i: number) => b.readInt32LE(4 * i);
      expect([w(0), w(1), w(2), w(3), w(4), w(5)]).toEqual([0x43504950, 1, kind, 0, 256, 256]);
    }
    expect(readFileSync(`/dev/shm/pipc.${n}.barrier`).readInt32LE(4 * 7)).toBe(5);
    const b = new Barrier(n, { create: false });
    expect(b.parties).toBe(5);
    expect(() => new Barrier(n, { parties: 4 })).toThrow(/Barrier of 5 parties, not 4/);
    b.close();
    // A Node-made Barrier of 3 refuses a Python open with 4 (IPCError EINVAL)
    const m = name();
    new Barrier(m, { parties: 3 }).close();
    const c = py('barrier-rounds', m, 4, 1);
    const r = await c.exited;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/EINVAL.*|Barrier of 3 parties, not 4/);
  });
});

describe('Event, Node and Python', () => {
  it('Node creates; set from Node wakes 2 Python waiters and a Node one', async () => {
    const n = name();
    const ev = new Event(n);
    const ws = [py('event-wait', n, 10), py('event-wait', n, 10), node('event-wait', n, 10000)];
    await ready(...ws);
    await sleep(100);
    for (const w of ws) expect(w.seen()).toEqual(['ready']); // all still asleep
    ev.set();
    for (const w of ws) expect((await w.line()).split(' ')[0]).toBe('true');
    ev.close();
  });

  it('ping-pong with a Python process, 3000 round trips: no set lost or seen twice', async () => {
    const a = name();
    const b = name();
    const A = new Event(a);
    const B = new Event(b);
    const p = py('event-pong', a, b, 3000);
    await ready(p);
    let ok = 0;
    for (let i = 0; i < 3000; i++) {
      A.set();
      if (!(await B.wait({ timeout: 5000 }))) break;
      B.clear();
      ok++;
    }
    expect(ok).toBe(3000);
    expect(await p.line()).toBe('done 0');
    expect(A.isSet() || B.isSet()).toBe(false);
    A.close();
    B.close();
  }, 30_000);

  it('Python creates; set from Python wakes Node waiters (a child and this process), timeouts stay false', async () => {
    const n = name();
    await made('event', n);
    const ev = new Event(n, { create: false });
    expect(ev.isSet()).toBe(false);
    const nw = node('event-wait', n, 10000);
    await ready(nw);
    const here = ev.wait({ timeout: 10000 });
    const timed = ev.wait({ timeout: 50 });
    expect(await timed).toBe(false);
    const setter = py('event-set', n, 0.2);
    expect(await setter.line()).toBe('set');
    expect(await here).toBe(true);
    expect((await nw.line()).split(' ')[0]).toBe('true');
    expect(ev.isSet()).toBe(true);
    ev.clear();
    // a Python wait with timeout sees the Node clear
    const pw = py('event-wait', n, 0.2);
    await ready(pw);
    const [r, ms] = (await pw.line()).split(' ');
    expect(r).toBe('false');
    expect(Number(ms)).toBeGreaterThanOrEqual(190);
    ev.close();
  });
});

describe('Barrier, Node and Python', () => {
  for (const maker of ['node', 'python'] as const) {
    it(`${maker} creates; 2 Node + 2 Python parties x 200 rounds: indices 0..3 once each per round, 200 actions`, async () => {
      const n = name();
      if (maker === 'node') new Barrier(n, { parties: 4 }).close();
      else await made('barrier', n, 4);
      const ps = [
        node('barrier-rounds', n, 4, 200, 'async'),
        py('barrier-rounds', n, 4, 200),
        node('barrier-rounds', n, 4, 200, 'sync'),
        py('barrier-rounds', n, 4, 200),
      ];
      const done = await Promise.all(ps.map((p) => p.exited));
      const res = done.map((d) => {
        expect(d.code, d.stderr).toBe(0);
        return rounds(d.lines[1]!);
      });
      for (let r = 0; r < 200; r++) expect(res.map((x) => x.idx[r]!).sort()).toEqual([0, 1, 2, 3]);
      expect(res.reduce((s, x) => s + x.actions, 0)).toBe(200);
      // both languages ran actions (the last arrival varies; over 200 rounds each side completes some)
      expect(res[1]!.actions + res[3]!.actions).toBeGreaterThan(0);
      expect(res[0]!.actions + res[2]!.actions).toBeGreaterThan(0);
    }, 60_000);
  }

  it('Python threads sharing one handle are parties with Node ones: Barrier(4) = 2 Python threads + a Node child + this process', async () => {
    const n = name();
    const b = new Barrier(n, { parties: 4 });
    const p = py('barrier-threads', n, 2);
    await ready(p);
    await until(() => b.nWaiting === 2);
    await sleep(600); // past two dead-party scans by the Python threads and us: nobody takes them for dead
    expect(b.broken).toBe(false);
    const k = node('barrier-wait', n, 10000);
    await ready(k);
    const i = await b.wait({ timeout: 10_000 });
    const [word, j] = (await k.line()).split(' ');
    expect(word).toBe('index');
    const [w2, list] = (await p.line()).split(' ');
    expect(w2).toBe('indices');
    expect([i, Number(j), ...list!.split(',').map(Number)].sort()).toEqual([0, 1, 2, 3]);
    b.close();
  });

  it('a Python party SIGKILLed mid-wait breaks the Node barrier within 1 s (for a Python waiter too)', async () => {
    const n = name();
    const b = new Barrier(n, { parties: 4 });
    const victim = py('barrier-wait', n, -1);
    const other = py('barrier-wait', n, -1);
    await ready(victim, other);
    await until(() => b.nWaiting === 2);
    const mine = b.wait({ timeout: 10_000 }).then(
      () => 'released',
      (err: unknown) => (err instanceof BrokenBarrierError ? performance.now() : String(err)),
    );
    await until(() => b.nWaiting === 3);
    const t0 = performance.now();
    await victim.kill();
    const at = await mine;
    expect(typeof at).toBe('number');
    expect((at as number) - t0).toBeLessThan(1000);
    const [word, ms] = (await other.line()).split(' ');
    expect(word).toBe('broken');
    expect(Number(ms)).toBeGreaterThan(0);
    expect(b.broken).toBe(true);
    b.close();
  });

  it('a Node party SIGKILLed mid-wait breaks a Python-made barrier: the Python waiter raises within 1 s', async () => {
    const n = name();
    await made('barrier', n, 3);
    const victim = node('barrier-wait', n, -1);
    await ready(victim);
    const b = new Barrier(n, { create: false });
    await until(() => b.nWaiting === 1);
    const w = py('barrier-wait', n, 10);
    await ready(w);
    await until(() => b.nWaiting === 2);
    const t0 = performance.now();
    await victim.kill();
    const [word] = (await w.line()).split(' ');
    expect(word).toBe('broken');
    expect(performance.now() - t0).toBeLessThan(1000 + 300); // + python's output path
    b.close();
  });

  it('abort from Python breaks Node waiters; reset from Node breaks Python waiters and the barrier works again', async () => {
    const n = name();
    const b = new Barrier(n, { parties: 3 });
    const nw = node('barrier-wait', n, 10000);
    await ready(nw);
    await until(() => b.nWaiting === 1);
    const ab = py('barrier-abort', n);
    expect(await ab.line()).toBe('done');
    expect((await nw.line()).split(' ')[0]).toBe('broken');
    expect(b.broken).toBe(true);
    b.reset();
    const pw = py('barrier-wait', n, 10);
    await ready(pw);
    await until(() => b.nWaiting === 1);
    b.reset();
    expect((await pw.line()).split(' ')[0]).toBe('broken');
    expect(b.broken).toBe(false);
    const ws = [py('barrier-wait', n, 10), node('barrier-wait', n, 10000)];
    await ready(...ws);
    await until(() => b.nWaiting === 2);
    const i = await b.wait({ timeout: 5000 });
    const idx = [i];
    for (const w of ws) {
      const [word, k] = (await w.line()).split(' ');
      expect(word).toBe('index');
      idx.push(Number(k));
    }
    expect(idx.sort()).toEqual([0, 1, 2]);
    b.close();
  });
});

describe('Condition, Node and Python', () => {
  it('Node creates; notify() from Node wakes exactly one of two Python waiters (the older), then the other', async () => {
    const n = name();
    const c = new Condition(n);
    const a = py('cond-wait', n, -1);
    await ready(a);
    await until(() => c.nWaiting === 1);
    const b = py('cond-wait', n, -1);
    await ready(b);
    await until(() => c.nWaiting === 2);
    await c.acquire();
    expect(c.notify()).toBe(1);
    c.release();
    expect((await a.line()).split(' ').slice(0, 3)).toEqual(['woke', 'true', 'true']);
    expect(await lineWithin(b, 500)).toBeUndefined();
    expect(c.nWaiting).toBe(1);
    await c.acquire();
    expect(c.notify()).toBe(1);
    expect(c.notify()).toBe(0);
    c.release();
    expect((await b.line()).split(' ').slice(0, 3)).toEqual(['woke', 'true', 'true']);
    c.close();
  });

  it('Python creates; notify(1) from Python wakes exactly one of two Node waiters; notify_all the rest', async () => {
    const n = name();
    await made('condition', n);
    const c = new Condition(n, { create: false });
    onTestFinished(() => c.close());
    const ws: Child[] = [];
    for (const start of [() => node('cond-wait', n, -1), () => node('cond-wait', n, -1, 'sync'), () => py('cond-wait', n, -1)]) {
      const w = start();
      await ready(w);
      ws.push(w);
      await until(() => c.nWaiting === ws.length);
    }
    const one = py('cond-notify', n, 1);
    expect(await one.line()).toBe('notified 1');
    expect((await ws[0]!.line()).split(' ').slice(0, 3)).toEqual(['woke', 'true', 'true']);
    expect(await lineWithin(ws[1]!, 400)).toBeUndefined();
    expect(ws[2]!.seen()).toEqual(['ready']);
    const all = py('cond-notify', n, 'all');
    expect(await all.line()).toBe('notified 2');
    for (const w of ws.slice(1)) expect((await w.line()).split(' ').slice(0, 3)).toEqual(['woke', 'true', 'true']);
    c.close();
  });

  it('a Python waiter SIGKILLed is skipped: notify() reaches the live Node waiter behind it; timeouts cross', async () => {
    const n = name();
    const c = new Condition(n);
    const dead = py('cond-wait', n, -1);
    await ready(dead);
    await until(() => c.nWaiting === 1);
    const live = node('cond-wait', n, -1);
    await ready(live);
    await until(() => c.nWaiting === 2);
    await dead.kill();
    await c.acquire();
    expect(c.notify()).toBe(1);
    c.release();
    expect((await live.line()).split(' ').slice(0, 2)).toEqual(['woke', 'true']);
    const t = py('cond-wait', n, 0.2);
    await ready(t);
    const [w, r, owned, ms] = (await t.line()).split(' ');
    expect([w, r, owned]).toEqual(['woke', 'false', 'true']);
    expect(Number(ms)).toBeGreaterThanOrEqual(190);
    c.close();
  });

  it('wait_for in Python on a predicate Node changes, under the shared RLock', async () => {
    const n = name();
    const dir = mkdtempSync(join(tmpdir(), 'pipc-pycond-'));
    const file = join(dir, 'v');
    writeFileSync(file, '0');
    const c = new Condition(n);
    try {
      const w = py('cond-waitfor', n, file, '3', 10);
      await ready(w);
      for (let v = 1; v <= 3; v++) {
        await sleep(30);
        await c.acquire();
        writeFileSync(file, String(v));
        c.notifyAll();
        c.release();
      }
      expect((await w.line()).split(' ')[0]).toBe('true');
    } finally {
      c.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('RLock, Node and Python', () => {
  for (const maker of ['node', 'python'] as const) {
    it(`${maker} creates; 2 Node + 2 Python processes x 100 increments under the RLock (entered twice): 400`, async () => {
      const n = name();
      if (maker === 'node') new RLock(n).close();
      else await made('rlock', n);
      const dir = mkdtempSync(join(tmpdir(), 'pipc-pyrl-'));
      const file = join(dir, 'n');
      writeFileSync(file, '0');
      try {
        const ps = [
          node('rlock-count', n, file, 100),
          py('rlock-count', n, file, 100),
          node('rlock-count', n, file, 100),
          py('rlock-count', n, file, 100),
        ];
        const done = await Promise.all(ps.map((p) => p.exited));
        for (const d of done) {
          expect(d.code, d.stderr).toBe(0);
          expect(d.lines).toEqual(['ready', 'done']);
        }
        expect(Number(readFileSync(file, 'utf8'))).toBe(400);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 60_000);
  }

  it('chaos: Node and Python rlock-chaos workers SIGKILLed at random instants: values 1..K, no duplicate, no gap', async () => {
    const n = name();
    const dir = mkdtempSync(join(tmpdir(), 'pipc-pyrlchaos-'));
    const file = join(dir, 'log');
    const r = new RLock(n);
    const workers = new Set<Child>();
    const start = (lang: 'python' | 'node'): Child => {
      const c = lang === 'python' ? py('rlock-chaos', n, file) : node('rlock-chaos', n, file);
      workers.add(c);
      void c.exited.then(() => workers.delete(c));
      return c;
    };
    try {
      for (const lang of ['python', 'node', 'python', 'node'] as const) await start(lang).line();
      let kills = 0;
      const end = Date.now() + 6000;
      for (let i = 0; Date.now() < end; i++) {
        await sleep(100 + Math.random() * 200);
        const victim = [...workers][Math.floor(Math.random() * workers.size)];
        if (victim !== undefined) {
          await victim.kill();
          kills++;
        }
        start(i % 2 === 0 ? 'python' : 'node');
      }
      await Promise.all([...workers].map((w) => w.kill()));
      const values = readFileSync(file, 'latin1')
        .trim()
        .split('\n')
        .map((l) => Number(l.trim()));
      expect(kills).toBeGreaterThan(10);
      expect(values.length).toBeGreaterThan(20);
      expect(values).toEqual(values.map((_, k) => k + 1));
      // every dead owner's lock came back
      expect(await r.acquire({ timeout: 2000 })).toBe(true);
      r.release();
    } finally {
      r.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('a Python holder (depth 3) SIGKILLed gives the RLock to a Node waiter within 1 s, told the dead pid', async () => {
    const n = name();
    const dead: number[] = [];
    const r = new RLock(n, { onOwnerDead: (info) => dead.push(info.pid) });
    const h = py('rlock-hold', n, 3);
    expect(await h.line()).toBe('held 3');
    expect(r.locked()).toBe(true);
    expect(await r.acquire({ timeout: 200 })).toBe(false);
    // release by a non-owner: EPERM here, RuntimeError there
    expect(() => r.release()).toThrow(IPCError);
    const waiting = r.acquire({ timeout: 5000 });
    await sleep(50);
    const t0 = performance.now();
    await h.kill();
    expect(await waiting).toBe(true);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(dead).toEqual([h.proc.pid]);
    expect(r.count).toBe(1);
    const probe = py('rlock-probe', n);
    expect(await probe.line()).toBe('RuntimeError false true');
    r.release();
    expect(r.locked()).toBe(false);
    r.close();
  });

  it('a Node holder SIGKILLed gives the RLock to a Python waiter, told the dead pid', async () => {
    const n = name();
    await made('rlock', n);
    const h = node('rlock-hold', n, 2);
    expect(await h.line()).toBe('held 2');
    const probe = py('rlock-probe', n);
    expect(await probe.line()).toBe('RuntimeError false true');
    const w = py('rlock-acquire', n, 5);
    await sleep(300);
    await h.kill();
    const got = JSON.parse(await w.line()) as { ok: boolean; recovered: number | null; ms: number };
    expect(got.ok).toBe(true);
    expect(got.recovered).toBe(h.proc.pid);
    expect(got.ms).toBeLessThan(300 + 1000);
    const r = new RLock(n, { create: false });
    expect(r.locked()).toBe(false);
    r.close();
  });
});
