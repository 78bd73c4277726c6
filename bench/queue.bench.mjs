// Queue between two processes, on both transports ('shm', the default ring in
// shared memory, and 'mq', the POSIX message queue), side by side with the
// peers a user would otherwise pick: C on POSIX mq (the limit), Node's child_process IPC (fork +
// process.send), a Node Unix socket with length-prefixed frames, and Python's
// multiprocessing.Queue. For 64 B, 1 KiB and 64 KiB items, raw bytes and
// JSON objects: round trip (median and p99) and one-way throughput.
//
// This file is also its own child process: `queue.bench.mjs --child MODE ...`.
import { execFileSync, fork, spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from '../dist/index.js';
import { compileC, median, percentile, PYTHON, removeShmOnExit, table } from './lib/report.mjs';

// Side segments of an interrupted run (their names contain the queue's).
removeShmOnExit(`pipc-bench-${process.pid}-`);

const SELF = fileURLToPath(import.meta.url);
const SIZES = (process.env.QUEUE_BENCH_SIZES ?? '64,1024,65536').split(',').map(Number);
const N_RTT = Number(process.env.QUEUE_BENCH_RTT ?? 2000);
const WARMUP = 200;
/** One-way message counts per size: enough for about a second at the slower peers' rates. */
const N_TP = { 64: 100_000, 1024: 60_000, 65536: 3_000 };
/** Throughput is the median of this many runs (the machine is shared and noisy). */
const ROUNDS = Number(process.env.QUEUE_BENCH_ROUNDS ?? 3);

async function rate(fn) {
  const xs = [];
  for (let i = 0; i < ROUNDS; i++) xs.push(await fn());
  return median(xs);
}

function payload(size, kind) {
  if (kind === 'raw') return Buffer.alloc(size, 0x61);
  return { id: 1, s: 'x'.repeat(Math.max(0, size - 20)) };
}

// ---------------------------------------------------------------- children --

function ready() {
  process.stdout.write('ready\n');
}

async function childMain(mode, args) {
  if (mode === 'q-echo') {
    const [req, resp, codec, n] = args;
    const rq = new Queue(req, { create: false, codec });
    const sq = new Queue(resp, { create: false, codec });
    ready();
    for (let i = 0; i < Number(n); i++) await sq.put(await rq.get());
    rq.close();
    sq.close();
  } else if (mode === 'q-sink') {
    const [name, codec, n, batch] = args;
    const q = new Queue(name, { create: false, codec });
    ready();
    let left = Number(n);
    if (batch === '1') {
      while (left > 0) left -= (await q.getMany(256)).length;
    } else {
      for (; left > 0; left--) await q.get();
    }
    process.stdout.write('done\n');
    q.close();
  } else if (mode === 'ipc-echo') {
    let left = Number(args[0]);
    process.on('message', (m) => {
      process.send(m);
      if (--left === 0) process.disconnect();
    });
  } else if (mode === 'ipc-sink') {
    let left = Number(args[0]);
    process.on('message', () => {
      if (--left === 0) {
        process.send('done');
        process.disconnect();
      }
    });
  } else if (mode === 'sock-echo' || mode === 'sock-sink') {
    const [path, kind, n] = args;
    const sock = connect(path);
    let left = Number(n);
    onFrames(sock, (frame) => {
      if (mode === 'sock-echo') {
        const out = kind === 'json' ? Buffer.from(JSON.stringify(JSON.parse(frame.toString()))) : frame;
        writeFrame(sock, out);
      } else if (kind === 'json') {
        JSON.parse(frame.toString());
      }
      if (--left === 0) {
        if (mode === 'sock-sink') writeFrame(sock, Buffer.from('done'));
        sock.end();
      }
    });
  }
}

function writeFrame(sock, bytes) {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(bytes.length, 0);
  sock.write(head);
  return sock.write(bytes);
}

function onFrames(sock, cb) {
  let pending = Buffer.alloc(0);
  sock.on('data', (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let off = 0;
    while (pending.length - off >= 4) {
      const len = pending.readUInt32BE(off);
      if (pending.length - off - 4 < len) break;
      cb(pending.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    pending = pending.subarray(off);
  });
}

// ------------------------------------------------------------------ parent --

function spawnChild(mode, args) {
  const child = spawn(process.execPath, [SELF, '--child', mode, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  const waiters = [];
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      while (waiters.length && lines.length) waiters.shift()(lines.shift());
    }
  });
  const line = () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiters.push(r)));
  const exited = new Promise((r) => child.on('exit', r));
  return { child, line, exited };
}

