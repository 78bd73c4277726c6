// Pipes between two processes, side by side in one run: round trip of a small
// object and throughput of 64 KiB and 4 MiB frames, for
//   - posix-ipc: a Pipe() end in a node child, rebuilt with new Connection(3);
//   - a raw Node Unix socket (net) with the same framing, written by hand;
//   - child_process IPC (process.send; 'advanced' serialization for bytes);
//   - Python's multiprocessing.Pipe between two python3 processes (pipe_bench.py).
// The same file is the node child (argv[2] names its role).
import { spawn } from 'node:child_process';
import { existsSync, unlinkSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, PYTHON, table } from './lib/report.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const LIB = join(HERE, '..', 'dist', 'index.js');
const ROUNDS = 5;
const PINGS = 2000;
const SIZES = [
  { label: '64 KiB', size: 64 * 1024, count: 2000 },
  { label: '4 MiB', size: 4 * 1024 * 1024, count: 40 },
];

// ---------------------------------------------------------------- framing by hand
function frame(payload) {
  const b = Buffer.allocUnsafe(4 + payload.length);
  b.writeInt32BE(payload.length, 0);
  payload.copy(b, 4);
  return b;
}

/** Calls onFrame(buf) for each complete frame in a stream of chunks (the usual naive parser). */
function deframer(onFrame) {
  let chunks = [];
  let have = 0;
  return (chunk) => {
    chunks.push(chunk);
    have += chunk.length;
    for (;;) {
      if (have < 4) return;
      let head = chunks[0].length >= 4 ? chunks[0] : Buffer.concat(chunks);
      const n = head.readInt32BE(0);
      if (have < 4 + n) return;
      const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      onFrame(all.subarray(4, 4 + n));
      const rest = all.subarray(4 + n);
      chunks = rest.length ? [rest] : [];
      have = rest.length;
    }
  };
}

function writeFramed(sock, payload) {
  if (payload.length <= 16384) return sock.write(frame(payload));
  const h = Buffer.allocUnsafe(4);
  h.writeInt32BE(payload.length, 0);
  sock.cork();
  sock.write(h);
  const ok = sock.write(payload);
  sock.uncork();
  return ok;
}

// ---------------------------------------------------------------- children
async function child(role, arg) {
  if (role === 'ours') {
    const { Connection } = await import(LIB);
    const conn = new Connection(3);
    if (arg === 'echo') {
      for await (const m of conn) await conn.send(m);
    } else {
      const n = Number(arg);
      for (let i = 0; i < n; i++) await conn.recvBytes();
      await conn.send('done');
      await conn.recv().catch(() => {});
    }
    conn.close();
  } else if (role === 'net') {
    const [path, what] = arg.split(',');
    const sock = createConnection(path);
    if (what === 'echo') {
      sock.on('data', deframer((f) => writeFramed(sock, Buffer.from(JSON.stringify(JSON.parse(f.toString()))))));
    } else {
      let left = Number(what);
      sock.on('data', deframer(() => {
        if (--left === 0) writeFramed(sock, Buffer.from('"done"'));
      }));
    }
    sock.on('end', () => sock.end());
  } else if (role === 'cpipc') {
    if (arg === 'echo') {
      process.on('message', (m) => process.send(m));
    } else {
      let left = Number(arg);
      process.on('message', () => {
        if (--left === 0) process.send('done');
      });
    }
    process.on('disconnect', () => process.exit(0));
  }
}

// ---------------------------------------------------------------- parent side
function spawnSelf(role, arg, extra = {}) {
  return spawn(process.execPath, [fileURLToPath(import.meta.url), role, arg], { stdio: ['ignore', 'inherit', 'inherit', ...(extra.stdio ?? [])], ...extra.options });
}

async function oursPingPong(Pipe) {
  const [p, c] = Pipe();
  const ch = spawnSelf('ours', 'echo', { stdio: [c.fileno()] });
  c.close();
  const msg = { op: 'ping', id: 0, payload: 'x'.repeat(32) };
  for (let i = 0; i < 200; i++) {
    await p.send(msg);
    await p.recv();
  }
  const xs = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < PINGS; i++) {
      msg.id = i;
      await p.send(msg);
      await p.recv();
    }
    xs.push(Number(process.hrtime.bigint() - t0) / 1e3 / PINGS);
  }
  p.close();
  await new Promise((r) => ch.on('close', r));
  return median(xs);
}

async function oursThroughput(Pipe, size, count) {
  const xs = [];
  const buf = Buffer.alloc(size, 1);
  for (let r = 0; r < ROUNDS; r++) {
    const [p, c] = Pipe();
    const ch = spawnSelf('ours', String(count), { stdio: [c.fileno()] });
    c.close();
    progress(`ours round ${r}`);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) await p.sendBytes(buf);
    await p.recv();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    xs.push((size * count) / s / 1e6);
    p.close();
    await new Promise((res) => ch.on('close', res));
  }
  return median(xs);
}

async function netPeer(arg, body) {
  const path = join(tmpdir(), `pipc-bench-${process.pid}.sock`);
  if (existsSync(path)) unlinkSync(path);
  const server = createServer();
  await new Promise((r) => server.listen(path, r));
  const ch = spawnSelf('net', `${path},${arg}`);
  const sock = await new Promise((r) => server.once('connection', r));
  const frames = [];
  let wake = null;
  sock.on('data', deframer((f) => {
    frames.push(f);
    if (wake) {
      const w = wake;
      wake = null;
      w();
    }
  }));
  const next = () => (frames.length ? Promise.resolve(frames.shift()) : new Promise((r) => (wake = r)).then(() => frames.shift()));
  const result = await body(sock, next);
  sock.end();
  server.close();
  await new Promise((r) => ch.on('close', r));
  return result;
}

