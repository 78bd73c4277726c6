// Shared memory between real processes: separate node and python3 processes
// started with child_process, meeting by name.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Lock, SharedArray, SharedMemory, Value } from '../../lib/index.js';
import type { Typecode } from '../../lib/index.js';
import { FIXTURES, IS_ROOT, expectOk, runNode, runNodeUnprivileged, runPython, shmEntries, sleep, namesRemovedAfterEach } from '../helpers/index.js';

const { name, track } = namesRemovedAfterEach('shmp', (n) => SharedMemory.unlink(n), (n) => Lock.unlink(n));

describe('between node processes', () => {
  /** 4 processes x `count` increments started together; returns the final count. */
  async function adders(count: number): Promise<number> {
    const n = name('add');
    track(`${n}-go`);
    const v = new Value('i', 0, { name: n });
    const barrier = new Value('i', 0, { name: `${n}-go`, lock: false });
    try {
      const runs = await Promise.all([0, 1, 2, 3].map(() => runNode('shm/add.mjs', [n, String(count)])));
      runs.forEach((r, i) => expectOk(r, `adder ${i}`));
      expect(barrier.value).toBe(4);
      expect(v.load()).toBe(v.value);
      return v.value;
    } finally {
      barrier.close();
      barrier.unlink();
      v.close();
      v.unlink();
    }
  }

  // No control run with plain `value += 1`: whether it loses updates depends on
  // the scheduler overlapping the four loops (on two shared cores often not),
  // so it passed or failed by chance, and it tested the CPU, not this code.
  it('4 processes x 5000 atomic add(1) on one Value(\'i\') make exactly 20000', async () => {
    expect(await adders(5000)).toBe(20000);
  });

  /** 4 processes x 500 read-spin-write increments; returns the final count. */
  async function rmw(): Promise<number> {
    const n = name('rmw');
    track(`${n}-go`);
    const v = new Value('i', 0, { name: n });
    const barrier = new Value('i', 0, { name: `${n}-go`, lock: false });
    try {
      const runs = await Promise.all([0, 1, 2, 3].map(() => runNode('shm/locked-rmw.mjs', [n, '500'])));
      runs.forEach((r, i) => expectOk(r, `rmw ${i}`));
      expect(barrier.value).toBe(4);
      return v.value;
    } finally {
      barrier.close();
      barrier.unlink();
      v.close();
      v.unlink(); // the lock's semaphore goes with it
      expect(shmEntries()).not.toContain(`sem.${n}`);
    }
  }

  it('4 processes x 500 read-modify-writes under getLock() are exact', async () => {
    expect(await rmw()).toBe(2000);
  });

  // Instead of a control run without the lock (which loses updates only when
  // the scheduler overlaps the loops: a random outcome), show what makes the
  // locked run exact: another process's getLock() is this lock.
  it("getLock() in another process is the same lock: held here, it cannot take it; released, it can", async () => {
    const n = name('samelock');
    const v = new Value('i', 0, { name: n });
    const lock = v.getLock();
    try {
      expect(lock.tryAcquire()).toBe(true);
      const held = expectOk(await runNode('shm/try-lock.mjs', [n]), 'try-lock (held)');
      expect(JSON.parse(held.stdout)).toEqual({ try: false, timed: false });
      lock.release();
      const free = expectOk(await runNode('shm/try-lock.mjs', [n]), 'try-lock (free)');
      expect(JSON.parse(free.stdout)).toEqual({ try: true, timed: true });
      expect(lock.value).toBe(1);
    } finally {
      v.close();
      v.unlink();
    }
  });

  it('an opener waits for a creator caught between shm_open and its first write, then sees its value', async () => {
    const n = name('mid');
    const path = `/dev/shm/${n}`;
    writeFileSync(path, '', { mode: 0o600 }); // what a creator leaves right after shm_open
    const child = spawn(process.execPath, [join(FIXTURES, 'shm/open-value.mjs'), n], { stdio: ['ignore', 'pipe', 'inherit'] });
    const closed = once(child, 'close');
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    while (!out.includes('opening') && child.exitCode === null) await sleep(5);
    await sleep(300);
    const seven = Buffer.alloc(4);
    seven.writeInt32LE(7);
    writeFileSync(path, seven); // the creator's write: size and value at once
    const [code] = await closed;
    expect(code).toBe(0);
    const report = JSON.parse(out.split('\n')[1]);
    // Not 100 (it did not create it), not 0 (it did not read before the write),
    // and no EINVAL (it waited rather than fail on the empty segment).
    expect(report).toMatchObject({ value: 7, created: false });
    expect(report.ms).toBeGreaterThan(150);
  });

  it('SharedArray(\'d\', 1000) written by a child is read by the parent and by python3', async () => {
    const n = name('arr');
    const a = new SharedArray('d', 1000, { name: n });
    try {
      expectOk(await runNode('shm/fill-array.mjs', [n, '1000']), 'filler');
      const expected = Array.from({ length: 1000 }, (_, i) => i * 0.5 + 0.25);
      expect(Array.from(a.array)).toEqual(expected);
      const py = JSON.parse(expectOk(await runPython('shm/peer.py', ['sum-doubles', n, '1000']), 'python').stdout);
      expect(py.sum).toBe(expected.reduce((s, x) => s + x, 0));
      expect(py.first).toEqual([0.25, 0.75, 1.25]);
      expect(py.last).toBe(499.75);
      expect(shmEntries()).toContain(n); // python's resource tracker did not unlink it
    } finally {
      a.close();
      a.unlink();
    }
  });

  it('as uid 65534: a 0600 segment is refused, a 0644 one is readable but not writable, its own are 0600', async () => {
    const priv = name('priv');
    const shared = name('shared');
    const own = name('own');
    const p = new SharedMemory(priv, { create: true, size: 64 });
    const s = new Value('i', 1234, { name: shared, mode: 0o644 });
    chmodSync(`/dev/shm/${shared}`, 0o644); // in case the umask removed bits
    try {
      const r = expectOk(await runNodeUnprivileged('shm/unpriv.mjs', [priv, shared, own]), 'unprivileged');
      const report = JSON.parse(r.stdout);
      expect(report.uid).toBe(IS_ROOT ? 65534 : process.getuid!());
      expect(report.ownMode).toBe('600');
      if (IS_ROOT) {
        expect(report.openPrivate).toBe('EACCES');
        expect(report.openPrivateRO).toBe('EACCES');
        expect(report.openSharedRW).toBe('EACCES');
        expect(report.openSharedDefault).toBe('EPERM'); // root's, and owner defaults to 'self'
        expect(report.sharedValue).toBe(1234);
        expect(report.sharedAdd).toBe('EACCES');
        expect(report.sharedSet).toBe('EACCES');
        expect(s.value).toBe(1234);
      } else {
        // Run by an ordinary user, the child is that same user: its own 0600
        // segment opens. (The cross-user case needs root to stage.)
        expect(report.openPrivate).toBe('ok');
      }
    } finally {
      p.close();
      s.close();
    }
    expect(shmEntries()).not.toContain(own);
    expect(statSync(`/dev/shm/${priv}`).mode & 0o777).toBe(0o600);
  });
});

