// Pipes between two processes, side by side in one run: round trip of a small
// object and throughput of 64 KiB and 4 MiB frames, for
//   - posix-ipc: a Pipe() end in a node child, rebuilt with new Connection(3);
//   - a raw Node Unix socket (net) with the same framing, written by hand;
//   - child_process IPC (process.send; 'advanced' serialization for bytes);
//   - Python's multiprocessing.Pipe between two python3 processes (pipe_bench.py).
// The same file is the node child (argv[2] names its role).
import { spawn } from 'node:child_process';
import { closeSync, existsSync, readFileSync, unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Socket, createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, PYTHON, table } from './lib/report.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const binding = require('node-gyp-build')(join(HERE, '..'));
/** A blocking AF_UNIX socketpair, as Pipe() makes (from the addon, with Pipe()'s SO_SNDBUF unless told). */
const { PIPE_SNDBUF } = await import(join(HERE, '..', 'dist', 'pipe', 'pipe.js'));
const pair = (sndbuf = PIPE_SNDBUF) => binding.pipeSocketpair(sndbuf);
const LIB = join(HERE, '..', 'dist', 'index.js');
const ROUNDS = 7;
const PINGS = 2000;
// Messages exchanged before timing: the JIT compiles the hot paths of both
// processes first (each round starts fresh children).
const WARMUP = 3000;
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
      const head = chunks[0].length >= 4 ? chunks[0] : Buffer.concat(chunks);
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
      // Booted and listening: the parent starts its clock now, as for every peer.
      await conn.send('ready');
      for (let i = 0; i < n; i++) await conn.recvBytes();
      await conn.send('done');
      await conn.recv().catch(() => {});
    }
    conn.close();
  } else if (role === 'net') {
    const [path, what] = arg.split(',');
    const sock = path === 'fd3' ? new Socket({ fd: 3 }) : createConnection(path);
    if (what === 'echo') {
      sock.on('data', deframer((f) => writeFramed(sock, Buffer.from(JSON.stringify(JSON.parse(f.toString()))))));
    } else {
      let left = Number(what);
      sock.on('data', deframer(() => {
        if (--left === 0) writeFramed(sock, Buffer.from('"done"'));
      }));
      writeFramed(sock, Buffer.from('"ready"'));
    }
    sock.on('end', () => sock.end());
  } else if (role === 'raw') {
    // The stream's own speed limit: no framing at all, the reader only counts.
    const sock = new Socket({ fd: 3 });
    let left = Number(arg);
    sock.on('data', (chunk) => {
      left -= chunk.length;
      if (left === 0) sock.write(Buffer.from([2]));
    });
    sock.write(Buffer.from([1]));
    sock.on('end', () => sock.end());
  } else if (role === 'cpipc') {
    if (arg === 'echo') {
      process.on('message', (m) => process.send(m));
    } else {
      let left = Number(arg);
      process.on('message', () => {
        if (--left === 0) process.send('done');
      });
      process.send('ready');
    }
    process.on('disconnect', () => process.exit(0));
  }
}

// ---------------------------------------------------------------- parent side
// CPU seconds (user + system) of this process and of child `pid` so far: on a
// loaded machine the CPU a transfer costs is steadier than its wall clock.
function cpuNow(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const u = process.cpuUsage();
  return (Number(f[11]) + Number(f[12])) / 100 + (u.user + u.system) / 1e6;
}
/** CPU ms per 100 MB moved, by row name and size (the last round's figures). */
const cpuCost = new Map();
const noteCpu = (key, pid, c0, bytes) => {
  const list = cpuCost.get(key) ?? [];
  list.push(((cpuNow(pid) - c0) * 1e3) / (bytes / 1e8));
  cpuCost.set(key, list);
};
function spawnSelf(role, arg, extra = {}) {
  return spawn(process.execPath, [fileURLToPath(import.meta.url), role, arg], { stdio: ['ignore', 'inherit', 'inherit', ...(extra.stdio ?? [])], ...extra.options });
}

async function oursPingPong(Pipe) {
  const [p, c] = Pipe();
  const ch = spawnSelf('ours', 'echo', { stdio: [c.fileno()] });
  c.close();
  const msg = { op: 'ping', id: 0, payload: 'x'.repeat(32) };
  for (let i = 0; i < WARMUP; i++) {
    await p.send(msg);
    await p.recv();
  }
  const xs = [];
  for (let r = 0; r < 1; r++) {
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
  for (let r = 0; r < 1; r++) {
    const [p, c] = Pipe();
    const ch = spawnSelf('ours', String(count), { stdio: [c.fileno()] });
    c.close();
    // The clock starts once the child has booted (its 'ready' frame), as for
    // every peer: a child's start-up (~100 ms of Node boot) is not throughput.
    await p.recv();
    const c0 = cpuNow(ch.pid);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) await p.sendBytes(buf);
    await p.recv();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    noteCpu(`ours ${size}`, ch.pid, c0, size * count);
    xs.push((size * count) / s / 1e6);
    p.close();
    await new Promise((res) => ch.on('close', res));
  }
  return median(xs);
}

