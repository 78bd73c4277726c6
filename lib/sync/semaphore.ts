/**
 * Named semaphores: `Semaphore`, `BoundedSemaphore` and `Lock`, with the
 * shapes of Python's `threading` / `multiprocessing` classes, shared by name
 * between unrelated processes. Crash-safe by default (a segment of our own,
 * see robust.ts); `{ robust: false }` is a plain POSIX semaphore, shared with
 * Python's posix_ipc or ctypes and C.
 * @module
 */
import { binding } from '../core/binding.js';
import { SpinGate, waitSpinMs } from '../core/spin.js';
import type { Handle, WaitCallback, WaitToken } from '../core/binding.js';
import { closedError, ipcError } from '../core/errors.js';
import { PLAIN_SEM_RESERVED, ROBUST_SEM_RESERVED, plainSemPath, robustSemPath } from '../core/names.js';
import {
  rangeError,
  throwIfAborted,
  validateBoolean,
  validateFunction,
  validateInteger,
  validateMode,
  validateOwner,
  validateName,
  keysOf,
  validateOptions,
  validateSignal,
  validateTimeout,
} from '../core/validate.js';
import type { Owner } from '../core/validate.js';
import { WaiterQueue } from '../core/waitlist.js';
import { RobustSegment } from './robust.js';
import type { OwnerDeadInfo } from './robust.js';

export type { OwnerDeadInfo } from './robust.js';
import { kReopen } from '../core/transfer.js';
import type { ReopenSpec } from '../core/transfer.js';

/** The largest value a semaphore can hold (`SEM_VALUE_MAX`, 2147483647 on Linux). */
export const SEM_VALUE_MAX: number = binding.SEM_VALUE_MAX;
const TSO = process.arch === 'x64' || process.arch === 'ia32';

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
  /**
   * Whose existing semaphore this call may open: `'self'` (default) only one
   * owned by this process's effective uid, `'any'` any owner, or a uid. One
   * owned by another uid is refused with IPCError `EPERM` naming its owner,
   * so that no other user can plant a semaphore (made before us, with mode
   * 0o666) that we would adopt. Root is not special: it too adopts only its
   * own unless it says otherwise.
   */
  owner?: Owner;
  /**
   * Crash-safe (default true): units held by a process (or worker thread) that
   * dies come back within a second, and the next holder is told. `false`: a
   * plain POSIX `sem_open` semaphore, for posix_ipc, ctypes and C peers (whose
   * deaths nobody can recover). A name holds one kind: opening it as the
   * other kind is an IPCError naming the kind that is there.
   */
  robust?: boolean;
  /** Called (crash-safe only) when an acquire of this handle receives a unit whose holder died. */
  onOwnerDead?: (info: OwnerDeadInfo) => void;
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
  /**
   * Set (crash-safe only) when the unit came from a holder that died holding
   * it, like pthread's EOWNERDEAD: whatever it protected may be half-updated.
   */
  readonly recovered: OwnerDeadInfo | undefined;
  /**
   * The fencing token of this acquire (crash-safe Lock only): a 64-bit counter
   * incremented by every successful acquire, so a resource can refuse a
   * holder older than one it has already seen. Undefined otherwise.
   */
  readonly token: bigint | undefined;
}

/** @internal RLock passes its own segment path (pipc.NAME.rlock) to Lock's constructor under this key. */
export const SEGMENT_PATH = Symbol('segmentPath');

/** @internal BoundedSemaphore and Lock pass their bound to Semaphore's constructor under this key. */
const BOUND = Symbol('bound');
interface Bound {
  max: number;
  /** Whether an existing object must have exactly this bound (Lock, or an explicit maxValue). */
  strict: boolean;
  lock: boolean;
}

const RESOLVED_TRUE = Promise.resolve(true);

