// Shared memory benchmark: posix-ipc's SharedMemory / Value beside the peers a
// user would otherwise pick, in one run.
//   1. Value.add: ops/s in one process and contended by two processes, against
//      C __atomic_fetch_add on the same mapping (and one empty N-API call).
//   2. Moving 256 MiB from one process to another: SharedMemory (write, signal,
//      copy out) against a pipe, child_process IPC and Python's
//      multiprocessing.shared_memory doing the same.
//   3. Bulk write bandwidth into the mapping against C memcpy.
// The same file is the benchmark's Node child (argv[2] === '--child').
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Semaphore, SharedMemory, Value } from '../dist/index.js';
import { PYTHON, compileC, median, table, removeShmOnExit } from './lib/report.mjs';

const SELF = fileURLToPath(import.meta.url);
const DIR = dirname(SELF);
const MiB = 1024 * 1024;
const MOVE_SIZE = 256 * MiB;
const tag = `pipc-bench-shm-${process.pid}`;
removeShmOnExit(tag);

const nowNs = () => process.hrtime.bigint();
const elapsedNs = (t0) => Number(process.hrtime.bigint() - t0);

// ---------------------------------------------------------------------------
// Children

async function child(role, args) {
  if (role === 'add') {
    // N adds on Value NAME, after a barrier on the int32 at offset 64.
    const [name, n, parties] = [args[0], Number(args[1]), Number(args[2])];
    const v = new Value('i', 0, { name, create: false, lock: false });
    const shm = new SharedMemory(name);
    const arrived = new Int32Array(shm.buffer.buffer, 64, 1);
    Atomics.add(arrived, 0, 1);
    while (Atomics.load(arrived, 0) < parties);
    const t0 = nowNs();
    for (let i = 0; i < n; i++) v.add(1);
    console.log(elapsedNs(t0));
    v.close();
    shm.close();
  } else if (role === 'move-shm') {
    // Waits for "ready", then reads the bytes: `copy` copies the segment out
    // into its own memory; `touch` uses them in place, reading one byte of
    // every page (so every page is really mapped in this process). Posts "done".
    const [name, how] = args;
    const shm = new SharedMemory(name);
    const ready = new Semaphore(`${name}-ready`, { create: false });
    const done = new Semaphore(`${name}-done`, { create: false });
    const dst = how === 'copy' ? Buffer.allocUnsafeSlow(shm.size) : null;
    let sum = 0;
    for (;;) {
      ready.acquireSync();
      const buf = shm.buffer;
      if (buf[1] === 0xff) break; // stop
      if (dst !== null) dst.set(buf);
      else for (let i = 0; i < buf.length; i += 4096) sum += buf[i];
      done.release();
    }
    if (sum < 0) console.log(sum); // keeps the reads from being optimised away
    for (const x of [ready, done, shm]) x.close();
  } else if (role === 'move-pipe') {
    const size = Number(args[0]);
    const dst = Buffer.allocUnsafeSlow(size);
    let got = 0;
    for await (const chunk of process.stdin) {
      let off = 0;
      while (off < chunk.length) {
        const take = Math.min(chunk.length - off, size - got);
        chunk.copy(dst, got, off, off + take);
        off += take;
        got += take;
        if (got === size) {
          got = 0;
          process.stdout.write('k');
        }
      }
    }
  } else if (role === 'move-ipc') {
    const size = Number(args[0]);
    const dst = Buffer.allocUnsafeSlow(size);
    let got = 0;
    process.on('message', (m) => {
      if (m === 'stop') return process.disconnect();
      dst.set(m, got);
      got += m.length;
      if (got === size) {
        got = 0;
        process.send('k');
      }
    });
  }
}

function spawnChild(role, args, options = {}) {
  return spawn(process.execPath, [SELF, '--child', role, ...args], { stdio: ['pipe', 'pipe', 'inherit'], ...options });
}

async function output(proc) {
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  const [code] = await once(proc, 'close');
  if (code !== 0) throw new Error(`child exited with ${code}`);
  return out.trim();
}

function runC(bin, args) {
  const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return output(p);
}

// ---------------------------------------------------------------------------
// 1. Atomic add