async function netPeer(arg, body, overPair = false) {
  let server = null;
  let ch;
  let sock;
  if (overPair) {
    // The same hand-written framing over a socketpair handed to the child,
    // as ours is: separates the cost of our layer from that of the descriptor.
    const [p, c] = pair();
    ch = spawnSelf('net', `fd3,${arg}`, { stdio: [c] });
    closeSync(c);
    sock = new Socket({ fd: p });
  } else {
    const path = join(tmpdir(), `pipc-bench-${process.pid}.sock`);
    if (existsSync(path)) unlinkSync(path);
    server = createServer();
    await new Promise((r) => server.listen(path, r));
    ch = spawnSelf('net', `${path},${arg}`);
    sock = await new Promise((r) => server.once('connection', r));
  }
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
  server?.close();
  await new Promise((r) => ch.on('close', r));
  return result;
}

async function netPingPong(overPair = false) {
  return netPeer('echo', async (sock, next) => {
    const msg = { op: 'ping', id: 0, payload: 'x'.repeat(32) };
    for (let i = 0; i < WARMUP; i++) {
      writeFramed(sock, Buffer.from(JSON.stringify(msg)));
      JSON.parse((await next()).toString());
    }
    const xs = [];
    for (let r = 0; r < 1; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < PINGS; i++) {
        msg.id = i;
        writeFramed(sock, Buffer.from(JSON.stringify(msg)));
        JSON.parse((await next()).toString());
      }
      xs.push(Number(process.hrtime.bigint() - t0) / 1e3 / PINGS);
    }
    return median(xs);
  }, overPair);
}

async function netThroughput(size, count, overPair = false) {
  const xs = [];
  const buf = Buffer.alloc(size, 1);
  for (let r = 0; r < 1; r++) {
    xs.push(
      await netPeer(String(count), async (sock, next) => {
        await next(); // the child's 'ready'
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < count; i++) {
          if (!writeFramed(sock, buf)) await new Promise((res) => sock.once('drain', res));
        }
        await next();
        return (size * count) / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e6;
      }, overPair),
    );
  }
  return median(xs);
}

// The same total bytes as large unframed buffers over the socketpair Pipe()
// uses, the child counting bytes: the speed limit of the stream itself.
const RAW_CHUNK = 4 * 1024 * 1024;
async function rawStream(size, count, sndbuf = PIPE_SNDBUF) {
  const total = size * count;
  const [p, c] = pair(sndbuf);
  const ch = spawnSelf('raw', String(total), { stdio: [c] });
  closeSync(c);
  const sock = new Socket({ fd: p });
  let wake = null;
  sock.on('data', () => wake?.());
  const byte = () => new Promise((r) => (wake = r));
  await byte(); // the child's 'ready'
  const done = byte();
  const buf = Buffer.alloc(Math.min(RAW_CHUNK, total), 1);
  const c0 = cpuNow(ch.pid);
  const t0 = process.hrtime.bigint();
  for (let left = total; left > 0; left -= buf.length) {
    const b = left >= buf.length ? buf : buf.subarray(0, left);
    if (!sock.write(b)) await new Promise((res) => sock.once('drain', res));
  }
  await done;
  const rate = total / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e6;
  noteCpu(`raw${sndbuf} ${size}`, ch.pid, c0, total);
  sock.end();
  await new Promise((r) => ch.on('close', r));
  return rate;
}

function cpipcChild(arg, serialization) {
  return spawn(process.execPath, [fileURLToPath(import.meta.url), 'cpipc', arg], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization });
}

