/**
 * `RLock`: Python's re-entrant lock, by name across processes. The lock
 * itself is a crash-safe Lock in a segment of its own (/dev/shm/pipc.NAME.rlock,
 * the crash-safe semaphore layout bounded at 1), so a dead owner's lock comes
 * back within a second; the re-entry count belongs to the owner.
 * @module
 */
import { closedError, ipcError } from '../core/errors.js';
import { SYNC_RESERVED, syncPath, validateName } from '../core/names.js';
import { binding } from '../core/binding.js';
import { keysOf, validateFunction, validateOptions } from '../core/validate.js';
import type { Owner } from '../core/validate.js';
import { Lock, SEGMENT_PATH, type AcquireOptions, type Held } from './semaphore.js';
import type { OwnerDeadInfo } from './robust.js';

/** Options for opening an RLock. */
export interface RLockOptions {
  /** Create the lock if it does not exist. Default true. */
  create?: boolean;
  /** Fail with EEXIST if the name exists. Default false. */
  exclusive?: boolean;
  /** Permission bits of a new lock. Default 0o600. */
  mode?: number;
  /** Whose existing lock this call may open (as Semaphore's). */
  owner?: Owner;
  /** Called when an acquire receives the lock from an owner that died holding it. */
  onOwnerDead?: (info: OwnerDeadInfo) => void;
}

const RLOCK_KEYS = keysOf<RLockOptions>()('create', 'exclusive', 'mode', 'owner', 'onOwnerDead');

/**
 * The owner of an RLock is this process and thread (the main thread or one
 * worker): module state is per thread, so this map is the owner's. A name is
 * one lock: every handle of it in this thread shares the count.
 */
interface Ownership {
  depth: number;
  /** The handle whose Lock holds the unit. */
  holder: RLock;
}
const owned = new Map<string, Ownership>();

/**
 * A re-entrant lock shared by name: the process and thread that holds it may
 * acquire it again, and must release it as many times; anyone else waits.
 *
 * ```ts
 * const r = new RLock('config');
 * await r.acquire(); await r.acquire(); // re-entered
 * r.release(); r.release();            // now free for other processes
 * ```
 * Async functions of one thread are one owner (as Python's threads are the
 * unit of ownership, JavaScript's thread is here): to exclude concurrent
 * async tasks of one process from each other, use a Lock.
 */
export class RLock implements Disposable {
  readonly #lock: Lock;
  readonly #name: string;

  constructor(name: string, options?: RLockOptions) {
    const o = validateOptions<RLockOptions>(options, RLOCK_KEYS);
    this.#name = validateName(name, 'name', SYNC_RESERVED);
    if (o.onOwnerDead !== undefined) validateFunction(o.onOwnerDead, 'onOwnerDead');
    this.#lock = new Lock(this.#name, { ...o, [SEGMENT_PATH]: syncPath(this.#name, 'rlock') } as RLockOptions);
  }

  get name(): string {
    return this.#name;
  }

  get closed(): boolean {
    return this.#lock.closed;
  }

  #open(syscall: string): void {
    if (this.#lock.closed) throw closedError('RLock', syscall, this.#name);
  }

  /** How many times this thread holds the lock (0: not the owner). */
  get count(): number {
    return owned.get(this.#name)?.depth ?? 0;
  }

  /** True if this process and thread own the lock (Python's `_is_owned()`). */
  isOwned(): boolean {
    return this.count > 0;
  }

  /** True if anyone (any process) holds the lock. */
  locked(): boolean {
    this.#open('sem_getvalue');
    return this.#lock.locked();
  }

  #enter(): boolean {
    const own = owned.get(this.#name);
    if (own === undefined) return false;
    own.depth++;
    return true;
  }

  #took(ok: boolean): boolean {
    // The unit is exclusive: nobody in this thread owns the lock now.
    if (ok) owned.set(this.#name, { depth: 1, holder: this });
    return ok;
  }

  /**
   * Acquires the lock, or re-enters it if this thread owns it. Resolves
   * `false` if `timeout` ms pass first; rejects with AbortError on `signal`.
   */
  async acquire(options?: AcquireOptions): Promise<boolean> {
    this.#open('sem_clockwait');
    if (this.#enter()) return true;
    return this.#took(await this.#lock.acquire(options));
  }

  /** Acquires or re-enters without waiting. */
  tryAcquire(): boolean {
    this.#open('sem_trywait');
    if (this.#enter()) return true;
    return this.#took(this.#lock.tryAcquire());
  }

  /** The blocking form of acquire(). */
  acquireSync(options?: { timeout?: number }): boolean {
    this.#open('sem_clockwait');
    if (this.#enter()) return true;
    return this.#took(this.#lock.acquireSync(options));
  }

  /**
   * Releases one level; the last one frees the lock for others. Throws
   * IPCError EPERM when this thread does not own the lock (another process
   * or thread holds it, or nobody does), as Python's RuntimeError.
   */
  release(): void {
    this.#open('sem_post');
    const own = owned.get(this.#name);
    if (own === undefined) {
      throw ipcError('EPERM', 'cannot release an RLock this process and thread do not own', 'sem_post', this.#name);
    }
    if (--own.depth > 0) return;
    owned.delete(this.#name);
    own.holder.#lock.release();
  }

  #held(): Held {
    let done = false;
    const release = (): void => {
      if (done) return;
      done = true;
      this.release();
    };
    return { release, [Symbol.dispose]: release, recovered: undefined, token: undefined };
  }

  /** Acquires and returns a disposable that releases one level: `using _ = await r.hold()`. Rejects ETIMEDOUT on timeout. */
  async hold(options?: AcquireOptions): Promise<Held> {
    if (!(await this.acquire(options))) throw ipcError('ETIMEDOUT', 'timed out waiting for RLock', 'sem_clockwait', this.#name);
    return this.#held();
  }

  holdSync(options?: { timeout?: number }): Held {
    if (!this.acquireSync(options)) throw ipcError('ETIMEDOUT', 'timed out waiting for RLock', 'sem_clockwait', this.#name);
    return this.#held();
  }

  /** @internal Condition.wait: releases every level, returning how many there were. */
  releaseAll(): number {
    const own = owned.get(this.#name);
    if (own === undefined) throw ipcError('EPERM', 'cannot wait on a Condition whose RLock this thread does not own', 'futex', this.#name);
    owned.delete(this.#name);
    own.holder.#lock.release();
    return own.depth;
  }

  /** @internal Condition.wait: takes the lock back with `depth` levels (after acquire() returned true). */
  restore(depth: number): void {
    const own = owned.get(this.#name)!;
    own.depth = depth;
  }

  /**
   * Closes this handle. If it is the one holding the lock for this thread,
   * the lock is given up (for the next owner, marked as recovered).
   */
  close(): void {
    const own = owned.get(this.#name);
    if (own !== undefined && own.holder === this) owned.delete(this.#name);
    this.#lock.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  unlink(): void {
    RLock.unlink(this.#name);
  }

  /** Removes the RLock `name`. IPCError ENOENT if there is none. */
  static unlink(name: string): void {
    const n = validateName(name, 'name', SYNC_RESERVED);
    binding.robUnlink(syncPath(n, 'rlock'), n);
  }
}
