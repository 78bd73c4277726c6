// Web Locks benchmark: an uncontended locks.request() (exclusive and shared)
// against the crash-safe Lock's withAcquired (the same process, no queue) and
// proper-lockfile's lock+unlock (what Node services use for a cross-process
// lock today). Rounds are interleaved; the table shows medians of the rounds'
// times and the median of per-round ratios to locks.request (exclusive).
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lock, locks } from '../dist/index.js';
import { median, removeShmOnExit } from './lib/report.mjs';

const require = createRequire(import.meta.url);
const lockfile = require('proper-lockfile');
const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = QUICK ? 3 : 7;
const tag = `pipc-bench-${process.pid}`;
removeShmOnExit(tag);
const N = QUICK ? 2000 : 10_000;
const NF = QUICK ? 100 : 300;
const dir = mkdtempSync(join(tmpdir(), 'pipc-bench-'));
const file = join(dir, 'resource');
writeFileSync(file, '');
const lock = new Lock(`${tag}-lock`);
const name = `${tag}-web`;

// Holding one lock of the name keeps its segment open, as in a service that
// uses the name all along (otherwise each request opens and maps it).
let keepOpen;
const kept = locks.request(`${name}`, { mode: 'shared' }, () => new Promise((r) => (keepOpen = r)));

async function time(n, fn) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  return Number(process.hrtime.bigint() - t0) / n / 1e3; // us
}
const cases = [
  ['locks.request (exclusive, segment opened each time)', () => time(N, () => locks.request(`${name}-cold`, () => 0))],
  ['locks.request (shared, segment kept open)', () => time(N, () => locks.request(name, { mode: 'shared' }, () => 0))],
  ['Lock.withAcquired (crash-safe Lock)', () => time(N, () => lock.withAcquired(() => 0))],
  ['proper-lockfile lock+unlock', () => time(NF, async () => (await lockfile.lock(file, { realpath: false }))())],
];
const REF = cases[1][0];
const results = {};
const ratios = {};
for (let r = 0; r < ROUNDS; r++) {
  const round = {};
  for (const [label, fn] of cases) round[label] = await fn();
  for (const [label] of cases) {
    (results[label] ??= []).push(round[label]);
    (ratios[label] ??= []).push(round[label] / round[REF]);
  }
}
console.log(`\nUncontended lock round trip (${ROUNDS} interleaved rounds; median us per request; ratio: median of per-round ratios)`);
const w = Math.max(...cases.map(([l]) => l.length));
console.log(`${''.padEnd(w)}  ${'us'.padStart(8)}  vs ${REF}`);
for (const [label] of cases) {
  console.log(`${label.padEnd(w)}  ${median(results[label]).toFixed(2).padStart(8)}  ${median(ratios[label]).toFixed(2)}x`);
}
console.log('(below 1x is faster than locks.request (shared, segment kept open))');
keepOpen();
await kept;
lock.close();
Lock.unlink(`${tag}-lock`);
for (const n of [name, `${name}-cold`]) unlinkSync(`/dev/shm/pipc.${n}.lock`);
rmSync(dir, { recursive: true, force: true });
