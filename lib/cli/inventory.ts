/**
 * What the command-line tool sees: every named object in /dev/shm and, where
 * they can be listed, the POSIX message queues, each classified by the
 * library's naming rules and read for its live state without ever trusting
 * the file (lstat first: no symlink is followed, no FIFO opened, no file of
 * the wrong size handed to sem_open).
 * @internal
 * @module
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { IPCError } from '../core/errors.js';
import { classifyShmEntry, MQUEUE_DIR, SEM_FILE_PREFIX, SHM_DIR, type ShmEntryKind } from '../core/names.js';
import { Queue } from '../queue/queue.js';
import { Semaphore } from '../sync/semaphore.js';
import { Barrier } from '../sync/barrier.js';
import { CS_STATE } from '../sync/condition.js';
import { Event } from '../sync/event.js';
import { RLock } from '../sync/rlock.js';
import { SyncSegment, openOptions } from '../sync/segment.js';
import { JQ_LOST, JQ_UNFINISHED } from '../queue/joinable.js';
import type { SyncKind } from '../core/names.js';
import { lockState } from '../sync/locks.js';

/** Every kind the tool reports. */
export type Kind = ShmEntryKind | 'queue';

/** One named object, as `ls --json` prints it. */
export interface Entry {
  kind: Kind;
  /** The object's name as the library takes it (no leading slash). */
  name: string;
  /** Where it lives in the file system, when it has a file there. */
  path: string | null;
  uid: number;
  user: string;
  /** Permission bits, e.g. '0600'. */
  mode: string;
  /** Bytes in /dev/shm (for a queue: the bytes of its messages). */
  size: number;
  /** Modification time, ISO 8601. */
  modified: string | null;
  /** The live state that matters for the kind (value, depth...). */
  state: Record<string, unknown>;
  /** Why the state could not be read, if it could not. */
  error?: string;
  /** For a side segment: the queue it belongs to. */
  queue?: string;
  /** For a side segment: the pid of the process that wrote it. */
  pid?: number;
}

/** How the queues were listed (the mqueue file system is often not mounted). */
export interface QueueListing {
  /** 'mounted' (a mounted mqueue fs), 'namespace' (mounted privately for this call, as root) or 'none'. */
  source: 'mounted' | 'namespace' | 'none';
  /** A hint for the user when queues could not be listed. */
  hint?: string;
}

export interface Inventory {
  entries: Entry[];
  queues: QueueListing;
}

let users: Map<number, string> | null = null;

/** The user name of `uid` from /etc/passwd, or the number. */
export function userName(uid: number): string {
  if (users === null) {
    users = new Map();
    try {
      for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
        const f = line.split(':');
        if (f.length > 2) users.set(Number(f[2]), f[0]!);
      }
    } catch {
      // no passwd file: numbers only
    }
  }
  return users.get(uid) ?? String(uid);
}

const octal = (mode: number): string => `0${(mode & 0o777).toString(8).padStart(3, '0')}`;

