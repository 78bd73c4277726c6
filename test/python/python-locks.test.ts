// Web Locks across languages through the pipc Python module: Node and Python
// requests for one name join one queue (same grant order and mode rules):
// readers of both languages hold at once, a writer is alone, ifAvailable and
// steal work both ways, and a holder SIGKILLed in one language hands the lock
// to a waiting request of the other within 1 s.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { locks } from '../../lib/index.js';
import { lockSegmentPath } from '../../lib/core/names.js';
import { FIXTURES, namesRemovedAfterEach, sleep } from '../helpers/index.js';
import { child, type Child } from './children.js';

const { name } = namesRemovedAfterEach('pylk', (n) => rmSync(lockSegmentPath(n), { recursive: true, force: true }));
const NODE_LOCKS = join(FIXTURES, 'sync/locks.mjs');

/** A Python process holding `n` in `mode` until send(). */
async function pyHolder(n: string, mode: 'shared' | 'exclusive'): Promise<Child> {
  const c = child('python', ['lock-hold', n, mode]);
  expect(await c.line('held')).toBe(`held ${mode}`);
  return c;
}

/** What a Python `if_available` request for `n` gets now: 'shared' | 'exclusive' | 'null'. */
async function pyIfAvailable(n: string, mode: 'shared' | 'exclusive'): Promise<string> {
  const c = child('python', ['lock-hold', n, mode, 'if']);
  const got = await c.line('');
  c.send();
  await c.exited;
  return got === 'null' ? 'null' : got.split(' ')[1]!;
}

const nodeIfAvailable = (n: string, mode: 'shared' | 'exclusive'): Promise<string> =>
  locks.request(n, { mode, ifAvailable: true }, (l) => l?.mode ?? 'null');

/** Holds `n` in this process until the returned release() is called. */
async function nodeHold(n: string, mode: 'shared' | 'exclusive'): Promise<{ release: () => void; done: Promise<unknown> }> {
  let release!: () => void;
  let granted!: () => void;
  const isGranted = new Promise<void>((r) => (granted = r));
  const done = locks.request(n, { mode }, () => {
    granted();
    return new Promise<void>((r) => (release = r));
  });
  await isGranted;
  return { release, done };
}

/** Counts overlaps in enter/exit events: a writer with anyone else inside is bad. */
function overlaps(events: Array<[bigint, number, string, string]>): { bad: number; maxReaders: number; mixedReaders: number } {
  events.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  let writers = 0;
  let bad = 0;
  let maxReaders = 0;
  let mixedReaders = 0;
  const readers = new Map<string, number>([
    ['node', 0],
    ['python', 0],
  ]);
  for (const [, d, mode, lang] of events) {
    if (mode === 'shared') readers.set(lang, readers.get(lang)! + d);
    else writers += d;
    const r = readers.get('node')! + readers.get('python')!;
    if (writers > 1 || (writers === 1 && r > 0)) bad++;
    if (readers.get('node')! > 0 && readers.get('python')! > 0) mixedReaders++;
    maxReaders = Math.max(maxReaders, r);
  }
  return { bad, maxReaders, mixedReaders };
}

