// The owner check of the crash-safe segments (issue 9): an existing
// pipc.NAME.sem or pipc.NAME.lock owned by another uid is refused with
// IPCError EPERM naming its owner unless `owner` allows it, before anything
// maps it. As root the other uid is real (a root-made 0o666 segment opened by
// uid 65534, a segment chowned to 65534 opened by root); as an ordinary user,
// `owner: <another uid>` refuses our own segment the same way.
import { chmodSync, chownSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IPCError, Lock, locks } from '../../lib/index.js';
import { lockSegmentPath, robustSemPath } from '../../lib/core/names.js';
import { IS_ROOT, expectOk, namesRemovedAfterEach, runNodeUnprivileged } from '../helpers/index.js';

const { name } = namesRemovedAfterEach('own', (n) => rmSync(robustSemPath('/' + n), { force: true }), (n) => rmSync(lockSegmentPath(n), { force: true }));
const ME = process.geteuid!();
const NOBODY = 65534;

async function openAsNobody(kind: 'lock' | 'weblock', n: string, options: object = {}): Promise<Record<string, unknown>> {
  const r = expectOk(await runNodeUnprivileged('sync/locks.mjs', ['open', kind, n, JSON.stringify(options)], { timeoutMs: 15_000 }), 'unprivileged child');
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe('another uid\'s crash-safe segment', () => {
  it('Lock: refused with EPERM naming the owner; accepted with owner: "any" or that uid', async () => {
    const n = name('sem');
    const lock = new Lock(n, { mode: 0o666 });
    chmodSync(robustSemPath('/' + n), 0o666); // past the umask: uid 65534 could open and map it
    try {
      if (IS_ROOT) {
        // uid 65534 meets root's segment (0o666: it could open and map it)
        const refused = await openAsNobody('lock', n);
        expect(refused).toMatchObject({ ok: false, name: 'IPCError', code: 'EPERM', uid: NOBODY });
        expect(refused.message).toContain(`is owned by uid 0, not uid ${NOBODY}`);
        expect(await openAsNobody('lock', n, { owner: 'any' })).toMatchObject({ ok: true, acquired: true, uid: NOBODY });
        expect(await openAsNobody('lock', n, { owner: 0 })).toMatchObject({ ok: true, acquired: true });
        // and root meets a segment uid 65534 owns
        chownSync(robustSemPath('/' + n), NOBODY, NOBODY);
      }
      const owner = IS_ROOT ? NOBODY : ME;
      const policy = IS_ROOT ? {} : { owner: ME + 1 };
      const err = (() => {
        try {
          new Lock(n, policy).close();
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(IPCError);
      expect(err).toMatchObject({ code: 'EPERM', syscall: 'open' });
      expect((err as IPCError).message).toContain(`pipc.${n}.sem' is owned by uid ${owner}`);
      const ok = new Lock(n, { owner: 'any' });
      expect(ok.tryAcquire()).toBe(true);
      ok.release();
      ok.close();
      const exact = new Lock(n, { owner });
      exact.close();
    } finally {
      lock.close();
    }
  }, 30_000);

  it('locks.request: refused with EPERM, accepted with owner: "any"', async () => {
    const n = name('web');
    expect(await locks.request(n, { permissions: 0o666 }, (l) => l?.mode)).toBe('exclusive');
    chmodSync(lockSegmentPath(n), 0o666);
    if (IS_ROOT) {
      const refused = await openAsNobody('weblock', n);
      expect(refused).toMatchObject({ ok: false, name: 'IPCError', code: 'EPERM', uid: NOBODY });
      expect(refused.message).toContain('is owned by uid 0');
      expect(await openAsNobody('weblock', n, { owner: 'any' })).toMatchObject({ ok: true, got: 'exclusive', uid: NOBODY });
    }
    const other = IS_ROOT ? NOBODY : ME + 1;
    await expect(locks.request(n, { owner: other }, () => 1)).rejects.toMatchObject({ name: 'IPCError', code: 'EPERM' });
    expect(await locks.request(n, { owner: ME }, () => 2)).toBe(2);
  }, 30_000);
});
