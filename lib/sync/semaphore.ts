/**
 * Named POSIX semaphores: `Semaphore`, `BoundedSemaphore` and `Lock`, with the
 * shapes of Python's `threading` / `multiprocessing` classes, shared by name
 * between unrelated processes (Node, Python's posix_ipc or ctypes, C).
 * @module
 */
import { binding } from '../core/binding.js';
import type { Handle, WaitCallback, WaitToken } from '../core/binding.js';
import { closedError, ipcError } from '../core/errors.js';
import {
  rangeError,
  throwIfAborted,
  validateBoolean,
  validateFunction,
  validateInteger,
  validateMode,
  validateName,
  keysOf,
  validateOptions,
  validateSignal,
  validateTimeout,
} from '../core/validate.js';
import { WaiterQueue } from '../core/waitlist.js';

/** The largest value a semaphore can hold (`SEM_VALUE_MAX`, 2147483647 on Linux). */
export const SEM_VALUE_MAX: number = binding.SEM_VALUE_MAX;

/** Options for opening or creating a named semaphore. */
export interface SemaphoreOptions {
  /** Value given to a newly created semaphore (ignored when it already exists). Default 1. */
  initialValue?: number;
  /** Create the semaphore if it does not exist. Default true. With false, a missing name fails with ENOENT. */
  create?: boolean;
  /** Fail with EEXIST if the name already exists (O_EXCL). Default false. */
  exclusive?: boolean;
  /** Permission bits for a newly created semaphore (the umask applies). Default 0o600. */
  mode?: number;
}

/** Options for a wait. */
export interface AcquireOptions {
  /** Give up after this many milliseconds: `acquire` resolves `false`. Default: wait forever. */
  timeout?: number;
  /** Abort the wait: the promise rejects with an `AbortError` and nothing is consumed. */
  signal?: AbortSignal;
}

/** What `hold()` returns: releases the semaphore once when disposed. */
export interface Held extends Disposable {
  /** Releases now (idempotent; `[Symbol.dispose]` does the same). */
  release(): void;
}

const RESOLVED_TRUE = Promise.resolve(true);
const RESOLVED_FALSE = Promise.resolve(false);
const SEM_PREFIX = 4; // glibc stores semaphores as /dev/shm/sem.NAME
const SEMAPHORE_KEYS = keysOf<SemaphoreOptions>()('initialValue', 'create', 'exclusive', 'mode');
const BOUNDED_KEYS = keysOf<BoundedSemaphoreOptions>()('initialValue', 'create', 'exclusive', 'mode', 'maxValue');
const LOCK_KEYS = keysOf<Omit<SemaphoreOptions, 'initialValue'>>()('create', 'exclusive', 'mode');

/**
 * A counting semaphore shared by name across processes (POSIX `sem_open`).
 *
 * ```ts
 * const slots = new Semaphore('transcode', { initialValue: 3 });
 * await slots.withAcquired(async () => transcode(file)); // at most 3 at once, host-wide
 * ```
 */
export class Semaphore implements Disposable {
  #h: Handle | null;
  // Native functions bound to this semaphore: the uncontended fast path.
  readonly #tryWait: () => boolean;
  readonly #post: () => void;
  readonly #name: string;
  readonly #waiters: WaiterQueue;

