// The Redis classes in one process, against a real redis-server: the local
// classes' shapes (acquire -> boolean, AbortSignal, hold/using, withAcquired,
// tryAcquire; put/get, Empty/Full, nowait forms, codecs, for await), leases
// and fencing tokens, the server's clock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Empty as LocalEmpty, Full as LocalFull } from '../../lib/index.js';
import { connect, Event, Lock, Queue, Semaphore, BoundedSemaphore, type RedisConnection } from '../../lib/redis/index.js';
import { redisAvailable, startRedis, type RedisServer } from '../helpers/redis.js';
import { uniqueName, sleep } from '../helpers/index.js';

const ok = redisAvailable();
let server: RedisServer;
let redis: RedisConnection;

describe.runIf(ok)('Redis backend, one process', () => {
  beforeAll(async () => {
    server = await startRedis();
    redis = await connect(server.url, { prefix: `pipc-test-${process.pid}:` });
  });
  afterAll(async () => {
    await redis?.close();
    await server?.stop();
  });

  it('Lock: acquire, tryAcquire, release, timeout -> false, increasing tokens', async () => {
    const name = uniqueName('lock');
    const a = new Lock(name, { redis });
    const b = new Lock(`/${name}`, { redis });
    expect(await a.acquire()).toBe(true);
    expect(await a.locked()).toBe(true);
    expect(await b.tryAcquire()).toBe(false);
    const t0 = performance.now();
    expect(await b.acquire({ timeout: 150 })).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    const t1 = a.held[0]!.token;
    await a.release();
    await expect(a.release()).rejects.toMatchObject({ code: 'ERR_IPC_OVER_RELEASE' });
    const held = await b.hold();
    expect(held.token).toBeGreaterThan(t1);
    expect(typeof held.token).toBe('bigint');
    await held.release();
    await held.release(); // idempotent
    expect(await a.locked()).toBe(false);
    await a.close();
    await b.close();
    await Lock.unlink(name, { redis });
  });

  it('a waiter is woken by the release at once (BLPOP on the wake list, not a poll)', async () => {
    const name = uniqueName('wake');
    const a = new Lock(name, { redis });
    const b = new Lock(name, { redis });
    await a.acquire();
    const waiting = b.acquire({ timeout: 5000 });
    await sleep(100);
    const t0 = performance.now();
    await a.release();
    expect(await waiting).toBe(true);
    expect(performance.now() - t0).toBeLessThan(200);
    await b.close();
    await a.close();
    await Lock.unlink(name, { redis });
  });

  it('AbortSignal: a pending acquire rejects with AbortError and holds nothing', async () => {
    const name = uniqueName('abort');
    const a = new Lock(name, { redis });
    const b = new Lock(name, { redis });
    await a.acquire();
    const ac = new AbortController();
    const p = b.acquire({ signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    await expect(b.acquire({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    await a.release();
    expect(b.held.length).toBe(0);
    expect(await b.tryAcquire()).toBe(true);
    await b.close();
    await a.close();
    await Lock.unlink(name, { redis });
  });

  it('hold() with await using, withAcquired, and hold timeout -> ETIMEDOUT', async () => {
    const name = uniqueName('hold');
    const s = new Semaphore(name, { redis, initialValue: 2 });
    {
      await using h1 = await s.hold();
      await using h2 = await s.hold();
      expect(h2.token).toBeGreaterThan(h1.token);
      expect(await s.getValue()).toBe(0);
      await expect(s.hold({ timeout: 20 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    }
    expect(await s.getValue()).toBe(2);
    const r = await s.withAcquired(async (held) => {
      expect(held.signal.aborted).toBe(false);
      return 42;
    });
    expect(r).toBe(42);
    await expect(s.withAcquired(() => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await s.getValue()).toBe(2);
    await s.close();
    await Semaphore.unlink(name, { redis });
  });

  it('BoundedSemaphore and Lock validate their options; names are validated', async () => {
    expect(() => new BoundedSemaphore(uniqueName('b'), { redis, initialValue: 2, maxValue: 3 })).toThrow(RangeError);
    expect(() => new Lock('a/b', { redis })).toThrow(TypeError);
    expect(() => new Lock('', { redis })).toThrow(TypeError);
    expect(() => new Lock('x', {} as never)).toThrow(/connect\(\)/);
    expect(() => new Semaphore('x', { redis, ttl: -1 })).toThrow(RangeError);
    expect(() => new Lock('x', { redis, tll: 5 } as never)).toThrow(/did you mean ttl/);
    expect(() => new Semaphore('x', { redis, maxValue: 2 } as never)).toThrow(/unknown option/);
  });

  it('a lease expires on the server clock after its ttl when not renewed; the holder is told', async () => {
    const name = uniqueName('lost');
    const lostSeen: bigint[] = [];
    const a = new Lock(name, { redis, ttl: 300, onLost: (h) => lostSeen.push(h.token) });
    const held = await a.hold();
    // Make the server drop it: the renewal then finds it gone.
    await redis.command(['DEL', `pipc-test-${process.pid}:{${name}}:leases`]);
    await sleep(250);
    expect(held.lost).toBe(true);
    expect(held.signal.aborted).toBe(true);
    expect((held.signal.reason as { code: string }).code).toBe('ERR_IPC_LEASE_LOST');
    expect(lostSeen).toEqual([held.token]);
    await a.close();
    await Lock.unlink(name, { redis });
  });

  it('renewal keeps a lease for 4 x ttl', async () => {
    const name = uniqueName('renew');
    const a = new Lock(name, { redis, ttl: 200 });
    const b = new Lock(name, { redis, ttl: 200 });
    const held = await a.hold();
    expect(await b.acquire({ timeout: 800 })).toBe(false);
    expect(held.lost).toBe(false);
    await held.release();
    expect(await b.acquire({ timeout: 500 })).toBe(true);
    await a.close();
    await b.close();
    await Lock.unlink(name, { redis });
  });

  it('Event: set wakes every waiter at once; clear; wait timeout -> false', async () => {
    const name = uniqueName('ev');
    const evs = [0, 1, 2].map(() => new Event(name, { redis }));
    expect(await evs[0]!.isSet()).toBe(false);
    expect(await evs[0]!.wait({ timeout: 50 })).toBe(false);
    const waits = evs.map((e) => e.wait({ timeout: 5000 }));
    await sleep(100);
    const t0 = performance.now();
    await evs[0]!.set();
    expect(await Promise.all(waits)).toEqual([true, true, true]);
    expect(performance.now() - t0).toBeLessThan(300);
    expect(await evs[1]!.wait()).toBe(true);
    await evs[2]!.clear();
    expect(await evs[1]!.isSet()).toBe(false);
    for (const e of evs) await e.close();
    await Event.unlink(name, { redis });
  });

  it('Queue: FIFO put/get, nowait forms raise the local Empty/Full, qsize, codecs', async () => {
    const name = uniqueName('q');
    const q = new Queue<{ n: number }>(name, { redis, maxsize: 2 });
    await expect(q.getNowait()).rejects.toBeInstanceOf(LocalEmpty);
    await q.put({ n: 1 });
    await q.putNowait({ n: 2 });
    expect(await q.qsize()).toBe(2);
    expect(await q.full()).toBe(true);
    await expect(q.putNowait({ n: 3 })).rejects.toBeInstanceOf(LocalFull);
    await expect(q.put({ n: 3 }, { timeout: 50 })).rejects.toBeInstanceOf(LocalFull);
    // a blocked put goes in as soon as a get makes room
    const putting = q.put({ n: 3 }, { timeout: 3000 });
    await sleep(50);
    expect(await q.get()).toEqual({ n: 1 });
    await putting;
    expect(await q.get()).toEqual({ n: 2 });
    expect(await q.get()).toEqual({ n: 3 });
    await expect(q.get({ timeout: 50 })).rejects.toBeInstanceOf(LocalEmpty);
    await expect(q.put({ n: 1 }, { priority: 1 } as never)).rejects.toThrow(/priority/);
    await q.close();
    const raw = new Queue<Buffer>(name, { redis, codec: 'raw' });
    await raw.put(Buffer.from([0, 255, 1, 2]));
    expect([...(await raw.get())]).toEqual([0, 255, 1, 2]);
    await raw.close();
    const v8q = new Queue<Map<string, bigint>>(name, { redis, codec: 'v8' });
    await v8q.put(new Map([['a', 1n]]));
    expect((await v8q.get()).get('a')).toBe(1n);
    await v8q.close();
    await Queue.unlink(name, { redis });
  });

  it('Queue: a waiting get is served by a put at once; abort; for await', async () => {
    const name = uniqueName('qw');
    const c = new Queue<number>(name, { redis });
    const p = new Queue<number>(name, { redis });
    const got = c.get({ timeout: 5000 });
    await sleep(100);
    const t0 = performance.now();
    await p.put(7);
    expect(await got).toBe(7);
    expect(performance.now() - t0).toBeLessThan(200);
    const ac = new AbortController();
    const aborted = c.get({ signal: ac.signal });
    setTimeout(() => ac.abort(), 30);
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    for (let i = 0; i < 5; i++) await p.put(i);
    const seen: number[] = [];
    for await (const x of c) {
      seen.push(x);
      if (seen.length === 5) break;
    }
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    await c.close();
    await p.close();
    await Queue.unlink(name, { redis });
  });

  it('close(): pending waits reject with EBADF; later calls too', async () => {
    const name = uniqueName('close');
    const a = new Lock(name, { redis });
    const b = new Lock(name, { redis });
    await a.acquire();
    const p = b.acquire();
    await sleep(30);
    await b.close();
    await expect(p).rejects.toMatchObject({ code: 'EBADF' });
    await expect(b.acquire()).rejects.toMatchObject({ code: 'EBADF' });
    await a.close(); // releases what it holds
    const c = new Lock(name, { redis });
    expect(await c.tryAcquire()).toBe(true);
    await c.close();
    await Lock.unlink(name, { redis });
  });
});
