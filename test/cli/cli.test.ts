// The posix-ipc command, run as a separate process (dist/cli/main.js), against
// objects made by this process and by python3.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, statfsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { binding } from '../../lib/core/binding.js';
import { Queue, Semaphore, SharedMemory } from '../../lib/index.js';
import { IS_ROOT, ROOT, expectOk, namesRemovedAfterEach, run, runPython, sleep, type RunResult } from '../helpers/index.js';
import { mqueueDir } from '../helpers/mqueue.js';

// Queues are listable as root (the tool mounts an mqueue fs privately to look)
// or when one is mounted: /dev/mqueue, or POSIX_IPC_MQUEUE_DIR (.ci/run mounts one).
const QUEUES_VISIBLE = IS_ROOT || mqueueDir() !== null;

const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const { name, track } = namesRemovedAfterEach(
  'cli',
  (n) => Semaphore.unlink(n),
  (n) => SharedMemory.unlink(n),
  (n) => Queue.unlink(n),
);

const cli = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> => run(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1', ...env } });

interface JsonEntry {
  kind: string;
  name: string;
  uid: number;
  mode: string;
  size: number;
  state: Record<string, unknown>;
  error?: string;
  queue?: string;
}

async function lsJson(prefix: string, asUser = false): Promise<{ entries: JsonEntry[]; queues: { source: string; hint?: string } }> {
  const r = asUser
    ? await run('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'ls', prefix, '--json'], { cwd: '/' })
    : await cli(['ls', prefix, '--json']);
  return JSON.parse(expectOk(r, 'posix-ipc ls').stdout);
}

describe('posix-ipc ls and info', () => {
  it('sees a semaphore, a segment and a queue made by node, with their live values', async () => {
    const n = name();
    const sem = new Semaphore(n, { initialValue: 3 });
    const shm = new SharedMemory(n, { create: true, size: 4096 });
    const q = new Queue(n, { maxsize: 5, transport: 'mq' });
    try {
      sem.tryAcquire();
      q.putNowait({ a: 1 });
      q.putNowait({ a: 2 });
      const { entries, queues } = await lsJson(n);
      const byKind = Object.fromEntries(entries.map((e) => [e.kind, e]));
      expect(Object.keys(byKind).sort()).toEqual(QUEUES_VISIBLE ? ['queue', 'segment', 'semaphore'] : ['segment', 'semaphore']);
      expect(byKind.semaphore).toMatchObject({ name: n, mode: '0600', state: { value: 2 } });
      expect(byKind.segment).toMatchObject({ name: n, mode: '0600', size: 4096 });
      expect(byKind.semaphore!.uid).toBe(process.getuid!());
      if (QUEUES_VISIBLE) {
        // Mounted, or as root the tool mounts one in a private namespace to look.
        expect(queues.source).toMatch(/mounted|namespace/);
        expect(byKind.queue).toMatchObject({ name: n, state: { depth: 2, maxsize: 5, maxMessageSize: 8192 } });
      } else {
        expect(queues.source === 'none' ? queues.hint : 'listed').toMatch(/mount -t mqueue|listed/);
      }
      const info = expectOk(await cli(['info', n])).stdout;
      expect(info).toContain(`semaphore ${n}`);
      expect(info).toMatch(/value\s+2/);
      expect(info).toContain(`segment ${n}`);
    } finally {
      sem.close();
      shm.close();
      q.close();
    }
  });

  it('sees what python3 made (ctypes sem_open, multiprocessing.shared_memory) with its values', async () => {
    const n = name('py');
    expect(expectOk(await runPython('cli/py-make.py', [n, '7', '10000']), 'python').stdout.trim()).toBe('made');
    const { entries } = await lsJson(n);
    expect(entries.find((e) => e.kind === 'semaphore')).toMatchObject({ name: n, state: { value: 7 } });
    expect(entries.find((e) => e.kind === 'segment')).toMatchObject({ name: n, size: 10000 });
  });

  it('reports a hostile file at a name as what it is, without opening it as a semaphore', async () => {
    const n = name('bad');
    writeFileSync(`/dev/shm/sem.${n}`, ''); // an empty "semaphore": sem_open would map it and SIGBUS on use
    const { entries } = await lsJson(n);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ kind: 'semaphore', name: n, size: 0 });
    expect(entries[0]!.error).toMatch(/not a semaphore/);
  });

  it('--kind filters, an unknown kind or option is a usage error (exit 2), a missing name exit 1', async () => {
    const n = name('kind');
    const sem = new Semaphore(n);
    const shm = new SharedMemory(n, { create: true, size: 64 });
    try {
      const r = JSON.parse(expectOk(await cli(['ls', n, '--kind', 'segment', '--json'])).stdout);
      expect(r.entries.map((e: JsonEntry) => e.kind)).toEqual(['segment']);
      expect((await cli(['ls', '--kind', 'nope'])).code).toBe(2);
      expect((await cli(['ls', '--bogus'])).code).toBe(2);
      expect((await cli(['frobnicate'])).code).toBe(2);
      expect((await cli([])).code).toBe(2);
      const missing = await cli(['info', `${n}-missing`]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('nothing at');
      for (const c of ['ls', 'info', 'rm', 'watch', 'doctor', 'python-path']) {
        const h = await cli([c, '--help']);
        expect(h.code, c).toBe(0);
        expect(h.stdout, c).toContain(`posix-ipc ${c}`);
      }
    } finally {
      sem.close();
      shm.close();
    }
  });

  it('as uid 65534: sees the names but not the state of root\'s 0600 objects, and its own fully', async () => {
    const n = name('priv');
    const sem = new Semaphore(n, { initialValue: 2 });
    try {
      // As root, the listing runs as uid 65534; as an ordinary user it already is one.
      const { entries, queues } = await lsJson(n, IS_ROOT);
      const e = entries.find((x) => x.kind === 'semaphore')!;
      if (IS_ROOT) {
        expect(e.uid).toBe(0);
        expect(e.state).toEqual({});
        expect(e.error).toMatch(/EACCES/);
      } else {
        expect(e.uid).toBe(process.getuid!());
        expect(e.state).toEqual({ value: 2 });
      }
      // An ordinary user cannot mount one privately: without a mounted mqueue fs it says how to get one.
      if (queues.source === 'none') expect(queues.hint).toMatch(/mount -t mqueue/);
      else expect(queues.source).toBe('mounted');
    } finally {
      sem.close();
    }
  });
});

describe('posix-ipc and shared-memory queues', () => {
  it('ls sees a shm queue with its depth; rm removes it', async () => {
    const n = name('ring');
    const q = new Queue(n, { transport: 'shm', maxsize: 7 });
    try {
      q.putNowait(1);
      q.putNowait(2);
      const { entries } = await lsJson(n);
      expect(entries).toEqual([
        expect.objectContaining({ kind: 'queue', name: n, mode: '0600', state: { depth: 2, maxsize: 7, maxMessageSize: 8 * 1024 * 1024 - 8 } }),
      ]);
    } finally {
      q.close();
    }
    const r = expectOk(await cli(['rm', n])).stdout;
    expect(r).toContain(`removed queue ${n}`);
    expect(existsSync(`/dev/shm/pipc.${n}.queue`)).toBe(false);
  });
});

describe('posix-ipc rm', () => {
  it('removes exactly the names it is given: every kind at each, nothing else', async () => {
    const a = name('rma');
    const b = name('rmb');
    new Semaphore(a).close();
    new SharedMemory(a, { create: true, size: 64 }).close();
    new Queue(a, { transport: 'mq' }).close();
    new Semaphore(b).close();
    new SharedMemory(`${a}x`, { create: true, size: 64 }).close();
    track(`${a}x`);
    const dry = expectOk(await cli(['rm', a, '--dry-run'])).stdout;
    expect(dry).toContain(`would remove semaphore ${a}`);
    expect(existsSync(`/dev/shm/pipc.${a}.sem`)).toBe(true);
    const r = expectOk(await cli(['rm', a])).stdout;
    expect(r).toContain(`removed semaphore ${a}`);
    expect(r).toContain(`removed segment ${a}`);
    expect(r).toContain(`removed queue ${a}`);
    expect(existsSync(`/dev/shm/pipc.${a}.sem`)).toBe(false);
    expect(existsSync(`/dev/shm/${a}`)).toBe(false);
    expect(() => new Queue(a, { create: false })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    // Neighbours with similar names are untouched.
    expect(existsSync(`/dev/shm/pipc.${b}.sem`)).toBe(true);
    expect(existsSync(`/dev/shm/${a}x`)).toBe(true);
    const again = await cli(['rm', a]);
    expect(again.code).toBe(1);
  });

  it('--prefix removes every object under it', async () => {
    const p = name('pfx');
    for (const s of ['-1', '-2']) {
      new Semaphore(p + s).close();
      track(p + s);
    }
    new SharedMemory(`${p}-3`, { create: true, size: 64 }).close();
    track(`${p}-3`);
    const r = expectOk(await cli(['rm', '--prefix', p])).stdout;
    expect(r.trim().split('\n').sort()).toEqual([`removed segment ${p}-3`, `removed semaphore ${p}-1`, `removed semaphore ${p}-2`]);
    expect((await cli(['rm', '--prefix', ''])).code).toBe(2);
  });

  it('--stale removes side segments of queues that are gone, and keeps those of a live queue', async () => {
    const live = name('stl');
    const gone = name('stg');
    const q = new Queue(live, { transport: 'mq' });
    try {
      const inFlight = `/dev/shm/pipc-mq.${live}.${process.pid}-1-abcd`;
      const orphan = `/dev/shm/pipc-mq.${gone}.${process.pid}-2-abcd`;
      writeFileSync(inFlight, 'x', { mode: 0o600 });
      writeFileSync(orphan, 'x', { mode: 0o600 });
      try {
        const r = expectOk(await cli(['rm', '--stale'])).stdout;
        expect(r).toContain(`removed side-segment pipc-mq.${gone}.`);
        expect(r).not.toContain(live);
        expect(existsSync(orphan)).toBe(false);
        expect(existsSync(inFlight)).toBe(true);
      } finally {
        for (const f of [inFlight, orphan]) if (existsSync(f)) unlinkSync(f);
      }
    } finally {
      q.close();
    }
  });

  it('refuses another user\'s objects (as root) and non-IPC entries without --force', async () => {
    const n = name('other');
    const fifo = name('fifo');
    if (IS_ROOT) {
      const code = `const { Semaphore } = await import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))}); new Semaphore(${JSON.stringify(n)}, { mode: 0o666 }).close();`;
      expectOk(await run('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', code], { cwd: '/' }), 'uid 65534');
    } else {
      new Semaphore(n).close();
    }
    expectOk(await run('mkfifo', [`/dev/shm/${fifo}`]));
    try {
      const r = await cli(['rm', n, fifo]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`fifo ${fifo} is not an IPC object`);
      expect(existsSync(`/dev/shm/${fifo}`)).toBe(true);
      if (IS_ROOT) {
        expect(r.stderr).toContain('belongs to nobody (uid 65534)');
        expect(existsSync(`/dev/shm/pipc.${n}.sem`)).toBe(true);
      } else {
        expect(r.stdout).toContain(`removed semaphore ${n}`); // its own: no --force needed
      }
      expectOk(await cli(['rm', ...(IS_ROOT ? [n] : []), fifo, '--force']));
      expect(existsSync(`/dev/shm/pipc.${n}.sem`)).toBe(false);
      expect(existsSync(`/dev/shm/${fifo}`)).toBe(false);
    } finally {
      if (existsSync(`/dev/shm/${fifo}`)) unlinkSync(`/dev/shm/${fifo}`);
    }
  });
});

describe('posix-ipc watch and doctor', () => {
  it('watch redraws in place in a terminal and exits 0 on SIGINT', async () => {
    const n = name('watch');
    const sem = new Semaphore(n, { initialValue: 5 });
    try {
      // script(1) gives the command a pseudo-terminal.
      const child = spawn('script', ['-qfec', `${process.execPath} ${CLI} watch ${n} --interval 100`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm' } });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      const deadline = Date.now() + 10_000;
      while ((out.match(/\x1b\[H\x1b\[2J/g) ?? []).length < 3 && Date.now() < deadline) await sleep(50);
      sem.tryAcquire();
      // the next redraws show it (100 ms apart; a loaded machine delays them)
      const shown = Date.now() + 10_000;
      while (!out.includes('value=4') && Date.now() < shown) await sleep(50);
      child.kill('SIGINT');
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      expect((out.match(/\x1b\[H\x1b\[2J/g) ?? []).length).toBeGreaterThanOrEqual(3);
      expect(out).toContain(`value=5`);
      expect(out).toContain(`value=4`);
      expect(code).toBe(0);
    } finally {
      sem.close();
    }
  });

  it('watch prints plain lines when stdout is not a terminal', async () => {
    const n = name('wplain');
    const sem = new Semaphore(n, { initialValue: 1 });
    try {
      const child = spawn(process.execPath, [CLI, 'watch', n, '--interval', '100'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      const deadline = Date.now() + 10_000;
      while (out.split('\n').filter((l) => l.includes(n)).length < 2 && Date.now() < deadline) await sleep(50);
      child.kill('SIGINT');
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      expect(code).toBe(0);
      expect(out).not.toContain('\x1b[');
      const lines = out.split('\n').filter((l) => l.includes(n));
      expect(lines.length).toBeGreaterThanOrEqual(2);
      expect(lines[0]!.split('\t')).toContain('semaphore');
    } finally {
      sem.close();
    }
  });

  it('doctor reports this machine\'s real limits', async () => {
    const checks = JSON.parse(expectOk(await cli(['doctor', '--json'])).stdout) as Array<{ name: string; value: unknown; status: string }>;
    const get = (k: string): unknown => checks.find((c) => c.name === k)?.value;
    expect(get('fs.mqueue.msg_max')).toBe(Number(readFileSync('/proc/sys/fs/mqueue/msg_max', 'utf8')));
    expect(get('fs.mqueue.msgsize_max')).toBe(Number(readFileSync('/proc/sys/fs/mqueue/msgsize_max', 'utf8')));
    expect(get('fs.mqueue.queues_max')).toBe(Number(readFileSync('/proc/sys/fs/mqueue/queues_max', 'utf8')));
    const limits = readFileSync('/proc/self/limits', 'utf8');
    expect(String(get('RLIMIT_MSGQUEUE'))).toBe(/Max msgqueue size\s+(\S+)/.exec(limits)![1]);
    const fs = statfsSync('/dev/shm');
    expect(get('/dev/shm size')).toBe(fs.blocks * fs.bsize);
    expect(get('/dev/mqueue mounted')).toBe(readFileSync('/proc/mounts', 'utf8').includes(' /dev/mqueue mqueue ') || mqueueDir() !== null);
    // the same probe the wait engine runs, in this process and in the CLI's
    expect(get('io_uring futex waits')).toBe(binding.engineStats().ringAvailable);
    const off = JSON.parse(expectOk(await cli(['doctor', '--json'], { POSIX_IPC_NO_URING: '1' })).stdout) as typeof checks;
    expect(off.find((c) => c.name === 'io_uring futex waits')?.value).toBe(false);
    const text = expectOk(await cli(['doctor'])).stdout;
    expect(text).toMatch(/fs\.mqueue\.msg_max = \d+/);
  });

  it('python-path prints the package\'s python/ folder', async () => {
    expect(expectOk(await cli(['python-path'])).stdout.trim()).toBe(join(ROOT, 'python'));
  });
});
