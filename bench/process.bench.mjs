// Process and Pool beside their peers, interleaved in one run:
//   - start-to-first-line and start-to-join of one child: posix-ipc's
//     Process (daemon and not), child_process.fork, and Python's
//     multiprocessing.Process with the spawn and fork start methods;
//   - Pool.map of a trivial function (x * x) over 10,000 items: posix-ipc's
//     Pool, piscina (worker threads, one run() per item, as its users write
//     it), and Python's Pool.map.
// Each round runs every contender once (SAMPLES children or maps each, median
// taken); ratios are per round against posix-ipc, and the table shows the
// median of those ratios, which the machine's noise moves least.
// This file is also the target module of the children it starts.
import { fork, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, PYTHON, table } from './lib/report.mjs';
import { Pool, Process, cpuCount, currentProcess } from '../dist/index.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const SAMPLES = 5;
const ITEMS = 10_000;
const PROCESSES = Math.min(4, cpuCount());

/** The Process target: one line, then return. */
export default function ready() {
  process.stdout.write('ready\n');
}

/** The Pool task (also piscina's: it calls the default export of its filename). */
export function square(x) {
  return x * x;
}

const now = () => performance.now();
const firstData = (stream) => new Promise((r) => stream.once('data', r));

async function ourStart(daemon) {
  const t0 = now();
  const p = new Process(SELF, { stdio: ['ignore', 'pipe', 'inherit'], daemon });
  p.start();
  await firstData(p.stdout);
  const t1 = now();
  await p.join();
  return { first: t1 - t0, join: now() - t0 };
}

async function forkStart() {
  const t0 = now();
  const c = fork(SELF, ['line'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const exited = new Promise((r) => c.once('exit', r));
  await firstData(c.stdout);
  const t1 = now();
  await exited;
  return { first: t1 - t0, join: now() - t0 };
}

function python(args) {
  return new Promise((resolve, reject) => {
    const c = spawn(PYTHON, [join(HERE, 'process_mp.py'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`process_mp.py ${args.join(' ')} exited ${code}`))));
  });
}

async function samples(fn) {
  await fn(); // warm-up
  const xs = [];
  for (let i = 0; i < SAMPLES; i++) xs.push(await fn());
  return { first: median(xs.map((x) => x.first)), join: median(xs.map((x) => x.join)) };
}

async function timedMaps(map) {
  await map(); // warm-up
  const xs = [];
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = now();
    await map();
    xs.push(now() - t0);
  }
  return median(xs);
}

async function main() {
  let Piscina = null;
  try {
    Piscina = (await import('piscina')).Piscina;
  } catch {
    console.log('piscina is not installed: its row is left out (npm install -D piscina)');
  }
  const startNames = ['posix-ipc Process', 'posix-ipc Process (daemon)', 'child_process.fork', 'python mp.Process (spawn)', 'python mp.Process (fork)'];
  const startRounds = startNames.map(() => []);
  const mapNames = ['posix-ipc Pool.map', ...(Piscina ? ['piscina (threads)'] : []), 'python Pool.map'];
  const mapRounds = mapNames.map(() => []);
  const items = Array.from({ length: ITEMS }, (_, i) => i);

  const pool = new Pool(SELF, { processes: PROCESSES });
  const pisc = Piscina ? new Piscina({ filename: join(HERE, 'peers', 'square.mjs'), maxThreads: PROCESSES, minThreads: PROCESSES }) : null;
  let pyMethod = '';
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const starts = [
        await samples(() => ourStart(false)),
        await samples(() => ourStart(true)),
        await samples(forkStart),
        await python(['start', 'spawn', String(SAMPLES)]),
        await python(['start', 'fork', String(SAMPLES)]),
      ];
      starts.forEach((s, i) => startRounds[i].push(s));
      const maps = [await timedMaps(() => pool.map('square', items))];
      if (pisc) maps.push(await timedMaps(() => Promise.all(items.map((x) => pisc.run(x)))));
      const py = await python(['map', String(PROCESSES), String(ITEMS), String(SAMPLES)]);
      pyMethod = py.method;
      maps.push(py.map);
      maps.forEach((m, i) => mapRounds[i].push(m));
    }
  } finally {
    pool.terminate();
    await pool.join();
    await pisc?.destroy();
  }

  const ratioOf = (rounds, i, key) => median(rounds[i].map((x, r) => (key ? x[key] / rounds[0][r][key] : x / rounds[0][r])));
  for (const [key, what] of [
    ['first', 'start() to the first line of the child'],
    ['join', 'start() to join() resolved (the child prints one line and returns)'],
  ]) {
    table(
      `One child process, ${what} (ms; ${ROUNDS} rounds x ${SAMPLES} children; ratio: median of per-round ratios)`,
      startNames.map((name, i) => ({ name, value: median(startRounds[i].map((x) => x[key])), unit: 'ms', ratio: ratioOf(startRounds, i, key) })),
      { columns: [{ title: 'vs posix-ipc', key: 'ratio', fmt: (x) => `${x.toFixed(2)}x` }] },
    );
  }
  table(
    `Pool.map of x * x over ${ITEMS} items, ${PROCESSES} workers (ms per map; python start method: ${pyMethod})`,
    mapNames.map((name, i) => ({ name, value: median(mapRounds[i]), unit: 'ms', ratio: ratioOf(mapRounds, i) })),
    { columns: [{ title: 'vs posix-ipc', key: 'ratio', fmt: (x) => `${x.toFixed(2)}x` }] },
  );
}

if (process.argv[2] === 'line') {
  process.stdout.write('ready\n');
} else if (currentProcess().name === 'MainProcess') {
  await main();
}
