// The wait engine's two ways of sleeping on many futex words, each in a
// process of its own (test/fixtures/core/engine-modes.mjs): io_uring futex
// waits (the default on Linux 6.7+) and futex_waitv threads
// (POSIX_IPC_NO_URING=1, as on older kernels). The same program must see the
// same outcomes on both: releases, puts and a holder's death from other
// processes, deadlines, aborts, and threads and descriptors gone when idle.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { release } from 'node:os';
import { describe, expect, it } from 'vitest';
import { expectOk, runNode, runNodeUnprivileged, uniqueName } from '../helpers/index.js';

interface Seen {
  ringAvailable: boolean;
  pending: number;
  muxJobs: number;
  ringThreads: number;
  muxThreads: number;
  threads: number;
  ringFdsWhileWaiting: number;
  releaseMs: number;
  releaserCode: number;
  acquired: number;
  gotRight: number;
  valuesAfter: number;
  queuedAfter: number;
  timedOutMs: number;
  timedOutFalse: number;
  abortedRejected: number;
  valuesAfterAbort: number;
  recoveredMs: number;
  othersAcquired: number;
  threadsIdle: number;
  ringFdsIdle: number;
  pendingIdle: number;
}

async function runMode(env: NodeJS.ProcessEnv, unprivileged = false): Promise<Seen> {
  const run = unprivileged ? runNodeUnprivileged : runNode;
  const prefix = uniqueName('em');
  const r = await run('core/engine-modes.mjs', [prefix], { env, timeoutMs: 60_000 });
  if (r.code !== 0) {
    // A fixture that failed or was killed leaves its 2,300 names: remove
    // them here, so the failure is the one reported (not a leak after it).
    const ours = new RegExp(`${prefix}[rpqh]\\d*(\\.|$)`);
    for (const f of readdirSync('/dev/shm')) if (ours.test(f)) rmSync(`/dev/shm/${f}`, { force: true });
  }
  return JSON.parse(expectOk(r, 'engine-modes.mjs').stdout.trim().split('\n').pop()!) as Seen;
}

/**
 * Linux 6.7 added futex waits on io_uring; nothing here turns io_uring off
 * (kernel.io_uring_disabled 0, no seccomp filter, as in a container that
 * blocks it).
 */
function ringExpected(): boolean {
  const [major, minor] = release().split('.').map(Number) as [number, number];
  if (!(major > 6 || (major === 6 && minor >= 7))) return false;
  const read = (p: string): string => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  return read('/proc/sys/kernel/io_uring_disabled').trim() === '0' && /^Seccomp:\s*0$/m.test(read('/proc/self/status'));
}

function expectSameOutcomes(s: Seen): void {
  // 2,300 waits (1,500 crash-safe, 500 plain semaphores, 300 queues), all
  // multiplexed, all woken by another process, each exactly once
  expect(s.pending).toBe(2300);
  expect(s.muxJobs).toBe(2300);
  expect(s.releaserCode).toBe(0);
  expect(s.acquired).toBe(2000);
  expect(s.gotRight).toBe(300);
  expect(s.valuesAfter).toBe(0);
  expect(s.queuedAfter).toBe(0);
  // 400 waits with a 60 ms deadline: all false, none long after it
  expect(s.timedOutFalse).toBe(400);
  expect(s.timedOutMs).toBeGreaterThanOrEqual(55);
  expect(s.timedOutMs).toBeLessThan(2000);
  // 400 aborted waits reject and take nothing released afterwards
  expect(s.abortedRejected).toBe(400);
  expect(s.valuesAfterAbort).toBe(200);
  // a holder SIGKILLed: its unit comes back to the pending wait within 1 s,
  // with 1,000 other waits asleep meanwhile (and they all complete after)
  expect(s.recoveredMs).toBeLessThan(1000);
  expect(s.othersAcquired).toBe(1000);
  // idle: no thread, no io_uring descriptor, nothing pending
  expect(s.threadsIdle).toBe(0);
  expect(s.ringFdsIdle).toBe(0);
  expect(s.pendingIdle).toBe(0);
}

describe('wait engine: io_uring and futex_waitv', () => {
  it('io_uring (the default): 1,024 waits a thread, one io_uring descriptor each, same outcomes', async () => {
    const env = { ...process.env };
    delete env.POSIX_IPC_NO_URING;
    const s = await runMode(env);
    // Under CI, where the kernel has them and nothing turns io_uring off, a
    // probe that fails is a regression, not a reason to fall back quietly.
    if (process.env.CI === 'true' && ringExpected()) expect(s.ringAvailable).toBe(true);
    if (s.ringAvailable) {
      expect(s.ringThreads).toBe(Math.ceil(2300 / 1024));
      expect(s.threads).toBe(s.ringThreads);
      expect(s.ringFdsWhileWaiting).toBe(s.ringThreads);
    }
    expectSameOutcomes(s);
  });

  it('io_uring as an ordinary user (uid 65534 when we are root): same outcomes', async () => {
    const env = { ...process.env };
    delete env.POSIX_IPC_NO_URING;
    const s = await runMode(env, true);
    if (process.env.CI === 'true' && ringExpected()) expect(s.ringAvailable).toBe(true);
    if (s.ringAvailable) expect(s.ringThreads).toBe(Math.ceil(2300 / 1024));
    expectSameOutcomes(s);
  });

  it('futex_waitv (POSIX_IPC_NO_URING=1): 127 waits a thread, no io_uring descriptor, same outcomes', async () => {
    const s = await runMode({ ...process.env, POSIX_IPC_NO_URING: '1' });
    expect(s.ringAvailable).toBe(false);
    expect(s.ringThreads).toBe(0);
    expect(s.ringFdsWhileWaiting).toBe(0);
    expect(s.muxThreads).toBe(Math.ceil(2300 / 127));
    expectSameOutcomes(s);
  });

  it('an engine thread exiting while the event loop reaps threads (engineStats in a tight loop) never deadlocks, both engines', async () => {
    const ring = { ...process.env };
    delete ring.POSIX_IPC_NO_URING;
    for (const env of [ring, { ...process.env, POSIX_IPC_NO_URING: '1' }]) {
      const r = await runNode('core/engine-exit-race.mjs', [uniqueName('race'), '3'], { env, timeoutMs: 20_000 });
      expect(r.signal).toBeNull();
      expect(expectOk(r, 'engine-exit-race.mjs').stdout.trim()).toBe('ok 3');
    }
  });
});
