// Faults against real redis-servers of this file's own: bad URLs, refused
// connections, passwords and ACL users, and a server killed and restarted
// under held leases and pending waits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, Event, IPCError, Lock, Queue, type RedisConnection } from '../../lib/redis/index.js';
import { freePort, redisAvailable, startRedis, type RedisServer } from '../helpers/redis.js';
import { sleep, uniqueName } from '../helpers/index.js';

const ok = redisAvailable(true);

describe.runIf(ok)('Redis backend: bad URLs and credentials', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis({ args: ['--requirepass', 'sesame', '--user', 'app', 'on', '>apppw', '~pipc:*', '+@all'] });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a malformed URL or another scheme is a TypeError with ERR_INVALID_URL', async () => {
    await expect(connect('not a url')).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_URL' });
    await expect(connect('http://127.0.0.1:6379')).rejects.toMatchObject({ code: 'ERR_INVALID_URL' });
    await expect(connect(42)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('nobody listening: IPCError ECONNREFUSED naming the address, at once', async () => {
    const port = await freePort();
    const t0 = performance.now();
    const err = (await connect(`redis://127.0.0.1:${port}`).catch((e: unknown) => e)) as IPCError & { address: string };
    expect(err).toBeInstanceOf(IPCError);
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.address).toBe(`127.0.0.1:${port}`);
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('a wrong password is WRONGPASS, none is NOAUTH; the right ones (default user, ACL user) work', async () => {
    const base = `127.0.0.1:${server.port}`;
    await expect(connect(`redis://:wrong@${base}`)).rejects.toMatchObject({ code: 'WRONGPASS', address: base });
    await expect(connect(`redis://app:wrong@${base}`)).rejects.toMatchObject({ code: 'WRONGPASS' });
    await expect(connect(`redis://${base}`)).rejects.toMatchObject({ code: 'NOAUTH' });
    for (const url of [`redis://:sesame@${base}`, `redis://app:apppw@${base}`]) {
      const redis = await connect(url);
      const lock = new Lock(uniqueName('auth'), { redis });
      expect(await lock.tryAcquire()).toBe(true);
      await lock.close();
      await redis.close();
    }
  });

  it('an ACL user without access to the prefix gets NOPERM from the operation', async () => {
    const redis = await connect(`redis://app:apppw@127.0.0.1:${server.port}`, { prefix: 'other:' });
    const lock = new Lock(uniqueName('perm'), { redis });
    await expect(lock.acquire({ timeout: 1000 })).rejects.toMatchObject({ code: 'NOPERM' });
    await lock.close();
    await redis.close();
  });
});

describe.runIf(ok)('Redis backend: the server killed and restarted', () => {
  let server: RedisServer;
  let redis: RedisConnection;
  beforeAll(async () => {
    server = await startRedis({ own: true });
    redis = await connect(server.url);
  });
  afterAll(async () => {
    await redis?.close();
    await server?.stop();
  });

  it('leases held through an outage are reported lost; calls reject with a clear error; waits survive; tokens still increase', async () => {
    const name = uniqueName('outage');
    const lost: string[] = [];
    const holder = new Lock(name, { redis, ttl: 600, onLost: (_h, err) => lost.push(err.code) });
    const held = await holder.hold();
    const other = new Lock(name, { redis, ttl: 600 });
    const q = new Queue<string>(uniqueName('outage-q'), { redis });
    const ev = new Event(uniqueName('outage-ev'), { redis });
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      // pending waits without a deadline, across the outage
      const getting = q.get();
      const waiting = ev.wait();
      await sleep(50);
      await server.kill();

      // a call that needs the server now rejects at once, naming it
      const t0 = performance.now();
      const err = (await other.tryAcquire().catch((e: unknown) => e)) as IPCError & { address: string };
      expect(err).toBeInstanceOf(IPCError);
      expect(['ERR_IPC_REDIS_UNAVAILABLE', 'ECONNREFUSED', 'ECONNRESET']).toContain(err.code);
      expect(err.address).toBe(`127.0.0.1:${server.port}`);
      expect(performance.now() - t0).toBeLessThan(1000);
      // a timed wait rejects with that error at its deadline, not with false ("busy")
      await expect(other.acquire({ timeout: 300 })).rejects.toBeInstanceOf(IPCError);

      // the holder is told within its ttl
      await sleep(700);
      expect(held.lost).toBe(true);
      expect(held.signal.aborted).toBe(true);
      expect(lost).toEqual(['ERR_IPC_LEASE_LOST']);

      await server.start();
      // the blocked get and wait are served once the server is back (no lost wake-up)
      const producer = new Queue<string>(q.name, { redis });
      const ev2 = new Event(ev.name, { redis });
      for (let i = 0; i < 50; i++) {
        try {
          await producer.put('after');
          break;
        } catch {
          await sleep(100);
        }
      }
      await ev2.set();
      expect(await getting).toBe('after');
      expect(await waiting).toBe(true);
      // the empty server hands out a larger token than before the outage
      const again = await other.hold({ timeout: 3000 });
      expect(again.token).toBeGreaterThan(held.token);
      await again.release();
      await producer.close();
      await ev2.close();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await holder.close();
      await other.close();
      await q.close();
      await ev.close();
    }
  });
});
