// Redis backend benchmark: what the network costs against our local POSIX
// classes, and how we compare with the Redis locks and queues Node services
// use today (redis-semaphore's Mutex, @sesamecare-oss/redlock, BullMQ), all
// on one redis-server started here (or POSIX_IPC_REDIS_URL). Rounds are
// interleaved; the ratio column is the median of per-round ratios.
import { spawn } from 'node:child_process';
import { createServer, connect as netConnect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis as IORedis } from 'ioredis';
import { Mutex } from 'redis-semaphore';
import { Redlock } from '@sesamecare-oss/redlock';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { Lock as LocalLock, Queue as LocalQueue } from '../dist/index.js';
import { connect, Lock, Queue } from '../dist/redis/index.js';
import { median, table, removeShmOnExit } from './lib/report.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = QUICK ? 3 : 5;
const tag = `pipc-bench-${process.pid}`;
removeShmOnExit(tag);

async function startServer() {
  if (process.env.POSIX_IPC_REDIS_URL) return { url: process.env.POSIX_IPC_REDIS_URL, stop: async () => {} };
  const port = await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const dir = mkdtempSync(join(tmpdir(), 'pipc-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((r) => {
      const c = netConnect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), r(true)));
      c.once('error', () => r(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const server = await startServer();
const url = new URL(server.url);
const ioOptions = { host: url.hostname, port: Number(url.port || 6379) };
const redis = await connect(server.url);
const redis2 = await connect(server.url); // the other "host" for hand-offs
const io = new IORedis(ioOptions);
const io2 = new IORedis(ioOptions);

const usPer = async (n, fn) => {
  const t0 = process.hrtime.bigint();
  await fn(n);
  return Number(process.hrtime.bigint() - t0) / n / 1000;
};

// --- 1. uncontended lock + unlock -------------------------------------------
const N1 = QUICK ? 300 : 1000;
const ours = new Lock(`${tag}-u`, { redis });
const local = new LocalLock(`${tag}-u`);
const mutexKey = `${tag}-mutex`;
const redlock = new Redlock([io], { retryCount: 1000, retryDelay: 10, retryJitter: 0 });
const uncontended = {
  'posix-ipc/redis Lock': async (n) => {
    for (let i = 0; i < n; i++) {
      await ours.acquire();
      await ours.release();
    }
  },
  'posix-ipc Lock (local POSIX)': async (n) => {
    for (let i = 0; i < n; i++) {
      await local.acquire();
      local.release();
    }
  },
  'redis-semaphore Mutex': async (n) => {
    for (let i = 0; i < n; i++) {
      const m = new Mutex(io, mutexKey, { lockTimeout: 10_000 });
      await m.acquire();
      await m.release();
    }
  },
  '@sesamecare-oss/redlock': async (n) => {
    for (let i = 0; i < n; i++) {
      const l = await redlock.acquire([`${tag}-redlock`], 10_000);
      await l.release();
    }
  },
};

// --- 2. hand-off: holder releases, a waiter on another connection takes it ---
const N2 = QUICK ? 50 : 150;
async function handoff(n, make) {
  const [a, b] = make();
  let total = 0;
  for (let i = 0; i < n; i++) {
    const [holder, waiter] = i % 2 ? [a, b] : [b, a];
    await holder.take();
    const got = waiter.take();
    await new Promise((r) => setTimeout(r, 2)); // the waiter is parked
    const t0 = process.hrtime.bigint();
    await holder.give();
    await got;
    total += Number(process.hrtime.bigint() - t0) / 1000;
    await waiter.give();
  }
  return total / n;
}
const oursA = new Lock(`${tag}-h`, { redis });
const oursB = new Lock(`${tag}-h`, { redis: redis2 });
const localA = new LocalLock(`${tag}-h`);
const localB = new LocalLock(`${tag}-h`);
const redlock2 = new Redlock([io2], { retryCount: 1000, retryDelay: 10, retryJitter: 0 });
const handoffs = {
  'posix-ipc/redis Lock': (n) =>
    handoff(n, () => [oursA, oursB].map((l) => ({ take: () => l.acquire(), give: () => l.release() }))),
  'posix-ipc Lock (local POSIX)': (n) =>
    handoff(n, () => [localA, localB].map((l) => ({ take: () => l.acquire(), give: async () => l.release() }))),
  'redis-semaphore Mutex': (n) =>
    handoff(n, () =>
      [io, io2].map((c) => {
        let m;
        return {
          take: () => ((m = new Mutex(c, `${tag}-hm`, { lockTimeout: 10_000, acquireTimeout: 10_000 })), m.acquire()),
          give: () => m.release(),
        };
      }),
    ),
  '@sesamecare-oss/redlock': (n) =>
    handoff(n, () =>
      [redlock, redlock2].map((r) => {
        let l;
        return { take: async () => (l = await r.acquire([`${tag}-hr`], 10_000)), give: () => l.release() };
      }),
    ),
};

// --- 3. queue: put N small items, then get them ---------------------------------
const N3 = QUICK ? 500 : 2000;
const oq = new Queue(`${tag}-q`, { redis });
const lq = new LocalQueue(`${tag}-q`);
const bullName = `${tag}-bull`;
const bq = new BullQueue(bullName, { connection: ioOptions });
const queues = {
  'posix-ipc/redis Queue': async (n) => {
    for (let i = 0; i < n; i += 8) {
      for (let j = 0; j < 8; j++) await oq.put({ i: i + j });
      for (let j = 0; j < 8; j++) await oq.get();
    }
  },
  'posix-ipc Queue (local)': async (n) => {
    // batches of 8: the kernel queue holds 10 by default
    for (let i = 0; i < n; i += 8) {
      for (let j = 0; j < 8; j++) await lq.put({ i: i + j });
      for (let j = 0; j < 8; j++) await lq.get();
    }
  },
  ...(process.env.BENCH_BULLMQ === '1' ? { 'BullMQ add + Worker': async (n) => {
    let left = n;
    let done;
    const all = new Promise((r) => (done = r));
    const w = new BullWorker(bullName, async () => {
      if (--left === 0) done();
    }, { connection: { ...ioOptions, maxRetriesPerRequest: null }, concurrency: 1, autorun: true });
    for (let i = 0; i < n; i++) await bq.add('j', { i }, { removeOnComplete: true, removeOnFail: true });
    await all;
    await w.close();
  } } : {}),
};

async function measure(set, n) {
  const per = Object.fromEntries(Object.keys(set).map((k) => [k, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, fn] of Object.entries(set)) per[k].push(await fn(n));
  }
  return per;
}

function rowsOf(per, ref, unit, toValue = (x) => x) {
  return Object.entries(per).map(([name, xs]) => {
    const ratios = xs.map((x, i) => toValue(x) / toValue(per[ref][i]));
    return { name, value: median(xs.map(toValue)), unit, ratio: median(ratios) };
  });
}

function print(title, rows, ref, lowerIsBetter) {
  table(title, rows.map((r) => ({ ...r, note: `median of ratios ${r.ratio.toFixed(2)}x` })), { ref, lowerIsBetter });
}

const u = await measure(Object.fromEntries(Object.entries(uncontended).map(([k, fn]) => [k, (n) => usPer(n, fn)])), N1);
print(`Uncontended lock + unlock, one process (${N1} pairs x ${ROUNDS} rounds)`, rowsOf(u, 'posix-ipc/redis Lock', 'us/pair'), 'posix-ipc/redis Lock', true);
const h = await measure(handoffs, N2);
print(
  `Hand-off latency: release -> a waiter on another connection holds it (${N2} x ${ROUNDS} rounds; redis-semaphore polls every 10 ms, redlock retries every 10 ms)`,
  rowsOf(h, 'posix-ipc/redis Lock', 'us'),
  'posix-ipc/redis Lock',
  true,
);
const q = await measure(
  Object.fromEntries(Object.entries(queues).map(([k, fn]) => [k, (n) => usPer(n, fn)])),
  N3,
);
print(
  `Queue throughput: ${N3} small items, put and got in batches of 8 (BullMQ: added and processed by a Worker) x ${ROUNDS} rounds`,
  rowsOf(q, 'posix-ipc/redis Queue', 'items/s', (us) => 1e6 / us),
  'posix-ipc/redis Queue',
  false,
);

await Promise.all([ours.close(), oursA.close(), oursB.close(), oq.close()]);
await Queue.unlink(`${tag}-q`, { redis });
local.close();
localA.close();
localB.close();
LocalLock.unlink(`${tag}-u`);
LocalLock.unlink(`${tag}-h`);
lq.close();
lq.unlink();
await bq.obliterate({ force: true }).catch(() => {});
await bq.close();
await redis.close();
await redis2.close();
io.disconnect();
io2.disconnect();
await server.stop();