describe('with python3 multiprocessing.shared_memory', () => {
  it('node creates and writes; python reads and writes back; node sees it', async () => {
    const n = name('py');
    const s = new SharedMemory(n, { create: true, size: 4096 });
    try {
      s.buffer.write('from node', 0);
      const r = expectOk(await runPython('shm/peer.py', ['read-write', n]), 'python');
      const out = JSON.parse(r.stdout);
      expect(out.got).toBe('from node');
      expect(out.size).toBe(4096);
      expect(out.name).toBe(n); // Python reports the same name we do
      expect(s.buffer.toString('utf8', 16, 27)).toBe('from python');
      expect(shmEntries()).toContain(n);
    } finally {
      s.close();
      s.unlink();
    }
  });

  it('python creates; node opens, reads and answers; python sees the answer', async () => {
    const n = name('pyc');
    const created = JSON.parse(expectOk(await runPython('shm/peer.py', ['create', n, '10000']), 'python create').stdout);
    expect(created).toEqual({ name: n, size: 10000 });
    const s = new SharedMemory(n);
    try {
      expect(s.created).toBe(false);
      expect(s.size).toBe(10000);
      const expected = Buffer.from(Array.from({ length: 10000 }, (_, i) => i % 251));
      expect(s.buffer.equals(expected)).toBe(true);
      s.buffer.write('node says!', 0);
    } finally {
      s.close();
    }
    const checked = JSON.parse(expectOk(await runPython('shm/peer.py', ['check', n]), 'python check').stdout);
    expect(checked.answer).toBe('node says!');
    expect(shmEntries()).not.toContain(n); // python unlinked it
  });

  it('python\'s struct reads every typecode of our Values', async () => {
    const values: [Typecode, number | bigint][] = [
      ['b', -5],
      ['B', 250],
      ['h', -12345],
      ['H', 54321],
      ['i', -2000000000],
      ['I', 4000000000],
      ['l', -(2n ** 62n)],
      ['L', 2n ** 63n + 5n],
      ['q', -9007199254740993n],
      ['Q', 2n ** 64n - 2n],
      ['f', 1.5],
      ['d', Math.PI],
    ];
    const opened = values.map(([code, v]) => new Value(code, v as never, { name: name(`v${code}`), lock: false }));
    try {
      const args = opened.map((v) => `${v.typecode}:${v.name}`);
      // Python prints repr() of each value: exact for 64-bit integers too.
      const out = JSON.parse(expectOk(await runPython('shm/peer.py', ['values', ...args]), 'python').stdout);
      for (const [code, v] of values) {
        expect(out[code], code).toBe(String(v));
      }
    } finally {
      for (const v of opened) v.close();
    }
  });
});