async function benchAdd(cBin) {
  const name = `${tag}-add`;
  const N = 5_000_000;
  const ROUNDS = 5;
  // 128 bytes: the counter at 0, the children's barrier at 64 (its own cache line).
  const seg = new SharedMemory(name, { create: true, size: 128 });
  const barrier = new Int32Array(seg.buffer.buffer, 64, 1);
  const value = new Value('i', 0, { name, lock: false });
  const { binding } = await import('../dist/core/binding.js');
  try {
    const inProcess = (fn) => {
      const xs = [];
      for (let r = 0; r < ROUNDS; r++) {
        const t0 = nowNs();
        fn();
        xs.push(elapsedNs(t0) / N);
      }
      return median(xs);
    };
    const nop = inProcess(() => {
      for (let i = 0; i < N; i++) binding.noop(1);
    });
    const add1 = inProcess(() => {
      for (let i = 0; i < N; i++) value.add(1);
    });
    // Applications use more than one Value: with two and with fifty in use,
    // the library's call sites must stay as fast (no per-instance targets).
    const many = Array.from({ length: 50 }, (_, k) => new Value('i', 0, { name: `${name}-m${k}`, lock: false }));
    const add2 = inProcess(() => {
      const [a, b] = many;
      for (let i = 0; i < N; i += 2) {
        a.add(1);
        b.add(1);
      }
    });
    const add50 = inProcess(() => {
      for (let i = 0; i < N; i++) many[i % 50].add(1);
    });
    const nop50 = inProcess(() => {
      for (let i = 0; i < N; i++) binding.noop(many[i % 50]);
    });
    for (const v of many) {
      v.close();
      v.unlink();
    }
    const sab = new Int32Array(new SharedArrayBuffer(4));
    const atomicsLocal = inProcess(() => {
      for (let i = 0; i < N; i++) Atomics.add(sab, 0, 1);
    });
    const c1s = [];
    for (let r = 0; r < ROUNDS; r++) {
      Atomics.store(barrier, 0, 0);
      c1s.push(Number(await runC(cBin, ['add', '/' + name, String(N), '1'])) / N);
    }
    const c1 = median(c1s);
    // Two processes at once: ns per op of the pair = the slower one's time / (2 N).
    const pair = async (start) => {
      const xs = [];
      for (let r = 0; r < ROUNDS; r++) {
        Atomics.store(barrier, 0, 0);
        const times = (await Promise.all([start(), start()])).map(Number);
        xs.push(Math.max(...times) / (2 * N));
      }
      return median(xs);
    };
    const node2 = await pair(() => output(spawnChild('add', [name, String(N), '2'])));
    const c2 = await pair(() => runC(cBin, ['add', '/' + name, String(N), '2']));
    const row = (n, ns, note) => ({ name: n, value: ns, unit: 'ns/op', rate: 1e9 / ns, note });
    table(
      `Atomic add on a shared int32 (${N / 1e6} M ops, median of ${ROUNDS})`,
      [
        row('empty plain-C N-API call', nop, 'yardstick: one native call, nothing done'),
        row('Value.add, 1 process', add1, `${(add1 / nop).toFixed(2)}x an empty N-API call (target <= 1.5x)`),
        row('Value.add, 2 Values in use', add2, `${(add2 / nop).toFixed(2)}x an empty N-API call (target <= 1.5x)`),
        row('Value.add, 50 Values round-robin', add50, `${(add50 / nop50).toFixed(2)}x an empty call in the same loop (target <= 1.5x)`),
        row('empty N-API call, 50-object loop', nop50, 'yardstick for the row above'),
        row('C __atomic_fetch_add, 1 process', c1),
        row('Atomics.add, SharedArrayBuffer', atomicsLocal, 'one process only: not shareable across processes'),
        row('Value.add, 2 processes', node2, 'total of both; contended cache line'),
        row('C __atomic_fetch_add, 2 processes', c2, 'total of both'),
      ],
      { ref: 'C __atomic_fetch_add, 1 process', columns: [{ title: 'ops/s', key: 'rate' }] },
    );
  } finally {
    value.close();
    seg.close();
    seg.unlink();
  }
}

// ---------------------------------------------------------------------------
// 2. Moving 256 MiB

const ROUNDS_MOVE = 5;

async function moveShm(src, how) {
  const name = `${tag}-move`;
  const shm = new SharedMemory(name, { create: true, size: MOVE_SIZE });
  const ready = new Semaphore(`${name}-ready`, { initialValue: 0 });
  const done = new Semaphore(`${name}-done`, { initialValue: 0 });
  const proc = spawnChild('move-shm', [name, how]);
  const closed = output(proc);
  try {
    const xs = [];
    for (let r = 0; r < ROUNDS_MOVE + 1; r++) {
      const t0 = nowNs();
      shm.buffer.set(src); // write
      ready.release(); // signal
      await done.acquire(); // the receiver has copied it out
      if (r > 0) xs.push(elapsedNs(t0) / 1e6); // round 0 warms the receiver's pages
    }
    shm.buffer[1] = 0xff;
    ready.release();
    await closed;
    return median(xs);
  } finally {
    shm.close();
    shm.unlink();
    for (const s of [ready, done]) {
      s.close();
      s.unlink();
    }
  }
}

