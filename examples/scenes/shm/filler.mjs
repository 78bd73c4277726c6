// One filler of scene 3: writes its slice of the shared array in place and
// counts the elements it wrote on a shared atomic counter.
//   node filler.mjs ARRAY_NAME LENGTH COUNTER_NAME WORKER WORKERS
import { SharedArray, Value } from '../../../dist/index.js';

const [arrayName, length, counterName, worker, workers] = process.argv.slice(2);
const all = new SharedArray('d', Number(length), { name: arrayName, create: false });
const filled = new Value('q', 0n, { name: counterName, create: false });
const n = all.length;
const from = Math.floor((n * Number(worker)) / Number(workers));
const to = Math.floor((n * (Number(worker) + 1)) / Number(workers));
const a = all.array;
for (let i = from; i < to; i++) {
  a[i] = i * 0.5;
  if ((i - from) % 10_000 === 9_999) filled.add(10_000n);
}
filled.add(BigInt((to - from) % 10_000));
console.log(`  filler ${worker} (pid ${process.pid}): wrote elements ${from}..${to - 1} in place`);
all.close();
filled.close();
