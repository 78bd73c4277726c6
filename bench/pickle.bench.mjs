// The pickle codec, side by side in one run:
//   1. codec cost in one process: our pickleDumps+pickleLoads against
//      JSON.stringify+JSON.parse (the json codec's work) and v8.serialize+
//      deserialize, for a small dict and for 1000 records (~78 KiB of JSON);
//      python3's own pickle.dumps+loads and json for the same objects beside
//      them (pickle_bench.py codec);
//   2. round trip of the small dict over a Pipe() to a python3 child:
//      Node (codec 'pickle') <-> Python Connection.recv()/send(), Node (json)
//      <-> Python recv_bytes()+json.loads, and Python <-> Python
//      multiprocessing.Pipe send()/recv() (pickle both ends).
// Rounds are interleaved; ratios are medians of per-round ratios.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as v8 from 'node:v8';
import { median, PYTHON, table } from './lib/report.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const { Pipe, pickleDumps, pickleLoads } = await import(join(HERE, '..', 'dist', 'index.js'));
const PEER = join(HERE, 'pickle_bench.py');
const ROUNDS = 9;
const PINGS = 2000;

const SMALL = { op: 'ping', id: 12345, payload: 'x'.repeat(32), tags: [1, 2, 3], ok: true, score: 0.5 };
const BIG = Array.from({ length: 1000 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ['a', 'b'], score: i / 7 }));

// ---------------------------------------------------------------- 1. codec cost
const codecs = {
  pickle: (o) => pickleLoads(pickleDumps(o)),
  json: (o) => JSON.parse(Buffer.from(JSON.stringify(o)).toString()),
  v8: (o) => v8.deserialize(v8.serialize(o)),
};

function timeNs(fn, obj, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(obj);
  return Number(process.hrtime.bigint() - t0) / n;
}

function codecTable(obj, n) {
  for (const fn of Object.values(codecs)) timeNs(fn, obj, n); // warm up
  const per = { pickle: [], json: [], v8: [] };
  const ratios = { pickle: [], v8: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const t = {};
    for (const [name, fn] of Object.entries(codecs)) t[name] = timeNs(fn, obj, n);
    for (const name of Object.keys(per)) per[name].push(t[name]);
    ratios.pickle.push(t.pickle / t.json);
    ratios.v8.push(t.v8 / t.json);
  }
  return { per, ratios };
}

function pythonCodec() {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, [PEER, 'codec', '20000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`pickle_bench.py codec exited ${code}`))));
  });
}

const py = await pythonCodec();
for (const [label, obj, n, key] of [
  ['small dict', SMALL, 20000, 'small'],
  ['1000 records', BIG, 40, '64k'],
]) {
  const { per, ratios } = codecTable(obj, n);
  const size = { pickle: pickleDumps(obj).length, json: Buffer.byteLength(JSON.stringify(obj)), v8: v8.serialize(obj).length };
  const us = label === 'small dict' ? 1 : 1000;
  const unit = us === 1 ? 'ns' : 'µs';
  table(
    `Encode + decode, ${label}, one process (median of ${ROUNDS} rounds; "vs json" is the median of per-round ratios)`,
    [
      { name: 'json (JSON.stringify + parse)', value: median(per.json) / us, unit, bytes: size.json, ratio: 1 },
      { name: "ours: pickle (codec 'pickle')", value: median(per.pickle) / us, unit, bytes: size.pickle, ratio: median(ratios.pickle) },
      { name: 'v8.serialize + deserialize', value: median(per.v8) / us, unit, bytes: size.v8, ratio: median(ratios.v8) },
      { name: 'python3 json.dumps + loads', value: py[`json_${key}`] / us, unit, bytes: py[`json_bytes_${key}`], note: 'one run, for scale' },
      { name: 'python3 pickle.dumps + loads', value: py[`pickle_${key}`] / us, unit, bytes: py[`pickle_bytes_${key}`], note: 'one run, for scale' },
    ],
    { columns: [{ title: 'bytes', key: 'bytes', fmt: (x) => String(x) }, { title: 'vs json', key: 'ratio', fmt: (x) => (x === undefined ? '-' : `${x.toFixed(2)}x`) }] },
  );
}

// ---------------------------------------------------------------- 2. round trips with python3
/** A python3 echo child holding one end of a Pipe with `codec`. */
function nodePeer(mode) {
  const [ours, theirs] = Pipe({ codec: mode === 'pickle' ? 'pickle' : 'json' });
  const child = spawn(PYTHON, [PEER, 'echo', mode], { stdio: ['ignore', 'inherit', 'inherit', theirs.fileno()] });
  theirs.close();
  return { conn: ours, child };
}

async function nodeRound(peer) {
  const msg = { ...SMALL };
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < PINGS; i++) {
    msg.id = i;
    await peer.conn.send(msg);
    await peer.conn.recv();
  }
  return Number(process.hrtime.bigint() - t0) / PINGS / 1000;
}

function pythonDriver() {
  const child = spawn(PYTHON, [PEER, 'driver', String(PINGS)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  let waiting = null;
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if (waiting) {
        const w = waiting;
        waiting = null;
        w();
      }
    }
  });
  const next = async () => {
    while (lines.length === 0) await new Promise((r) => (waiting = r));
    return lines.shift();
  };
  return { child, next };
}

const peers = { pickle: nodePeer('pickle'), json: nodePeer('json') };
const driver = pythonDriver();
if ((await driver.next()) !== 'READY') throw new Error('python driver did not start');
for (const p of Object.values(peers)) for (let i = 0; i < 3; i++) await nodeRound(p); // warm up
const rt = { pickle: [], json: [], python: [] };
const rtRatio = { pickle: [], json: [] };
for (let r = 0; r < ROUNDS; r++) {
  const t = { pickle: await nodeRound(peers.pickle), json: await nodeRound(peers.json) };
  driver.child.stdin.write('go\n');
  t.python = Number(await driver.next());
  for (const k of Object.keys(rt)) rt[k].push(t[k]);
  rtRatio.pickle.push(t.pickle / t.python);
  rtRatio.json.push(t.json / t.python);
}
for (const p of Object.values(peers)) p.conn.close();
driver.child.stdin.end();
await Promise.all([...Object.values(peers).map((p) => new Promise((r) => p.child.on('close', r))), new Promise((r) => driver.child.on('close', r))]);

table(
  `Round trip of the small dict with a python3 peer over a pipe (median of ${ROUNDS} rounds of ${PINGS}; "vs python" is the median of per-round ratios)`,
  [
    { name: "node codec 'pickle' <-> python recv()/send()", value: median(rt.pickle), unit: 'µs', ratio: median(rtRatio.pickle) },
    { name: 'node json <-> python recv_bytes()+json', value: median(rt.json), unit: 'µs', ratio: median(rtRatio.json) },
    { name: 'python <-> python mp.Pipe send()/recv()', value: median(rt.python), unit: 'µs', ratio: 1 },
  ],
  { columns: [{ title: 'vs python', key: 'ratio', fmt: (x) => `${x.toFixed(2)}x` }] },
);
