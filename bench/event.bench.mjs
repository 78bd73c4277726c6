// Event and Barrier benchmark. Event: set() in one process to the waiter in
// another resuming, as a ping-pong round trip (one-way is about half), beside
// the same protocol in C on raw futexes and Python's mp.Event. Barrier: the
// time of one round for 2, 4 and 8 processes beside Python's mp.Barrier.
// Rounds are interleaved; ratios are per round, then the median.
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Barrier, Event } from '../dist/index.js';
import { BENCH_DIR, PYTHON, compileC, median, removeShmOnExit, table } from './lib/report.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = QUICK ? 3 : 5;
const N = QUICK ? 2000 : 5000;
const BARRIER_ROUNDS = QUICK ? 200 : 500;
const tag = `pipc-bench-${process.pid}`;
removeShmOnExit(tag);
const cbin = compileC('event_futex');
const py = (args) => execFileSync(PYTHON, [join(BENCH_DIR, 'event_mp.py'), ...args.map(String)]).toString().trim().split(' ').map(Number);

function started(child) {
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`peer exited ${c}`)));
  });
}

let seq = 0;
async function ours() {
  const a = `${tag}-a${++seq}`;
  const b = `${tag}-b${seq}`;
  const A = new Event(a);
  const B = new Event(b);
  const peer = spawn(process.execPath, [join(BENCH_DIR, 'peers/event-pong.mjs'), a, b, String(N)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await started(peer);
  const rtt = [];
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    A.set();
    await B.wait();
    B.clear();
    rtt.push(Number(process.hrtime.bigint() - t0));
  }
  await new Promise((r) => peer.once('exit', r));
  A.close();
  B.close();
  Event.unlink(a);
  Event.unlink(b);
  rtt.sort((x, y) => x - y);
  return [rtt[N >> 1], rtt[Math.floor(N * 0.99)]];
}

async function barrierRound(parties) {
  const name = `${tag}-bar${++seq}`;
  const b = new Barrier(name, { parties });
  const peers = Array.from({ length: parties - 1 }, () =>
    spawn(process.execPath, [join(BENCH_DIR, 'peers/barrier-party.mjs'), name, String(parties), String(BARRIER_ROUNDS)], { stdio: 'inherit' }),
  );
  await b.wait();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < BARRIER_ROUNDS; i++) await b.wait();
  const ns = Number(process.hrtime.bigint() - t0) / BARRIER_ROUNDS;
  await Promise.all(peers.map((p) => new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)))));
  b.close();
  Barrier.unlink(name);
  return ns;
}

const ev = { ours: [], oursP99: [], c: [], cP99: [], py: [], pyP99: [], vsC: [], vsPy: [] };
const bar = { 2: { ours: [], py: [], ratio: [] }, 4: { ours: [], py: [], ratio: [] }, 8: { ours: [], py: [], ratio: [] } };
for (let r = 0; r < ROUNDS; r++) {
  const [c50, c99] = execFileSync(cbin, [String(N)]).toString().trim().split(' ').map(Number);
  const [o50, o99] = await ours();
  const [p50, p99] = py(['event', N]);
  ev.c.push(c50), ev.cP99.push(c99), ev.ours.push(o50), ev.oursP99.push(o99), ev.py.push(p50), ev.pyP99.push(p99);
  ev.vsC.push(o50 / c50);
  ev.vsPy.push(o50 / p50);
  for (const parties of [2, 4, 8]) {
    const o = await barrierRound(parties);
    const [p] = py(['barrier', parties, BARRIER_ROUNDS]);
    bar[parties].ours.push(o);
    bar[parties].py.push(p);
    bar[parties].ratio.push(o / p);
  }
}
const us = (ns) => median(ns) / 1000;
table(
  `Event set() -> waiter in another process resumes, ping-pong round trip (${N} per round, ${ROUNDS} rounds; one-way is about half)`,
  [
    { name: 'C futex (FUTEX_WAKE / FUTEX_WAIT)', value: us(ev.c), unit: 'µs', p99: us(ev.cP99) },
    { name: 'posix-ipc Event (await wait)', value: us(ev.ours), unit: 'µs', p99: us(ev.oursP99), note: `per-round ratio: ${median(ev.vsC).toFixed(2)}x C, ${median(ev.vsPy).toFixed(2)}x Python` },
    { name: 'Python mp.Event', value: us(ev.py), unit: 'µs', p99: us(ev.pyP99) },
  ],
  { ref: 'C futex (FUTEX_WAKE / FUTEX_WAIT)', columns: [{ title: 'p99', key: 'p99' }] },
);
table(
  `Barrier: one round (${BARRIER_ROUNDS} rounds per run, ${ROUNDS} runs); "vs" is the median per-run ratio ours / Python`,
  [2, 4, 8].flatMap((p) => [
    { name: `posix-ipc Barrier, ${p} processes`, value: us(bar[p].ours), unit: 'µs', note: `${median(bar[p].ratio).toFixed(2)}x Python's` },
    { name: `Python mp.Barrier, ${p} processes`, value: us(bar[p].py), unit: 'µs' },
  ]),
);
