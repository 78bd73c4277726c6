// A Node worker for scene 2: takes jobs until { stop: true }; the result of
// job n is n*n plus the length of its payload, if it has one, after 20 ms
// of pretend work (so that the workers share the jobs).
import { Queue } from '../../../dist/index.js';

const [jobsName, resultsName, label] = process.argv.slice(2);
const jobs = new Queue(jobsName, { create: false });
const results = new Queue(resultsName, { create: false });
console.log('ready');
let count = 0;
for await (const job of jobs) {
  if (job.stop) break;
  await new Promise((r) => setTimeout(r, 20)); // the "work"
  if (job.blob) console.log(`took job ${job.id} with a ${job.blob.length}-byte payload`);
  await results.put({ id: job.id, result: job.n * job.n + (job.blob?.length ?? 0), by: label }, { timeout: 10_000 });
  count += 1;
}
console.log(`done after ${count} jobs`);
jobs.close();
results.close();
