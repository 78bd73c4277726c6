/**
 * Naming rules: how a name the user gives maps to files the OS keeps, in one
 * place, so the library and the command-line tool agree on what every entry
 * of /dev/shm is.
 * @internal
 * @module
 */
import type { Stats } from 'node:fs';

/** Where glibc's shm_open and sem_open keep their files on Linux. */
export const SHM_DIR = '/dev/shm';
/** Where the mqueue file system is mounted, when it is. */
export const MQUEUE_DIR = '/dev/mqueue';
/** glibc keeps the semaphore NAME at /dev/shm/sem.NAME. */
export const SEM_FILE_PREFIX = 'sem.';
/** A queue's side segments: /dev/shm/pipc-mq.<queue>.<pid>-<seq>-<hex>. */
export const SIDE_SEGMENT_PREFIX = 'pipc-mq.';
const SIDE_SEGMENT = /^pipc-mq\.(.+)\.(\d+)-\d+-[0-9a-f]+$/;

/** What an entry of /dev/shm is. */
export type ShmEntryKind = 'semaphore' | 'segment' | 'side-segment' | 'fifo' | 'socket' | 'symlink' | 'directory' | 'other';

export interface ShmEntryClass {
  kind: ShmEntryKind;
  /** The name a user passes to the library for it. */
  name: string;
  /** For a side segment: its queue's name and the writer's pid. */
  queue?: string;
  pid?: number;
}

/** Classifies /dev/shm/<file> from its name and lstat. */
export function classifyShmEntry(file: string, st: Stats): ShmEntryClass {
  if (st.isSymbolicLink()) return { kind: 'symlink', name: file };
  if (st.isFIFO()) return { kind: 'fifo', name: file };
  if (st.isSocket()) return { kind: 'socket', name: file };
  if (st.isDirectory()) return { kind: 'directory', name: file };
  if (!st.isFile()) return { kind: 'other', name: file };
  if (file.startsWith(SEM_FILE_PREFIX) && file.length > SEM_FILE_PREFIX.length) {
    return { kind: 'semaphore', name: file.slice(SEM_FILE_PREFIX.length) };
  }
  const side = SIDE_SEGMENT.exec(file);
  if (side !== null) return { kind: 'side-segment', name: file, queue: side[1]!, pid: Number(side[2]) };
  return { kind: 'segment', name: file };
}

/** The /dev/shm files that belong to the object `name` (without its slash), of any kind. */
export function filesOfName(name: string): string[] {
  return [name, `${SEM_FILE_PREFIX}${name}`];
}
