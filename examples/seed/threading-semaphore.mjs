// The seed's threading example: a Semaphore(3) lets 3 of 10 threads work at
// once. Python:
//
//   import threading, time
//   sem = threading.Semaphore(3)
//   def worker(i):
//       with sem:
//           print(f'{time.strftime("%H:%M:%S")} worker {i} acquired')
//           time.sleep(0.1)
//           print(f'{time.strftime("%H:%M:%S")} worker {i} released')
//   threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
//   for t in threads: t.start()
//   for t in threads: t.join()
//
// Node's threads are worker_threads, and a thread cannot see the main
// thread's objects: the semaphore is found by name, as between processes.
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { Semaphore } from '../../dist/index.js';

const now = () => new Date().toISOString().slice(11, 23);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function worker(name, i) {
  const sem = new Semaphore(name);
  // `with sem:` (Node 20 has no `using` outside TypeScript: withAcquired releases however fn ends)
  await sem.withAcquired(async () => {
    console.log(`${now()} worker ${i} acquired`);
    await sleep(100);
    console.log(`${now()} worker ${i} released`);
  });
  sem.close();
}

if (isMainThread) {
  const sem = new Semaphore(`seed-thread-sem-${process.pid}`, { initialValue: 3 });
  try {
    const threads = Array.from({ length: 10 }, (_, i) => new Worker(new URL(import.meta.url), { workerData: { name: sem.name, i } }));
    await Promise.all(threads.map((t) => new Promise((resolve, reject) => t.on('exit', resolve).on('error', reject))));
  } finally {
    sem.close();
    sem.unlink();
  }
} else {
  await worker(workerData.name, workerData.i);
}
