// Scene 3: shared memory. Four node processes fill one SharedArray('d') in
// place, each its own slice, counting their progress on an atomic Value('q');
// then a python3 process attaches to the same bytes by name and sums them.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SharedArray, Value } from '../../dist/index.js';

const HERE = join(dirname(fileURLToPath(import.meta.url)), 'shm');
// Where pipc lives (what `npx posix-ipc python-path` prints).
const PYTHONPATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'python');
const N = 2_000_000;
const WORKERS = 4;
const arrayName = `pipc-demo-shm-grid-${process.pid}`;
const counterName = `pipc-demo-shm-filled-${process.pid}`;

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PYTHONPATH } });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code, signal) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args[0]} exited with ${code ?? signal}`))));
  });
}

const grid = new SharedArray('d', N, { name: arrayName, lock: false });
const filled = new Value('q', 0n, { name: counterName, lock: false });
let ok = false;
try {
  console.log(`SharedArray('d', ${N}) "${grid.name}": ${((N * 8) / 2 ** 20).toFixed(1)} MiB in /dev/shm, zero-filled`);
  console.log(`${WORKERS} node processes fill it in place:`);
  const t0 = performance.now();
  const outs = await Promise.all(
    Array.from({ length: WORKERS }, (_, w) => run(process.execPath, [join(HERE, 'filler.mjs'), arrayName, String(N), counterName, String(w), String(WORKERS)])),
  );
  process.stdout.write(outs.join(''));
  console.log(`filled in ${(performance.now() - t0).toFixed(0)} ms; the atomic counter says ${filled.load()} elements written`);

  const expected = 0.5 * ((N - 1) * N) / 2;
  const mine = grid.array.reduce((s, x) => s + x, 0);
  const py = JSON.parse(await run('python3', [join(HERE, 'sum.py'), grid.name, String(N)]));
  console.log(`python3 attached to "${grid.name}" and summed it in place: ${py.sum} (last element ${py.last})`);
  console.log(`node's own sum of the same bytes: ${mine}`);
  console.log(`expected sum of i * 0.5 for i < ${N}: ${expected}`);
  ok = filled.load() === BigInt(N) && py.sum === expected && mine === expected && py.last === (N - 1) * 0.5;
  console.log(ok ? 'OK: every process saw the same bytes.' : 'WRONG: the sums or the count differ.');
} finally {
  grid.close();
  filled.close();
  grid.unlink();
  filled.unlink();
}
process.exit(ok ? 0 : 1);
