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

/** Header word: the flag (0 clear, 1 set). */
export const EV_FLAG = H_FIRST;
/** Header word: the sequence number, +1 by every set() that changed the flag (futex word). */
export const EV_SEQ = H_FIRST + 1;

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
    return Atomics.load(this.#m('load'), EV_FLAG) === 1;
  }

  /**
   * Sets the flag and wakes every waiter, in every process. The flag is
   * stored before the sequence moves: a setter that dies between the two
   * leaves the flag set, which sleeping waiters see within 250 ms.
   */
  set(): void {
    const m = this.#m('futex');
    if (Atomics.exchange(m, EV_FLAG, 1) === 0) {
      Atomics.add(m, EV_SEQ, 1);
      this.#seg.wake(EV_SEQ);
    }
  }

  /** Clears the flag. */
  clear(): void {
    Atomics.store(this.#m('store'), EV_FLAG, 0);
  }

  #check(seq0: number): () => true | undefined {
    const m = this.#seg.m;
    // != only: the 32-bit sequence may wrap.
    return () => (Atomics.load(m, EV_FLAG) === 1 || Atomics.load(m, EV_SEQ) !== seq0 ? true : undefined);
  }

  /** Waits until the flag is set: true, or false when `timeout` ms passed first. */
  async wait(options?: EventWaitOptions): Promise<boolean> {
    const { timeout, signal } = validateWaitOptions<EventWaitOptions>(options, WAIT_KEYS);
    const m = this.#m('futex');
    if (Atomics.load(m, EV_FLAG) === 1) return true;
    return (await this.#seg.watch(EV_SEQ, this.#check(Atomics.load(m, EV_SEQ)), timeout, signal)) === true;
  }

  /** The blocking form of wait(), for scripts. */
  waitSync(options?: { timeout?: number }): boolean {
    const { timeout } = validateWaitOptions<{ timeout?: number }>(options, ['timeout']);
    const m = this.#m('futex');
    if (Atomics.load(m, EV_FLAG) === 1) return true;
    return this.#seg.waitSync(EV_SEQ, this.#check(Atomics.load(m, EV_SEQ)), timeout) === true;
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

