// Queue between real, separate processes: node producers and consumers,
// python3 peers using ctypes on libc's mq_* calls, and an unprivileged user.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { DecodeError, IPCError, Queue, Semaphore } from '../../lib/index.js';
import { expectOk, IS_ROOT, ourShmEntries, runNode, runNodeUnprivileged, runPython, uniqueName, queueExists } from '../helpers/index.js';

const made: string[] = [];

function fresh<T = unknown>(options: ConstructorParameters<typeof Queue<T>>[1] = {}, tag = 'pq'): Queue<T> {
  const name = uniqueName(tag);
  made.push(name);
  return new Queue<T>(name, options);
}

afterEach(() => {
  for (const n of made.splice(0)) {
    try {
      Queue.unlink(n);
    } catch (err) {
      if ((err as IPCError).code !== 'ENOENT') throw err;
    }
    expect(queueExists(n)).toBe(false);
  }
  expect(ourShmEntries()).toEqual([]);
});

interface Item {
  p: number;
  i: number;
}

describe.each(['mq', 'shm'] as const)('Queue across processes on %s', (transport) => {
  it('3 producer processes x 200 items, 2 consumer processes: every item exactly once, each producer in order', async () => {
    const q = fresh<Item | { stop: true }>({ maxsize: 10, transport });
    const ready = new Semaphore(`${q.name}-ready`, { initialValue: 0, exclusive: true });
    try {
      const consumers = [runNode('queue/consumer.mjs', [q.name, ready.name]), runNode('queue/consumer.mjs', [q.name, ready.name])];
      // Producers start only when both consumers wait on the queue.
      expect(await ready.acquire({ timeout: 30_000 })).toBe(true);
      expect(await ready.acquire({ timeout: 30_000 })).toBe(true);
      const producers = [0, 1, 2].map((p) => runNode('queue/producer.mjs', [q.name, String(p), '200']));
      for (const r of await Promise.all(producers)) expectOk(r, 'producer');
      await q.put({ stop: true }, { timeout: 20_000 });
      await q.put({ stop: true }, { timeout: 20_000 });
      const results = (await Promise.all(consumers)).map((r) => JSON.parse(expectOk(r, 'consumer').stdout) as Item[]);
      const all = results.flat();
      expect(all).toHaveLength(600);
      const keys = new Set(all.map((x) => `${x.p}:${x.i}`));
      expect(keys.size).toBe(600);
      for (let p = 0; p < 3; p++) for (let i = 0; i < 200; i++) expect(keys.has(`${p}:${i}`)).toBe(true);
      for (const got of results) {
        for (let p = 0; p < 3; p++) {
          const seq = got.filter((x) => x.p === p).map((x) => x.i);
          expect(seq).toEqual([...seq].sort((a, b) => a - b));
        }
      }
      // Both consumers took part (a consumer that got nothing would still pass the checks above).
      expect(results.every((r) => r.length > 0)).toBe(true);
      expect(q.qsize()).toBe(0);
    } finally {
      q.close();
      ready.close();
      ready.unlink();
    }
  });

  it('a 1 MiB item between two node processes arrives intact and leaves no segment', async () => {
    const q = fresh({ codec: 'raw', transport });
    q.close();
    const recv = runNode('queue/large.mjs', ['recv', q.name]);
    const sent = expectOk(await runNode('queue/large.mjs', ['send', q.name, String(1 << 20)]), 'sender').stdout;
    const got = JSON.parse(expectOk(await recv, 'receiver').stdout);
    expect(got).toEqual({ length: 1 << 20, sha256: sent });
    // No side segment: on shm only the ring itself is there (until afterEach unlinks it).
    expect(ourShmEntries()).toEqual(transport === 'mq' ? [] : [`pipc.${q.name.slice(1)}.queue`]);
  });
});

