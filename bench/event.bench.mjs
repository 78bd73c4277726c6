// Event and Barrier benchmark. Event: set() in one process to the waiter in
// another resuming, as a ping-pong round trip (one-way is about half), beside
// the same protocol in C on raw futexes and Python's mp.Event. Barrier: the
// time of one round for 2, 4 and 8 processes beside Python's mp.Barrier.
// pipc rows: the same through the pipc Python module (python/pipc), Python
// <-> Python and Node <-> Python on one object (bench/event_pipc.py).
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
const pipcPy = (args) => execFileSync(PYTHON, [join(BENCH_DIR, 'event_pipc.py'), ...args.map(String)]).toString().trim().split(' ').map(Number);

function started(child) {
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`peer exited ${c}`)));
  });
}

let seq = 0;
/** Node pings; the pong is a Node process, or with `python` a Python one through pipc. */
async function ours(python = false) {
  const a = `${tag}-a${++seq}`;
  const b = `${tag}-b${seq}`;
  const A = new Event(a);
  const B = new Event(b);
  const argv = python
    ? [PYTHON, join(BENCH_DIR, 'event_pipc.py'), 'pong', a, b, String(N)]
    : [process.execPath, join(BENCH_DIR, 'peers/event-pong.mjs'), a, b, String(N)];
  const peer = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
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

/** This Node process and parties - 1 others: Node ones, or with `python` Python ones through pipc. */
async function barrierRound(parties, python = false) {
  const name = `${tag}-bar${++seq}`;
  const b = new Barrier(name, { parties });
  const argv = python
    ? [PYTHON, join(BENCH_DIR, 'event_pipc.py'), 'party', name, String(parties), String(BARRIER_ROUNDS)]
    : [process.execPath, join(BENCH_DIR, 'peers/barrier-party.mjs'), name, String(parties), String(BARRIER_ROUNDS)];
  const peers = Array.from({ length: parties - 1 }, () => spawn(argv[0], argv.slice(1), { stdio: 'inherit' }));
  await b.wait();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < BARRIER_ROUNDS; i++) await b.wait();
  const ns = Number(process.hrtime.bigint() - t0) / BARRIER_ROUNDS;
  await Promise.all(peers.map((p) => new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)))));
  b.close();
  Barrier.unlink(name);
  return ns;
}

const ev = { ours: [], oursP99: [], c: [], cP99: [], py: [], pyP99: [], vsC: [], vsPy: [], pp: [], ppP99: [], np: [], npP99: [], ppVsPy: [], npVsOurs: [] };
const bar = {};
for (const p of [2, 4, 8]) bar[p] = { ours: [], py: [], ratio: [], pp: [], np: [], ppVsPy: [], npVsOurs: [] };
for (let r = 0; r < ROUNDS; r++) {
  const [c50, c99] = execFileSync(cbin, [String(N)]).toString().trim().split(' ').map(Number);
  const [o50, o99] = await ours();
  const [p50, p99] = py(['event', N]);
  const [pp50, pp99] = pipcPy(['event', N]);
  const [np50, np99] = await ours(true);
  ev.c.push(c50), ev.cP99.push(c99), ev.ours.push(o50), ev.oursP99.push(o99), ev.py.push(p50), ev.pyP99.push(p99);
  ev.pp.push(pp50), ev.ppP99.push(pp99), ev.np.push(np50), ev.npP99.push(np99);
  ev.vsC.push(o50 / c50);
  ev.vsPy.push(o50 / p50);
  ev.ppVsPy.push(pp50 / p50);
  ev.npVsOurs.push(np50 / o50);
  for (const parties of [2, 4, 8]) {
    const o = await barrierRound(parties);
    const [p] = py(['barrier', parties, BARRIER_ROUNDS]);
    const [pp] = pipcPy(['barrier', parties, BARRIER_ROUNDS]);
    const np = await barrierRound(parties, true);
    const x = bar[parties];
    x.ours.push(o), x.py.push(p), x.pp.push(pp), x.np.push(np);
    x.ratio.push(o / p);
    x.ppVsPy.push(pp / p);
    x.npVsOurs.push(np / o);
  }
}
const us = (ns) => median(ns) / 1000;
table(
  `Event set() -> waiter in another process resumes, ping-pong round trip (${N} per round, ${ROUNDS} rounds; one-way is about half)`,
  [
    { name: 'C futex (FUTEX_WAKE / FUTEX_WAIT)', value: us(ev.c), unit: 'µs', p99: us(ev.cP99) },
    { name: 'posix-ipc Event (await wait)', value: us(ev.ours), unit: 'µs', p99: us(ev.oursP99), note: `per-round ratio: ${median(ev.vsC).toFixed(2)}x C, ${median(ev.vsPy).toFixed(2)}x Python` },
    { name: 'Python mp.Event', value: us(ev.py), unit: 'µs', p99: us(ev.pyP99) },
    { name: 'pipc.Event, Python <-> Python', value: us(ev.pp), unit: 'µs', p99: us(ev.ppP99), note: `per-round ratio: ${median(ev.ppVsPy).toFixed(2)}x mp.Event` },
    { name: 'Node Event <-> pipc.Event (Python pong)', value: us(ev.np), unit: 'µs', p99: us(ev.npP99), note: `per-round ratio: ${median(ev.npVsOurs).toFixed(2)}x Node <-> Node` },
  ],
  { ref: 'C futex (FUTEX_WAKE / FUTEX_WAIT)', columns: [{ title: 'p99', key: 'p99' }] },
);
table(
  `Barrier: one round (${BARRIER_ROUNDS} rounds per run, ${ROUNDS} runs); "vs" is the median per-run ratio ours / Python`,
  [2, 4, 8].flatMap((p) => [
    { name: `posix-ipc Barrier, ${p} processes`, value: us(bar[p].ours), unit: 'µs', note: `${median(bar[p].ratio).toFixed(2)}x Python's` },
    { name: `Python mp.Barrier, ${p} processes`, value: us(bar[p].py), unit: 'µs' },
    { name: `pipc.Barrier, ${p} Python processes`, value: us(bar[p].pp), unit: 'µs', note: `${median(bar[p].ppVsPy).toFixed(2)}x mp.Barrier` },
    { name: `Barrier, 1 Node + ${p - 1} Python (pipc)`, value: us(bar[p].np), unit: 'µs', note: `${median(bar[p].npVsOurs).toFixed(2)}x all-Node` },
  ]),
);