  /**
   * Opens the semaphore `name`, creating it with `initialValue` if it is missing.
   * `"jobs"` and `"/jobs"` name the same semaphore.
   * @throws TypeError / RangeError for bad arguments; IPCError (EEXIST, ENOENT, EACCES, ...) from `sem_open`.
   */
  constructor(name: string, options?: SemaphoreOptions) {
    this.#name = validateName(name, 'name', SEM_PREFIX);
    const o = validateOptions<SemaphoreOptions>(options, new.target === Semaphore ? SEMAPHORE_KEYS : BOUNDED_KEYS);
    const initialValue = validateInteger(o.initialValue, 'initialValue', 0, SEM_VALUE_MAX, 1);
    const create = validateBoolean(o.create, 'create', true);
    const exclusive = validateBoolean(o.exclusive, 'exclusive', false);
    const mode = validateMode(o.mode);
    this.#h = binding.semOpen(this.#name, create, exclusive, mode, initialValue);
    [this.#tryWait, this.#post] = binding.semBind(this.#h);
    const self = this;
    this.#waiters = new WaiterQueue({
      tryTake: this.#tryWait,
      startWait: (cb: WaitCallback): WaitToken => binding.semWaitAsync(self.#handle('sem_clockwait'), -1, cb),
      cancelWait: (t: WaitToken) => binding.cancelWait(t),
      giveBack: () => {
        if (self.#h !== null) self.#post();
      },
    });
  }

  #handle(syscall: string): Handle {
    if (this.#h === null) throw closedError('semaphore', syscall, this.#name);
    return this.#h;
  }

  /** The name as the OS sees it, with its leading slash (`'/jobs'`). */
  get name(): string {
    return this.#name;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#h === null;
  }

  /** The current value (`sem_getvalue`): how many more `acquire()`s would succeed at once. */
  get value(): number {
    return binding.semValue(this.#handle('sem_getvalue'));
  }

  /**
   * Takes one unit, waiting if none is free. Resolves `true` when taken,
   * `false` when `timeout` ms passed first; rejects with `AbortError` when
   * `signal` aborts. The uncontended case costs one native call; waits run on
   * the addon's own threads, never libuv's pool.
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    if (options === undefined && this.#h !== null && this.#waiters.idle) {
      if (this.#tryWait()) return RESOLVED_TRUE;
      return this.#waiters.wait(-1, undefined);
    }
    try {
      const o = validateOptions<AcquireOptions>(options);
      const timeout = validateTimeout(o.timeout);
      const signal = validateSignal(o.signal);
      throwIfAborted(signal);
      this.#handle('sem_trywait');
      if (this.#waiters.idle && this.#tryWait()) return RESOLVED_TRUE;
      if (timeout === 0) return RESOLVED_FALSE;
      return this.#waiters.wait(timeout, signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Takes one unit if one is free right now; never waits. */
  tryAcquire(): boolean {
    if (this.#h === null) throw closedError('semaphore', 'sem_trywait', this.#name);
    return this.#tryWait();
  }

  /**
   * Takes one unit, blocking the calling thread (and its event loop) until it
   * is free or `timeout` ms passed (then returns `false`). For scripts.
   * The wait uses CLOCK_MONOTONIC: a wall-clock jump does not stretch it.
   */
  acquireSync(options?: { timeout?: number }): boolean {
    const o = validateOptions<{ timeout?: number }>(options);
    const timeout = validateTimeout(o.timeout);
    const h = this.#handle('sem_clockwait');
    if (this.#tryWait()) return true;
    if (timeout === 0) return false;
    return binding.semWaitSync(h, timeout);
  }

  /** Gives back `n` units (default 1): `sem_post`, waking waiters in any process. */
  release(n = 1): void {
    const h = this.#h;
    if (h === null) throw closedError('semaphore', 'sem_post', this.#name);
    if (n === 1) {
      this.beforeRelease(1);
      this.#post();
      return;
    }
    validateInteger(n, 'n', 1, SEM_VALUE_MAX);
    this.beforeRelease(n);
    binding.semPost(h, n);
  }

  /** @internal subclasses check the bound here. */
  protected beforeRelease(_n: number): void {}

  /**
   * Acquires and returns a disposable that releases: Python's `with sem:`.
   * ```ts
   * { using _held = await sem.hold(); ... } // released at block exit
   * ```
   * Rejects with IPCError `ETIMEDOUT` if `timeout` passes first.
   */
  async hold(options?: AcquireOptions): Promise<Held> {
    if (!(await this.acquire(options))) {
      throw ipcError('ETIMEDOUT', 'timed out waiting for semaphore', 'sem_clockwait', this.#name);
    }
    return this.#held();
  }

  /** The blocking form of `hold()`. */
  holdSync(options?: { timeout?: number }): Held {
    if (!this.acquireSync(options)) {
      throw ipcError('ETIMEDOUT', 'timed out waiting for semaphore', 'sem_clockwait', this.#name);
    }
    return this.#held();
  }

  #held(): Held {
    let done = false;
    const release = (): void => {
      if (done) return;
      done = true;
      this.release();
    };
    return { release, [Symbol.dispose]: release };
  }

  /**
   * Runs `fn` while holding one unit, releasing it when `fn` settles (also when
   * it throws). Returns what `fn` returns.
   */
  async withAcquired<T>(fn: () => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    validateFunction(fn, 'fn');
    using _held = await this.hold(options);
    return await fn();
  }

  /**
   * Closes this handle (`sem_close`). Pending `acquire()`s in this process
   * reject with IPCError `EBADF`. The semaphore itself lives on until unlinked.
   * Idempotent.
   */
  close(): void {
    const h = this.#h;
    if (h === null) return;
    this.#h = null;
    this.#waiters.rejectAll(closedError('semaphore', 'sem_clockwait', this.#name));
    binding.semClose(h);
  }

  /** Removes the name (`sem_unlink`); open handles keep working until closed. */
  unlink(): void {
    binding.semUnlink(this.#name);
  }

  /** Removes the semaphore `name` (`sem_unlink`). Throws IPCError ENOENT if it does not exist. */
  static unlink(name: string): void {
    binding.semUnlink(validateName(name, 'name', SEM_PREFIX));
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Options for a bounded semaphore. */
export interface BoundedSemaphoreOptions extends SemaphoreOptions {
  /** The bound: releasing past it throws RangeError. Default: `initialValue`. */
  maxValue?: number;
}

/**
 * A semaphore that refuses to be released above its bound (Python's
 * `BoundedSemaphore`): `release()` past `maxValue` throws a RangeError with
 * code `ERR_IPC_OVER_RELEASE` and changes nothing. The check reads the value
 * then posts, as CPython's does; two processes over-releasing at the very same
 * instant can both pass it.
 */
export class BoundedSemaphore extends Semaphore {
  readonly #max: number;

  constructor(name: string, options?: BoundedSemaphoreOptions) {
    // Checked before super() opens anything, so a bad bound creates nothing.
    const max = BoundedSemaphore.#bound(options);
    super(name, options);
    this.#max = max;
  }

  static #bound(options: BoundedSemaphoreOptions | undefined): number {
    const o = validateOptions<BoundedSemaphoreOptions>(options, BOUNDED_KEYS);
    const initialValue = validateInteger(o.initialValue, 'initialValue', 0, SEM_VALUE_MAX, 1);
    const max = validateInteger(o.maxValue, 'maxValue', 1, SEM_VALUE_MAX, Math.max(initialValue, 1));
    if (initialValue > max) {
      throw rangeError('ERR_OUT_OF_RANGE', `initialValue (${initialValue}) must not exceed maxValue (${max})`);
    }
    return max;
  }

  /** The bound given at construction. */
  get maxValue(): number {
    return this.#max;
  }

  protected override beforeRelease(n: number): void {
    if (this.value + n > this.#max) {
      throw rangeError('ERR_IPC_OVER_RELEASE', `Semaphore released too many times: ${this.name} is bounded at ${this.#max}`);
    }
  }
}

/**
 * A cross-process mutual-exclusion lock: a semaphore bounded at 1.
 * ```ts
 * const lock = new Lock('db-migrate');
 * await lock.withAcquired(migrate); // one process at a time, host-wide
 * ```
 * Unlike a thread lock it has no owner: any process may release it (as a POSIX
 * semaphore). Releasing an unlocked Lock throws RangeError `ERR_IPC_OVER_RELEASE`.
 */
export class Lock extends BoundedSemaphore {
  constructor(name: string, options?: Omit<SemaphoreOptions, 'initialValue'>) {
    const o = validateOptions<SemaphoreOptions>(options, LOCK_KEYS);
    super(name, { ...o, initialValue: 1, maxValue: 1 });
  }

  /** True if the lock is currently held (by any process). */
  locked(): boolean {
    return this.value === 0;
  }
}
