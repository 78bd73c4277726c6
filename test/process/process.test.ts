// Process: a module's export in a new node process, with posix-ipc objects
// among its arguments reopened there; exit codes as Python's; daemon
// children die with their parent, even a parent killed with SIGKILL.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Lock,
  Pipe,
  Process,
  Queue,
  Semaphore,
  SharedArray,
  SharedMemory,
  Value,
  activeChildren,
  cpuCount,
  currentProcess,
} from '../../lib/index.js';
import { FIXTURES, namesRemovedAfterEach, queueExists } from '../helpers/index.js';
import { isRunning, noChildrenAfterEach, waitGone } from './children.js';

const TARGET = join(FIXTURES, 'process', 'basic.mjs');
const { name } = namesRemovedAfterEach(
  'proc',
  (n) => Semaphore.unlink(n),
  (n) => SharedMemory.unlink(n),
  (n) => queueExists(n) && Queue.unlink(n),
);
noChildrenAfterEach();

/** Starts a Process with stdout and stderr piped; `out` resolves what it printed. */
function piped(options: ConstructorParameters<typeof Process>[1], target = TARGET): { p: Process; out: Promise<string> } {
  const p = new Process(target, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  p.start();
  let text = '';
  p.stdout!.setEncoding('utf8').on('data', (d: string) => (text += d));
  p.stderr!.resume();
  const out = new Promise<string>((resolve) => p.stdout!.once('close', () => resolve(text)));
  return { p, out };
}

describe('Process', () => {
  it('runs the default export with cloned args; exitCode 0, name and pid as in the child', async () => {
    const { p, out } = piped({ args: [1, { x: [2, 'three'] }], name: 'greeter' });
    expect(p.isAlive()).toBe(true);
    expect(activeChildren()).toContain(p);
    expect(await p.join()).toBe(0);
    expect(p.exitCode).toBe(0);
    expect(p.error).toBeUndefined();
    expect(p.isAlive()).toBe(false);
    expect(activeChildren()).not.toContain(p);
    expect(JSON.parse(await out)).toEqual({ name: 'greeter', pid: p.pid, daemon: false, a: 1, b: { x: [2, 'three'] } });
  });

  it('currentProcess() in the child reports the name, pid and daemon flag', async () => {
    const { p, out } = piped({ args: ['a', ['b']], daemon: true });
    expect(await p.join()).toBe(0);
    expect(JSON.parse(await out)).toEqual({ name: p.name, pid: p.pid, daemon: true, a: 'a', b: ['b'] });
    expect(p.name).toMatch(/^Process-\d+$/);
    expect(currentProcess()).toEqual({ name: 'MainProcess', pid: process.pid, daemon: false });
    expect(cpuCount()).toBeGreaterThanOrEqual(1);
  });

  it('a target that throws: exit code 1 and error with the child\'s stack and code, not on our stdio', async () => {
    const { p } = piped({ export: 'fail', args: ['boom'] });
    expect(await p.join()).toBe(1);
    expect(p.error).toBeInstanceOf(Error);
    expect(p.error!.message).toBe('boom');
    expect((p.error as Error & { code?: string }).code).toBe('E_TARGET');
    expect(p.error!.stack).toContain('basic.mjs');
  });

  it('exit codes: process.exit(n) is n, kill() is -9, terminate() is -15', async () => {
    const a = new Process(TARGET, { export: 'exitWith', args: [7] });
    const b = new Process(TARGET, { export: 'sleep', args: [30_000] });
    const c = new Process(TARGET, { export: 'spin' });
    for (const p of [a, b, c]) p.start();
    expect(await a.join()).toBe(7);
    expect(a.error).toBeUndefined();
    b.kill();
    c.terminate();
    expect(await b.join()).toBe(-9);
    expect(await c.join()).toBe(-15);
    b.kill(); // no-op once exited
    b.close();
  });

  it('join({ timeout }) resolves null after the timeout and leaves the child running', async () => {
    const p = new Process(TARGET, { export: 'spin' });
    p.start();
    const t0 = performance.now();
    expect(await p.join({ timeout: 100 })).toBeNull();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(95);
    expect(p.isAlive()).toBe(true);
    expect(() => p.close()).toThrow(expect.objectContaining({ code: 'ERR_IPC_PROCESS_ALIVE' }));
    p.kill();
    expect(await p.join({ timeout: 5000 })).toBe(-9);
  });

  it('8 Processes share a Semaphore(3), a Queue and a Value: at most 3 inside at once, all counted', async () => {
    const n = name('eight');
    const sem = new Semaphore(n, { initialValue: 3 });
    const q = new Queue<{ i: number; pid: number }>(n, { codec: 'v8' });
    const v = new Value('i', 0, { name: `${n}-v` });
    const stats = new SharedArray('i', 2, { name: `${n}-stats`, lock: false });
    try {
      const ps = Array.from({ length: 8 }, (_, i) => new Process(TARGET, { export: 'limited', args: [sem, q, v, stats, i] }));
      for (const p of ps) p.start();
      const got = [];
      for (let i = 0; i < 8; i++) got.push(await q.get({ timeout: 20_000 }));
      const codes = await Promise.all(ps.map((p) => p.join()));
      expect(codes, String(ps.map((p) => p.error?.stack))).toEqual(new Array(8).fill(0));
      expect(got.map((g) => g.i).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(new Set(got.map((g) => g.pid))).toEqual(new Set(ps.map((p) => p.pid)));
      expect(v.value).toBe(8);
      expect(stats.load(0)).toBe(0);
      expect(stats.load(1)).toBeGreaterThanOrEqual(1);
      expect(stats.load(1)).toBeLessThanOrEqual(3);
      expect(sem.value).toBe(3);
    } finally {
      for (const o of [sem, q, v, stats]) o.close();
      SharedArray.unlink(`${n}-stats`);
      Value.unlink(`${n}-v`);
    }
  });

  it('a Pipe end travels as a descriptor and is rebuilt as a Connection', async () => {
    const [here, there] = Pipe({ codec: 'v8' });
    const p = new Process(TARGET, { export: 'echo', args: [{ conn: there }] });
    p.start();
    there.close();
    await here.send(new Map([[1, 'one']]));
    expect(await here.recv()).toEqual({ echo: new Map([[1, 'one']]), from: p.name });
    here.close();
    expect(await p.join()).toBe(0);
  });

  it('closes the objects it reopened when the target returns', async () => {
    const n = name('closed');
    const sem = new Lock(n);
    const q = new Queue(n);
    const shm = new SharedMemory(`${n}-shm`, { create: true, size: 64 });
    const v = new Value('d', 1.5, { name: `${n}-v` });
    const arr = new SharedArray('b', 3, { name: `${n}-a` });
    const [here, there] = Pipe();
    try {
      const { p, out } = piped({ export: 'closedAfter', args: [sem, q, shm, v, arr, there] });
      expect(await p.join()).toBe(0);
      expect(JSON.parse(await out)).toEqual({ sem: true, q: true, shm: true, v: true, arr: true, conn: true });
    } finally {
      for (const o of [sem, q, shm, v, arr, here, there]) o.close();
      shm.unlink();
      Value.unlink(`${n}-v`);
      SharedArray.unlink(`${n}-a`);
    }
  });

  it('bad input: missing module, no such export, uncloneable argument, join before start, start twice', async () => {
    expect(() => new Process(join(FIXTURES, 'process', 'nope.mjs'))).toThrow(expect.objectContaining({ code: 'ERR_MODULE_NOT_FOUND' }));
    expect(() => new Process(42 as never)).toThrow(TypeError);

    const noExport = piped({ export: 'missing' }).p;
    expect(await noExport.join()).toBe(1);
    expect(noExport.error!.message).toMatch(/has no export 'missing' that is a function \(its functions: .*fail/);

    const before = activeChildren().length;
    const bad = new Process(TARGET, { args: [{ deep: [() => 1] }] });
    expect(() => bad.start()).toThrow(expect.objectContaining({ code: 'ERR_IPC_UNCLONEABLE', message: expect.stringContaining('args[0].deep[0]') }));
    expect(() => new Process(TARGET, { args: [new WeakMap()] }).start()).toThrow(expect.objectContaining({ code: 'ERR_IPC_UNCLONEABLE' }));
    const n = name('shut');
    const closedSem = new Semaphore(n);
    closedSem.close();
    expect(() => new Process(TARGET, { args: [closedSem] }).start()).toThrow(expect.objectContaining({ code: 'EBADF' }));
    const q = new Queue(n, { codec: { encode: (x) => Buffer.from(String(x)), decode: String } });
    try {
      expect(() => new Process(TARGET, { args: [q] }).start()).toThrow(expect.objectContaining({ code: 'ERR_IPC_UNCLONEABLE' }));
    } finally {
      q.close();
    }
    expect(activeChildren().length).toBe(before);

    expect(() => new Process(TARGET, { cwd: '/nonexistent-dir' }).start()).toThrow(
      expect.objectContaining({ code: 'ERR_IPC_SPAWN_FAILED', message: expect.stringContaining('does not exist') }),
    );
    const p = new Process(TARGET, { stdio: 'ignore' });
    await expect(p.join()).rejects.toMatchObject({ code: 'ERR_IPC_PROCESS_NOT_STARTED' });
    expect(() => p.kill()).toThrow(expect.objectContaining({ code: 'ERR_IPC_PROCESS_NOT_STARTED' }));
    p.start();
    expect(() => p.start()).toThrow(expect.objectContaining({ code: 'ERR_IPC_PROCESS_STARTED' }));
    expect(await p.join()).toBe(0);
  });

  it('an object the child cannot reopen (unlinked meanwhile) fails the child, not the parent', async () => {
    const n = name('gone');
    const sem = new Semaphore(n);
    try {
      const { p } = piped({ args: [sem] });
      sem.unlink();
      // The unlink may win or lose the race with the child's sem_open; both end cleanly.
      const code = await p.join();
      if (code !== 0) expect(p.error).toMatchObject({ code: 'ENOENT' });
    } finally {
      sem.close();
    }
  });

  it('daemon children exit within 1 s of their parent being killed with SIGKILL; a non-daemon one lives on', async () => {
    const parent = spawn(process.execPath, [join(FIXTURES, 'process', 'daemon-parent.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let line = '';
    await new Promise<void>((resolve, reject) => {
      parent.stdout!.setEncoding('utf8').on('data', (d: string) => {
        line += d;
        if (line.includes('\n')) resolve();
      });
      parent.on('exit', () => reject(new Error(`daemon-parent exited early: ${line}`)));
    });
    const { daemons, plain } = JSON.parse(line) as { daemons: number[]; plain: number };
    expect(daemons.every(isRunning)).toBe(true);
    const exited = new Promise((r) => parent.once('exit', r));
    parent.kill('SIGKILL');
    await exited;
    const t0 = performance.now();
    expect(await waitGone(daemons, 1000), 'daemon children still running 1 s after their parent was killed').toEqual([]);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(isRunning(plain)).toBe(true);
    // It is not ours to kill: it ends on its own, 1.5 s after it started.
    expect(await waitGone([plain], 5000)).toEqual([]);
  });

  it('await using kills a child still running', async () => {
    let pid: number | undefined;
    {
      await using p = new Process(TARGET, { export: 'spin' });
      p.start();
      pid = p.pid;
    }
    expect(isRunning(pid!)).toBe(false);
  });
});
