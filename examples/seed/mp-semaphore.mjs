// The seed's multiprocessing Semaphore example: 3 of 10 processes at once.
// Python:
//
//   from multiprocessing import Process, Semaphore
//   import time
//   def worker(sem, i):
//       with sem:
//           print(f'{time.strftime("%H:%M:%S")} worker {i} acquired', flush=True)
//           time.sleep(0.1)
//           print(f'{time.strftime("%H:%M:%S")} worker {i} released', flush=True)
//   if __name__ == '__main__':
//       sem = Semaphore(3)
//       processes = [Process(target=worker, args=(sem, i)) for i in range(10)]
//       for p in processes: p.start()
//       for p in processes: p.join()
//
// This file is both the program and the module the children import, so the
// main part is guarded as Python's `if __name__ == '__main__':`.
import { Process, Semaphore, currentProcess } from '../../dist/index.js';

const now = () => new Date().toISOString().slice(11, 23);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export default async function worker(sem, i) {
  // `with sem:` (Node 20 has no `using` outside TypeScript: withAcquired releases however fn ends)
  await sem.withAcquired(async () => {
    console.log(`${now()} worker ${i} acquired`);
    await sleep(100);
    console.log(`${now()} worker ${i} released`);
  });
}

if (currentProcess().name === 'MainProcess') {
  const sem = new Semaphore(`seed-sem-${process.pid}`, { initialValue: 3 });
  try {
    const processes = Array.from({ length: 10 }, (_, i) => new Process(import.meta.url, { args: [sem, i] }));
    for (const p of processes) p.start();
    for (const p of processes) await p.join();
  } finally {
    sem.close();
    sem.unlink();
  }
}