function describeError(err: unknown): string {
  if (err instanceof IPCError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

/** Reads the semaphore `name`'s value, having checked the file first. */
function semaphoreState(name: string, st: Stats, robust: boolean): { state: Record<string, unknown>; error?: string } {
  // glibc maps the first 32 bytes without checking: a short file would SIGBUS us.
  // (A crash-safe semaphore's open checks its file's size and header itself.)
  if (!st.isFile() || (!robust && st.size < 32)) {
    return { state: {}, error: `not a semaphore: a ${st.isFile() ? `${st.size}-byte file` : 'special file'}` };
  }
  try {
    const s = new Semaphore(name, { create: false, robust, owner: 'any' });
    try {
      return { state: { value: s.value } };
    } finally {
      s.close();
    }
  } catch (err) {
    return { state: {}, error: describeError(err) };
  }
}

/** The live state of an Event, Barrier, Condition, RLock or JoinableQueue counter (opened by its checks, never created). */
function syncState(kind: SyncKind, name: string): { state: Record<string, unknown>; error?: string } {
  const open = { create: false, owner: 'any' as const };
  try {
    switch (kind) {
      case 'event': {
        using ev = new Event(name, open);
        return { state: { set: ev.isSet() } };
      }
      case 'barrier': {
        using b = new Barrier(name, open);
        return { state: { parties: b.parties, waiting: b.nWaiting, broken: b.broken } };
      }
      case 'condition': {
        // Its lock may be the caller's (any name): read the waiting slots directly.
        const seg = new SyncSegment('/' + name, 'condition', openOptions(open), []);
        try {
          let waiting = 0;
          for (let id = 1; id <= seg.slots; id++) if (Atomics.load(seg.m, seg.base(id) + CS_STATE) === 1 && seg.alive(id)) waiting++;
          return { state: { waiting } };
        } finally {
          seg.close('Condition');
        }
      }
      case 'rlock': {
        using r = new RLock(name, open);
        return { state: { locked: r.locked() } };
      }
      case 'joinable': {
        const seg = new SyncSegment('/' + name, 'joinable', openOptions(open), []);
        try {
          return { state: { unfinished: Atomics.load(seg.m, JQ_UNFINISHED), lost: Atomics.load(seg.m, JQ_LOST) >>> 0 } };
        } finally {
          seg.close('JoinableQueue');
        }
      }
    }
  } catch (err) {
    return { state: {}, error: describeError(err) };
  }
}

/** Reads a Web Locks segment's holders and waiting requests (its open checks kind, size and header). */
function webLockState(name: string, st: Stats): { state: Record<string, unknown>; error?: string } {
  if (!st.isFile()) return { state: {}, error: 'not a lock segment: a special file' };
  try {
    return { state: lockState(name) };
  } catch (err) {
    return { state: {}, error: describeError(err) };
  }
}

function queueState(name: string): { state: Record<string, unknown>; error?: string } {
  try {
    const q = new Queue(name, { create: false, owner: 'any' });
    try {
      const a = q.attributes();
      return { state: { depth: a.size, maxsize: a.maxsize, maxMessageSize: a.maxMessageSize } };
    } finally {
      q.close();
    }
  } catch (err) {
    return { state: {}, error: describeError(err) };
  }
}

function fromStat(kind: Kind, name: string, path: string | null, st: Stats): Entry {
  return {
    kind,
    name,
    path,
    uid: st.uid,
    user: userName(st.uid),
    mode: octal(st.mode),
    size: st.size,
    modified: st.mtime.toISOString(),
    state: {},
  };
}

/** The entries of /dev/shm, classified, with live state. */
export function listShm(dir = SHM_DIR): Entry[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: Entry[] = [];
  for (const file of names.sort()) {
    let st: Stats;
    try {
      st = lstatSync(`${dir}/${file}`);
    } catch {
      continue; // removed meanwhile
    }
    const c = classifyShmEntry(file, st);
    const e = fromStat(c.kind, c.name, `${dir}/${file}`, st);
    if (c.queue !== undefined) e.queue = c.queue;
    if (c.pid !== undefined) e.pid = c.pid;
    if (c.kind === 'semaphore') Object.assign(e, semaphoreState(c.name, st, !file.startsWith(SEM_FILE_PREFIX)));
    else if (c.kind === 'lock') Object.assign(e, webLockState(c.name, st));
    else if (c.kind === 'segment') e.state = { bytes: st.size };
    else if (c.kind === 'queue') Object.assign(e, queueState(c.name));
    else if (['event', 'barrier', 'condition', 'rlock', 'joinable'].includes(c.kind)) Object.assign(e, syncState(c.kind as SyncKind, c.name));
    out.push(e);
  }
  return out;
}

interface RawQueue {
  name: string;
  uid: number;
  mode: number;
  /** QSIZE from the mqueue file: bytes of messages queued. */
  bytes: number;
}

/** Parses one mqueue file's contents ("QSIZE:129 NOTIFY:0 ..."). */
function qsize(text: string): number {
  return Number(/QSIZE:(\d+)/.exec(text)?.[1] ?? 0);
}

function listMqueueDir(dir: string): RawQueue[] {
  const out: RawQueue[] = [];
  for (const file of readdirSync(dir).sort()) {
    try {
      const st = lstatSync(`${dir}/${file}`);
      out.push({ name: file, uid: st.uid, mode: st.mode, bytes: qsize(readFileSync(`${dir}/${file}`, 'utf8')) });
    } catch {
      // removed meanwhile
    }
  }
  return out;
}

/** As root, mounts an mqueue fs in a private mount namespace just long enough to list it. */
function listQueuesInNamespace(): RawQueue[] | null {
  if (process.getuid?.() !== 0) return null;
  const script =
    'd=$(mktemp -d) && mount -t mqueue none "$d" && cd "$d" && for f in *; do [ -e "$f" ] || continue; ' +
    'printf "%s\\t%s\\t%s\\t%s\\n" "$f" "$(stat -c %u "$f")" "$(stat -c %f "$f")" "$(cat "$f")"; done';
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0 || typeof r.stdout !== 'string') return null;
  return r.stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const [name, uid, mode, text] = l.split('\t');
      return { name: name!, uid: Number(uid), mode: Number.parseInt(mode!, 16), bytes: qsize(text ?? '') };
    });
}

