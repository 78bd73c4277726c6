// The per-file leak check (test/helpers/setup.ts) must see message queues,
// which live in a file system that is usually not mounted.
import { describe, expect, it } from 'vitest';
import { Queue } from '../../lib/index.js';
import { expectOk, queueExists, ROOT, run, uniqueName } from '../helpers/index.js';
import { leakedQueues, mqueueDir, NAME_PREFIX } from '../helpers/mqueue.js';

function unlinkQuietly(name: string): void {
  try {
    Queue.unlink(name);
  } catch {
    // already gone
  }
}

describe('message-queue leak check', () => {
  it('sees a queue this process opened under any name, until it is unlinked', () => {
    // Not a uniqueName(): only the observed mqOpen knows about it.
    const name = `pipc-leakcheck-${process.pid}`;
    try {
      new Queue(name, { transport: 'mq' }).close();
      expect(leakedQueues()).toContain(name);
      Queue.unlink(name);
      expect(leakedQueues()).not.toContain(name);
    } finally {
      unlinkQuietly(name);
    }
  });

  it('sees a queue a child process made under a name from uniqueName()', async () => {
    const name = uniqueName('child-made');
    try {
      expectOk(await makeQueueInChild(name));
      expect(queueExists(name)).toBe(true);
      expect(leakedQueues()).toContain(name);
    } finally {
      unlinkQuietly(name);
    }
    expect(leakedQueues()).not.toContain(name);
  });

  // CI mounts an mqueue file system (POSIX_IPC_MQUEUE_DIR), so there this always runs.
  it.skipIf(mqueueDir() === null && process.env.CI !== 'true')(
    'with an mqueue file system mounted, sees a queue with our prefix that nothing here named',
    async () => {
      expect(mqueueDir()).not.toBeNull();
      const name = `${NAME_PREFIX}listed`;
      try {
        expectOk(await makeQueueInChild(name));
        expect(leakedQueues()).toContain(name);
      } finally {
        unlinkQuietly(name);
      }
      expect(leakedQueues()).not.toContain(name);
    },
  );

  it('fails a test file that leaves a queue behind, naming it', async () => {
    const name = uniqueName('planted');
    try {
      const r = await run(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', '--config', 'test/fixtures/core/plant.config.ts'], {
        cwd: ROOT,
        env: { ...process.env, PLANT_FILE: 'leak-queue.plant.ts', PLANT_NAME: name },
      });
      expect(r.code).not.toBe(0);
      expect(r.stdout + r.stderr).toContain(`test file leaked message queues: ${name}`);
      expect(queueExists(name)).toBe(true);
    } finally {
      unlinkQuietly(name);
    }
  });
});

/** Creates the queue `name` from a separate node process, out of this process's sight. */
function makeQueueInChild(name: string) {
  const code = `import { Queue } from ${JSON.stringify(`${ROOT}/dist/index.js`)}; new Queue(process.argv[1], { transport: 'mq' }).close();`;
  return run(process.execPath, ['--input-type=module', '-e', code, name]);
}
