// Scene 2 — a work queue between separately started processes, no broker.
//
// This process (the "web tier") puts 40 jobs into the POSIX message queue
// "jobs". Two Node workers and one Python worker (through pipc, the
// standard-library Python module that ships with posix-ipc) take jobs, compute, and put results into "results".
// One job carries a 200 kB payload: bigger than a queue message, it travels
// through a side segment in /dev/shm that the receiving worker removes.
// The scene checks that every job was done exactly once, correctly, by
// whichever worker took it, and removes both queues.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from '../../dist/index.js';

const here = join(dirname(fileURLToPath(import.meta.url)), 'queue');
// Where pipc lives (what `npx posix-ipc python-path` prints).
const PYTHONPATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'python');
const tag = `demo-${process.pid}`;
const jobsName = `${tag}-jobs`;
const resultsName = `${tag}-results`;
const JOBS = 40;
const BIG = 200_000;

// transport 'mq': the demo shows the kernel queue that posix_ipc, ctypes and C peers open too (the python worker uses pipc, which speaks both).
const jobs = new Queue(jobsName, { maxsize: 10, exclusive: true, transport: 'mq' });
const results = new Queue(resultsName, { maxsize: 10, exclusive: true, transport: 'mq' });
let ok = false;
const children = [];

function start(label, cmd, args) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PYTHONPATH } });
  let onReady;
  const ready = new Promise((resolve) => (onReady = resolve));
  child.stdout.setEncoding('utf8').on('data', (d) => {
    for (const line of d.split('\n').filter(Boolean)) {
      console.log(`  [${label}] ${line}`);
      if (line === 'ready') onReady();
    }
  });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  children.push({ label, child, exited, ready: Promise.race([ready, exited]) });
}

try {
  start('node-1', process.execPath, [join(here, 'worker.mjs'), jobsName, resultsName, 'node-1']);
  start('node-2', process.execPath, [join(here, 'worker.mjs'), jobsName, resultsName, 'node-2']);
  start('python', process.env.PYTHON ?? 'python3', [join(here, 'worker.py'), jobsName, resultsName, 'python']);

  await Promise.all(children.map((c) => c.ready));
  console.log(`web tier: putting ${JOBS} jobs into '${jobs.name}' (maxsize ${jobs.maxsize}, ${jobs.maxMessageSize}-byte messages)`);
  const producing = (async () => {
    for (let id = 0; id < JOBS; id++) {
      const job = id === 7 ? { id, n: id, blob: 'z'.repeat(BIG) } : { id, n: id };
      await jobs.put(job, { timeout: 10_000 });
    }
    console.log('web tier: all jobs queued');
  })();

  const done = new Map();
  while (done.size < JOBS) {
    const r = await results.get({ timeout: 15_000 });
    if (done.has(r.id)) throw new Error(`job ${r.id} was done twice`);
    done.set(r.id, r);
  }
  await producing;
  for (let i = 0; i < children.length; i++) await jobs.put({ stop: true }, { timeout: 10_000 });
  const codes = await Promise.all(children.map((c) => c.exited));

  const byWorker = {};
  let wrong = 0;
  for (const r of done.values()) {
    byWorker[r.by] = (byWorker[r.by] ?? 0) + 1;
    const expected = r.id * r.id + (r.id === 7 ? BIG : 0);
    if (r.result !== expected) wrong += 1;
  }
  console.log(`web tier: ${done.size} results, ${wrong} wrong; by worker: ${JSON.stringify(byWorker)}`);
  console.log(`web tier: job 7's ${BIG}-byte payload was handled by ${done.get(7).by}`);
  const leftovers = readdirSync('/dev/shm').filter((e) => e.includes(tag));
  console.log(`web tier: side segments left in /dev/shm: ${leftovers.length}`);
  ok = wrong === 0 && codes.every((c) => c === 0) && leftovers.length === 0 && Object.keys(byWorker).length === 3;
} finally {
  for (const c of children) if (c.child.exitCode === null) c.child.kill();
  for (const q of [jobs, results]) {
    q.unlink();
    q.close();
  }
}
console.log(ok ? 'OK: every job done exactly once, correctly; queues removed' : 'FAILED');
process.exit(ok ? 0 : 1);