let seq = 0;
const named = new Set();
function qname(tag) {
  seq += 1;
  const name = `pipc-bench-${process.pid}-${tag}-${seq}`;
  named.add(name);
  return name;
}
// Queues of an interrupted run: remove whichever still exist.
process.on('exit', () => {
  for (const name of named) {
    try {
      Queue.unlink(name);
    } catch {
      // already unlinked by the benchmark
    }
  }
});

/** Queue options per transport: mq as the kernel allows an ordinary user (10 messages); shm as it comes (unbounded, 8 MiB). */
function queueOptions(codec, transport) {
  return transport === 'mq' ? { codec, maxsize: 10, transport } : { codec, transport };
}

async function queueRtt(size, kind, transport) {
  const codec = kind;
  const req = qname('req');
  const resp = qname('resp');
  const sq = new Queue(req, queueOptions(codec, transport));
  const rq = new Queue(resp, queueOptions(codec, transport));
  try {
    const c = spawnChild('q-echo', [req, resp, codec, String(N_RTT + WARMUP)]);
    await c.line();
    const item = payload(size, kind);
    const lat = [];
    for (let i = 0; i < N_RTT + WARMUP; i++) {
      const t0 = process.hrtime.bigint();
      await sq.put(item);
      await rq.get();
      if (i >= WARMUP) lat.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
    await c.exited;
    return lat;
  } finally {
    for (const q of [sq, rq]) {
      q.unlink();
      q.close();
    }
  }
}

async function queueThroughput(size, kind, batch, transport) {
  const name = qname('tp');
  const q = new Queue(name, queueOptions(kind, transport));
  const n = N_TP[size];
  try {
    const c = spawnChild('q-sink', [name, kind, String(n), batch ? '1' : '0']);
    await c.line();
    const item = payload(size, kind);
    const t0 = process.hrtime.bigint();
    if (batch) {
      const chunk = Array(256).fill(item);
      for (let sent = 0; sent < n; sent += 256) await q.putMany(sent + 256 <= n ? chunk : chunk.slice(0, n - sent));
    } else {
      for (let i = 0; i < n; i++) await q.put(item);
    }
    await c.line();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    await c.exited;
    return n / dt;
  } finally {
    q.unlink();
    q.close();
  }
}

function ipcItem(size, kind) {
  // process.send speaks JSON only: bytes travel as a string of that length.
  return kind === 'raw' ? 'a'.repeat(size) : payload(size, kind);
}

async function ipcRtt(size, kind) {
  const child = fork(SELF, ['--child', 'ipc-echo', String(N_RTT + WARMUP)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const item = ipcItem(size, kind);
  const lat = [];
  await new Promise((resolve) => {
    let i = 0;
    let t0 = 0n;
    const next = () => {
      t0 = process.hrtime.bigint();
      child.send(item);
    };
    child.on('message', () => {
      if (i >= WARMUP) lat.push(Number(process.hrtime.bigint() - t0) / 1e3);
      if (++i === N_RTT + WARMUP) resolve();
      else next();
    });
    next();
  });
  await new Promise((r) => child.on('exit', r));
  return lat;
}

async function ipcThroughput(size, kind) {
  const n = N_TP[size];
  const child = fork(SELF, ['--child', 'ipc-sink', String(n)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const item = ipcItem(size, kind);
  const done = new Promise((r) => child.on('message', r));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if (!child.send(item)) await new Promise((r) => setImmediate(r));
  }
  await done;
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  await new Promise((r) => child.on('exit', r));
  return n / dt;
}

async function withSocket(mode, kind, n, body) {
  const path = join(tmpdir(), `pipc-bench-${process.pid}-${++seq}.sock`);
  const server = createServer();
  await new Promise((r) => server.listen(path, r));
  const accepted = new Promise((r) => server.once('connection', r));
  const c = spawnChild(mode, [path, kind, String(n)]);
  const sock = await accepted;
  sock.setNoDelay?.(true);
  try {
    return await body(sock);
  } finally {
    await c.exited;
    server.close();
  }
}

function sockBytes(item, kind) {
  return kind === 'json' ? Buffer.from(JSON.stringify(item)) : item;
}

async function socketRtt(size, kind) {
  const item = payload(size, kind);
  return withSocket('sock-echo', kind, N_RTT + WARMUP, (sock) =>
    new Promise((resolve) => {
      const lat = [];
      let i = 0;
      let t0 = 0n;
      const next = () => {
        t0 = process.hrtime.bigint();
        writeFrame(sock, sockBytes(item, kind));
      };
      onFrames(sock, (frame) => {
        if (kind === 'json') JSON.parse(frame.toString());
        if (i >= WARMUP) lat.push(Number(process.hrtime.bigint() - t0) / 1e3);
        if (++i === N_RTT + WARMUP) resolve(lat);
        else next();
      });
      next();
    }),
  );
}

async function socketThroughput(size, kind) {
  const n = N_TP[size];
  const item = payload(size, kind);
  return withSocket('sock-sink', kind, n, async (sock) => {
    const done = new Promise((r) => onFrames(sock, r));
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      if (!writeFrame(sock, sockBytes(item, kind))) await new Promise((r) => sock.once('drain', r));
    }
    await done;
    return n / (Number(process.hrtime.bigint() - t0) / 1e9);
  });
}

function external(cmd, args) {
  return JSON.parse(execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
}

async function main() {
  const cBin = compileC('queue_mq');
  for (const size of SIZES) {
    for (const kind of ['raw', 'json']) {
      const rows = [];
      const add = (name, lat, rate, rateBatch, note) =>
        rows.push({
          name,
          rtt: lat ? median(lat) : undefined,
          p99: lat ? percentile(lat, 99) : undefined,
          rate,
          rateBatch,
          note,
        });
      if (kind === 'raw' && size <= 8192) {
        const c = external(cBin, [String(size), String(N_RTT), String(N_TP[size])]);
        add('C mq', [c.rtt_median_us], c.rate, undefined, 'the limit');
        rows[rows.length - 1].p99 = c.rtt_p99_us;
      }
      add(
        'posix-ipc Queue shm',
        await queueRtt(size, kind, 'shm'),
        await rate(() => queueThroughput(size, kind, false, 'shm')),
        await rate(() => queueThroughput(size, kind, true, 'shm')),
        'ring in shared memory (default)',
      );
      add(
        'posix-ipc Queue mq',
        await queueRtt(size, kind, 'mq'),
        await rate(() => queueThroughput(size, kind, false, 'mq')),
        await rate(() => queueThroughput(size, kind, true, 'mq')),
        size > 8192 ? 'side segment (> msgsize_max)' : '',
      );
      add('child_process IPC', await ipcRtt(size, kind), await rate(() => ipcThroughput(size, kind)), undefined, kind === 'raw' ? 'bytes as a string' : '');
      add('unix socket frames', await socketRtt(size, kind), await rate(() => socketThroughput(size, kind)), undefined, '');
      const py = external(PYTHON, [join(import.meta.dirname ?? join(SELF, '..'), 'queue_mp.py'), String(size), kind, String(N_RTT), String(Math.min(N_TP[size], 50_000))]);
      add('python mp.Queue', [py.rtt_median_us], py.rate, undefined, '');
      rows[rows.length - 1].p99 = py.rtt_p99_us;
      const ipc = rows.find((r) => r.name === 'child_process IPC');
      const cmq = rows.find((r) => r.name === 'C mq');
      const x = (v) => (v === undefined || Number.isNaN(v) ? '-' : `${v.toFixed(2)}x`);
      table(
        `Queue round trip, ${size} B ${kind} (µs; "vs IPC" = IPC's time / this time, above 1 is faster)`,
        rows.map((r) => ({ name: r.name, value: r.rtt, unit: 'µs', p99: r.p99, vs: ipc.rtt / r.rtt, vsC: cmq ? cmq.rtt / r.rtt : undefined, note: r.note })),
        { columns: [{ key: 'p99', title: 'p99' }, { key: 'vs', title: 'vs IPC', fmt: x }, { key: 'vsC', title: 'vs C mq', fmt: x }] },
      );
      table(
        `Queue one-way throughput, ${size} B ${kind} (messages/s, median of ${ROUNDS}; "vs IPC" = this rate / IPC's)`,
        rows.map((r) => ({
          name: r.name,
          value: r.rate,
          unit: 'msg/s',
          vs: r.rate / ipc.rate,
          vsC: cmq ? r.rate / cmq.rate : undefined,
          batch: r.rateBatch,
          vsBatch: r.rateBatch === undefined ? undefined : r.rateBatch / ipc.rate,
          note: r.rateBatch ? 'batch: putMany/getMany' : r.note,
        })),
        {
          columns: [
            { key: 'vs', title: 'vs IPC', fmt: x },
            { key: 'vsC', title: 'vs C mq', fmt: x },
            { key: 'batch', title: 'batch' },
            { key: 'vsBatch', title: 'batch vs IPC', fmt: x },
          ],
        },
      );
    }
  }
}

/**
 * The targets of issue 10, ours (the shm ring) and the peer interleaved
 * round by round (the machine is shared: a ratio within one round compares
 * like with like), with the median of the per-round ratios. Ratios are
 * "above 1: ours is ahead" (the peer's time / ours, our rate / the peer's).
 * QUEUE_BENCH_VS_ROUNDS rounds (default 5). Run with QUEUE_BENCH_VS=only to
 * skip the full tables.
 */
async function versus() {
  const cBin = compileC('queue_mq');
  const rounds = Number(process.env.QUEUE_BENCH_VS_ROUNDS ?? 5);
  const rows = [];
  for (const size of SIZES) {
    for (const kind of ['raw', 'json']) {
      const peerName = size <= 64 ? (kind === 'raw' ? 'C mq' : 'child_process IPC') : 'python mp.Queue';
      const r = { label: `${size} B ${kind}`, peerName, ours: [], peer: [], oursRate: [], peerRate: [], rtt: [], rate: [] };
      for (let i = 0; i < rounds; i++) {
        const lat = await queueRtt(size, kind, 'shm');
        const oursRtt = median(lat);
        const oursRate = await queueThroughput(size, kind, false, 'shm');
        let peerRtt;
        let peerRate;
        if (peerName === 'C mq') {
          const c = external(cBin, [String(size), String(N_RTT), String(N_TP[size])]);
          peerRtt = c.rtt_median_us;
          peerRate = c.rate;
        } else if (peerName === 'child_process IPC') {
          peerRtt = median(await ipcRtt(size, kind));
          peerRate = await ipcThroughput(size, kind);
        } else {
          const py = external(PYTHON, [join(import.meta.dirname ?? join(SELF, '..'), 'queue_mp.py'), String(size), kind, String(N_RTT), String(Math.min(N_TP[size], 50_000))]);
          peerRtt = py.rtt_median_us;
          peerRate = py.rate;
        }
        r.ours.push(oursRtt);
        r.peer.push(peerRtt);
        r.oursRate.push(oursRate);
        r.peerRate.push(peerRate);
        r.rtt.push(peerRtt / oursRtt);
        r.rate.push(oursRate / peerRate);
        process.stderr.write(
          `  round ${i + 1} ${r.label}: rtt ours ${oursRtt.toFixed(1)} µs, ${peerName} ${peerRtt.toFixed(1)} µs; one-way ours ${Math.round(oursRate)}/s, ${peerName} ${Math.round(peerRate)}/s\n`,
        );
      }
      rows.push(r);
    }
  }
  const f = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
  const k = (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)} M/s` : `${(v / 1e3).toFixed(1)} k/s`);
  console.log(`\nshm ring vs peer, ${rounds} interleaved rounds (median of per-round ratios; above 1: ours ahead); load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  console.log('| item | peer | round trip ours / peer (µs) | ratio | one-way ours / peer | ratio |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(
      `| ${r.label} | ${r.peerName} | ${f(median(r.ours))} / ${f(median(r.peer))} | ${median(r.rtt).toFixed(2)}x | ${k(median(r.oursRate))} / ${k(median(r.peerRate))} | ${median(r.rate).toFixed(2)}x |`,
    );
  }
}

if (process.argv[2] === '--child') {
  await childMain(process.argv[3], process.argv.slice(4));
} else {
  if (process.env.QUEUE_BENCH_VS !== 'only') await main();
  await versus();
}
