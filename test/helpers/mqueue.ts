/**
 * Sees the POSIX message queues a test file leaves behind. Queues live in the
 * mqueue file system, which is not mounted on most machines, so there is
 * nothing to list by default. Two sources, used together:
 *
 * - every name this test process made or opened a queue under: uniqueName()
 *   notes each name it hands out (children get their names from it), and the
 *   binding's mqOpen is observed so a queue opened under any other name is
 *   noted too. At the end each noted name is probed with an open-only
 *   mq_open, which exists or says ENOENT;
 * - when an mqueue file system is mounted (POSIX_IPC_MQUEUE_DIR, as .ci/run
 *   mounts one in a private mount namespace, or /dev/mqueue), every entry that
 *   starts with this process's prefix, whoever made it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { binding } from '../../lib/core/binding.js';

type MqOpen = typeof binding.mqOpen;

/** The prefix every name made by this test process starts with (pid of this test file's process). */
export const NAME_PREFIX = `pipc-test-${process.pid}-`;

const noted = new Set<string>();

/** Remembers a name (with or without its leading "/") to probe for a queue at the end of the file. */
export function noteQueueName(name: string): void {
  const bare = name.startsWith('/') ? name.slice(1) : name;
  // Only names mq_open could accept: others (paths of FIFOs and sockets) are no queue.
  if (bare.length > 0 && bare.length <= 255 && !bare.includes('/') && !bare.includes('\0')) noted.add(bare);
}

const realMqOpen: MqOpen = binding.mqOpen;
if (typeof realMqOpen !== 'function') {
  throw new Error('test/helpers/mqueue.ts: binding.mqOpen is gone; update the message-queue leak check');
}
binding.mqOpen = function observedMqOpen(this: unknown, name, ...rest) {
  noteQueueName(name);
  return realMqOpen.call(this, name, ...rest);
} as MqOpen;

/**
 * The mounted mqueue file system, or null when there is none: POSIX_IPC_MQUEUE_DIR
 * if it names a directory (a mount in a namespace may show under another path
 * in /proc/mounts), else /dev/mqueue if /proc/mounts lists an mqueue fs there.
 */
export function mqueueDir(): string | null {
  const env = process.env.POSIX_IPC_MQUEUE_DIR;
  try {
    if (env && statSync(env).isDirectory()) return env;
  } catch {
    // not there
  }
  const mounted = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === '/dev/mqueue' && l.split(' ')[2] === 'mqueue');
  return mounted ? '/dev/mqueue' : null;
}

/** True if a queue of that name exists (open-only mq_open; EACCES means it exists but is not ours to open). */
export function probeQueue(bare: string): boolean {
  try {
    binding.mqClose(realMqOpen(`/${bare}`, false, false, 0, 0, 0));
    return true;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT' || code === 'EINVAL' || code === 'ENAMETOOLONG') return false;
    return true;
  }
}

/** Names (without "/") of the queues this test process made or named that still exist, sorted. */
export function leakedQueues(): string[] {
  const left = new Set<string>();
  for (const bare of noted) if (probeQueue(bare)) left.add(bare);
  const dir = mqueueDir();
  if (dir !== null) {
    for (const entry of readdirSync(dir)) if (entry.startsWith(NAME_PREFIX)) left.add(entry);
  }
  return [...left].sort();
}
