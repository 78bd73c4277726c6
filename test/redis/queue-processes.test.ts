// The Redis Queue across separate node processes ("hosts"), each with its
// own connection: exactly-once in normal operation, redelivery after a crash.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, Queue, type RedisConnection } from '../../lib/redis/index.js';
import { redisAvailable, startRedis, type RedisServer } from '../helpers/redis.js';
import { expectOk, FIXTURES, runNode, uniqueName } from '../helpers/index.js';

const ok = redisAvailable();
let server: RedisServer;
let redis: RedisConnection;
const HOST = 'redis/host.mjs';

/** Starts a host and resolves its first stdout line matching `re` (the child keeps running). */
function startHost(args: string[]): { child: ChildProcess; lines: string[]; waitFor(re: RegExp, ms?: number): Promise<string>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [join(FIXTURES, HOST), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    for (const l of listeners) l();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    lines,
    exited,
    waitFor(re, ms = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const l = lines.find((x) => re.test(x));
          if (l !== undefined) {
            listeners.delete(check);
            clearTimeout(t);
            resolve(l);
          }
        };
        const t = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no line ${re} within ${ms} ms; got ${JSON.stringify(lines)}; stderr ${err}`));
        }, ms);
        listeners.add(check);
        check();
      });
    },
  };
}

describe.runIf(ok)('Redis Queue across processes', () => {
  beforeAll(async () => {
    server = await startRedis();
    redis = await connect(server.url);
  });
  afterAll(async () => {
    await redis?.close();
    await server?.stop();
  });

  it('Queue: 3 producers x 200 items, 3 consumers: every item exactly once', async () => {
    const name = uniqueName('q');
    const consumers = [0, 1, 2].map(() => startHost(['consume', server.url, name, '5000']));
    const producers = await Promise.all([0, 1, 2].map((i) => runNode(HOST, ['produce', server.url, name, String(i * 200), '200'])));
    producers.forEach((r, i) => expectOk(r, `producer ${i}`));
    const q = new Queue(name, { redis });
    for (let i = 0; i < 3; i++) await q.put({ stop: true });
    await q.close();
    const codes = await Promise.all(consumers.map((c) => c.exited));
    expect(codes).toEqual([0, 0, 0]);
    const all = consumers.flatMap((c) => c.lines.map((l) => (JSON.parse(l) as { n: number }).n));
    expect(all.length).toBe(600);
    expect(new Set(all).size).toBe(600);
    expect(consumers.every((c) => c.lines.length > 0)).toBe(true);
    await Queue.unlink(name, { redis });
  });

  it('Queue: the item of a SIGKILLed consumer is redelivered to another after the visibility timeout', async () => {
    const name = uniqueName('redeliver');
    const q = new Queue<{ n: number }>(name, { redis });
    await q.put({ n: 1 });
    await q.put({ n: 2 });
    const dying = startHost(['consume', server.url, name, '800', 'die']);
    expect(await dying.waitFor(/^\{/)).toBe('{"n":1}');
    dying.child.kill('SIGKILL');
    await dying.exited;
    const t0 = performance.now();
    const a = await q.get({ timeout: 5000 });
    const b = await q.get({ timeout: 5000 });
    // n:2 was still queued; n:1 comes back once the dead consumer's heartbeat expired
    expect([a, b].map((x) => x.n).sort()).toEqual([1, 2]);
    expect(performance.now() - t0).toBeLessThan(3000);
    await expect(q.get({ timeout: 1200 })).rejects.toMatchObject({ code: 'ERR_IPC_EMPTY' });
    await q.close();
    await Queue.unlink(name, { redis });
  });
});
