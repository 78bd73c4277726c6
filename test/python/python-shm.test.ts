// Shared memory across languages through the pipc Python module: the same
// bytes both ways, typed cells with the same layout, and mixed Node/Python
// atomic adds that lose no update.
import { describe, expect, it } from 'vitest';
import { SharedArray, SharedMemory, Value } from '../../lib/index.js';
import { expectOk, namesRemovedAfterEach, runNode, runPython } from '../helpers/index.js';

const { name, track } = namesRemovedAfterEach('pyshm', (n) => SharedMemory.unlink(n), (n) => Value.unlink(n));

describe('SharedMemory, Value and SharedArray, Node and Python', () => {
  it('Node creates, Python reads and writes the same bytes', async () => {
    const n = name('rw');
    const shm = new SharedMemory(n, { create: true, size: 4096 });
    shm.buffer.write('from node', 0);
    const r = JSON.parse(expectOk(await runPython('python/peer.py', ['shm-read-write', n])).stdout);
    expect(r).toEqual({ got: 'from node', size: 4096, name: n });
    expect(shm.buffer.toString('latin1', 16, 27)).toBe('from python');
    shm.close();
  });

  it('Python creates a 10,000-byte segment, Node opens it with the exact bytes', async () => {
    const n = name('pycreate');
    const r = JSON.parse(expectOk(await runPython('python/peer.py', ['shm-create', n, '10000'])).stdout);
    expect(r).toEqual({ name: n, size: 10000 });
    const shm = new SharedMemory(n, { create: false });
    expect(shm.size).toBe(10000);
    for (let i = 0; i < 10000; i++) if (shm.buffer[i] !== i % 251) throw new Error(`byte ${i} is ${shm.buffer[i]}`);
    shm.close();
  });

  it('SharedArray elements written by Node read the same in Python, for every typecode', async () => {
    const cases: Array<[string, unknown[], string[]]> = [
      ['b', [-128, 127, 0], ['-128', '127', '0']],
      ['H', [65535, 1, 2], ['65535', '1', '2']],
      ['i', [-2147483648, 7, 2147483647], ['-2147483648', '7', '2147483647']],
      ['I', [4294967295, 0, 1], ['4294967295', '0', '1']],
      ['q', [-(2n ** 63n), 5n, 2n ** 63n - 1n], [String(-(2n ** 63n)), '5', String(2n ** 63n - 1n)]],
      ['Q', [2n ** 64n - 1n, 0n, 9n], [String(2n ** 64n - 1n), '0', '9']],
      ['l', [-1n, 0n, 1n], ['-1', '0', '1']],
      ['f', [1.5, -0.25, 3], ['1.5', '-0.25', '3.0']],
      ['d', [Math.PI, -1e300, 0.1], ['3.141592653589793', '-1e+300', '0.1']],
    ];
    for (const [tc, values, py] of cases) {
      const n = name(`arr-${tc}`);
      const a = new SharedArray(tc as 'i', values as number[], { name: n });
      const r = JSON.parse(expectOk(await runPython('python/peer.py', ['arr', n, tc, '3'])).stdout);
      expect([tc, r.values]).toEqual([tc, py]);
      a.close();
    }
  });

  it('2 Node + 2 Python processes x 20,000 atomic add(1) on one Value: exactly 80,000', async () => {
    const n = name('mixed');
    const count = 20_000;
    const v = new Value('i', 0, { name: n });
    const go = new Value('i', 0, { name: `${n}-go`, lock: false });
    track(`${n}-go`);
    const runs = await Promise.all([
      runNode('shm/add.mjs', [n, String(count)]),
      runPython('python/peer.py', ['v-add', n, String(count)]),
      runNode('shm/add.mjs', [n, String(count)]),
      runPython('python/peer.py', ['v-add', n, String(count)]),
    ]);
    runs.forEach((r) => expectOk(r));
    expect(go.load()).toBe(4);
    expect(v.load()).toBe(4 * count);
    v.close();
    go.close();
  });

  it('64-bit cells: Python add() on a Value(q) Node adds to as well: exact', async () => {
    const n = name('mixed64');
    const count = 5_000;
    const v = new Value('q', 2n ** 40n, { name: n });
    const go = new Value('i', 2, { name: `${n}-go`, lock: false }); // only the 2 Python peers wait
    track(`${n}-go`);
    const runs = Promise.all([runPython('python/peer.py', ['v-add', n, String(count), 'q']), runPython('python/peer.py', ['v-add', n, String(count), 'q'])]);
    for (let i = 0; i < count; i++) v.add(1n);
    (await runs).forEach((r) => expectOk(r));
    expect(v.load()).toBe(2n ** 40n + 3n * BigInt(count));
    v.close();
    go.close();
  });

  it('read-modify-write under getLock() composes between Node and Python lock holders', async () => {
    const n = name('locked');
    const count = 2_000;
    const v = new Value('i', 0, { name: n });
    const go = new Value('i', 3, { name: `${n}-go`, lock: false }); // the Python peer waits for itself only
    track(`${n}-go`);
    const py = runPython('python/peer.py', ['v-locked-add', n, String(count)]);
    const lock = v.getLock();
    for (let i = 0; i < count; i++) {
      using _held = await lock.hold();
      v.value = v.value + 1;
    }
    expectOk(await py);
    expect(v.value).toBe(2 * count);
    v.close();
    go.close();
  });
});
