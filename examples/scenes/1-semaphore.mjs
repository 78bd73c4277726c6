// Scene 1: "at most 3 at once", host-wide. Five separately started worker
// processes (four node, one python3 through pipc) share one named
// semaphore with value 3. Each prints when it acquires and releases; the
// scene lines them up behind a second semaphore used as a start gate, then
// replays the timeline and prints the most that were inside at once.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Semaphore } from '../../dist/index.js';

const here = join(dirname(fileURLToPath(import.meta.url)), 'semaphore');
const name = `demo-transcode-${process.pid}`;
// Crash-safe semaphores (the default): the python3 worker opens the same ones
// through pipc, the Python module that ships with posix-ipc, found on
// PYTHONPATH as `npx posix-ipc python-path` prints it.
const slots = new Semaphore(name, { initialValue: 3, exclusive: true });
const gate = new Semaphore(`${name}-gate`, { initialValue: 0, exclusive: true });
const PYTHONPATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'python');
const t0 = process.hrtime.bigint();
const ms = (t) => (Number(BigInt(t) - t0) / 1e6).toFixed(1).padStart(7);

console.log(`semaphore /${name} created with value 3; starting 5 workers (4 node, 1 python3)\n`);
const workers = [
  ['node', [process.execPath, join(here, 'worker.mjs')]],
  ['node', [process.execPath, join(here, 'worker.mjs')]],
  ['node', [process.execPath, join(here, 'worker.mjs')]],
  ['node', [process.execPath, join(here, 'worker.mjs')]],
  ['py', ['python3', join(here, 'worker.py')]],
].map(([kind, [cmd, script]], i) => {
  const id = `${kind}-${i + 1}`;
  const env = { ...process.env, PYTHONPATH };
  const child = spawn(cmd, [script, name, gate.name, id, '3'], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const events = [];
  let signalReady;
  const ready = new Promise((r) => (signalReady = r));
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === 'ready') {
        signalReady();
        continue;
      }
      const [kind2, t, who, , job] = line.split(' ');
      events.push([BigInt(t), kind2, who, job]);
    }
  });
  return { id, events, ready, done: new Promise((r) => child.on('exit', (code) => r(code))) };
});

// Everyone is up and waiting at the gate: open it for all five at once.
await Promise.all(workers.map((w) => w.ready));
console.log('all 5 workers are waiting at the start gate; releasing it 5 times\n');
gate.release(5);

const codes = await Promise.all(workers.map((w) => w.done));
const all = workers.flatMap((w) => w.events).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] === 'exit' ? -1 : 1));
let inside = 0;
let most = 0;
console.log('    time  worker  event     inside');
for (const [t, kind, who, job] of all) {
  inside += kind === 'enter' ? 1 : -1;
  most = Math.max(most, inside);
  console.log(`${ms(t)} ms  ${who.padEnd(6)}  ${kind === 'enter' ? 'acquired' : 'released'}  ${'#'.repeat(inside).padEnd(3)} ${inside}   (job ${job})`);
}
const finalValue = slots.value;
slots.close();
slots.unlink();
gate.close();
gate.unlink();

console.log(`\nlargest number inside at once: ${most} (limit 3); jobs done: ${all.length / 2} of 15; semaphore value at the end: ${finalValue}`);
const ok = codes.every((c) => c === 0) && most <= 3 && most >= 2 && all.length === 30 && finalValue === 3;
console.log(ok ? 'OK: the limit held across node and python processes' : 'UNEXPECTED outcome');
process.exit(ok ? 0 : 1);
