// Wake-up latency with many distinct pending waits (bench/wakeup.bench.mjs).
//   wake.mjs waiter <prefix> <n> <samples> <robust|plain|queue> [warmup]
// creates n semaphores of value 0 (or n empty shared-memory queues: get for
// acquire, put for release), awaits an acquire on every one, and starts
// a releaser child (`wake.mjs releaser ...`) that opens them by name. For
// each sample the waiter names a random semaphore; the releaser reads the
// monotonic clock, stores it in a shared Value and releases it; the waiter
// reads the clock when its acquire resolves (process.hrtime is
// CLOCK_MONOTONIC, one clock for both processes), then the stored time, then
// waits on that semaphore again. The release is the only thing that wakes the
// waiting process: an earlier version wrote the time back down the
// releaser's stdout, which woke the waiter's event loop at the same moment
// as the engine thread, three runnable threads on two cores, and doubled to
// tripled the p99 it measured (bench/README.md). The first `warmup`
// wake-ups are not measured. Prints one JSON line: latencies in µs, the
// engine's way of waiting (io_uring, futex_waitv or threads), its threads,
// RSS.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Queue, Semaphore, Value } from '../../dist/index.js';
import { binding } from '../../dist/core/binding.js';

const [role, prefix, nText, samplesText, kind, warmupText] = process.argv.slice(2);
const n = Number(nText);
const robust = kind !== 'plain';
const names = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
// A queue in the shape of a semaphore of value 0.
class QueueSem {
  constructor(name, create) {
    this.q = new Queue(name, { transport: 'shm', capacity: 4096, create });
    this.name = name;
  }
  acquire() {
    return this.q.get();
  }
  release() {
    this.q.putNowait(1);
  }
  close() {
    this.q.close();
  }
}
const open = (name, create) =>
  kind === 'queue' ? new QueueSem(name, create) : new Semaphore(name, create ? { initialValue: 0, robust } : { create: false, robust });
const unlink = (name) => (kind === 'queue' ? Queue.unlink(name) : Semaphore.unlink(name));
const stampName = `${prefix.slice(1)}stamp`;

if (role === 'releaser') {
  const sems = names.map((name) => open(name, false));
  const stamp = new Value('q', 0n, { name: stampName, create: false });
  process.stdout.write('ready\n');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'end') break;
    const i = Number(line);
    stamp.value = process.hrtime.bigint();
    sems[i].release();
  }
  for (const s of sems) s.close();
  process.exit(0);
}

const samples = Number(samplesText);
const stamp = new Value('q', 0n, { name: stampName });
const sems = names.map((name) => open(name, true));
const resolved = new Map(); // index -> hrtime when its acquire resolved
let notify = null;
function arm(i) {
  sems[i].acquire().then(() => {
    resolved.set(i, process.hrtime.bigint());
    if (notify) notify();
  }, () => {}); // closed at the end
}
for (let i = 0; i < n; i++) arm(i);

const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'releaser', prefix, nText, '0', kind], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
if ((await lines.next()).value !== 'ready') throw new Error('releaser did not start');
await new Promise((r) => setTimeout(r, 200)); // every wait submitted and asleep
const stats = binding.engineStats();
const threads = stats.threads;
const engine = stats.ringThreads > 0 ? 'io_uring' : stats.muxThreads > 0 ? 'futex_waitv' : 'threads';
const lat = [];
const warmup = Number(warmupText ?? 0);
for (let k = 0; k < warmup + samples; k++) {
  const i = Math.floor(Math.random() * n);
  child.stdin.write(`${i}\n`);
  while (!resolved.has(i)) await new Promise((r) => (notify = r));
  const t0 = stamp.value;
  notify = null;
  if (k >= warmup) lat.push(Number(resolved.get(i) - t0) / 1e3);
  resolved.delete(i);
  arm(i);
  await new Promise((r) => setImmediate(r));
}
child.stdin.write('end\n');
await new Promise((r) => child.once('exit', r));
process.stdout.write(`${JSON.stringify({ lat, engine, threads, rssMiB: process.memoryUsage().rss / 2 ** 20 })}\n`);
for (const s of sems) {
  const name = s.name;
  s.close();
  unlink(name);
}
stamp.close();
Value.unlink(stampName);
process.exit(0);
