// The shared-memory ring queue (transport 'shm') across languages: Node and
// Python (pipc) as full peers of one segment, with the documented lock,
// journal and futex protocol. Real separate python3 and node processes.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Queue } from '../../lib/index.js';
import { FIXTURES, PYTHON, expectOk, namesRemovedAfterEach, run, runNode, runPython } from '../helpers/index.js';

const { name } = namesRemovedAfterEach('pyring', (n) => Queue.unlink(n));
const PEER = 'python/ring_peer.py';

describe('ring Queue, Node and Python', () => {
  it('Node producer -> Python consumer: 10,000 items exact and in order', async () => {
    const n = name('n2p');
    const q = new Queue(n, { transport: 'shm', capacity: 16 * 1024 });
    const consumer = runPython(PEER, ['get', n, '10000'], { timeoutMs: 120_000 });
    for (let i = 0; i < 10_000; i++) await q.put({ p: 1, i }, { timeout: 30_000 });
    const r = JSON.parse(expectOk(await consumer).stdout);
    expect(r).toEqual({ n: 10_000, inorder: true, first: { p: 1, i: 0 }, last: { p: 1, i: 9999 } });
    expect(q.qsize()).toBe(0);
    q.close();
  }, 150_000);

  it('Python producer -> Node consumer: 10,000 items exact and in order', async () => {
    const n = name('p2n');
    const q = new Queue<{ p: number; i: number }>(n, { transport: 'shm', capacity: 16 * 1024 });
    const producer = runPython(PEER, ['put', n, '7', '10000'], { timeoutMs: 120_000 });
    for (let i = 0; i < 10_000; i++) expect(await q.get({ timeout: 30_000 })).toEqual({ p: 7, i });
    expectOk(await producer);
    expect(q.qsize()).toBe(0);
    q.close();
  }, 150_000);

  it('a 1 MiB item both ways: same length and sha256', async () => {
    const n = name('big');
    const q = new Queue<string>(n, { transport: 'shm', capacity: 4 * 1024 * 1024 });
    const big = '0123456789'.repeat(1 << 17).slice(0, 1 << 20);
    await q.put(big);
    const text = JSON.stringify(big);
    const r = JSON.parse(expectOk(await runPython(PEER, ['get-big', n])).stdout);
    expect(r).toEqual({ length: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') });
    expectOk(await runPython(PEER, ['put-big', n, String(1 << 20)]));
    expect(await q.get({ timeout: 5000 })).toBe(big);
    q.close();
  }, 60_000);

  it('2 Node + 2 Python producers into one Node consumer: every item exactly once, each producer in order', async () => {
    const n = name('mix');
    const q = new Queue<{ p: number; i: number }>(n, { transport: 'shm', capacity: 8 * 1024 });
    const per = 2500;
    const kids = [
      runNode('queue/producer.mjs', [n, '1', String(per)], { timeoutMs: 120_000 }),
      runNode('queue/producer.mjs', [n, '2', String(per)], { timeoutMs: 120_000 }),
      runPython(PEER, ['put', n, '3', String(per)], { timeoutMs: 120_000 }),
      runPython(PEER, ['put', n, '4', String(per)], { timeoutMs: 120_000 }),
    ];
    const next = new Map<number, number>([
      [1, 0],
      [2, 0],
      [3, 0],
      [4, 0],
    ]);
    for (let k = 0; k < 4 * per; k++) {
      const { p, i } = await q.get({ timeout: 30_000 });
      expect(i).toBe(next.get(p));
      next.set(p, i + 1);
    }
    for (const r of await Promise.all(kids)) expectOk(r);
    expect([...next.values()]).toEqual([per, per, per, per]);
    expect(q.getNowait.bind(q)).toThrow(/Empty|empty/);
    q.close();
  }, 150_000);

  it('a Python producer SIGKILLed at random while Node consumes: no duplicate, gap or half item, never wedged', async () => {
    const n = name('chaos');
    const q = new Queue<{ r: number; i: number; pad: string }>(n, { transport: 'shm', capacity: 2048 });
    let delivered = 0;
    let slowest = 0;
    for (let round = 0; round < 12; round++) {
      const child = spawn(PYTHON, [join(FIXTURES, PEER), 'chaos', n, String(round)], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      const killAt = Date.now() + 20 + Math.floor(Math.random() * 150);
      let expectI = 0;
      const take = (item: { r: number; i: number; pad: string }): void => {
        expect(item.r).toBe(round);
        expect(item.i).toBe(expectI);
        expect(item.pad).toBe('x'.repeat((item.i * 37) % 300));
        expectI++;
        delivered++;
      };
      while (Date.now() < killAt) {
        const t0 = Date.now();
        take(await q.get({ timeout: 5000 }));
        slowest = Math.max(slowest, Date.now() - t0);
      }
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('close', resolve));
      // Drain what it committed; a put killed before its commit is gone whole.
      for (;;) {
        const t0 = Date.now();
        let item;
        try {
          item = q.getNowait();
        } catch (err) {
          expect((err as Error).name).toBe('Empty');
          expect(Date.now() - t0).toBeLessThan(1000);
          break;
        }
        slowest = Math.max(slowest, Date.now() - t0);
        take(item);
      }
      // The lock is usable by Node within 1 s, whatever instant the kill hit.
      const t0 = Date.now();
      q.putNowait({ r: -1, i: -1, pad: '' });
      expect(q.getNowait()).toEqual({ r: -1, i: -1, pad: '' });
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(q.qsize()).toBe(0);
    }
    expect(delivered).toBeGreaterThan(100);
    expect(slowest).toBeLessThan(1000);
    q.close();
  }, 120_000);

  it('a Node producer SIGKILLed at random, a Python consumer drains: every announced item once, whole, in order', async () => {
    const n = name('nchaos');
    const q = new Queue(n, { transport: 'shm', capacity: 256 * 1024 });
    let announcedTotal = 0;
    for (let g = 0; g < 8; g++) {
      const child = spawn(process.execPath, [join(FIXTURES, 'queue/ring-chaos.mjs'), 'produce', n, '1', String(g)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      const seen: Array<{ p: number; g: number; i: number; pad: string; sum: number }> = [];
      // Python takes items while the producer runs (it fills the 256 KiB ring and waits), then it is killed.
      const drainer = async (): Promise<void> => {
        const r = JSON.parse(expectOk(await runPython(PEER, ['drain', n])).stdout);
        expect(r.slowest).toBeLessThan(1);
        seen.push(...r.items);
      };
      await new Promise((resolve) => setTimeout(resolve, 80 + Math.floor(Math.random() * 200)));
      await drainer();
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('close', resolve));
      await drainer();
      const announced = out.split('\n').filter((l) => l.startsWith('put ')).length;
      const mine = seen.filter((x) => x.g === g);
      expect(mine.length).toBe(seen.length);
      expect(mine.map((x) => x.i)).toEqual(mine.map((_, k) => k));
      for (const x of mine) {
        let h = 0;
        for (let k = 0; k < x.pad.length; k++) h = (h * 31 + x.pad.charCodeAt(k)) | 0;
        expect(h).toBe(x.sum);
      }
      // Every put that returned is delivered; at most the one in flight at the kill, committed but unannounced, too.
      expect(mine.length).toBeGreaterThanOrEqual(announced);
      expect(mine.length).toBeLessThanOrEqual(announced + 1);
      announcedTotal += announced;
    }
    expect(announcedTotal).toBeGreaterThan(20);
    expect(q.qsize()).toBe(0);
    q.close();
  }, 120_000);

  it('Python opens whichever kind exists, refuses the other kind, and refuses hostile files', async () => {
    const n = name('kind');
    const mq = new Queue(n, { transport: 'mq', maxsize: 4, maxMessageSize: 64 });
    const script = `
import sys, json, os
sys.path.insert(0, ${JSON.stringify(join(FIXTURES, '..', '..', 'python'))})
import pipc
out = {}
def attempt(key, **kw):
    try:
        q = pipc.Queue(sys.argv[1], create=False, **kw)
        out[key] = q.transport
        q.close()
    except Exception as e:
        out[key] = [type(e).__name__, getattr(e, "code", None), str(e)]
attempt("default")
attempt("shm", transport="shm")
print(json.dumps(out))
`;
    let r = JSON.parse(expectOk(await run(PYTHON, ['-c', script, n])).stdout);
    expect(r.default).toBe('mq');
    expect(r.shm[0]).toBe('IPCFileExistsError');
    expect(r.shm[1]).toBe('EEXIST');
    expect(r.shm[2]).toMatch(/POSIX message queue \(transport 'mq'\) exists/);
    mq.close();
    Queue.unlink(n);

    const path = `/dev/shm/pipc.${n}.queue`;
    const hostile: Array<[string, () => void, string]> = [
      ['wrong size', () => writeFileSync(path, Buffer.alloc(40_000), { mode: 0o600 }), 'EINVAL'],
      ['garbage header', () => writeFileSync(path, Buffer.alloc(33_024 + 4096, 0xab), { mode: 0o600 }), 'EINVAL'],
      ['symlink', () => symlinkSync('/etc/passwd', path), 'ELOOP'],
    ];
    for (const [what, make, code] of hostile) {
      make();
      try {
        r = JSON.parse(expectOk(await run(PYTHON, ['-c', script, n])).stdout);
        expect(r.default[1], what).toBe(code);
        expect(r.shm[1], what).toBe(code);
      } finally {
        rmSync(path, { force: true });
      }
    }
  }, 60_000);
});
