// Queues across languages through the pipc Python module: the JSON codec,
// priorities, raw bytes, and large items through side segments, both ways.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Queue } from '../../lib/index.js';
import { expectOk, ourShmEntries, runPython, namesRemovedAfterEach } from '../helpers/index.js';

const { name } = namesRemovedAfterEach('pyq', (n) => Queue.unlink(n));

describe('Queue, Node and Python', () => {
  it('Node puts JSON items with priorities, Python gets them in priority order with exact values', async () => {
    const n = name('n2p');
    const q = new Queue(n, { maxsize: 8, maxMessageSize: 1024 });
    const items = [{ id: 1, s: 'é✓' }, [1, 2.5, null, true], 'text', 2 ** 53 - 1, { nested: { a: [] } }];
    for (const it of items) await q.put(it);
    await q.put({ urgent: true }, { priority: 7 });
    const r = JSON.parse(expectOk(await runPython('python/peer.py', ['q-recv', n, '6'])).stdout);
    expect(r[0]).toEqual({ item: { urgent: true }, prio: 7 });
    expect(r.slice(1).map((x: { item: unknown }) => x.item)).toEqual(items);
    expect(q.qsize()).toBe(0);
    q.close();
  });

  it('Python puts, Node gets the same values and priorities', async () => {
    const n = name('p2n');
    const q = new Queue(n, { maxsize: 8, maxMessageSize: 1024 });
    const items = [{ id: 1, prio: 0 }, { id: 2, prio: 5 }, { id: 3, s: 'ünï', prio: 0 }];
    expectOk(await runPython('python/peer.py', ['q-send', n, JSON.stringify(items)]));
    expect(q.qsize()).toBe(3);
    expect(await q.get()).toEqual(items[1]);
    expect(await q.get()).toEqual(items[0]);
    expect(await q.get()).toEqual(items[2]);
    q.close();
  });

  it('raw bytes from Node arrive as the same bytes in Python', async () => {
    const n = name('raw');
    const q = new Queue<Buffer>(n, { codec: 'raw', maxsize: 4, maxMessageSize: 64 });
    await q.put(Buffer.from([0, 1, 2, 255, 128]));
    const r = JSON.parse(expectOk(await runPython('python/peer.py', ['q-recv', n, '1', 'raw'])).stdout);
    expect(r).toEqual([{ item: '000102ff80', prio: 0 }]);
    q.close();
  });

  it('a large item (1 MiB) Node -> Python through a side segment: same length and sha256, segment removed', async () => {
    const n = name('big-n2p');
    const q = new Queue(n, { maxsize: 4, maxMessageSize: 512 });
    const big = { blob: 'x'.repeat(1 << 20), n: 42 };
    await q.put(big);
    const text = JSON.stringify(big);
    const r = JSON.parse(expectOk(await runPython('python/peer.py', ['q-recv-large', n])).stdout);
    expect(r).toEqual({ length: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex'), type: 'dict' });
    expect(ourShmEntries().filter((e) => e.startsWith('pipc-mq.'))).toEqual([]);
    q.close();
  });

  it('a large item (300 kB) Python -> Node through a side segment: exact value, segment removed', async () => {
    const n = name('big-p2n');
    const q = new Queue<string>(n, { maxsize: 4, maxMessageSize: 512 });
    expectOk(await runPython('python/peer.py', ['q-send-large', n, '300000']));
    expect(ourShmEntries().filter((e) => e.startsWith('pipc-mq.'))).toHaveLength(1);
    const got = await q.get({ timeout: 5000 });
    expect(got.length).toBe(300000);
    expect(got).toBe('0123456789'.repeat(30000));
    expect(ourShmEntries().filter((e) => e.startsWith('pipc-mq.'))).toEqual([]);
    q.close();
  });

  it('round trip: Node -> Python -> Node, 200 items in order', async () => {
    const a = name('rt-a');
    const b = name('rt-b');
    const qa = new Queue<number>(a, { maxsize: 10, maxMessageSize: 128 });
    const qb = new Queue<number>(b, { maxsize: 10, maxMessageSize: 128 });
    const echo = runPython('python/peer.py', ['q-echo', a, b, '200']);
    const got: number[] = [];
    const reader = (async () => {
      for (let i = 0; i < 200; i++) got.push(await qb.get({ timeout: 10_000 }));
    })();
    for (let i = 0; i < 200; i++) await qa.put(i, { timeout: 10_000 });
    await reader;
    expectOk(await echo);
    expect(got).toEqual([...Array(200).keys()]);
    qa.close();
    qb.close();
  });
});