export { setWaitSpinUs } from '../core/spin.js';
const RESOLVED_FALSE = Promise.resolve(false);
const SEMAPHORE_KEYS = keysOf<SemaphoreOptions>()('initialValue', 'create', 'exclusive', 'mode', 'owner', 'robust', 'onOwnerDead');
const BOUNDED_KEYS = keysOf<BoundedSemaphoreOptions>()('initialValue', 'create', 'exclusive', 'mode', 'owner', 'maxValue', 'robust', 'onOwnerDead');
const LOCK_KEYS = keysOf<Omit<SemaphoreOptions, 'initialValue'>>()('create', 'exclusive', 'mode', 'owner', 'robust', 'onOwnerDead');

function kindError(name: string, robust: boolean): Error {
  const there = robust ? 'a plain POSIX semaphore (robust: false)' : 'a crash-safe semaphore (robust: true)';
  return ipcError('EEXIST', `${there} already exists at this name`, robust ? 'open' : 'sem_open', name);
}

/**
 * A counting semaphore shared by name across processes: crash-safe by
 * default (a dead holder's units come back), or POSIX `sem_open` with
 * `{ robust: false }`.
 *
 * ```ts
 * const slots = new Semaphore('transcode', { initialValue: 3 });
 * await slots.withAcquired(async () => transcode(file)); // at most 3 at once, host-wide
 * ```
 */
/**
 * Takes a unit of a plain semaphore as sem_trywait does, with Atomics on
 * glibc's sem_t (the value is the low half of its first 64-bit word; a
 * compare-and-swap on that half alone is the same operation, since taking
 * from a positive value never borrows from the waiter count above it).
 */
function takeUnit(w: Int32Array): boolean {
  // A plain read is only a guess (Atomics.load is a call in this V8): the
  // compare-and-swap checks it.
  let v = w[0]!;
  while (v > 0) {
    const seen = Atomics.compareExchange(w, 0, v, v - 1);
    if (seen === v) return true;
    v = seen;
  }
  return false;
}

/**
 * Gives a unit back as sem_post does: the increment, then one FUTEX_WAKE if
 * the waiter count (the high half) is not zero. Sleepers count themselves
 * before they look at the value, and the increment is a full barrier, so a
 * sleeper either sees the unit or is counted here (x86 orders the plain read
 * after the locked compare-and-swap; elsewhere the read is Atomics.load).
 * At SEM_VALUE_MAX the native sem_post throws EOVERFLOW, changing nothing.
 */
function giveUnit(w: Int32Array, h: Handle): void {
  let v = w[0]!;
  for (;;) {
    if (v >= SEM_VALUE_MAX || v < 0) {
      binding.semPost(h);
      return;
    }
    const seen = Atomics.compareExchange(w, 0, v, v + 1);
    if (seen === v) break;
    v = seen;
  }
  if ((TSO ? w[1] : Atomics.load(w, 1)) !== 0) binding.semWake(h);
}

export class Semaphore implements Disposable {
  #h: Handle | null;
  // The uncontended fast path: native functions bound to a plain semaphore,
  // or Atomics on a crash-safe segment.
  readonly #tryWait: () => boolean;
  readonly #post: () => void;
  // A plain semaphore's glibc sem_t words [value, waiters], or null: the
  // fast path that makes no native call (see takeUnit).
  readonly #sw: Int32Array | null = null;
  readonly #gate = new SpinGate();
  readonly #name: string;
  readonly #waiters: WaiterQueue;
  readonly #rob: RobustSegment | null;
  readonly #onOwnerDead: ((info: OwnerDeadInfo) => void) | undefined;
  readonly #isLock: boolean;
  #recovered: OwnerDeadInfo | undefined;

