// Scene 4: Node and python3 talk through a Pipe and through a Listener with an
// authkey, with multiprocessing.connection's frames and handshake on the wire.
//   1. Node hands one end of a Pipe() to a python3 worker (its fd 3) and
//      sends it jobs; the worker answers and exits when Node closes the pipe.
//   2. Node listens on an AF_UNIX socket with an authkey; a python3 client and
//      a node client (separate processes) get in, an impostor python3 with the
//      wrong key is turned away on both sides, and the listener keeps serving.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuthenticationError, Listener, Pipe } from '../../dist/index.js';

const HERE = join(dirname(fileURLToPath(import.meta.url)), 'pipe');
const PYTHON = process.env.PYTHON ?? 'python3';
const problems = [];
const check = (ok, what) => {
  if (!ok) problems.push(what);
};
const watchdog = setTimeout(() => {
  console.log('scene took too long');
  process.exit(1);
}, 18_000);

function run(cmd, args, stdio = ['ignore', 'inherit', 'inherit']) {
  const child = spawn(cmd, args, { stdio });
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  return { child, exited };
}

// 1. A Pipe to a python3 worker ----------------------------------------------
console.log('1. Pipe(): jobs to a python3 worker through its fd 3');
const [ours, theirs] = Pipe();
const worker = run(PYTHON, [join(HERE, 'worker.py')], ['ignore', 'inherit', 'inherit', theirs.fileno()]);
theirs.close(); // the worker has its copy; ours would keep the pipe from ever reaching EOF
for (let id = 1; id <= 5; id++) await ours.send({ id, n: id * 11 });
let sum = 0;
for (let id = 1; id <= 5; id++) {
  const r = await ours.recv({ timeout: 10_000 });
  console.log(`  [node ${process.pid}] job ${r.id}: ${r.id * 11}^2 = ${r.square} (python pid ${r.pid})`);
  check(r.id === id && r.square === (id * 11) ** 2, `job ${id} answered wrongly`);
  sum += r.square;
}
ours.close();
check((await worker.exited) === 0, 'python worker failed');
check(sum === 121 * 55, 'sum of squares is wrong');

// 2. A Listener with an authkey --------------------------------------------
const address = join(tmpdir(), `pipc-scene-${process.pid}.sock`);
const key = randomBytes(16).toString('hex');
const listener = new Listener(address, { authkey: key });
console.log(`\n2. Listener on ${address} (mode ${(statSync(address).mode & 0o777).toString(8)}), authkey required`);
check((statSync(address).mode & 0o777) === 0o600, 'socket file is not 0600');
const visitors = [
  run(PYTHON, [join(HERE, 'client.py'), address, key, 'client']),
  run(PYTHON, [join(HERE, 'client.py'), address, 'not-the-key', 'impostor']),
  run(process.execPath, [join(HERE, 'client.mjs'), address, key]),
];
let served = 0;
let refused = 0;
while (served + refused < visitors.length) {
  try {
    const conn = await listener.accept({ timeout: 15_000 });
    const hello = await conn.recv({ timeout: 10_000 });
    console.log(`  [node listener] ${hello.who} says ${JSON.stringify(hello.hello)}`);
    await conn.send({ welcome: hello.who, served: ++served });
    conn.close();
  } catch (err) {
    if (!(err instanceof AuthenticationError)) throw err;
    refused += 1;
    console.log(`  [node listener] refused a client: ${err.message}`);
  }
}
const codes = await Promise.all(visitors.map((v) => v.exited));
listener.close();
check(served === 2 && refused === 1, `served ${served}, refused ${refused}`);
check(codes[0] === 0 && codes[1] === 3 && codes[2] === 0, `clients exited with ${codes}`);
check(!existsSync(address), 'socket file left behind');

clearTimeout(watchdog);
if (problems.length > 0) {
  console.log(`\nFAILED: ${problems.join('; ')}`);
  process.exit(1);
}
console.log(`\nOK: 5 jobs done by python over a Pipe; 2 clients served, 1 impostor refused; socket file removed.`);
