/**
 * `Condition`: Python's condition variable, by name across processes, on a
 * crash-safe synchronisation segment (/dev/shm/pipc.NAME.cond). Each waiter
 * has a ticket in its own slot; notify() hands tickets over without waiting
 * for anyone, and skips waiters that died (their slot's lock is gone), so a
 * waiter killed inside wait() neither eats a notification nor hangs
 * notifyAll().
 * @module
 */
import { closedError, ipcError } from '../core/errors.js';
import { SYNC_RESERVED, validateName } from '../core/names.js';
import { keysOf, throwIfAborted, validateFunction, validateInteger, validateOptions, validateWaitOptions } from '../core/validate.js';
import { H_FIRST, OPEN_KEYS, SyncSegment, openOptions, unlinkSegment, type SyncOpenOptions } from './segment.js';
import { RLock } from './rlock.js';
import { Lock, type AcquireOptions, type Held } from './semaphore.js';

/** Header word: the ticket counter (+1 per wait, wraps). */
export const CO_TICKET = H_FIRST;
/** Slot words: the state (futex word) and the ticket of the current wait. */
export const CS_STATE = 1;
export const CS_TICKET = 2;
/** Slot states. */
export const IDLE = 0;
export const WAITING = 1;
export const NOTIFIED = 2;

/** Options for opening a Condition. */
export interface ConditionOptions extends SyncOpenOptions {
  /** The lock (an RLock or a Lock, by default `new RLock(name)`): acquire()/release() are its, wait() releases it meanwhile. */
  lock?: RLock | Lock;
}

export interface ConditionWaitOptions {
  /** Give up after this many ms: wait() resolves false (waitFor: the predicate's last value). */
  timeout?: number;
  /** Abort: rejects with AbortError once the lock is held again (a notification it received goes to the next waiter). */
  signal?: AbortSignal;
}

const CONDITION_KEYS = keysOf<ConditionOptions>()(...OPEN_KEYS, 'lock');
const WAIT_KEYS = keysOf<ConditionWaitOptions>()('timeout', 'signal');

/**
 * A condition variable shared by name. As in Python, wait() and notify()
 * need the lock held, wait() releases it while it sleeps and holds it again
 * when it returns.
 *
 * ```ts
 * const c = new Condition('jobs');
 * { using _ = await c.hold(); await c.waitFor(() => ready()); } // consumer
 * { using _ = await c.hold(); publish(); c.notifyAll(); }          // producer
 * ```
 * Wake-ups may be spurious (a wait may return true with the predicate still
 * false: re-check it, or use waitFor); notifications are never lost to a
 * waiter that has died or timed out. One wait at a time per handle.
 */
export class Condition implements Disposable {
  readonly #seg: SyncSegment;
  readonly #name: string;
  readonly #lock: RLock | Lock;
  readonly #ownLock: boolean;
  #busy = false;