  /**
   * Opens the semaphore `name`, creating it with `initialValue` if it is missing.
   * `"jobs"` and `"/jobs"` name the same semaphore.
   * @throws TypeError / RangeError for bad arguments; IPCError (EEXIST, ENOENT, EACCES, ...) from `sem_open`.
   */
  constructor(name: string, options?: SemaphoreOptions) {
    const o = validateOptions<SemaphoreOptions>(options, new.target === Semaphore ? SEMAPHORE_KEYS : BOUNDED_KEYS);
    const robust = validateBoolean(o.robust, 'robust', true);
    this.#name = validateName(name, 'name', robust ? ROBUST_SEM_RESERVED : PLAIN_SEM_RESERVED);
    this.#opened = o;
    // Both kinds check the owner of what they find at the name (and its kind, size and header).
    const owner = validateOwner(o.owner);
    const initialValue = validateInteger(o.initialValue, 'initialValue', 0, SEM_VALUE_MAX, 1);
    const create = validateBoolean(o.create, 'create', true);
    const exclusive = validateBoolean(o.exclusive, 'exclusive', false);
    const mode = validateMode(o.mode);
    if (o.onOwnerDead !== undefined) validateFunction(o.onOwnerDead, 'onOwnerDead');
    this.#onOwnerDead = o.onOwnerDead;
    const bound = (o as { [BOUND]?: Bound })[BOUND];
    this.#isLock = bound?.lock === true;
    const self = this;
    if (robust) {
      const path = (o as { [SEGMENT_PATH]?: string })[SEGMENT_PATH];
      if (path === undefined && binding.robKindAt(plainSemPath(this.#name)) !== 'none') throw kindError(this.#name, true);
      const rob = new RobustSegment(this.#name, path ?? robustSemPath(this.#name), create, exclusive, mode, initialValue, bound?.max ?? 0, owner);
      if (bound !== undefined && bound.strict && rob.max !== bound.max) {
        rob.close();
        const is = rob.max === 0 ? 'an unbounded semaphore' : `a semaphore bounded at ${rob.max}`;
        throw ipcError('EINVAL', `'${this.#name}' is ${is}, not bounded at ${bound.max}${bound.lock ? ' (a Lock)' : ''}`, 'open', this.#name);
      }
      this.#rob = rob;
      this.#h = rob.handle;
      this.#tryWait = () => rob.tryAcquire() !== 0;
      this.#post = () => {
        if (rob.release(1) !== 0) throw self.#overRelease();
      };
      this.#waiters = new WaiterQueue({
        tryTake: this.#tryWait,
        startWait: (cb: WaitCallback): WaitToken => {
          self.#handle('futex');
          return rob.startWait(cb);
        },
        cancelWait: (t: WaitToken) => binding.cancelWait(t),
        giveBack: () => {
          if (self.#h !== null) rob.release(1);
        },
      });
      return;
    }
    if (binding.robKindAt(robustSemPath(this.#name)) !== 'none') throw kindError(this.#name, false);
    this.#rob = null;
    const h = binding.semOpen(this.#name, create, exclusive, mode, initialValue, owner);
    this.#h = h;
    const view = binding.semView(h);
    if (view !== undefined) {
      const w = new Int32Array(view, 0, 2);
      this.#sw = w;
      this.#tryWait = () => takeUnit(w);
      this.#post = () => giveUnit(w, h);
    } else {
      [this.#tryWait, this.#post] = binding.semBind(h);
    }
    if (bound !== undefined && binding.semValue(h) > bound.max) {
      const v = binding.semValue(h);
      binding.semClose(h, view);
      this.#h = null;
      throw ipcError('EINVAL', `'${this.#name}' has value ${v}, more than the bound ${bound.max}${bound.lock ? ' of a Lock' : ''}`, 'sem_open', this.#name);
    }
    this.#waiters = new WaiterQueue({
      tryTake: this.#tryWait,
      startWait: (cb: WaitCallback): WaitToken => binding.semWaitAsync(self.#handle('sem_clockwait'), -1, cb),
      cancelWait: (t: WaitToken) => binding.cancelWait(t),
      giveBack: () => {
        if (self.#h !== null) self.#post();
      },
    });
  }

  #overRelease(): RangeError {
    return rangeError('ERR_IPC_OVER_RELEASE', `Semaphore released too many times: ${this.#name} is bounded at ${this.#rob?.max ?? 0}`);
  }

  // After a successful acquire: was the unit recovered from a dead holder?
  #took(): void {
    const rob = this.#rob;
    if (rob === null) return;
    const info = rob.takeRecovered();
    this.#recovered = info;
    if (info !== undefined && this.#onOwnerDead !== undefined) this.#onOwnerDead(info);
  }

  #tookAsync = (ok: boolean): boolean => {
    if (ok) this.#took();
    return ok;
  };

  /** @internal The bound a crash-safe semaphore stores (0: unbounded), undefined for a plain one. */
  protected get storedBound(): number | undefined {
    return this.#rob?.max;
  }

  /** True for a crash-safe semaphore (the default), false for a plain POSIX one. */
  get robust(): boolean {
    return this.#rob !== null;
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
    const h = this.#handle('sem_getvalue');
    if (this.#rob !== null) return this.#rob.value;
    return binding.semValue(h);
  }

  /**
   * Takes one unit, waiting if none is free. Resolves `true` when taken,
   * `false` when `timeout` ms passed first; rejects with `AbortError` when
   * `signal` aborts. The uncontended case is a CAS on the shared segment
   * (crash-safe) or one native call (plain); waits run on the addon's own
   * threads, never libuv's pool.
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    if (options === undefined && this.#h !== null && this.#waiters.idle) {
      if (this.#tryWait() || this.#spin()) {
        if (this.#rob !== null) this.#took();
        return RESOLVED_TRUE;
      }
      return this.#rob === null ? this.#waiters.wait(-1, undefined) : this.#waiters.wait(-1, undefined).then(this.#tookAsync);
    }
    try {
      const o = validateOptions<AcquireOptions>(options);
      const timeout = validateTimeout(o.timeout);
      const signal = validateSignal(o.signal);
      throwIfAborted(signal);
      this.#handle('sem_trywait');
      if (this.#waiters.idle && (this.#tryWait() || (timeout !== 0 && this.#spin()))) {
        if (this.#rob !== null) this.#took();
        return RESOLVED_TRUE;
      }
      if (timeout === 0) return RESOLVED_FALSE;
      return this.#rob === null ? this.#waiters.wait(timeout, signal) : this.#waiters.wait(timeout, signal).then(this.#tookAsync);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // The spin before a wait (lib/core/spin.ts; SpinGate decides whether
  // this one spins, after empty ones): looks at the value word (a plain
  // read or Atomics.load on the mapping, no native call) and tries only
  // when a unit is there, so the releaser's own compare-and-swap is not
  // fought over.
  #spin(): boolean {
    const spinMs = waitSpinMs();
    if (spinMs === 0) return false;
    const rob = this.#rob;
    const w = this.#sw;
    if ((rob === null && w === null) || !this.#gate.open()) return false;
    const end = performance.now() + spinMs;
    do {
      if ((rob !== null ? rob.value : w![0]!) > 0 && this.#tryWait()) {
        this.#gate.hit();
        return true;
      }
    } while (performance.now() < end);
    this.#gate.miss();
    return false;
  }

  /** Takes one unit if one is free right now; never waits. */
  tryAcquire(): boolean {
    if (this.#h === null) throw closedError('semaphore', 'sem_trywait', this.#name);
    const rob = this.#rob;
    if (rob === null) {
      const w = this.#sw;
      return w !== null ? takeUnit(w) : this.#tryWait();
    }
    const r = rob.tryAcquire();
    if (r === 2) this.#took();
    return r !== 0;
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
    const rob = this.#rob;
    // The same spin as acquire()'s before the thread sleeps in the kernel:
    // a unit given back at once by another process is taken without a
    // futex sleep and wake-up (64 µs a blocking round trip on an idle VM).
    if (rob !== null) {
      if (!this.#tryWait() && (timeout === 0 || (!this.#spin() && !rob.waitSync(timeout)))) return false;
      this.#took();
      return true;
    }
    if (this.#tryWait()) return true;
    if (timeout === 0) return false;
    if (this.#spin()) return true;
    return binding.semWaitSync(h, timeout);
  }

  /** Gives back `n` units (default 1): `sem_post`, waking waiters in any process. */
  release(n = 1): void {
    const h = this.#h;
    if (h === null) throw closedError('semaphore', 'sem_post', this.#name);
    if (n === 1) {
      const rob = this.#rob;
      if (rob === null) {
        this.beforeRelease(1);
        const w = this.#sw;
        if (w !== null) giveUnit(w, h);
        else this.#post();
      } else if (rob.release(1) !== 0) {
        throw this.#overRelease();
      }
      return;
    }
    validateInteger(n, 'n', 1, SEM_VALUE_MAX);
    if (this.#rob !== null) {
      if (this.#rob.release(n) !== 0) throw this.#overRelease();
      return;
    }
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
    this.#recovered = undefined;
    if (!(await this.acquire(options))) {
      throw ipcError('ETIMEDOUT', 'timed out waiting for semaphore', 'sem_clockwait', this.#name);
    }
    return this.#held();
  }

  /** The blocking form of `hold()`. */
  holdSync(options?: { timeout?: number }): Held {
    this.#recovered = undefined;
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
    const recovered = this.#recovered;
    this.#recovered = undefined;
    const token = this.#rob !== null && this.#isLock ? this.#rob.holderToken() : undefined;
    return { release, [Symbol.dispose]: release, recovered, token };
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
    if (this.#rob !== null) this.#rob.close();
    else binding.semClose(h, this.#sw?.buffer as ArrayBuffer | undefined);
  }

  /** Removes the name (its segment, or `sem_unlink`); open handles keep working until closed. */
  unlink(): void {
    if (this.#rob !== null) binding.robUnlink(robustSemPath(this.#name), this.#name);
    else binding.semUnlink(this.#name);
  }

  /**
   * Removes the semaphore `name`, of either kind (every part of it). Throws
   * IPCError ENOENT if there is none.
   */
  static unlink(name: string): void {
    const n = validateName(name, 'name', PLAIN_SEM_RESERVED);
    let removed = false;
    if (binding.robKindAt(robustSemPath(n)) !== 'none') {
      binding.robUnlink(robustSemPath(n), n);
      removed = true;
    }
    if (!removed || binding.robKindAt(plainSemPath(n)) !== 'none') binding.semUnlink(n);
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  readonly #opened: SemaphoreOptions;
  /** @internal how a child process reopens this semaphore: by name, with its own options, never creating it. */
  [kReopen](): ReopenSpec {
    this.#handle('sem_open');
    const kind = this instanceof Lock ? 'Lock' : this instanceof BoundedSemaphore ? 'BoundedSemaphore' : 'Semaphore';
    const options: Record<string, unknown> = { ...this.#opened, create: false, exclusive: false };
    if (kind === 'Lock') {
      // Lock sets them itself and refuses them as options.
      delete options.initialValue;
      delete options.maxValue;
    }
    return { kind, name: this.#name, options };
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
    const o = validateOptions<BoundedSemaphoreOptions>(options);
    const strict = o.maxValue !== undefined || (o as { [BOUND]?: Bound })[BOUND] !== undefined;
    const lock = (o as { [BOUND]?: Bound })[BOUND]?.lock === true;
    super(name, { ...o, [BOUND]: { max, strict, lock } } as SemaphoreOptions);
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

  /** The bound given at construction (for a crash-safe semaphore, the one stored with it). */
  get maxValue(): number {
    return this.storedBound || this.#max;
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
    super(name, { ...o, initialValue: 1, maxValue: 1, [BOUND]: { max: 1, strict: true, lock: true } } as BoundedSemaphoreOptions);
  }

  /** True if the lock is currently held (by any process). */
  locked(): boolean {
    return this.value === 0;
  }
}
