// The seed's multiprocessing Value example: 4 processes add to one counter,
// each increment under the value's lock. Python:
//
//   from multiprocessing import Process, Value
//   def add(counter, n):
//       for _ in range(n):
//           with counter.get_lock():
//               counter.value += 1
//   if __name__ == '__main__':
//       counter = Value('i', 0)
//       processes = [Process(target=add, args=(counter, 500)) for _ in range(4)]
//       for p in processes: p.start()
//       for p in processes: p.join()
//       print('counter =', counter.value)
import { Process, Value, currentProcess } from '../../dist/index.js';

export default function add(counter, n) {
  const lock = counter.getLock();
  for (let i = 0; i < n; i++) {
    lock.acquireSync(); // `with counter.get_lock():`, blocking as Python's
    try {
      counter.value += 1;
    } finally {
      lock.release();
    }
  }
}

if (currentProcess().name === 'MainProcess') {
  const counter = new Value('i', 0, { name: `seed-counter-${process.pid}` });
  try {
    const processes = Array.from({ length: 4 }, () => new Process(import.meta.url, { args: [counter, 500] }));
    for (const p of processes) p.start();
    for (const p of processes) await p.join();
    console.log('counter =', counter.value);
  } finally {
    counter.close();
    Value.unlink(counter.name);
  }
}