  constructor(name: string, options?: ConditionOptions) {
    const o = validateOptions<ConditionOptions>(options, CONDITION_KEYS);
    this.#name = validateName(name, 'name', SYNC_RESERVED);
    if (o.lock !== undefined && !(o.lock instanceof RLock) && !(o.lock instanceof Lock)) {
      throw Object.assign(new TypeError('The "lock" option must be an RLock or a Lock'), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    const open = openOptions(o);
    this.#seg = new SyncSegment(this.#name, 'condition', open, []);
    Atomics.store(this.#seg.m, this.#seg.mine + CS_STATE, IDLE);
    try {
      this.#lock = o.lock ?? new RLock(this.#name, { create: open.create, mode: open.mode, owner: o.owner });
    } catch (err) {
      this.#seg.close('Condition');
      throw err;
    }
    this.#ownLock = o.lock === undefined;
  }

  get name(): string {
    return this.#name;
  }

  get closed(): boolean {
    return this.#seg.closed;
  }

  /** The lock this condition uses. */
  get lock(): RLock | Lock {
    return this.#lock;
  }

  #m(syscall: string): Int32Array {
    if (this.#seg.closed) throw closedError('Condition', syscall, this.#name);
    return this.#seg.m;
  }

  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#lock.acquire(options);
  }

  acquireSync(options?: { timeout?: number }): boolean {
    return this.#lock.acquireSync(options);
  }

  tryAcquire(): boolean {
    return this.#lock.tryAcquire();
  }

  release(): void {
    this.#lock.release();
  }

  hold(options?: AcquireOptions): Promise<Held> {
    return this.#lock.hold(options);
  }

  holdSync(options?: { timeout?: number }): Held {
    return this.#lock.holdSync(options);
  }

  /**
   * Whether the caller holds the lock: for an RLock, this thread owns it;
   * for a Lock (which has no owner), someone holds it.
   */
  #held(): boolean {
    const l = this.#lock;
    return l instanceof RLock ? l.isOwned() : l.locked();
  }

  #requireLock(what: string): void {
    if (!this.#held()) throw ipcError('EPERM', `cannot ${what} a Condition without holding its lock`, 'futex', this.#name);
  }

  /** How many live waiters there are now, in every process. */
  get nWaiting(): number {
    const m = this.#m('load');
    const seg = this.#seg;
    let n = 0;
    for (let id = 1; id <= seg.slots; id++) {
      if (Atomics.load(m, seg.base(id) + CS_STATE) === WAITING && seg.alive(id)) n++;
    }
    return n;
  }

  /** Registers our wait and gives the lock up: returns what restores it. */
  #begin(): number {
    const m = this.#seg.m;
    const mine = this.#seg.mine;
    Atomics.store(m, mine + CS_TICKET, Atomics.add(m, CO_TICKET, 1) + 1);
    Atomics.store(m, mine + CS_STATE, WAITING);
    const l = this.#lock;
    if (l instanceof RLock) return l.releaseAll();
    l.release();
    return 1;
  }

