// The Redis classes across separate node processes ("hosts"), each with its
// own connection, against one real redis-server.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, Lock, type RedisConnection } from '../../lib/redis/index.js';
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

function maxInside(outputs: string[]): { max: number; intervals: number } {
  const events: Array<[bigint, number]> = [];
  for (const out of outputs) {
    for (const line of out.split('\n')) {
      const [kind, t] = line.split(' ');
      if (kind === 'enter') events.push([BigInt(t!), +1]);
      if (kind === 'exit') events.push([BigInt(t!), -1]);
    }
  }
  events.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  let inside = 0;
  let max = 0;
  for (const [, d] of events) {
    inside += d;
    max = Math.max(max, inside);
  }
  return { max, intervals: events.length / 2 };
}

describe.runIf(ok)('Redis backend across processes', () => {
  beforeAll(async () => {
    server = await startRedis();
    redis = await connect(server.url);
  });
  afterAll(async () => {
    await redis?.close();
    await server?.stop();
  });

  it('6 processes x 300 read-modify-write increments under one Lock: the total is exact, tokens increase', async () => {
    const name = uniqueName('incr');
    const dir = mkdtempSync(join(tmpdir(), 'pipc-redis-'));
    const file = join(dir, 'counter');
    writeFileSync(file, '0');
    try {
      const runs = await Promise.all(Array.from({ length: 6 }, () => runNode(HOST, ['incr', server.url, name, file, '300'])));
      runs.forEach((r, i) => expectOk(r, `incr ${i}`));
      expect(Number(readFileSync(file, 'utf8'))).toBe(1800);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await Lock.unlink(name, { redis });
    }
  });

  it('Semaphore(3) shared by 8 processes: never more than 3 inside', async () => {
    const name = uniqueName('sem');
    const runs = await Promise.all(Array.from({ length: 8 }, () => runNode(HOST, ['sem', server.url, name, '3', '10'])));
    runs.forEach((r, i) => expectOk(r, `sem ${i}`));
    const { max, intervals } = maxInside(runs.map((r) => r.stdout));
    expect(intervals).toBe(80);
    expect(max).toBeLessThanOrEqual(3);
    expect(max).toBeGreaterThanOrEqual(2);
    await Lock.unlink(name, { redis });
  });

  it('a SIGKILLed holder loses the lock after about its ttl; the next holder gets a larger token', async () => {
    const name = uniqueName('kill');
    const h = startHost(['hold', server.url, name, '1000']);
    const first = BigInt((await h.waitFor(/^held /)).split(' ')[1]!);
    h.child.kill('SIGKILL');
    await h.exited;
    const t0 = performance.now();
    const lock = new Lock(name, { redis, ttl: 1000 });
    const held = await lock.hold({ timeout: 5000 });
    const waited = performance.now() - t0;
    expect(held.token).toBeGreaterThan(first);
    expect(waited).toBeLessThan(2500);
    await lock.close();
    await Lock.unlink(name, { redis });
  });

  it('renewal keeps a critical section of 3 x ttl safe against another process', async () => {
    const name = uniqueName('long');
    const h = startHost(['long', server.url, name, '500', '1500']);
    await h.waitFor(/^held /);
    const lock = new Lock(name, { redis, ttl: 500 });
    const t0 = performance.now();
    const held = await lock.hold({ timeout: 5000 });
    expect(performance.now() - t0).toBeGreaterThan(1200);
    expect(await h.waitFor(/^done /)).toBe('done lost=false aborted=false');
    expect(await h.exited).toBe(0);
    await held.release();
    await lock.close();
    await Lock.unlink(name, { redis });
  });

  it('a holder SIGSTOPped past its ttl is told on resume that it lost the lease; another got it meanwhile', async () => {
    const name = uniqueName('stop');
    const h = startHost(['hold', server.url, name, '600']);
    const first = BigInt((await h.waitFor(/^held /)).split(' ')[1]!);
    h.child.kill('SIGSTOP');
    const lock = new Lock(name, { redis, ttl: 600 });
    const held = await lock.hold({ timeout: 5000 });
    expect(held.token).toBeGreaterThan(first);
    h.child.kill('SIGCONT');
    expect(await h.waitFor(/^lost /)).toBe(`lost ${first} ERR_IPC_LEASE_LOST aborted=true`);
    expect(await h.exited).toBe(0);
    // the resumed process did not take it back
    expect(held.lost).toBe(false);
    expect(await lock.locked()).toBe(true);
    await held.release();
    await lock.close();
    await Lock.unlink(name, { redis });
  });

});