async function cpipcPingPong() {
  const ch = cpipcChild('echo', 'json');
  const msg = { op: 'ping', id: 0, payload: 'x'.repeat(32) };
  const once = () => new Promise((r) => ch.once('message', r));
  for (let i = 0; i < WARMUP; i++) {
    ch.send(msg);
    await once();
  }
  const xs = [];
  for (let r = 0; r < 1; r++) {
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
  for (let r = 0; r < 1; r++) {
    const ch = cpipcChild(String(count), 'advanced');
    await new Promise((res) => ch.once('message', res)); // 'ready'
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
  // PIPE_BENCH_ONLY=tp: only the throughput of ours against the unframed
  // stream (a quick A/B while working on the throughput path).
  // (=ours or =raw: that row alone, to count its instructions under perf stat.)
  const only = process.env.PIPE_BENCH_ONLY;
  const quick = only === 'tp' || only === 'ours' || only === 'raw';
  const rounds = Number(process.env.PIPE_BENCH_ROUNDS ?? ROUNDS);
  progress('python');
  const py = quick ? null : await python();
  // Rounds are interleaved across peers, so that load from elsewhere on the
  // machine falls on all of them alike; each figure is the median of ROUNDS.
  const RAW = 'unframed stream (socketpair)';
  const RAW_DEFAULT = 'unframed, default SO_SNDBUF';
  const peers = [
    ['posix-ipc Connection', 'Pipe() + new Connection(3), json codec', 'sendBytes/recvBytes', {
      rt: () => oursPingPong(Pipe), tp: (size, count) => oursThroughput(Pipe, size, count) }],
    ['node net (raw socket)', 'same framing by hand, JSON', 'same framing by hand', {
      rt: () => netPingPong(), tp: (size, count) => netThroughput(size, count) }],
    ['node net over socketpair', 'the same, on the descriptor kind Pipe() uses', 'the same, over a socketpair', {
      rt: () => netPingPong(true), tp: (size, count) => netThroughput(size, count, true) }],
    ['child_process IPC', "process.send, 'json'", "process.send(Buffer), 'advanced'", {
      rt: () => cpipcPingPong(), tp: (size, count) => cpipcThroughput(size, count) }],
    [RAW, '', "same bytes unframed, 4 MiB writes, reader counts; Pipe()'s SO_SNDBUF", { tp: (size, count) => rawStream(size, count) }],
    [RAW_DEFAULT, '', 'the same with the default SO_SNDBUF (208 KiB)', { tp: (size, count) => rawStream(size, count, 0) }],
  ].filter((p) => !quick || (p[0] === 'posix-ipc Connection' && only !== 'raw') || (p[0].startsWith('unframed') && only !== 'ours'));
  const measure = async (what, list, run) => {
    const xs = list.map(() => []);
    for (let r = 0; r < rounds; r++) {
      progress(`${what}, round ${r + 1}/${rounds}`);
      for (let i = 0; i < list.length; i++) xs[i].push(await run(list[i][3]));
    }
    return xs;
  };
  if (!quick) {
    const rtPeers = peers.filter((p) => p[3].rt !== undefined);
    const rtv = (await measure('round trip', rtPeers, (p) => p.rt())).map(median);
    const rt = rtPeers.map(([name, note], i) => ({ name, value: rtv[i], unit: 'us', note }));
    rt.push({ name: 'python mp.Pipe', value: py?.rt_us, unit: 'us', note: 'send_bytes/recv_bytes + json, two python3 processes' });
    table(`Round trip of a small object between two processes (median of ${rounds} rounds x ${PINGS})`, rt, { ref: 'node net (raw socket)' });
  }
  const rawAt = peers.findIndex((p) => p[0] === RAW);
  for (const { label, size, count } of SIZES) {
    const key = size === 65536 ? 'tp64k' : 'tp4m';
    const per = await measure(`throughput ${label}`, peers, (p) => p.tp(size, count));
    // Each row's rate over the unframed stream's in the same round; the
    // median of those per-round ratios.
    const rows = peers.map(([name, , note], i) => ({
      name, value: median(per[i]), unit: 'MB/s', note,
      stream: rawAt < 0 ? undefined : median(per[i].map((x, r) => x / per[rawAt][r])),
    }));
    rows.forEach((row) => {
      const k = row.name === RAW ? `raw${PIPE_SNDBUF}` : row.name === RAW_DEFAULT ? 'raw0' : row.name === 'posix-ipc Connection' ? 'ours' : '';
      const c = cpuCost.get(`${k} ${size}`);
      if (c) row.cpu = median(c);
    });
    if (!quick) rows.push({ name: 'python mp.Pipe', value: py?.[key], unit: 'MB/s', note: 'send_bytes/recv_bytes' });
    const columns = [{ title: 'CPU ms/100 MB', key: 'cpu' }, { title: 'vs unframed (per-round median)', key: 'stream', fmt: (x) => (x === undefined ? '-' : `${x.toFixed(2)}x`) }];
    table(`Throughput, ${count} frames of ${label} (median of ${rounds})`, rows, { ref: quick ? (rawAt < 0 ? undefined : RAW) : 'node net (raw socket)', lowerIsBetter: false, columns });
  }
  if (!quick && py === null) console.log('(python3 not available: its rows are empty)');
}

if (process.argv[2]) await child(process.argv[2], process.argv[3]);
else await main();
