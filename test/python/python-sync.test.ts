// Semaphores across languages through the pipc Python module: the crash-safe
// protocol (a Python holder SIGKILLed gives its unit to a Node waiter, and
// the reverse), plain semaphores, kind mismatches, and a mixed chaos run.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IPCError, Lock, Semaphore } from '../../lib/index.js';
import { expectOk, FIXTURES, namesRemovedAfterEach, PYTHON, runPython, sleep } from '../helpers/index.js';

const { name } = namesRemovedAfterEach('pysem', (n) => Semaphore.unlink(n));
const PEER = join(FIXTURES, 'python/peer.py');
const NODE_HOLDER = join(FIXTURES, 'sync/robust.mjs');

/** Starts a holder (python3 peer.py hold, or node robust.mjs hold) and resolves once it holds. */
async function holder(lang: 'python' | 'node', n: string, kind: 'lock' | 'sem'): Promise<ChildProcess> {
  const argv = lang === 'python' ? [PYTHON, PEER, 'hold', n, kind] : [process.execPath, NODE_HOLDER, 'hold', n, kind];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code, sig) => reject(new Error(`holder exited with ${code ?? sig}`)));
  });
  return child;
}

function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  return exited;
}

describe('crash-safe semaphores, Node and Python', () => {
  it('a Python holder SIGKILLed: the Node waiter gets the unit within 1 s, told the dead pid', async () => {
    const n = name('py-dies');
    const lock = new Lock(n);
    const child = await holder('python', n, 'lock');
    try {
      expect(lock.locked()).toBe(true);
      expect(await lock.acquire({ timeout: 300 })).toBe(false);
      const waiting = lock.hold({ timeout: 5000 });
      await sleep(20);
      const t0 = performance.now();
      await kill(child);
      const held = await waiting;
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(held.recovered?.pid).toBe(child.pid);
      held.release();
      expect(lock.value).toBe(1);
    } finally {
      child.kill('SIGKILL');
      lock.close();
    }
  });

  it('a Node holder SIGKILLed: the Python waiter gets the unit within 1 s, told the dead pid', async () => {
    const n = name('node-dies');
    const lock = new Lock(n);
    const child = await holder('node', n, 'lock');
    try {
      const waiter = runPython('python/peer.py', ['acquire', n, 'lock', '5']);
      await sleep(300);
      await kill(child);
      const r = JSON.parse(expectOk(await waiter, 'python waiter').stdout);
      expect(r.ok).toBe(true);
      expect(r.recovered).toBe(child.pid);
      expect(r.ms).toBeLessThan(300 + 1500);
      expect(lock.value).toBe(1);
    } finally {
      child.kill('SIGKILL');
      lock.close();
    }
  });

  it('Semaphore(3): 2 Python holders and 1 Node holder; killing the Python ones gives exactly 2 back', async () => {
    const n = name('sem3');
    const sem = new Semaphore(n, { initialValue: 3 });
    const kids = [await holder('python', n, 'sem'), await holder('python', n, 'sem'), await holder('node', n, 'sem')];
    try {
      expect(sem.value).toBe(0);
      await Promise.all([kill(kids[0]!), kill(kids[1]!)]);
      expect(await sem.acquire({ timeout: 2000 })).toBe(true);
      expect(await sem.acquire({ timeout: 2000 })).toBe(true);
      expect(await sem.acquire({ timeout: 400 })).toBe(false); // the live Node holder keeps its own
      sem.release(2);
      expect(sem.value).toBe(2);
    } finally {
      kids.forEach((k) => k.kill('SIGKILL'));
      sem.close();
    }
  });

  it('hand-off: a Python waiter blocked on a Node-held Lock wakes on release', async () => {
    const n = name('handoff');
    const lock = new Lock(n);
    const held = await lock.hold();
    let done = false;
    const waiter = runPython('python/peer.py', ['acquire', n, 'lock', '5']).finally(() => (done = true));
    await sleep(800);
    expect(done).toBe(false); // still blocked on the Lock Node holds
    held.release();
    const r = JSON.parse(expectOk(await waiter).stdout);
    expect(r).toMatchObject({ ok: true, recovered: null });
    expect(lock.value).toBe(1);
    lock.close();
  });

  it('chaos: Node and Python chaos-lock workers SIGKILLed at random instants: values 1..K, no duplicate, no gap', async () => {
    const n = name('chaos');
    const dir = mkdtempSync(join(tmpdir(), 'pipc-pychaos-'));
    const file = join(dir, 'log');
    const lock = new Lock(n);
    const workers = new Set<ChildProcess>();
    const start = (lang: 'python' | 'node'): ChildProcess => {
      const argv = lang === 'python' ? [PYTHON, PEER, 'chaos-lock', n, file] : [process.execPath, NODE_HOLDER, 'chaos-lock', n, file];
      const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
      workers.add(c);
      c.once('exit', () => workers.delete(c));
      return c;
    };
    try {
      const langs: Array<'python' | 'node'> = ['python', 'node', 'python', 'node'];
      langs.forEach(start);
      let kills = 0;
      const end = Date.now() + 6000;
      let i = 0;
      while (Date.now() < end) {
        await sleep(150 + Math.random() * 250);
        const victim = [...workers][Math.floor(Math.random() * workers.size)];
        if (victim !== undefined) {
          await kill(victim);
          kills++;
        }
        start(langs[i++ % 2]!);
      }
      await Promise.all([...workers].map(kill));
      const values = readFileSync(file, 'latin1').trim().split('\n').map((l) => Number(l.trim()));
      expect(kills).toBeGreaterThan(8);
      expect(values.length).toBeGreaterThan(20);
      expect(values).toEqual(values.map((_, k) => k + 1));
      // every unit came back: the lock is free once the dead are recovered
      expect(await lock.acquire({ timeout: 2000 })).toBe(true);
      lock.release();
    } finally {
      for (const w of workers) w.kill('SIGKILL');
      lock.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('plain semaphores and kinds, Node and Python', () => {
  it('Python creates a plain semaphore, Node opens it with robust: false and sees its value', async () => {
    const n = name('plain');
    const r = JSON.parse(expectOk(await runPython('python/peer.py', ['sem-make', n, '4', 'plain'])).stdout);
    expect(r).toEqual({ value: 4, robust: false });
    const s = new Semaphore(n, { robust: false, create: false });
    expect(s.value).toBe(4);
    s.close();
  });

  it('a name holding one kind refuses the other, in Python too (FileExistsError naming the kind)', async () => {
    const n = name('kind');
    const s = new Semaphore(n, { robust: false });
    const r = await runPython('python/peer.py', ['sem-make', n, '1', 'robust']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FileExistsError|IPCFileExistsError/);
    expect(r.stderr).toMatch(/a plain POSIX semaphore \(robust=False\) already exists/);
    s.close();
    Semaphore.unlink(n);
    expectOk(await runPython('python/peer.py', ['sem-make', n, '1', 'robust']));
    let err: unknown;
    try {
      new Semaphore(n, { robust: false });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IPCError);
    expect((err as IPCError).message).toMatch(/crash-safe semaphore/);
  });
});