describe('Web Locks, Node and Python', () => {
  it('a Node and a Python reader hold at once; a Python writer waits for both and then is alone; queue order is shared', async () => {
    const n = name('rw');
    const nodeReader = await nodeHold(n, 'shared');
    const py = await pyHolder(n, 'shared'); // granted while Node holds shared: they share
    let writer: Child | undefined;
    try {
      expect(await nodeIfAvailable(n, 'exclusive')).toBe('null');
      expect(await pyIfAvailable(n, 'exclusive')).toBe('null');
      const snap = await locks.query();
      const held = snap.held.filter((i) => i.name === n);
      expect(held.map((i) => [i.mode, i.pid]).sort()).toEqual(
        [
          ['shared', process.pid],
          ['shared', py.pid],
        ].sort(),
      );
      writer = child('python', ['lock-wait', n, 'exclusive', '20']);
      await writer.line('requested');
      await sleep(300);
      expect((await locks.query()).pending.filter((i) => i.name === n)).toEqual([
        { name: n, mode: 'exclusive', clientId: String(writer.pid), pid: writer.pid },
      ]);
      // No writer starvation, across languages: a new shared request queues behind the Python writer.
      expect(await nodeIfAvailable(n, 'shared')).toBe('null');
      let nodeSharedAt: bigint | undefined;
      const nodeShared = locks.request(n, { mode: 'shared' }, () => {
        nodeSharedAt = process.hrtime.bigint();
      });
      nodeReader.release();
      await nodeReader.done;
      await sleep(200);
      expect(writer.lines).toEqual(['requested']); // the Python reader still holds
      py.send();
      expect(await py.line('released')).toBe('released');
      expect(await writer.line('held')).toBe('held exclusive');
      await sleep(200);
      expect(nodeSharedAt).toBeUndefined(); // the writer is alone
      expect(await nodeIfAvailable(n, 'shared')).toBe('null');
      writer.send();
      await nodeShared;
      expect(nodeSharedAt).toBeDefined();
      expect(await writer.exited).toBe(0);
    } finally {
      nodeReader.release();
      await py.kill();
      await writer?.kill();
    }
  });

  it('a Python reader queues behind an older Node writer, though only shared locks are held', async () => {
    const n = name('order');
    const py = await pyHolder(n, 'shared');
    let reader: Child | undefined;
    try {
      let writerAt: bigint | undefined;
      const writer = locks.request(n, async () => {
        writerAt = process.hrtime.bigint();
        await sleep(200);
      });
      await sleep(100);
      reader = child('python', ['lock-wait', n, 'shared', '20']);
      await reader.line('requested');
      await sleep(300);
      expect(reader.lines).toEqual(['requested']); // behind the Node writer
      expect((await locks.query()).pending.filter((i) => i.name === n).map((i) => [i.mode, i.pid])).toEqual([
        ['exclusive', process.pid],
        ['shared', reader.pid],
      ]);
      py.send();
      await writer;
      const readerAt = BigInt((await reader.line('t ')).split(' ')[1]!);
      expect(writerAt).toBeDefined();
      expect(readerAt > writerAt! + 150_000_000n).toBe(true); // after the writer's 200 ms, not during them
      reader.send();
      expect(await reader.exited).toBe(0);
    } finally {
      await py.kill();
      await reader?.kill();
    }
  });

  it('2 Node + 2 Python processes loop for 3 s (1 request in 4 exclusive): a writer never overlaps anyone', async () => {
    const n = name('mix');
    const events: Array<[bigint, number, string, string]> = [];
    const kids = [
      { lang: 'node', c: child('node', [NODE_LOCKS, 'rw', n, '3000', '4']) },
      { lang: 'python', c: child('python', ['lock-rw', n, '3000', '4']) },
      { lang: 'node', c: child('node', [NODE_LOCKS, 'rw', n, '3000', '4']) },
      { lang: 'python', c: child('python', ['lock-rw', n, '3000', '4']) },
    ];
    try {
      for (const { c } of kids) expect(await c.line('done', 30_000)).toBe('done');
      for (const { lang, c } of kids) {
        expect(await c.exited).toBe(0);
        for (const line of c.lines) {
          const [kind, mode, t] = line.split(' ') as [string, string, string];
          if (kind === 'enter' || kind === 'exit') events.push([BigInt(t), kind === 'enter' ? 1 : -1, mode, lang]);
        }
      }
      const r = overlaps(events);
      const enters = (lang: string, mode: string): number => events.filter((e) => e[1] === 1 && e[3] === lang && e[2] === mode).length;
      const summary = `${events.length / 2} sections, max ${r.maxReaders} readers, ${r.mixedReaders} mixed-reader moments`;
      console.log(`locks mix: ${summary}`);
      for (const lang of ['node', 'python']) {
        expect(enters(lang, 'exclusive'), summary).toBeGreaterThan(3);
        expect(enters(lang, 'shared'), summary).toBeGreaterThan(10);
      }
      expect(r.bad, summary).toBe(0);
    } finally {
      await Promise.all(kids.map(({ c }) => c.kill()));
    }
  });

  it('chaos, 5 s: 3 Node + 3 Python readers/writers SIGKILLed at random instants: never a writer with anyone, no deadlock', async () => {
    const n = name('chaos');
    type Worker = { c: Child; lang: string; open?: string; ready?: boolean };
    const events: Array<[bigint, number, string, string]> = [];
    const live = new Set<Worker>();
    const all: Worker[] = [];
    let kills = 0;
    const start = (lang: 'node' | 'python'): void => {
      const c = lang === 'node' ? child('node', [NODE_LOCKS, 'rw', n, '0', '4']) : child('python', ['lock-rw', n, '0', '4']);
      const w: Worker = { c, lang };
      let seen = 0;
      c.proc.stdout!.on('data', () => {
        for (; seen < c.lines.length; seen++) {
          const [kind, mode, t] = c.lines[seen]!.split(' ') as [string, string, string];
          if (kind === 'ready') w.ready = true;
          else if (kind === 'enter') {
            events.push([BigInt(t), 1, mode, lang]);
            w.open = mode;
          } else if (kind === 'exit') {
            events.push([BigInt(t), -1, mode, lang]);
            w.open = undefined;
          }
        }
      });
      live.add(w);
      all.push(w);
    };
    const stop = async (w: Worker): Promise<void> => {
      live.delete(w);
      const at = process.hrtime.bigint();
      await w.c.kill();
      if (w.open !== undefined) events.push([at, -1, w.open, w.lang]);
    };
    try {
      for (let i = 0; i < 6; i++) start(i % 2 === 0 ? 'node' : 'python');
      const end = performance.now() + 5000;
      while (performance.now() < end) {
        await sleep(100 + Math.random() * 150);
        const ready = [...live].filter((w) => w.ready);
        if (ready.length === 0) continue;
        const victim = ready[Math.floor(Math.random() * ready.length)]!;
        await stop(victim);
        kills++;
        start(victim.lang as 'node' | 'python');
      }
      for (const w of [...live]) await stop(w);
      const r = overlaps(events);
      const sections = (lang: string): number => events.filter((e) => e[1] === 1 && e[3] === lang).length;
      const summary = `${kills} kills, node ${sections('node')} / python ${sections('python')} sections, max ${r.maxReaders} readers`;
      console.log(`locks chaos: ${summary}`);
      expect(kills, summary).toBeGreaterThan(10);
      expect(sections('node'), summary).toBeGreaterThan(20);
      expect(sections('python'), summary).toBeGreaterThan(20);
      expect(r.bad, summary).toBe(0);
      // Everyone is dead: the lock is free again, for both languages, within a second.
      const t0 = performance.now();
      expect(await locks.request(n, async (l) => l?.mode)).toBe('exclusive');
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(await pyIfAvailable(n, 'exclusive')).toBe('exclusive');
      expect((await locks.query()).pending.filter((i) => i.name === n)).toEqual([]);
    } finally {
      await Promise.all(all.map((w) => w.c.kill()));
    }
  });

  it('ifAvailable both ways: null while the other language holds it exclusively, the lock once it is free', async () => {
    const n = name('ifav');
    const py = await pyHolder(n, 'exclusive');
    try {
      expect(await nodeIfAvailable(n, 'shared')).toBe('null');
      expect(await nodeIfAvailable(n, 'exclusive')).toBe('null');
      py.send();
      await py.line('released');
      const node = await nodeHold(n, 'exclusive');
      expect(await pyIfAvailable(n, 'shared')).toBe('null');
      expect(await pyIfAvailable(n, 'exclusive')).toBe('null');
      node.release();
      await node.done;
      expect(await pyIfAvailable(n, 'exclusive')).toBe('exclusive');
      expect(await nodeIfAvailable(n, 'exclusive')).toBe('exclusive');
    } finally {
      await py.kill();
    }
  });

  it('a Python holder SIGKILLed: the waiting Node request is granted within 1 s', async () => {
    const n = name('pykill');
    const py = await pyHolder(n, 'exclusive');
    let grantedAt = 0;
    const waiting = locks.request(n, () => {
      grantedAt = performance.now();
    });
    await sleep(300);
    expect(grantedAt).toBe(0);
    const t0 = performance.now();
    await py.kill();
    await waiting;
    expect(grantedAt - t0).toBeLessThan(1000);
    expect((await locks.query()).held.filter((i) => i.name === n)).toEqual([]);
  });

  it('a Node holder SIGKILLed: the waiting Python request is granted within 1 s', async () => {
    const n = name('nodekill');
    const holder = child('node', [NODE_LOCKS, 'hold', n, 'exclusive']);
    let waiter: Child | undefined;
    try {
      await holder.line('held');
      waiter = child('python', ['lock-wait', n, 'exclusive', '20']);
      await waiter.line('requested');
      await sleep(300);
      expect(waiter.lines).toEqual(['requested']);
      const t0 = performance.now();
      await holder.kill();
      expect(await waiter.line('held')).toBe('held exclusive');
      expect(performance.now() - t0).toBeLessThan(1000);
      const held = (await locks.query()).held.filter((i) => i.name === n);
      expect(held).toEqual([{ name: n, mode: 'exclusive', clientId: String(waiter.pid), pid: waiter.pid }]);
      waiter.send();
      expect(await waiter.exited).toBe(0);
    } finally {
      await holder.kill();
      await waiter?.kill();
    }
  });

  it('steal across languages: Node steals from a Python holder, whose block then ends with AbortError; and the reverse', async () => {
    const n = name('steal');
    const py = await pyHolder(n, 'exclusive');
    try {
      await locks.request(n, { steal: true }, async () => {
        py.send();
        expect(await py.line('')).toBe('stolen');
        expect(await pyIfAvailable(n, 'shared')).toBe('null'); // ours stays held
      });
      const node = await nodeHold(n, 'exclusive');
      let settledAt: number | undefined;
      node.done.catch(() => (settledAt = performance.now()));
      const stealer = child('python', ['lock-steal', n]);
      expect(await stealer.line('held')).toBe('held exclusive');
      const heldAt = performance.now();
      // the Node holder is told at the steal (its callback still runs), not when it ends
      await expect(node.done).rejects.toMatchObject({ name: 'AbortError' });
      expect(settledAt! - heldAt).toBeLessThan(500);
      stealer.send();
      expect(await stealer.exited).toBe(0);
      node.release();
    } finally {
      await py.kill();
    }
  });
});
