/**
 * Naming rules: where each kind of object lives in the file system. The one
 * place that knows these paths, so that "one name, one object" can be checked.
 * @internal
 * @module
 */

/** The tmpfs where glibc keeps named semaphores and shared memory. */
export const SHM_DIR = '/dev/shm';

/** Characters glibc adds to a plain semaphore's name: `/dev/shm/sem.NAME`. */
export const PLAIN_SEM_RESERVED = 'sem.'.length;

/** Characters added to a crash-safe semaphore's name: `/dev/shm/pipc.NAME.sem`. */
export const ROBUST_SEM_RESERVED = 'pipc.'.length + '.sem'.length;

/** Strips the one leading slash of a validated name. */
function bare(name: string): string {
  return name.startsWith('/') ? name.slice(1) : name;
}

/** The file of a plain POSIX semaphore (`sem_open`) named `name`. */
export function plainSemPath(name: string): string {
  return `${SHM_DIR}/sem.${bare(name)}`;
}

/** The segment of a crash-safe semaphore named `name`. */
export function robustSemPath(name: string): string {
  return `${SHM_DIR}/pipc.${bare(name)}.sem`;
}