async function netPingPong() {
  return netPeer('echo', async (sock, next) => {
    const msg = { op: 'ping', id: 0, payload: 'x'.repeat(32) };
    for (let i = 0; i < 200; i++) {
      writeFramed(sock, Buffer.from(JSON.stringify(msg)));
      JSON.parse((await next()).toString());
    }
    const xs = [];
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < PINGS; i++) {
        msg.id = i;
        writeFramed(sock, Buffer.from(JSON.stringify(msg)));
        JSON.parse((await next()).toString());
      }
      xs.push(Number(process.hrtime.bigint() - t0) / 1e3 / PINGS);
    }
    return median(xs);
  });
}

async function netThroughput(size, count) {
  const xs = [];
  const buf = Buffer.alloc(size, 1);
  for (let r = 0; r < ROUNDS; r++) {
    xs.push(
      await netPeer(String(count), async (sock, next) => {
        progress(`net round ${r}`);
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < count; i++) {
          if (!writeFramed(sock, buf)) await new Promise((res) => sock.once('drain', res));
        }
        await next();
        return (size * count) / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e6;
      }),
    );
  }
  return median(xs);
}

function cpipcChild(arg, serialization) {
  return spawn(process.execPath, [fileURLToPath(import.meta.url), 'cpipc', arg], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization });
}

async function cpipcPingPong() {
  const ch = cpipcChild('echo', 'json');
  const msg = { op: 'ping', id: 0, payload: 'x'.repeat(32) };
  const once = () => new Promise((r) => ch.once('message', r));
  for (let i = 0; i < 200; i++) {
    ch.send(msg);
    await once();
  }
  const xs = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < PINGS; i++) {
      msg.id = i;
      ch.send(msg);
      await once();
    }
    xs.push(Number(process.hrtime.bigint() - t0) / 1e3 / PINGS);
  }
  // 'close' never comes for an IPC child once it is disconnected: wait for 'exit'.
  const exited = new Promise((r) => ch.on('exit', r));
  ch.disconnect();
  await exited;
  return median(xs);
}

async function cpipcThroughput(size, count) {
  const xs = [];
  const buf = Buffer.alloc(size, 1);
  for (let r = 0; r < ROUNDS; r++) {
    const ch = cpipcChild(String(count), 'advanced');
    progress(`cp round ${r}`);
    const done = new Promise((res) => ch.once('message', res));
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      if (!ch.send(buf)) await new Promise((res) => setImmediate(res));
    }
    await done;
    xs.push((size * count) / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e6);
    const exited = new Promise((res) => ch.on('exit', res));
    ch.disconnect();
    await exited;
  }
  return median(xs);
}

function python() {
  return new Promise((resolve) => {
    const ch = spawn(PYTHON, [join(HERE, 'pipe_bench.py'), String(ROUNDS), String(PINGS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    ch.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    ch.on('error', () => resolve(null));
    ch.on('close', (code) => resolve(code === 0 ? JSON.parse(out) : null));
  });
}

const progress = process.env.PIPE_BENCH_PROGRESS ? (what) => console.error(`[pipe bench] ${what}`) : () => {};

async function main() {
  const { Pipe } = await import(LIB);
  progress('python');
  const py = await python();
  const rt = [
    { name: 'posix-ipc Connection', value: (progress('round trip'), await oursPingPong(Pipe)), unit: 'us', note: 'Pipe() + new Connection(3), json codec' },
    { name: 'node net (raw socket)', value: (progress('net round trip'), await netPingPong()), unit: 'us', note: 'same framing by hand, JSON' },
    { name: 'child_process IPC', value: (progress('cp round trip'), await cpipcPingPong()), unit: 'us', note: "process.send, 'json'" },
    { name: 'python mp.Pipe', value: py?.rt_us, unit: 'us', note: 'send_bytes/recv_bytes + json, two python3 processes' },
  ];
  table(`Round trip of a small object between two processes (median of ${ROUNDS} x ${PINGS})`, rt, { ref: 'node net (raw socket)' });
  for (const { label, size, count } of SIZES) {
    const key = size === 65536 ? 'tp64k' : 'tp4m';
    progress(`throughput ${label}`);
    const rows = [
      { name: 'posix-ipc Connection', value: await oursThroughput(Pipe, size, count), unit: 'MB/s', note: 'sendBytes/recvBytes' },
      { name: 'node net (raw socket)', value: await netThroughput(size, count), unit: 'MB/s', note: 'same framing by hand' },
      { name: 'child_process IPC', value: await cpipcThroughput(size, count), unit: 'MB/s', note: "process.send(Buffer), 'advanced'" },
      { name: 'python mp.Pipe', value: py?.[key], unit: 'MB/s', note: 'send_bytes/recv_bytes' },
    ];
    table(`Throughput, ${count} frames of ${label} (median of ${ROUNDS})`, rows, { ref: 'node net (raw socket)', lowerIsBetter: false });
  }
  if (py === null) console.log('(python3 not available: its rows are empty)');
}

if (process.argv[2]) await child(process.argv[2], process.argv[3]);
else await main();
