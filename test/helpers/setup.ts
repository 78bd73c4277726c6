// Every test file must leave the process as it found it: no /dev/shm name and
// no message queue made by this test process, no extra open descriptor, no
// wait still pending in the addon's engine.
import { readdirSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { binding } from '../../lib/core/binding.js';
import { ourShmEntries, sleep } from './index.js';
import { leakedQueues } from './mqueue.js';

function openFds(): Map<string, string> {
  const fds = new Map<string, string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      fds.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // closed while we listed (readdir's own descriptor)
    }
  }
  return fds;
}

let before: Map<string, string>;
beforeAll(() => {
  before = openFds();
});

afterAll(async () => {
  const left = ourShmEntries();
  if (left.length > 0) {
    throw new Error(`test file leaked names in /dev/shm: ${left.join(', ')}`);
  }
  const queues = leakedQueues();
  if (queues.length > 0) {
    throw new Error(`test file leaked message queues: ${queues.join(', ')}`);
  }
  // Descriptors of finished child processes and closed sockets are released
  // asynchronously: give them a moment before calling anything a leak.
  let extra: string[] = [];
  for (let i = 0; i < 50; i++) {
    const now = openFds();
    // Each io_uring thread of the wait engine holds one descriptor while it
    // lives (it exits 2 s after its last wait; test/sync/engine-modes.test.ts checks).
    let ring = binding.engineStats().ringThreads;
    extra = [...now]
      .filter(([fd, target]) => before.get(fd) !== target && !(target === 'anon_inode:[io_uring]' && ring-- > 0))
      .map(([fd, target]) => `${fd} -> ${target}`);
    if (extra.length === 0 && binding.engineStats().pending === 0) break;
    await sleep(20);
  }
  if (extra.length > 0) throw new Error(`test file leaked descriptors: ${extra.join(', ')}`);
  const pending = binding.engineStats().pending;
  if (pending !== 0) throw new Error(`test file left ${pending} waits pending in the wait engine`);
});