async function movePipe(src) {
  const proc = spawnChild('move-pipe', [String(MOVE_SIZE)]);
  const closed = once(proc, 'close');
  const xs = [];
  for (let r = 0; r < ROUNDS_MOVE + 1; r++) {
    const t0 = nowNs();
    const ack = once(proc.stdout, 'data');
    proc.stdin.write(src);
    await ack;
    if (r > 0) xs.push(elapsedNs(t0) / 1e6);
  }
  proc.stdin.end();
  await closed;
  return median(xs);
}

async function moveIpc(src) {
  const CHUNK = 1 * MiB;
  const proc = spawnChild('move-ipc', [String(MOVE_SIZE)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  const closed = once(proc, 'close');
  const xs = [];
  for (let r = 0; r < ROUNDS_MOVE + 1; r++) {
    const t0 = nowNs();
    const ack = once(proc, 'message');
    for (let off = 0; off < MOVE_SIZE; off += CHUNK) proc.send(src.subarray(off, off + CHUNK));
    await ack;
    if (r > 0) xs.push(elapsedNs(t0) / 1e6);
  }
  proc.send('stop');
  await closed;
  return median(xs);
}

async function movePython() {
  const p = spawn(PYTHON, [join(DIR, 'shm-move.py'), String(MOVE_SIZE), String(ROUNDS_MOVE)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(await output(p)).median_ms;
}

async function benchMove() {
  const src = Buffer.allocUnsafeSlow(MOVE_SIZE);
  for (let i = 0; i < MOVE_SIZE; i += 4096) src.fill((i >> 12) % 200, i, i + 4096);
  const row = (name, ms, note) => ({ name, value: ms, unit: 'ms', rate: (MOVE_SIZE / 1e9) / (ms / 1e3), note });
  const rows = [
    row('SharedMemory (write, signal, read in place)', await moveShm(src, 'touch'), 'zero copy: receiver reads every page where it is'),
    row('SharedMemory (write, signal, copy out)', await moveShm(src, 'copy'), 'receiver copies into its own Buffer'),
    row('pipe (child stdin)', await movePipe(src)),
    row('child_process IPC (advanced, 1 MiB msgs)', await moveIpc(src), "serialization: 'advanced'"),
    row('Python shared_memory (write, signal, copy out)', await movePython(), 'multiprocessing.Pipe signals'),
  ];
  table(`Moving 256 MiB to another process (median of ${ROUNDS_MOVE})`, rows, {
    ref: 'child_process IPC (advanced, 1 MiB msgs)',
    columns: [{ title: 'GB/s', key: 'rate', fmt: (x) => x.toFixed(2) }],
  });
}

// ---------------------------------------------------------------------------
// 3. Bulk write bandwidth

async function benchBulk(cBin) {
  const name = `${tag}-bulk`;
  const ROUNDS = 15;
  const shm = new SharedMemory(name, { create: true, size: MOVE_SIZE });
  try {
    const src = Buffer.alloc(MOVE_SIZE, 0x5a);
    shm.buffer.fill(0); // pages allocated first, as the C peer does
    const xs = [];
    for (let r = 0; r < ROUNDS; r++) {
      src[r] = r;
      const t0 = nowNs();
      shm.buffer.set(src);
      xs.push(elapsedNs(t0));
    }
    const node = median(xs);
    const c = Number(await runC(cBin, ['memcpy', '/' + name, String(ROUNDS)]));
    const gbs = (ns) => MOVE_SIZE / ns;
    table(
      `Bulk write of 256 MiB into a mapped segment (median of ${ROUNDS})`,
      [
        { name: 'C memcpy', value: c / 1e6, unit: 'ms', rate: gbs(c) },
        { name: 'shm.buffer.set(src)', value: node / 1e6, unit: 'ms', rate: gbs(node), note: `bandwidth ${((c / node) * 100).toFixed(0)}% of C's (target >= 67%)` },
      ],
      { ref: 'C memcpy', columns: [{ title: 'GB/s', key: 'rate', fmt: (x) => x.toFixed(1) }] },
    );
  } finally {
    shm.close();
    shm.unlink();
  }
}

// ---------------------------------------------------------------------------

if (process.argv[2] === '--child') {
  await child(process.argv[3], process.argv.slice(4));
} else {
  const cBin = compileC('shm-peer');
  const only = process.argv[2];
  if (!only || only === 'add') await benchAdd(cBin);
  if (!only || only === 'bulk') await benchBulk(cBin);
  if (!only || only === 'move') await benchMove();
}
