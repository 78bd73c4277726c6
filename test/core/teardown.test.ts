// Environment teardown interrupts the engine's waiting threads at once
// instead of at the end of their 50 ms slice (native/core/wait.h).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { NamedPipe, Semaphore } from '../../lib/index.js';
import { FIXTURES, uniqueName } from '../helpers/index.js';

const prefix = uniqueName('teardown');
const dir = mkdtempSync(join(tmpdir(), 'pipc-teardown-'));
afterEach(() => {
  for (let i = 0; i < 8; i++) {
    try {
      Semaphore.unlink(`${prefix}-${i}`);
    } catch {
      // not made
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('engine teardown', () => {
  it('a worker with 8 pending acquires and a pending FIFO open terminates without waiting for a slice', async () => {
    const fifo = join(dir, 'f');
    NamedPipe.create(fifo);
    const times: number[] = [];
    for (let round = 0; round < 5; round++) {
      const w = new Worker(join(FIXTURES, 'core/waiting-worker.mjs'), { workerData: { prefix, fifo } });
      await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      const t0 = performance.now();
      await w.terminate();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    // Slices alone make it >= 50 ms every time; interrupted, a few ms.
    expect(times[2]).toBeLessThan(40);
  });
});
