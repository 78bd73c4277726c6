// Uncontended tryAcquire()+release() with 1, 2 or 50 semaphores in use, in a
// fresh process (what a call site has seen decides whether it stays
// monomorphic). usage: sem-many.mjs <prefix> <robust|plain> <count> <pairs>
// Prints JSON: ns per pair on the semaphores and ns per two empty N-API
// calls, measured alternately in the same process.
import { Semaphore } from '../../dist/index.js';
import { binding } from '../../dist/core/binding.js';

const [prefix, kind, countText, pairsText] = process.argv.slice(2);
const count = Number(countText);
const pairs = Number(pairsText);
const sems = Array.from({ length: count }, (_, i) => new Semaphore(`${prefix}${i}`, { initialValue: 1, robust: kind === 'robust' }));
function pairsNs() {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < pairs; i++) {
    const s = sems[i % count];
    s.tryAcquire();
    s.release();
  }
  return Number(process.hrtime.bigint() - t0) / pairs;
}
function noopNs() {
  const noop = binding.noop;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < pairs; i++) {
    const s = sems[i % count];
    noop(s);
    noop(s);
  }
  return Number(process.hrtime.bigint() - t0) / pairs;
}
const out = { pairs: [], noop: [] };
for (let r = 0; r < 5; r++) {
  out.pairs.push(pairsNs());
  out.noop.push(noopNs());
}
for (const s of sems) {
  const n = s.name;
  s.close();
  Semaphore.unlink(n);
}
process.stdout.write(`${JSON.stringify(out)}\n`);
