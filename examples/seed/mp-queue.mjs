// The seed's multiprocessing Queue example: a producer and a consumer.
// Python:
//
//   from multiprocessing import Process, Queue
//   def producer(q):
//       for i in range(5):
//           q.put(f'item {i}')
//           print(f'produced item {i}', flush=True)
//       q.put(None)
//   def consumer(q):
//       while (item := q.get()) is not None:
//           print(f'consumed {item}', flush=True)
//   if __name__ == '__main__':
//       q = Queue()
//       p = Process(target=producer, args=(q,))
//       c = Process(target=consumer, args=(q,))
//       p.start(); c.start()
//       p.join(); c.join()
//       print('done')
import { Process, Queue, currentProcess } from '../../dist/index.js';

export async function producer(q) {
  for (let i = 0; i < 5; i++) {
    await q.put(`item ${i}`);
    console.log(`produced item ${i}`);
  }
  await q.put(null);
}

export async function consumer(q) {
  let item;
  while ((item = await q.get()) !== null) console.log(`consumed ${item}`);
}

if (currentProcess().name === 'MainProcess') {
  const q = new Queue(`seed-queue-${process.pid}`);
  try {
    const p = new Process(import.meta.url, { export: 'producer', args: [q] });
    const c = new Process(import.meta.url, { export: 'consumer', args: [q] });
    p.start();
    c.start();
    await p.join();
    await c.join();
    console.log('done');
  } finally {
    q.close();
    q.unlink();
  }
}
