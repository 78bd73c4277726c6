// Every file at a name is hostile until checked (issue 16 items 1, 2, 9;
// issue 9 item 7): whatever another user or a person left at a name gives an
// IPCError with a code and a message, never a signal or a hang. Each case
// opens in a child process (test/fixtures/core/hostile-open.mjs), so a
// SIGBUS or a blocked open shows up as a failed child.
import { chownSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Lock, Queue, Semaphore, SharedMemory, Value } from '../../lib/index.js';
import { IS_ROOT, cleanupAfterEach, runNode, runNodeUnprivileged, uniqueName } from '../helpers/index.js';

const later = cleanupAfterEach();
const NOBODY = 65534;

/** A fresh name; both /dev/shm/NAME and /dev/shm/sem.NAME are removed afterwards, whatever is there. */
function hostileName(tag: string): string {
  const n = uniqueName(tag);
  later(
    () => rmSync(`/dev/shm/${n}`, { recursive: true, force: true }),
    () => rmSync(`/dev/shm/sem.${n}`, { recursive: true, force: true }),
  );
  return n;
}

type Planted = 'empty' | 'short' | 'fifo' | 'directory' | 'symlink';
function plant(path: string, what: Planted): void {
  switch (what) {
    case 'empty':
      writeFileSync(path, '', { mode: 0o666 });
      break;
    case 'short':
      writeFileSync(path, Buffer.alloc(3), { mode: 0o666 });
      break;
    case 'fifo':
      execFileSync('mkfifo', ['-m', '666', path]);
      break;
    case 'directory':
      mkdirSync(path, { mode: 0o777 });
      break;
    case 'symlink':
      symlinkSync('/etc/passwd', path);
      break;
  }
}

interface Outcome {
  ok: boolean;
  name?: string;
  code?: string;
  message?: string;
  [k: string]: unknown;
}

