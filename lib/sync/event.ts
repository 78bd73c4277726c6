/**
 * `Event`: Python's `threading.Event` / `multiprocessing.Event`, by name
 * across processes, on a crash-safe synchronisation segment
 * (/dev/shm/pipc.NAME.event).
 * @module
 */
import { closedError } from '../core/errors.js';
import { SYNC_RESERVED, validateName } from '../core/names.js';
import { keysOf, validateOptions, validateWaitOptions } from '../core/validate.js';
import { H_FIRST, OPEN_KEYS, SyncSegment, openOptions, unlinkSegment, type SyncOpenOptions } from './segment.js';

/**
 * Header word: the state, 2 * seq + flag (futex word). The flag (bit 0) is 1
 * while set; seq counts the set()s that changed it. One word, changed by one
 * CAS: a set is never seen half done (a flag already consumed and cleared
 * while its sequence had not moved yet would wake the next wait for nothing).
 */
export const EV_STATE = H_FIRST + 1;

/** Options for opening an Event. */
export type EventOptions = SyncOpenOptions;

/** Options for a wait. */
export interface EventWaitOptions {
  /** Give up after this many milliseconds: resolves false. Default: forever. */
  timeout?: number;
  /** Abort the wait: rejects with AbortError. */
  signal?: AbortSignal;
}

const EVENT_KEYS = keysOf<EventOptions>()(...OPEN_KEYS);
const WAIT_KEYS = keysOf<EventWaitOptions>()('timeout', 'signal');

/**
 * A flag that processes wait for, found by name. `set()` wakes every waiter
 * in every process; `clear()` resets it.
 *
 * ```ts
 * const go = new Event('start');
 * await go.wait();   // in every worker
 * go.set();          // in the coordinator: they all run
 * ```
 * A wait resolves `true` if the flag was set when it looked or was set at
 * any time during the wait (also if cleared again before the waiter ran),
 * `false` on timeout.
 */
export class Event implements Disposable {
  readonly #seg: SyncSegment;
  readonly #name: string;

  /**
   * Opens the Event `name`, creating it (clear) if missing.
   * @throws TypeError / RangeError for bad arguments; IPCError for a file at the name that is not an Event.
   */
  constructor(name: string, options?: EventOptions) {
    const o = validateOptions<EventOptions>(options, EVENT_KEYS);
    this.#name = validateName(name, 'name', SYNC_RESERVED);
    this.#seg = new SyncSegment(this.#name, 'event', openOptions(o), []);
  }

  #m(syscall: string): Int32Array {
    if (this.#seg.closed) throw closedError('Event', syscall, this.#name);
    return this.#seg.m;
  }

  /** The name with its leading slash. */
  get name(): string {
    return this.#name;
  }

  get closed(): boolean {
    return this.#seg.closed;
  }

  /** True while the flag is set. */
  isSet(): boolean {
    return (Atomics.load(this.#m('load'), EV_STATE) & 1) === 1;
  }

  /**
   * Sets the flag and wakes every waiter, in every process: the state goes
   * from 2k (clear) to 2k + 3 (set, seq + 1) in one CAS. A setter killed
   * before it wakes leaves the flag set, which sleeping waiters see within
   * 250 ms.
   */
  set(): void {
    const m = this.#m('futex');
    for (;;) {
      const s = Atomics.load(m, EV_STATE);
      if ((s & 1) === 1) return;
      if (Atomics.compareExchange(m, EV_STATE, s, (s + 3) | 0) === s) break;
    }
    this.#seg.wake(EV_STATE);
  }

  /** Clears the flag (2k + 1 to 2k + 2). */
  clear(): void {
    const m = this.#m('store');
    for (;;) {
      const s = Atomics.load(m, EV_STATE);
      if ((s & 1) === 0 || Atomics.compareExchange(m, EV_STATE, s, (s + 1) | 0) === s) return;
    }
  }

  #check(s0: number): () => true | undefined {
    const m = this.#seg.m;
    // s0 is even (clear): the only way out of it is a set. != only: the word wraps.
    return () => (Atomics.load(m, EV_STATE) !== s0 ? true : undefined);
  }

  /** Waits until the flag is set: true, or false when `timeout` ms passed first. */
  async wait(options?: EventWaitOptions): Promise<boolean> {
    const { timeout, signal } = validateWaitOptions<EventWaitOptions>(options, WAIT_KEYS);
    const s0 = Atomics.load(this.#m('futex'), EV_STATE);
    if ((s0 & 1) === 1) return true;
    return (await this.#seg.watch(EV_STATE, this.#check(s0), timeout, signal)) === true;
  }

  /** The blocking form of wait(), for scripts. */
  waitSync(options?: { timeout?: number }): boolean {
    const { timeout } = validateWaitOptions<{ timeout?: number }>(options, ['timeout']);
    const s0 = Atomics.load(this.#m('futex'), EV_STATE);
    if ((s0 & 1) === 1) return true;
    return this.#seg.waitSync(EV_STATE, this.#check(s0), timeout) === true;
  }

  /** Closes this handle; pending waits reject with IPCError EBADF. Idempotent. */
  close(): void {
    this.#seg.close('Event');
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Removes the name; open handles keep working. */
  unlink(): void {
    Event.unlink(this.#name);
  }

  /** Removes the Event `name`. IPCError ENOENT if there is none. */
  static unlink(name: string): void {
    unlinkSegment('event', name);
  }
}

