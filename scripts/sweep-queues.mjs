#!/usr/bin/env node
// Removes message queues that test runs left behind: every "pipc-test-<pid>-*"
// (and, with --bench, "pipc-bench-<pid>-*") whose process <pid> is gone.
// Queues of running processes are left alone, so this is safe while other
// runs share the machine. Queues are listed from a mounted mqueue file system
// (POSIX_IPC_MQUEUE_DIR, else /dev/mqueue); .ci/run mounts one in a private
// mount namespace. Without one there is nothing to list and nothing is swept.
// Usage: node scripts/sweep-queues.mjs [--bench] [--dry-run]
import { readdirSync, statSync } from 'node:fs';
import { Queue } from '../dist/index.js';

const args = new Set(process.argv.slice(2));
const prefixes = ['pipc-test-', ...(args.has('--bench') ? ['pipc-bench-'] : [])];

function mqueueDir() {
  for (const dir of [process.env.POSIX_IPC_MQUEUE_DIR, '/dev/mqueue']) {
    try {
      if (dir && statSync(dir).isDirectory()) return dir;
    } catch {
      // not there
    }
  }
  return null;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

const dir = mqueueDir();
if (dir === null) {
  console.log('sweep-queues: no mqueue file system mounted, cannot list queues; nothing swept');
  process.exit(0);
}
const swept = [];
let failed = 0;
for (const entry of readdirSync(dir).sort()) {
  const prefix = prefixes.find((p) => entry.startsWith(p));
  if (prefix === undefined) continue;
  const pid = Number(/^(\d+)-/.exec(entry.slice(prefix.length))?.[1]);
  if (!Number.isInteger(pid) || pid <= 0 || alive(pid)) continue;
  if (args.has('--dry-run')) {
    swept.push(entry);
    continue;
  }
  try {
    Queue.unlink(entry);
    swept.push(entry);
  } catch (err) {
    if (err.code !== 'ENOENT') {
      failed += 1;
      console.error(`sweep-queues: ${entry}: ${err.message}`);
    }
  }
}
console.log(
  `sweep-queues: ${args.has('--dry-run') ? 'would remove' : 'removed'} ${swept.length} leftover queue(s)${swept.length ? `: ${swept.join(', ')}` : ''}`,
);
process.exit(failed ? 1 : 0);
