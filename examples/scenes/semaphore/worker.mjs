// One "transcode service": started on its own, it opens the host-wide
// semaphore by name and does its jobs at most 3-at-a-time with the others.
// usage: worker.mjs <semaphore-name> <gate-name> <id> <jobs>
import { Semaphore } from '../../../dist/index.js';

const [name, gateName, id, jobs] = process.argv.slice(2);
const slots = new Semaphore(name, { create: false });
// Line up with the others: wait at the start gate until the demo opens it.
const gate = new Semaphore(gateName, { create: false });
console.log('ready');
await gate.acquire();
gate.close();
const t = () => process.hrtime.bigint(); // CLOCK_MONOTONIC, comparable across processes
for (let job = 1; job <= Number(jobs); job++) {
  await slots.withAcquired(async () => {
    console.log(`enter ${t()} ${id} job ${job}`);
    await new Promise((r) => setTimeout(r, 120 + Math.random() * 80)); // the "work"
    console.log(`exit ${t()} ${id} job ${job}`);
  });
}
slots.close();