  /** Leaves the wait: true if we were notified (also when the timeout raced with the notification). */
  #end(): boolean {
    const m = this.#seg.m;
    const state = this.#seg.mine + CS_STATE;
    const notified = Atomics.compareExchange(m, state, WAITING, IDLE) === NOTIFIED;
    Atomics.store(m, state, IDLE);
    return notified;
  }

  #restore(depth: number): void {
    if (this.#lock instanceof RLock) this.#lock.restore(depth);
  }

  #enter(): void {
    if (this.#busy) throw ipcError('EBUSY', 'this Condition handle is already waiting (open one handle per waiter)', 'futex', this.#name);
    this.#busy = true;
  }

  /**
   * Releases the lock, sleeps until notified (true) or `timeout` ms passed
   * (false), then holds the lock again. Throws EPERM without the lock.
   */
  async wait(options?: ConditionWaitOptions): Promise<boolean> {
    const { timeout, signal } = validateWaitOptions<ConditionWaitOptions>(options, WAIT_KEYS);
    const m = this.#m('futex');
    throwIfAborted(signal);
    this.#requireLock('wait on');
    this.#enter();
    const word = this.#seg.mine + CS_STATE;
    let depth = 0;
    try {
      depth = this.#begin();
      let failure: unknown;
      try {
        await this.#seg.watch(word, () => (Atomics.load(m, word) !== WAITING ? true : undefined), timeout, signal);
      } catch (err) {
        failure = err;
      }
      if (this.#seg.closed) throw failure ?? closedError('Condition', 'futex', this.#name);
      const notified = this.#end();
      await this.#lock.acquire();
      this.#restore(depth);
      if (failure !== undefined) {
        // Aborted: a notification that reached us goes on to the next waiter.
        if (notified) this.#notify(1);
        throw failure;
      }
      return notified;
    } finally {
      this.#busy = false;
    }
  }

  /** The blocking form of wait(). */
  waitSync(options?: { timeout?: number }): boolean {
    const { timeout } = validateWaitOptions<{ timeout?: number }>(options, ['timeout']);
    const m = this.#m('futex');
    this.#requireLock('wait on');
    this.#enter();
    const word = this.#seg.mine + CS_STATE;
    try {
      const depth = this.#begin();
      this.#seg.waitSync(word, () => (Atomics.load(m, word) !== WAITING ? true : undefined), timeout);
      const notified = this.#end();
      this.#lock.acquireSync();
      this.#restore(depth);
      return notified;
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Waits until `predicate()` is truthy, re-checking after each wake-up, and
   * returns its last value (falsy when `timeout` ms passed first), as
   * Python's wait_for. The lock must be held; it is held when this returns.
   */
  async waitFor<T>(predicate: () => T | Promise<T>, options?: ConditionWaitOptions): Promise<T> {
    validateFunction(predicate, 'predicate');
    const { timeout, signal } = validateWaitOptions<ConditionWaitOptions>(options, WAIT_KEYS);
    const due = timeout < 0 ? Infinity : performance.now() + timeout;
    let result = await predicate();
    while (!result) {
      const left = due === Infinity ? -1 : due - performance.now();
      if (due !== Infinity && left <= 0) break;
      await this.wait({ timeout: left < 0 ? undefined : left, signal });
      result = await predicate();
    }
    return result;
  }

  /** The blocking form of waitFor(). */
  waitForSync<T>(predicate: () => T, options?: { timeout?: number }): T {
    validateFunction(predicate, 'predicate');
    const { timeout } = validateWaitOptions<{ timeout?: number }>(options, ['timeout']);
    const due = timeout < 0 ? Infinity : performance.now() + timeout;
    let result = predicate();
    while (!result) {
      const left = due === Infinity ? -1 : due - performance.now();
      if (due !== Infinity && left <= 0) break;
      this.waitSync({ timeout: left < 0 ? undefined : left });
      result = predicate();
    }
    return result;
  }

  /**
   * Wakes up to `n` waiters (default 1), oldest first, in any process. Never
   * waits: each chosen waiter's slot is switched to notified and its futex
   * woken; a waiter whose process died is cleared and skipped. Returns how
   * many were notified. Throws EPERM without the lock.
   */
  notify(n = 1): number {
    if (n !== Infinity) validateInteger(n, 'n', 0, Number.MAX_SAFE_INTEGER);
    this.#m('futex');
    this.#requireLock('notify');
    return this.#notify(n);
  }

  /** Wakes every waiter. */
  notifyAll(): number {
    return this.notify(Infinity);
  }

  #notify(n: number): number {
    const m = this.#seg.m;
    const seg = this.#seg;
    const waiting: Array<[id: number, ticket: number]> = [];
    for (let id = 1; id <= seg.slots; id++) {
      const b = seg.base(id);
      if (Atomics.load(m, b + CS_STATE) === WAITING) waiting.push([id, Atomics.load(m, b + CS_TICKET)]);
    }
    // Oldest ticket first; tickets wrap, so compare by difference.
    waiting.sort((a, b) => (a[1] - b[1]) | 0);
    let done = 0;
    for (const [id] of waiting) {
      if (done >= n) break;
      const word = seg.base(id) + CS_STATE;
      if (!seg.alive(id)) {
        Atomics.compareExchange(m, word, WAITING, IDLE);
        continue;
      }
      if (Atomics.compareExchange(m, word, WAITING, NOTIFIED) !== WAITING) continue; // it timed out meanwhile
      seg.wake(word, 1);
      done++;
    }
    return done;
  }

  /** Closes this handle (and the RLock it made itself); a pending wait rejects with EBADF. Idempotent. */
  close(): void {
    this.#seg.close('Condition');
    if (this.#ownLock) this.#lock.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Removes the name (and that of the RLock it made itself). */
  unlink(): void {
    unlinkSegment('condition', this.#name);
    if (this.#ownLock) this.#lock.unlink();
  }

  /** Removes the Condition `name` and its default RLock (if there is one). IPCError ENOENT if there is no Condition. */
  static unlink(name: string): void {
    unlinkSegment('condition', name);
    try {
      RLock.unlink(name);
    } catch {
      // made with a lock of the caller's
    }
  }
}
