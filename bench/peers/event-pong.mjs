// Peer of bench/event.bench.mjs: answers each set of Event A by setting B.
import { Event } from '../../dist/index.js';
const [a, b, n] = process.argv.slice(2);
const A = new Event(a, { create: false });
const B = new Event(b, { create: false });
process.stdout.write('ready\n');
for (let i = 0; i < Number(n); i++) {
  await A.wait();
  A.clear();
  B.set();
}
A.close();
B.close();
