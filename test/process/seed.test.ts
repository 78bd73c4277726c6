// examples/seed/: the seed's programs, ported; each run as a user would and
// its output checked.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, expectOk, ourShmEntries, run, shmEntries } from '../helpers/index.js';
import { noChildrenAfterEach } from './children.js';

noChildrenAfterEach();

async function seed(file: string): Promise<string[]> {
  const before = new Set(shmEntries());
  const r = expectOk(await run(process.execPath, [join(ROOT, 'examples', 'seed', file)], { timeoutMs: 30_000 }), file);
  // The example removes what it made (its names carry its own pid, not ours).
  expect(shmEntries().filter((e) => !before.has(e) && e.includes('seed-'))).toEqual([]);
  expect(ourShmEntries()).toEqual([]);
  return r.stdout.trim().split('\n');
}

/** Lines "HH:MM:SS.mmm worker N acquired|released": each worker once, never more than `limit` inside. */
function checkLimited(lines: string[], workers: number, limit: number): void {
  const events = lines.map((l) => {
    const m = /^(\d\d):(\d\d):(\d\d)\.(\d{3}) worker (\d+) (acquired|released)$/.exec(l);
    expect(m, `line ${JSON.stringify(l)}`).not.toBeNull();
    const t = ((Number(m![1]) * 60 + Number(m![2])) * 60 + Number(m![3])) * 1000 + Number(m![4]);
    return { t, worker: Number(m![5]), acquired: m![6] === 'acquired' };
  });
  expect(events).toHaveLength(workers * 2);
  for (let i = 0; i < workers; i++) {
    expect(events.filter((e) => e.worker === i).map((e) => e.acquired)).toEqual([true, false]);
  }
  // Each worker prints "released" before it releases: on a tie, releases come first.
  events.sort((a, b) => a.t - b.t || Number(a.acquired) - Number(b.acquired));
  let inside = 0;
  let most = 0;
  for (const e of events) {
    inside += e.acquired ? 1 : -1;
    most = Math.max(most, inside);
  }
  expect(most).toBeGreaterThanOrEqual(1);
  expect(most).toBeLessThanOrEqual(limit);
}

describe('examples/seed', () => {
  it('threading-semaphore.mjs: 10 worker threads, at most 3 inside at once', async () => {
    checkLimited(await seed('threading-semaphore.mjs'), 10, 3);
  });

  it('mp-semaphore.mjs: 10 processes, at most 3 inside at once', async () => {
    checkLimited(await seed('mp-semaphore.mjs'), 10, 3);
  });

  it('mp-queue.mjs: the consumer gets the producer\'s 5 items in order, then the sentinel ends it', async () => {
    const lines = await seed('mp-queue.mjs');
    expect(lines.filter((l) => l.startsWith('produced'))).toEqual([0, 1, 2, 3, 4].map((i) => `produced item ${i}`));
    expect(lines.filter((l) => l.startsWith('consumed'))).toEqual([0, 1, 2, 3, 4].map((i) => `consumed item ${i}`));
    expect(lines.at(-1)).toBe('done');
  });

  it('mp-pipe.mjs: parent and child exchange over a Pipe', async () => {
    expect((await seed('mp-pipe.mjs')).sort()).toEqual(["child got thanks", "parent got [ 42, null, 'hello' ]"]);
  });

  it('mp-value.mjs: 4 processes x 500 locked increments', async () => {
    expect(await seed('mp-value.mjs')).toEqual(['counter = 2000']);
  });
});
