// Permissions as an unprivileged user, and leaks over many open/close cycles.
import { readFileSync, statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../lib/index.js';
import { expectOk, fdCount, IS_ROOT, runNodeUnprivileged, sleep, namesRemovedAfterEach } from '../helpers/index.js';

const { name } = namesRemovedAfterEach('x', (n) => Semaphore.unlink(n));

/**
 * How many times the semaphore file (/dev/shm/pipc.<name>.sem, or
 * /dev/shm/sem.<name> for a plain one, where glibc shares one mapping per
 * name) is mapped into this process. Matched by inode: both map a temporary
 * file before linking it, so the path in /proc/self/maps differs.
 */
function semMappings(n: string, robust = true): number {
  const ino = String(statSync(robust ? `/dev/shm/pipc.${n}.sem` : `/dev/shm/sem.${n}`).ino);
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('/dev/shm/') && l.split(/\s+/)[4] === ino).length;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('permissions (unprivileged user, uid 65534 via setpriv when root)', () => {
  it('a 0600 semaphore made by another user cannot be opened: EACCES', async () => {
    const n = name('perm');
    const s = new Semaphore(n);
    try {
      expect(statSync(`/dev/shm/pipc.${n}.sem`).mode & 0o777).toBe(0o600);
      const r = expectOk(await runNodeUnprivileged('sync/worker.mjs', ['open', n, '0']));
      if (IS_ROOT) expect(r.stdout.trim()).toBe('IPCError EACCES open');
      else expect(r.stdout.trim()).toBe('ok value=1'); // same user: allowed
    } finally {
      s.close();
    }
  });

  it('a semaphore created 0o666 (umask 0) is open to other users', async () => {
    const n = name('open666');
    const old = process.umask(0);
    let s: Semaphore;
    try {
      s = new Semaphore(n, { mode: 0o666, initialValue: 4 });
    } finally {
      process.umask(old);
    }
    try {
      const r = expectOk(await runNodeUnprivileged('sync/worker.mjs', ['open', n, '0']));
      expect(r.stdout.trim()).toBe('ok value=4');
    } finally {
      s.close();
    }
  });

  it('an unprivileged user creates its own semaphores', async () => {
    const n = name('own');
    const r = expectOk(await runNodeUnprivileged('sync/worker.mjs', ['open', n, '1']));
    expect(r.stdout.trim()).toBe('ok value=0');
    const st = statSync(`/dev/shm/pipc.${n}.sem`);
    expect(st.mode & 0o777).toBe(0o600);
    if (IS_ROOT) expect(st.uid).toBe(65534);
  });
});

describe('leaks', () => {
  it('a crash-safe handle collected while holding keeps its unit: the process may still be inside', async () => {
    const n = name('gchold');
    const s = new Semaphore(n, { initialValue: 3 });
    (function drop() {
      new Semaphore(n).tryAcquire();
    })();
    for (let i = 0; i < 5; i++) {
      gc();
      await sleep(20);
    }
    expect(s.value).toBe(2);
    s.release(); // as from any handle: the orphan's unit no longer counts as held
    expect(s.value).toBe(3);
    s.close();
  });

  it('100,000 open/close cycles grow neither descriptors nor mappings', () => {
    const n = name('cycle');
    const keep = new Semaphore(n);
    const fds = fdCount();
    expect(semMappings(n)).toBe(1);
    for (let i = 0; i < 100_000; i++) {
      const s = new Semaphore(n);
      s.close();
    }
    expect(fdCount()).toBe(fds);
    expect(semMappings(n)).toBe(1);
    keep.close();
    expect(semMappings(n)).toBe(0);
  });

  it('handles dropped without close() are closed by the finalizer', async () => {
    for (const robust of [true, false]) {
      const n = name('gc');
      // a crash-safe semaphore has 512 holder slots: one per open handle
      const keep = robust ? new Semaphore(n, { initialValue: 2000 }) : null;
      (function drop() {
        for (let i = 0; i < (robust ? 400 : 2000); i++) {
          const s = new Semaphore(n, { robust, initialValue: 2000 });
          if (!robust) s.tryAcquire();
        }
      })();
      if (robust) expect(semMappings(n)).toBeGreaterThan(1);
      else expect(semMappings(n, false)).toBe(1);
      const left = robust ? 1 : 0;
      for (let i = 0; i < 10 && semMappings(n, robust) > left; i++) {
        gc();
        await sleep(20);
      }
      expect(semMappings(n, robust)).toBe(left);
      keep?.close();
    }
  });
});
