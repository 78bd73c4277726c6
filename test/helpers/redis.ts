/**
 * A real redis-server for the Redis tests: started on 127.0.0.1 on a free
 * port (found by binding port 0 first), without persistence, stopped after.
 * POSIX_IPC_REDIS_URL points the tests at a server of your own instead
 * (the restart tests still start their own). Missing redis-server under
 * CI=true is a failure, never a skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';

export function haveRedisServer(): boolean {
  return spawnSync('sh', ['-c', `command -v ${REDIS_SERVER}`], { stdio: 'ignore' }).status === 0;
}

/** Skip (locally) or fail (CI) when there is no redis-server and no POSIX_IPC_REDIS_URL. */
export function redisAvailable(needOwnServer = false): boolean {
  if (!needOwnServer && process.env.POSIX_IPC_REDIS_URL) return true;
  if (haveRedisServer()) return true;
  if (process.env.CI === 'true') throw new Error('redis-server is required under CI (apt-get install redis-server)');
  return false;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = netConnect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export interface RedisServer {
  url: string;
  port: number;
  /** Started by us (false: POSIX_IPC_REDIS_URL). */
  own: boolean;
  /** SIGKILLs the server and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: no persistence). */
  start(): Promise<void>;
  /** Stops it for good. */
  stop(): Promise<void>;
}

/** Starts a server (or uses POSIX_IPC_REDIS_URL unless `own`). `args`: extra redis-server arguments. */
export async function startRedis(options: { own?: boolean; args?: string[] } = {}): Promise<RedisServer> {
  if (!options.own && !options.args && process.env.POSIX_IPC_REDIS_URL) {
    const url = process.env.POSIX_IPC_REDIS_URL;
    const noop = async (): Promise<void> => {};
    return { url, port: Number(new URL(url).port || 6379), own: false, kill: noop, start: noop, stop: noop };
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pipc-redis-'));
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const c = spawn(
      REDIS_SERVER,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(options.args ?? [])],
      { stdio: 'ignore' },
    );
    child = c;
    for (let i = 0; i < 200; i++) {
      if (c.exitCode !== null) throw new Error(`redis-server exited with ${c.exitCode}`);
      if (await canConnect(port)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('redis-server did not start within 5 s');
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    own: true,
    kill,
    start,
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
