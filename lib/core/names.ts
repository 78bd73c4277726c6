/**
 * Every naming rule of posix-ipc, in one place: how a name given by the user
 * becomes the OS's name, and what the package names itself (random segment
 * names, side segments of large queue items, socket paths, the files glibc
 * keeps in /dev/shm). The command-line tool and a foreign process find
 * objects by these rules.
 * @internal
 * @module
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeValue, rangeError, typeError } from './errors.js';

/** Where Linux keeps shm_open segments and glibc its named semaphores. */
export const SHM_DIR = '/dev/shm';

/** NAME_MAX on Linux: the longest file name under /dev/shm or /dev/mqueue. */
export const NAME_MAX = 255;

/** glibc keeps the semaphore NAME as the file /dev/shm/sem.NAME. */
export const SEM_FILE_PREFIX = 'sem.';

/** What glibc adds to a semaphore's name: the `reserved` of validateName for semaphores. */
export const SEM_RESERVED = SEM_FILE_PREFIX.length;

/**
 * Validates an IPC object name and returns it with its one leading slash, as
 * the OS functions take it. `"jobs"` and `"/jobs"` are the same object.
 * `reserved` is what the OS adds to the file name (4 for glibc's "sem.").
 */
export function validateName(name: unknown, argName = 'name', reserved = 0): string {
  if (typeof name !== 'string') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" argument must be of type string. Received ${describeValue(name)}`);
  }
  const bare = name.startsWith('/') ? name.slice(1) : name;
  if (bare.length === 0) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The "${argName}" argument must not be empty (nor a lone "/")`);
  }
  if (bare.includes('/')) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The "${argName}" argument may have one leading "/" and no other. Received '${name}'`);
  }
  if (bare.includes('\0')) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The "${argName}" argument must not contain null bytes`);
  }
  if (bare === '.' || bare === '..') {
    throw typeError('ERR_INVALID_ARG_VALUE', `The "${argName}" argument must not be "." or ".."`);
  }
  const max = NAME_MAX - reserved;
  const bytes = Buffer.byteLength(bare);
  if (bytes > max) {
    throw rangeError('ERR_OUT_OF_RANGE', `The "${argName}" argument is ${bytes} bytes long; at most ${max} are allowed`);
  }
  return '/' + bare;
}

/** Validates the name of a semaphore (or of a Value's lock): room for glibc's "sem." prefix. */
export function validateSemaphoreName(name: unknown, argName = 'name'): string {
  return validateName(name, argName, SEM_RESERVED);
}

/** The file glibc keeps semaphore `name` ('/jobs') in: '/dev/shm/sem.jobs'. */
export function semaphoreFile(name: string): string {
  return `${SHM_DIR}/${SEM_FILE_PREFIX}${name.slice(1)}`;
}

// Crash-safe semaphores (lib/sync/robust.ts) live in a segment of their own,
// /dev/shm/pipc.NAME.sem; a name holds one kind, plain or crash-safe.
const ROBUST_SEM_FILE = /^pipc\.(.+)\.sem$/;
// A shared-memory queue's segment: pipc.<name>.queue (lib/queue/ring.ts).
const RING_QUEUE_FILE = /^pipc\.(.+)\.queue$/;

/** What glibc adds to a plain semaphore's name (validateName's `reserved`). */
export const PLAIN_SEM_RESERVED = SEM_RESERVED;

/** What a crash-safe semaphore's file adds to its name: "pipc." and ".sem". */
export const ROBUST_SEM_RESERVED = 'pipc.'.length + '.sem'.length;

/** The file of the plain POSIX semaphore `name` ('/jobs'): '/dev/shm/sem.jobs'. */
export function plainSemPath(name: string): string {
  return semaphoreFile(name);
}

/** The segment of the crash-safe semaphore `name` ('/jobs'): '/dev/shm/pipc.jobs.sem'. */
export function robustSemPath(name: string): string {
  return `${SHM_DIR}/pipc.${name.slice(1)}.sem`;
}

// Event, Barrier, Condition, RLock and JoinableQueue (lib/sync/segment.ts):
// /dev/shm/pipc.NAME.<suffix>, one suffix per kind.
/** The file suffix of each synchronisation kind. */
export const SYNC_SUFFIX = { event: 'event', barrier: 'barrier', condition: 'cond', rlock: 'rlock', joinable: 'jq' } as const;
/** The kinds of synchronisation object kept in segments of their own. */
export type SyncKind = keyof typeof SYNC_SUFFIX;
const SYNC_FILE = /^pipc\.(.+)\.(event|barrier|cond|rlock|jq)$/;
const SYNC_KIND_OF: Record<string, SyncKind> = { event: 'event', barrier: 'barrier', cond: 'condition', rlock: 'rlock', jq: 'joinable' };

/** What a synchronisation segment's file adds to its name: "pipc." and the longest suffix. */
export const SYNC_RESERVED = 'pipc.'.length + '.barrier'.length;

/** The segment of synchronisation object `name` ('/go') of `kind`: '/dev/shm/pipc.go.event'. */
export function syncPath(name: string, kind: SyncKind): string {
  return `${SHM_DIR}/pipc.${name.slice(1)}.${SYNC_SUFFIX[kind]}`;
}

// Web Locks (lib/sync/locks.ts): the lock NAME (any string) has the segment
// /dev/shm/pipc.ENCODED.lock, where ENCODED is NAME in UTF-8 with "%", "/"
// and NUL written as %25, %2F and %00.
const LOCK_FILE = /^pipc\.(.*)\.lock$/;
const LOCK_RESERVED = 'pipc.'.length + '.lock'.length;

/** The /dev/shm file name of the Web Locks lock `name` (checked: RangeError past NAME_MAX). */
export function lockFileName(name: string): string {
  const encoded = name.replace(/[%/\0]/g, (c) => (c === '%' ? '%25' : c === '/' ? '%2F' : '%00'));
  const bytes = Buffer.byteLength(encoded);
  if (bytes > NAME_MAX - LOCK_RESERVED) {
    throw rangeError('ERR_OUT_OF_RANGE', `The "name" argument is ${bytes} bytes long (encoded); at most ${NAME_MAX - LOCK_RESERVED} are allowed`);
  }
  return `pipc.${encoded}.lock`;
}

/** The segment of the Web Locks lock `name`: '/dev/shm/pipc.NAME.lock'. */
export function lockSegmentPath(name: string): string {
  return `${SHM_DIR}/${lockFileName(name)}`;
}

/** The lock name a /dev/shm file name stands for, or undefined if it is not a lock segment's. */
export function parseLockFileName(file: string): string | undefined {
  const m = LOCK_FILE.exec(file);
  if (m === null) return undefined;
  const encoded = m[1]!;
  if (/%(?!25|2F|00)/.test(encoded)) return undefined;
  return encoded.replace(/%(25|2F|00)/g, (_, h: string) => (h === '25' ? '%' : h === '2F' ? '/' : '\0'));
}

/** A fresh segment name as Python's `SharedMemory(create=True)` makes them: "/psm_" and 8 hex digits. */
export function randomSegmentName(): string {
  return `/psm_${randomBytes(4).toString('hex')}`;
}

// Side segments of large queue items: /pipc-mq.<queue>.<pid>-<seq>-<hex>.
const SEGMENT_SUFFIX = /^\d+-\d+-[0-9a-f]+$/;
let segmentSequence = 0;

/** The file-name prefix of the side segments of queue `name` ('/jobs' -> 'pipc-mq.jobs.'). */
export function segmentPrefix(queueName: string): string {
  return `pipc-mq.${queueName.slice(1)}.`;
}

/** A new side-segment file name (no slash) for queue `queueName`: unique in this process, unguessable. */
export function newSegmentFile(queueName: string): string {
  segmentSequence += 1;
  return `${segmentPrefix(queueName)}${process.pid}-${segmentSequence}-${randomBytes(6).toString('hex')}`;
}

/** True if `file` (a /dev/shm file name, no slash) is a side segment of queue `queueName`. */
export function isSegmentOf(queueName: string, file: string): boolean {
  const prefix = segmentPrefix(queueName);
  return file.startsWith(prefix) && SEGMENT_SUFFIX.test(file.slice(prefix.length));
}

// sockaddr_un.sun_path holds 108 bytes: a path and its NUL, or NUL + name.
const SUN_PATH = 108;

/** Validates an AF_UNIX address: a path, or '\0name' (a Linux abstract name). */
export function validateSocketAddress(value: unknown): string {
  if (typeof value !== 'string') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "address" argument must be of type string. Received ${value === null ? 'null' : typeof value}`);
  }
  const abstract = value.startsWith('\0');
  if (value.length === 0 || value === '\0') throw typeError('ERR_INVALID_ARG_VALUE', 'The "address" argument must not be empty');
  if (!abstract && value.includes('\0')) {
    throw typeError('ERR_INVALID_ARG_VALUE', 'The "address" argument must not contain null bytes (except a leading one for an abstract name)');
  }
  const bytes = Buffer.byteLength(value);
  const max = abstract ? SUN_PATH : SUN_PATH - 1;
  if (bytes > max) {
    throw rangeError('ERR_OUT_OF_RANGE', `The "address" argument is ${bytes} bytes long; an AF_UNIX address holds at most ${max}`);
  }
  return value;
}