describe('Queue with python3 (ctypes mq_open / mq_timedsend / mq_timedreceive)', () => {
  it('node puts JSON, python reads it with json.loads, priorities first', async () => {
    const q = fresh<unknown>({ transport: 'mq' });
    try {
      await q.put({ text: 'héllo', n: [1, 2.5, null], ok: true });
      await q.put('urgent', { priority: 7 });
      q.putNowait(42);
      const out = JSON.parse(expectOk(await runPython('queue/py.py', ['recv', q.name, '3']), 'python').stdout);
      expect(out).toEqual([
        { item: 'urgent', prio: 7 },
        { item: { text: 'héllo', n: [1, 2.5, null], ok: true }, prio: 0 },
        { item: 42, prio: 0 },
      ]);
    } finally {
      q.close();
    }
  });

  it('python sends JSON, node gets it (waiting on uv_poll while python starts)', async () => {
    const q = fresh<Record<string, unknown>>({ transport: 'mq' });
    try {
      const items = [{ id: 1, prio: 0 }, { id: 2, prio: 3, s: 'ünïcode' }, { id: 3, prio: 0 }];
      const getting = Promise.all([q.get({ timeout: 20_000 }), q.get({ timeout: 20_000 }), q.get({ timeout: 20_000 })]);
      expectOk(await runPython('queue/py.py', ['send', q.name, JSON.stringify(items)]), 'python');
      const got = await getting;
      expect(got.map((x) => x.id).sort()).toEqual([1, 2, 3]);
      expect(got.find((x) => x.id === 2)).toEqual({ id: 2, prio: 3, s: 'ünïcode' });
    } finally {
      q.close();
    }
  });

  describe('bad messages from a python sender (issue 16.10)', () => {
    const hex = (s: string | Buffer) => Buffer.from(s).toString('hex');
    const send = async (name: string, messages: Array<[Buffer | string, number]>) =>
      expectOk(await runPython('queue/py.py', ['send-raw', name, JSON.stringify(messages.map(([m, p]) => [hex(m), p]))]), 'python');
    const goodBadGood: Array<[string, number]> = [
      ['{"g":1}', 0],
      ['{"g":2}', 0],
      ['oops', 0],
      ['{"g":3}', 0],
    ];

    it('getMany delivers what decoded, then reports the bad message with its queue, priority and bytes', async () => {
      const q = fresh<{ g: number }>({ transport: 'mq' });
      try {
        await send(q.name, goodBadGood);
        // Before: getMany(10) rejected with a bare SyntaxError and g1, g2 were gone.
        expect(await q.getMany(10)).toEqual([{ g: 1 }, { g: 2 }]);
        const err = (await q.getMany(10).catch((e: unknown) => e)) as DecodeError;
        expect(err).toBeInstanceOf(DecodeError);
        expect(err).toMatchObject({ name: 'DecodeError', code: 'ERR_IPC_DECODE', queue: q.name, priority: 0 });
        expect(err.bytes.toString()).toBe('oops');
        expect(err.cause).toBeInstanceOf(SyntaxError);
        expect(err.message).toContain(q.name);
        expect(await q.getMany(10)).toEqual([{ g: 3 }]);
        // A single get reports its priority too.
        await send(q.name, [['not json', 7]]);
        await expect(q.get({ timeout: 5000 })).rejects.toMatchObject({ code: 'ERR_IPC_DECODE', priority: 7 });
      } finally {
        q.close();
      }
    });

    it("invalid UTF-8 in a JSON message is a DecodeError, not U+FFFD (as Python's decode)", async () => {
      const q = fresh<string>({ transport: 'mq' });
      try {
        await send(q.name, [[Buffer.from([0x22, 0xff, 0xfe, 0x22]), 0], ['"ok"', 0]]);
        // Before: resolved with '\ufffd\ufffd'.
        const err = (await q.get({ timeout: 5000 }).catch((e: unknown) => e)) as DecodeError;
        expect(err).toBeInstanceOf(DecodeError);
        expect([...err.bytes]).toEqual([0x22, 0xff, 0xfe, 0x22]);
        expect(q.getNowait()).toBe('ok');
      } finally {
        q.close();
      }
    });

    it('for await stops at a bad message by default, or goes on with onDecodeError', async () => {
      const q = fresh<{ g: number }>({ transport: 'mq' });
      const skipping = new Queue<{ g: number }>(q.name, { create: false, onDecodeError: 'skip' });
      try {
        await send(q.name, goodBadGood);
        const got: number[] = [];
        await expect(
          (async () => {
            for await (const x of q) got.push(x.g);
          })(),
        ).rejects.toBeInstanceOf(DecodeError);
        expect(got).toEqual([1, 2]);
        expect(skipping.getNowait()).toEqual({ g: 3 });

        await send(q.name, goodBadGood);
        const seen: number[] = [];
        for await (const x of skipping) {
          seen.push(x.g);
          if (x.g === 3) break;
        }
        expect(seen).toEqual([1, 2, 3]);

        await send(q.name, goodBadGood);
        const reported: string[] = [];
        const items: number[] = [];
        for await (const x of q.iterate({ onDecodeError: (e) => reported.push(e.bytes.toString()) })) {
          items.push(x.g);
          if (x.g === 3) break;
        }
        expect(items).toEqual([1, 2, 3]);
        expect(reported).toEqual(['oops']);
        await expect(q.iterate({ onDecodeError: 'ignore' as never }).next()).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      } finally {
        skipping.close();
        q.close();
      }
    });
  });

  it('python follows the documented side-segment descriptor of a large item and removes the segment', async () => {
    const q = fresh<Buffer>({ codec: 'raw', maxMessageSize: 1024, transport: 'mq' });
    try {
      const big = Buffer.alloc(200_000);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
      await q.put(big);
      const out = JSON.parse(expectOk(await runPython('queue/py.py', ['recv-large', q.name]), 'python').stdout);
      expect(out).toEqual({ descriptor: true, length: big.length, sha256: createHash('sha256').update(big).digest('hex') });
      expect(ourShmEntries()).toEqual([]);
    } finally {
      q.close();
    }
  });
});

