// Hostile files at the names of Event, Barrier, Condition, RLock and
// JoinableQueue: wrong size, garbage header, another kind's segment, a FIFO, a
// symlink, a directory, another user's file. Each is an IPCError, never a
// crash or a hang; nothing is followed or adopted.
import { execFileSync } from 'node:child_process';
import { chownSync, copyFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Barrier, Condition, Event, IPCError, JoinableQueue, RLock } from '../../lib/index.js';
import { IS_ROOT, cleanupAfterEach, uniqueName } from '../helpers/index.js';

const later = cleanupAfterEach();
const SEGMENT_BYTES = 256 + 64 * 256;

interface Kind {
  suffix: string;
  open: (n: string, o?: Record<string, unknown>) => { close(): void };
}
const KINDS: Record<string, Kind> = {
  Event: { suffix: 'event', open: (n, o) => new Event(n, o) },
  Barrier: { suffix: 'barrier', open: (n, o) => new Barrier(n, { parties: 2, ...o }) },
  Condition: { suffix: 'cond', open: (n, o) => new Condition(n, o) },
  JoinableQueue: { suffix: 'jq', open: (n, o) => new JoinableQueue(n, o) },
};

function plant(n: string, suffix: string, make: (path: string) => void): string {
  const path = `/dev/shm/pipc.${n}.${suffix}`;
  make(path);
  later(() => rmSync(path, { recursive: true, force: true }));
  // JoinableQueue opens its queue first; Condition its RLock after the segment fails.
  later(() => JoinableQueue.unlink(n));
  later(() => RLock.unlink(n));
  return path;
}

function expectIPC(f: () => unknown, code: string, text?: RegExp): void {
  let err: unknown;
  try {
    const o = f() as { close(): void };
    o.close();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(IPCError);
  expect((err as IPCError).code).toBe(code);
  if (text) expect((err as IPCError).message).toMatch(text);
}

describe.each(Object.entries(KINDS))('%s: hostile files at its name', (kind, k) => {
  it('a file of the wrong size: EINVAL naming its size', () => {
    const n = uniqueName('hs');
    plant(n, k.suffix, (p) => writeFileSync(p, Buffer.alloc(100)));
    expectIPC(() => k.open(n), 'EINVAL', /100-byte file/);
  });

  it('the right size with a garbage header: EINVAL', () => {
    const n = uniqueName('hg');
    plant(n, k.suffix, (p) => writeFileSync(p, Buffer.alloc(SEGMENT_BYTES, 0x5a)));
    expectIPC(() => k.open(n), 'EINVAL', /no posix-ipc synchronisation header/);
  });

  it('another kind\'s segment: EINVAL naming the kind that is there', () => {
    const n = uniqueName('hk');
    const other = kind === 'Event' ? 'Barrier' : 'Event';
    const src = uniqueName('src');
    const o = KINDS[other]!.open(src);
    o.close();
    plant(n, k.suffix, (p) => copyFileSync(`/dev/shm/pipc.${src}.${KINDS[other]!.suffix}`, p));
    rmSync(`/dev/shm/pipc.${src}.${KINDS[other]!.suffix}`);
    expectIPC(() => k.open(n), 'EINVAL', new RegExp(`is an? ${other}, not`));
  });

  it('a FIFO (not opened for long, never blocking), a symlink (never followed), a directory', () => {
    const fifo = uniqueName('hf');
    plant(fifo, k.suffix, (p) => execFileSync('mkfifo', ['-m', '600', p]));
    expectIPC(() => k.open(fifo), 'EINVAL', /FIFO/);
    const link = uniqueName('hl');
    const target = `/dev/shm/${uniqueName('target')}`;
    writeFileSync(target, Buffer.alloc(SEGMENT_BYTES));
    later(() => rmSync(target, { force: true }));
    plant(link, k.suffix, (p) => symlinkSync(target, p));
    expectIPC(() => k.open(link), 'ELOOP', /symbolic link/);
    const dir = uniqueName('hd');
    plant(dir, k.suffix, (p) => mkdirSync(p));
    expectIPC(() => k.open(dir), 'EISDIR');
  });

  it.runIf(IS_ROOT)('another user\'s segment: EPERM unless owner says so', () => {
    const n = uniqueName('ho');
    const src = k.open(n);
    src.close();
    chownSync(`/dev/shm/pipc.${n}.${k.suffix}`, 65534, 65534);
    later(() => rmSync(`/dev/shm/pipc.${n}.${k.suffix}`, { force: true }));
    later(() => JoinableQueue.unlink(n));
    later(() => RLock.unlink(n));
    expectIPC(() => k.open(n), 'EPERM', /owned by uid 65534/);
    k.open(n, { owner: 'any' }).close();
  });
});

describe('RLock: hostile files at pipc.NAME.rlock', () => {
  it('wrong size, symlink and FIFO are IPCErrors', () => {
    const a = uniqueName('rs');
    plant(a, 'rlock', (p) => writeFileSync(p, Buffer.alloc(10)));
    expectIPC(() => new RLock(a), 'EINVAL');
    const f = uniqueName('rf');
    plant(f, 'rlock', (p) => execFileSync('mkfifo', ['-m', '600', p]));
    expectIPC(() => new RLock(f), 'EINVAL');
    const l = uniqueName('rl');
    plant(l, 'rlock', (p) => symlinkSync('/etc/passwd', p));
    expect(() => new RLock(l)).toThrow(IPCError);
  });
});