/** How a socket address appears in messages: abstract names as "@name". */
export function shownAddress(address: string): string {
  return address.startsWith('\0') ? '@' + address.slice(1) : address;
}

/** A fresh socket path under os.tmpdir(), for a Listener made without an address. */
export function randomSocketPath(): string {
  return join(tmpdir(), `pipc-listener-${process.pid}-${randomBytes(6).toString('hex')}.sock`);
}

/** Validates a file-system path (of a FIFO). */
export function validatePath(path: unknown): string {
  if (typeof path !== 'string') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "path" argument must be of type string. Received ${path === null ? 'null' : typeof path}`);
  }
  if (path.length === 0) throw typeError('ERR_INVALID_ARG_VALUE', 'The "path" argument must not be empty');
  if (path.includes('\0')) throw typeError('ERR_INVALID_ARG_VALUE', 'The "path" argument must not contain null bytes');
  return path;
}

/** Where the mqueue file system is mounted, when it is. */
export const MQUEUE_DIR = '/dev/mqueue';

// A side segment's file: pipc-mq.<queue>.<pid>-<seq>-<hex> (newSegmentFile).
const SIDE_SEGMENT_FILE = /^pipc-mq\.(.+)\.(\d+)-\d+-[0-9a-f]+$/;

/** What an entry of /dev/shm is, by the rules above. */
export type ShmEntryKind = 'semaphore' | 'lock' | SyncKind | 'segment' | 'side-segment' | 'fifo' | 'socket' | 'symlink' | 'directory' | 'other' | 'queue';

/** An entry of /dev/shm, classified. */
export interface ShmEntryClass {
  kind: ShmEntryKind;
  /** The name a user passes to the library for it (no leading slash). */
  name: string;
  /** For a side segment: its queue's name (no slash) and the writer's pid. */
  queue?: string;
  pid?: number;
}

/** Classifies /dev/shm/<file> from its name and its lstat (a symlink is never followed). */
export function classifyShmEntry(file: string, st: import('node:fs').Stats): ShmEntryClass {
  if (st.isSymbolicLink()) return { kind: 'symlink', name: file };
  if (st.isFIFO()) return { kind: 'fifo', name: file };
  if (st.isSocket()) return { kind: 'socket', name: file };
  if (st.isDirectory()) return { kind: 'directory', name: file };
  if (!st.isFile()) return { kind: 'other', name: file };
  if (file.startsWith(SEM_FILE_PREFIX) && file.length > SEM_FILE_PREFIX.length) {
    return { kind: 'semaphore', name: file.slice(SEM_FILE_PREFIX.length) };
  }
  const robust = ROBUST_SEM_FILE.exec(file);
  if (robust !== null) return { kind: 'semaphore', name: robust[1]! };
  const ring = RING_QUEUE_FILE.exec(file);
  if (ring !== null) return { kind: 'queue', name: ring[1]! };
  const sync = SYNC_FILE.exec(file);
  if (sync !== null) return { kind: SYNC_KIND_OF[sync[2]!]!, name: sync[1]! };
  const lock = parseLockFileName(file);
  if (lock !== undefined) return { kind: 'lock', name: lock };
  const side = SIDE_SEGMENT_FILE.exec(file);
  if (side !== null) return { kind: 'side-segment', name: file, queue: side[1]!, pid: Number(side[2]) };
  return { kind: 'segment', name: file };
}