describe('Queue as an unprivileged user', () => {
  it('shm: maxsize 100_000 works on default sysctls; 100,000 items of 64 B fit the default 8 MiB ring, in order', async () => {
    const name = uniqueName('unpriv-ring');
    const r = expectOk(await runNodeUnprivileged('queue/unpriv-ring.mjs', [name], { timeoutMs: 60_000 }), 'unprivileged child');
    const report = JSON.parse(r.stdout);
    if (IS_ROOT) expect(report.uid).toBe(65534);
    expect(report).toMatchObject({ transport: 'shm', maxsize: 100_000, qsize: 100_000, full: true, extra: 'Full', inOrder: true, left: 0 });
    // The ring's pages, not 100,000 allocations: well under 3x the ring's 8 MiB.
    expect(report.rssGrowthMiB).toBeLessThan(24);
    expect(queueExists(name)).toBe(false);
  });

  it('the default queue works; an oversized maxsize and an exhausted RLIMIT_MSGQUEUE give errors naming the limit', async () => {
    const prefix = uniqueName('unpriv');
    const r = expectOk(await runNodeUnprivileged('queue/unpriv.mjs', [prefix]), 'unprivileged child');
    const report = JSON.parse(r.stdout);
    if (IS_ROOT) expect(report.uid).toBe(65534);
    expect(report.defaults).toEqual({ maxsize: 10, maxMessageSize: 8192 });
    expect(report.roundTrip).toEqual({ hello: 'world' });
    expect(report.oversized).toMatchObject({ name: 'IPCError', code: 'EINVAL', limit: 'fs.mqueue.msg_max', limitValue: 10 });
    expect(report.oversized.message).toMatch(/maxsize 50 exceeds the system limit fs\.mqueue\.msg_max = 10.*sysctl/);
    // 819200 bytes / about 83 kB per 10 x 8192 queue: the budget runs out after a handful.
    expect(report.budget).toMatchObject({ code: 'EMFILE', limit: 'RLIMIT_MSGQUEUE', limitValue: 819200 });
    expect(report.budget.after).toBeGreaterThan(0);
    expect(report.budget.after).toBeLessThan(12);
    expect(report.budget.message).toMatch(/RLIMIT_MSGQUEUE = 819200 bytes.*ulimit -q/);
    for (const suffix of ['default', 'big', ...Array.from({ length: 64 }, (_, i) => `budget-${i}`)]) {
      expect(queueExists(`${prefix}-${suffix}`)).toBe(false);
    }
  });
});
