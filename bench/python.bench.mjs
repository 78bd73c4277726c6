// Node <-> Python through the pipc module: semaphore hand-offs and queue round
// trips, beside Python <-> Python through pipc (plain semaphores are the
// posix_ipc-equivalent ctypes calls) and Python's own multiprocessing (fork).
// Rounds are interleaved; the ratio column is the median of per-round ratios
// to multiprocessing.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Queue, Semaphore } from '../dist/index.js';
import { BENCH_DIR, median, table, removeShmOnExit } from './lib/report.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = QUICK ? 3 : 5;
const N = QUICK ? 500 : 2000;
const PY = process.env.PYTHON ?? 'python3';
const PEER = join(BENCH_DIR, 'peers', 'py_pipc.py');
const tag = `pipc-bench-${process.pid}`;
removeShmOnExit(tag);
let seq = 0;

function py(args) {
  return new Promise((resolve, reject) => {
    const c = spawn(PY, [PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`py_pipc.py ${args[0]} exited with ${code}`))));
  });
}

async function nodeSem(robust) {
  const a = new Semaphore(`${tag}-a${++seq}`, { initialValue: 0, robust });
  const b = new Semaphore(`${tag}-b${seq}`, { initialValue: 0, robust });
  const peer = py(['sem-pong', a.name, b.name, String(N + 10), robust ? 'robust' : 'plain']);
  for (let i = 0; i < 10; i++) {
    a.release();
    await b.acquire(); // warm-up, and the peer is up
  }
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    a.release();
    await b.acquire();
  }
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / N;
  await peer;
  for (const s of [a, b]) {
    s.close();
    s.unlink();
  }
  return us;
}

async function nodeQueue(transport) {
  const opts = transport === 'mq' ? { transport, maxsize: 10, maxMessageSize: 8192 } : { transport, maxsize: 10 };
  const a = new Queue(`${tag}-qa${++seq}`, opts);
  const b = new Queue(`${tag}-qb${seq}`, opts);
  const peer = py(['q-echo', a.name, b.name, String(N + 10)]);
  const item = { id: 1, payload: 'x'.repeat(100) };
  for (let i = 0; i < 10; i++) {
    await a.put(item);
    await b.get();
  }
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    await a.put(item);
    await b.get();
  }
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / N;
  await peer;
  for (const q of [a, b]) {
    q.close();
    q.unlink();
  }
  return us;
}

const cases = {
  semNodeRobust: () => nodeSem(true),
  semNodePlain: () => nodeSem(false),
  semPyRobust: async () => Number(await py(['sem-py', String(N), 'robust'])),
  semPyPlain: async () => Number(await py(['sem-py', String(N), 'plain'])),
  semMp: async () => Number(await py(['sem-mp', String(N)])),
  qNode: () => nodeQueue('mq'),
  qNodeShm: () => nodeQueue('shm'),
  qPy: async () => Number(await py(['q-py', String(N), 'mq'])),
  qPyShm: async () => Number(await py(['q-py', String(N), 'shm'])),
  qMp: async () => Number(await py(['q-mp', String(N)])),
};
const got = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [k, fn] of Object.entries(cases)) got[k].push(await fn());
}
const ratio = (k, ref) => median(got[k].map((v, i) => v / got[ref][i]));
const row = (name, k, ref, note) => ({ name, value: median(got[k]), unit: 'µs/round trip', r: ratio(k, ref), note });
const col = [{ title: 'vs multiprocessing (median of per-round ratios)', key: 'r', fmt: (x) => `${x.toFixed(2)}x` }];
table(
  `Semaphore hand-off, one round trip (release + acquire each way), ${N} per round, ${ROUNDS} rounds`,
  [
    row('node <-> python, pipc crash-safe', 'semNodeRobust', 'semMp'),
    row('node <-> python, pipc plain sem_open', 'semNodePlain', 'semMp'),
    row('python <-> python, pipc crash-safe', 'semPyRobust', 'semMp'),
    row('python <-> python, pipc plain (posix_ipc-equivalent ctypes)', 'semPyPlain', 'semMp'),
    row('python <-> python, multiprocessing.Semaphore', 'semMp', 'semMp', 'fork-inherited, unnamed'),
  ],
  { columns: col },
);
table(
  `Queue round trip (put + get each way), a 120-byte JSON item, ${N} per round`,
  [
    row('node <-> python, pipc.Queue (mq, json)', 'qNode', 'qMp'),
    row('node <-> python, pipc.Queue (shm ring, json)', 'qNodeShm', 'qMp'),
    row('python <-> python, pipc.Queue (mq, json)', 'qPy', 'qMp'),
    row('python <-> python, pipc.Queue (shm ring, json)', 'qPyShm', 'qMp'),
    row('python <-> python, multiprocessing.Queue', 'qMp', 'qMp', 'pickle over a pipe, feeder thread'),
  ],
  { columns: col },
);