/** Where a mounted mqueue file system is, if any. */
export function mqueueDir(): string | null {
  for (const dir of [process.env.POSIX_IPC_MQUEUE_DIR, MQUEUE_DIR]) {
    if (!dir) continue;
    try {
      if (statSync(dir).isDirectory() && readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir && l.split(' ')[2] === 'mqueue')) return dir;
      // POSIX_IPC_MQUEUE_DIR may name a mount /proc/mounts shows under another path (a namespace): trust it.
      if (dir === process.env.POSIX_IPC_MQUEUE_DIR && statSync(dir).isDirectory()) return dir;
    } catch {
      // not there
    }
  }
  return null;
}

export const MOUNT_HINT =
  'POSIX message queues are not visible: no mqueue file system is mounted. As root: mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue';

/** The message queues, however they can be listed, with live state. */
export function listQueues(shmEntries: Entry[]): { entries: Entry[]; listing: QueueListing } {
  let raw: RawQueue[] | null = null;
  let listing: QueueListing;
  const dir = mqueueDir();
  if (dir !== null) {
    raw = listMqueueDir(dir);
    listing = { source: 'mounted' };
  } else {
    raw = listQueuesInNamespace();
    listing = raw !== null ? { source: 'namespace' } : { source: 'none', hint: MOUNT_HINT };
  }
  const out: Entry[] = [];
  const seen = new Set<string>();
  for (const q of raw ?? []) {
    seen.add(q.name);
    const e: Entry = { kind: 'queue', name: q.name, path: dir === null ? null : `${dir}/${q.name}`, uid: q.uid, user: userName(q.uid), mode: octal(q.mode), size: q.bytes, modified: null, state: {} };
    Object.assign(e, queueState(q.name));
    out.push(e);
  }
  if (raw === null) {
    // Without a listing, the queues this package can know about: those whose side segments are in /dev/shm.
    for (const s of shmEntries) {
      if (s.kind !== 'side-segment' || s.queue === undefined || seen.has(s.queue)) continue;
      seen.add(s.queue);
      const e: Entry = { kind: 'queue', name: s.queue, path: null, uid: -1, user: '?', mode: '?', size: 0, modified: null, state: {} };
      const st = queueState(s.queue);
      Object.assign(e, st);
      out.push(e);
    }
  }
  return { entries: out, listing };
}

/** Everything this user can see. */
export function inventory(): Inventory {
  const shm = listShm();
  const { entries: queues, listing } = listQueues(shm);
  const entries = [...shm, ...queues].sort((a, b) => (a.name === b.name ? a.kind.localeCompare(b.kind) : a.name < b.name ? -1 : 1));
  return { entries, queues: listing };
}

/** True if process `pid` is alive (or exists under another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
