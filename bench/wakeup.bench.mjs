// Wake-up latency with many distinct pending waits in one process (issue 17):
// N semaphores, an acquire pending on each, and another process releasing a
// random one at a time; latency is its release to our acquire resolving
// (process.hrtime, CLOCK_MONOTONIC in both). Rows: crash-safe and plain
// semaphores and shared-memory queues (get pending, another process puts) on
// each of the engine's ways to wait on many words: io_uring futex waits (the
// default where the kernel has them, Linux 6.7), futex_waitv threads of 127
// words each (POSIX_IPC_NO_URING=1, or a kernel before 6.7), and one thread
// per wait with 50 ms turns past 64 (both turned off: what the engine did
// before issue 17). Each configuration runs in a new process, first
// WAKE_WARMUP unmeasured wake-ups (default 2000: V8 compiles the hot code on
// its background threads meanwhile, and on two cores a woken thread waits
// behind them for up to a 4 ms tick), then the samples. Rounds are
// interleaved: each round runs every configuration once.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_DIR, compileC, median, percentile, removeShmOnExit } from './lib/report.mjs';

const marker = `pw${process.pid}`;
removeShmOnExit(marker);
const quick = process.argv.includes('--quick');
const rounds = quick ? 1 : 3;
const warmup = quick ? 300 : Number(process.env.WAKE_WARMUP ?? 2000);
const perRound = quick ? 100 : 500;
const ENGINES = {
  io_uring: {},
  futex_waitv: { POSIX_IPC_NO_URING: '1' },
  threads: { POSIX_IPC_NO_URING: '1', POSIX_IPC_NO_WAITV: '1' },
};
const configs = [];
for (const n of [64, 1024, 10_000]) {
  for (const engine of ['io_uring', 'futex_waitv']) {
    for (const kind of ['robust', 'plain', 'queue']) configs.push({ n, kind, engine, samples: perRound, warmup });
  }
  // One thread a wait: among 10,000 a wake-up takes seconds, so few samples
  // and no warm-up.
  configs.push({ n, kind: 'robust', engine: 'threads', samples: n <= 64 ? perRound : n <= 1024 ? 10 : 3, warmup: n <= 64 ? warmup : 0 });
}
const results = configs.map(() => ({ lat: [], threads: [], rss: [] }));
for (let round = 0; round < rounds; round++) {
  configs.forEach((c, k) => {
    const env = { ...process.env };
    delete env.POSIX_IPC_NO_URING;
    delete env.POSIX_IPC_NO_WAITV;
    Object.assign(env, ENGINES[c.engine]);
    const r = spawnSync(
      process.execPath,
      [join(BENCH_DIR, 'peers/wake.mjs'), 'waiter', `/${marker}.${k}.`, String(c.n), String(c.samples), c.kind, String(c.warmup)],
      { env, encoding: 'utf8', maxBuffer: 1 << 24, timeout: 10 * 60_000 },
    );
    if (r.status !== 0) throw new Error(`wake.mjs failed: ${r.stderr}`);
    const o = JSON.parse(r.stdout.trim().split('\n').pop());
    if (o.engine !== c.engine) throw new Error(`asked for the ${c.engine} engine, the process used ${o.engine}`);
    results[k].lat.push(...o.lat);
    results[k].threads.push(o.threads);
    results[k].rss.push(o.rssMiB);
  });
}
const us = (x) => (x >= 10_000 ? `${(x / 1000).toFixed(1)} ms` : `${x.toFixed(0)} µs`);
console.log('Wake-up after a release in another process, with N distinct pending waits in one process');
console.log(`(${warmup} wake-ups unmeasured first; median, p99 and p99.9 over all samples; engine threads and RSS of the waiting process)\n`);
const header = ['N', 'objects', 'engine', 'samples', 'median', 'p99', 'p99.9', 'threads', 'RSS MiB'];
const rows = configs.map((c, k) => {
  const r = results[k];
  return [
    String(c.n),
    c.kind === 'robust' ? 'crash-safe sems' : c.kind === 'plain' ? 'plain sems' : 'shm queues',
    c.engine === 'threads' ? 'threads + 50 ms turns' : c.engine,
    String(r.lat.length),
    us(median(r.lat)),
    us(percentile(r.lat, 99)),
    r.lat.length >= 1000 ? us(percentile(r.lat, 99.9)) : '-',
    String(Math.max(...r.threads)),
    median(r.rss).toFixed(0),
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
for (const line of [header, ...rows]) console.log(line.map((x, i) => (i < 3 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  '));

// The machine's floor, paced the same way (bench/wake_futex.c): one wait in
// C, released by another process; "loop" has the engine's shape (a thread in
// FUTEX_WAIT hands over to a thread in epoll_wait through an eventfd).
const cbin = compileC('wake_futex');
console.log('\nThe same wake-up in C, one pending wait, paced as above (bench/wake_futex.c)\n');
for (const [mode, what] of [
  ['direct', 'C: the waiting thread blocked in FUTEX_WAIT (one hop)'],
  ['loop', 'C: a FUTEX_WAIT thread -> eventfd -> an epoll_wait loop (the engine shape, two hops)'],
]) {
  const meds = [];
  const p99s = [];
  for (let round = 0; round < rounds; round++) {
    const [m, p] = execFileSync(cbin, [String(perRound), mode], { encoding: 'utf8' }).trim().split(' ').map(Number);
    meds.push(m);
    p99s.push(p);
  }
  console.log(`${what}: median ${median(meds).toFixed(1)} µs, p99 ${median(p99s).toFixed(1)} µs (medians over ${rounds} rounds)`);
}
{
  const meds = [];
  const p99s = [];
  for (let round = 0; round < rounds; round++) {
    const o = JSON.parse(execFileSync(process.execPath, [join(BENCH_DIR, 'peers/pipe-hop.mjs'), String(perRound), String(warmup)], { encoding: 'utf8' }).trim());
    meds.push(o.median);
    p99s.push(o.p99);
  }
  console.log(
    `Node: a pipe write from another process to this event loop's 'data' callback (no posix-ipc at all): median ${median(meds).toFixed(1)} µs, p99 ${median(p99s).toFixed(1)} µs`,
  );
}
