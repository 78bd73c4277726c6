// Wake-up latency with many distinct pending waits in one process (issue 17):
// N semaphores, an acquire pending on each, and another process releasing a
// random one at a time; latency is its release to our acquire resolving
// (process.hrtime, CLOCK_MONOTONIC in both). Rows: crash-safe and plain
// semaphores and shared-memory queues (get pending, another process puts)
// with the engine's futex_waitv multiplexing, and crash-safe
// semaphores with it turned off (POSIX_IPC_NO_WAITV=1: 64 threads, jobs past
// them take 50 ms turns), which is what the engine did before. Rounds are
// interleaved: each round runs every configuration once, in a new process.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_DIR, compileC, median, percentile, removeShmOnExit } from './lib/report.mjs';

const marker = `pw${process.pid}`;
removeShmOnExit(marker);
const quick = process.argv.includes('--quick');
const rounds = quick ? 1 : 3;
const configs = [];
for (const n of [64, 1024, 10_000]) {
  configs.push({ n, kind: 'robust', waitv: true, samples: quick ? 30 : 100 });
  configs.push({ n, kind: 'plain', waitv: true, samples: quick ? 30 : 100 });
  configs.push({ n, kind: 'queue', waitv: true, samples: quick ? 30 : 100 });
  // Without multiplexing a wake-up among 10,000 takes seconds: few samples.
  configs.push({ n, kind: 'robust', waitv: false, samples: n <= 64 ? (quick ? 30 : 100) : n <= 1024 ? 10 : 3 });
}
const results = configs.map(() => ({ lat: [], threads: [], rss: [] }));
for (let round = 0; round < rounds; round++) {
  configs.forEach((c, k) => {
    const env = { ...process.env };
    if (!c.waitv) env.POSIX_IPC_NO_WAITV = '1';
    else delete env.POSIX_IPC_NO_WAITV;
    const r = spawnSync(
      process.execPath,
      [join(BENCH_DIR, 'peers/wake.mjs'), 'waiter', `/${marker}.${k}.`, String(c.n), String(c.samples), c.kind],
      { env, encoding: 'utf8', maxBuffer: 1 << 24, timeout: 10 * 60_000 },
    );
    if (r.status !== 0) throw new Error(`wake.mjs failed: ${r.stderr}`);
    const o = JSON.parse(r.stdout.trim().split('\n').pop());
    results[k].lat.push(...o.lat);
    results[k].threads.push(o.threads);
    results[k].rss.push(o.rssMiB);
  });
}
const us = (x) => (x >= 10_000 ? `${(x / 1000).toFixed(1)} ms` : `${x.toFixed(0)} µs`);
console.log('Wake-up after a release in another process, with N distinct pending waits in one process');
console.log('(median and p99 over all samples; engine threads and RSS of the waiting process)\n');
const header = ['N', 'objects', 'engine', 'samples', 'median', 'p99', 'threads', 'RSS MiB'];
const rows = configs.map((c, k) => {
  const r = results[k];
  return [
    String(c.n),
    c.kind === 'robust' ? 'crash-safe sems' : c.kind === 'plain' ? 'plain sems' : 'shm queues',
    c.waitv ? 'futex_waitv' : 'threads + 50 ms turns',
    String(r.lat.length),
    us(median(r.lat)),
    us(percentile(r.lat, 99)),
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
    const [m, p] = execFileSync(cbin, [quick ? '100' : '300', mode], { encoding: 'utf8' }).trim().split(' ').map(Number);
    meds.push(m);
    p99s.push(p);
  }
  console.log(`${what}: median ${median(meds).toFixed(1)} µs, p99 ${median(p99s).toFixed(1)} µs (medians over ${rounds} rounds)`);
}
{
  const meds = [];
  const p99s = [];
  for (let round = 0; round < rounds; round++) {
    const o = JSON.parse(execFileSync(process.execPath, [join(BENCH_DIR, 'peers/pipe-hop.mjs'), quick ? '100' : '300'], { encoding: 'utf8' }).trim());
    meds.push(o.median);
    p99s.push(o.p99);
  }
  console.log(
    `Node: a pipe write from another process to this event loop's 'data' callback (no posix-ipc at all): median ${median(meds).toFixed(1)} µs, p99 ${median(p99s).toFixed(1)} µs`,
  );
}