async function openInChild(kind: string, n: string, options: object = {}): Promise<Outcome> {
  const r = await runNode('core/hostile-open.mjs', [kind, n, JSON.stringify(options)], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`child ${kind} '${n}' ended with ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as Outcome;
}

const CODES: Record<Planted, string> = { empty: 'EINVAL', short: 'EINVAL', fifo: 'EINVAL', directory: 'EISDIR', symlink: 'ELOOP' };
const SAYS: Record<Planted, RegExp> = {
  empty: /holds 0 bytes/,
  short: /holds 3 bytes/,
  fifo: /is a FIFO, not a regular file/,
  directory: /is a directory/,
  symlink: /symbolic link/,
};

describe('a planted /dev/shm/sem.NAME (issue 16.1)', () => {
  for (const what of ['empty', 'short', 'fifo', 'directory', 'symlink'] as const) {
    it(`${what}: new Lock(name) is an IPCError ${CODES[what]} naming it, not SIGBUS`, async () => {
      const n = hostileName(`sem-${what}`);
      plant(`/dev/shm/sem.${n}`, what);
      const o = await openInChild('lock', n);
      expect(o).toMatchObject({ ok: false, name: 'IPCError', code: CODES[what] });
      expect(o.message).toMatch(SAYS[what]);
      expect(o.message).toContain(`sem.${n}`);
    });
  }

  it('also with create: false', async () => {
    const n = hostileName('sem-open');
    plant(`/dev/shm/sem.${n}`, 'empty');
    expect(await openInChild('lock', n, { create: false })).toMatchObject({ ok: false, code: 'EINVAL' });
  });

  it('a good semaphore still opens, and exclusive creation still says EEXIST', async () => {
    const n = hostileName('sem-good');
    const s = new Semaphore(n, { initialValue: 1, robust: false });
    later(() => s.close());
    expect(await openInChild('lock', n)).toMatchObject({ ok: true, acquired: true, value: 0 });
    expect(() => new Semaphore(n, { exclusive: true, robust: false })).toThrow(expect.objectContaining({ code: 'EEXIST' }));
  });
});

describe('a planted /dev/shm/NAME (issue 16.2, issue 9.7)', () => {
  const opens: Array<[string, object]> = [
    ['shm', { readOnly: true }],
    ['shm', {}],
    ['shm', { create: true, size: 64 }],
    ['value', { readOnly: true }],
    ['value', {}],
    ['array', { readOnly: true }],
  ];
  for (const what of ['fifo', 'symlink', 'directory'] as const) {
    for (const [kind, options] of opens) {
      it(`${what}: ${kind} ${JSON.stringify(options)} is an IPCError ${CODES[what]}, not a hang`, async () => {
        const n = hostileName(`shm-${what}`);
        plant(`/dev/shm/${n}`, what);
        const o = await openInChild(kind, n, options);
        expect(o).toMatchObject({ ok: false, name: 'IPCError' });
        // O_RDWR on a directory fails in open(2) itself, with EISDIR too.
        expect(o.code).toBe(CODES[what]);
        expect(o.message).toMatch(SAYS[what]);
      });
    }
  }

  it('an empty segment is an IPCError naming it, not an mmap of nothing', async () => {
    const n = hostileName('shm-empty');
    plant(`/dev/shm/${n}`, 'empty');
    const o = await openInChild('shm', n);
    expect(o).toMatchObject({ ok: false, code: 'EINVAL' });
    expect(o.message).toMatch(/is empty/);
  });
});

describe('an unreadable file at the name (issue 9.7)', () => {
  it('as uid 65534, a mode 0o000 file at the semaphore or segment name is EACCES', async () => {
    if (!IS_ROOT) return; // root reads everything: the case needs another user
    const n = hostileName('unreadable');
    writeFileSync(`/dev/shm/sem.${n}`, Buffer.alloc(32), { mode: 0o000 });
    writeFileSync(`/dev/shm/${n}`, Buffer.alloc(64), { mode: 0o000 });
    for (const [kind, options] of [['lock', {}], ['shm', { readOnly: true }], ['value', { readOnly: true }]] as const) {
      const r = await runNodeUnprivileged('core/hostile-open.mjs', [kind, n, JSON.stringify({ ...options, owner: 'any' })], { timeoutMs: 10_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout), kind).toMatchObject({ ok: false, name: 'IPCError', code: 'EACCES' });
    }
  });
});

describe('squatting: an existing object of another uid is refused unless owner allows it (issue 16.9)', () => {
  it("root's Lock refuses uid 65534's pre-made semaphore of value 0, and adopts it with owner: 'any' or its uid", async () => {
    const n = hostileName('squat-sem');
    plant(`/dev/shm/sem.${n}`, 'empty');
    rmSync(`/dev/shm/sem.${n}`);
    const made = await runNodeUnprivileged('core/hostile-open.mjs', ['semaphore', n, JSON.stringify({ initialValue: 0, mode: 0o666 })]);
    expect(made.code).toBe(0);
    if (!IS_ROOT) return; // the cross-user case needs root to stage
    chownSync(`/dev/shm/sem.${n}`, NOBODY, NOBODY); // whatever the umask did, it is nobody's
    const o = await openInChild('lock', n);
    expect(o).toMatchObject({ ok: false, name: 'IPCError', code: 'EPERM' });
    expect(o.message).toContain('owned by uid 65534');
    expect(o.message).toContain("owner: 'any'");
    expect(await openInChild('lock', n, { owner: 'any' })).toMatchObject({ ok: true });
    expect(await openInChild('lock', n, { owner: NOBODY })).toMatchObject({ ok: true });
    expect(await openInChild('lock', n, { owner: 1234 })).toMatchObject({ ok: false, code: 'EPERM' });
  });

  it("a pre-made Value of uid 65534 (value 1337) is refused by root's Value; owner: 'any' reads it", async () => {
    if (!IS_ROOT) return;
    const n = hostileName('squat-value');
    writeFileSync(`/dev/shm/${n}`, Buffer.from(new Int32Array([1337]).buffer), { mode: 0o666 });
    chownSync(`/dev/shm/${n}`, NOBODY, NOBODY);
    for (const kind of ['value', 'shm', 'array']) {
      const o = await openInChild(kind, n);
      expect(o, kind).toMatchObject({ ok: false, code: 'EPERM' });
      expect(o.message).toContain('owned by uid 65534');
    }
    expect(await openInChild('value', n, { owner: 'any' })).toMatchObject({ ok: true, value: 1337 });
  });

  it("a queue uid 65534 made first (mode 0o666) is refused by root's Queue; owner: 'any' opens it", async () => {
    const n = uniqueName('squat-q');
    later(() => Queue.unlink(n));
    // Small attributes: uid 65534's RLIMIT_MSGQUEUE budget is shared with
    // other tests that run as that user at the same time.
    const made = await runNodeUnprivileged('core/hostile-open.mjs', ['queue', n, JSON.stringify({ mode: 0o666, maxsize: 1, maxMessageSize: 64 })]);
    expect(JSON.parse(made.stdout), made.stdout).toMatchObject({ ok: true });
    if (!IS_ROOT) return;
    expect(() => new Queue(n)).toThrow(expect.objectContaining({ name: 'IPCError', code: 'EPERM', message: expect.stringContaining('owned by uid 65534') }));
    new Queue(n, { owner: 'any' }).close();
    new Queue(n, { owner: NOBODY }).close();
  });

  it("root is not special: root's own objects open, and owner is validated", () => {
    const n = hostileName('own');
    const v = new Value('i', 5, { name: n, lock: false });
    later(() => v.close());
    expect(new Value('i', 0, { name: n, lock: false, owner: 'self' }).value).toBe(5);
    expect(() => new Lock(n, { owner: 'nobody' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new SharedMemory(n, { owner: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Queue(n, { owner: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});

