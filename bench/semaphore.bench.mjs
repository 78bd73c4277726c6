// Semaphore benchmark: the uncontended fast path against C and against the
// cost of a bare N-API call; a cross-process hand-off against C; and a lock
// against proper-lockfile, which is what Node services use today.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lock, Semaphore } from '../dist/index.js';
import { binding } from '../dist/core/binding.js';
import { BENCH_DIR, compileC, median, percentile, table, removeShmOnExit } from './lib/report.mjs';

const require = createRequire(import.meta.url);
const lockfile = require('proper-lockfile');
const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = QUICK ? 3 : 7;
const tag = `pipc-bench-${process.pid}`;
removeShmOnExit(tag);
const cbin = compileC('semaphore');

function nsPerOp(n, fn) {
  const t0 = process.hrtime.bigint();
  fn(n);
  return Number(process.hrtime.bigint() - t0) / n;
}
async function nsPerOpAsync(n, fn) {
  const t0 = process.hrtime.bigint();
  await fn(n);
  return Number(process.hrtime.bigint() - t0) / n;
}

// --- 1. uncontended pairs, one process -------------------------------------
const N = QUICK ? 500_000 : 2_000_000;
const sem = new Semaphore(`${tag}-u`, { initialValue: 1 });
const h = (() => {
  // the raw binding, to show what the JavaScript wrapper adds
  const s = new Semaphore(`${tag}-raw`, { initialValue: 1 });
  return s;
})();
const rows = { c: [], noop2: [], sync: [], async: [], lock: [] };
for (let r = 0; r < ROUNDS; r++) {
  rows.c.push(Number(execFileSync(cbin, ['pair', `/${tag}-c`, String(N * 5)]).toString()));
  rows.noop2.push(
    nsPerOp(N, (n) => {
      const noop = binding.noop;
      for (let i = 0; i < n; i++) {
        noop();
        noop();
      }
    }),
  );
  rows.sync.push(
    nsPerOp(N, (n) => {
      for (let i = 0; i < n; i++) {
        sem.tryAcquire();
        sem.release();
      }
    }),
  );
  rows.async.push(
    await nsPerOpAsync(N / 4, async (n) => {
      for (let i = 0; i < n; i++) {
        await sem.acquire();
        sem.release();
      }
    }),
  );
}
h.close();
Semaphore.unlink(`${tag}-raw`);
execFileSync('sh', ['-c', `rm -f /dev/shm/sem.${tag}-c`]);

// --- 2. lock + unlock: ours against proper-lockfile --------------------------
const dir = mkdtempSync(join(tmpdir(), 'pipc-bench-'));
const file = join(dir, 'resource');
writeFileSync(file, '');
const plRounds = [];
const lockRounds = [];
const lock = new Lock(`${tag}-lock`);
for (let r = 0; r < ROUNDS; r++) {
  plRounds.push(
    await nsPerOpAsync(QUICK ? 100 : 300, async (n) => {
      for (let i = 0; i < n; i++) {
        const release = await lockfile.lock(file, { realpath: false });
        await release();
      }
    }),
  );
  lockRounds.push(
    await nsPerOpAsync(N / 4, async (n) => {
      for (let i = 0; i < n; i++) {
        await lock.acquire();
        lock.release();
      }
    }),
  );
}
rmSync(dir, { recursive: true, force: true });

const noop = median(rows.noop2);
table('Uncontended, one process (ns per pair, median of rounds)', [
  { name: 'C sem_trywait+sem_post', value: median(rows.c), unit: 'ns', note: 'the physical limit' },
  { name: '2 empty plain-C N-API calls', value: noop, unit: 'ns', note: 'the boundary' },
  { name: 'tryAcquire()+release()', value: median(rows.sync), unit: 'ns', note: 'target <= 2x the boundary' },
  { name: 'await acquire()+release()', value: median(rows.async), unit: 'ns', note: 'target <= 12x the boundary' },
  { name: 'Lock: await acquire()+release()', value: median(lockRounds), unit: 'ns' },
  { name: 'proper-lockfile lock+unlock', value: median(plRounds), unit: 'ns', note: 'what users do today' },
], { ref: '2 empty plain-C N-API calls' });
console.log(`proper-lockfile / Lock: ${(median(plRounds) / median(lockRounds)).toFixed(0)}x (target >= 1000x)`);

// --- 3. cross-process hand-off ------------------------------------------------
const RT = QUICK ? 1000 : 4000;
function cPingPong(spinUs) {
  const ping = `/${tag}-cp`;
  const pong = `/${tag}-cq`;
  const responder = spawn(cbin, ['pong', ping, pong, String(RT), String(spinUs)], { stdio: 'inherit' });
  const out = execFileSync(cbin, ['ping', ping, pong, String(RT), String(spinUs)]).toString().trim().split(' ').map(Number);
  return new Promise((resolve) =>
    responder.on('exit', () => {
      execFileSync('sh', ['-c', `rm -f /dev/shm/sem.${tag}-cp /dev/shm/sem.${tag}-cq`]);
      resolve({ median: out[0], p99: out[1], cpu: out[2] });
    }),
  );
}

async function nodePingPong(spinUs, mode) {
  binding.setSpin(spinUs * 1000);
  const ping = new Semaphore(`${tag}-np`, { initialValue: 0 });
  const pong = new Semaphore(`${tag}-nq`, { initialValue: 0 });
  const child = spawn(process.execPath, [join(BENCH_DIR, 'peers', 'sem-pong.mjs'), ping.name, pong.name, String(RT), mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, POSIX_IPC_SPIN_US: String(spinUs) },
  });
  let childCpu = '';
  child.stdout.on('data', (d) => (childCpu += d));
  const times = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < RT; i++) {
    const t0 = process.hrtime.bigint();
    ping.release();
    if (mode === 'sync') pong.acquireSync();
    else await pong.acquire();
    times.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  const c = process.cpuUsage(c0);
  await new Promise((r) => child.on('exit', r));
  ping.close();
  pong.close();
  Semaphore.unlink(`${tag}-np`);
  Semaphore.unlink(`${tag}-nq`);
  binding.setSpin(0);
  return { median: median(times), p99: percentile(times, 99), cpu: (c.user + c.system) / RT, childCpu: Number(childCpu) };
}

const cases = [
  ['C blocking (sem_wait)', () => cPingPong(0)],
  ['C spin 5 us then block', () => cPingPong(5)],
  ['node async (no spin)', () => nodePingPong(0, 'async')],
  ['node async (spin 50 us)', () => nodePingPong(50, 'async')],
  ['node acquireSync', () => nodePingPong(0, 'sync')],
];
const results = {};
for (let r = 0; r < (QUICK ? 1 : 3); r++) {
  for (const [name, fn] of cases) {
    const x = await fn();
    (results[name] ??= []).push(x);
  }
}
const pick = (name, key) => median(results[name].map((x) => x[key]));
table(
  `Cross-process ping-pong through two semaphores (${RT} round trips, medians of runs)`,
  cases.map(([name]) => ({
    name,
    value: pick(name, 'median'),
    unit: 'us',
    p99: pick(name, 'p99'),
    cpu: pick(name, 'cpu'),
    note: name === 'node async (no spin)' ? 'target <= 1.5x C blocking' : '',
  })),
  {
    ref: 'C blocking (sem_wait)',
    columns: [
      { key: 'p99', title: 'p99 us' },
      { key: 'cpu', title: 'cpu us/rt (pinger)' },
    ],
  },
);

sem.close();
Semaphore.unlink(`${tag}-u`);
lock.close();
lock.unlink();
